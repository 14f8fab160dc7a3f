// The rdma_cm private-data header, port spaces, service IDs and IP GIDs.
import { describe, expect, it } from "vitest";
import {
  CmaHdrError, CMA_HDR_SIZE, emitCmaHdr, gidToIp, ipToGid, isZeroAddress, parseCmaHdr, PortSpace, RDMA_IB_IP_PS_MASK,
  RDMA_IB_IP_PS_TCP, RDMA_IB_IP_PS_UDP, RDMA_IB_IP_PS_IB, RDMA_UDP_QKEY, serviceId, splitServiceId, IB_CMA_SERVICE_ID,
  IB_CMA_SERVICE_ID_MASK,
} from "../../../host/core/cm/cma-hdr.js";
import { errorCode } from "./cm-harness.js";

describe("rdma_cm header (struct cma_hdr)", () => {
  it("IPv4: version 0, IP version 4 in the high nibble, port, the addresses after three zero words", () => {
    const h = emitCmaHdr({ src: "192.168.1.10", dst: "192.168.1.20", port: 0xc351 });
    expect(h.length).toBe(CMA_HDR_SIZE);
    expect(Buffer.from(h).toString("hex")).toBe(
      "00" + "40" + "c351" + "00".repeat(12) + "c0a8010a" + "00".repeat(12) + "c0a80114",
    );
    expect(parseCmaHdr(h)).toEqual({ ipVersion: 4, port: 0xc351, src: "192.168.1.10", dst: "192.168.1.20" });
  });

  it("IPv6: the whole addresses", () => {
    const h = emitCmaHdr({ src: "fd00:4791::1", dst: "fd00:4791::2", port: 7174 });
    expect(Buffer.from(h.subarray(0, 4)).toString("hex")).toBe("00601c06");
    expect(Buffer.from(h.subarray(4, 20)).toString("hex")).toBe("fd004791000000000000000000000001");
    expect(parseCmaHdr(h)).toEqual({ ipVersion: 6, port: 7174, src: "fd00:4791::1", dst: "fd00:4791::2" });
  });

  it("what cma_save_ip_info refuses: short, version not 0, IP version not 4 or 6", () => {
    const code = (b: Uint8Array) => errorCode(() => parseCmaHdr(b), CmaHdrError);
    const good = emitCmaHdr({ src: "10.0.0.1", dst: "10.0.0.2", port: 1 });
    expect(code(good)).toBe("ok");
    expect(code(good.subarray(0, 35))).toBe("short");
    const v = good.slice(); v[0] = 0x10;
    expect(code(v)).toBe("bad_version");
    const ipv = good.slice(); ipv[1] = 0x50;
    expect(code(ipv)).toBe("bad_ip_version");
    const zero = new Uint8Array(36);
    expect(code(zero)).toBe("bad_ip_version"); // an AF_IB request carries no header
  });

  it("mixed families and non-addresses are refused at emit", () => {
    expect(() => emitCmaHdr({ src: "10.0.0.1", dst: "fd00::1", port: 1 })).toThrow(RangeError);
    expect(() => emitCmaHdr({ src: "host", dst: "10.0.0.1", port: 1 })).toThrow(RangeError);
  });
});

describe("port spaces and service IDs", () => {
  it("rdma_get_service_id: ps << 16 + port, inside the RDMA CM's range", () => {
    expect(PortSpace).toEqual({ IPOIB: 0x0002, IB: 0x013f, TCP: 0x0106, UDP: 0x0111 });
    const sid = serviceId(PortSpace.TCP, 7174);
    expect(sid).toBe(0x0000000001061c06n);
    expect(sid & RDMA_IB_IP_PS_MASK).toBe(RDMA_IB_IP_PS_TCP);
    expect(serviceId(PortSpace.UDP, 1) & RDMA_IB_IP_PS_MASK).toBe(RDMA_IB_IP_PS_UDP);
    expect(serviceId(PortSpace.IB, 1) & RDMA_IB_IP_PS_MASK).toBe(RDMA_IB_IP_PS_IB);
    expect(sid & IB_CMA_SERVICE_ID_MASK).toBe(IB_CMA_SERVICE_ID);
    expect(splitServiceId(sid)).toEqual({ ps: 0x0106, port: 7174 });
    expect(() => serviceId(0x10000, 1)).toThrow(RangeError);
    expect(RDMA_UDP_QKEY).toBe(0x01234567);
  });

  it("GIDs of IP addresses: IPv4-mapped for IPv4 (rdma_ip2gid), and back", () => {
    expect(Buffer.from(ipToGid("10.1.2.3")).toString("hex")).toBe("00000000000000000000ffff0a010203");
    expect(gidToIp(ipToGid("10.1.2.3"))).toBe("10.1.2.3");
    expect(gidToIp(ipToGid("fd00::7"))).toBe("fd00::7");
    expect(() => ipToGid("nope")).toThrow(RangeError);
    expect(isZeroAddress("0.0.0.0")).toBe(true);
    expect(isZeroAddress("::")).toBe(true);
    expect(isZeroAddress("127.0.0.1")).toBe(false);
  });
});

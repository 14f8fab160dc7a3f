import { describe, expect, it } from "vitest";
import { openDeviceWith, VENDOR_ID, Mtu, PortState, LinkLayer } from "../../../host/core/verbs/index.js";
import { openDevice } from "../../../host/node/index.js";
import { coreModule } from "../../../host/node/wasm-source.js";
import { expectVerbsError, smallDevice, SMALL } from "../support/verbs-helpers.js";

describe("device (ibv_open_device, ibv_query_device, ibv_query_port, ibv_query_gid)", () => {
  it("opens on no network with the defaults and exposes its memory", async () => {
    const dev = await openDevice();
    expect(dev.memory).toBeInstanceOf(WebAssembly.Memory);
    const a = dev.query();
    expect(a.vendorId).toBe(VENDOR_ID);
    expect(a.maxCqe).toBe(32767);
    expect(a.maxSge).toBe(32);
    expect(a.maxSrqSge).toBe(27);
    expect(a.maxQp).toBe(256);
    expect(a.maxQpRdAtom).toBe(128);
    expect(a.physPortCnt).toBe(1);
    expect(a.nodeGuid).toBe(a.sysImageGuid);
  });

  it("openDeviceWith works from a compiled module (the platform-neutral entry)", async () => {
    const dev = await openDeviceWith(await coreModule(), SMALL);
    expect(dev.query().maxQp).toBe(16);
    expect(dev.query().nodeGuid).toBe(0x0200_00ff_fe00_0001n);
  });

  it("reports port 1 like rxe on a 1500-byte link", async () => {
    const p = (await smallDevice()).queryPort(1);
    expect(p.state).toBe(PortState.ACTIVE);
    expect(p.maxMtu).toBe(Mtu.MTU_4096);
    expect(p.activeMtu).toBe(Mtu.MTU_1024);
    expect(p.linkLayer).toBe(LinkLayer.ETHERNET);
    expect(p.maxMsgSz).toBe(2 ** 31);
    expect(p.pkeyTblLen).toBe(1);
  });

  it("bad flow: port 0 and port 2 do not exist (EINVAL)", async () => {
    const dev = await smallDevice();
    expectVerbsError(() => dev.queryPort(0), "EINVAL", "ibv_query_port");
    expectVerbsError(() => dev.queryPort(2), "EINVAL", "ibv_query_port");
  });

  it("returns the GID table, and the default link-local GID from the node GUID", async () => {
    const dev = await smallDevice();
    expect(dev.queryGid(0)).toBe("fe80::ff:fe00:1");
    expect(dev.queryGid(1)).toBe("::ffff:127.0.0.1");
    expect(dev.queryGid(2)).toBe("::");
    const d2 = await openDevice({ ...SMALL, gids: undefined, nodeGuid: 0x0211_22ff_fe33_4455n });
    expect(d2.queryGid(0)).toBe("fe80::211:22ff:fe33:4455");
  });

  it("bad flow: GID index outside the table, or another port (EINVAL)", async () => {
    const dev = await smallDevice();
    const len = dev.queryPort().gidTblLen;
    expectVerbsError(() => dev.queryGid(len), "EINVAL", "ibv_query_gid");
    expectVerbsError(() => dev.queryGid(-1), "EINVAL", "ibv_query_gid");
    expectVerbsError(() => dev.queryGid(0, 2), "EINVAL", "ibv_query_gid");
  });

  it("bad flow: more GIDs than the table holds (EINVAL), limits the wasm cannot hold (ENOMEM)", async () => {
    const gids = Array.from({ length: 17 }, (_, i) => `fe80::${i + 1}`);
    await expect(openDevice({ ...SMALL, gids })).rejects.toMatchObject({ code: "EINVAL" });
    await expect(openDevice({ ...SMALL, mrArenaBytes: 0x7fffffff, ringArenaBytes: 0x7fffffff })).rejects.toMatchObject({ code: "ENOMEM" });
  });

  it("names its counters as rxe_hw_counters.h, all zero at open", async () => {
    const c = (await smallDevice()).queryCounters();
    for (const n of ["sent_pkts", "rcvd_pkts", "duplicate_request", "out_of_seq_request", "rcvd_rnr_err", "send_rnr_err",
      "rcvd_seq_err", "ack_deferred", "retry_exceeded_err", "retry_rnr_exceeded_err", "completer_retry_err", "send_err",
      "link_downed", "rdma_sends", "rdma_recvs", "bad_icrc", "short", "bad_version", "unknown_qpn", "bad_source"]) {
      expect(c[n], n).toBe(0);
    }
    expect(Object.keys(c).length).toBe(27);
  });

  it("gives two devices two memories and independent objects", async () => {
    const a = await smallDevice();
    const b = await smallDevice();
    expect(a.memory).not.toBe(b.memory);
    const pa = a.allocPd();
    const pb = b.allocPd();
    expect(pa.handle).toBe(pb.handle); // same first slot in each device
    pa.destroy();
    pb.regMr(64).destroy();
  });
});

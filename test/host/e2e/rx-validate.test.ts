// The device's receive path: every datagram is validated once, in rxe's order,
// and a bad one is a counted drop with a reason — checked here with packets
// built by the independent encoder (WireCodec.emit) and fed through a link.
import { beforeEach, describe, expect, it } from "vitest";
import { coreModule } from "../../../host/node/wasm-source.js";
import { WireCodec, type PacketSpec } from "../../../host/core/wire/codec.js";
import { SimNetwork } from "../../../host/core/sim/network.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { RX_RESULT_NAMES } from "../../../host/core/link/port.js";
import { QpType, QpState } from "../../../host/core/verbs/enums.js";
import type { Device } from "../../../host/core/verbs/device.js";
import type { QueuePair } from "../../../host/core/verbs/qp.js";

const RC_SEND_ONLY = 0x04;
const UC_SEND_ONLY = 0x24;
const UD_SEND_ONLY = 0x64;

let codec: WireCodec;
let net: SimNetwork;
let dev: Device;
let rc: QueuePair;
let ud: QueuePair;

/** A UDP payload (BTH … ICRC) built by the encoder for the given IP facts. */
function roce(spec: Partial<PacketSpec> & { opcode: number; destQp: number }, v6 = false, src?: string): Uint8Array {
  const full = codec.emit({
    ipVersion: v6 ? 6 : 4,
    src: src ?? (v6 ? "fd00::2" : "127.0.0.2"),
    dst: v6 ? "fd00::1" : "127.0.0.1",
    ipId: 0,
    ipFlags: 2,
    udpSrcPort: 4791,
    udpDstPort: 4791,
    psn: 100,
    ...spec,
  } as PacketSpec);
  return full.subarray(v6 ? 48 : 28);
}

function deliver(payload: Uint8Array, src = "127.0.0.2", dst = "127.0.0.1"): string {
  const r = dev.port!.receive({ src, dst, srcPort: 4791, dstPort: 4791, ipId: 0, payload });
  return RX_RESULT_NAMES[r]!;
}

beforeEach(async () => {
  const mod = await coreModule();
  codec ??= await WireCodec.create(mod);
  net = new SimNetwork();
  dev = await net.addDevice(mod, "127.0.0.1", { gids: ["::ffff:127.0.0.1", "fd00::1"] });
  const pd = dev.allocPd();
  const cq = dev.createCq(16);
  rc = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 4, maxRecvWr: 4, maxSendSge: 1, maxRecvSge: 1 } });
  connectQp(rc, { qpNum: 0x99, psn: 100, gid: "::ffff:127.0.0.2" }, { sqPsn: 7 });
  ud = pd.createQp({ qpType: QpType.UD, sendCq: cq, recvCq: cq, cap: { maxSendWr: 4, maxRecvWr: 4, maxSendSge: 1, maxRecvSge: 1 } });
  connectQp(ud, undefined, { sqPsn: 1, qkey: 0x11111111 });
});

describe("receive path", () => {
  it("accepts a valid request for a connected RC QP and counts it", () => {
    expect(deliver(roce({ opcode: RC_SEND_ONLY, destQp: rc.qpNum, payload: new Uint8Array(5) }))).toBe("ok");
    expect(dev.queryCounters().rcvd_pkts).toBe(1);
  });

  it("drops a corrupted datagram for its ICRC", () => {
    const p = roce({ opcode: RC_SEND_ONLY, destQp: rc.qpNum, payload: new Uint8Array([1, 2, 3, 4]) });
    p[13] ^= 0x40;
    expect(deliver(p)).toBe("bad_icrc");
    expect(dev.queryCounters()).toMatchObject({ bad_icrc: 1, rcvd_pkts: 0 });
  });

  it("checks the ICRC over the IP header it was sent with (addresses, IPv4 ID)", () => {
    const p = roce({ opcode: RC_SEND_ONLY, destQp: rc.qpNum });
    expect(deliver(p, "127.0.0.3")).toBe("bad_icrc");
    const withId = roce({ opcode: RC_SEND_ONLY, destQp: rc.qpNum, ipId: 0x1234 });
    const at = (ipId: number) => dev.port!.receive({ src: "127.0.0.2", dst: "127.0.0.1", srcPort: 4791, dstPort: 4791, ipId, payload: withId });
    expect(RX_RESULT_NAMES[at(0x1234)]).toBe("ok");
    expect(RX_RESULT_NAMES[at(0)]).toBe("bad_icrc");
  });

  it("solves an unseen IPv4 ID from the ICRC (as Linux rxe's are unpredictable) and still catches corruption", () => {
    const unseen = (payload: Uint8Array) =>
      RX_RESULT_NAMES[dev.port!.receive({ src: "127.0.0.2", dst: "127.0.0.1", srcPort: 4791, dstPort: 4791, payload })];
    // a Linux sender's per-flow counter: the flow's first datagram has no prediction yet and is taken (UC/UD never resend)
    const first = roce({ opcode: RC_SEND_ONLY, destQp: rc.qpNum, ipId: 0x7bfd, payload: new Uint8Array(300).fill(7) });
    expect(unseen(first)).toBe("ok");
    const p = roce({ opcode: RC_SEND_ONLY, destQp: rc.qpNum, ipId: 0x7bfe, payload: new Uint8Array(300).fill(7) });
    expect(unseen(p)).toBe("ok");
    // an ID far from the sequence is refused although it explains the ICRC
    expect(unseen(roce({ opcode: RC_SEND_ONLY, destQp: rc.qpNum, psn: 101, ipId: 0x1234, payload: new Uint8Array(300).fill(7) }))).toBe("bad_icrc");
    const q = p.slice();
    q[40] ^= 0x01;
    expect(unseen(q)).toBe("bad_icrc");
    // a known ID is taken as given, not solved for
    expect(RX_RESULT_NAMES[dev.port!.receive({ src: "127.0.0.2", dst: "127.0.0.1", srcPort: 4791, dstPort: 4791, ipId: 0, payload: p })]).toBe("bad_icrc");
  });

  it("names every other reason", () => {
    expect(deliver(new Uint8Array(10))).toBe("short");
    expect(deliver(roce({ opcode: RC_SEND_ONLY, destQp: rc.qpNum, tver: 1 }))).toBe("bad_version");
    expect(deliver(roce({ opcode: RC_SEND_ONLY, destQp: 0x7777 }))).toBe("unknown_qpn");
    expect(deliver(roce({ opcode: UC_SEND_ONLY, destQp: rc.qpNum }))).toBe("bad_transport");
    expect(deliver(roce({ opcode: RC_SEND_ONLY, destQp: rc.qpNum, pkey: 0x1234 }))).toBe("bad_pkey");
    expect(deliver(roce({ opcode: RC_SEND_ONLY, destQp: rc.qpNum }, false, "127.0.0.9"), "127.0.0.9")).toBe("bad_source");
    expect(deliver(roce({ opcode: UD_SEND_ONLY, destQp: ud.qpNum, deth: { qkey: 0x22222222, srcQp: 5 } }))).toBe("bad_qkey");
    expect(deliver(roce({ opcode: UD_SEND_ONLY, destQp: ud.qpNum, deth: { qkey: 0x11111111, srcQp: 5 } }))).toBe("ok");
    const bad = new Uint8Array(roce({ opcode: RC_SEND_ONLY, destQp: rc.qpNum }));
    bad[0] = 0x1f; // an opcode the table does not know
    expect(deliver(bad)).toBe("bad_opcode");
    expect(dev.queryCounters()).toMatchObject({ short: 1, bad_version: 1, unknown_qpn: 1, bad_pkey: 1, bad_qkey: 1, bad_source: 1, rcvd_pkts: 1 });
  });

  it("takes RC/UC packets only on the QP's path: from its peer's address, to its own (rxe's check_addr); the UDP source port is entropy", () => {
    const p = (dst: string, psn: number) => roce({ opcode: RC_SEND_ONLY, destQp: rc.qpNum, dst, psn, ackReq: 0 });
    // to another address of this host (the device's other GID, or any): not this QP's path
    expect(deliver(p("127.0.0.8", 100), "127.0.0.2", "127.0.0.8")).toBe("bad_source");
    expect(dev.queryCounters()).toMatchObject({ bad_source: 1, rcvd_pkts: 0 });
    const q = p("127.0.0.1", 100);
    const from = (srcPort: number) => RX_RESULT_NAMES[dev.port!.receive({ src: "127.0.0.2", dst: "127.0.0.1", srcPort, dstPort: 4791, ipId: 0, payload: q })];
    // the ICRC covers the UDP source port, so the packet must be made for it; any port then passes
    const withPort = roce({ opcode: RC_SEND_ONLY, destQp: rc.qpNum, psn: 100, udpSrcPort: 50123 });
    expect(RX_RESULT_NAMES[dev.port!.receive({ src: "127.0.0.2", dst: "127.0.0.1", srcPort: 50123, dstPort: 4791, ipId: 0, payload: withPort })]).toBe("ok");
    expect(from(4791)).toBe("ok");
    expect(dev.queryCounters()).toMatchObject({ bad_source: 1, rcvd_pkts: 2 });
  });

  it("refuses requests before RTR", () => {
    rc.modify({ qpState: QpState.ERR });
    rc.modify({ qpState: QpState.RESET });
    expect(deliver(roce({ opcode: RC_SEND_ONLY, destQp: rc.qpNum }))).toBe("bad_state");
  });

  it("accepts IPv6", () => {
    const p = roce({ opcode: UD_SEND_ONLY, destQp: ud.qpNum, deth: { qkey: 0x11111111, srcQp: 5 }, payload: new Uint8Array(7) }, true);
    expect(deliver(p, "fd00::2", "fd00::1")).toBe("ok");
  });
});

// UC and UD end to end: two devices on the simulated wire. UC: multi-packet
// SEND and WRITE (with immediate), no ACKs, send completions only once the host
// released the last packet's TX descriptor, a lost packet drops the rest of its
// message and the next message starts clean. UD: SEND ONLY (with immediate)
// through an address handle, DETH Q_Key and source QP, the 40-byte GRH in the
// receive buffer (IPv4 and IPv6), Q_Key mismatch drops, the privileged Q_Key
// bit, the MTU limit. Both over seeded lossy wires: what arrives is intact.
import { describe, expect, it } from "vitest";
import { coreModule } from "../../../host/node/wasm-source.js";
import { SimNetwork } from "../../../host/core/sim/network.js";
import { simClock } from "../../../host/core/sim/link.js";
import { openDeviceWith } from "../../../host/core/verbs/device.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, Mtu, QpType, SendFlags, WcFlags, WcOpcode, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import type { Link, OutgoingDatagram } from "../../../host/core/link/port.js";
import type { SimFaults } from "../../../host/core/sim/wire.js";
import type { Device } from "../../../host/core/verbs/device.js";
import type { QueuePair } from "../../../host/core/verbs/qp.js";
import type { CompletionQueue, WorkCompletion } from "../../../host/core/verbs/cq.js";
import type { MemoryRegion } from "../../../host/core/verbs/mr.js";
import type { ProtectionDomain } from "../../../host/core/verbs/pd.js";

const S = SendFlags.SIGNALED;
const ALL = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ;

/** A link onto the simulated wire that can drop chosen datagrams and hold TX descriptors. */
class TestLink implements Link {
  sent = 0;
  hold = false;
  held: (() => void)[] = [];
  /** datagram index (0-based, per link) → drop it */
  drop: (n: number, opcode: number) => boolean = () => false;
  opcodes: number[] = [];
  constructor(private readonly net: SimNetwork) {}
  send(d: OutgoingDatagram, done: () => void): boolean {
    const payload = new Uint8Array(d.length);
    let at = 0;
    for (const p of d.pieces) {
      payload.set(p, at);
      at += p.length;
    }
    const n = this.sent++;
    this.opcodes.push(payload[0]!);
    if (!this.drop(n, payload[0]!)) {
      this.net.wire.sendOwned({ src: d.src, dst: d.dst, srcPort: d.srcPort, dstPort: d.dstPort, ipId: d.ipId, ttl: d.ttl, tos: d.tos, flowLabel: d.flowLabel, payload });
    }
    if (this.hold) this.held.push(done);
    else done();
    return true;
  }
  release(): void {
    const h = this.held;
    this.held = [];
    for (const f of h) f();
  }
}

interface Side {
  dev: Device;
  pd: ProtectionDomain;
  cq: CompletionQueue;
  qp: QueuePair;
  mr: MemoryRegion;
  link: TestLink;
  gid: string;
}

async function side(net: SimNetwork, addr: string, type: number): Promise<Side> {
  const mod = await coreModule();
  const gid = addr.includes(":") ? addr : `::ffff:${addr}`;
  const dev = await openDeviceWith(mod, { gids: [gid], port: 4791 });
  const link = new TestLink(net);
  const port = dev.attach(link, simClock(net.wire.clock));
  net.wire.attach(addr, 4791, (d) => port.receive(d));
  const pd = dev.allocPd();
  const cq = dev.createCq(1024);
  const qp = pd.createQp({ qpType: type, sendCq: cq, recvCq: cq, cap: { maxSendWr: 256, maxRecvWr: 256, maxSendSge: 4, maxRecvSge: 4 } });
  const mr = pd.regMr(1 << 18, ALL);
  return { dev, pd, cq, qp, mr, link, gid };
}

async function ucPair(faults: SimFaults = {}, seed = 1): Promise<{ net: SimNetwork; a: Side; b: Side }> {
  const net = new SimNetwork({ seed, faults });
  const a = await side(net, "127.0.0.1", QpType.UC);
  const b = await side(net, "127.0.0.2", QpType.UC);
  const o = { pathMtu: Mtu.MTU_1024, qpAccessFlags: ALL };
  connectQp(a.qp, { qpNum: b.qp.qpNum, psn: 0xfffffe, gid: b.gid }, { sqPsn: 0xfffff0, ...o });
  connectQp(b.qp, { qpNum: a.qp.qpNum, psn: 0xfffff0, gid: a.gid }, { sqPsn: 0xfffffe, ...o });
  return { net, a, b };
}

async function udPair(addrA = "127.0.0.1", addrB = "127.0.0.2", faults: SimFaults = {}, seed = 1) {
  const net = new SimNetwork({ seed, faults });
  const a = await side(net, addrA, QpType.UD);
  const b = await side(net, addrB, QpType.UD);
  connectQp(a.qp, undefined, { sqPsn: 100, qkey: 0x11111111 });
  connectQp(b.qp, undefined, { sqPsn: 200, qkey: 0x11111111 });
  const ah = a.pd.createAh({ grh: { dgid: b.gid, sgidIndex: 0, hopLimit: 64 }, portNum: 1 });
  return { net, a, b, ah };
}

function drain(cq: CompletionQueue): WorkCompletion[] {
  const out: WorkCompletion[] = [];
  for (;;) {
    const got = cq.poll(64);
    if (!got.length) return out;
    out.push(...got);
  }
}

/** Message `seq` of `len` bytes: the sequence number in the first 4 bytes, then a pattern derived from it. */
function pattern(seq: number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i * 7 + seq * 13 + (i >> 8)) & 0xff;
  if (len >= 4) new DataView(b.buffer).setUint32(0, seq, true);
  return b;
}

function checkPattern(bytes: Uint8Array): number {
  const seq = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
  expect(Array.from(bytes)).toEqual(Array.from(pattern(seq, bytes.length)));
  return seq;
}

const MSG = 4096; // buffer stride per message in the MRs

describe("UC end to end", () => {
  it("multi-packet SEND, WRITE with immediate, SEND with immediate, WRITE: no ACKs, every byte in place", async () => {
    const { net, a, b } = await ucPair();
    a.mr.bytes.set(pattern(1, 3000), 0);
    a.mr.bytes.set(pattern(2, 2500), MSG);
    a.mr.bytes.set(pattern(3, 100), 2 * MSG);
    a.mr.bytes.set(pattern(4, 5000), 3 * MSG);
    for (let i = 0; i < 3; i++) b.qp.postRecv({ wrId: BigInt(10 + i), sgList: [b.mr.sge(i * MSG, MSG)] });
    const remote = (off: number) => ({ remoteAddr: b.mr.addr + BigInt(off), rkey: b.mr.rkey });
    a.qp.postSend({ wrId: 1n, opcode: WrOpcode.SEND, sendFlags: S, sgList: [a.mr.sge(0, 1000), a.mr.sge(1000, 2000)] });
    a.qp.postSend({ wrId: 2n, opcode: WrOpcode.RDMA_WRITE_WITH_IMM, sendFlags: S, immData: 0x12345678, sgList: [a.mr.sge(MSG, 2500)], rdma: remote(8 * MSG) });
    a.qp.postSend({ wrId: 3n, opcode: WrOpcode.SEND_WITH_IMM, sendFlags: S, immData: 0xabcdef01, sgList: [a.mr.sge(2 * MSG, 100)] });
    a.qp.postSend({ wrId: 4n, opcode: WrOpcode.RDMA_WRITE, sendFlags: S, sgList: [a.mr.sge(3 * MSG, 5000)], rdma: remote(10 * MSG) });
    net.run();
    const sc = drain(a.cq);
    expect(sc.map((c) => [c.wrId, c.status, c.opcode, c.byteLen])).toEqual([
      [1n, WcStatus.SUCCESS, WcOpcode.SEND, 3000],
      [2n, WcStatus.SUCCESS, WcOpcode.RDMA_WRITE, 2500],
      [3n, WcStatus.SUCCESS, WcOpcode.SEND, 100],
      [4n, WcStatus.SUCCESS, WcOpcode.RDMA_WRITE, 5000],
    ]);
    const rc = drain(b.cq);
    expect(rc.map((c) => [c.wrId, c.status, c.opcode, c.byteLen, c.srcQp, c.wcFlags])).toEqual([
      [10n, WcStatus.SUCCESS, WcOpcode.RECV, 3000, a.qp.qpNum, WcFlags.GRH],
      [11n, WcStatus.SUCCESS, WcOpcode.RECV_RDMA_WITH_IMM, 2500, a.qp.qpNum, WcFlags.GRH | WcFlags.WITH_IMM],
      [12n, WcStatus.SUCCESS, WcOpcode.RECV, 100, a.qp.qpNum, WcFlags.GRH | WcFlags.WITH_IMM],
    ]);
    expect(rc[2]!.immData).toBe(0xabcdef01);
    expect(checkPattern(b.mr.bytes.subarray(2 * MSG, 2 * MSG + 100))).toBe(3);
    expect(rc[1]!.immData).toBe(0x12345678);
    expect(checkPattern(b.mr.bytes.subarray(0, 3000))).toBe(1);
    expect(checkPattern(b.mr.bytes.subarray(8 * MSG, 8 * MSG + 2500))).toBe(2);
    expect(checkPattern(b.mr.bytes.subarray(10 * MSG, 10 * MSG + 5000))).toBe(4);
    // nothing travels back: UC has no ACKs
    expect(b.link.sent).toBe(0);
    // UC opcodes 0x20..: SEND F/M/L, WRITE F/M/L-IMM, SEND ONLY IMM, WRITE F/M/M/M/L
    expect(a.link.opcodes).toEqual([0x20, 0x21, 0x22, 0x26, 0x27, 0x29, 0x25, 0x26, 0x27, 0x27, 0x27, 0x28]);
  });

  it("a send completes only when the host released the TX descriptor of its last packet", async () => {
    const { net, a, b } = await ucPair();
    a.mr.bytes.set(pattern(5, 2100), 0);
    b.qp.postRecv({ wrId: 1n, sgList: [b.mr.sge(0, MSG)] });
    a.link.hold = true;
    a.qp.postSend({ wrId: 7n, opcode: WrOpcode.SEND, sendFlags: S, sgList: [a.mr.sge(0, 2100)] });
    net.run();
    expect(a.link.held.length).toBe(3);
    expect(drain(b.cq).map((c) => [c.wrId, c.status, c.byteLen])).toEqual([[1n, WcStatus.SUCCESS, 2100]]);
    expect(drain(a.cq)).toEqual([]); // sent, but the descriptors are still the host's
    const last = a.link.held.pop()!;
    a.link.release(); // the first two packets: still nothing
    expect(drain(a.cq)).toEqual([]);
    last();
    expect(drain(a.cq).map((c) => [c.wrId, c.status, c.opcode, c.byteLen])).toEqual([[7n, WcStatus.SUCCESS, WcOpcode.SEND, 2100]]);
  });

  it("a lost MIDDLE or LAST drops the rest of its message silently; the next FIRST/ONLY starts clean", async () => {
    const { net, a, b } = await ucPair();
    // messages (packets): M1 3000 (0-2), M2 3000 (3-5), M3 500 (6), M4 2500 (7-9), M5 WRITE_IMM 2500 (10-12), M6 300 (13)
    const sizes = [3000, 3000, 500, 2500, 2500, 300];
    sizes.forEach((n, i) => a.mr.bytes.set(pattern(i + 1, n), i * MSG));
    a.link.drop = (n) => n === 1 || n === 5 || n === 11; // M1 MIDDLE, M2 LAST, M5 MIDDLE
    for (let i = 0; i < 6; i++) b.qp.postRecv({ wrId: BigInt(100 + i), sgList: [b.mr.sge(i * MSG, MSG)] });
    const wr = (i: number) => ({ wrId: BigInt(i + 1), sendFlags: S, sgList: [a.mr.sge(i * MSG, sizes[i]!)] });
    for (let i = 0; i < 4; i++) a.qp.postSend({ ...wr(i), opcode: WrOpcode.SEND });
    a.qp.postSend({ ...wr(4), opcode: WrOpcode.RDMA_WRITE_WITH_IMM, immData: 5, rdma: { remoteAddr: b.mr.addr + BigInt(20 * MSG), rkey: b.mr.rkey } });
    a.qp.postSend({ ...wr(5), opcode: WrOpcode.SEND });
    net.run();
    // the sender knows nothing of the losses
    expect(drain(a.cq).map((c) => [c.wrId, c.status])).toEqual([1, 2, 3, 4, 5, 6].map((i) => [BigInt(i), WcStatus.SUCCESS]));
    // M1 and M2 started in WQE 100 and were dropped; M3 restarts it from the beginning
    const rc = drain(b.cq);
    expect(rc.map((c) => [c.wrId, c.status, c.opcode, c.byteLen])).toEqual([
      [100n, WcStatus.SUCCESS, WcOpcode.RECV, 500],
      [101n, WcStatus.SUCCESS, WcOpcode.RECV, 2500],
      [102n, WcStatus.SUCCESS, WcOpcode.RECV, 300],
    ]);
    expect(checkPattern(b.mr.bytes.subarray(0, 500))).toBe(3);
    expect(checkPattern(b.mr.bytes.subarray(MSG, MSG + 2500))).toBe(4);
    expect(checkPattern(b.mr.bytes.subarray(2 * MSG, 2 * MSG + 300))).toBe(6);
    // the partial WRITE left its first packet in memory and completed nothing
    expect(Array.from(b.mr.bytes.subarray(20 * MSG, 20 * MSG + 1024))).toEqual(Array.from(pattern(5, 2500).subarray(0, 1024)));
    expect(b.mr.bytes.subarray(20 * MSG + 1024, 20 * MSG + 2048).every((x) => x === 0)).toBe(true);
    expect(b.dev.queryCounters().out_of_seq_request).toBe(2); // M1 LAST and M5 LAST came after a gap (M3 ONLY starts clean)
  });

  for (const seed of [1, 2, 3, 4, 5]) {
    it(`lossy, duplicating, reordering, corrupting wire (seed ${seed}): what completes is whole and right, the rest is lost`, async () => {
      const { net, a, b } = await ucPair({ loss: 0.05, dup: 0.05, reorder: 0.05, corrupt: 0.02, delayUs: 5 }, seed);
      const N = 60;
      const size = (i: number) => 100 + ((i * 997) % 3500);
      for (let i = 0; i < N; i++) a.mr.bytes.set(pattern(i, size(i)), i * MSG);
      for (let i = 0; i < 64; i++) b.qp.postRecv({ wrId: BigInt(i), sgList: [b.mr.sge(i * MSG, MSG)] });
      for (let i = 0; i < N; i++) a.qp.postSend({ wrId: BigInt(i), opcode: WrOpcode.SEND, sendFlags: S, sgList: [a.mr.sge(i * MSG, size(i))] });
      net.run();
      const sc = drain(a.cq);
      expect(sc.length).toBe(N);
      expect(sc.every((c) => c.status === WcStatus.SUCCESS)).toBe(true);
      const rc = drain(b.cq);
      expect(rc.length).toBeGreaterThan(N / 2);
      expect(rc.length).toBeLessThan(N + 10);
      for (const c of rc) {
        expect(c.status).toBe(WcStatus.SUCCESS);
        const off = Number(c.wrId) * MSG;
        const seq = checkPattern(b.mr.bytes.subarray(off, off + c.byteLen));
        expect(c.byteLen).toBe(size(seq));
      }
    });
  }
});

function ipv4Checksum(h: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += (h[i]! << 8) | h[i + 1]!;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return sum;
}

describe("UD end to end", () => {
  it("SEND ONLY and SEND ONLY with immediate through an AH: GRH (IPv4) then the payload, src_qp, sender GID", async () => {
    const { net, a, b, ah } = await udPair();
    a.mr.bytes.set(pattern(1, 1000), 0);
    a.mr.bytes.set(pattern(2, 13), MSG);
    b.qp.postRecv({ wrId: 1n, sgList: [b.mr.sge(0, 1040)] });
    b.qp.postRecv({ wrId: 2n, sgList: [b.mr.sge(MSG, 20), b.mr.sge(2 * MSG, 100)] });
    a.qp.postSend({ wrId: 11n, opcode: WrOpcode.SEND, sendFlags: S, sgList: [a.mr.sge(0, 1000)], ud: { ah, remoteQpn: b.qp.qpNum, remoteQkey: 0x11111111 } });
    a.qp.postSend({ wrId: 12n, opcode: WrOpcode.SEND_WITH_IMM, sendFlags: S, immData: 0xfeedbeef, sgList: [a.mr.sge(MSG, 13)], ud: { ah, remoteQpn: b.qp.qpNum, remoteQkey: 0x11111111 } });
    net.run();
    expect(drain(a.cq).map((c) => [c.wrId, c.status, c.opcode, c.byteLen])).toEqual([
      [11n, WcStatus.SUCCESS, WcOpcode.SEND, 1000],
      [12n, WcStatus.SUCCESS, WcOpcode.SEND, 13],
    ]);
    expect(a.link.opcodes).toEqual([0x64, 0x65]);
    const rc = drain(b.cq);
    expect(rc.map((c) => [c.wrId, c.status, c.opcode, c.byteLen, c.srcQp, c.wcFlags, c.qpNum])).toEqual([
      [1n, WcStatus.SUCCESS, WcOpcode.RECV, 1040, a.qp.qpNum, WcFlags.GRH, b.qp.qpNum],
      [2n, WcStatus.SUCCESS, WcOpcode.RECV, 53, a.qp.qpNum, WcFlags.GRH | WcFlags.WITH_IMM, b.qp.qpNum],
    ]);
    expect(rc[1]!.immData).toBe(0xfeedbeef);
    expect(Array.from(rc[0]!.sgid!)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]);
    // GRH as rxe fills it for RoCEv2 over IPv4: 20 zero bytes, then the IPv4 header
    const g = b.mr.bytes.subarray(0, 40);
    expect(g.subarray(0, 20).every((x) => x === 0)).toBe(true);
    const udpPayload = 12 + 8 + 1000 + 4; // BTH DETH payload ICRC
    const h = g.subarray(20, 40);
    expect(Array.from(h.subarray(0, 4))).toEqual([0x45, 0, (20 + 8 + udpPayload) >> 8, (20 + 8 + udpPayload) & 0xff]);
    expect(Array.from(h.subarray(4, 10))).toEqual([0, 0, 0x40, 0, 64, 17]); // ID 0 (softroce sends 0), DF, TTL 64, UDP
    expect(ipv4Checksum(h)).toBe(0xffff);
    expect(Array.from(h.subarray(12, 20))).toEqual([127, 0, 0, 1, 127, 0, 0, 2]);
    expect(checkPattern(b.mr.bytes.subarray(40, 1040))).toBe(1);
    // the second: GRH over the first SGE (20 bytes) and into the second, then 13 bytes
    expect(b.mr.bytes.subarray(MSG, MSG + 20).every((x) => x === 0)).toBe(true);
    expect(b.mr.bytes[2 * MSG]).toBe(0x45);
    expect(checkPattern(b.mr.bytes.subarray(2 * MSG + 20, 2 * MSG + 33))).toBe(2);
  });

  it("over IPv6 the GRH is the IPv6 header", async () => {
    const { net, a, b, ah } = await udPair("fd00::1", "fd00::2");
    a.mr.bytes.set(pattern(9, 256), 0);
    b.qp.postRecv({ wrId: 1n, sgList: [b.mr.sge(0, 296)] });
    a.qp.postSend({ wrId: 1n, opcode: WrOpcode.SEND, sendFlags: S, sgList: [a.mr.sge(0, 256)], ud: { ah, remoteQpn: b.qp.qpNum, remoteQkey: 0x11111111 } });
    net.run();
    const rc = drain(b.cq);
    expect(rc.map((c) => [c.status, c.byteLen, c.srcQp])).toEqual([[WcStatus.SUCCESS, 296, a.qp.qpNum]]);
    const g = b.mr.bytes.subarray(0, 40);
    const plen = 8 + 12 + 8 + 256 + 4;
    expect(Array.from(g.subarray(0, 8))).toEqual([0x60, 0, 0, 0, plen >> 8, plen & 0xff, 17, 64]);
    expect(Array.from(g.subarray(8, 24))).toEqual([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    expect(Array.from(g.subarray(24, 40))).toEqual([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    expect(checkPattern(b.mr.bytes.subarray(40, 296))).toBe(9);
  });

  it("Q_Key: a mismatch is dropped and counted; bit 31 in the WR means the sending QP's own Q_Key", async () => {
    const { net, a, b, ah } = await udPair();
    a.mr.bytes.set(pattern(3, 64), 0);
    for (let i = 0; i < 3; i++) b.qp.postRecv({ wrId: BigInt(i), sgList: [b.mr.sge(i * MSG, MSG)] });
    const send = (id: bigint, qkey: number) =>
      a.qp.postSend({ wrId: id, opcode: WrOpcode.SEND, sendFlags: S, sgList: [a.mr.sge(0, 64)], ud: { ah, remoteQpn: b.qp.qpNum, remoteQkey: qkey } });
    send(1n, 0x22222222);
    send(2n, 0x80000000); // privileged bit: use a's qkey 0x11111111
    send(3n, 0x11111111);
    net.run();
    expect(drain(a.cq).map((c) => [c.wrId, c.status])).toEqual([[1n, 0], [2n, 0], [3n, 0]]);
    const rc = drain(b.cq);
    expect(rc.map((c) => [c.wrId, c.status, c.byteLen])).toEqual([[0n, 0, 104], [1n, 0, 104]]);
    expect(b.dev.queryCounters().bad_qkey).toBe(1);
  });

  it("a datagram larger than the port MTU fails; one without a receive WQE or too large for it is dropped", async () => {
    const { net, a, b, ah } = await udPair();
    a.mr.bytes.set(pattern(4, 1024), 0);
    const ud = { ah, remoteQpn: b.qp.qpNum, remoteQkey: 0x11111111 };
    a.qp.postSend({ wrId: 1n, opcode: WrOpcode.SEND, sendFlags: S, sgList: [a.mr.sge(0, 1024)], ud }); // no receive WQE yet
    net.run();
    expect(drain(b.cq)).toEqual([]);
    b.qp.postRecv({ wrId: 5n, sgList: [b.mr.sge(0, 1000)] }); // too small for 1024 + 40
    a.qp.postSend({ wrId: 2n, opcode: WrOpcode.SEND, sendFlags: S, sgList: [a.mr.sge(0, 1024)], ud });
    net.run();
    expect(drain(b.cq)).toEqual([]);
    a.qp.postSend({ wrId: 3n, opcode: WrOpcode.SEND, sendFlags: S, sgList: [a.mr.sge(0, 960)], ud }); // fits the same WQE
    net.run();
    expect(drain(b.cq).map((c) => [c.wrId, c.status, c.byteLen])).toEqual([[5n, 0, 1000]]);
    expect(drain(a.cq).map((c) => [c.wrId, c.status])).toEqual([[1n, 0], [2n, 0], [3n, 0]]);
    a.qp.postSend({ wrId: 4n, opcode: WrOpcode.SEND, sendFlags: S, sgList: [a.mr.sge(0, 1025)], ud }); // active MTU 1024
    net.run();
    expect(drain(a.cq).map((c) => [c.wrId, c.status])).toEqual([[4n, WcStatus.LOC_LEN_ERR]]);
    expect(a.link.opcodes.length).toBe(3);
  });

  for (const seed of [1, 2, 3]) {
    it(`lossy, duplicating, reordering, corrupting wire (seed ${seed}): datagrams are lost or duplicated, never damaged`, async () => {
      const { net, a, b, ah } = await udPair("127.0.0.1", "127.0.0.2", { loss: 0.1, dup: 0.05, reorder: 0.1, corrupt: 0.05, delayUs: 5 }, seed);
      const N = 100;
      const size = (i: number) => 4 + ((i * 389) % 1020);
      for (let i = 0; i < N; i++) a.mr.bytes.set(pattern(i, size(i)), i * 1024);
      for (let i = 0; i < 128; i++) b.qp.postRecv({ wrId: BigInt(i), sgList: [b.mr.sge(i * 2048, 1064)] });
      for (let i = 0; i < N; i++) {
        a.qp.postSend({ wrId: BigInt(i), opcode: WrOpcode.SEND, sendFlags: S, sgList: [a.mr.sge(i * 1024, size(i))], ud: { ah, remoteQpn: b.qp.qpNum, remoteQkey: 0x11111111 } });
      }
      net.run();
      expect(drain(a.cq).filter((c) => c.status === WcStatus.SUCCESS).length).toBe(N);
      const rc = drain(b.cq);
      expect(rc.length).toBeGreaterThan(N / 2);
      expect(rc.length).toBeLessThanOrEqual(net.wire.stats.delivered);
      const seen = new Set<number>();
      for (const c of rc) {
        expect(c.status).toBe(WcStatus.SUCCESS);
        const off = Number(c.wrId) * 2048;
        const seq = checkPattern(b.mr.bytes.subarray(off + 40, off + c.byteLen));
        expect(c.byteLen).toBe(size(seq) + 40);
        seen.add(seq);
      }
      expect(seen.size).toBeLessThan(N); // some were lost (10 % of 100)
    });
  }
});

describe("UC/UD memory", () => {
  it("linear memory does not grow over thousands of UC and UD messages", async () => {
    const uc = await ucPair({ loss: 0.02 }, 3);
    const ud = await udPair("127.0.0.3", "127.0.0.4", { loss: 0.02 }, 3);
    const devs = [uc.a.dev, uc.b.dev, ud.a.dev, ud.b.dev];
    const before = devs.map((d) => d.memory.buffer.byteLength);
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 100; i++) {
        uc.b.qp.postRecv({ wrId: BigInt(i), sgList: [uc.b.mr.sge(0, MSG)] });
        ud.b.qp.postRecv({ wrId: BigInt(i), sgList: [ud.b.mr.sge(0, 1064)] });
      }
      for (let i = 0; i < 100; i++) {
        uc.a.qp.postSend({ wrId: BigInt(i), opcode: i & 1 ? WrOpcode.SEND : WrOpcode.RDMA_WRITE_WITH_IMM, sendFlags: S, immData: i, sgList: [uc.a.mr.sge(0, 2500)], rdma: { remoteAddr: uc.b.mr.addr + BigInt(MSG), rkey: uc.b.mr.rkey } });
        ud.a.qp.postSend({ wrId: BigInt(i), opcode: WrOpcode.SEND, sendFlags: S, sgList: [ud.a.mr.sge(0, 1000)], ud: { ah: ud.ah, remoteQpn: ud.b.qp.qpNum, remoteQkey: 0x11111111 } });
        if ((i & 15) === 15) (uc.net.run(), ud.net.run());
      }
      uc.net.run();
      ud.net.run();
      expect(drain(uc.a.cq).length).toBe(100);
      expect(drain(ud.a.cq).length).toBe(100);
      drain(uc.b.cq);
      drain(ud.b.cq);
      // what a lost message left posted is taken by the next round's first messages
    }
    expect(devs.map((d) => d.memory.buffer.byteLength)).toEqual(before);
  });
});

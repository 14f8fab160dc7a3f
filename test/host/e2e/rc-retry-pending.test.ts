// A retransmission timeout whose retry the requester cannot start yet (the TX ring is full behind
// a blocked link, as when a loaded host's socket buffer is full) must not make the device deaf:
// the ACKs that arrive meanwhile still complete what they acknowledge. rxe keeps such responses
// queued until the requester has rewound; we process them at once (see completerRecv). Before
// this, they were dropped, every further timeout used up retry_cnt, and a loaded sender ended in
// RETRY_EXC_ERR although every ACK arrived (seen in the worker stress at load 12-18).
import { expect, it } from "vitest";
import { coreModule } from "../../../host/node/wasm-source.js";
import { WireCodec } from "../../../host/core/wire/codec.js";
import { SimNetwork } from "../../../host/core/sim/network.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, Mtu, QpType, SendFlags, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";

const PEER_QPN = 0x99;
const ACK = 0x1f;
const T10 = 4.096 * 1024; // timeout 10

async function bench() {
  const mod = await coreModule();
  const codec = await WireCodec.create(mod);
  const net = new SimNetwork({ trace: true });
  const dev = await net.addDevice(mod, "127.0.0.1", { txRingSize: 4 });
  const pd = dev.allocPd();
  const cq = dev.createCq(64);
  const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 32, maxRecvWr: 4, maxSendSge: 1, maxRecvSge: 1 } });
  connectQp(qp, { qpNum: PEER_QPN, psn: 0x500, gid: "::ffff:127.0.0.2" }, { sqPsn: 0x10, pathMtu: Mtu.MTU_1024, timeout: 10, retryCnt: 1 });
  const mr = pd.regMr(1 << 16, Access.LOCAL_WRITE);
  // the link: open, or refusing everything (the port stops, its TX ring fills)
  const port = dev.port! as unknown as { link: { sendRing(first: number, count: number): number }; resume(): void };
  const link = port.link;
  const sendRing = link.sendRing.bind(link);
  const gate = { open: true };
  link.sendRing = (first, count) => (gate.open ? sendRing(first, count) : 0);
  let seen = 0;
  const sent = () => {
    const trace = net.wire.trace!;
    const psns: number[] = [];
    for (; seen < trace.length; seen++) {
      const r = codec.parseDatagram(trace[seen]!.datagram);
      if (r.ok) psns.push(r.repr.psn);
    }
    return psns;
  };
  const ack = (psn: number) =>
    dev.port!.receive({
      src: "127.0.0.2", dst: "127.0.0.1", srcPort: 0xc000, dstPort: 4791, ipId: 0,
      payload: codec.emit({ ipVersion: 4, src: "127.0.0.2", dst: "127.0.0.1", udpSrcPort: 0xc000, udpDstPort: 4791, destQp: qp.qpNum, opcode: 0x11, psn, aeth: { syndrome: ACK, msn: 0 } } as never).subarray(28),
    });
  const advance = (us: number) => {
    const target = net.now + us;
    net.run(target);
    if (net.wire.clock.now < target) net.wire.clock.now = target;
  };
  const write = (i: number) => ({ wrId: BigInt(i), opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, rdma: { remoteAddr: 0n, rkey: 9 }, sgList: [mr.sge(0, 512)] });
  return { dev, qp, cq, gate, port, sent, ack, advance, write, counters: () => dev.queryCounters() };
}

it("ACKs that arrive while a timeout's retry waits for TX room complete their WQEs; nothing runs out of retries", async () => {
  const b = await bench();
  b.qp.postSend([0, 1, 2, 3].map(b.write));
  expect(b.sent()).toEqual([0x10, 0x11, 0x12, 0x13]);
  b.gate.open = false;
  b.qp.postSend([4, 5, 6, 7].map(b.write)); // they fill the TX ring: the link takes nothing
  expect(b.sent()).toEqual([]);
  b.advance(T10 * 1.5); // the retransmission timer fires: a retry is due, the ring has no room for it
  expect(b.counters()).toMatchObject({ completer_retry_err: 1 });
  // the peer's ACK of the first four (sent before the timeout, late on a loaded host)
  expect(b.ack(0x13)).toBe(0);
  expect(b.cq.poll(16).map((w) => [w.wrId, w.status])).toEqual([0n, 1n, 2n, 3n].map((id) => [id, WcStatus.SUCCESS]));
  // the link takes datagrams again: the queued four go out, acknowledged; no retry_cnt ran out
  b.gate.open = true;
  b.port.resume();
  b.advance(10);
  const out = b.sent();
  expect(out.slice(0, 4)).toEqual([0x14, 0x15, 0x16, 0x17]);
  b.ack(0x17);
  expect(b.cq.poll(16).map((w) => [w.wrId, w.status])).toEqual([4n, 5n, 6n, 7n].map((id) => [id, WcStatus.SUCCESS]));
  b.advance(T10 * 4);
  expect(b.cq.poll(16)).toEqual([]);
  expect(b.qp.state).toBe(3); // RTS
});

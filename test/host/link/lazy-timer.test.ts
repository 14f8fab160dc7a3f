// The port's platform timer is armed for the device's next deadline only when that is earlier than
// the one armed (PacketPort.armTimer): a ping-pong, whose every request pushes the ACK timeout out and
// whose every ACK clears it, arms one timer, not one per message; the armed timer firing before the
// real deadline ticks nothing due and re-arms for it, so a retransmission still happens at its own
// deadline; while nothing is due the armed timer keeps no process alive (Clock.holdTimer).
// `eagerTimer` (the way before, kept for side-by-side benches) re-arms on every move.
import { describe, expect, it } from "vitest";
import { coreModule } from "../../../host/node/wasm-source.js";
import { WireCodec } from "../../../host/core/wire/codec.js";
import { SimNetwork } from "../../../host/core/sim/network.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, Mtu, QpType, SendFlags, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import type { Clock, PacketPort } from "../../../host/core/link/index.js";
import { realClock } from "../../../host/core/link/real-clock.js";

const PEER_QPN = 0x99;
const ACK = 0x1f;
const T10 = 4.096 * 1024; // ACK timeout 10, µs

/** A device on the simulated wire, one RC QP toward a scripted peer whose ACKs are made here; its port's clock counted. */
async function bench(eager: boolean, timeout2?: number) {
  const mod = await coreModule();
  const codec = await WireCodec.create(mod);
  const net = new SimNetwork({ trace: true });
  const dev = await net.addDevice(mod, "127.0.12.1");
  const port = dev.port! as PacketPort;
  port.eagerTimer = eager;
  const inner = (port as unknown as { clock: Clock }).clock;
  const count = { set: 0, clear: 0, hold: [] as boolean[] };
  (port as unknown as { clock: Clock }).clock = {
    now: () => inner.now(),
    setTimer: (at, fn) => (count.set++, inner.setTimer(at, fn)),
    clearTimer: (t) => (count.clear++, inner.clearTimer(t)),
    holdTimer: (_t, hold) => void count.hold.push(hold),
  };
  const pd = dev.allocPd();
  const cq = dev.createCq(64);
  const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 8, maxRecvWr: 4, maxSendSge: 1, maxRecvSge: 1 } });
  connectQp(qp, { qpNum: PEER_QPN, psn: 0x500, gid: "::ffff:127.0.12.2" }, { sqPsn: 0x10, pathMtu: Mtu.MTU_1024, timeout: 10, retryCnt: 3 });
  const mr = pd.regMr(4096, Access.LOCAL_WRITE);
  // a second QP (PSNs from 0x80) with another ACK timeout exponent, when asked for
  const qp2 = timeout2 === undefined ? undefined : pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 8, maxRecvWr: 4, maxSendSge: 1, maxRecvSge: 1 } });
  if (qp2) connectQp(qp2, { qpNum: PEER_QPN + 1, psn: 0x600, gid: "::ffff:127.0.12.2" }, { sqPsn: 0x80, pathMtu: Mtu.MTU_1024, timeout: timeout2, retryCnt: 3 });
  const ack = (psn: number) =>
    port.receive({
      src: "127.0.12.2", dst: "127.0.12.1", srcPort: 0xc000, dstPort: 4791, ipId: 0,
      payload: codec.emit({ ipVersion: 4, src: "127.0.12.2", dst: "127.0.12.1", udpSrcPort: 0xc000, udpDstPort: 4791, destQp: qp.qpNum, opcode: 0x11, psn, aeth: { syndrome: ACK, msn: 0 } } as never).subarray(28),
    });
  const sentPsns = () => net.wire.trace!.map((t) => codec.parseDatagram(t.datagram)).flatMap((r) => (r.ok ? [r.repr.psn] : []));
  const advance = (us: number) => {
    const target = net.now + us;
    net.run(target);
    if (net.wire.clock.now < target) net.wire.clock.now = target;
  };
  const write = { wrId: 1n, opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, rdma: { remoteAddr: 0n, rkey: 9 }, sgList: [mr.sge(0, 512)] };
  const completions = () => cq.poll(64).map((w) => w.status);
  return { port, qp, qp2, write, ack, advance, sentPsns, completions, count };
}

describe("PacketPort's lazy timer", () => {
  it("a ping-pong of 20 requests, each acknowledged, arms one platform timer (eager: one per request)", async () => {
    for (const eager of [false, true]) {
      const b = await bench(eager);
      for (let i = 0; i < 20; i++) {
        b.qp.postSend(b.write);
        b.advance(10);
        b.ack(0x10 + i);
        b.advance(10);
      }
      expect(b.completions()).toEqual(new Array(20).fill(WcStatus.SUCCESS));
      expect(b.sentPsns()).toEqual(Array.from({ length: 20 }, (_, i) => 0x10 + i)); // nothing retransmitted
      if (eager) {
        expect(b.count.set).toBe(20);
        expect(b.count.clear).toBe(20);
        expect(b.count.hold).toEqual([]);
      } else {
        expect(b.count.set).toBe(1);
        expect(b.count.clear).toBe(0);
        // nothing due after each ACK: the armed timer lets the process go; due again at each request
        expect(b.count.hold).toEqual([false, ...new Array(19).fill(0).flatMap(() => [true, false])]);
      }
    }
  });

  it("the armed timer fires before a later request's deadline: nothing retransmitted then, the request retransmitted at its own", async () => {
    const b = await bench(false);
    b.qp.postSend(b.write); // deadline T10
    b.advance(T10 * 0.5);
    b.ack(0x10);
    b.advance(T10 * 0.4);
    b.qp.postSend(b.write); // deadline 1.9 x T10; its ACK never comes
    expect(b.count.set).toBe(1); // the armed timer (at T10) stays
    b.advance(T10 * 0.5); // past T10: the timer fires, nothing is due
    expect(b.sentPsns()).toEqual([0x10, 0x11]);
    expect(b.count.set).toBe(2); // re-armed for 1.9 x T10
    b.advance(T10 * 0.45); // 1.85 x T10
    expect(b.sentPsns()).toEqual([0x10, 0x11]);
    b.advance(T10 * 0.1); // 1.95 x T10
    expect(b.sentPsns()).toEqual([0x10, 0x11, 0x11]);
    b.ack(0x11);
    expect(b.completions()).toEqual([WcStatus.SUCCESS, WcStatus.SUCCESS]);
  });

  it("an earlier deadline re-arms at once", async () => {
    const b = await bench(false, 8); // the second QP's ACK timeout: T10 / 4
    b.qp.postSend(b.write); // deadline T10, armed
    b.advance(10);
    expect(b.count.set).toBe(1);
    b.qp2!.postSend(b.write); // deadline T10 / 4: earlier, re-armed
    expect(b.count.set).toBe(2);
    expect(b.count.clear).toBe(1);
    b.advance(T10 / 4 + 100);
    expect(b.sentPsns()).toEqual([0x10, 0x80, 0x80]);
  });
});

describe("realClock.holdTimer", () => {
  it("unrefs and refs Node's timer", () => {
    const t = realClock.setTimer(realClock.now() + 60e6, () => {}) as NodeJS.Timeout;
    try {
      expect(t.hasRef()).toBe(true);
      realClock.holdTimer!(t, false);
      expect(t.hasRef()).toBe(false);
      realClock.holdTimer!(t, true);
      expect(t.hasRef()).toBe(true);
    } finally {
      realClock.clearTimer(t);
    }
  });
});

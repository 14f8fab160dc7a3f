// The port's platform timer is armed for the device's next deadline only when that is earlier than
// the one armed (PacketPort.armTimer): a ping-pong, whose every request pushes the ACK timeout out and
// whose every ACK clears it, arms one timer, not one per message; the armed timer firing before the
// real deadline ticks nothing due and re-arms for it, so a retransmission still happens at its own
// deadline; while nothing is due the armed timer keeps no process alive (Clock.holdTimer).
// `eagerTimer` (the way before, kept for side-by-side benches) re-arms on every move.
import { describe, expect, it } from "vitest";
import { WcStatus } from "../../../host/core/verbs/enums.js";
import type { Clock, PacketPort } from "../../../host/core/link/index.js";
import { realClock } from "../../../host/core/link/real-clock.js";
import { scriptedPeer, T10 } from "../support/scripted-peer.js";

/** A device whose RC QP talks to a scripted peer (scripted-peer.ts), its port's clock calls counted. */
async function bench(eager: boolean, timeout2?: number) {
  const b = await scriptedPeer("127.0.12.1", "127.0.12.2", { timeout2 });
  const port = b.dev.port! as PacketPort;
  port.eagerTimer = eager;
  const inner = (port as unknown as { clock: Clock }).clock;
  const count = { set: 0, clear: 0, hold: [] as boolean[] };
  (port as unknown as { clock: Clock }).clock = {
    now: () => inner.now(),
    setTimer: (at, fn) => (count.set++, inner.setTimer(at, fn)),
    clearTimer: (t) => (count.clear++, inner.clearTimer(t)),
    holdTimer: (_t, hold) => void count.hold.push(hold),
  };
  const completions = () => b.cq.poll(64).map((w) => w.status);
  return { ...b, completions, count };
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

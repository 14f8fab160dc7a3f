// openDevice({ worker: true, workerAckHold: true }): a received batch's plain ACKs wait in the
// worker for the application's answer (its next send queue doorbell) and leave with it in one
// send; when the application answers nothing they leave once its turn is over (or after 1 ms).
// Every completion still arrives: ping-pongs with and without an answer, counted in the worker's
// figures (workerStatsOf: ackHolds, ackHoldsJoined). Loopback UDP on 127.0.10.x.
import { afterEach, describe, expect, it } from "vitest";
import { udpLinkOf } from "../../../host/node/index.js";
import { NativeUdpLink } from "../../../host/node/native-link.js";
import { Access, SendFlags, WcOpcode, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import type { Device } from "../../../host/core/verbs/device.js";
import { connectRcEnds, echoSends, openRcEnd } from "../support/rc-end.js";
import { LOST_WAKE_CHECK_MS, W, workerSessionOf, workerStatsOf } from "../../../host/core/worker/index.js";

/** How often this thread wrote its watch list (the list's sequence word: +2 per publish), and whether the worker reads it. */
function watchList(d: Device): { publishes: number; used: number } {
  const c = workerSessionOf(d)!.control;
  return { publishes: Atomics.load(c.i32, c.watchBase) >> 1, used: c.load(W.WATCH_USED) };
}

const ACCESS = Access.LOCAL_WRITE | Access.REMOTE_WRITE;
const opened: Device[] = [];
afterEach(() => {
  while (opened.length) opened.pop()!.close();
});

function end(address: string, worker: boolean, workerAckHold?: boolean) {
  return openRcEnd(address, { worker, workerAckHold }, ACCESS, { opened });
}

async function pair(a: string, b: string, workerAckHold: boolean) {
  const A = await end(a, true, workerAckHold);
  const B = await end(b, false);
  // the peer answers a ping with its ACK and the echo in one send, as it did before lone batches sent
  // their ACK at once (PacketPort.receiveBatch's `more`): each echo then wakes A's application thread
  // once, with the echo's completion, while A's worker holds the echo's ACK
  const lb = udpLinkOf(B.d);
  if (lb instanceof NativeUdpLink) lb.holdEveryBatch = true;
  connectRcEnds(A, B, ACCESS);
  return { A, B };
}

async function pings(A: Awaited<ReturnType<typeof end>>, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    A.qp.postRecv({ wrId: 7n, sgList: [A.mr.sge(4096, 64)] });
    A.mr.bytes[0] = i & 0xff;
    A.qp.postSend({ wrId: BigInt(i), opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [A.mr.sge(0, 64)] });
    const got = [await A.cq.next(), await A.cq.next()];
    for (const wc of got) expect(wc.status).toBe(WcStatus.SUCCESS);
    expect(got.map((w) => w.opcode).sort()).toEqual([WcOpcode.SEND, WcOpcode.RECV].sort());
    expect(A.mr.bytes[4096]).toBe(i & 0xff);
  }
}

describe("held ACKs in the device worker (workerAckHold)", () => {
  it("a ping-pong: the echo's ACK waits for the next ping and leaves with it", async () => {
    const { A, B } = await pair("127.0.10.111", "127.0.10.112", true);
    echoSends(B);
    const before = workerStatsOf(A.d)!;
    await pings(A, 200);
    const after = workerStatsOf(A.d)!;
    const holds = after.ackHolds - before.ackHolds;
    const joined = after.ackHoldsJoined - before.ackHoldsJoined;
    // an echo woke this thread while the worker held its ACK: most rounds (a loaded machine may split one)
    expect(holds).toBeGreaterThan(100);
    expect(joined).toBeGreaterThan(50);
    expect(joined).toBeLessThanOrEqual(holds);
    // the worker filters its notifies by the watch list, which this thread publishes before it sleeps
    const list = watchList(A.d);
    expect(list.used).toBe(1);
    expect(list.publishes).toBeGreaterThan(200);
    // runs that moved nothing watched (the held ACKs' release) move PROGRESS without a notify: that is
    // no lost wake-up, and the lost-wake-up looks leave this thread parked
    await new Promise((r) => setTimeout(r, 4 * LOST_WAKE_CHECK_MS));
    expect(workerStatsOf(A.d)!.appLostWakeups).toBe(0);
  });

  it("no answer: the ACK still leaves (the peer's SEND completes), without waiting for a timeout", async () => {
    const { A, B } = await pair("127.0.10.113", "127.0.10.114", true);
    for (let i = 0; i < 8; i++) A.qp.postRecv({ wrId: BigInt(i), sgList: [A.mr.sge(i * 64, 64)] });
    const t0 = performance.now();
    for (let i = 0; i < 8; i++) {
      // this thread waits for the receive and then answers nothing; B waits for its SEND's ACK
      const recv = A.cq.next();
      B.qp.postSend({ wrId: BigInt(i), opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [B.mr.sge(0, 64)] });
      expect((await recv).status).toBe(WcStatus.SUCCESS);
      const sent = await B.cq.next();
      expect(sent.status).toBe(WcStatus.SUCCESS);
      expect(sent.wrId).toBe(BigInt(i));
    }
    expect(workerStatsOf(A.d)!.ackHolds).toBeGreaterThan(0);
    // 8 rounds bounded by the turn, not the ACK timeout (timeout 20: 4.3 s)
    expect(performance.now() - t0).toBeLessThan(4000);
  });

  it("off by default: nothing held", async () => {
    const A = await end("127.0.10.115", true);
    const B = await end("127.0.10.116", false);
    connectRcEnds(A, B, ACCESS);
    echoSends(B);
    await pings(A, 20);
    expect(workerStatsOf(A.d)!.ackHolds).toBe(0);
    // and no watch list: the worker notifies after every run, so this thread never writes one
    expect(watchList(A.d)).toEqual({ publishes: 0, used: 0 });
  });
});

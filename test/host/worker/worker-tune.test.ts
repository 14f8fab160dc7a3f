// The device worker's "tune" request (host/node/worker/device-worker.ts): `watchOnly: true` turns on
// the watch-list filter at run time, so a run that completes nothing the application waits on no
// longer wakes it (counted in workerStatsOf), while a completion it waits on still does; any other
// field or value is refused with an error naming it. Loopback UDP on 127.0.10.x.
import { afterEach, describe, expect, it } from "vitest";
import { Access, SendFlags, WcOpcode, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import type { Device } from "../../../host/core/verbs/device.js";
import { setWorkerAppSpin, W, workerSessionOf, workerStatsOf } from "../../../host/core/worker/index.js";
import { connectRcEnds, openRcEnd, type RcEnd } from "../support/rc-end.js";

const ACCESS = Access.LOCAL_WRITE | Access.REMOTE_WRITE;
const WRITES = 60;
const opened: Device[] = [];
afterEach(() => {
  while (opened.length) opened.pop()!.close();
});

async function pair(a: string, b: string) {
  const A = await openRcEnd(a, { worker: true }, ACCESS, { opened });
  // B without the busy poll: its windows would catch each ACK and post the next write at once, so
  // fewer of A's runs would find the application thread asleep (8-11 wake-ups in 60 instead of ~30)
  const B = await openRcEnd(b, { worker: false, busyPollUs: 0 }, ACCESS, { opened });
  // no look at the CQ before sleeping: every wait of this thread is a sleep the worker's notify ends
  setWorkerAppSpin(A.d, 0);
  connectRcEnds(A, B, ACCESS);
  return { A, B };
}

/** B writes into A's MR `n` times, one at a time (no completion at A); the application wake-ups of A's thread meanwhile. */
async function writesInto(A: RcEnd, B: RcEnd, n: number): Promise<number> {
  const before = workerStatsOf(A.d)!.appWakeups;
  for (let i = 0; i < n; i++) {
    B.qp.postSend({ wrId: BigInt(i), opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [B.mr.sge(0, 64)], rdma: { remoteAddr: A.mr.addr + 1024n, rkey: A.mr.rkey } });
    const wc = await B.cq.next();
    expect(wc.status).toBe(WcStatus.SUCCESS);
    expect(wc.opcode).toBe(WcOpcode.RDMA_WRITE);
  }
  return workerStatsOf(A.d)!.appWakeups - before;
}

describe("the device worker's tune request", () => {
  it("watchOnly: true switches the watch-list filter on: writes that complete nothing here stop waking the thread", async () => {
    const { A, B } = await pair("127.0.10.151", "127.0.10.152");
    const session = workerSessionOf(A.d)!;
    // this thread waits for a receive that only comes at the end
    A.qp.postRecv({ wrId: 5n, sgList: [A.mr.sge(4096, 64)] });
    const recv = A.cq.next();
    // the default: the worker notifies after every run, so a write's run wakes the waiting thread
    // (about one write in two here: the next may come before the woken thread sleeps again)
    const unfiltered = await writesInto(A, B, WRITES);
    expect(unfiltered).toBeGreaterThanOrEqual(WRITES / 4);
    expect(session.control.load(W.WATCH_USED)).toBe(0);

    await session.request("tune", { watchOnly: true });
    expect(session.control.load(W.WATCH_USED)).toBe(1);
    // the first run after the switch may still wake it (its list is "every run" until it publishes one)
    const filtered = await writesInto(A, B, WRITES);
    expect(filtered).toBeLessThanOrEqual(3);
    // a completion the thread waits for still wakes it
    B.mr.bytes.fill(0x5a, 0, 64);
    B.qp.postSend({ wrId: 77n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [B.mr.sge(0, 64)] });
    const wc = await recv;
    expect(wc.status).toBe(WcStatus.SUCCESS);
    expect(wc.wrId).toBe(5n);
    expect(A.mr.bytes[4096]).toBe(0x5a);
    expect((await B.cq.next()).status).toBe(WcStatus.SUCCESS);
    expect(workerStatsOf(A.d)!.appLostWakeups).toBe(0);
  });

  it("refuses an unknown field, a wrong value or nothing asked, naming what it takes", async () => {
    const { A } = await pair("127.0.10.153", "127.0.10.154");
    const session = workerSessionOf(A.d)!;
    await expect(session.request("tune", { notifyFirst: true })).rejects.toThrow(/tune: unknown field "notifyFirst" \(the one field: watchOnly\)/);
    await expect(session.request("tune", { watchOnly: true, spin: 5 })).rejects.toThrow(/unknown field "spin"/);
    await expect(session.request("tune", { watchOnly: false })).rejects.toThrow(TypeError);
    await expect(session.request("tune", { watchOnly: 1 })).rejects.toThrow(/tune: watchOnly 1: true/);
    await expect(session.request("tune", {})).rejects.toThrow(/tune: watchOnly undefined: true/);
    // nothing refused took effect
    expect(session.control.load(W.WATCH_USED)).toBe(0);
    await session.request("tune", { watchOnly: true });
    expect(session.control.load(W.WATCH_USED)).toBe(1);
  });
});

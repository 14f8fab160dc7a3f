// The port's timer takes what already waits in the link before the device acts on the expired
// deadline (Link.receivePending): an event loop runs its expired timers before it reads its
// sockets, so on a busy host the retransmission timer fires while the ACK that answers it sits in
// the socket. Taken first, the ACK completes the WRITE and nothing is retransmitted.
//  - on the simulated wire, with a link whose pending ACK is scripted (and one without the hook:
//    the same deadline retransmits, the case the hook exists for);
//  - on the native datapath, for real: the peer's ACK reaches the socket in the same loop turn as
//    the deadline passes (the peer's receive callback holds the thread past it).
// Addresses: 127.0.12.0/24.
import { afterEach, describe, expect, it } from "vitest";
import { SendFlags, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import type { PacketPort } from "../../../host/core/link/index.js";
import { datapathAddon } from "../../../host/node/datapath.js";
import { nativePair } from "../support/native-pair.js";
import { scriptedPeer, T10 } from "../support/scripted-peer.js";

/** A device whose RC QP talks to a scripted peer (its ACKs made here). */
async function simBench(withHook: boolean) {
  const b = await scriptedPeer("127.0.12.1", "127.0.12.2");
  // the ACK the "socket" holds: handed over only when the port asks (the hook), never by the wire
  const pending: number[] = [];
  const link = (b.dev.port as unknown as { link: { receivePending?: () => void } }).link;
  let asked = 0;
  if (withHook) {
    link.receivePending = () => {
      asked++;
      while (pending.length) b.ack(pending.shift()!);
    };
  }
  return { ...b, pending, asked: () => asked };
}

describe("PacketPort's timer and what waits in the link", () => {
  it("an ACK pending in the link when the retransmission timer fires is taken first: no retransmission", async () => {
    const b = await simBench(true);
    b.qp.postSend(b.write);
    expect(b.sentPsns()).toEqual([0x10]);
    b.pending.push(0x10); // the peer's ACK arrived; the loop has not read it yet
    b.advance(T10 * 1.5); // the deadline passes
    expect(b.asked()).toBeGreaterThanOrEqual(1);
    expect(b.dev.queryCounters()).toMatchObject({ completer_retry_err: 0 });
    expect(b.sentPsns()).toEqual([0x10]); // not sent again
    expect(b.cq.poll(4).map((w) => [w.wrId, w.status])).toEqual([[1n, WcStatus.SUCCESS]]);
    // the timer the WRITE armed is gone: nothing fires later
    b.advance(T10 * 8);
    expect(b.sentPsns()).toEqual([0x10]);
  });

  it("a link that cannot look (node:dgram, the tunnel): the same deadline retransmits, the late ACK then completes", async () => {
    const b = await simBench(false);
    b.qp.postSend(b.write);
    b.advance(T10 * 1.5);
    expect(b.dev.queryCounters()).toMatchObject({ completer_retry_err: 1 });
    expect(b.sentPsns()).toEqual([0x10, 0x10]);
  });

  it("a port closed by what the link handed over does not tick", async () => {
    const b = await simBench(false);
    const port = b.dev.port! as PacketPort;
    const link = (port as unknown as { link: { receivePending?: () => void } }).link;
    link.receivePending = () => port.close();
    b.qp.postSend(b.write);
    b.advance(T10 * 1.5);
    expect(port.ticks).toBe(0);
    expect(b.sentPsns()).toEqual([0x10]);
  });
});

let close = () => {};
afterEach(() => close());

describe.skipIf(!datapathAddon())("native link: the timer looks at the socket first", () => {
  it("the peer's ACK sits in the socket when the ACK timeout expires: the WRITE completes, nothing is retransmitted", async () => {
    // ACK timeout 14 (~67 ms): far longer than the WRITE's way to B even on a loaded host
    const TIMEOUT_MS = (4.096 * 2 ** 14) / 1000;
    const p = await nativePair(["127.0.12.11", "127.0.12.12"], { qp: { timeout: 14, retryCnt: 3 } });
    close = p.close;
    const { A, B } = p;
    const [a, b, la, lb] = [A.d, B.d, A.link, B.link];
    la.flush = lb.flush = "now";
    const retries = () => a.queryCounters().completer_retry_err;
    // B's receive callback, once its ACK has left, holds the thread past A's deadline: when the
    // loop gets it back, A's timer is due and the ACK is in A's socket, unread
    const sleeper = new Int32Array(new SharedArrayBuffer(4));
    let armed = false;
    let before = 0;
    let valid = false;
    lb.port!.capture = (dir) => {
      if (dir !== "tx" || !armed) return;
      armed = false;
      // the round counts only if A had not retried before this ACK left (a host too slow to matter)
      valid = retries() === before;
      Atomics.wait(sleeper, 0, 0, TIMEOUT_MS * 2.5);
    };
    for (let round = 0; round < 3 && !valid; round++) {
      before = retries();
      const dups = b.queryCounters().duplicate_request;
      armed = true;
      A.qp.postSend({
        wrId: BigInt(round), opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [A.mr.sge(0, 256)],
        rdma: { remoteAddr: B.mr.addr, rkey: B.mr.rkey },
      });
      const wc = await A.cq.next();
      expect({ wrId: wc.wrId, status: wc.status }).toEqual({ wrId: BigInt(round), status: WcStatus.SUCCESS });
      if (!valid) continue;
      expect(retries()).toBe(before); // the expired timer found the ACK: nothing sent again
      expect(b.queryCounters().duplicate_request).toBe(dups);
    }
    expect(valid).toBe(true);
    expect(la.stats.pendingHits).toBeGreaterThanOrEqual(1);
  });
});

// RC completer: NAKs and their statuses, retransmission (timer, retry_cnt),
// RNR (timer table, rnr_retry), go-back-N (partial messages, READ chunks),
// FLUSH / ATOMIC_WRITE acknowledged by a zero-length READ RESPONSE ONLY.
import { describe, expect, it } from "vitest";
import { ReqBench, OP, brief, psnAdd } from "../support/rc-req-harness.js";
import { Access, Mtu, QpState, SendFlags, WcOpcode, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";

const S = SendFlags.SIGNALED;
/** timeout 10: 4.096 µs × 2^10 */
const T10 = 4.096 * 1024;

describe("RC completer: NAKs", () => {
  for (const [syn, status, name] of [
    [0x61, WcStatus.REM_INV_REQ_ERR, "invalid request"],
    [0x62, WcStatus.REM_ACCESS_ERR, "remote access error"],
    [0x63, WcStatus.REM_OP_ERR, "remote operational error"],
    [0x65, WcStatus.REM_OP_ERR, "an unknown NAK code"],
  ] as const) {
    it(`${name} (0x${syn.toString(16)}) completes the WQE with status ${status}, flushes the rest, QP in ERR`, async () => {
      const b = await ReqBench.create();
      b.post([
        { wrId: 1n, opcode: WrOpcode.RDMA_WRITE, sendFlags: S, rdma: { remoteAddr: 0n, rkey: 9 }, sgList: [b.mr.sge(0, 8)] },
        { wrId: 2n, opcode: WrOpcode.SEND, sgList: [b.mr.sge(0, 8)] },
      ]);
      expect(b.sent()).toHaveLength(2);
      expect(b.ack(0x10, syn)).toBe(0);
      expect(b.poll()).toEqual([
        expect.objectContaining({ wrId: 1n, status, opcode: 0, byteLen: 0, qpNum: b.qp.qpNum }),
        expect.objectContaining({ wrId: 2n, status: WcStatus.WR_FLUSH_ERR }),
      ]);
      expect(b.qp.state).toBe(QpState.ERR);
      expect(b.dev.core.next_deadline()).toBe(Infinity);
      b.advance(1e6);
      expect(b.sent()).toEqual([]);
    });
  }

  it("a PSN-sequence NAK acknowledges what precedes it and goes back to its PSN mid-message", async () => {
    const b = await ReqBench.create({ sqPsn: 0xfffffe });
    b.post([
      { wrId: 1n, opcode: WrOpcode.RDMA_WRITE, sendFlags: S, rdma: { remoteAddr: 0x100n, rkey: 9 }, sgList: [b.mr.sge(0, 3000)] },
      { wrId: 2n, opcode: WrOpcode.SEND, sendFlags: S, sgList: [b.mr.sge(0, 10)] },
    ]);
    expect(b.sent().map(brief)).toEqual([
      [OP.WRITE_FIRST, 0xfffffe, 0, 1024], [OP.WRITE_MIDDLE, 0xffffff, 0, 1024], [OP.WRITE_LAST, 0, 1, 952], [OP.SEND_ONLY, 1, 1, 10],
    ]);
    b.ack(0xffffff, 0x60); // expected PSN 0xffffff: the MIDDLE was lost
    const again = b.sent();
    expect(again.map(brief)).toEqual([[OP.WRITE_MIDDLE, 0xffffff, 0, 1024], [OP.WRITE_LAST, 0, 1, 952], [OP.SEND_ONLY, 1, 1, 10]]);
    expect(again[0]!.payload).toEqual(b.mr.bytes.slice(1024, 2048));
    expect(b.dev.queryCounters()).toMatchObject({ rcvd_seq_err: 1, completer_retry_err: 1 });
    // a second NAK for the same gap does not start another retry
    b.ack(0xffffff, 0x60);
    expect(b.sent()).toEqual([]);
    b.ack(1);
    expect(b.poll().map((w) => [w.wrId, w.status])).toEqual([[1n, 0], [2n, 0]]);
  });

  it("a PSN-sequence NAK that moves forward reloads retry_cnt; one that does not uses it up", async () => {
    const b = await ReqBench.create({ retryCnt: 1, pathMtu: Mtu.MTU_256 });
    b.post({ wrId: 1n, opcode: WrOpcode.RDMA_WRITE, sendFlags: S, rdma: { remoteAddr: 0n, rkey: 1 }, sgList: [b.mr.sge(0, 10 * 256)] });
    expect(b.sent()).toHaveLength(10);
    for (let k = 1; k <= 4; k++) {
      b.ack(0x10 + k, 0x60); // each NAK is further on: progress
      expect(b.sent()).toHaveLength(10 - k);
    }
    b.ack(0x14, 0x60); // the same gap again, now as a new retry round by timeout would: no progress
    expect(b.sent()).toEqual([]); // a retry is already under way
    expect(b.poll()).toEqual([]);
  });

  it("a PSN-sequence NAK past a message's last PSN completes that message implicitly", async () => {
    const b = await ReqBench.create();
    b.post([{ wrId: 1n, opcode: WrOpcode.SEND, sendFlags: S }, { wrId: 2n, opcode: WrOpcode.SEND, sendFlags: S }]);
    b.sent();
    b.ack(0x11, 0x60); // the first SEND arrived (its ACK was lost), the second did not
    expect(b.poll().map((w) => w.wrId)).toEqual([1n]);
    expect(b.sent().map(brief)).toEqual([[OP.SEND_ONLY, 0x11, 1, 0]]);
  });
});

describe("RC completer: retransmission", () => {
  it("resends everything unacknowledged when the timer fires, then fails with RETRY_EXC_ERR after retry_cnt retries", async () => {
    const b = await ReqBench.create({ timeout: 10, retryCnt: 2 });
    b.post([{ wrId: 1n, opcode: WrOpcode.SEND, sendFlags: S, sgList: [b.mr.sge(0, 2000)] }, { wrId: 2n, opcode: WrOpcode.SEND }]);
    const first = b.sent().map(brief);
    expect(first).toEqual([[OP.SEND_FIRST, 0x10, 0, 1024], [OP.SEND_LAST, 0x11, 1, 976], [OP.SEND_ONLY, 0x12, 1, 0]]);
    expect(b.dev.core.next_deadline()).toBeCloseTo(T10, 6);
    b.advance(T10 - 1);
    expect(b.sent()).toEqual([]);
    b.advance(2);
    expect(b.sent().map(brief)).toEqual(first);
    b.advance(T10);
    expect(b.sent().map(brief)).toEqual(first);
    expect(b.poll()).toEqual([]);
    b.advance(T10);
    expect(b.sent()).toEqual([]);
    expect(b.poll()).toEqual([
      expect.objectContaining({ wrId: 1n, status: WcStatus.RETRY_EXC_ERR }),
      expect.objectContaining({ wrId: 2n, status: WcStatus.WR_FLUSH_ERR }),
    ]);
    expect(b.dev.queryCounters()).toMatchObject({ completer_retry_err: 2, retry_exceeded_err: 1 });
    expect(b.qp.state).toBe(QpState.ERR);
  });

  it("retry_cnt 7 means seven retries, not infinite (IBA; rxe would retry forever)", async () => {
    const b = await ReqBench.create({ timeout: 10, retryCnt: 7 });
    b.post({ wrId: 1n, opcode: WrOpcode.SEND, sendFlags: S });
    let sends = b.sent().length;
    for (let i = 0; i < 10; i++) {
      b.advance(T10 + 1);
      sends += b.sent().length;
    }
    expect(sends).toBe(8);
    expect(b.poll()).toMatchObject([{ wrId: 1n, status: WcStatus.RETRY_EXC_ERR }]);
  });

  it("a good ACK restores retry_cnt and a partial ACK moves the restart point", async () => {
    const b = await ReqBench.create({ timeout: 10, retryCnt: 1 });
    b.post({ wrId: 1n, opcode: WrOpcode.RDMA_WRITE, sendFlags: S, rdma: { remoteAddr: 0n, rkey: 1 }, sgList: [b.mr.sge(0, 3000)] });
    b.sent();
    b.advance(T10 + 1); // retry 1 (the last one)
    expect(b.sent()).toHaveLength(3);
    b.ack(0x10); // the FIRST is acknowledged: counters reset
    b.advance(T10 + 1);
    expect(b.sent().map(brief)).toEqual([[OP.WRITE_MIDDLE, 0x11, 0, 1024], [OP.WRITE_LAST, 0x12, 1, 952]]);
    b.ack(0x12);
    expect(b.poll()).toMatchObject([{ wrId: 1n, status: 0, byteLen: 3000 }]);
    expect(b.dev.core.next_deadline()).toBe(Infinity);
  });

  it("a READ whose MIDDLE response was lost asks again for the rest only", async () => {
    const b = await ReqBench.create({ timeout: 10 });
    b.post({ wrId: 5n, opcode: WrOpcode.RDMA_READ, sendFlags: S, rdma: { remoteAddr: 0x10000n, rkey: 3 }, sgList: [b.mr.sge(1000, 3000)] });
    expect(b.sent().map(brief)).toEqual([[OP.READ_REQ, 0x10, 1, 0]]);
    const data = Uint8Array.from({ length: 3000 }, (_, i) => (i * 31) & 0xff);
    b.respond({ opcode: OP.READ_FIRST, psn: 0x10, aeth: { syndrome: 0x1f, msn: 0 }, payload: data.slice(0, 1024) });
    b.respond({ opcode: OP.READ_LAST, psn: 0x12, aeth: { syndrome: 0x1f, msn: 1 }, payload: data.slice(2048) }); // ignored: PSN gap
    expect(b.poll()).toEqual([]);
    b.advance(T10 + 1);
    const [req] = b.sent();
    expect(brief(req!)).toEqual([OP.READ_REQ, 0x11, 1, 0]);
    expect(req!.reth).toEqual({ va: 0x10000n + 1024n, rkey: 3, dmaLength: 3000 - 1024 });
    b.respond({ opcode: OP.READ_FIRST, psn: 0x11, aeth: { syndrome: 0x1f, msn: 0 }, payload: data.slice(1024, 2048) });
    b.respond({ opcode: OP.READ_LAST, psn: 0x12, aeth: { syndrome: 0x1f, msn: 1 }, payload: data.slice(2048) });
    expect(b.poll()).toMatchObject([{ wrId: 5n, status: 0, opcode: WcOpcode.RDMA_READ, byteLen: 3000 }]);
    expect(b.mr.bytes.slice(1000, 4000)).toEqual(data);
  });

  it("an ACK past an atomic's PSN means its response was lost: the atomic is sent again", async () => {
    const b = await ReqBench.create({ maxRdAtomic: 1 });
    b.post([
      { wrId: 1n, opcode: WrOpcode.ATOMIC_FETCH_AND_ADD, sendFlags: S, atomic: { remoteAddr: 8n, rkey: 2, compareAdd: 1n }, sgList: [b.mr.sge(0, 8)] },
      { wrId: 2n, opcode: WrOpcode.SEND },
    ]);
    expect(b.sent().map(brief)).toEqual([[OP.FETCH_ADD, 0x10, 1, 0], [OP.SEND_ONLY, 0x11, 1, 0]]);
    b.ack(0x11);
    expect(b.sent().map(brief)).toEqual([[OP.FETCH_ADD, 0x10, 1, 0], [OP.SEND_ONLY, 0x11, 1, 0]]);
    b.respond({ opcode: OP.ATOMIC_ACK, psn: 0x10, aeth: { syndrome: 0x1f, msn: 1 }, atomicAckEth: { origRemoteData: 41n } });
    expect(b.poll()).toMatchObject([{ wrId: 1n, status: 0, opcode: WcOpcode.FETCH_ADD }]);
  });

  it("a plain ACK at an atomic's PSN (a re-ACKed duplicate) does not complete it: the atomic goes again", async () => {
    const b = await ReqBench.create();
    b.post({ wrId: 1n, opcode: WrOpcode.ATOMIC_CMP_AND_SWP, sendFlags: S, atomic: { remoteAddr: 8n, rkey: 2, compareAdd: 1n, swap: 2n }, sgList: [b.mr.sge(0, 8)] });
    b.sent();
    b.ack(0x10);
    expect(b.poll()).toEqual([]);
    expect(b.sent().map(brief)).toEqual([[OP.CMP_SWAP, 0x10, 1, 0]]);
    b.respond({ opcode: OP.ATOMIC_ACK, psn: 0x10, aeth: { syndrome: 0x1f, msn: 1 }, atomicAckEth: { origRemoteData: 0x77n } });
    expect(b.poll()).toMatchObject([{ wrId: 1n, status: 0, opcode: WcOpcode.COMP_SWAP }]);
    expect(new DataView(b.mr.bytes.buffer, b.mr.bytes.byteOffset).getBigUint64(0, true)).toBe(0x77n);
  });

  it("a stale positive ACK in the middle of a READ response does not break the response sequence", async () => {
    const b = await ReqBench.create({ sqPsn: 0x20 });
    b.post([{ wrId: 1n, opcode: WrOpcode.SEND }, { wrId: 2n, opcode: WrOpcode.RDMA_READ, sendFlags: S, rdma: { remoteAddr: 0n, rkey: 1 }, sgList: [b.mr.sge(0, 3000)] }]);
    b.sent();
    b.ack(0x20);
    const data = Uint8Array.from({ length: 3000 }, (_, i) => i & 0xff);
    b.respond({ opcode: OP.READ_FIRST, psn: 0x21, aeth: { syndrome: 0x1f, msn: 1 }, payload: data.slice(0, 1024) });
    b.ack(0x20); // duplicated on the wire, arrives late
    b.respond({ opcode: OP.READ_MIDDLE, psn: 0x22, payload: data.slice(1024, 2048) });
    b.respond({ opcode: OP.READ_LAST, psn: 0x23, aeth: { syndrome: 0x1f, msn: 2 }, payload: data.slice(2048) });
    expect(b.poll()).toMatchObject([{ wrId: 2n, status: 0, byteLen: 3000 }]);
    expect(b.mr.bytes.slice(0, 3000)).toEqual(data);
  });

  it("ignores a stale duplicate ACK", async () => {
    const b = await ReqBench.create();
    b.post([{ wrId: 1n, opcode: WrOpcode.SEND, sendFlags: S }, { wrId: 2n, opcode: WrOpcode.SEND, sendFlags: S }]);
    b.sent();
    b.ack(0x10);
    b.ack(0x10);
    b.ack(0x0f);
    expect(b.poll().map((w) => w.wrId)).toEqual([1n]);
    expect(b.sent()).toEqual([]);
  });
});

describe("RC completer: RNR", () => {
  it("waits the RNR timer of the NAK's code, then resends from the NAKed PSN", async () => {
    const b = await ReqBench.create({ rnrRetry: 7 });
    b.post([{ wrId: 1n, opcode: WrOpcode.SEND, sendFlags: S }, { wrId: 2n, opcode: WrOpcode.SEND, sendFlags: S }]);
    b.sent();
    b.ack(0x10, 0x20 | 14); // RNR NAK, 1.28 ms
    expect(b.dev.queryCounters().rcvd_rnr_err).toBe(1);
    expect(b.dev.core.next_deadline()).toBeCloseTo(b.now + 1280, 6);
    b.advance(1279);
    expect(b.sent()).toEqual([]);
    b.advance(2);
    expect(b.sent().map(brief)).toEqual([[OP.SEND_ONLY, 0x10, 1, 0], [OP.SEND_ONLY, 0x11, 1, 0]]);
    b.ack(0x11);
    expect(b.poll().map((w) => w.wrId)).toEqual([1n, 2n]);
  });

  it("rnr_retry 7 retries forever; rnr_retry 2 fails with RNR_RETRY_EXC_ERR on the third NAK", async () => {
    const inf = await ReqBench.create({ rnrRetry: 7 });
    inf.post({ wrId: 1n, opcode: WrOpcode.SEND, sendFlags: S });
    inf.sent();
    for (let i = 0; i < 20; i++) {
      inf.ack(0x10, 0x21); // 10 µs
      inf.advance(11);
      expect(inf.sent()).toHaveLength(1);
    }
    expect(inf.poll()).toEqual([]);
    const b = await ReqBench.create({ rnrRetry: 2 });
    b.post([{ wrId: 1n, opcode: WrOpcode.SEND }, { wrId: 2n, opcode: WrOpcode.SEND }]);
    b.sent();
    for (let i = 0; i < 2; i++) {
      b.ack(0x10, 0x21);
      b.advance(11);
      expect(b.sent()).toHaveLength(2);
    }
    b.ack(0x10, 0x21);
    expect(b.poll()).toEqual([
      expect.objectContaining({ wrId: 1n, status: WcStatus.RNR_RETRY_EXC_ERR }),
      expect.objectContaining({ wrId: 2n, status: WcStatus.WR_FLUSH_ERR }),
    ]);
    expect(b.dev.queryCounters()).toMatchObject({ rcvd_rnr_err: 3, retry_rnr_exceeded_err: 1 });
  });

  it("a long RNR wait does not use up retry_cnt: the retransmit timer rests until the retried packet goes out", async () => {
    const b = await ReqBench.create({ timeout: 10, retryCnt: 0, rnrRetry: 7 });
    b.post({ wrId: 1n, opcode: WrOpcode.SEND, sendFlags: S });
    b.sent();
    b.ack(0x10, 0x20 | 24); // RNR NAK, 40.96 ms = ten ACK timeouts
    expect(b.dev.core.next_deadline() - b.now).toBeCloseTo(40960, 6);
    b.advance(40961); // the RNR timer fired 1 µs ago and the SEND went again then
    expect(b.sent().map(brief)).toEqual([[OP.SEND_ONLY, 0x10, 1, 0]]);
    expect(b.dev.core.next_deadline() - b.now).toBeCloseTo(T10 - 1, 6);
    b.ack(0x10);
    expect(b.poll()).toMatchObject([{ wrId: 1n, status: 0 }]);
  });

  it("code 0 waits 655.36 ms (rnrnak_usec)", async () => {
    const b = await ReqBench.create();
    b.post({ opcode: WrOpcode.SEND });
    b.sent();
    b.ack(0x10, 0x20);
    expect(b.dev.core.next_deadline() - b.now).toBeCloseTo(655360, 6);
  });
});

describe("RC requester/completer: FLUSH, ATOMIC_WRITE, SEND with invalidate, local access", () => {
  it("FLUSH: FETH then RETH, no payload; a zero-length READ RESPONSE ONLY completes it", async () => {
    const b = await ReqBench.create();
    // FLUSH: rdma = the range, immData = the FETH word (placement 1, level 1), length from the SGE list sum
    b.post({ wrId: 4n, opcode: WrOpcode.FLUSH, sendFlags: S, immData: 0x11, rdma: { remoteAddr: 0x2000n, rkey: 6 }, sgList: [{ addr: 0n, length: 4096, lkey: 0 }] });
    const [p] = b.sent();
    expect(brief(p!)).toEqual([OP.FLUSH, 0x10, 1, 0]);
    expect(p!.feth).toBe(0x11);
    expect(p!.reth).toEqual({ va: 0x2000n, rkey: 6, dmaLength: 4096 });
    b.respond({ opcode: OP.READ_ONLY, psn: 0x10, aeth: { syndrome: 0x1f, msn: 1 } });
    expect(b.poll()).toMatchObject([{ wrId: 4n, status: 0, opcode: WcOpcode.FLUSH, byteLen: 4096 }]);
  });

  it("ATOMIC_WRITE: RETH and the 8 bytes of the WR; acknowledged by a zero-length READ RESPONSE ONLY", async () => {
    const b = await ReqBench.create({ maxRdAtomic: 1 });
    b.post([
      { wrId: 6n, opcode: WrOpcode.ATOMIC_WRITE, sendFlags: S, atomic: { remoteAddr: 0x3000n, rkey: 8, compareAdd: 0x1122334455667788n } },
      { wrId: 7n, opcode: WrOpcode.RDMA_READ, rdma: { remoteAddr: 0n, rkey: 8 }, sgList: [b.mr.sge(0, 8)] },
    ]);
    const [p, more] = b.sent();
    expect(more).toBeUndefined(); // the READ waits for the ATOMIC_WRITE's credit
    expect(brief(p!)).toEqual([OP.ATOMIC_WRITE, 0x10, 1, 8]);
    expect(p!.reth).toEqual({ va: 0x3000n, rkey: 8, dmaLength: 8 });
    expect(new DataView(p!.payload.buffer, p!.payload.byteOffset).getBigUint64(0, true)).toBe(0x1122334455667788n);
    b.respond({ opcode: OP.READ_ONLY, psn: 0x10, aeth: { syndrome: 0x1f, msn: 1 } });
    expect(b.poll()).toMatchObject([{ wrId: 6n, status: 0, opcode: WcOpcode.ATOMIC_WRITE, byteLen: 8 }]);
    expect(b.sent().map(brief)).toEqual([[OP.READ_REQ, 0x11, 1, 0]]);
  });

  it("FLUSH holds a max_rd_atomic credit like READ (the responder keeps a resource for it)", async () => {
    const b = await ReqBench.create({ maxRdAtomic: 1 });
    b.post([
      { wrId: 1n, opcode: WrOpcode.FLUSH, sendFlags: S, immData: 0x11, rdma: { remoteAddr: 0n, rkey: 6 }, sgList: [{ addr: 0n, length: 64, lkey: 0 }] },
      { wrId: 2n, opcode: WrOpcode.ATOMIC_FETCH_AND_ADD, sendFlags: S, atomic: { remoteAddr: 8n, rkey: 6, compareAdd: 1n }, sgList: [b.mr.sge(0, 8)] },
    ]);
    expect(b.sent().map(brief)).toEqual([[OP.FLUSH, 0x10, 1, 0]]);
    b.respond({ opcode: OP.READ_ONLY, psn: 0x10, aeth: { syndrome: 0x1f, msn: 1 } });
    expect(b.sent().map(brief)).toEqual([[OP.FETCH_ADD, 0x11, 1, 0]]);
  });

  it("an ATOMIC_WRITE acknowledged implicitly by a later ACK gives its max_rd_atomic credit back", async () => {
    const b = await ReqBench.create({ maxRdAtomic: 1 });
    b.post([
      { wrId: 1n, opcode: WrOpcode.ATOMIC_WRITE, sendFlags: S, atomic: { remoteAddr: 0x3000n, rkey: 8, compareAdd: 1n } },
      { wrId: 2n, opcode: WrOpcode.SEND, sendFlags: S },
      { wrId: 3n, opcode: WrOpcode.ATOMIC_WRITE, sendFlags: S, atomic: { remoteAddr: 0x3008n, rkey: 8, compareAdd: 2n } },
    ]);
    expect(b.sent().map(brief)).toEqual([[OP.ATOMIC_WRITE, 0x10, 1, 8], [OP.SEND_ONLY, 0x11, 1, 0]]);
    b.ack(0x11); // the READ RESPONSE ONLY for 0x10 was lost; the SEND's ACK covers it
    expect(b.poll().map((w) => [w.wrId, w.status])).toEqual([[1n, 0], [2n, 0]]);
    expect(b.sent().map(brief)).toEqual([[OP.ATOMIC_WRITE, 0x12, 1, 8]]);
  });

  it("SEND with invalidate carries the rkey in an IETH", async () => {
    const b = await ReqBench.create();
    b.post({ opcode: WrOpcode.SEND_WITH_INV, invalidateRkey: 0xdeadbe, sgList: [b.mr.sge(0, 1100)] });
    const p = b.sent();
    expect(p.map(brief)).toEqual([[OP.SEND_FIRST, 0x10, 0, 1024], [OP.SEND_LAST_INV, 0x11, 1, 76]]);
    expect(p[1]!.ieth).toEqual({ rkey: 0xdeadbe });
  });

  it("READ data for an MR without LOCAL_WRITE: LOC_PROT_ERR, and nothing is written", async () => {
    const b = await ReqBench.create();
    const ro = b.pd.regMr(64, 0);
    b.post({ wrId: 8n, opcode: WrOpcode.RDMA_READ, rdma: { remoteAddr: 0n, rkey: 1 }, sgList: [ro.sge(0, 16)] });
    b.sent();
    b.respond({ opcode: OP.READ_ONLY, psn: 0x10, aeth: { syndrome: 0x1f, msn: 1 }, payload: new Uint8Array(16).fill(9) });
    expect(b.poll()).toMatchObject([{ wrId: 8n, status: WcStatus.LOC_PROT_ERR }]);
    expect(Array.from(ro.bytes.slice(0, 16))).toEqual(new Array(16).fill(0));
    expect(b.qp.state).toBe(QpState.ERR);
  });

  it("READ response longer than the local SGEs: LOC_PROT_ERR (rxe copy_data)", async () => {
    const b = await ReqBench.create();
    b.post({ wrId: 8n, opcode: WrOpcode.RDMA_READ, rdma: { remoteAddr: 0n, rkey: 1 }, sgList: [b.mr.sge(0, 16)] });
    b.sent();
    b.respond({ opcode: OP.READ_ONLY, psn: 0x10, aeth: { syndrome: 0x1f, msn: 1 }, payload: new Uint8Array(20) });
    expect(b.poll()).toMatchObject([{ wrId: 8n, status: WcStatus.LOC_PROT_ERR }]);
  });

  it("an atomic ACK for a SEND is a bad response: the QP goes to ERR", async () => {
    const b = await ReqBench.create();
    b.post({ wrId: 1n, opcode: WrOpcode.SEND });
    b.sent();
    b.respond({ opcode: OP.ATOMIC_ACK, psn: 0x10, aeth: { syndrome: 0x1f, msn: 1 }, atomicAckEth: { origRemoteData: 0n } });
    expect(b.poll()).toMatchObject([{ wrId: 1n, status: WcStatus.BAD_RESP_ERR }]);
    expect(b.qp.state).toBe(QpState.ERR);
    void Access;
  });
});

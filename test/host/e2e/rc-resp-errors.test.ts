// RC responder error paths and duplicates: the exact NAK (syndrome, PSN, MSN),
// the receive completion, the QP state, and memory left untouched.
import { describe, expect, it } from "vitest";
import { Access, Mtu, QpState, WcStatus } from "../../../host/core/verbs/enums.js";
import { ack, ACK, NAK_ACC, NAK_INV, NAK_OP, NAK_SEQ, Op, pattern, RespBench } from "../support/rc-resp-harness.js";

function state(b: RespBench): number {
  return b.qp.query().attr.qpState;
}

describe("RC responder: PSN checks and duplicates", () => {
  it("NAKs a gap once with the expected PSN, drops what follows, and NAKs the next gap again", async () => {
    const b = await RespBench.open({ rqPsn: 0xffffff });
    const buf = b.mr(64);
    b.qp.postRecv([{ wrId: 1n, sgList: [buf.sge(0, 32)] }, { wrId: 2n, sgList: [buf.sge(32, 32)] }]);
    b.deliver({ opcode: Op.SEND_ONLY, psn: 1, ackReq: 1, payload: pattern(4) });
    b.deliver({ opcode: Op.SEND_ONLY, psn: 2, ackReq: 1, payload: pattern(4) });
    expect(b.sent()).toEqual([expect.objectContaining(ack(Op.ACK, 0xffffff, NAK_SEQ, 0))]);
    expect(b.counters().out_of_seq_request).toBe(1);
    b.deliver({ opcode: Op.SEND_ONLY, psn: 0xffffff, ackReq: 1, payload: pattern(4) }); // the retransmission
    b.deliver({ opcode: Op.SEND_ONLY, psn: 2, ackReq: 1, payload: pattern(4) }); // a new gap (1 missing)
    expect(b.sent()).toEqual([
      expect.objectContaining(ack(Op.ACK, 0xffffff, ACK, 1)),
      expect.objectContaining(ack(Op.ACK, 0, NAK_SEQ, 1)),
    ]);
    expect(b.poll()).toEqual([expect.objectContaining({ wrId: 1n, status: WcStatus.SUCCESS, byteLen: 4 })]);
    expect(state(b)).toBe(QpState.RTS);
  });

  it("re-ACKs a duplicate SEND with the last executed PSN and the current MSN, without executing it again", async () => {
    const b = await RespBench.open();
    const buf = b.mr(16);
    b.qp.postRecv([{ wrId: 1n, sgList: [buf.sge(0, 8)] }, { wrId: 2n, sgList: [buf.sge(8, 8)] }]);
    b.deliver({ opcode: Op.SEND_ONLY, psn: 100, payload: pattern(8) });
    b.deliver({ opcode: Op.SEND_ONLY, psn: 101, payload: pattern(8, 1) });
    b.deliver({ opcode: Op.SEND_ONLY, psn: 100, ackReq: 1, payload: pattern(8, 99) });
    expect(b.sent()).toEqual([expect.objectContaining(ack(Op.ACK, 101, ACK, 2))]);
    expect(Array.from(buf.bytes.subarray(0, 8))).toEqual(Array.from(pattern(8)));
    expect(b.poll()).toHaveLength(2);
    expect(b.counters().duplicate_request).toBe(1);
  });

  it("replays a duplicate READ from its PSN within the saved range, reading memory again", async () => {
    const b = await RespBench.open({ pathMtu: Mtu.MTU_256 });
    const mr = b.mr(1024);
    mr.bytes.set(pattern(1024));
    const reth = { va: mr.addr, rkey: mr.rkey, dmaLength: 600 };
    b.deliver({ opcode: Op.READ_REQUEST, psn: 100, ackReq: 1, reth });
    expect(b.sent().map((p) => [p.opcode, p.psn])).toEqual([
      [Op.READ_RESP_FIRST, 100], [Op.READ_RESP_MIDDLE, 101], [Op.READ_RESP_LAST, 102],
    ]);
    mr.bytes.set(pattern(1024, 50));
    // the requester retries from the second response: va and length advanced by one MTU
    b.deliver({ opcode: Op.READ_REQUEST, psn: 101, ackReq: 1, reth: { ...reth, va: mr.addr + 256n, dmaLength: 344 } });
    const again = b.sent();
    expect(again.map((p) => [p.opcode, p.psn, p.payload.length, p.msn])).toEqual([
      [Op.READ_RESP_MIDDLE, 101, 256, undefined], [Op.READ_RESP_LAST, 102, 88, 1],
    ]);
    expect(Array.from(again[0]!.payload)).toEqual(Array.from(mr.bytes.subarray(256, 512)));
    // a retry of the whole READ starts with FIRST again
    b.deliver({ opcode: Op.READ_REQUEST, psn: 100, ackReq: 1, reth });
    expect(b.sent().map((p) => p.opcode)).toEqual([Op.READ_RESP_FIRST, Op.READ_RESP_MIDDLE, Op.READ_RESP_LAST]);
    // a different key, or a range outside the original, is dropped (class D)
    b.deliver({ opcode: Op.READ_REQUEST, psn: 100, ackReq: 1, reth: { ...reth, rkey: mr.rkey ^ 0x100 } });
    b.deliver({ opcode: Op.READ_REQUEST, psn: 101, ackReq: 1, reth: { ...reth, va: mr.addr + 256n, dmaLength: 600 } });
    expect(b.sent()).toEqual([]);
    expect(state(b)).toBe(QpState.RTS);
  });

  it("replays a duplicate zero-length READ whatever key it carries", async () => {
    const b = await RespBench.open();
    const reth = { va: 0x1000n, rkey: 0x4321, dmaLength: 0 };
    b.deliver({ opcode: Op.READ_REQUEST, psn: 100, ackReq: 1, reth });
    b.deliver({ opcode: Op.READ_REQUEST, psn: 100, ackReq: 1, reth });
    expect(b.sent()).toEqual([
      expect.objectContaining({ opcode: Op.READ_RESP_ONLY, psn: 100, syndrome: ACK, msn: 1, payload: new Uint8Array(0) }),
      expect.objectContaining({ opcode: Op.READ_RESP_ONLY, psn: 100, syndrome: ACK, msn: 1, payload: new Uint8Array(0) }),
    ]);
  });

  it("answers a duplicate atomic from the saved original value without executing it again", async () => {
    const b = await RespBench.open();
    const mr = b.mr(16);
    const dv = new DataView(mr.bytes.buffer, mr.bytes.byteOffset, 16);
    dv.setBigUint64(0, 5n, true);
    const atomicEth = { va: mr.addr, rkey: mr.rkey, compare: 0n, swapAdd: 1n };
    b.deliver({ opcode: Op.FETCH_ADD, psn: 100, ackReq: 1, atomicEth });
    b.deliver({ opcode: Op.FETCH_ADD, psn: 100, ackReq: 1, atomicEth });
    expect(b.sent()).toEqual([
      expect.objectContaining({ opcode: Op.ATOMIC_ACK, psn: 100, syndrome: ACK, msn: 1, orig: 5n }),
      expect.objectContaining({ opcode: Op.ATOMIC_ACK, psn: 100, syndrome: ACK, msn: 1, orig: 5n }),
    ]);
    expect(dv.getBigUint64(0, true)).toBe(6n);
  });
});

describe("RC responder: RNR", () => {
  it("sends an RNR NAK 0x20|min_rnr_timer at the request's PSN, and executes the retry once a WQE is posted", async () => {
    const b = await RespBench.open({ minRnrTimer: 14 });
    b.deliver({ opcode: Op.SEND_ONLY, psn: 100, ackReq: 1, payload: pattern(3) });
    expect(b.sent()).toEqual([expect.objectContaining(ack(Op.ACK, 100, 0x20 | 14, 0))]);
    expect(b.counters().send_rnr_err).toBe(1);
    const buf = b.mr(8);
    b.qp.postRecv({ wrId: 4n, sgList: [buf.sge()] });
    b.deliver({ opcode: Op.SEND_ONLY, psn: 100, ackReq: 1, payload: pattern(3) });
    expect(b.sent()).toEqual([expect.objectContaining(ack(Op.ACK, 100, ACK, 1))]);
    expect(b.poll()).toEqual([expect.objectContaining({ wrId: 4n, status: 0, byteLen: 3 })]);
  });

  it("an empty SRQ is RNR too", async () => {
    const b = await RespBench.open({ srq: true, minRnrTimer: 1 });
    b.deliver({ opcode: Op.SEND_ONLY, psn: 100, ackReq: 1 });
    expect(b.sent()).toEqual([expect.objectContaining(ack(Op.ACK, 100, 0x21, 0))]);
  });
});

describe("RC responder: class C errors (NAK, completion in error, QP to ERR)", () => {
  it("an operation the QP's access flags forbid: NAK invalid request, receive queue flushed", async () => {
    const b = await RespBench.open({ access: Access.REMOTE_READ });
    const mr = b.mr(64);
    b.qp.postRecv({ wrId: 5n, sgList: [] });
    b.deliver({ opcode: Op.WRITE_ONLY, psn: 100, ackReq: 1, reth: { va: mr.addr, rkey: mr.rkey, dmaLength: 4 }, payload: pattern(4, 1) });
    expect(b.sent()).toEqual([expect.objectContaining(ack(Op.ACK, 100, NAK_INV, 0))]);
    expect(Array.from(mr.bytes.subarray(0, 4))).toEqual([0, 0, 0, 0]);
    expect(state(b)).toBe(QpState.ERR);
    expect(b.poll()).toEqual([expect.objectContaining({ wrId: 5n, status: WcStatus.WR_FLUSH_ERR })]);
  });

  it("R_Key, bounds and MR access violations: NAK remote access error, nothing written outside the MR", async () => {
    for (const bad of ["rkey", "range", "mr-access"] as const) {
      const b = await RespBench.open();
      const mr = b.mr(64);
      const ro = b.mr(64, Access.LOCAL_WRITE | Access.REMOTE_READ);
      const neighbour = b.mr(64);
      const reth = bad === "rkey" ? { va: mr.addr, rkey: mr.rkey ^ 0x1, dmaLength: 8 }
        : bad === "range" ? { va: mr.addr + 60n, rkey: mr.rkey, dmaLength: 8 }
        : { va: ro.addr, rkey: ro.rkey, dmaLength: 8 };
      b.deliver({ opcode: Op.WRITE_ONLY, psn: 100, ackReq: 1, reth, payload: pattern(8, 1) });
      expect(b.sent(), bad).toEqual([expect.objectContaining(ack(Op.ACK, 100, NAK_ACC, 0))]);
      expect(mr.bytes.every((x) => x === 0) && ro.bytes.every((x) => x === 0) && neighbour.bytes.every((x) => x === 0), bad).toBe(true);
      expect(state(b), bad).toBe(QpState.ERR);
    }
  });

  it("a READ through a bad key, and an atomic on an MR without REMOTE_ATOMIC: NAK remote access error", async () => {
    const b = await RespBench.open();
    b.deliver({ opcode: Op.READ_REQUEST, psn: 100, ackReq: 1, reth: { va: 0n, rkey: 0x777, dmaLength: 4 } });
    expect(b.sent()).toEqual([expect.objectContaining(ack(Op.ACK, 100, NAK_ACC, 0))]);
    const c = await RespBench.open();
    const mr = c.mr(16, Access.LOCAL_WRITE | Access.REMOTE_WRITE);
    c.deliver({ opcode: Op.CMP_SWAP, psn: 100, ackReq: 1, atomicEth: { va: mr.addr, rkey: mr.rkey, compare: 0n, swapAdd: 1n } });
    expect(c.sent()).toEqual([expect.objectContaining(ack(Op.ACK, 100, NAK_ACC, 0))]);
  });

  it("a misaligned atomic: NAK invalid request, memory unchanged", async () => {
    const b = await RespBench.open();
    const mr = b.mr(32);
    b.deliver({ opcode: Op.FETCH_ADD, psn: 100, ackReq: 1, atomicEth: { va: mr.addr + 4n, rkey: mr.rkey, compare: 0n, swapAdd: 1n } });
    expect(b.sent()).toEqual([expect.objectContaining(ack(Op.ACK, 100, NAK_INV, 0))]);
    expect(mr.bytes.every((x) => x === 0)).toBe(true);
    expect(state(b)).toBe(QpState.ERR);
  });

  it("READ/atomic with max_dest_rd_atomic 0: NAK invalid request", async () => {
    const b = await RespBench.open({ maxDestRdAtomic: 0 });
    const mr = b.mr(16);
    b.deliver({ opcode: Op.READ_REQUEST, psn: 100, ackReq: 1, reth: { va: mr.addr, rkey: mr.rkey, dmaLength: 4 } });
    expect(b.sent()).toEqual([expect.objectContaining(ack(Op.ACK, 100, NAK_INV, 0))]);
  });

  it("a MIDDLE without FIRST, and a new message inside one: NAK invalid request; the open WQE completes in error", async () => {
    const b = await RespBench.open({ pathMtu: Mtu.MTU_256 });
    b.deliver({ opcode: Op.SEND_MIDDLE, psn: 100, ackReq: 1, payload: pattern(256) });
    expect(b.sent()).toEqual([expect.objectContaining(ack(Op.ACK, 100, NAK_INV, 0))]);
    expect(state(b)).toBe(QpState.ERR);

    const c = await RespBench.open({ pathMtu: Mtu.MTU_256 });
    const buf = c.mr(1024);
    c.qp.postRecv([{ wrId: 1n, sgList: [buf.sge()] }, { wrId: 2n, sgList: [buf.sge()] }]);
    c.deliver({ opcode: Op.SEND_FIRST, psn: 100, payload: pattern(256) });
    c.deliver({ opcode: Op.SEND_ONLY, psn: 101, ackReq: 1, payload: pattern(4) });
    expect(c.sent()).toEqual([expect.objectContaining(ack(Op.ACK, 101, NAK_INV, 0))]);
    expect(c.poll()).toEqual([
      expect.objectContaining({ wrId: 1n, status: WcStatus.REM_INV_REQ_ERR }),
      expect.objectContaining({ wrId: 2n, status: WcStatus.WR_FLUSH_ERR }),
    ]);
  });

  it("packet lengths against the path MTU: FIRST/MIDDLE must be MTU, ONLY/LAST at most MTU", async () => {
    for (const [op, len] of [[Op.SEND_FIRST, 200], [Op.SEND_ONLY, 257]] as const) {
      const b = await RespBench.open({ pathMtu: Mtu.MTU_256 });
      const buf = b.mr(1024);
      b.qp.postRecv({ wrId: 1n, sgList: [buf.sge()] });
      b.deliver({ opcode: op, psn: 100, ackReq: 1, payload: pattern(len) });
      expect(b.sent()).toEqual([expect.objectContaining(ack(Op.ACK, 100, NAK_INV, 0))]);
      expect(b.poll()).toEqual([expect.objectContaining({ wrId: 1n, status: WcStatus.REM_INV_REQ_ERR })]);
    }
  });

  it("a SEND larger than the receive buffer: NAK invalid request, LOC_LEN_ERR, nothing written past the buffer", async () => {
    const b = await RespBench.open();
    const buf = b.mr(16);
    b.qp.postRecv([{ wrId: 1n, sgList: [buf.sge(0, 8)] }, { wrId: 2n, sgList: [buf.sge(8, 8)] }]);
    b.deliver({ opcode: Op.SEND_ONLY, psn: 100, ackReq: 1, payload: pattern(10, 1) });
    expect(b.sent()).toEqual([expect.objectContaining(ack(Op.ACK, 100, NAK_INV, 0))]);
    expect(Array.from(buf.bytes.subarray(8))).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(b.poll()).toEqual([
      expect.objectContaining({ wrId: 1n, status: WcStatus.LOC_LEN_ERR }),
      expect.objectContaining({ wrId: 2n, status: WcStatus.WR_FLUSH_ERR }),
    ]);
  });

  it("a receive SGE with a bad lkey: NAK remote operational error, LOC_QP_OP_ERR (rxe's malformed WQE)", async () => {
    const b = await RespBench.open();
    b.qp.postRecv({ wrId: 1n, sgList: [{ addr: 0n, length: 64, lkey: 0x4242 }] });
    b.deliver({ opcode: Op.SEND_ONLY, psn: 100, ackReq: 1, payload: pattern(4) });
    expect(b.sent()).toEqual([expect.objectContaining(ack(Op.ACK, 100, NAK_OP, 0))]);
    expect(b.poll()).toEqual([expect.objectContaining({ wrId: 1n, status: WcStatus.LOC_QP_OP_ERR })]);
  });

  it("a QP in ERR takes no more requests", async () => {
    const b = await RespBench.open({ access: 0 });
    b.deliver({ opcode: Op.READ_REQUEST, psn: 100, ackReq: 1, reth: { va: 0n, rkey: 0, dmaLength: 0 } });
    expect(b.sent()).toHaveLength(1);
    expect(b.deliver({ opcode: Op.READ_REQUEST, psn: 101, ackReq: 1, reth: { va: 0n, rkey: 0, dmaLength: 0 } })).toBe("bad_state");
    expect(b.sent()).toEqual([]);
  });
});

describe("RC responder: a full TX ring delays answers, never drops them", () => {
  it("keeps READ responses and ACKs pending and sends them in order when the ring drains", async () => {
    const b = await RespBench.open({ holdLink: true, txRingSize: 2, pathMtu: Mtu.MTU_256 });
    const mr = b.mr(2048);
    const buf = b.mr(16);
    b.qp.postRecv({ wrId: 1n, sgList: [buf.sge()] });
    mr.bytes.set(pattern(2048, 3));
    b.link!.hold = true;
    b.deliver({ opcode: Op.READ_REQUEST, psn: 100, ackReq: 1, reth: { va: mr.addr, rkey: mr.rkey, dmaLength: 1200 } });
    b.deliver({ opcode: Op.READ_REQUEST, psn: 105, ackReq: 1, reth: { va: mr.addr, rkey: mr.rkey, dmaLength: 10 } });
    b.deliver({ opcode: Op.SEND_ONLY, psn: 106, ackReq: 1, payload: pattern(4) }); // writes memory: waits for the READ (RNR)
    expect(b.sent().map((p) => p.psn)).toEqual([100]); // the link took one and pushed back; the ring holds one more
    b.link!.release(() => b.dev.port!.resume());
    const out = b.sent();
    expect(out.map((p) => [p.opcode, p.psn, p.syndrome])).toEqual([
      [Op.READ_RESP_MIDDLE, 101, undefined], [Op.READ_RESP_MIDDLE, 102, undefined], [Op.READ_RESP_MIDDLE, 103, undefined],
      [Op.READ_RESP_LAST, 104, ACK], [Op.READ_RESP_ONLY, 105, ACK], [Op.ACK, 106, 0x20 | 12],
    ]);
    expect(b.poll()).toEqual([]); // the receive WQE is still there for the retry
    b.deliver({ opcode: Op.SEND_ONLY, psn: 106, ackReq: 1, payload: pattern(4) });
    expect(b.sent()).toEqual([expect.objectContaining(ack(Op.ACK, 106, ACK, 3))]);
    expect(b.poll()).toEqual([expect.objectContaining({ wrId: 1n, status: 0, byteLen: 4 })]);
  });

  it("a READ whose MR is deregistered before all its responses are built ends with NAK remote access error", async () => {
    const b = await RespBench.open({ holdLink: true, txRingSize: 2, pathMtu: Mtu.MTU_256 });
    const mr = b.mr(2048);
    b.link!.hold = true;
    b.deliver({ opcode: Op.READ_REQUEST, psn: 100, ackReq: 1, reth: { va: mr.addr, rkey: mr.rkey, dmaLength: 1024 } });
    mr.destroy();
    b.link!.release(() => b.dev.port!.resume());
    expect(b.sent().map((p) => [p.opcode, p.psn, p.syndrome])).toEqual([
      [Op.READ_RESP_FIRST, 100, ACK], [Op.READ_RESP_MIDDLE, 101, undefined], [Op.ACK, 102, NAK_ACC],
    ]);
    expect(state(b)).toBe(QpState.ERR);
  });

  it("a write also waits while READ responses sit in descriptors the host has not released (zero copy)", async () => {
    const b = await RespBench.open({ holdLink: true, txRingSize: 16, pathMtu: Mtu.MTU_256 });
    const mr = b.mr(1024);
    mr.bytes.set(pattern(1024, 9));
    b.link!.hold = true;
    b.deliver({ opcode: Op.READ_REQUEST, psn: 100, ackReq: 1, reth: { va: mr.addr, rkey: mr.rkey, dmaLength: 512 } });
    // both responses are in the ring; the link holds the first and has not been given the second
    b.deliver({ opcode: Op.ATOMIC_WRITE, psn: 102, ackReq: 1, reth: { va: mr.addr + 256n, rkey: mr.rkey, dmaLength: 8 }, payload: new Uint8Array(8).fill(0xee) });
    b.link!.release(() => b.dev.port!.resume());
    const out = b.sent();
    expect(out.map((p) => [p.opcode, p.psn, p.syndrome])).toEqual([
      [Op.READ_RESP_FIRST, 100, ACK], [Op.READ_RESP_LAST, 101, ACK], [Op.ACK, 102, 0x20 | 12],
    ]);
    expect(Array.from(out[1]!.payload.subarray(0, 8))).toEqual(Array.from(pattern(1024, 9).subarray(256, 264)));
    b.deliver({ opcode: Op.ATOMIC_WRITE, psn: 102, ackReq: 1, reth: { va: mr.addr + 256n, rkey: mr.rkey, dmaLength: 8 }, payload: new Uint8Array(8).fill(0xee) });
    expect(b.sent()).toEqual([expect.objectContaining({ opcode: Op.READ_RESP_ONLY, psn: 102, syndrome: ACK, msn: 2 })]);
    expect(mr.bytes[256]).toBe(0xee);
  });

  it("a write to memory a pending READ still has to send waits (RNR NAK): the READ returns the data as it was", async () => {
    const b = await RespBench.open({ holdLink: true, txRingSize: 2, pathMtu: Mtu.MTU_256 });
    const mr = b.mr(2048);
    const before = pattern(2048, 3);
    mr.bytes.set(before);
    b.link!.hold = true;
    b.deliver({ opcode: Op.READ_REQUEST, psn: 100, ackReq: 1, reth: { va: mr.addr, rkey: mr.rkey, dmaLength: 1024 } });
    b.deliver({ opcode: Op.WRITE_ONLY, psn: 104, ackReq: 1, reth: { va: mr.addr + 512n, rkey: mr.rkey, dmaLength: 8 }, payload: new Uint8Array(8).fill(0xee) });
    expect(mr.bytes[512]).toBe(before[512]);
    b.link!.release(() => b.dev.port!.resume());
    const out = b.sent();
    expect(out.map((p) => [p.opcode, p.psn, p.syndrome])).toEqual([
      [Op.READ_RESP_FIRST, 100, ACK], [Op.READ_RESP_MIDDLE, 101, undefined], [Op.READ_RESP_MIDDLE, 102, undefined],
      [Op.READ_RESP_LAST, 103, ACK], [Op.ACK, 104, 0x20 | 12],
    ]);
    expect(Array.from(out.flatMap((p) => (p.opcode === Op.ACK ? [] : Array.from(p.payload))))).toEqual(Array.from(before.subarray(0, 1024)));
    // the retry after the RNR timer finds the READ sent and executes
    b.deliver({ opcode: Op.WRITE_ONLY, psn: 104, ackReq: 1, reth: { va: mr.addr + 512n, rkey: mr.rkey, dmaLength: 8 }, payload: new Uint8Array(8).fill(0xee) });
    expect(b.sent()).toEqual([expect.objectContaining(ack(Op.ACK, 104, ACK, 2))]);
    expect(mr.bytes[512]).toBe(0xee);
  });
});

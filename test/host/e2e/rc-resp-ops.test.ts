// RC responder, every operation on the good path: exact packets on the wire,
// receive completions and memory contents.
import { describe, expect, it } from "vitest";
import { Access, Mtu, WcFlags, WcOpcode, WcStatus } from "../../../host/core/verbs/enums.js";
import { ack, ACK, Op, pattern, PEER_QPN, RespBench } from "../support/rc-resp-harness.js";

describe("RC responder: SEND", () => {
  it("SEND ONLY with AckReq: data in the receive buffer, one ACK, one RECV completion", async () => {
    const b = await RespBench.open({ rqPsn: 100 });
    const buf = b.mr(64);
    b.qp.postRecv({ wrId: 11n, sgList: [buf.sge(0, 64)] });
    expect(b.deliver({ opcode: Op.SEND_ONLY, psn: 100, ackReq: 1, payload: pattern(10) })).toBe("ok");
    expect(b.sent()).toEqual([expect.objectContaining(ack(Op.ACK, 100, ACK, 1))]);
    expect(Array.from(buf.bytes.subarray(0, 11))).toEqual([...pattern(10), 0]);
    const [wc, more] = b.poll();
    expect(more).toBeUndefined();
    expect(wc).toMatchObject({
      wrId: 11n, status: WcStatus.SUCCESS, opcode: WcOpcode.RECV, byteLen: 10, qpNum: b.qp.qpNum, srcQp: PEER_QPN,
      wcFlags: WcFlags.GRH,
    });
    expect(b.counters()).toMatchObject({ rdma_recvs: 1, sent_pkts: 1, rcvd_pkts: 1 });
  });

  it("without AckReq the request is executed and not acknowledged", async () => {
    const b = await RespBench.open({ rqPsn: 5 });
    const buf = b.mr(16);
    b.qp.postRecv({ wrId: 1n, sgList: [buf.sge()] });
    b.deliver({ opcode: Op.SEND_ONLY, psn: 5, payload: pattern(4) });
    expect(b.sent()).toEqual([]);
    expect(b.poll()).toHaveLength(1);
  });

  it("scatters a FIRST/MIDDLE/LAST message over several SGEs; the ACK covers all (MSN counts messages)", async () => {
    const b = await RespBench.open({ rqPsn: 0xfffffe, pathMtu: Mtu.MTU_256 }); // PSNs wrap inside the message
    const a = b.mr(300);
    const c = b.mr(500);
    b.qp.postRecv({ wrId: 7n, sgList: [a.sge(0, 300), c.sge(100, 400)] });
    const msg = pattern(256 * 2 + 100, 3);
    b.deliver({ opcode: Op.SEND_FIRST, psn: 0xfffffe, payload: msg.subarray(0, 256) });
    b.deliver({ opcode: Op.SEND_MIDDLE, psn: 0xffffff, payload: msg.subarray(256, 512) });
    expect(b.sent()).toEqual([]);
    expect(b.poll()).toEqual([]);
    b.deliver({ opcode: Op.SEND_LAST_IMM, psn: 0, ackReq: 1, immDt: 0xdeadbeef, payload: msg.subarray(512) });
    expect(b.sent()).toEqual([expect.objectContaining(ack(Op.ACK, 0, ACK, 1))]);
    expect(Array.from(a.bytes)).toEqual(Array.from(msg.subarray(0, 300)));
    expect(Array.from(c.bytes.subarray(100, 100 + 312))).toEqual(Array.from(msg.subarray(300)));
    expect(c.bytes[99]).toBe(0);
    expect(c.bytes[412]).toBe(0);
    expect(b.poll()).toEqual([expect.objectContaining({
      wrId: 7n, status: WcStatus.SUCCESS, opcode: WcOpcode.RECV, byteLen: 612, immData: 0xdeadbeef,
      wcFlags: WcFlags.GRH | WcFlags.WITH_IMM,
    })]);
    // the next message starts at PSN 1 and its ACK carries MSN 2
    b.qp.postRecv({ wrId: 8n, sgList: [a.sge(0, 8)] });
    b.deliver({ opcode: Op.SEND_ONLY, psn: 1, ackReq: 1, payload: pattern(8) });
    expect(b.sent()).toEqual([expect.objectContaining(ack(Op.ACK, 1, ACK, 2))]);
  });

  it("a zero-length SEND completes with byte_len 0", async () => {
    const b = await RespBench.open();
    b.qp.postRecv({ wrId: 3n, sgList: [] });
    b.deliver({ opcode: Op.SEND_ONLY, psn: 100, ackReq: 1 });
    expect(b.sent()).toEqual([expect.objectContaining(ack(Op.ACK, 100, ACK, 1))]);
    expect(b.poll()).toEqual([expect.objectContaining({ wrId: 3n, status: WcStatus.SUCCESS, byteLen: 0 })]);
  });

  it("takes receive WQEs from an SRQ", async () => {
    const b = await RespBench.open({ srq: true });
    const buf = b.mr(32);
    b.srq!.postRecv([{ wrId: 21n, sgList: [buf.sge(0, 16)] }, { wrId: 22n, sgList: [buf.sge(16, 16)] }]);
    b.deliver({ opcode: Op.SEND_ONLY, psn: 100, payload: pattern(16, 1) });
    b.deliver({ opcode: Op.SEND_ONLY, psn: 101, ackReq: 1, payload: pattern(5, 9) });
    expect(b.sent()).toEqual([expect.objectContaining(ack(Op.ACK, 101, ACK, 2))]);
    expect(b.poll()).toEqual([
      expect.objectContaining({ wrId: 21n, byteLen: 16, status: 0 }),
      expect.objectContaining({ wrId: 22n, byteLen: 5, status: 0 }),
    ]);
    expect(Array.from(buf.bytes.subarray(16, 21))).toEqual(Array.from(pattern(5, 9)));
  });
});

describe("RC responder: RDMA WRITE", () => {
  it("places FIRST/MIDDLE/LAST at the RETH address; only the last packet asks for the ACK", async () => {
    const b = await RespBench.open({ pathMtu: Mtu.MTU_512 });
    const mr = b.mr(4096);
    const data = pattern(512 * 2 + 7, 5);
    const va = mr.addr + 1000n;
    b.deliver({ opcode: Op.WRITE_FIRST, psn: 100, reth: { va, rkey: mr.rkey, dmaLength: data.length }, payload: data.subarray(0, 512) });
    b.deliver({ opcode: Op.WRITE_MIDDLE, psn: 101, payload: data.subarray(512, 1024) });
    b.deliver({ opcode: Op.WRITE_LAST, psn: 102, ackReq: 1, payload: data.subarray(1024) });
    expect(b.sent()).toEqual([expect.objectContaining(ack(Op.ACK, 102, ACK, 1))]);
    expect(Array.from(mr.bytes.subarray(1000, 1000 + data.length))).toEqual(Array.from(data));
    expect(mr.bytes[999]).toBe(0);
    expect(mr.bytes[1000 + data.length]).toBe(0);
    expect(b.poll()).toEqual([]); // a WRITE without immediate consumes no receive WQE
  });

  it("WRITE with immediate completes a receive WQE as RECV_RDMA_WITH_IMM with the RETH length", async () => {
    const b = await RespBench.open();
    const mr = b.mr(256);
    b.qp.postRecv({ wrId: 9n, sgList: [] });
    b.deliver({ opcode: Op.WRITE_ONLY_IMM, psn: 100, ackReq: 1, immDt: 0x01020304, reth: { va: mr.addr, rkey: mr.rkey, dmaLength: 33 }, payload: pattern(33) });
    expect(b.sent()).toEqual([expect.objectContaining(ack(Op.ACK, 100, ACK, 1))]);
    expect(b.poll()).toEqual([expect.objectContaining({
      wrId: 9n, status: 0, opcode: WcOpcode.RECV_RDMA_WITH_IMM, byteLen: 33, immData: 0x01020304,
      wcFlags: WcFlags.GRH | WcFlags.WITH_IMM,
    })]);
    expect(Array.from(mr.bytes.subarray(0, 33))).toEqual(Array.from(pattern(33)));
  });

  it("a zero-length WRITE needs no valid rkey (C9-88)", async () => {
    const b = await RespBench.open();
    b.deliver({ opcode: Op.WRITE_ONLY, psn: 100, ackReq: 1, reth: { va: 0xdead0000n, rkey: 0x12345, dmaLength: 0 } });
    expect(b.sent()).toEqual([expect.objectContaining(ack(Op.ACK, 100, ACK, 1))]);
  });
});

describe("RC responder: RDMA READ", () => {
  it("answers with FIRST/MIDDLE/LAST straight from the MR, PSNs from the request's; the next request follows them", async () => {
    const b = await RespBench.open({ pathMtu: Mtu.MTU_256, rqPsn: 0xfffffe });
    const mr = b.mr(2048);
    mr.bytes.set(pattern(2048, 17));
    b.deliver({ opcode: Op.READ_REQUEST, psn: 0xfffffe, ackReq: 1, reth: { va: mr.addr + 10n, rkey: mr.rkey, dmaLength: 600 } });
    const out = b.sent();
    expect(out.map((p) => [p.opcode, p.psn, p.payload.length, p.syndrome, p.msn])).toEqual([
      [Op.READ_RESP_FIRST, 0xfffffe, 256, ACK, 1],
      [Op.READ_RESP_MIDDLE, 0xffffff, 256, undefined, undefined],
      [Op.READ_RESP_LAST, 0, 88, ACK, 1],
    ]);
    const got = new Uint8Array([...out[0]!.payload, ...out[1]!.payload, ...out[2]!.payload]);
    expect(Array.from(got)).toEqual(Array.from(mr.bytes.subarray(10, 610)));
    expect(out.every((p) => p.destQp === PEER_QPN && p.ackReq === 0)).toBe(true);
    // the next request's PSN is the one after the last response
    b.qp.postRecv({ wrId: 1n, sgList: [] });
    b.deliver({ opcode: Op.SEND_ONLY, psn: 1, ackReq: 1 });
    expect(b.sent()).toEqual([expect.objectContaining(ack(Op.ACK, 1, ACK, 2))]);
  });

  it("a short READ is one RESPONSE ONLY; a zero-length READ one empty RESPONSE ONLY without an rkey check", async () => {
    const b = await RespBench.open();
    const mr = b.mr(64);
    mr.bytes.set(pattern(64));
    b.deliver({ opcode: Op.READ_REQUEST, psn: 100, ackReq: 1, reth: { va: mr.addr, rkey: mr.rkey, dmaLength: 7 } });
    b.deliver({ opcode: Op.READ_REQUEST, psn: 101, ackReq: 1, reth: { va: 0n, rkey: 0, dmaLength: 0 } });
    const out = b.sent();
    expect(out).toEqual([
      expect.objectContaining({ opcode: Op.READ_RESP_ONLY, psn: 100, syndrome: ACK, msn: 1 }),
      expect.objectContaining({ opcode: Op.READ_RESP_ONLY, psn: 101, syndrome: ACK, msn: 2 }),
    ]);
    expect(Array.from(out[0]!.payload)).toEqual(Array.from(pattern(7)));
    expect(out[1]!.payload.length).toBe(0);
  });
});

describe("RC responder: atomics, ATOMIC_WRITE, FLUSH", () => {
  it("CMP_SWAP and FETCH_ADD execute once on the little-endian u64 and return the original value", async () => {
    const b = await RespBench.open();
    const mr = b.mr(64);
    const dv = new DataView(mr.bytes.buffer, mr.bytes.byteOffset, 64);
    dv.setBigUint64(8, 5n, true);
    b.deliver({ opcode: Op.CMP_SWAP, psn: 100, ackReq: 1, atomicEth: { va: mr.addr + 8n, rkey: mr.rkey, compare: 5n, swapAdd: 0x1122334455667788n } });
    b.deliver({ opcode: Op.CMP_SWAP, psn: 101, ackReq: 1, atomicEth: { va: mr.addr + 8n, rkey: mr.rkey, compare: 5n, swapAdd: 9n } });
    b.deliver({ opcode: Op.FETCH_ADD, psn: 102, ackReq: 1, atomicEth: { va: mr.addr + 8n, rkey: mr.rkey, compare: 0n, swapAdd: 0x10n } });
    expect(b.sent()).toEqual([
      expect.objectContaining({ opcode: Op.ATOMIC_ACK, psn: 100, syndrome: ACK, msn: 1, orig: 5n }),
      expect.objectContaining({ opcode: Op.ATOMIC_ACK, psn: 101, syndrome: ACK, msn: 2, orig: 0x1122334455667788n }),
      expect.objectContaining({ opcode: Op.ATOMIC_ACK, psn: 102, syndrome: ACK, msn: 3, orig: 0x1122334455667788n }),
    ]);
    expect(dv.getBigUint64(8, true)).toBe(0x1122334455667798n);
  });

  it("ATOMIC_WRITE stores 8 bytes and FLUSH is acknowledged, each with an empty READ RESPONSE ONLY (as rxe)", async () => {
    const b = await RespBench.open({ access: Access.REMOTE_WRITE | Access.FLUSH_GLOBAL });
    const mr = b.mr(64, Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.FLUSH_GLOBAL);
    const value = pattern(8, 40);
    b.deliver({ opcode: Op.ATOMIC_WRITE, psn: 100, ackReq: 1, reth: { va: mr.addr + 16n, rkey: mr.rkey, dmaLength: 8 }, payload: value });
    b.deliver({ opcode: Op.FLUSH, psn: 101, ackReq: 1, feth: 0x01, reth: { va: mr.addr, rkey: mr.rkey, dmaLength: 64 } });
    expect(b.sent()).toEqual([
      expect.objectContaining({ opcode: Op.READ_RESP_ONLY, psn: 100, syndrome: ACK, msn: 1, payload: new Uint8Array(0) }),
      expect.objectContaining({ opcode: Op.READ_RESP_ONLY, psn: 101, syndrome: ACK, msn: 2, payload: new Uint8Array(0) }),
    ]);
    expect(Array.from(mr.bytes.subarray(16, 24))).toEqual(Array.from(value));
  });
});

describe("RC responder: events", () => {
  it("marks the completion of a message with the SE bit solicited: a CQ armed solicited-only wakes for it alone", async () => {
    const b = await RespBench.open({ channel: true });
    const buf = b.mr(16);
    b.qp.postRecv([{ wrId: 1n, sgList: [buf.sge()] }, { wrId: 2n, sgList: [buf.sge()] }]);
    b.cq.reqNotify(true);
    b.deliver({ opcode: Op.SEND_ONLY, psn: 100, payload: pattern(2) });
    await new Promise((r) => setTimeout(r, 0));
    expect(b.channel!.pending).toBe(0);
    b.deliver({ opcode: Op.SEND_ONLY, psn: 101, se: 1, payload: pattern(2) });
    await new Promise((r) => setTimeout(r, 0));
    expect(b.channel!.pending).toBe(1);
    expect(b.poll().map((wc) => wc.wrId)).toEqual([1n, 2n]);
  });

  it("raises SRQ_LIMIT_REACHED when a request takes the SRQ below its limit", async () => {
    const b = await RespBench.open({ srq: true });
    const events: { eventName: string; info: number }[] = [];
    b.dev.on("event", (e) => events.push(e));
    const buf = b.mr(16);
    b.srq!.postRecv([{ wrId: 1n, sgList: [buf.sge()] }, { wrId: 2n, sgList: [buf.sge()] }, { wrId: 3n, sgList: [buf.sge()] }]);
    b.srq!.modify({ srqLimit: 2 });
    b.deliver({ opcode: Op.SEND_ONLY, psn: 100, payload: pattern(2) });
    await new Promise((r) => setTimeout(r, 0));
    expect(events).toEqual([]);
    b.deliver({ opcode: Op.SEND_ONLY, psn: 101, payload: pattern(2) });
    await new Promise((r) => setTimeout(r, 0));
    expect(events.map((e) => [e.eventName, e.info])).toEqual([["SRQ_LIMIT_REACHED", 1]]);
  });
});

describe("RC responder: no allocation on the packet path", () => {
  it("linear memory does not grow over thousands of requests of every kind", async () => {
    const b = await RespBench.open({ pathMtu: Mtu.MTU_256 });
    const mr = b.mr(4096);
    const buf = b.mr(4096);
    let psn = 100;
    const round = () => {
      b.qp.postRecv({ wrId: BigInt(psn), sgList: [buf.sge()] });
      b.deliver({ opcode: Op.SEND_FIRST, psn: psn++, payload: pattern(256) });
      b.deliver({ opcode: Op.SEND_LAST, psn: psn++, ackReq: 1, payload: pattern(10) });
      b.deliver({ opcode: Op.WRITE_ONLY, psn: psn++, ackReq: 1, reth: { va: mr.addr, rkey: mr.rkey, dmaLength: 200 }, payload: pattern(200) });
      b.deliver({ opcode: Op.READ_REQUEST, psn, ackReq: 1, reth: { va: mr.addr, rkey: mr.rkey, dmaLength: 600 } });
      psn += 3;
      b.deliver({ opcode: Op.FETCH_ADD, psn: psn++, ackReq: 1, atomicEth: { va: mr.addr, rkey: mr.rkey, compare: 0n, swapAdd: 1n } });
      b.deliver({ opcode: Op.SEND_ONLY, psn: psn + 5, ackReq: 1 }); // a gap: sequence NAK
      b.deliver({ opcode: Op.WRITE_ONLY, psn: psn - 2, ackReq: 1, reth: { va: mr.addr, rkey: mr.rkey, dmaLength: 0 } }); // duplicate
      b.poll();
    };
    round();
    const size = b.dev.memory.buffer.byteLength;
    for (let i = 0; i < 1000; i++) round();
    expect(b.dev.memory.buffer.byteLength).toBe(size);
    const out = b.sent();
    // per round: two ACKs, three READ responses, an atomic ACK, a sequence NAK, the duplicate's re-ACK
    expect(out.length).toBe(1001 * 8);
    expect(out.slice(-8).map((p) => [p.opcode, p.psn, p.syndrome])).toEqual([
      [Op.ACK, psn - 6, ACK], [Op.ACK, psn - 5, ACK], [Op.READ_RESP_FIRST, psn - 4, ACK], [Op.READ_RESP_MIDDLE, psn - 3, undefined],
      [Op.READ_RESP_LAST, psn - 2, ACK], [Op.ATOMIC_ACK, psn - 1, ACK], [Op.ACK, psn, 0x60], [Op.ACK, psn - 1, ACK],
    ]);
  });
});

// RC requester: WQEs -> request packets, exactly (opcodes, PSNs, AckReq, headers,
// payload bytes), against a scripted peer (rc-req-harness.ts).
import { describe, expect, it } from "vitest";
import { ReqBench, OP, PEER_QPN, brief, psnAdd } from "../support/rc-req-harness.js";
import { Mtu, QpType, SendFlags, WcOpcode, WcStatus, WrOpcode, QpState } from "../../../host/core/verbs/enums.js";

const WRAP = 0xfffffe; // two PSNs below the wrap

describe("RC requester: SEND segmentation", () => {
  it("splits a 3000-byte SEND at MTU 1024 into FIRST/MIDDLE/LAST across the PSN wrap, AckReq on the last", async () => {
    const b = await ReqBench.create({ sqPsn: WRAP });
    b.post({ wrId: 7n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [b.mr.sge(100, 3000)] });
    const p = b.sent();
    expect(p.map(brief)).toEqual([
      [OP.SEND_FIRST, 0xfffffe, 0, 1024],
      [OP.SEND_MIDDLE, 0xffffff, 0, 1024],
      [OP.SEND_LAST, 0x000000, 1, 952],
    ]);
    for (const x of p) {
      expect(x.destQp).toBe(PEER_QPN);
      expect(x.pkey).toBe(0xffff);
      expect(x.se).toBe(0);
      expect(x.dst).toBe("127.0.0.2");
    }
    expect(p[2]!.padCount).toBe(0);
    const all = new Uint8Array([...p[0]!.payload, ...p[1]!.payload, ...p[2]!.payload]);
    expect(all).toEqual(b.mr.bytes.slice(100, 3100));
    expect(b.poll()).toEqual([]); // nothing completes before the ACK
    expect(b.ack(0x000000)).toBe(0);
    const wc = b.poll();
    expect(wc).toHaveLength(1);
    expect(wc[0]).toMatchObject({ wrId: 7n, status: WcStatus.SUCCESS, opcode: WcOpcode.SEND, byteLen: 3000, qpNum: b.qp.qpNum, wcFlags: 0 });
    expect(b.dev.queryCounters()).toMatchObject({ sent_pkts: 3, rdma_sends: 1 });
    expect(b.dev.core.next_deadline()).toBe(Infinity); // nothing unacknowledged: no retransmit timer
  });

  it("sends a zero-length SEND as one SEND ONLY with no payload", async () => {
    const b = await ReqBench.create();
    b.post({ wrId: 1n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED });
    expect(b.sent().map(brief)).toEqual([[OP.SEND_ONLY, 0x10, 1, 0]]);
    b.ack(0x10);
    expect(b.poll()[0]).toMatchObject({ wrId: 1n, status: 0, opcode: WcOpcode.SEND, byteLen: 0 });
  });

  it("pads an odd payload to 4 bytes and sets SE for a solicited SEND with immediate", async () => {
    const b = await ReqBench.create();
    b.post({ opcode: WrOpcode.SEND_WITH_IMM, immData: 0x11223344, sendFlags: SendFlags.SOLICITED | SendFlags.SIGNALED, sgList: [b.mr.sge(0, 5)] });
    const [p] = b.sent();
    expect(brief(p!)).toEqual([OP.SEND_ONLY_IMM, 0x10, 1, 5]);
    expect(p!.padCount).toBe(3);
    expect(p!.se).toBe(1);
    expect(p!.immDt).toBe(0x11223344);
    b.ack(0x10);
    expect(b.poll()[0]).toMatchObject({ opcode: WcOpcode.SEND, byteLen: 5, wcFlags: 2 /* WITH_IMM */ });
  });

  it("gathers a packet that spans SGEs (bounce) and keeps the bytes in order", async () => {
    const b = await ReqBench.create();
    const sges = [b.mr.sge(0, 700), b.mr.sge(5000, 700), b.mr.sge(9000, 100)];
    b.post({ opcode: WrOpcode.SEND, sgList: sges });
    const p = b.sent();
    expect(p.map(brief)).toEqual([[OP.SEND_FIRST, 0x10, 0, 1024], [OP.SEND_LAST, 0x11, 1, 476]]);
    const want = new Uint8Array([...b.mr.bytes.slice(0, 700), ...b.mr.bytes.slice(5000, 5700), ...b.mr.bytes.slice(9000, 9100)]);
    expect(new Uint8Array([...p[0]!.payload, ...p[1]!.payload])).toEqual(want);
  });

  it("inline data longer than the MTU goes out in MTU pieces from the WQE", async () => {
    const b = await ReqBench.create({ maxInlineData: 512, pathMtu: Mtu.MTU_256 });
    const src = Uint8Array.from({ length: 600 }, (_, i) => (i * 5) & 0xff);
    b.mr.bytes.set(src, 0);
    b.post({ opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.INLINE, rdma: { remoteAddr: 0n, rkey: 1 }, sgList: [b.mr.sge(0, 300), b.mr.sge(300, 212)] });
    b.mr.bytes.fill(0, 0, 600);
    const p = b.sent();
    expect(p.map(brief)).toEqual([[OP.WRITE_FIRST, 0x10, 0, 256], [OP.WRITE_LAST, 0x11, 1, 256]]);
    expect(p[0]!.reth).toEqual({ va: 0n, rkey: 1, dmaLength: 512 });
    expect(new Uint8Array(p.flatMap((x) => Array.from(x.payload)))).toEqual(src.slice(0, 512));
  });

  it("sends inline data from the WQE (the buffer may change after the post)", async () => {
    const b = await ReqBench.create({ maxInlineData: 64 });
    b.mr.bytes.set([1, 2, 3, 4, 5, 6], 0);
    b.post({ opcode: WrOpcode.SEND, sendFlags: SendFlags.INLINE, sgList: [b.mr.sge(0, 6)] });
    b.mr.bytes.fill(0, 0, 6);
    const [p] = b.sent();
    expect(Array.from(p!.payload)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("sets AckReq on the 66th packet of a long message as rxe does (rc-write-long capture)", async () => {
    const b = await ReqBench.create({ pathMtu: Mtu.MTU_256 });
    b.post({ opcode: WrOpcode.RDMA_WRITE, rdma: { remoteAddr: 0x1000n, rkey: 0x1234 }, sgList: [b.mr.sge(0, 68 * 256)] });
    const p = b.sent();
    expect(p).toHaveLength(68);
    expect(p.map((x) => x.ackReq).reduce((a, v, i) => (v ? [...a, i] : a), [] as number[])).toEqual([65, 67]);
    expect(p[0]!.opcode).toBe(OP.WRITE_FIRST);
    expect(p[0]!.reth).toEqual({ va: 0x1000n, rkey: 0x1234, dmaLength: 68 * 256 });
    expect(p[1]!.reth).toBeUndefined();
    expect(p[67]!.opcode).toBe(OP.WRITE_LAST);
  });
});

describe("RC requester: WRITE, READ, atomics", () => {
  it("WRITE with immediate: RETH on FIRST, ImmDt on LAST, SE only on the last", async () => {
    const b = await ReqBench.create();
    b.post({
      wrId: 3n, opcode: WrOpcode.RDMA_WRITE_WITH_IMM, immData: 0xcafe, sendFlags: SendFlags.SOLICITED | SendFlags.SIGNALED,
      rdma: { remoteAddr: 0x123456789an, rkey: 0xabcd }, sgList: [b.mr.sge(0, 1500)],
    });
    const p = b.sent();
    expect(p.map(brief)).toEqual([[OP.WRITE_FIRST, 0x10, 0, 1024], [OP.WRITE_LAST_IMM, 0x11, 1, 476]]);
    expect(p[0]!.reth).toEqual({ va: 0x123456789an, rkey: 0xabcd, dmaLength: 1500 });
    expect(p[1]!.immDt).toBe(0xcafe);
    expect([p[0]!.se, p[1]!.se]).toEqual([0, 1]);
    b.ack(0x11);
    expect(b.poll()[0]).toMatchObject({ wrId: 3n, opcode: WcOpcode.RDMA_WRITE, byteLen: 1500, wcFlags: 2 });
  });

  it("READ takes one PSN per response packet and places the data into two SGEs", async () => {
    const b = await ReqBench.create({ sqPsn: WRAP });
    b.mr.bytes.fill(0, 20000, 24000);
    b.post([
      { wrId: 9n, opcode: WrOpcode.RDMA_READ, sendFlags: SendFlags.SIGNALED, rdma: { remoteAddr: 0x8000n, rkey: 0x77 }, sgList: [b.mr.sge(20000, 1000), b.mr.sge(22000, 1500)] },
      { wrId: 10n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED },
    ]);
    const p = b.sent();
    expect(p.map(brief)).toEqual([[OP.READ_REQ, 0xfffffe, 1, 0], [OP.SEND_ONLY, 0x000001, 1, 0]]);
    expect(p[0]!.reth).toEqual({ va: 0x8000n, rkey: 0x77, dmaLength: 2500 });
    const data = Uint8Array.from({ length: 2500 }, (_, i) => (i * 13 + 1) & 0xff);
    expect(b.respond({ opcode: OP.READ_FIRST, psn: 0xfffffe, aeth: { syndrome: 0x1f, msn: 1 }, payload: data.slice(0, 1024) })).toBe(0);
    expect(b.respond({ opcode: OP.READ_MIDDLE, psn: 0xffffff, payload: data.slice(1024, 2048) })).toBe(0);
    expect(b.poll()).toEqual([]);
    b.respond({ opcode: OP.READ_LAST, psn: 0x000000, aeth: { syndrome: 0x1f, msn: 1 }, payload: data.slice(2048) });
    expect(b.poll()).toMatchObject([{ wrId: 9n, status: 0, opcode: WcOpcode.RDMA_READ, byteLen: 2500 }]);
    expect(b.mr.bytes.slice(20000, 21000)).toEqual(data.slice(0, 1000));
    expect(b.mr.bytes.slice(22000, 23500)).toEqual(data.slice(1000));
    expect(b.mr.bytes[21000]).toBe(0);
    b.ack(0x000001);
    expect(b.poll()).toMatchObject([{ wrId: 10n, opcode: WcOpcode.SEND }]);
  });

  it("CMP_SWAP and FETCH_ADD: AtomicETH fields, the original value lands in the local SGE", async () => {
    const b = await ReqBench.create({ maxRdAtomic: 2 });
    b.post([
      { wrId: 1n, opcode: WrOpcode.ATOMIC_CMP_AND_SWP, sendFlags: SendFlags.SIGNALED, atomic: { remoteAddr: 0x40n, rkey: 5, compareAdd: 11n, swap: 22n }, sgList: [b.mr.sge(64, 8)] },
      { wrId: 2n, opcode: WrOpcode.ATOMIC_FETCH_AND_ADD, sendFlags: SendFlags.SIGNALED, atomic: { remoteAddr: 0x48n, rkey: 5, compareAdd: 3n }, sgList: [b.mr.sge(72, 8)] },
    ]);
    const p = b.sent();
    expect(p.map(brief)).toEqual([[OP.CMP_SWAP, 0x10, 1, 0], [OP.FETCH_ADD, 0x11, 1, 0]]);
    expect(p[0]!.atomicEth).toEqual({ va: 0x40n, rkey: 5, swapAdd: 22n, compare: 11n });
    expect(p[1]!.atomicEth).toEqual({ va: 0x48n, rkey: 5, swapAdd: 3n, compare: 0n });
    b.respond({ opcode: OP.ATOMIC_ACK, psn: 0x10, aeth: { syndrome: 0x1f, msn: 1 }, atomicAckEth: { origRemoteData: 0x0102030405060708n } });
    b.respond({ opcode: OP.ATOMIC_ACK, psn: 0x11, aeth: { syndrome: 0x1f, msn: 2 }, atomicAckEth: { origRemoteData: 99n } });
    expect(b.poll()).toMatchObject([
      { wrId: 1n, status: 0, opcode: WcOpcode.COMP_SWAP, byteLen: 8 },
      { wrId: 2n, status: 0, opcode: WcOpcode.FETCH_ADD, byteLen: 8 },
    ]);
    const dv = new DataView(b.mr.bytes.buffer, b.mr.bytes.byteOffset);
    expect(dv.getBigUint64(64, true)).toBe(0x0102030405060708n);
    expect(dv.getBigUint64(72, true)).toBe(99n);
  });

  it("max_rd_atomic = 1: the second READ waits for the first one's response", async () => {
    const b = await ReqBench.create({ maxRdAtomic: 1 });
    b.post([
      { wrId: 1n, opcode: WrOpcode.RDMA_READ, rdma: { remoteAddr: 0n, rkey: 1 }, sgList: [b.mr.sge(0, 16)] },
      { wrId: 2n, opcode: WrOpcode.RDMA_READ, sendFlags: SendFlags.SIGNALED, rdma: { remoteAddr: 16n, rkey: 1 }, sgList: [b.mr.sge(16, 16)] },
    ]);
    expect(b.sent().map(brief)).toEqual([[OP.READ_REQ, 0x10, 1, 0]]);
    b.respond({ opcode: OP.READ_ONLY, psn: 0x10, aeth: { syndrome: 0x1f, msn: 1 }, payload: new Uint8Array(16).fill(0xaa) });
    expect(b.sent().map(brief)).toEqual([[OP.READ_REQ, 0x11, 1, 0]]);
    expect(b.poll()).toEqual([]); // the first READ was unsignaled
  });

  it("max_rd_atomic = 0: a READ cannot be issued and completes with LOC_QP_OP_ERR instead of waiting forever", async () => {
    const b = await ReqBench.create({ maxRdAtomic: 0 });
    b.post([
      { wrId: 1n, opcode: WrOpcode.SEND, sgList: [b.mr.sge(0, 8)] },
      { wrId: 2n, opcode: WrOpcode.RDMA_READ, rdma: { remoteAddr: 0n, rkey: 1 }, sgList: [b.mr.sge(0, 16)] },
    ]);
    expect(b.sent().map(brief)).toEqual([[OP.SEND_ONLY, 0x10, 1, 8]]);
    expect(b.poll()).toMatchObject([{ wrId: 1n, status: WcStatus.WR_FLUSH_ERR }, { wrId: 2n, status: WcStatus.LOC_QP_OP_ERR }]);
  });

  it("a fenced SEND waits until the READ before it completes", async () => {
    const b = await ReqBench.create({ maxRdAtomic: 4 });
    b.post([
      { wrId: 1n, opcode: WrOpcode.RDMA_READ, rdma: { remoteAddr: 0n, rkey: 1 }, sgList: [b.mr.sge(0, 8)] },
      { wrId: 2n, opcode: WrOpcode.SEND, sendFlags: SendFlags.FENCE, sgList: [b.mr.sge(0, 8)] },
    ]);
    expect(b.sent().map(brief)).toEqual([[OP.READ_REQ, 0x10, 1, 0]]);
    b.respond({ opcode: OP.READ_ONLY, psn: 0x10, aeth: { syndrome: 0x1f, msn: 1 }, payload: new Uint8Array(8) });
    expect(b.sent().map(brief)).toEqual([[OP.SEND_ONLY, 0x11, 1, 8]]);
  });

  it("unsignaled WQEs complete silently; sq_sig_all signals every one", async () => {
    const b = await ReqBench.create();
    b.post([{ wrId: 1n, opcode: WrOpcode.SEND }, { wrId: 2n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED }]);
    b.ack(0x11); // coalesced: acknowledges both
    expect(b.poll().map((w) => w.wrId)).toEqual([2n]);
    const c = await ReqBench.create({ sqSigAll: true });
    c.post([{ wrId: 1n, opcode: WrOpcode.SEND }, { wrId: 2n, opcode: WrOpcode.SEND }]);
    c.ack(0x11);
    expect(c.poll().map((w) => w.wrId)).toEqual([1n, 2n]);
  });
});

describe("RC requester: window and local errors", () => {
  it("stops after 129 unacknowledged PSNs and resumes on the ACK", async () => {
    const b = await ReqBench.create({ pathMtu: Mtu.MTU_256, sqPsn: 0xffff00 });
    b.post({ opcode: WrOpcode.RDMA_WRITE, rdma: { remoteAddr: 0n, rkey: 1 }, sgList: [b.mr.sge(0, 200 * 256)] });
    const first = b.sent();
    expect(first).toHaveLength(129);
    expect(first[128]!.psn).toBe(psnAdd(0xffff00, 128));
    b.ack(psnAdd(0xffff00, 9));
    const more = b.sent();
    expect(more.map((x) => x.psn)).toEqual(Array.from({ length: 10 }, (_, i) => psnAdd(0xffff00, 129 + i)));
  });

  it("a bad lkey completes with LOC_PROT_ERR and flushes the rest; the QP is in ERR", async () => {
    const b = await ReqBench.create();
    b.post([
      { wrId: 1n, opcode: WrOpcode.SEND, sgList: [{ addr: b.mr.addr, length: 8, lkey: b.mr.lkey ^ 0x01 }] },
      { wrId: 2n, opcode: WrOpcode.SEND, sgList: [b.mr.sge(0, 8)] },
    ]);
    expect(b.sent()).toEqual([]);
    expect(b.poll()).toMatchObject([
      { wrId: 1n, status: WcStatus.LOC_PROT_ERR, qpNum: b.qp.qpNum, opcode: 0, byteLen: 0 },
      { wrId: 2n, status: WcStatus.WR_FLUSH_ERR },
    ]);
    expect(b.qp.state).toBe(QpState.ERR);
  });

  it("an SGE beyond its MR is LOC_PROT_ERR after the WQEs before it are flushed in order", async () => {
    const b = await ReqBench.create();
    b.post([
      { wrId: 1n, opcode: WrOpcode.SEND, sgList: [b.mr.sge(0, 8)] },
      { wrId: 2n, opcode: WrOpcode.SEND, sgList: [{ addr: b.mr.addr + BigInt(b.mr.length - 4), length: 8, lkey: b.mr.lkey }] },
    ]);
    expect(b.sent().map(brief)).toEqual([[OP.SEND_ONLY, 0x10, 1, 8]]);
    expect(b.poll()).toMatchObject([{ wrId: 1n, status: WcStatus.WR_FLUSH_ERR }, { wrId: 2n, status: WcStatus.LOC_PROT_ERR }]);
  });
});

describe("UC requester (same engine, UC opcodes, nothing to acknowledge)", () => {
  it("sends UC SEND FIRST/MIDDLE/LAST without AckReq and completes the WQE once it is sent", async () => {
    const b = await ReqBench.create({ qpType: QpType.UC, sqPsn: WRAP });
    b.post([
      { wrId: 1n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [b.mr.sge(0, 2500)] },
      { wrId: 2n, opcode: WrOpcode.RDMA_WRITE_WITH_IMM, immData: 5, sendFlags: SendFlags.SIGNALED, rdma: { remoteAddr: 0x10n, rkey: 3 }, sgList: [b.mr.sge(0, 10)] },
    ]);
    expect(b.sent().map(brief)).toEqual([
      [0x20, 0xfffffe, 0, 1024], [0x21, 0xffffff, 0, 1024], [0x22, 0, 0, 452], [0x2b, 1, 0, 10],
    ]);
    expect(b.poll().map((w) => [w.wrId, w.status, w.opcode, w.byteLen])).toEqual([[1n, 0, WcOpcode.SEND, 2500], [2n, 0, WcOpcode.RDMA_WRITE, 10]]);
    expect(b.dev.core.next_deadline()).toBe(Infinity);
  });
});

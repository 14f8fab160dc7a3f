import { describe, expect, it } from "vitest";
import { Access, QpState, QpType, SendFlags, WcStatus, WrOpcode, type VerbsError } from "../../../host/core/verbs/index.js";
import { QpRec, Ring, Sge, Swqe, Rwqe } from "../../../host/core/verbs/abi.js";
import { Device } from "../../../host/core/verbs/index.js";
import type { VerbsCore } from "../../../host/core/verbs/abi.js";
import { instantiateCore } from "../../../host/core/wasm/instance.js";
import { coreModule } from "../../../host/node/wasm-source.js";
import { AV, expectVerbsError, rcQp, smallDevice, SMALL, toRts } from "../support/verbs-helpers.js";

async function fixture(type: number = QpType.RC, cap = { maxSendWr: 4, maxRecvWr: 4, maxSendSge: 2, maxRecvSge: 2, maxInlineData: 64 }) {
  const dev = await smallDevice();
  const pd = dev.allocPd();
  const cq = dev.createCq(64);
  const mr = pd.regMr(4096, Access.LOCAL_WRITE);
  const qp = pd.createQp({ qpType: type, sendCq: cq, recvCq: cq, cap });
  return { dev, pd, cq, mr, qp };
}

function sqDepth(qp: { rec: number; pd: { device: { mem: { u32(p: number): number; loadIndex(p: number): number } } } }): number {
  const m = qp.pd.device.mem;
  const sq = m.u32(qp.rec + QpRec.SQ);
  return (m.loadIndex(sq + Ring.PROD) - m.loadIndex(sq + Ring.CONS)) >>> 0;
}

describe("ibv_post_send / ibv_post_recv", () => {
  it("writes the WQE as docs/ABI.md lays it out, and one doorbell per batch", async () => {
    const { dev, mr, qp } = await fixture();
    toRts(qp);
    qp.postSend({
      wrId: 0x1122334455667788n, opcode: WrOpcode.RDMA_WRITE_WITH_IMM, sendFlags: SendFlags.SIGNALED, immData: 0xdeadbeef,
      sgList: [mr.sge(0, 100), mr.sge(200, 50)], rdma: { remoteAddr: 0x1000n, rkey: 0x4242 },
    });
    const m = dev.mem;
    const sq = m.u32(qp.rec + QpRec.SQ);
    const w = sq + Ring.DATA;
    expect(m.u64(w + Swqe.WR_ID)).toBe(0x1122334455667788n);
    expect(m.u32(w + Swqe.OPCODE)).toBe(WrOpcode.RDMA_WRITE_WITH_IMM);
    expect(m.u32(w + Swqe.SEND_FLAGS)).toBe(SendFlags.SIGNALED);
    expect(m.u32(w + Swqe.NUM_SGE)).toBe(2);
    expect(m.u32(w + Swqe.IMM_DATA)).toBe(0xdeadbeef);
    expect(m.u32(w + Swqe.LENGTH)).toBe(150);
    expect(m.u64(w + Swqe.REMOTE_ADDR)).toBe(0x1000n);
    expect(m.u32(w + Swqe.RKEY)).toBe(0x4242);
    expect(m.u64(w + Swqe.HDR + Sge.SIZE + Sge.ADDR)).toBe(mr.addr + 200n);
    expect(m.u32(w + Swqe.HDR + Sge.SIZE + Sge.LENGTH)).toBe(50);
    expect(m.u32(w + Swqe.HDR + Sge.LKEY)).toBe(mr.lkey);
    expect(m.loadIndex(sq + Ring.PROD)).toBe(1);
  });

  it("writes receive WQEs as docs/ABI.md lays them out", async () => {
    const dev = await smallDevice();
    const pd = dev.allocPd();
    const cq = dev.createCq(8);
    const mr = pd.regMr(256, Access.LOCAL_WRITE);
    const qp = rcQp(pd, cq);
    qp.modify({ qpState: QpState.INIT, pkeyIndex: 0, portNum: 1, qpAccessFlags: 0 });
    qp.postRecv([{ wrId: 5n, sgList: [mr.sge(0, 64), mr.sge(64, 32)] }, { wrId: 6n }]);
    const m = dev.mem;
    const rq = m.u32(qp.rec + QpRec.RQ);
    const slot = m.u32(rq + Ring.SLOT);
    const w = rq + Ring.DATA;
    expect(slot).toBe(Rwqe.HDR + 4 * Sge.SIZE);
    expect(m.u64(w + Rwqe.WR_ID)).toBe(5n);
    expect(m.u32(w + Rwqe.NUM_SGE)).toBe(2);
    expect(m.u32(w + Rwqe.LENGTH)).toBe(96);
    expect(m.u64(w + Rwqe.HDR + Sge.SIZE + Sge.ADDR)).toBe(mr.addr + 64n);
    expect(m.u64(w + slot + Rwqe.WR_ID)).toBe(6n);
    expect(m.loadIndex(rq + Ring.PROD)).toBe(2);
  });

  it("inline data is copied into the WQE at post time", async () => {
    const { dev, mr, qp } = await fixture();
    toRts(qp);
    mr.bytes.set([1, 2, 3, 4, 5], 10);
    qp.postSend({ opcode: WrOpcode.SEND, sendFlags: SendFlags.INLINE, sgList: [mr.sge(10, 5)] });
    mr.bytes.fill(0);
    const w = dev.mem.u32(qp.rec + QpRec.SQ) + Ring.DATA;
    expect([...dev.mem.u8.slice(w + Swqe.HDR, w + Swqe.HDR + 5)]).toEqual([1, 2, 3, 4, 5]);
    expect(dev.mem.u32(w + Swqe.LENGTH)).toBe(5);
  });

  it("bad flow: post send before RTS is EINVAL (rxe_post_send) and posts nothing", async () => {
    const { qp } = await fixture();
    for (const s of [QpState.RESET, QpState.INIT, QpState.RTR]) {
      if (s === QpState.INIT) qp.modify({ qpState: s, pkeyIndex: 0, portNum: 1, qpAccessFlags: 0 });
      if (s === QpState.RTR) qp.modify({ qpState: s, pathMtu: 3, destQpNum: 1, rqPsn: 0, ahAttr: AV, maxDestRdAtomic: 1, minRnrTimer: 1 });
      expectVerbsError(() => qp.postSend({ opcode: WrOpcode.SEND }), "EINVAL", "ibv_post_send");
      expect(sqDepth(qp as never)).toBe(0);
    }
  });

  it("bad flow: an opcode the QP type does not take is EINVAL at post (the core's wr_class), the QP stays in RTS", async () => {
    const cases: [number, number][] = [
      [QpType.UD, WrOpcode.SEND_WITH_INV], [QpType.UD, WrOpcode.RDMA_WRITE], [QpType.UD, WrOpcode.BIND_MW],
      [QpType.UC, WrOpcode.RDMA_READ], [QpType.UC, WrOpcode.ATOMIC_FETCH_AND_ADD], [QpType.UC, WrOpcode.LOCAL_INV],
      [QpType.RC, 99],
    ];
    for (const [type, opcode] of cases) {
      const { qp, pd } = await fixture(type);
      toRts(qp);
      const ah = pd.createAh(AV);
      expectVerbsError(() => qp.postSend({ opcode, invalidateRkey: 1, ud: { ah, remoteQpn: 2, remoteQkey: 0x11111111 } }), "EINVAL", "ibv_post_send");
      expect(sqDepth(qp as never)).toBe(0);
      expect(qp.state).toBe(QpState.RTS);
    }
    // what the types do take passes the check (a UD SEND, a UC SEND_WITH_INV as rxe's table has it)
    const { qp, pd } = await fixture(QpType.UD);
    toRts(qp);
    qp.postSend({ opcode: WrOpcode.SEND, ud: { ah: pd.createAh(AV), remoteQpn: 2, remoteQkey: 0x11111111 } });
    expect(sqDepth(qp as never)).toBe(1);
  });

  it("bad flow: post recv in RESET is EINVAL; from INIT on it is accepted", async () => {
    const { qp } = await fixture();
    expectVerbsError(() => qp.postRecv({ wrId: 1n }), "EINVAL", "ibv_post_recv");
    qp.modify({ qpState: QpState.INIT, pkeyIndex: 0, portNum: 1, qpAccessFlags: 0 });
    qp.postRecv({ wrId: 1n });
  });

  it("bad flow: too many SGEs is EINVAL with bad_wr at the offending WR; the ones before stay posted", async () => {
    const { mr, qp } = await fixture();
    toRts(qp);
    const three = [mr.sge(0, 1), mr.sge(1, 1), mr.sge(2, 1)];
    const e = expectVerbsError(
      () => qp.postSend([{ wrId: 1n, opcode: WrOpcode.SEND }, { wrId: 2n, opcode: WrOpcode.SEND, sgList: three }, { wrId: 3n, opcode: WrOpcode.SEND }]),
      "EINVAL", "ibv_post_send",
    );
    expect(e.badWr).toBe(1);
    expect(sqDepth(qp as never)).toBe(1);
    const r = expectVerbsError(() => qp.postRecv([{ sgList: three }]), "EINVAL", "ibv_post_recv");
    expect(r.badWr).toBe(0);
  });

  it("bad flow: a full SQ or RQ is ENOMEM", async () => {
    const { qp } = await fixture();
    toRts(qp);
    const cap = qp.cap.maxSendWr;
    const e = expectVerbsError(() => qp.postSend(Array.from({ length: cap + 1 }, () => ({ opcode: WrOpcode.SEND }))), "ENOMEM", "ibv_post_send");
    expect(e.badWr).toBe(cap);
    expect(sqDepth(qp as never)).toBe(cap);
    expectVerbsError(() => qp.postSend({ opcode: WrOpcode.SEND }), "ENOMEM");
    const rcap = qp.cap.maxRecvWr;
    qp.postRecv(Array.from({ length: rcap }, () => ({})));
    expectVerbsError(() => qp.postRecv({}), "ENOMEM", "ibv_post_recv");
  });

  it("bad flow: opcodes the QP type does not take are EINVAL (rxe_wr_opcode_info)", async () => {
    const uc = (await fixture(QpType.UC)).qp;
    toRts(uc);
    for (const op of [WrOpcode.RDMA_READ, WrOpcode.ATOMIC_CMP_AND_SWP, WrOpcode.ATOMIC_FETCH_AND_ADD, WrOpcode.FLUSH, WrOpcode.ATOMIC_WRITE, WrOpcode.LOCAL_INV, WrOpcode.TSO, 99]) {
      expectVerbsError(() => uc.postSend({ opcode: op, atomic: { remoteAddr: 0n, compareAdd: 0n, rkey: 0 } }), "EINVAL", "ibv_post_send");
    }
    const f = await fixture(QpType.UD);
    toRts(f.qp);
    const ah = f.pd.createAh(AV);
    for (const op of [WrOpcode.RDMA_WRITE, WrOpcode.RDMA_WRITE_WITH_IMM, WrOpcode.RDMA_READ, WrOpcode.ATOMIC_CMP_AND_SWP]) {
      expectVerbsError(() => f.qp.postSend({ opcode: op, ud: { ah, remoteQpn: 5, remoteQkey: 1 } }), "EINVAL", "ibv_post_send");
    }
    f.qp.postSend({ opcode: WrOpcode.SEND_WITH_IMM, immData: 1, ud: { ah, remoteQpn: 5, remoteQkey: 1 } });
  });

  it("bad flow: UD sends need a live AH of this device (EINVAL)", async () => {
    const { pd, qp } = await fixture(QpType.UD);
    toRts(qp);
    expectVerbsError(() => qp.postSend({ opcode: WrOpcode.SEND }), "EINVAL");
    const ah = pd.createAh(AV);
    ah.destroy();
    expectVerbsError(() => qp.postSend({ opcode: WrOpcode.SEND, ud: { ah, remoteQpn: 5, remoteQkey: 1 } }), "EINVAL");
    const otherAh = (await smallDevice()).allocPd().createAh(AV);
    expectVerbsError(() => qp.postSend({ opcode: WrOpcode.SEND, ud: { ah: otherAh, remoteQpn: 5, remoteQkey: 1 } }), "EINVAL");
  });

  it("bad flow: inline longer than max_inline_data or on a non-SEND/WRITE opcode; atomics shorter than 8 bytes or misaligned (EINVAL)", async () => {
    const { mr, qp } = await fixture();
    toRts(qp);
    expectVerbsError(() => qp.postSend({ opcode: WrOpcode.SEND, sendFlags: SendFlags.INLINE, sgList: [mr.sge(0, qp.cap.maxInlineData + 1)] }), "EINVAL");
    const atomic = { remoteAddr: 0x1000n, compareAdd: 1n, swap: 2n, rkey: 7 };
    expectVerbsError(() => qp.postSend({ opcode: WrOpcode.ATOMIC_FETCH_AND_ADD, sgList: [mr.sge(0, 4)], atomic }), "EINVAL");
    expectVerbsError(() => qp.postSend({ opcode: WrOpcode.ATOMIC_CMP_AND_SWP, sgList: [mr.sge(0, 8)], atomic: { ...atomic, remoteAddr: 0x1004n } }), "EINVAL");
    qp.postSend({ opcode: WrOpcode.ATOMIC_CMP_AND_SWP, sgList: [mr.sge(0, 8)], atomic });
    // inline data only on SEND/WRITE opcodes
    expectVerbsError(() => qp.postSend({ opcode: WrOpcode.RDMA_READ, sendFlags: SendFlags.INLINE, sgList: [mr.sge(0, 8)], rdma: { remoteAddr: 0n, rkey: 1 } }), "EINVAL");
    expectVerbsError(() => qp.postSend({ opcode: WrOpcode.ATOMIC_CMP_AND_SWP, sendFlags: SendFlags.INLINE, sgList: [mr.sge(0, 8)], atomic }), "EINVAL");
    qp.postSend({ opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.INLINE, sgList: [mr.sge(0, 8)], rdma: { remoteAddr: 0n, rkey: 1 } });
    expectVerbsError(() => qp.postSend({ opcode: WrOpcode.SEND, wrId: 5 as never }), "EINVAL");
  });

  it("bad flow: post recv on a QP attached to an SRQ is EINVAL", async () => {
    const dev = await smallDevice();
    const pd = dev.allocPd();
    const cq = dev.createCq(8);
    const srq = pd.createSrq({ attr: { maxWr: 8, maxSge: 1 } });
    const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, srq });
    qp.modify({ qpState: QpState.INIT, pkeyIndex: 0, portNum: 1, qpAccessFlags: 0 });
    expectVerbsError(() => qp.postRecv({}), "EINVAL", "ibv_post_recv");
  });

  it("moving to ERR flushes every outstanding WR with WR_FLUSH_ERR, SQ then RQ, oldest first", async () => {
    const { cq, mr, qp } = await fixture(QpType.RC, { maxSendWr: 8, maxRecvWr: 8, maxSendSge: 1, maxRecvSge: 1, maxInlineData: 0 });
    toRts(qp);
    qp.postRecv([{ wrId: 10n, sgList: [mr.sge()] }, { wrId: 11n }]);
    qp.postSend([{ wrId: 1n, opcode: WrOpcode.SEND }, { wrId: 2n, opcode: WrOpcode.RDMA_WRITE }]);
    expect(cq.poll(8)).toEqual([]);
    qp.modify({ qpState: QpState.ERR });
    const wcs = cq.poll(8);
    expect(wcs.map((w) => w.wrId)).toEqual([1n, 2n, 10n, 11n]);
    for (const w of wcs) {
      expect(w.status).toBe(WcStatus.WR_FLUSH_ERR);
      expect(w.qpNum).toBe(qp.qpNum);
      expect(w.byteLen).toBe(0);
    }
    // in ERR new WRs are accepted and flushed at the doorbell
    qp.postSend({ wrId: 3n, opcode: WrOpcode.SEND });
    qp.postRecv({ wrId: 12n });
    expect(cq.poll(8).map((w) => [w.wrId, w.status])).toEqual([[3n, 5], [12n, 5]]);
  });

  it("moving to RESET drops outstanding WRs without completions", async () => {
    const { cq, qp } = await fixture();
    toRts(qp);
    qp.postSend({ wrId: 1n, opcode: WrOpcode.SEND });
    qp.postRecv({ wrId: 2n });
    qp.modify({ qpState: QpState.RESET });
    expect(cq.poll(8)).toEqual([]);
    expect(sqDepth(qp as never)).toBe(0);
    toRts(qp);
    qp.postSend({ wrId: 3n, opcode: WrOpcode.SEND });
    qp.modify({ qpState: QpState.ERR });
    expect(cq.poll(8).map((w) => w.wrId)).toEqual([3n]);
  });

  it("a destroyed QP refuses posts (EINVAL)", async () => {
    const { qp } = await fixture();
    qp.destroy();
    expectVerbsError(() => qp.postSend({ opcode: WrOpcode.SEND }), "EINVAL", "ibv_post_send");
    expectVerbsError(() => qp.postRecv({}), "EINVAL", "ibv_post_recv");
    const e: VerbsError = expectVerbsError(() => qp.query(), "EINVAL", "ibv_query_qp");
    expect(e.errno).toBe(22);
  });
});

describe("doorbells", () => {
  it("one doorbell call per post batch, none when nothing was posted, none for SRQ posts or polls", async () => {
    const calls: string[] = [];
    const raw = (await instantiateCore(await coreModule())) as VerbsCore;
    const core = Object.fromEntries(
      Object.entries(raw).map(([k, v]) => [k, typeof v === "function" ? (...a: number[]) => (calls.push(k), (v as (...x: number[]) => number)(...a)) : v]),
    ) as VerbsCore;
    const dev = new Device(core, SMALL);
    const pd = dev.allocPd();
    const cq = dev.createCq(64);
    const srq = pd.createSrq({ attr: { maxWr: 8, maxSge: 1 } });
    const qp = rcQp(pd, cq);
    qp.modify({ qpState: QpState.ERR });
    const doorbells = () => calls.filter((c) => c === "doorbell").length;
    calls.length = 0;
    qp.postSend([{ opcode: WrOpcode.SEND }, { opcode: WrOpcode.SEND }, { opcode: WrOpcode.SEND }]);
    expect(doorbells()).toBe(1);
    qp.postRecv([{}, {}]);
    expect(doorbells()).toBe(2);
    expect(() => qp.postSend([{ opcode: 99 }])).toThrow();
    expect(doorbells()).toBe(2);
    srq.postRecv([{}, {}]);
    cq.poll(16);
    expect(doorbells()).toBe(2);
  });
});

// Fast registration with scattered page lists: mr.mapSg is ib_map_mr_sg (the IB core's
// ib_sg_to_pages over the device's rxe_set_page), so a fast-registration MR's iova range lands
// on pages anywhere in registered memory; WRITE, READ, atomics and local SGEs that cross page
// boundaries reach the right pages; bad lists get what ib_map_mr_sg / rxe give
// (docs/reference/fast-reg-flush-mw.md).
import { describe, expect, it } from "vitest";
import { errnoOf, settleAndDrain, simRcPair } from "../support/sim-pair.js";
import { Access, MwType, QpState, SendFlags, WcOpcode, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import { incRkey } from "../../../host/core/verbs/mw.js";
import type { MemoryRegion } from "../../../host/core/verbs/mr.js";

const S = SendFlags.SIGNALED;
const RW = Access.REMOTE_WRITE | Access.REMOTE_READ;
const PAGE = 4096n;

/** Two connected RC QPs (a at 127.0.16.1, b at .2), an MR of ten pages on each. */
function pair() {
  const connect = { qpAccessFlags: RW | Access.REMOTE_ATOMIC, timeout: 10, retryCnt: 3, rnrRetry: 3, maxRdAtomic: 4, maxDestRdAtomic: 4, pathMtu: 3 };
  return simRcPair({ seed: 16, addresses: ["127.0.16.1", "127.0.16.2"], cap: { maxSendWr: 32, maxRecvWr: 16, maxSendSge: 1, maxRecvSge: 1 }, mrBytes: 40960, connect });
}

/** Page k of `mr`'s first whole pages (page-aligned linear addresses). */
function pagesOf(mr: MemoryRegion): bigint[] {
  const first = (mr.addr + PAGE - 1n) & ~(PAGE - 1n);
  const out: bigint[] = [];
  for (let p = first; p + PAGE <= mr.addr + BigInt(mr.length); p += PAGE) out.push(p);
  return out;
}

/** Bytes of device memory at linear address `at` (through the MR that owns them). */
function at(mr: MemoryRegion, addr: bigint, len: number): Uint8Array {
  const off = Number(addr - mr.addr);
  return mr.bytes.subarray(off, off + len);
}

function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 7 + seed + (i >> 8)) & 0xff;
  return out;
}

describe("fast registration with scattered page lists (ib_map_mr_sg)", () => {
  it("maps three out-of-order pages; WRITE, READ, atomics and a local SGE across page boundaries land on the right pages", async () => {
    const { net, a, b } = await pair();
    const P = pagesOf(b.mr);
    expect(P.length).toBeGreaterThanOrEqual(6);
    const fmr = b.pd.allocMr(4);
    // as a ULP's scatterlist: from byte 1000 of page 3, all of page 0, half of page 5
    const mapped = fmr.mapSg([{ addr: P[3]!, length: 4096 }, { addr: P[0]!, length: 4096 }, { addr: P[5]!, length: 2048 }], { offset: 1000 });
    expect(mapped).toBe(3);
    expect([fmr.addr, fmr.length, fmr.scattered]).toEqual([P[3]! + 1000n, 3096 + 4096 + 2048, true]);
    const key = incRkey(fmr.lkey);
    b.qp.postSend({ wrId: 1n, opcode: WrOpcode.REG_MR, sendFlags: S, reg: { mr: fmr, key, access: Access.LOCAL_WRITE | RW | Access.REMOTE_ATOMIC } });
    expect(settleAndDrain(net, b.cq).map((w) => [w.wrId, w.status, w.opcode])).toEqual([[1n, WcStatus.SUCCESS, WcOpcode.REG_MR]]);
    expect(fmr.rkey).toBe(key);

    // one WRITE of all 9240 bytes (several 4096-byte packets, each crossing a page boundary)
    const data = pattern(fmr.length, 3);
    a.mr.bytes.set(data, 0);
    a.qp.postSend({ wrId: 2n, opcode: WrOpcode.RDMA_WRITE, sendFlags: S, sgList: [a.mr.sge(0, data.length)], rdma: { remoteAddr: fmr.addr, rkey: key } });
    expect(settleAndDrain(net, a.cq).map((w) => [w.wrId, w.status])).toEqual([[2n, WcStatus.SUCCESS]]);
    expect(at(b.mr, P[3]! + 1000n, 3096)).toEqual(data.subarray(0, 3096));
    expect(at(b.mr, P[0]!, 4096)).toEqual(data.subarray(3096, 7192));
    expect(at(b.mr, P[5]!, 2048)).toEqual(data.subarray(7192));
    // the pages in between were not touched
    expect(at(b.mr, P[1]!, 4096).some((x) => x !== 0)).toBe(false);
    expect(at(b.mr, P[4]!, 4096).some((x) => x !== 0)).toBe(false);
    expect(at(b.mr, P[3]!, 1000).some((x) => x !== 0)).toBe(false);

    // READ it all back, and a 16-byte READ straddling pages 3 and 0
    a.qp.postSend({ wrId: 3n, opcode: WrOpcode.RDMA_READ, sendFlags: S, sgList: [a.mr.sge(16384, data.length)], rdma: { remoteAddr: fmr.addr, rkey: key } });
    a.qp.postSend({ wrId: 4n, opcode: WrOpcode.RDMA_READ, sendFlags: S, sgList: [a.mr.sge(32768, 16)], rdma: { remoteAddr: fmr.addr + 3088n, rkey: key } });
    expect(settleAndDrain(net, a.cq).map((w) => [w.wrId, w.status])).toEqual([[3n, WcStatus.SUCCESS], [4n, WcStatus.SUCCESS]]);
    expect(a.mr.bytes.subarray(16384, 16384 + data.length)).toEqual(data);
    expect(a.mr.bytes.subarray(32768, 32784)).toEqual(data.subarray(3088, 3104));

    // a small WRITE across the page 0 / page 5 boundary
    a.mr.bytes.set(new TextEncoder().encode("ACROSS-THE-EDGE!"), 36000);
    a.qp.postSend({ wrId: 5n, opcode: WrOpcode.RDMA_WRITE, sendFlags: S, sgList: [a.mr.sge(36000, 16)], rdma: { remoteAddr: fmr.addr + 7192n - 8n, rkey: key } });
    // an atomic on page 0 (iova 3096 + 8 is 8-aligned there)
    a.qp.postSend({ wrId: 6n, opcode: WrOpcode.ATOMIC_FETCH_AND_ADD, sendFlags: S, sgList: [a.mr.sge(36100, 8)], atomic: { remoteAddr: fmr.addr + 3096n + 8n, compareAdd: 5n, rkey: key } });
    expect(settleAndDrain(net, a.cq).map((w) => [w.wrId, w.status])).toEqual([[5n, WcStatus.SUCCESS], [6n, WcStatus.SUCCESS]]);
    expect(new TextDecoder().decode(at(b.mr, P[0]! + 4088n, 8)) + new TextDecoder().decode(at(b.mr, P[5]!, 8))).toBe("ACROSS-THE-EDGE!");
    const dv = (u: Uint8Array) => new DataView(u.buffer, u.byteOffset, u.byteLength);
    const before = dv(data.subarray(3104, 3112)).getBigUint64(0, true);
    expect(dv(a.mr.bytes.subarray(36100, 36108)).getBigUint64(0, true)).toBe(before);
    expect(dv(at(b.mr, P[0]! + 8n, 8)).getBigUint64(0, true)).toBe(before + 5n);

    // the MR's lkey as a local SGE: b SENDs 5000 bytes of it (gathered across pages 3 and 0)
    a.qp.postRecv({ wrId: 7n, sgList: [a.mr.sge(20000, 8192)] });
    b.qp.postSend({ wrId: 8n, opcode: WrOpcode.SEND, sendFlags: S, sgList: [{ addr: fmr.addr + 100n, length: 5000, lkey: key }] });
    expect(settleAndDrain(net, b.cq).map((w) => [w.wrId, w.status])).toEqual([[8n, WcStatus.SUCCESS]]);
    expect(settleAndDrain(net, a.cq).map((w) => [w.wrId, w.status, w.byteLen])).toEqual([[7n, WcStatus.SUCCESS, 5000]]);
    const sent = new Uint8Array(5000);
    sent.set(at(b.mr, P[3]! + 1100n, 2996), 0);
    sent.set(at(b.mr, P[0]!, 2004), 2996);
    expect(a.mr.bytes.subarray(20000, 25000)).toEqual(sent);

    // past the mapped length: remote access error
    a.qp.postSend({ wrId: 9n, opcode: WrOpcode.RDMA_WRITE, sendFlags: S, sgList: [a.mr.sge(0, 16)], rdma: { remoteAddr: fmr.addr + BigInt(fmr.length) - 8n, rkey: key } });
    expect(settleAndDrain(net, a.cq).map((w) => [w.wrId, w.status])).toEqual([[9n, WcStatus.REM_ACCESS_ERR]]);
  });

  it("ib_sg_to_pages rules: a gap or an unaligned middle element stops the mapping; contiguous pieces coalesce", async () => {
    const { b } = await pair();
    const P = pagesOf(b.mr);
    const fmr = b.pd.allocMr(4);
    // the second element does not start on a page boundary and does not continue the first
    expect(fmr.mapSg([{ addr: P[0]!, length: 4096 }, { addr: P[2]! + 8n, length: 100 }])).toBe(1);
    expect([fmr.addr, fmr.length, fmr.scattered]).toEqual([P[0]!, 4096, false]);
    // the first does not end on one
    expect(fmr.mapSg([{ addr: P[0]!, length: 100 }, { addr: P[2]!, length: 4096 }])).toBe(1);
    expect(fmr.length).toBe(100);
    // unaligned pieces that continue each other are one run; the third then starts after an unaligned end
    expect(fmr.mapSg([{ addr: P[0]! + 8n, length: 100 }, { addr: P[0]! + 108n, length: 5000 }, { addr: P[2]!, length: 64 }])).toBe(2);
    expect([fmr.addr, fmr.length, fmr.scattered]).toEqual([P[0]! + 8n, 5100, false]);
    expect(fmr.mapSg([{ addr: P[0]! + 8n, length: 100 }, { addr: P[0]! + 108n, length: 3988 }, { addr: P[3]!, length: 64 }])).toBe(3);
    expect([fmr.addr, fmr.length, fmr.scattered]).toEqual([P[0]! + 8n, 4152, true]);
    // 8 KiB pages: one page holds two 4 KiB ones
    expect(fmr.mapSg([{ addr: P[0]! + 8n, length: 8000 }], { pageSize: 8192 })).toBe(1);
  });

  it("bad page lists: what ib_map_mr_sg and rxe answer (fewer elements, EINVAL, ENOMEM; REG_MR LOC_QP_OP_ERR)", async () => {
    const { net, a, b } = await pair();
    const P = pagesOf(b.mr);
    const fmr = b.pd.allocMr(2);
    // more pages than max_num_sg: ib_map_mr_sg maps what fits and says how many elements
    expect(fmr.mapSg([{ addr: P[0]!, length: 4096 }, { addr: P[2]!, length: 4096 }, { addr: P[4]!, length: 4096 }])).toBe(2);
    expect(fmr.length).toBe(8192);
    // one element of three pages: none of it in full (rxe_set_page -ENOMEM on the third page); ib_sg_to_pages
    // leaves sg_offset and mr->length at the start of the last page it set (prev_addr), 4096 here
    expect(fmr.mapSg([{ addr: P[0]!, length: 3 * 4096 }])).toBe(0);
    expect(fmr.length).toBe(4096);
    expect(errnoOf(() => fmr.mapSg([]))).toBe("EINVAL");
    expect(errnoOf(() => fmr.mapSg([{ addr: P[0]!, length: 64 }], { offset: 65 }))).toBe("EINVAL");
    expect(errnoOf(() => fmr.mapSg([{ addr: P[0]!, length: 64 }], { pageSize: 1000 }))).toBe("EINVAL"); // not a power of two
    expect(errnoOf(() => fmr.mapSg([{ addr: P[0]!, length: 64 }], { pageSize: 256 }))).toBe("EINVAL");
    expect(errnoOf(() => b.mr.mapSg([{ addr: P[0]!, length: 64 }]))).toBe("EINVAL"); // a user MR

    // a REG_MR naming more than the page list covers: LOC_QP_OP_ERR, QP to ERR (rxe_reg_fast_mr -EINVAL)
    expect(fmr.mapSg([{ addr: P[0]!, length: 4096 }, { addr: P[2]!, length: 4096 }])).toBe(2);
    b.qp.postSend({ wrId: 1n, opcode: WrOpcode.REG_MR, sendFlags: S, reg: { mr: fmr, key: incRkey(fmr.lkey), access: Access.LOCAL_WRITE, addr: fmr.addr, length: 8193 } });
    expect(settleAndDrain(net, b.cq).map((w) => [w.wrId, w.status])).toEqual([[1n, WcStatus.LOC_QP_OP_ERR]]);
    expect(b.qp.state).toBe(QpState.ERR);

    // pages of memory the PD does not own (a's MR, another device's PD here: b's memory that no MR of b's PD holds)
    const p2 = await pair();
    const other = p2.b.dev.allocPd().regMr(16384, Access.LOCAL_WRITE);
    const f2 = p2.b.pd.allocMr(2);
    expect(f2.mapSg([{ addr: pagesOf(other)[0]!, length: 4096 }, { addr: pagesOf(p2.b.mr)[0]!, length: 4096 }])).toBe(2);
    p2.b.qp.postSend({ wrId: 2n, opcode: WrOpcode.REG_MR, sendFlags: S, reg: { mr: f2, key: incRkey(f2.lkey), access: Access.LOCAL_WRITE } });
    expect(settleAndDrain(p2.net, p2.b.cq).map((w) => [w.wrId, w.status])).toEqual([[2n, WcStatus.LOC_QP_OP_ERR]]);
    void a;
  });

  it("a VALID MR is not remapped; after LOCAL_INV it is, and its old pages stop answering; deregistering a page's MR frees it", async () => {
    const { net, a, b } = await pair();
    const P = pagesOf(b.mr);
    const fmr = b.pd.allocMr(2);
    expect(fmr.mapSg([{ addr: P[4]!, length: 4096 }, { addr: P[1]!, length: 4096 }])).toBe(2);
    const k1 = incRkey(fmr.lkey);
    b.qp.postSend({ wrId: 1n, opcode: WrOpcode.REG_MR, sendFlags: S, reg: { mr: fmr, key: k1, access: Access.LOCAL_WRITE | RW } });
    expect(settleAndDrain(net, b.cq).map((w) => w.status)).toEqual([WcStatus.SUCCESS]);
    expect(errnoOf(() => fmr.mapSg([{ addr: P[0]!, length: 4096 }]))).toBe("EINVAL");

    b.qp.postSend({ wrId: 2n, opcode: WrOpcode.LOCAL_INV, sendFlags: S, invalidateRkey: k1 });
    expect(settleAndDrain(net, b.cq).map((w) => w.status)).toEqual([WcStatus.SUCCESS]);
    expect(fmr.mapSg([{ addr: P[2]!, length: 4096 }, { addr: P[0]!, length: 4096 }])).toBe(2);
    const k2 = incRkey(k1);
    b.qp.postSend({ wrId: 3n, opcode: WrOpcode.REG_MR, sendFlags: S, reg: { mr: fmr, key: k2, access: Access.LOCAL_WRITE | RW } });
    expect(settleAndDrain(net, b.cq).map((w) => w.status)).toEqual([WcStatus.SUCCESS]);
    a.mr.bytes.set(new TextEncoder().encode("second map"), 0);
    a.qp.postSend({ wrId: 4n, opcode: WrOpcode.RDMA_WRITE, sendFlags: S, sgList: [a.mr.sge(0, 10)], rdma: { remoteAddr: fmr.addr + 4090n, rkey: k2 } });
    expect(settleAndDrain(net, a.cq).map((w) => w.status)).toEqual([WcStatus.SUCCESS]);
    expect(new TextDecoder().decode(at(b.mr, P[2]! + 4090n, 6)) + new TextDecoder().decode(at(b.mr, P[0]!, 4))).toBe("second map");
    expect(at(b.mr, P[1]!, 4096).some((x) => x !== 0)).toBe(false);

    // the MR that owns the pages goes: the fast-registration MR becomes FREE, its key dead
    const p2 = await pair();
    const owner = p2.b.pd.regMr(16384, Access.LOCAL_WRITE);
    const Q = pagesOf(owner);
    const f2 = p2.b.pd.allocMr(2);
    expect(f2.mapSg([{ addr: Q[2]!, length: 4096 }, { addr: pagesOf(p2.b.mr)[0]!, length: 4096 }])).toBe(2);
    const k3 = incRkey(f2.lkey);
    p2.b.qp.postSend({ wrId: 5n, opcode: WrOpcode.REG_MR, sendFlags: S, reg: { mr: f2, key: k3, access: Access.LOCAL_WRITE | RW } });
    expect(settleAndDrain(p2.net, p2.b.cq).map((w) => w.status)).toEqual([WcStatus.SUCCESS]);
    owner.destroy();
    p2.a.qp.postSend({ wrId: 6n, opcode: WrOpcode.RDMA_WRITE, sendFlags: S, sgList: [p2.a.mr.sge(0, 8)], rdma: { remoteAddr: f2.addr + 4096n, rkey: k3 } });
    expect(settleAndDrain(p2.net, p2.a.cq).map((w) => w.status)).toEqual([WcStatus.REM_ACCESS_ERR]);
  });

  it("a type 2 window on a scattered MR (zero-based too) reaches its pages; the contiguous form after LOCAL_INV is contiguous again", async () => {
    const { net, a, b } = await pair();
    const P = pagesOf(b.mr);
    const fmr = b.pd.allocMr(3);
    expect(fmr.mapSg([{ addr: P[5]!, length: 4096 }, { addr: P[2]!, length: 4096 }])).toBe(2);
    const k = incRkey(fmr.lkey);
    b.qp.postSend({ wrId: 1n, opcode: WrOpcode.REG_MR, sendFlags: S, reg: { mr: fmr, key: k, access: Access.LOCAL_WRITE | RW | Access.MW_BIND } });
    const mw = b.pd.allocMw(MwType.TYPE_2);
    const wk = incRkey(mw.rkey);
    b.qp.postSend({ wrId: 2n, opcode: WrOpcode.BIND_MW, sendFlags: S, bindMw: { mw, rkey: wk, bindInfo: { mr: fmr, addr: fmr.addr + 4000n, length: 200, mwAccessFlags: RW | Access.ZERO_BASED } } });
    expect(settleAndDrain(net, b.cq).map((w) => [w.wrId, w.status])).toEqual([[1n, WcStatus.SUCCESS], [2n, WcStatus.SUCCESS]]);
    a.mr.bytes.set(new TextEncoder().encode("window-over-pages"), 0);
    a.qp.postSend({ wrId: 3n, opcode: WrOpcode.RDMA_WRITE, sendFlags: S, sgList: [a.mr.sge(0, 17)], rdma: { remoteAddr: 90n, rkey: wk } });
    expect(settleAndDrain(net, a.cq).map((w) => [w.wrId, w.status])).toEqual([[3n, WcStatus.SUCCESS]]);
    // window byte 90 is MR byte 4090: six bytes at the end of page 5, the rest at the start of page 2
    expect(new TextDecoder().decode(at(b.mr, P[5]! + 4090n, 6)) + new TextDecoder().decode(at(b.mr, P[2]!, 11))).toBe("window-over-pages");

    b.qp.postSend({ wrId: 4n, opcode: WrOpcode.LOCAL_INV, sendFlags: S, invalidateRkey: wk });
    b.qp.postSend({ wrId: 5n, opcode: WrOpcode.LOCAL_INV, sendFlags: S, invalidateRkey: k });
    const k2 = incRkey(k);
    b.qp.postSend({ wrId: 6n, opcode: WrOpcode.REG_MR, sendFlags: S, reg: { mr: fmr, key: k2, access: Access.LOCAL_WRITE | RW, addr: P[0]!, length: 8192 } });
    expect(settleAndDrain(net, b.cq).map((w) => [w.wrId, w.status])).toEqual([[4n, WcStatus.SUCCESS], [5n, WcStatus.SUCCESS], [6n, WcStatus.SUCCESS]]);
    expect([fmr.scattered, fmr.addr, fmr.length, fmr.bytes.length]).toEqual([false, P[0]!, 8192, 8192]);
    a.qp.postSend({ wrId: 7n, opcode: WrOpcode.RDMA_WRITE, sendFlags: S, sgList: [a.mr.sge(0, 17)], rdma: { remoteAddr: P[0]! + 4090n, rkey: k2 } });
    expect(settleAndDrain(net, a.cq).map((w) => [w.wrId, w.status])).toEqual([[7n, WcStatus.SUCCESS]]);
    expect(new TextDecoder().decode(fmr.bytes.subarray(4090, 4107))).toBe("window-over-pages");
  });
});

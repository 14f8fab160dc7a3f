// RC end to end: two devices on the simulated wire, requester + completer on one
// side, responder on the other, every operation, then the same over a lossy,
// duplicating, reordering, corrupting wire (seeded): everything completes once,
// in order, with the right bytes.
import { describe, expect, it } from "vitest";
import type { SimNetwork } from "../../../host/core/sim/network.js";
import { Access, Mtu, QpState, SendFlags, WcOpcode, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import type { SimFaults } from "../../../host/core/sim/wire.js";
import type { CompletionQueue, WorkCompletion } from "../../../host/core/verbs/cq.js";
import type { MemoryRegion } from "../../../host/core/verbs/mr.js";
import type { SendWr } from "../../../host/core/verbs/post.js";
import { simRcPair, type SimSide } from "../support/sim-pair.js";

const ALL = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ | Access.REMOTE_ATOMIC | Access.FLUSH_GLOBAL;
const S = SendFlags.SIGNALED;

interface PairOptions {
  seed?: number;
  faults?: SimFaults;
  pathMtu?: number;
  psnA?: number;
  psnB?: number;
  timeout?: number;
  retryCnt?: number;
  rnrRetry?: number;
  minRnrTimer?: number;
  maxRd?: number;
}

const ADDRESSES: [string, string] = ["127.0.0.1", "127.0.0.2"];

function pair(o: PairOptions = {}): Promise<{ net: SimNetwork; a: SimSide; b: SimSide }> {
  return simRcPair({
    seed: o.seed ?? 1, addresses: ADDRESSES, wire: { faults: o.faults ?? {} },
    cqe: 1024, cap: { maxSendWr: 256, maxRecvWr: 256, maxSendSge: 4, maxRecvSge: 4 }, mrBytes: 1 << 18, mrAccess: ALL,
    psns: [o.psnA ?? 0xfffff0, o.psnB ?? 0xffffe0],
    connect: {
      pathMtu: o.pathMtu ?? Mtu.MTU_1024, qpAccessFlags: ALL, timeout: o.timeout ?? 8, retryCnt: o.retryCnt ?? 7,
      rnrRetry: o.rnrRetry ?? 7, minRnrTimer: o.minRnrTimer ?? 1, maxRdAtomic: o.maxRd ?? 4, maxDestRdAtomic: o.maxRd ?? 4,
    },
  });
}

function fill(mr: MemoryRegion, seed: number): void {
  for (let i = 0; i < mr.length; i++) mr.bytes[i] = (i * 131 + seed * 17 + (i >> 8)) & 0xff;
}

function drain(cq: CompletionQueue, into: WorkCompletion[]): WorkCompletion[] {
  for (;;) {
    const got = cq.poll(64);
    if (!got.length) return into;
    into.push(...got);
  }
}

describe("RC end to end (two devices)", () => {
  it("SEND over several SGEs on both sides, WRITE with immediate, READ, atomics, FLUSH, ATOMIC_WRITE", async () => {
    const { net, a, b } = await pair();
    fill(a.mr, 1);
    fill(b.mr, 2);
    const bBefore = b.mr.bytes.slice();
    const aBefore = a.mr.bytes.slice(); // the atomics write their results into a's MR later
    b.qp.postRecv([
      { wrId: 100n, sgList: [b.mr.sge(0, 1000), b.mr.sge(4000, 3000)] },
      { wrId: 101n, sgList: [b.mr.sge(10000, 64)] },
    ]);
    const dv = (m: MemoryRegion) => new DataView(m.bytes.buffer, m.bytes.byteOffset, m.length);
    dv(b.mr).setBigUint64(0x9000, 40n, true);
    a.qp.postSend([
      { wrId: 1n, opcode: WrOpcode.SEND, sendFlags: S, sgList: [a.mr.sge(0, 1500), a.mr.sge(3000, 2000)] },
      { wrId: 2n, opcode: WrOpcode.RDMA_WRITE_WITH_IMM, immData: 0x1234, sendFlags: S, rdma: { remoteAddr: b.mr.addr + 0x20000n, rkey: b.mr.rkey }, sgList: [a.mr.sge(0x8000, 5000)] },
      { wrId: 3n, opcode: WrOpcode.RDMA_READ, sendFlags: S, rdma: { remoteAddr: b.mr.addr + 0x30000n, rkey: b.mr.rkey }, sgList: [a.mr.sge(0x30000, 2500), a.mr.sge(0x32000, 700)] },
      { wrId: 4n, opcode: WrOpcode.ATOMIC_FETCH_AND_ADD, sendFlags: S, atomic: { remoteAddr: b.mr.addr + 0x9000n, rkey: b.mr.rkey, compareAdd: 2n }, sgList: [a.mr.sge(0x100, 8)] },
      { wrId: 5n, opcode: WrOpcode.ATOMIC_CMP_AND_SWP, sendFlags: S, atomic: { remoteAddr: b.mr.addr + 0x9000n, rkey: b.mr.rkey, compareAdd: 42n, swap: 7n }, sgList: [a.mr.sge(0x108, 8)] },
      { wrId: 6n, opcode: WrOpcode.ATOMIC_WRITE, sendFlags: S, atomic: { remoteAddr: b.mr.addr + 0x9008n, rkey: b.mr.rkey, compareAdd: 0x55aa55aa55aa55aan } },
      { wrId: 7n, opcode: WrOpcode.FLUSH, sendFlags: S, immData: 0x11, rdma: { remoteAddr: b.mr.addr, rkey: b.mr.rkey }, sgList: [{ addr: 0n, length: 64, lkey: 0 }] },
    ]);
    const wa: WorkCompletion[] = [];
    const wb: WorkCompletion[] = [];
    expect(net.runUntil(() => drain(a.cq, wa).length >= 7 && drain(b.cq, wb).length >= 2, 1e6)).toBe(true);
    expect(wa.map((w) => [w.wrId, w.status, w.opcode, w.byteLen])).toEqual([
      [1n, 0, WcOpcode.SEND, 3500],
      [2n, 0, WcOpcode.RDMA_WRITE, 5000],
      [3n, 0, WcOpcode.RDMA_READ, 3200],
      [4n, 0, WcOpcode.FETCH_ADD, 8],
      [5n, 0, WcOpcode.COMP_SWAP, 8],
      [6n, 0, WcOpcode.ATOMIC_WRITE, 8],
      [7n, 0, WcOpcode.FLUSH, 64],
    ]);
    expect(wb.map((w) => [w.wrId, w.status, w.opcode, w.byteLen, w.wcFlags & 2, w.immData])).toEqual([
      [100n, 0, WcOpcode.RECV, 3500, 0, 0],
      [101n, 0, WcOpcode.RECV_RDMA_WITH_IMM, 5000, 2, 0x1234],
    ]);
    // SEND: 3500 bytes from two SGEs into 1000 + 2500 of the receive SGEs
    const sent = new Uint8Array([...aBefore.slice(0, 1500), ...aBefore.slice(3000, 5000)]);
    expect(b.mr.bytes.slice(0, 1000)).toEqual(sent.slice(0, 1000));
    expect(b.mr.bytes.slice(4000, 6500)).toEqual(sent.slice(1000));
    expect(b.mr.bytes.slice(6500, 7000)).toEqual(bBefore.slice(6500, 7000));
    expect(b.mr.bytes.slice(0x20000, 0x20000 + 5000)).toEqual(a.mr.bytes.slice(0x8000, 0x8000 + 5000));
    expect(a.mr.bytes.slice(0x30000, 0x30000 + 2500)).toEqual(b.mr.bytes.slice(0x30000, 0x30000 + 2500));
    expect(a.mr.bytes.slice(0x32000, 0x32000 + 700)).toEqual(b.mr.bytes.slice(0x30000 + 2500, 0x30000 + 3200));
    expect(dv(a.mr).getBigUint64(0x100, true)).toBe(40n); // FETCH_ADD saw 40
    expect(dv(a.mr).getBigUint64(0x108, true)).toBe(42n); // CMP_SWAP saw 42 (40 + 2) and swapped
    expect(dv(b.mr).getBigUint64(0x9000, true)).toBe(7n);
    expect(dv(b.mr).getBigUint64(0x9008, true)).toBe(0x55aa55aa55aa55aan);
    expect(a.dev.core.next_deadline()).toBe(Infinity);
  });

  it("RNR: a SEND before the receive is posted is retried after the RNR timer and lands once", async () => {
    const { net, a, b } = await pair({ minRnrTimer: 3 }); // 30 µs
    fill(a.mr, 3);
    a.qp.postSend({ wrId: 1n, opcode: WrOpcode.SEND, sendFlags: S, sgList: [a.mr.sge(0, 100)] });
    net.run(net.now + 100); // a few RNR rounds
    expect(a.cq.poll()).toEqual([]);
    expect(a.dev.queryCounters().rcvd_rnr_err).toBeGreaterThan(1);
    b.qp.postRecv({ wrId: 9n, sgList: [b.mr.sge(0, 100)] });
    const wa: WorkCompletion[] = [];
    const wb: WorkCompletion[] = [];
    expect(net.runUntil(() => drain(a.cq, wa).length >= 1 && drain(b.cq, wb).length >= 1, 1e6)).toBe(true);
    expect(wa).toMatchObject([{ wrId: 1n, status: 0 }]);
    expect(wb).toMatchObject([{ wrId: 9n, status: 0, byteLen: 100 }]);
    expect(b.mr.bytes.slice(0, 100)).toEqual(a.mr.bytes.slice(0, 100));
    net.run(net.now + 1e5);
    expect(drain(b.cq, [])).toEqual([]);
  });

  it("a remote access error reaches the requester as REM_ACCESS_ERR; the rest is flushed", async () => {
    const { net, a, b } = await pair();
    a.qp.postSend([
      { wrId: 1n, opcode: WrOpcode.RDMA_WRITE, sendFlags: S, rdma: { remoteAddr: b.mr.addr + BigInt(b.mr.length) - 4n, rkey: b.mr.rkey }, sgList: [a.mr.sge(0, 8)] },
      { wrId: 2n, opcode: WrOpcode.SEND, sgList: [a.mr.sge(0, 8)] },
    ]);
    const wa: WorkCompletion[] = [];
    expect(net.runUntil(() => drain(a.cq, wa).length >= 2, 1e6)).toBe(true);
    expect(wa.map((w) => [w.wrId, w.status])).toEqual([[1n, WcStatus.REM_ACCESS_ERR], [2n, WcStatus.WR_FLUSH_ERR]]);
    expect(a.qp.state).toBe(QpState.ERR);
  });

  it("a silent peer: RETRY_EXC_ERR after retry_cnt timeouts", async () => {
    const { net, a, b } = await pair({ timeout: 8, retryCnt: 3 });
    b.qp.modify({ qpState: QpState.ERR });
    a.qp.postSend({ wrId: 1n, opcode: WrOpcode.SEND, sgList: [a.mr.sge(0, 8)] });
    const wa: WorkCompletion[] = [];
    expect(net.runUntil(() => drain(a.cq, wa).length >= 1, 1e7)).toBe(true);
    expect(wa).toMatchObject([{ wrId: 1n, status: WcStatus.RETRY_EXC_ERR }]);
    expect(a.dev.queryCounters()).toMatchObject({ sent_pkts: 4, retry_exceeded_err: 1 });
    // 4.096 µs × 2^8 per try, four tries
    expect(net.now).toBeGreaterThanOrEqual(4 * 4.096 * 256);
  });
});

describe("RC end to end over a faulty wire (seeded)", () => {
  for (const [seed, loss] of [[1, 0.05], [2, 0.1], [3, 0.2], [4, 0.1], [5, 0.2]] as const) {
    it(`seed ${seed}, loss ${loss * 100}% + dup + reorder + corrupt: every WR completes once, in order, with the right bytes`, async () => {
      const { net, a, b } = await pair({
        seed, pathMtu: Mtu.MTU_256, timeout: 6, retryCnt: 7, rnrRetry: 7,
        faults: { loss, dup: 0.05, reorder: 0.05, corrupt: 0.02, delayUs: 5 },
      });
      fill(a.mr, seed);
      fill(b.mr, seed + 100);
      const n = 24;
      b.qp.postRecv(Array.from({ length: n }, (_, i) => ({ wrId: BigInt(1000 + i), sgList: [b.mr.sge(i * 2048, 2048)] })));
      const wrs = [];
      for (let i = 0; i < n; i++) {
        const len = 1 + ((i * 397) % 2000);
        if (i % 3 === 0) wrs.push({ wrId: BigInt(i), opcode: WrOpcode.SEND, sendFlags: S, sgList: [a.mr.sge(i * 2048, len)] });
        else if (i % 3 === 1) wrs.push({ wrId: BigInt(i), opcode: WrOpcode.RDMA_WRITE, sendFlags: S, rdma: { remoteAddr: b.mr.addr + BigInt(0x10000 + i * 2048), rkey: b.mr.rkey }, sgList: [a.mr.sge(i * 2048, len)] });
        else wrs.push({ wrId: BigInt(i), opcode: WrOpcode.RDMA_READ, sendFlags: S, rdma: { remoteAddr: b.mr.addr + BigInt(0x20000 + i * 2048), rkey: b.mr.rkey }, sgList: [a.mr.sge(0x30000 + i * 2048, len)] });
      }
      a.qp.postSend(wrs);
      const wa: WorkCompletion[] = [];
      const wb: WorkCompletion[] = [];
      const ok = net.runUntil(() => drain(a.cq, wa).length >= n, 60e6);
      drain(b.cq, wb);
      expect(ok).toBe(true);
      expect(wa.map((w) => [w.wrId, w.status])).toEqual(wrs.map((w) => [w.wrId, 0]));
      const sends = wrs.filter((_, i) => i % 3 === 0);
      expect(wb.map((w) => [w.wrId, w.status, w.byteLen])).toEqual(sends.map((w, k) => [BigInt(1000 + k), 0, w.sgList[0]!.length]));
      for (let i = 0; i < n; i++) {
        const len = 1 + ((i * 397) % 2000);
        const src = a.mr.bytes.slice(i * 2048, i * 2048 + len);
        if (i % 3 === 0) expect(b.mr.bytes.slice((i / 3) * 2048, (i / 3) * 2048 + len)).toEqual(src);
        else if (i % 3 === 1) expect(b.mr.bytes.slice(0x10000 + i * 2048, 0x10000 + i * 2048 + len)).toEqual(src);
        else expect(a.mr.bytes.slice(0x30000 + i * 2048, 0x30000 + i * 2048 + len)).toEqual(b.mr.bytes.slice(0x20000 + i * 2048, 0x20000 + i * 2048 + len));
      }
      expect(a.qp.state).toBe(QpState.RTS);
      expect(b.qp.state).toBe(QpState.RTS);
    });
  }
});

describe("RC end to end: mixed operations over a faulty wire (seeded)", () => {
  // SEND over three SGEs into two receive SGEs, WRITE, READ with a zero-length first SGE,
  // FETCH_ADD on one counter (each original value seen once), ATOMIC_WRITE, FLUSH; PSNs
  // just below the wrap; max_rd_atomic 2.
  it("30 seeds × loss {0, 2, 5, 10, 15 %} × MTU {256, 1024, 4096}, with dup, reorder, corrupt: every WR completes once, in order, with the right bytes and atomic results", async () => {
    const bad: string[] = [];
    for (let seed = 1; seed <= 30; seed++) {
      const loss = [0, 0.02, 0.05, 0.1, 0.15][seed % 5]!;
      const mtu = [Mtu.MTU_256, Mtu.MTU_1024, Mtu.MTU_4096][seed % 3]!;
      const pa = (0xffffff - seed * 3) & 0xffffff, pb = (0xfffff0 + seed) & 0xffffff;
      const { net, a: sa, b: sb } = await simRcPair({
        seed, addresses: ADDRESSES, wire: { faults: { loss, dup: 0.05, reorder: 0.05, corrupt: 0.02, delayUs: 3 } }, device: { ringArenaBytes: 8 << 20 },
        cqe: 1024, cap: { maxSendWr: 128, maxRecvWr: 128, maxSendSge: 4, maxRecvSge: 4 }, mrBytes: 1 << 18, mrAccess: ALL, psns: [pa, pb],
        connect: { pathMtu: mtu, qpAccessFlags: ALL, timeout: 6, retryCnt: 7, rnrRetry: 7, minRnrTimer: 1, maxRdAtomic: 2, maxDestRdAtomic: 2 },
      });
      // a second MR each side (the SEND target, the atomics' counter, READ's zero-length SGE)
      const a = { ...sa, mr2: sa.pd.regMr(1 << 18, ALL) }, b = { ...sb, mr2: sb.pd.regMr(1 << 18, ALL) };
      for (let i = 0; i < a.mr.length; i++) { a.mr.bytes[i] = (i * 7 + seed) & 0xff; b.mr.bytes[i] = (i * 13 + seed) & 0xff; }
      const dv = (m: MemoryRegion) => new DataView(m.bytes.buffer, m.bytes.byteOffset, m.length);
      dv(b.mr2).setBigUint64(0x100, 0n, true);
      const wrs: SendWr[] = []; const n = 40; let recvs = 0;
      const exp: (() => void)[] = [];
      for (let i = 0; i < n; i++) {
        const k = (i * 7 + seed) % 6; const len = 1 + ((i * 977 + seed * 31) % 5000);
        const lo = i * 0x1800;
        if (k === 0) { wrs.push({ wrId: BigInt(i), opcode: WrOpcode.SEND, sendFlags: 2, sgList: [a.mr.sge(lo, Math.ceil(len / 3)), a.mr.sge(lo + 0x800, Math.floor(len / 3)), a.mr.sge(lo + 0x1000, len - Math.ceil(len / 3) - Math.floor(len / 3))] });
          const src = [...a.mr.bytes.slice(lo, lo + Math.ceil(len / 3)), ...a.mr.bytes.slice(lo + 0x800, lo + 0x800 + Math.floor(len / 3)), ...a.mr.bytes.slice(lo + 0x1000, lo + 0x1000 + len - Math.ceil(len / 3) - Math.floor(len / 3))];
          const r = recvs++; b.qp.postRecv({ wrId: BigInt(r), sgList: [b.mr2.sge(0x1000 + r * 0x1400, 2000), b.mr2.sge(0x1000 + r * 0x1400 + 2000, 3000)] });
          exp.push(() => expect(Array.from(b.mr2.bytes.slice(0x1000 + r * 0x1400, 0x1000 + r * 0x1400 + len))).toEqual(src)); }
        else if (k === 1) { wrs.push({ wrId: BigInt(i), opcode: WrOpcode.RDMA_WRITE, sendFlags: 2, rdma: { remoteAddr: b.mr.addr + BigInt(lo), rkey: b.mr.rkey }, sgList: [a.mr.sge(lo, len)] });
          const src = Array.from(a.mr.bytes.slice(lo, lo + len)); exp.push(() => expect(Array.from(b.mr.bytes.slice(lo, lo + len))).toEqual(src)); }
        else if (k === 2) { wrs.push({ wrId: BigInt(i), opcode: WrOpcode.RDMA_READ, sendFlags: 2, rdma: { remoteAddr: b.mr.addr + BigInt(lo), rkey: b.mr.rkey }, sgList: [a.mr2.sge((i % 4) * 0x10, 0), a.mr.sge(lo, len)] });
          exp.push(() => expect(Array.from(a.mr.bytes.slice(lo, lo + len))).toEqual(Array.from(b.mr.bytes.slice(lo, lo + len)))); }
        else if (k === 3) { wrs.push({ wrId: BigInt(i), opcode: WrOpcode.ATOMIC_FETCH_AND_ADD, sendFlags: 2, atomic: { remoteAddr: b.mr2.addr + 0x100n, rkey: b.mr2.rkey, compareAdd: 1n }, sgList: [a.mr.sge(lo, 8)] }); }
        else if (k === 4) { wrs.push({ wrId: BigInt(i), opcode: WrOpcode.ATOMIC_WRITE, sendFlags: 2, atomic: { remoteAddr: b.mr2.addr + 0x108n, rkey: b.mr2.rkey, compareAdd: BigInt(i) } }); }
        else { wrs.push({ wrId: BigInt(i), opcode: WrOpcode.FLUSH, sendFlags: 2, immData: 0x11, rdma: { remoteAddr: b.mr.addr, rkey: b.mr.rkey }, sgList: [{ addr: 0n, length: 64, lkey: 0 }] }); }
      }
      // reads of regions written earlier in the same run are order-dependent; fine since RC is ordered
      a.qp.postSend(wrs);
      const wa: WorkCompletion[] = [];
      const ok = net.runUntil(() => { wa.push(...a.cq.poll(64)); return wa.length >= n; }, 120e6);
      const st = wa.map((w) => `${w.wrId}:${w.status}`).filter((x) => !x.endsWith(":0"));
      if (!ok || st.length || wa.some((w, i) => w.wrId !== BigInt(i))) { bad.push(`seed ${seed} loss ${loss} mtu ${mtu}: ok=${ok} n=${wa.length} bad=${st.slice(0, 3)}`); continue; }
      const faa = wrs.filter((w) => w.opcode === WrOpcode.ATOMIC_FETCH_AND_ADD).length;
      try { for (const e of exp) e(); expect(dv(b.mr2).getBigUint64(0x100, true)).toBe(BigInt(faa));
        const seen = wrs.filter((w) => w.opcode === WrOpcode.ATOMIC_FETCH_AND_ADD).map((w) => dv(a.mr).getBigUint64(Number(w.sgList![0]!.addr - a.mr.addr), true)).sort((x, y) => Number(x - y));
        expect(seen).toEqual(Array.from({ length: faa }, (_, j) => BigInt(j)));
      } catch (e) { bad.push(`seed ${seed} loss ${loss} mtu ${mtu}: data ${String(e).slice(0, 200)}`); }
    }
    expect(bad).toEqual([]);
  }, 120000);
});

// Memory windows, invalidation and fast registration between two devices on the
// simulated wire, and the bad flows rdma-core's pyverbs tests (tests/test_mr.py:
// MW tests) try: bind to a window of another PD, bind without MW_BIND access,
// invalidate a type 1 window, use an invalidated rkey, zero-length windows,
// rebinding a bound type 2 window — each with the status or errno rxe gives.
import { describe, expect, it } from "vitest";
import { drainCq, errnoOf, simRcPair, type SimSide } from "../support/sim-pair.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { SimNetwork } from "../../../host/core/sim/network.js";
import { Access, MwType, QpState, QpType, SendFlags, WcFlags, WcOpcode, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import { MwState } from "../../../host/core/verbs/abi.js";
import { incRkey } from "../../../host/core/verbs/mw.js";
import type { WorkCompletion } from "../../../host/core/verbs/cq.js";

const S = SendFlags.SIGNALED;
const RW = Access.REMOTE_WRITE | Access.REMOTE_READ;


/** Two connected RC QPs (simulated devices at 127.0.0.1 and .2), an 8 KiB MR on each. */
function pair(mrAccess = Access.LOCAL_WRITE | Access.MW_BIND) {
  const connect = { qpAccessFlags: RW | Access.REMOTE_ATOMIC, timeout: 10, retryCnt: 3, rnrRetry: 3, maxRdAtomic: 4, maxDestRdAtomic: 4 };
  const cap = { maxSendWr: 64, maxRecvWr: 64, maxSendSge: 2, maxRecvSge: 2 };
  return simRcPair({ seed: 7, addresses: ["127.0.0.1", "127.0.0.2"], cqe: 256, cap, mrAccess, psns: [100, 200], connect });
}

function settle(net: SimNetwork): void {
  net.run(net.now + 2_000_000);
}

/** The remote side writes `text` at va through `rkey` and reads it back; returns both completions' statuses. */
function writeThrough(net: SimNetwork, s: SimSide, va: bigint, rkey: number, text: string): WorkCompletion[] {
  const src = s.mr.bytes;
  src.set(new TextEncoder().encode(text), 0);
  s.qp.postSend({ wrId: 10n, opcode: WrOpcode.RDMA_WRITE, sendFlags: S, sgList: [s.mr.sge(0, text.length)], rdma: { remoteAddr: va, rkey } });
  settle(net);
  return drainCq(s.cq);
}

describe("memory windows (type 1 and type 2)", () => {
  it("type 1: ibv_bind_mw through the SQ, remote WRITE and READ through the window, unbind by length 0", async () => {
    const { net, a, b } = await pair();
    const mw = b.pd.allocMw(MwType.TYPE_1);
    const first = mw.rkey;
    expect(first >>> 8).toBeGreaterThanOrEqual(0x80001); // a window key (rxe RXE_MIN_MW_INDEX)
    const rkey = b.qp.bindMw(mw, { wrId: 2n, sendFlags: S, bindInfo: { mr: b.mr, addr: b.mr.addr + 1024n, length: 1024, mwAccessFlags: RW } });
    expect(rkey).toBe(incRkey(first));
    expect(mw.rkey).toBe(rkey);
    settle(net);
    const bind = drainCq(b.cq);
    expect(bind.map((w) => [w.wrId, w.status, w.opcode, w.byteLen])).toEqual([[2n, WcStatus.SUCCESS, WcOpcode.BIND_MW, 0]]);
    expect(mw.query()).toMatchObject({ state: MwState.VALID, rkey, length: 1024n });

    const w = writeThrough(net, a, b.mr.addr + 1040n, rkey, "verbs-ops mw1 write");
    expect(w.map((x) => x.status)).toEqual([WcStatus.SUCCESS]);
    expect(new TextDecoder().decode(b.mr.bytes.subarray(1040, 1059))).toBe("verbs-ops mw1 write");
    a.qp.postSend({ wrId: 11n, opcode: WrOpcode.RDMA_READ, sendFlags: S, sgList: [a.mr.sge(4096, 19)], rdma: { remoteAddr: b.mr.addr + 1040n, rkey } });
    settle(net);
    expect(drainCq(a.cq).map((x) => [x.wrId, x.status, x.opcode])).toEqual([[11n, WcStatus.SUCCESS, WcOpcode.RDMA_READ]]);
    expect(new TextDecoder().decode(a.mr.bytes.subarray(4096, 4115))).toBe("verbs-ops mw1 write");

    // outside the window (but inside the MR): remote access error
    const out = writeThrough(net, a, b.mr.addr + 2048n, rkey, "x");
    expect(out.map((x) => x.status)).toEqual([WcStatus.REM_ACCESS_ERR]);
  });

  it("type 1: unbinding (length 0) makes the old rkey fail with REM_ACCESS_ERR; the MR cannot be deregistered while bound", async () => {
    const { net, a, b } = await pair();
    const mw = b.pd.allocMw(MwType.TYPE_1);
    const rkey = b.qp.bindMw(mw, { wrId: 2n, sendFlags: S, bindInfo: { mr: b.mr, addr: b.mr.addr, length: 1024, mwAccessFlags: RW } });
    settle(net);
    expect(drainCq(b.cq).map((w) => w.status)).toEqual([WcStatus.SUCCESS]);
    expect(errnoOf(() => b.mr.destroy())).toBe("EINVAL"); // rxe_dereg_mr: num_mw > 0
    const unbound = b.qp.bindMw(mw, { wrId: 3n, sendFlags: S, bindInfo: { addr: 0n, length: 0, mwAccessFlags: 0 } });
    expect(unbound).toBe(incRkey(rkey));
    settle(net);
    expect(drainCq(b.cq).map((w) => [w.wrId, w.status, w.opcode])).toEqual([[3n, WcStatus.SUCCESS, WcOpcode.BIND_MW]]);
    expect(writeThrough(net, a, b.mr.addr, rkey, "late").map((x) => x.status)).toEqual([WcStatus.REM_ACCESS_ERR]);
    expect(a.qp.state).toBe(QpState.ERR);
    b.mr.destroy(); // nothing bound any more
  });

  it("type 2: BIND_MW WR, LOCAL_INV, then the rkey fails; the window can be bound again after invalidation only", async () => {
    const { net, a, b } = await pair();
    const mw = b.pd.allocMw(MwType.TYPE_2);
    expect(mw.query().state).toBe(MwState.FREE);
    const rkey = incRkey(mw.rkey);
    const bindInfo = { mr: b.mr, addr: b.mr.addr + 1024n, length: 1024, mwAccessFlags: RW };
    b.qp.postSend({ wrId: 1n, opcode: WrOpcode.BIND_MW, sendFlags: S, bindMw: { mw, rkey, bindInfo } });
    settle(net);
    expect(drainCq(b.cq).map((w) => [w.wrId, w.status, w.opcode])).toEqual([[1n, WcStatus.SUCCESS, WcOpcode.BIND_MW]]);
    expect(writeThrough(net, a, b.mr.addr + 1024n, rkey, "through type 2").map((x) => x.status)).toEqual([WcStatus.SUCCESS]);

    // rebinding a bound type 2 window: MW_BIND_ERR, QP to ERR (o10-37.2.30)
    const mod = await pair();
    const mw2 = mod.b.pd.allocMw(MwType.TYPE_2);
    const k2 = incRkey(mw2.rkey);
    const bi2 = { mr: mod.b.mr, addr: mod.b.mr.addr, length: 64, mwAccessFlags: RW };
    mod.b.qp.postSend({ wrId: 1n, opcode: WrOpcode.BIND_MW, sendFlags: S, bindMw: { mw: mw2, rkey: k2, bindInfo: bi2 } });
    mod.b.qp.postSend({ wrId: 2n, opcode: WrOpcode.BIND_MW, sendFlags: S, bindMw: { mw: mw2, rkey: incRkey(k2), bindInfo: bi2 } });
    settle(mod.net);
    expect(drainCq(mod.b.cq).map((w) => [w.wrId, w.status])).toEqual([[1n, WcStatus.SUCCESS], [2n, WcStatus.MW_BIND_ERR]]);
    expect(mod.b.qp.state).toBe(QpState.ERR);

    b.qp.postSend({ wrId: 3n, opcode: WrOpcode.LOCAL_INV, sendFlags: S, invalidateRkey: rkey });
    settle(net);
    expect(drainCq(b.cq).map((w) => [w.wrId, w.status, w.opcode])).toEqual([[3n, WcStatus.SUCCESS, WcOpcode.LOCAL_INV]]);
    expect(mw.query().state).toBe(MwState.FREE);
    const after = writeThrough(net, a, b.mr.addr + 1024n, rkey, "after");
    expect(after.map((x) => x.status)).toEqual([WcStatus.REM_ACCESS_ERR]);
  });

  it("type 2 zero-based: the peer addresses the window from 0", async () => {
    const { net, a, b } = await pair();
    const mw = b.pd.allocMw(MwType.TYPE_2);
    const rkey = incRkey(mw.rkey);
    b.qp.postSend({ wrId: 1n, opcode: WrOpcode.BIND_MW, sendFlags: S, bindMw: { mw, rkey, bindInfo: { mr: b.mr, addr: b.mr.addr + 4096n, length: 256, mwAccessFlags: RW | Access.ZERO_BASED } } });
    settle(net);
    expect(drainCq(b.cq).map((w) => w.status)).toEqual([WcStatus.SUCCESS]);
    expect(writeThrough(net, a, 16n, rkey, "zero based").map((x) => x.status)).toEqual([WcStatus.SUCCESS]);
    expect(new TextDecoder().decode(b.mr.bytes.subarray(4096 + 16, 4096 + 26))).toBe("zero based");
    // 256 bytes from 0: byte 250 + 10 runs past the window
    expect(writeThrough(net, a, 250n, rkey, "0123456789").map((x) => x.status)).toEqual([WcStatus.REM_ACCESS_ERR]);
  });

  it("SEND_WITH_INV invalidates a type 2 window: the receiver sees WITH_INV and the rkey", async () => {
    const { net, a, b } = await pair();
    const mw = b.pd.allocMw(MwType.TYPE_2);
    const rkey = incRkey(mw.rkey);
    b.qp.postSend({ wrId: 1n, opcode: WrOpcode.BIND_MW, sendFlags: S, bindMw: { mw, rkey, bindInfo: { mr: b.mr, addr: b.mr.addr + 1024n, length: 1024, mwAccessFlags: RW } } });
    b.qp.postRecv({ wrId: 100n, sgList: [b.mr.sge(0, 512)] });
    settle(net);
    drainCq(b.cq);
    a.mr.bytes.set(new TextEncoder().encode("verbs-ops mw2-inv sn"), 0);
    a.qp.postSend({ wrId: 12n, opcode: WrOpcode.SEND_WITH_INV, sendFlags: S, invalidateRkey: rkey, sgList: [a.mr.sge(0, 20)] });
    settle(net);
    expect(drainCq(a.cq).map((w) => [w.wrId, w.status, w.opcode, w.byteLen])).toEqual([[12n, WcStatus.SUCCESS, WcOpcode.SEND, 20]]);
    const [r] = drainCq(b.cq);
    expect([r!.wrId, r!.status, r!.opcode, r!.byteLen]).toEqual([100n, WcStatus.SUCCESS, WcOpcode.RECV, 20]);
    expect(r!.wcFlags & WcFlags.WITH_INV).toBe(WcFlags.WITH_INV);
    expect(r!.invalidatedRkey).toBe(rkey);
    expect(mw.query().state).toBe(MwState.FREE);
    expect(writeThrough(net, a, b.mr.addr + 1024n, rkey, "x").map((x) => x.status)).toEqual([WcStatus.REM_ACCESS_ERR]);
  });

  it("SEND_WITH_INV of a type 1 window or a user MR: receiver REM_INV_REQ_ERR and ERR, sender SUCCESS (as rxe's captures)", async () => {
    for (const kind of ["type1", "mr"] as const) {
      const { net, a, b } = await pair();
      let rkey = b.mr.rkey;
      if (kind === "type1") {
        const mw = b.pd.allocMw(MwType.TYPE_1);
        rkey = b.qp.bindMw(mw, { bindInfo: { mr: b.mr, addr: b.mr.addr, length: 1024, mwAccessFlags: RW } });
      }
      b.qp.postRecv([{ wrId: 100n, sgList: [b.mr.sge(0, 512)] }, { wrId: 101n, sgList: [b.mr.sge(512, 512)] }]);
      settle(net);
      drainCq(b.cq);
      a.qp.postSend({ wrId: 12n, opcode: WrOpcode.SEND_WITH_INV, sendFlags: S, invalidateRkey: rkey, sgList: [a.mr.sge(0, 20)] });
      settle(net);
      expect(drainCq(a.cq).map((w) => [w.wrId, w.status])).toEqual([[12n, WcStatus.SUCCESS]]);
      expect(drainCq(b.cq).map((w) => [w.wrId, w.status])).toEqual([[100n, WcStatus.REM_INV_REQ_ERR], [101n, WcStatus.WR_FLUSH_ERR]]);
      expect(b.qp.state).toBe(QpState.ERR);
      expect(a.qp.state).toBe(QpState.RTS);
    }
  });

  it("bad flows: another PD, no MW_BIND on the MR, LOCAL_INV of a type 1 window, zero-length type 2, range outside the MR", async () => {
    // bind a type 1 window of another PD than the QP's: MW_BIND_ERR
    {
      const { net, b } = await pair();
      const other = b.dev.allocPd();
      const mw = other.allocMw(MwType.TYPE_1);
      const mr = other.regMr(4096, Access.LOCAL_WRITE | Access.MW_BIND);
      b.qp.bindMw(mw, { wrId: 5n, sendFlags: S, bindInfo: { mr, addr: mr.addr, length: 64, mwAccessFlags: RW } });
      settle(net);
      expect(drainCq(b.cq).map((w) => [w.wrId, w.status])).toEqual([[5n, WcStatus.MW_BIND_ERR]]);
      expect(b.qp.state).toBe(QpState.ERR);
    }
    // the MR is in another PD than the window: ibv_bind_mw EPERM at once (rxe provider)
    {
      const { b } = await pair();
      const other = b.dev.allocPd();
      const mw = b.pd.allocMw(MwType.TYPE_1);
      const mr = other.regMr(4096, Access.LOCAL_WRITE | Access.MW_BIND);
      expect(errnoOf(() => b.qp.bindMw(mw, { bindInfo: { mr, addr: mr.addr, length: 64, mwAccessFlags: RW } }))).toBe("EPERM");
      expect(errnoOf(() => b.qp.bindMw(mw, { bindInfo: { addr: 8n, length: 0, mwAccessFlags: 0 } }))).toBe("EINVAL");
      expect(errnoOf(() => b.qp.bindMw(mw, { bindInfo: { mr: b.mr, addr: b.mr.addr, length: 8, mwAccessFlags: Access.ZERO_BASED } }))).toBe("EINVAL");
      const t2 = b.pd.allocMw(MwType.TYPE_2);
      expect(errnoOf(() => b.qp.bindMw(t2, { bindInfo: { mr: b.mr, addr: b.mr.addr, length: 8, mwAccessFlags: RW } }))).toBe("EINVAL");
      expect(errnoOf(() => b.qp.postSend({ opcode: WrOpcode.BIND_MW, bindMw: { mw, rkey: incRkey(mw.rkey), bindInfo: { mr: b.mr, addr: b.mr.addr, length: 8, mwAccessFlags: RW } } }))).toBe("EINVAL");
      expect(errnoOf(() => b.pd.allocMw(3))).toBe("EINVAL");
    }
    // an MR without MW_BIND access (C10-73): MW_BIND_ERR
    {
      const { net, b } = await pair(Access.LOCAL_WRITE);
      const mw = b.pd.allocMw(MwType.TYPE_1);
      b.qp.bindMw(mw, { wrId: 6n, sendFlags: S, bindInfo: { mr: b.mr, addr: b.mr.addr, length: 64, mwAccessFlags: RW } });
      settle(net);
      expect(drainCq(b.cq).map((w) => [w.wrId, w.status])).toEqual([[6n, WcStatus.MW_BIND_ERR]]);
    }
    // a writable window on an MR without LOCAL_WRITE (C10-74): MW_BIND_ERR
    {
      const { net, b } = await pair(Access.MW_BIND);
      const mw = b.pd.allocMw(MwType.TYPE_1);
      b.qp.bindMw(mw, { wrId: 7n, sendFlags: S, bindInfo: { mr: b.mr, addr: b.mr.addr, length: 64, mwAccessFlags: Access.REMOTE_WRITE } });
      settle(net);
      expect(drainCq(b.cq).map((w) => [w.wrId, w.status])).toEqual([[7n, WcStatus.MW_BIND_ERR]]);
    }
    // invalidating a type 1 window (o10-37.2.26): LOC_QP_OP_ERR, QP to ERR
    {
      const { net, b } = await pair();
      const mw = b.pd.allocMw(MwType.TYPE_1);
      const rkey = b.qp.bindMw(mw, { bindInfo: { mr: b.mr, addr: b.mr.addr, length: 64, mwAccessFlags: RW } });
      b.qp.postSend({ wrId: 8n, opcode: WrOpcode.LOCAL_INV, sendFlags: S, invalidateRkey: rkey });
      settle(net);
      expect(drainCq(b.cq).map((w) => [w.wrId, w.status])).toEqual([[8n, WcStatus.LOC_QP_OP_ERR]]);
      expect(b.qp.state).toBe(QpState.ERR);
      expect(mw.query().state).toBe(MwState.VALID);
    }
    // a zero-length type 2 binding (o10-37.2.40), and a range past the MR (C10-75): MW_BIND_ERR
    for (const [addrOff, length] of [[0n, 0], [8000n, 1024]] as const) {
      const { net, b } = await pair();
      const mw = b.pd.allocMw(MwType.TYPE_2);
      b.qp.postSend({ wrId: 9n, opcode: WrOpcode.BIND_MW, sendFlags: S, bindMw: { mw, rkey: incRkey(mw.rkey), bindInfo: { mr: b.mr, addr: b.mr.addr + addrOff, length, mwAccessFlags: RW } } });
      settle(net);
      expect(drainCq(b.cq).map((w) => [w.wrId, w.status])).toEqual([[9n, WcStatus.MW_BIND_ERR]]);
    }
  });

  it("a type 2 window answers only the QP that bound it; a deallocated window's rkey is dead", async () => {
    const { net, a, b } = await pair();
    const mw = b.pd.allocMw(MwType.TYPE_2);
    const rkey = incRkey(mw.rkey);
    // bound through a second QP of the same PD: the first QP's peer cannot use it
    const cq2 = b.dev.createCq(16);
    const qp2 = b.pd.createQp({ qpType: QpType.RC, sendCq: cq2, recvCq: cq2, cap: { maxSendWr: 4, maxRecvWr: 4 } });
    connectQp(qp2, { qpNum: 999, psn: 0, gid: "::ffff:127.0.0.9" }, { sqPsn: 0 });
    qp2.postSend({ wrId: 1n, opcode: WrOpcode.BIND_MW, sendFlags: S, bindMw: { mw, rkey, bindInfo: { mr: b.mr, addr: b.mr.addr, length: 64, mwAccessFlags: RW } } });
    settle(net);
    expect(drainCq(cq2).map((w) => w.status)).toEqual([WcStatus.SUCCESS]);
    expect(writeThrough(net, a, b.mr.addr, rkey, "x").map((w) => w.status)).toEqual([WcStatus.REM_ACCESS_ERR]);
    mw.destroy();
    expect(mw.query().state).toBe(0);
    b.mr.destroy(); // the window's binding went with it
  });
});

describe("fast registration (ibv_alloc_mr + REG_MR) and MR invalidation", () => {
  it("REG_MR maps registered memory under a new key; the peer writes through it; SEND_WITH_INV and LOCAL_INV free it", async () => {
    const { net, a, b } = await pair(Access.LOCAL_WRITE);
    const fmr = b.pd.allocMr(2);
    expect(fmr.fastReg).toBe(true);
    expect(fmr.maxLength).toBe(8192);
    const key = incRkey(fmr.lkey);
    b.qp.postSend({ wrId: 1n, opcode: WrOpcode.REG_MR, sendFlags: S, reg: { mr: fmr, key, access: Access.LOCAL_WRITE | RW, addr: b.mr.addr + 4096n, length: 4096 } });
    expect(fmr.rkey).toBe(key);
    expect(fmr.addr).toBe(b.mr.addr + 4096n);
    settle(net);
    expect(drainCq(b.cq).map((w) => [w.wrId, w.status, w.opcode])).toEqual([[1n, WcStatus.SUCCESS, WcOpcode.REG_MR]]);
    expect(writeThrough(net, a, fmr.addr + 8n, key, "fast reg").map((w) => w.status)).toEqual([WcStatus.SUCCESS]);
    expect(new TextDecoder().decode(fmr.bytes.subarray(8, 16))).toBe("fast reg");

    // the peer invalidates it with SEND_WITH_INV
    b.qp.postRecv({ wrId: 100n, sgList: [b.mr.sge(0, 64)] });
    a.qp.postSend({ wrId: 12n, opcode: WrOpcode.SEND_WITH_INV, sendFlags: S, invalidateRkey: key, sgList: [a.mr.sge(0, 4)] });
    settle(net);
    const [r] = drainCq(b.cq);
    expect([r!.status, r!.wcFlags & WcFlags.WITH_INV, r!.invalidatedRkey]).toEqual([WcStatus.SUCCESS, WcFlags.WITH_INV, key]);
    drainCq(a.cq);
    expect(writeThrough(net, a, fmr.addr, key, "dead").map((w) => w.status)).toEqual([WcStatus.REM_ACCESS_ERR]);
  });

  it("REG_MR again after LOCAL_INV; REG_MR of a VALID MR, of unregistered memory or past maxNumSg is LOC_QP_OP_ERR", async () => {
    const { net, b } = await pair(Access.LOCAL_WRITE);
    const fmr = b.pd.allocMr({ maxNumSg: 1 }); // ib_alloc_mr's argument, as an object too
    expect(fmr.maxLength).toBe(4096);
    const k1 = incRkey(fmr.lkey);
    const reg = (wrId: bigint, key: number, addr: bigint, length: number): void =>
      b.qp.postSend({ wrId, opcode: WrOpcode.REG_MR, sendFlags: S, reg: { mr: fmr, key, access: Access.LOCAL_WRITE | RW, addr, length } });
    reg(1n, k1, b.mr.addr, 4096);
    b.qp.postSend({ wrId: 2n, opcode: WrOpcode.LOCAL_INV, sendFlags: S, invalidateRkey: k1 });
    const k2 = incRkey(k1);
    reg(3n, k2, b.mr.addr, 4096);
    settle(net);
    expect(drainCq(b.cq).map((w) => [w.wrId, w.status, w.opcode])).toEqual([
      [1n, WcStatus.SUCCESS, WcOpcode.REG_MR], [2n, WcStatus.SUCCESS, WcOpcode.LOCAL_INV], [3n, WcStatus.SUCCESS, WcOpcode.REG_MR],
    ]);
    reg(4n, incRkey(k2), b.mr.addr, 4096); // still VALID
    settle(net);
    expect(drainCq(b.cq).map((w) => [w.wrId, w.status])).toEqual([[4n, WcStatus.LOC_QP_OP_ERR]]);
    expect(b.qp.state).toBe(QpState.ERR);

    for (const [addr, length] of [[0x100n, 64], [0n, 8192]] as const) {
      const p = await pair(Access.LOCAL_WRITE);
      const f = p.b.pd.allocMr(1);
      p.b.qp.postSend({ wrId: 5n, opcode: WrOpcode.REG_MR, sendFlags: S, reg: { mr: f, key: incRkey(f.lkey), access: Access.LOCAL_WRITE, addr: addr === 0n ? p.b.mr.addr : addr, length } });
      settle(p.net);
      expect(drainCq(p.b.cq).map((w) => [w.wrId, w.status])).toEqual([[5n, WcStatus.LOC_QP_OP_ERR]]);
    }
    // LOCAL_INV of a user MR (rxe: only IB_MR_TYPE_MEM_REG) and of an unknown key
    for (const k of [(await pair()).b.mr.lkey, 0x12345600]) {
      const p = await pair();
      p.b.qp.postSend({ wrId: 6n, opcode: WrOpcode.LOCAL_INV, sendFlags: S, invalidateRkey: k === 0x12345600 ? k : p.b.mr.lkey });
      settle(p.net);
      expect(drainCq(p.b.cq).map((w) => [w.wrId, w.status])).toEqual([[6n, WcStatus.LOC_QP_OP_ERR]]);
    }
    expect(errnoOf(() => b.pd.allocMr(0))).toBe("EINVAL");
    expect(errnoOf(() => fmr.rereg({ access: 0 }))).toBe("EINVAL");
  });

  it("deregistering the memory a fast-registration MR maps leaves that MR FREE: its key stops working", async () => {
    const { net, a, b } = await pair(Access.LOCAL_WRITE);
    const backing = b.pd.regMr(4096, Access.LOCAL_WRITE);
    const fmr = b.pd.allocMr(1);
    const key = incRkey(fmr.lkey);
    b.qp.postSend({ wrId: 1n, opcode: WrOpcode.REG_MR, sendFlags: S, reg: { mr: fmr, key, access: Access.LOCAL_WRITE | RW, addr: backing.addr, length: 4096 } });
    settle(net);
    drainCq(b.cq);
    backing.destroy();
    expect(writeThrough(net, a, fmr.addr, key, "gone").map((w) => w.status)).toEqual([WcStatus.REM_ACCESS_ERR]);
  });
});

// FLUSH through a memory window's rkey, as rxe does it (rxe_resp.c check_rkey): the window is
// looked up with the FLUSH access bits the request's placement type needs (rxe_lookup_mw wants
// every bit), then its MR is used; a FLUSH of the whole MR (selectivity MR) through a window
// flushes the window's MR without a range check. A window without the FLUSH bit: NAK remote
// access error, the requester completes REM_ACCESS_ERR (docs/reference/fast-reg-flush-mw.md).
import { describe, expect, it } from "vitest";
import { settleAndDrain, simRcPair } from "../support/sim-pair.js";
import { Access, FlushLevel, FlushType, MwType, QpState, SendFlags, WcOpcode, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import { incRkey } from "../../../host/core/verbs/mw.js";

const S = SendFlags.SIGNALED;
const RW = Access.REMOTE_WRITE | Access.REMOTE_READ;

/** Two connected RC QPs (a at 127.0.16.1, b at .2), each MR open to windows and FLUSH. */
function pair() {
  const connect = { qpAccessFlags: RW | Access.FLUSH_GLOBAL | Access.FLUSH_PERSISTENT, timeout: 10, retryCnt: 3, rnrRetry: 3, maxRdAtomic: 4, maxDestRdAtomic: 4 };
  const mrAccess = Access.LOCAL_WRITE | Access.MW_BIND | Access.FLUSH_GLOBAL | Access.FLUSH_PERSISTENT;
  return simRcPair({ seed: 16, addresses: ["127.0.16.1", "127.0.16.2"], mrAccess, connect });
}

describe("FLUSH through a memory window (rxe check_rkey)", () => {
  it("a window bound with FLUSH_GLOBAL takes range and whole-MR FLUSHes; one without it is a remote access error", async () => {
    const { net, a, b } = await pair();
    const mw = b.pd.allocMw(MwType.TYPE_2);
    const rkey = incRkey(mw.rkey);
    const bind = (wrId: bigint, w: typeof mw, key: number, access: number) =>
      b.qp.postSend({ wrId, opcode: WrOpcode.BIND_MW, sendFlags: S, bindMw: { mw: w, rkey: key, bindInfo: { mr: b.mr, addr: b.mr.addr + 1024n, length: 1024, mwAccessFlags: access } } });
    bind(1n, mw, rkey, RW | Access.FLUSH_GLOBAL);
    expect(settleAndDrain(net, b.cq).map((w) => [w.wrId, w.status])).toEqual([[1n, WcStatus.SUCCESS]]);

    a.qp.postSend([
      { wrId: 2n, opcode: WrOpcode.FLUSH, sendFlags: S, flush: { remoteAddr: b.mr.addr + 1024n, rkey, length: 512, type: FlushType.GLOBAL, level: FlushLevel.RANGE } },
      { wrId: 3n, opcode: WrOpcode.FLUSH, sendFlags: S, flush: { remoteAddr: 0n, rkey, length: 0, type: FlushType.GLOBAL, level: FlushLevel.MR } },
    ]);
    expect(settleAndDrain(net, a.cq).map((w) => [w.wrId, w.status, w.opcode])).toEqual([
      [2n, WcStatus.SUCCESS, WcOpcode.FLUSH], [3n, WcStatus.SUCCESS, WcOpcode.FLUSH],
    ]);
    // PERSISTENT needs a bit the window was not given (rxe_lookup_mw wants every bit)
    a.qp.postSend({ wrId: 4n, opcode: WrOpcode.FLUSH, sendFlags: S, flush: { remoteAddr: 0n, rkey, length: 0, type: FlushType.GLOBAL | FlushType.PERSISTENT, level: FlushLevel.MR } });
    expect(settleAndDrain(net, a.cq).map((w) => [w.wrId, w.status])).toEqual([[4n, WcStatus.REM_ACCESS_ERR]]);
    expect(a.qp.state).toBe(QpState.ERR);
  });

  it("a window without FLUSH access: FLUSH (either level) through it is refused; the MR's own rkey still works", async () => {
    for (const level of [FlushLevel.RANGE, FlushLevel.MR]) {
      const { net, a, b } = await pair();
      const mw = b.pd.allocMw(MwType.TYPE_2);
      const rkey = incRkey(mw.rkey);
      b.qp.postSend({ wrId: 1n, opcode: WrOpcode.BIND_MW, sendFlags: S, bindMw: { mw, rkey, bindInfo: { mr: b.mr, addr: b.mr.addr, length: 256, mwAccessFlags: RW } } });
      expect(settleAndDrain(net, b.cq).map((w) => w.status)).toEqual([WcStatus.SUCCESS]);
      a.qp.postSend({ wrId: 2n, opcode: WrOpcode.FLUSH, sendFlags: S, flush: { remoteAddr: b.mr.addr, rkey: b.mr.rkey, length: 64, type: FlushType.GLOBAL, level } });
      a.qp.postSend({ wrId: 3n, opcode: WrOpcode.FLUSH, sendFlags: S, flush: { remoteAddr: b.mr.addr, rkey, length: 64, type: FlushType.GLOBAL, level } });
      expect(settleAndDrain(net, a.cq).map((w) => [w.wrId, w.status])).toEqual([[2n, WcStatus.SUCCESS], [3n, WcStatus.REM_ACCESS_ERR]]);
    }
  });

  it("a range FLUSH through a window stays inside the window", async () => {
    const { net, a, b } = await pair();
    const mw = b.pd.allocMw(MwType.TYPE_2);
    const rkey = incRkey(mw.rkey);
    b.qp.postSend({ wrId: 1n, opcode: WrOpcode.BIND_MW, sendFlags: S, bindMw: { mw, rkey, bindInfo: { mr: b.mr, addr: b.mr.addr + 1024n, length: 1024, mwAccessFlags: Access.FLUSH_GLOBAL } } });
    expect(settleAndDrain(net, b.cq).map((w) => w.status)).toEqual([WcStatus.SUCCESS]);
    a.qp.postSend({ wrId: 2n, opcode: WrOpcode.FLUSH, sendFlags: S, flush: { remoteAddr: b.mr.addr + 1536n, rkey, length: 1024, type: FlushType.GLOBAL, level: FlushLevel.RANGE } });
    expect(settleAndDrain(net, a.cq).map((w) => [w.wrId, w.status])).toEqual([[2n, WcStatus.REM_ACCESS_ERR]]);
  });
});

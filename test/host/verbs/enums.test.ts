import { describe, expect, it } from "vitest";
import { Access, EventType, Mtu, QpAttrMask, QpState, QpType, SendFlags, WcOpcode, WcStatus, WrOpcode, mtuBytes, nameOf, VerbsError, Errno } from "../../../host/core/verbs/index.js";

// values from rdma-core libibverbs/verbs.h (see reference rxe-facts §1.3, §1.6, §2.1)
describe("enums equal ibverbs' numbers", () => {
  it("work request and completion opcodes", () => {
    expect([WrOpcode.RDMA_WRITE, WrOpcode.RDMA_WRITE_WITH_IMM, WrOpcode.SEND, WrOpcode.SEND_WITH_IMM, WrOpcode.RDMA_READ,
      WrOpcode.ATOMIC_CMP_AND_SWP, WrOpcode.ATOMIC_FETCH_AND_ADD, WrOpcode.LOCAL_INV, WrOpcode.BIND_MW, WrOpcode.SEND_WITH_INV,
      WrOpcode.TSO, WrOpcode.FLUSH, WrOpcode.ATOMIC_WRITE]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15]);
    expect([WcOpcode.SEND, WcOpcode.RDMA_WRITE, WcOpcode.RDMA_READ, WcOpcode.COMP_SWAP, WcOpcode.FETCH_ADD, WcOpcode.BIND_MW,
      WcOpcode.LOCAL_INV, WcOpcode.TSO, WcOpcode.FLUSH, WcOpcode.ATOMIC_WRITE, WcOpcode.RECV, WcOpcode.RECV_RDMA_WITH_IMM]).toEqual(
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 128, 129]);
  });
  it("statuses, states, types, MTUs, flags, masks, events", () => {
    expect([WcStatus.SUCCESS, WcStatus.WR_FLUSH_ERR, WcStatus.REM_ACCESS_ERR, WcStatus.RETRY_EXC_ERR, WcStatus.RNR_RETRY_EXC_ERR, WcStatus.FATAL_ERR, WcStatus.GENERAL_ERR]).toEqual([0, 5, 10, 12, 13, 19, 21]);
    expect([QpState.RESET, QpState.INIT, QpState.RTR, QpState.RTS, QpState.SQD, QpState.SQE, QpState.ERR]).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect([QpType.RC, QpType.UC, QpType.UD, QpType.RAW_PACKET]).toEqual([2, 3, 4, 8]);
    expect([Mtu.MTU_256, Mtu.MTU_1024, Mtu.MTU_4096]).toEqual([1, 3, 5]);
    expect([mtuBytes(Mtu.MTU_256), mtuBytes(Mtu.MTU_4096), mtuBytes(0)]).toEqual([256, 4096, 0]);
    expect([SendFlags.FENCE, SendFlags.SIGNALED, SendFlags.SOLICITED, SendFlags.INLINE]).toEqual([1, 2, 4, 8]);
    expect([Access.LOCAL_WRITE, Access.REMOTE_WRITE, Access.REMOTE_READ, Access.REMOTE_ATOMIC, Access.MW_BIND, Access.ZERO_BASED,
      Access.ON_DEMAND, Access.HUGETLB, Access.FLUSH_GLOBAL, Access.FLUSH_PERSISTENT]).toEqual([1, 2, 4, 8, 16, 32, 64, 128, 256, 512]);
    expect([QpAttrMask.STATE, QpAttrMask.AV, QpAttrMask.SQ_PSN, QpAttrMask.DEST_QPN, QpAttrMask.RATE_LIMIT]).toEqual([1, 128, 1 << 16, 1 << 20, 1 << 25]);
    expect([EventType.CQ_ERR, EventType.SQ_DRAINED, EventType.SRQ_LIMIT_REACHED, EventType.QP_LAST_WQE_REACHED]).toEqual([0, 5, 15, 16]);
    expect(nameOf(QpState, 3)).toBe("RTS");
  });
  it("VerbsError carries the errno name, number and verb", () => {
    const e = new VerbsError("ibv_alloc_pd", Errno.ENOMEM, "pool full");
    expect([e.code, e.errno, e.verb, e.message, e.name]).toEqual(["ENOMEM", 12, "ibv_alloc_pd", "ibv_alloc_pd: ENOMEM (pool full)", "VerbsError"]);
    expect(e).toBeInstanceOf(Error);
  });
});

// The ibverbs enumerations the device speaks (libibverbs verbs.h). Their values
// are declared once, in abi/schema.json (generated into assembly/abi/enums.ts);
// every layer imports them from here. Errno numbers live in mem/errno.ts.

// ABI constants: generated from abi/schema.json into assembly/abi/enums.ts; re-exported for this file's importers.
export {
  QPT_SMI, QPT_GSI, QPT_RC, QPT_UC, QPT_UD, QPT_RAW_PACKET, QpState, QP_STATE_NAMES, QP_STATE, QP_CUR_STATE, QP_EN_SQD_ASYNC_NOTIFY,
  QP_ACCESS_FLAGS, QP_PKEY_INDEX, QP_PORT, QP_QKEY, QP_AV, QP_PATH_MTU, QP_TIMEOUT, QP_RETRY_CNT, QP_RNR_RETRY,
  QP_RQ_PSN, QP_MAX_QP_RD_ATOMIC, QP_ALT_PATH, QP_MIN_RNR_TIMER, QP_SQ_PSN, QP_MAX_DEST_RD_ATOMIC, QP_PATH_MIG_STATE,
  QP_CAP, QP_DEST_QPN, QP_RATE_LIMIT, MTU_256, MTU_4096, WR_RDMA_WRITE, WR_RDMA_WRITE_WITH_IMM, WR_SEND,
  WR_SEND_WITH_IMM, WR_RDMA_READ, WR_ATOMIC_CMP_AND_SWP, WR_ATOMIC_FETCH_AND_ADD, WR_LOCAL_INV, WR_BIND_MW,
  WR_SEND_WITH_INV, WR_FLUSH, WR_ATOMIC_WRITE, WR_REG_MR, SEND_FENCE, SEND_SIGNALED, SEND_SOLICITED, SEND_INLINE, WC_SUCCESS,
  WC_LOC_LEN_ERR, WC_LOC_QP_OP_ERR, WC_LOC_PROT_ERR, WC_MW_BIND_ERR, WC_WR_FLUSH_ERR, WC_BAD_RESP_ERR, WC_REM_INV_REQ_ERR,
  WC_REM_ACCESS_ERR, WC_REM_OP_ERR, WC_RETRY_EXC_ERR, WC_RNR_RETRY_EXC_ERR, WC_FATAL_ERR, WC_SEND, WC_RDMA_WRITE,
  WC_RDMA_READ, WC_COMP_SWAP, WC_FETCH_ADD, WC_BIND_MW, WC_LOCAL_INV, WC_FLUSH, WC_ATOMIC_WRITE, WC_REG_MR, WC_RECV,
  WC_RECV_RDMA_WITH_IMM, WC_FLAG_GRH, WC_FLAG_WITH_IMM, WC_FLAG_WITH_INV,
} from "../abi/enums";

/** Bytes of an ibv_mtu value (the caller has checked it is 1..5). */
@inline export function mtuBytes(mtu: u32): u32 { return <u32>128 << mtu; }


// The ibverbs enumerations the device speaks (libibverbs verbs.h), each written
// once; every layer imports them from here, and this file imports nothing.
// Kept elsewhere, next to the rules that read them: access flags (mem/access.ts:
// the MR layer sits below verbs), errno numbers (mem/errno.ts), async event
// types (verbs/events.ts, with the event ring).

// ---- ibv_qp_type ----
export const QPT_RC: u32 = 2;
export const QPT_UC: u32 = 3;
export const QPT_UD: u32 = 4;
export const QPT_RAW_PACKET: u32 = 8;

// ---- ibv_qp_state ----
export const enum QpState { RESET = 0, INIT = 1, RTR = 2, RTS = 3, SQD = 4, SQE = 5, ERR = 6 }
export const QP_STATE_NAMES = "RESET,INIT,RTR,RTS,SQD,SQE,ERR";

// ---- ibv_qp_attr_mask ----
export const QP_STATE: u32 = 1 << 0;
export const QP_CUR_STATE: u32 = 1 << 1;
export const QP_EN_SQD_ASYNC_NOTIFY: u32 = 1 << 2;
export const QP_ACCESS_FLAGS: u32 = 1 << 3;
export const QP_PKEY_INDEX: u32 = 1 << 4;
export const QP_PORT: u32 = 1 << 5;
export const QP_QKEY: u32 = 1 << 6;
export const QP_AV: u32 = 1 << 7;
export const QP_PATH_MTU: u32 = 1 << 8;
export const QP_TIMEOUT: u32 = 1 << 9;
export const QP_RETRY_CNT: u32 = 1 << 10;
export const QP_RNR_RETRY: u32 = 1 << 11;
export const QP_RQ_PSN: u32 = 1 << 12;
export const QP_MAX_QP_RD_ATOMIC: u32 = 1 << 13;
export const QP_ALT_PATH: u32 = 1 << 14;
export const QP_MIN_RNR_TIMER: u32 = 1 << 15;
export const QP_SQ_PSN: u32 = 1 << 16;
export const QP_MAX_DEST_RD_ATOMIC: u32 = 1 << 17;
export const QP_PATH_MIG_STATE: u32 = 1 << 18;
export const QP_CAP: u32 = 1 << 19;
export const QP_DEST_QPN: u32 = 1 << 20;
export const QP_RATE_LIMIT: u32 = 1 << 25;

// ---- ibv_mtu: 1 = 256 bytes ... 5 = 4096 bytes ----
export const MTU_256: u32 = 1;
export const MTU_4096: u32 = 5;

/** Bytes of an ibv_mtu value (the caller has checked it is 1..5). */
@inline export function mtuBytes(mtu: u32): u32 { return <u32>128 << mtu; }

// ---- ibv_wr_opcode ----
export const WR_RDMA_WRITE: u32 = 0;
export const WR_RDMA_WRITE_WITH_IMM: u32 = 1;
export const WR_SEND: u32 = 2;
export const WR_SEND_WITH_IMM: u32 = 3;
export const WR_RDMA_READ: u32 = 4;
export const WR_ATOMIC_CMP_AND_SWP: u32 = 5;
export const WR_ATOMIC_FETCH_AND_ADD: u32 = 6;
export const WR_LOCAL_INV: u32 = 7;
export const WR_BIND_MW: u32 = 8;
export const WR_SEND_WITH_INV: u32 = 9;
export const WR_FLUSH: u32 = 14;
export const WR_ATOMIC_WRITE: u32 = 15;
/** ib_wr_opcode IB_WR_REG_MR (kernel verbs; libibverbs has no user-space form): fast registration. */
export const WR_REG_MR: u32 = 0x20;

// ---- ibv_send_flags ----
export const SEND_FENCE: u32 = 1;
export const SEND_SIGNALED: u32 = 2;
export const SEND_SOLICITED: u32 = 4;
export const SEND_INLINE: u32 = 8;

// ---- ibv_wc_status ----
export const WC_SUCCESS: u32 = 0;
export const WC_LOC_LEN_ERR: u32 = 1;
export const WC_LOC_QP_OP_ERR: u32 = 2;
export const WC_LOC_PROT_ERR: u32 = 4;
export const WC_MW_BIND_ERR: u32 = 6;
export const WC_WR_FLUSH_ERR: u32 = 5;
export const WC_BAD_RESP_ERR: u32 = 7;
export const WC_REM_INV_REQ_ERR: u32 = 9;
export const WC_REM_ACCESS_ERR: u32 = 10;
export const WC_REM_OP_ERR: u32 = 11;
export const WC_RETRY_EXC_ERR: u32 = 12;
export const WC_RNR_RETRY_EXC_ERR: u32 = 13;
export const WC_FATAL_ERR: u32 = 19;

// ---- ibv_wc_opcode ----
export const WC_SEND: u32 = 0;
export const WC_RDMA_WRITE: u32 = 1;
export const WC_RDMA_READ: u32 = 2;
export const WC_COMP_SWAP: u32 = 3;
export const WC_FETCH_ADD: u32 = 4;
export const WC_BIND_MW: u32 = 5;
export const WC_LOCAL_INV: u32 = 6;
export const WC_FLUSH: u32 = 8;
export const WC_ATOMIC_WRITE: u32 = 9;
/** ib_wc_opcode IB_WC_REG_MR (after IB_WC_ATOMIC_WRITE in the kernel's enum). */
export const WC_REG_MR: u32 = 10;
export const WC_RECV: u32 = 128;
export const WC_RECV_RDMA_WITH_IMM: u32 = 129;

// ---- ibv_wc_flags ----
export const WC_FLAG_GRH: u32 = 1;
export const WC_FLAG_WITH_IMM: u32 = 2;
export const WC_FLAG_WITH_INV: u32 = 8;

// ibverbs enums without the IBV_ prefix and group: IBV_WR_SEND -> WrOpcode.SEND.
// Numeric values equal rdma-core's libibverbs/verbs.h.

export const WrOpcode = {
  RDMA_WRITE: 0,
  RDMA_WRITE_WITH_IMM: 1,
  SEND: 2,
  SEND_WITH_IMM: 3,
  RDMA_READ: 4,
  ATOMIC_CMP_AND_SWP: 5,
  ATOMIC_FETCH_AND_ADD: 6,
  LOCAL_INV: 7,
  BIND_MW: 8,
  SEND_WITH_INV: 9,
  TSO: 10,
  DRIVER1: 11,
  FLUSH: 14,
  ATOMIC_WRITE: 15,
} as const;
export type WrOpcode = (typeof WrOpcode)[keyof typeof WrOpcode];

export const WcOpcode = {
  SEND: 0,
  RDMA_WRITE: 1,
  RDMA_READ: 2,
  COMP_SWAP: 3,
  FETCH_ADD: 4,
  BIND_MW: 5,
  LOCAL_INV: 6,
  TSO: 7,
  FLUSH: 8,
  ATOMIC_WRITE: 9,
  RECV: 128,
  RECV_RDMA_WITH_IMM: 129,
} as const;
export type WcOpcode = (typeof WcOpcode)[keyof typeof WcOpcode];

export const WcStatus = {
  SUCCESS: 0,
  LOC_LEN_ERR: 1,
  LOC_QP_OP_ERR: 2,
  LOC_EEC_OP_ERR: 3,
  LOC_PROT_ERR: 4,
  WR_FLUSH_ERR: 5,
  MW_BIND_ERR: 6,
  BAD_RESP_ERR: 7,
  LOC_ACCESS_ERR: 8,
  REM_INV_REQ_ERR: 9,
  REM_ACCESS_ERR: 10,
  REM_OP_ERR: 11,
  RETRY_EXC_ERR: 12,
  RNR_RETRY_EXC_ERR: 13,
  LOC_RDD_VIOL_ERR: 14,
  REM_INV_RD_REQ_ERR: 15,
  REM_ABORT_ERR: 16,
  INV_EECN_ERR: 17,
  INV_EEC_STATE_ERR: 18,
  FATAL_ERR: 19,
  RESP_TIMEOUT_ERR: 20,
  GENERAL_ERR: 21,
  TM_ERR: 22,
  TM_RNDV_INCOMPLETE: 23,
} as const;
export type WcStatus = (typeof WcStatus)[keyof typeof WcStatus];

export const WcFlags = {
  GRH: 1 << 0,
  WITH_IMM: 1 << 1,
  IP_CSUM_OK: 1 << 2,
  WITH_INV: 1 << 3,
  TM_SYNC_REQ: 1 << 4,
  TM_MATCH: 1 << 5,
  TM_DATA_VALID: 1 << 6,
} as const;

export const SendFlags = {
  FENCE: 1 << 0,
  SIGNALED: 1 << 1,
  SOLICITED: 1 << 2,
  INLINE: 1 << 3,
  IP_CSUM: 1 << 4,
} as const;

export const Access = {
  LOCAL_WRITE: 1,
  REMOTE_WRITE: 1 << 1,
  REMOTE_READ: 1 << 2,
  REMOTE_ATOMIC: 1 << 3,
  MW_BIND: 1 << 4,
  ZERO_BASED: 1 << 5,
  ON_DEMAND: 1 << 6,
  HUGETLB: 1 << 7,
  FLUSH_GLOBAL: 1 << 8,
  FLUSH_PERSISTENT: 1 << 9,
  RELAXED_ORDERING: 1 << 20,
} as const;

export const QpType = {
  /** ib_qp_type's QP0 and QP1 (the kernel's numbers): RoCE has no SMI (EOPNOTSUPP); the GSI is QP1, one per device */
  SMI: 0,
  GSI: 1,
  RC: 2,
  UC: 3,
  UD: 4,
  RAW_PACKET: 8,
  XRC_SEND: 9,
  XRC_RECV: 10,
  DRIVER: 0xff,
} as const;
export type QpType = (typeof QpType)[keyof typeof QpType];

export const QpState = {
  RESET: 0,
  INIT: 1,
  RTR: 2,
  RTS: 3,
  SQD: 4,
  SQE: 5,
  ERR: 6,
  UNKNOWN: 7,
} as const;
export type QpState = (typeof QpState)[keyof typeof QpState];

export const MigState = { MIGRATED: 0, REARM: 1, ARMED: 2 } as const;

export const Mtu = { MTU_256: 1, MTU_512: 2, MTU_1024: 3, MTU_2048: 4, MTU_4096: 5 } as const;
export type Mtu = (typeof Mtu)[keyof typeof Mtu];

export const QpAttrMask = {
  STATE: 1 << 0,
  CUR_STATE: 1 << 1,
  EN_SQD_ASYNC_NOTIFY: 1 << 2,
  ACCESS_FLAGS: 1 << 3,
  PKEY_INDEX: 1 << 4,
  PORT: 1 << 5,
  QKEY: 1 << 6,
  AV: 1 << 7,
  PATH_MTU: 1 << 8,
  TIMEOUT: 1 << 9,
  RETRY_CNT: 1 << 10,
  RNR_RETRY: 1 << 11,
  RQ_PSN: 1 << 12,
  MAX_QP_RD_ATOMIC: 1 << 13,
  ALT_PATH: 1 << 14,
  MIN_RNR_TIMER: 1 << 15,
  SQ_PSN: 1 << 16,
  MAX_DEST_RD_ATOMIC: 1 << 17,
  PATH_MIG_STATE: 1 << 18,
  CAP: 1 << 19,
  DEST_QPN: 1 << 20,
  RATE_LIMIT: 1 << 25,
} as const;

/** ibv_rereg_mr flags (IBV_REREG_MR_CHANGE_*) */
export const ReregMrFlags = { CHANGE_TRANSLATION: 1 << 0, CHANGE_PD: 1 << 1, CHANGE_ACCESS: 1 << 2 } as const;

export const SrqAttrMask = { MAX_WR: 1 << 0, LIMIT: 1 << 1 } as const;

export const EventType = {
  CQ_ERR: 0,
  QP_FATAL: 1,
  QP_REQ_ERR: 2,
  QP_ACCESS_ERR: 3,
  COMM_EST: 4,
  SQ_DRAINED: 5,
  PATH_MIG: 6,
  PATH_MIG_ERR: 7,
  DEVICE_FATAL: 8,
  PORT_ACTIVE: 9,
  PORT_ERR: 10,
  LID_CHANGE: 11,
  PKEY_CHANGE: 12,
  SM_CHANGE: 13,
  SRQ_ERR: 14,
  SRQ_LIMIT_REACHED: 15,
  QP_LAST_WQE_REACHED: 16,
  CLIENT_REREGISTER: 17,
  GID_CHANGE: 18,
  WQ_FATAL: 19,
} as const;
export type EventType = (typeof EventType)[keyof typeof EventType];

export const PortState = { NOP: 0, DOWN: 1, INIT: 2, ARMED: 3, ACTIVE: 4, ACTIVE_DEFER: 5 } as const;
export const LinkLayer = { UNSPECIFIED: 0, INFINIBAND: 1, ETHERNET: 2 } as const;
export const AtomicCap = { NONE: 0, HCA: 1, GLOB: 2 } as const;

export const DeviceCapFlags = {
  RESIZE_MAX_WR: 1,
  BAD_PKEY_CNTR: 1 << 1,
  BAD_QKEY_CNTR: 1 << 2,
  RAW_MULTI: 1 << 3,
  AUTO_PATH_MIG: 1 << 4,
  CHANGE_PHY_PORT: 1 << 5,
  UD_AV_PORT_ENFORCE: 1 << 6,
  CURR_QP_STATE_MOD: 1 << 7,
  SHUTDOWN_PORT: 1 << 8,
  INIT_TYPE: 1 << 9,
  PORT_ACTIVE_EVENT: 1 << 10,
  SYS_IMAGE_GUID: 1 << 11,
  RC_RNR_NAK_GEN: 1 << 12,
  SRQ_RESIZE: 1 << 13,
  N_NOTIFY_CQ: 1 << 14,
} as const;

/** Name of an enum value, for messages and traces: nameOf(QpState, 3) === 'RTS'. */
export function nameOf(e: Record<string, number>, v: number): string {
  for (const k in e) if (e[k] === v) return k;
  return String(v);
}

/** Path MTU enum -> bytes (ibv_mtu_to_num). */
export function mtuBytes(m: number): number {
  return m >= 1 && m <= 5 ? 128 << m : 0;
}

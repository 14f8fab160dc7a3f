// The verbs ABI of build/softroce.wasm: exported functions and the byte layout of
// every record and ring (docs/ABI.md, "Verbs"). Mirrors assembly/verbs/*.ts.
import type { CoreExports } from "../wasm/instance.js";
import type { TransportCore } from "../link/port.js";

export interface VerbsExports {
  verbs_abi_version(): number;
  dev_config(): number;
  dev_config_size(): number;
  dev_open(): number;
  dev_args(): number;
  dev_gids(): number;
  dev_events(): number;
  dev_counters(): number;
  dev_counter_count(): number;
  dev_counter_names(): number;
  entropy_pool(): number;
  entropy_cap(): number;
  entropy_low(): number;
  entropy_filled(n: number): void;
  entropy_avail(): number;
  entropy_starved(): number;
  pd_alloc(): number;
  pd_dealloc(h: number): number;
  pd_ptr(h: number): number;
  mr_reg(pd: number, length: number, access: number): number;
  mr_dereg(key: number): number;
  mr_ptr(key: number): number;
  mr_rereg(key: number, flags: number, pd: number, access: number): number;
  cq_create(cqe: number): number;
  cq_destroy(h: number): number;
  cq_ptr(h: number): number;
  cq_resize(h: number, cqe: number): number;
  qp_create(pd: number): number;
  qp_destroy(h: number): number;
  qp_ptr(h: number): number;
  qp_modify(h: number, mask: number): number;
  doorbell(h: number, queues: number, now: number): number;
  srq_create(pd: number): number;
  srq_destroy(h: number): number;
  srq_ptr(h: number): number;
  srq_modify(h: number, mask: number): number;
  srq_take(h: number): number;
  ah_create(pd: number): number;
  ah_destroy(h: number): number;
  ah_ptr(h: number): number;
}
export type VerbsCore = CoreExports & VerbsExports & TransportCore & { engine_pending(): number };

export const DOORBELL_SQ = 1;
export const DOORBELL_RQ = 2;

/** Configuration record (dev_config), u32 fields. */
export const Cfg = {
  MAX_PD: 0,
  MAX_MR: 4,
  MAX_CQ: 8,
  MAX_QP: 12,
  MAX_SRQ: 16,
  MAX_AH: 20,
  MAX_QP_WR: 24,
  MAX_CQE: 28,
  MAX_SGE: 32,
  MAX_SRQ_WR: 36,
  MAX_SRQ_SGE: 40,
  MAX_INLINE: 44,
  MR_ARENA: 48,
  RING_ARENA: 52,
  QPN_BASE: 56,
  EVENT_CAP: 60,
  MAX_RD_ATOM: 64,
  MAX_MTU: 68,
  GID_COUNT: 72,
  FLAGS: 76,
  ACTIVE_MTU: 80,
  QPN_COUNT: 88,
} as const;
export const CFG_FLAG_PRIVILEGED_QKEY = 1;
export const GID_TABLE_LEN = 16;

/** Every pool slot starts with this header. */
export const Slot = { HANDLE: 0, NEXT: 4, GEN: 8, USE: 12 } as const;

export const MrRec = { PD: 16, ACCESS: 20, KEY: 24, BLOCK: 28, ADDR: 32, LEN: 40 } as const;
export const CqRec = { RING: 16, BLOCK: 20, CQE: 24, FLAGS: 28, NOTIFY: 32 } as const;
export const SrqRec = { PD: 16, RING: 20, BYTES: 24, MAX_WR: 28, MAX_SGE: 32, LIMIT: 36 } as const;
export const AhRec = { PD: 16, AV: 64 } as const;
export const QpRec = {
  NUM: 16,
  TYPE: 20,
  PD: 24,
  SEND_CQ: 28,
  RECV_CQ: 32,
  SRQ: 36,
  SQ: 40,
  RQ: 44,
  SQ_SIG_ALL: 48,
  FLAGS: 52,
  SQ_BYTES: 56,
  RQ_BYTES: 60,
  ATTR: 64,
  REQ: 320,
  RESP: 384,
  COMP: 448,
} as const;

/** ibv_qp_attr block: the qp_modify argument and QP_ATTR part of the QP record. */
export const Attr = {
  QP_STATE: 0,
  CUR_QP_STATE: 4,
  PATH_MTU: 8,
  PATH_MIG_STATE: 12,
  QKEY: 16,
  RQ_PSN: 20,
  SQ_PSN: 24,
  DEST_QP_NUM: 28,
  QP_ACCESS_FLAGS: 32,
  PKEY_INDEX: 36,
  ALT_PKEY_INDEX: 40,
  EN_SQD_ASYNC_NOTIFY: 44,
  SQ_DRAINING: 48,
  MAX_RD_ATOMIC: 52,
  MAX_DEST_RD_ATOMIC: 56,
  MIN_RNR_TIMER: 60,
  PORT_NUM: 64,
  TIMEOUT: 68,
  RETRY_CNT: 72,
  RNR_RETRY: 76,
  ALT_PORT_NUM: 80,
  ALT_TIMEOUT: 84,
  RATE_LIMIT: 88,
  AH: 96,
  ALT_AH: 160,
  MAX_SEND_WR: 224,
  MAX_RECV_WR: 228,
  MAX_SEND_SGE: 232,
  MAX_RECV_SGE: 236,
  MAX_INLINE_DATA: 240,
  SIZE: 256,
} as const;

/** Address vector, 64 bytes. */
export const Av = {
  DGID: 0,
  FLOW_LABEL: 16,
  SGID_INDEX: 20,
  HOP_LIMIT: 24,
  TRAFFIC_CLASS: 28,
  SL: 32,
  PORT_NUM: 36,
  IS_GLOBAL: 40,
  STATIC_RATE: 44,
  DLID: 48,
  SRC_PATH_BITS: 52,
  DEST_PORT: 56,
  SIZE: 64,
} as const;

/** qp_create argument (ibv_qp_init_attr). */
export const Init = {
  QP_TYPE: 0,
  SEND_CQ: 4,
  RECV_CQ: 8,
  SRQ: 12,
  MAX_SEND_WR: 16,
  MAX_RECV_WR: 20,
  MAX_SEND_SGE: 24,
  MAX_RECV_SGE: 28,
  MAX_INLINE_DATA: 32,
  SQ_SIG_ALL: 36,
} as const;

/** srq_create / srq_modify argument. */
export const SrqInit = { MAX_WR: 0, MAX_SGE: 4, LIMIT: 8 } as const;

/** Ring header. */
export const Ring = { CAP: 0, SLOT: 4, KIND: 8, OWNER: 12, PROD: 64, CONS: 128, DATA: 192 } as const;

/** Send WQE. */
export const Swqe = {
  WR_ID: 0,
  OPCODE: 8,
  SEND_FLAGS: 12,
  NUM_SGE: 16,
  IMM_DATA: 20,
  LENGTH: 24,
  REMOTE_ADDR: 32,
  RKEY: 40,
  AH: 44,
  COMPARE_ADD: 48,
  SWAP: 56,
  REMOTE_QPN: 64,
  REMOTE_QKEY: 68,
  DEVICE: 72, // device-owned progress, 72..128
  HDR: 128,
} as const;
export const Rwqe = { WR_ID: 0, NUM_SGE: 8, LENGTH: 12, DEVICE: 16, HDR: 32 } as const;
export const Sge = { ADDR: 0, LENGTH: 8, LKEY: 12, SIZE: 16 } as const;

/** CQE, 64 bytes. */
export const Cqe = {
  WR_ID: 0,
  STATUS: 8,
  OPCODE: 12,
  VENDOR_ERR: 16,
  BYTE_LEN: 20,
  IMM_DATA: 24,
  QP_NUM: 28,
  SRC_QP: 32,
  WC_FLAGS: 36,
  PKEY_INDEX: 40,
  SLID: 42,
  SL: 44,
  DLID_PATH_BITS: 45,
  SOLICITED: 46,
  SGID: 48,
  SIZE: 64,
} as const;

/** Event record, 16 bytes. */
export const Ev = { TYPE: 0, ELEMENT: 4, INFO: 8, SIZE: 16 } as const;

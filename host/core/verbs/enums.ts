// ibverbs enums without the IBV_ prefix and group: IBV_WR_SEND -> WrOpcode.SEND.
// Numeric values equal rdma-core's libibverbs/verbs.h. The ones that cross the device
// boundary are generated from abi/schema.json (host/core/abi/enums.ts, events.ts, records.ts).

export {
  Access, EventType, Mtu, QpAttrMask, QpState, QpType, ReregMrFlags, SendFlags, SrqAttrMask, WcFlags, WcOpcode, WcStatus,
  WrOpcode,
} from "../abi/index.js";

export const MigState = { MIGRATED: 0, REARM: 1, ARMED: 2 } as const;

/** ibv_mw_type */
export const MwType = { TYPE_1: 1, TYPE_2: 2 } as const;

/** ibv_wr_flush type (IBV_FLUSH_GLOBAL, IBV_FLUSH_PERSISTENT) and level (IBV_FLUSH_RANGE, IBV_FLUSH_MR). */
export const FlushType = { GLOBAL: 1, PERSISTENT: 2 } as const;
export const FlushLevel = { RANGE: 0, MR: 1 } as const;

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
  MEM_WINDOW: 1 << 17,
  UD_IP_CSUM: 1 << 18,
  MEM_MGT_EXTENSIONS: 1 << 21,
  MEM_WINDOW_TYPE_2A: 1 << 23,
  MEM_WINDOW_TYPE_2B: 1 << 24,
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

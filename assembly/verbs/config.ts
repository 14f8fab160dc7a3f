// The device configuration record: limits and arena sizes the host writes
// before dev_open. It stays readable afterwards (the device's attributes).
import { mtuBytes, MTU_4096 } from "./enums";

export const CFG_MAX_PD: usize = 0;
export const CFG_MAX_MR: usize = 4;
export const CFG_MAX_CQ: usize = 8;
export const CFG_MAX_QP: usize = 12;
export const CFG_MAX_SRQ: usize = 16;
export const CFG_MAX_AH: usize = 20;
export const CFG_MAX_QP_WR: usize = 24;
export const CFG_MAX_CQE: usize = 28;
export const CFG_MAX_SGE: usize = 32;
export const CFG_MAX_SRQ_WR: usize = 36;
export const CFG_MAX_SRQ_SGE: usize = 40;
export const CFG_MAX_INLINE: usize = 44;
export const CFG_MR_ARENA: usize = 48; // bytes
export const CFG_RING_ARENA: usize = 52; // bytes
export const CFG_QPN_BASE: usize = 56;
export const CFG_EVENT_CAP: usize = 60; // event ring slots (power of two)
export const CFG_MAX_RD_ATOM: usize = 64;
export const CFG_MAX_MTU: usize = 68; // ibv_mtu enum
export const CFG_GID_COUNT: usize = 72; // valid entries of the GID table
export const CFG_FLAGS: usize = 76;
export const CFG_ACTIVE_MTU: usize = 80; // ibv_mtu enum of the port (UD datagrams fit it); 0 = CFG_MAX_MTU
export const CFG_TRACE_CAP: usize = 84; // trace ring records (rounded up to a power of two); 0 = TRACE_DEFAULT_CAP
export const CFG_QPN_COUNT: usize = 88; // QPNs are spread over CFG_QPN_BASE .. + this - 1 (0 or < max_qp: max_qp)
export const CFG_SIZE: u32 = 128;

export const CFG_FLAG_PRIVILEGED_QKEY: u32 = 1; // caller may set qkeys with bit 31 (CAP_NET_RAW)
export const CFG_FLAG_TRACE: u32 = 2; // the trace ring records every kind from dev_open on

export const GID_TABLE_LEN: u32 = 16;

export const config: usize = memory.data(CFG_SIZE);
export const gidTable: usize = memory.data(16 * 16);

@inline export function cfg(off: usize): u32 { return load<u32>(config + off); }

/** The port's active MTU in bytes: the most a UD datagram may carry (rxe get_mtu for UD). */
export function activeMtuBytes(): u32 {
  let m = cfg(CFG_ACTIVE_MTU);
  if (m < 1 || m > cfg(CFG_MAX_MTU)) m = cfg(CFG_MAX_MTU);
  return mtuBytes(m);
}

/** The device's largest path MTU in bytes (a QP's path MTU cannot exceed it); 4096 when unset. */
export function maxMtuBytes(): u32 {
  const m = cfg(CFG_MAX_MTU);
  return m >= 1 && m <= MTU_4096 ? mtuBytes(m) : mtuBytes(MTU_4096);
}

// The device configuration record: limits and arena sizes the host writes
// before dev_open. It stays readable afterwards (the device's attributes).
import { mtuBytes, MTU_4096 } from "./enums";
import { CFG_MAX_MTU, CFG_ACTIVE_MTU, CFG_SIZE } from "../abi/config";

// ABI constants: generated from abi/schema.json into assembly/abi/config.ts; re-exported for this file's importers.
export {
  CFG_MAX_PD, CFG_MAX_MR, CFG_MAX_CQ, CFG_MAX_QP, CFG_MAX_SRQ, CFG_MAX_AH, CFG_MAX_QP_WR, CFG_MAX_CQE, CFG_MAX_SGE,
  CFG_MAX_SRQ_WR, CFG_MAX_SRQ_SGE, CFG_MAX_INLINE, CFG_MR_ARENA, CFG_RING_ARENA, CFG_QPN_BASE, CFG_EVENT_CAP,
  CFG_MAX_RD_ATOM, CFG_MAX_MTU, CFG_GID_COUNT, CFG_FLAGS, CFG_ACTIVE_MTU, CFG_TRACE_CAP, CFG_SIZE,
  CFG_MAX_MW, CFG_MAX_MCAST_GRP, CFG_MAX_MCAST_QP_ATTACH, CFG_QPN_COUNT,
  CFG_FLAG_PRIVILEGED_QKEY, CFG_FLAG_TRACE, CFG_FLAG_DEVICE_SPORT, GID_TABLE_LEN, MAX_PKEYS,
} from "../abi/config";

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

// Opens a small device once per spec file (as-pect includes this in every spec).
import { config, CFG_EVENT_CAP, CFG_GID_COUNT, CFG_MAX_AH, CFG_MAX_CQ, CFG_MAX_CQE, CFG_MAX_INLINE, CFG_MAX_MR, CFG_MAX_MTU, CFG_MAX_PD, CFG_MAX_QP, CFG_MAX_QP_WR, CFG_MAX_RD_ATOM, CFG_MAX_SGE, CFG_MAX_SRQ, CFG_MAX_SRQ_SGE, CFG_MAX_SRQ_WR, CFG_MR_ARENA, CFG_QPN_BASE, CFG_RING_ARENA, CFG_MAX_MW, CFG_MAX_MCAST_GRP, CFG_MAX_MCAST_QP_ATTACH } from "../../assembly/verbs/config";
import { devOpen, devOpened } from "../../assembly/verbs/device";

/** Writes the small device's limits into the configuration record (before dev_open). */
export function testDeviceConfig(): void {
  store<u32>(config + CFG_MAX_PD, 16);
  store<u32>(config + CFG_MAX_MR, 16);
  store<u32>(config + CFG_MAX_CQ, 16);
  store<u32>(config + CFG_MAX_QP, 16);
  store<u32>(config + CFG_MAX_SRQ, 4);
  store<u32>(config + CFG_MAX_AH, 16);
  store<u32>(config + CFG_MAX_QP_WR, 256);
  store<u32>(config + CFG_MAX_CQE, 1024);
  store<u32>(config + CFG_MAX_SGE, 32);
  store<u32>(config + CFG_MAX_SRQ_WR, 256);
  store<u32>(config + CFG_MAX_SRQ_SGE, 27);
  store<u32>(config + CFG_MAX_INLINE, 512);
  store<u32>(config + CFG_MR_ARENA, 1 << 20);
  store<u32>(config + CFG_RING_ARENA, 1 << 20);
  store<u32>(config + CFG_QPN_BASE, 17);
  store<u32>(config + CFG_EVENT_CAP, 16);
  store<u32>(config + CFG_MAX_RD_ATOM, 128);
  store<u32>(config + CFG_MAX_MTU, 5);
  store<u32>(config + CFG_GID_COUNT, 1);
  store<u32>(config + CFG_MAX_MW, 8);
  store<u32>(config + CFG_MAX_MCAST_GRP, 2);
  store<u32>(config + CFG_MAX_MCAST_QP_ATTACH, 2);
}

export function openTestDevice(): void {
  if (devOpened()) return;
  testDeviceConfig();
  assert(devOpen() == 0);
}

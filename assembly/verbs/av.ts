// Address vector (ibv_ah_attr with its GRH), 64 bytes; embedded in QP records
// (primary and alternate path) and in address handles.
import { EINVAL } from "../mem/errno";
import { cfg, CFG_GID_COUNT } from "./config";

export const AV_DGID: usize = 0; // 16 bytes, network order
export const AV_FLOW_LABEL: usize = 16;
export const AV_SGID_INDEX: usize = 20;
export const AV_HOP_LIMIT: usize = 24;
export const AV_TRAFFIC_CLASS: usize = 28;
export const AV_SL: usize = 32;
export const AV_PORT_NUM: usize = 36;
export const AV_IS_GLOBAL: usize = 40;
export const AV_STATIC_RATE: usize = 44;
export const AV_DLID: usize = 48;
export const AV_SRC_PATH_BITS: usize = 52;
export const AV_DEST_PORT: usize = 56; // UDP destination port, 0 = 4791
export const AV_SIZE: u32 = 64;

/**
 * rdma_check_ah_attr + rxe_av_chk_attr: the port must exist, RoCE needs a GRH,
 * the source GID index must name a GID. All failures are EINVAL.
 */
export function avCheck(av: usize): i32 {
  if (load<u32>(av + AV_PORT_NUM) != 1) return -EINVAL;
  if (!load<u32>(av + AV_IS_GLOBAL)) return -EINVAL;
  if (load<u32>(av + AV_SGID_INDEX) >= cfg(CFG_GID_COUNT)) return -EINVAL;
  if (load<u32>(av + AV_FLOW_LABEL) > 0xfffff) return -EINVAL;
  if (load<u32>(av + AV_HOP_LIMIT) > 0xff || load<u32>(av + AV_TRAFFIC_CLASS) > 0xff) return -EINVAL;
  return 0;
}

// Address vector (ibv_ah_attr with its GRH), 64 bytes; embedded in QP records
// (primary and alternate path) and in address handles.
import { EINVAL } from "../mem/errno";
import { cfg, CFG_GID_COUNT } from "./config";
import { AV_FLOW_LABEL, AV_SGID_INDEX, AV_HOP_LIMIT, AV_TRAFFIC_CLASS, AV_PORT_NUM, AV_IS_GLOBAL } from "../abi/qp";

// ABI constants: generated from abi/schema.json into assembly/abi/qp.ts; re-exported for this file's importers.
export {
  AV_DGID, AV_FLOW_LABEL, AV_SGID_INDEX, AV_HOP_LIMIT, AV_TRAFFIC_CLASS, AV_SL, AV_PORT_NUM, AV_IS_GLOBAL,
  AV_STATIC_RATE, AV_DLID, AV_SRC_PATH_BITS, AV_DEST_PORT, AV_SIZE,
} from "../abi/qp";

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

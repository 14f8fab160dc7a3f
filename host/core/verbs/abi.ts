// The verbs ABI of build/softroce.wasm: its exported functions, typed. The byte layout of
// every record and ring is generated from abi/schema.json into host/core/abi/ (docs/ABI.md)
// and re-exported here for the verbs layer.
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
  mr_alloc_fast(pd: number, maxNumSg: number): number;
  mr_map_begin(key: number, pageSize: number): number;
  mr_set_page(key: number, addr: number): number;
  mr_ptr_index(key: number): number;
  mw_alloc(pd: number, type: number): number;
  mw_dealloc(key: number): number;
  mw_ptr(key: number): number;
  mcast_attach(qp: number): number;
  mcast_detach(qp: number): number;
  cq_create(cqe: number): number;
  cq_destroy(h: number): number;
  cq_ptr(h: number): number;
  cq_resize(h: number, cqe: number): number;
  qp_create(pd: number): number;
  qp_destroy(h: number): number;
  qp_ptr(h: number): number;
  qp_modify(h: number, mask: number): number;
  doorbell(h: number, queues: number, now: number): number;
  wr_class(op: number, qpType: number): number;
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

import { CfgFlag } from "../abi/index.js";

export {
  AhRec, Attr, Av, Cfg, CfgFlag, CqRec, Cqe, DOORBELL_RQ, DOORBELL_SQ, Ev, GID_TABLE_LEN, Init, MAX_PKEYS, MrRec,
  QpRec, Ring, Rwqe, Sge, Slot, SrqInit, SrqRec, Swqe, SwqeBind, SwqeReg, MwRec, MrType, MrState, MwState, MR_PAGE_SIZE,
} from "../abi/index.js";
export const CFG_FLAG_PRIVILEGED_QKEY = CfgFlag.PRIVILEGED_QKEY;
export const CFG_FLAG_DEVICE_SPORT = CfgFlag.DEVICE_SPORT;

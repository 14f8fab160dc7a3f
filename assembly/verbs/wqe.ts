// Work-queue entry layouts. The host writes the ibv_send_wr / ibv_recv_wr part;
// the device owns the progress part, so the transport can work in place.
import { SWQE_HDR, SGE_SIZE, RWQE_HDR } from "../abi/wqe";

// ABI constants: generated from abi/schema.json into assembly/abi/wqe.ts; re-exported for this file's importers.
export {
  SWQE_WR_ID, SWQE_OPCODE, SWQE_SEND_FLAGS, SWQE_NUM_SGE, SWQE_IMM_DATA, SWQE_LENGTH, SWQE_REMOTE_ADDR, SWQE_RKEY,
  SWQE_AH, SWQE_COMPARE_ADD, SWQE_SWAP, SWQE_REMOTE_QPN, SWQE_REMOTE_QKEY, SWQE_STATE, SWQE_FIRST_PSN, SWQE_LAST_PSN,
  SWQE_SSN, SWQE_RESID, SWQE_CUR_SGE, SWQE_SGE_OFFSET, SWQE_STATUS, SWQE_MASK, SWQE_RESULT, SWQE_HDR, SWQE_SGE,
  SGE_ADDR, SGE_LENGTH, SGE_LKEY, SGE_SIZE, RWQE_WR_ID, RWQE_NUM_SGE, RWQE_LENGTH, RWQE_STATE, RWQE_CUR_SGE,
  RWQE_SGE_OFFSET, RWQE_HDR, RWQE_SGE, WQE_STATE_POSTED, WQE_STATE_PROCESSING, WQE_STATE_PENDING, WQE_STATE_DONE,
  WQE_STATE_ERROR,
  // BIND_MW (ibv_send_wr bind_mw) and REG_MR (ib_reg_wr) share the places above, as the WR's union does
  SWQE_BIND_ADDR, SWQE_BIND_RKEY, SWQE_BIND_MW, SWQE_BIND_LENGTH, SWQE_BIND_MR, SWQE_BIND_ACCESS,
  SWQE_REG_ADDR, SWQE_REG_KEY, SWQE_REG_MR, SWQE_REG_LENGTH, SWQE_REG_ACCESS,
} from "../abi/wqe";
// device-owned progress (zeroed by the host when it writes the WQE)

/** Slot size of a send queue: header + max(SGEs, inline data), 16-byte granular. */
export function sqSlotSize(maxSge: u32, maxInline: u32): u32 {
  const body = max(maxSge * SGE_SIZE, (maxInline + 15) & ~15);
  return SWQE_HDR + max<u32>(body, SGE_SIZE);
}

export function rqSlotSize(maxSge: u32): u32 {
  return RWQE_HDR + max<u32>(maxSge, 1) * SGE_SIZE;
}

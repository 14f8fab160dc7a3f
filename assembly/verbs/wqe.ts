// Work-queue entry layouts. The host writes the ibv_send_wr / ibv_recv_wr part;
// the device owns the progress part, so the transport can work in place.

// Send WQE header (128 bytes), then the SGE array or inline data.
export const SWQE_WR_ID: usize = 0; // u64
export const SWQE_OPCODE: usize = 8; // u32 ibv_wr_opcode
export const SWQE_SEND_FLAGS: usize = 12; // u32 ibv_send_flags
export const SWQE_NUM_SGE: usize = 16; // u32
export const SWQE_IMM_DATA: usize = 20; // u32 imm_data / invalidate_rkey
export const SWQE_LENGTH: usize = 24; // u32 total bytes (SGE sum or inline length)
export const SWQE_REMOTE_ADDR: usize = 32; // u64 rdma / atomic remote_addr
export const SWQE_RKEY: usize = 40; // u32 rdma / atomic rkey
export const SWQE_AH: usize = 44; // u32 UD address handle
export const SWQE_COMPARE_ADD: usize = 48; // u64
export const SWQE_SWAP: usize = 56; // u64
export const SWQE_REMOTE_QPN: usize = 64; // u32 UD
export const SWQE_REMOTE_QKEY: usize = 68; // u32 UD
// BIND_MW (ibv_send_wr bind_mw) and REG_MR (ib_reg_wr) share the places above,
// as the WR's union does: the window or MR, the new key, the range, the access.
export const SWQE_BIND_MW: usize = 44; // u32 the window's current rkey
export const SWQE_BIND_RKEY: usize = 40; // u32 the rkey it gets (only the key byte is taken)
export const SWQE_BIND_ADDR: usize = 32; // u64 bind_info.addr
export const SWQE_BIND_LENGTH: usize = 48; // u64 bind_info.length (0 unbinds a type 1 window)
export const SWQE_BIND_MR: usize = 64; // u32 bind_info.mr's lkey
export const SWQE_BIND_ACCESS: usize = 68; // u32 bind_info.mw_access_flags
export const SWQE_REG_MR: usize = 44; // u32 the MR's current key
export const SWQE_REG_KEY: usize = 40; // u32 its new key (same index, new key byte)
export const SWQE_REG_ADDR: usize = 32; // u64 start of the range it maps
export const SWQE_REG_LENGTH: usize = 48; // u64 bytes mapped
export const SWQE_REG_ACCESS: usize = 68; // u32 access flags
// device-owned progress (zeroed by the host when it writes the WQE)
export const SWQE_STATE: usize = 72; // u32 WqeState
export const SWQE_FIRST_PSN: usize = 76; // u32
export const SWQE_LAST_PSN: usize = 80; // u32
export const SWQE_SSN: usize = 84; // u32 send sequence number
export const SWQE_RESID: usize = 88; // u32 bytes left to send
export const SWQE_CUR_SGE: usize = 92; // u32
export const SWQE_SGE_OFFSET: usize = 96; // u32
export const SWQE_STATUS: usize = 100; // u32 ibv_wc_status for the completion
export const SWQE_MASK: usize = 104; // u32 opcode-table bits of the WR
export const SWQE_RESULT: usize = 112; // u64 atomic original value
export const SWQE_HDR: u32 = 128;
export const SWQE_SGE: usize = 128; // sge[] or inline bytes

// SGE, 16 bytes
export const SGE_ADDR: usize = 0; // u64
export const SGE_LENGTH: usize = 8; // u32
export const SGE_LKEY: usize = 12; // u32
export const SGE_SIZE: u32 = 16;

// Receive WQE header (32 bytes), then the SGE array.
export const RWQE_WR_ID: usize = 0; // u64
export const RWQE_NUM_SGE: usize = 8; // u32
export const RWQE_LENGTH: usize = 12; // u32 total bytes
export const RWQE_STATE: usize = 16; // u32 device-owned
export const RWQE_CUR_SGE: usize = 20; // u32 device-owned
export const RWQE_SGE_OFFSET: usize = 24; // u32 device-owned
export const RWQE_HDR: u32 = 32;
export const RWQE_SGE: usize = 32;

export const WQE_STATE_POSTED: u32 = 0;
export const WQE_STATE_PROCESSING: u32 = 1;
export const WQE_STATE_PENDING: u32 = 2;
export const WQE_STATE_DONE: u32 = 3;
export const WQE_STATE_ERROR: u32 = 4;

/** Slot size of a send queue: header + max(SGEs, inline data), 16-byte granular. */
export function sqSlotSize(maxSge: u32, maxInline: u32): u32 {
  const body = max(maxSge * SGE_SIZE, (maxInline + 15) & ~15);
  return SWQE_HDR + max<u32>(body, SGE_SIZE);
}

export function rqSlotSize(maxSge: u32): u32 {
  return RWQE_HDR + max<u32>(maxSge, 1) * SGE_SIZE;
}

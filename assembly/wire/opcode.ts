// THE opcode table (after Linux rxe_opcode.c): for each of the 256 BTH opcodes, a mask of
// extension headers and semantic bits, the header length (BTH + extension headers) and the
// offset of each extension header from the BTH start. Other code tests bits; it never
// switches on opcodes or hard-codes header lengths.
import { BTH_SIZE } from "./bth";
import { RETH_SIZE } from "./reth";
import { AETH_SIZE } from "./aeth";
import { ATMETH_SIZE } from "./atmeth";
import { ATMACK_SIZE } from "./atmack";
import { DETH_SIZE } from "./deth";
import { IMMDT_SIZE } from "./immdt";
import { IETH_SIZE } from "./ieth";
import { FETH_SIZE } from "./feth";
import {
  M_RETH, M_AETH, M_ATMETH, M_ATMACK, M_DETH, M_IMMDT, M_IETH, M_FETH, M_REQ, M_RESP, M_SEND, M_WRITE, M_READ,
  M_ATOMIC, M_FLUSH, M_ATOMIC_WRITE, M_PAYLOAD, M_START, M_MIDDLE, M_END, M_RWR, M_COMP, M_CNP,
} from "../abi/wire";

// Header indices (= mask bit numbers).
export const HDR_RETH: u32 = 0;
export const HDR_AETH: u32 = 1;
export const HDR_ATMETH: u32 = 2;
export const HDR_ATMACK: u32 = 3;
export const HDR_DETH: u32 = 4;
export const HDR_IMMDT: u32 = 5;
export const HDR_IETH: u32 = 6;
export const HDR_FETH: u32 = 7;
export const HDR_COUNT: u32 = 8;

export {
  M_RETH, M_AETH, M_ATMETH, M_ATMACK, M_DETH, M_IMMDT, M_IETH, M_FETH, M_REQ, M_RESP, M_SEND, M_WRITE, M_READ,
  M_ATOMIC, M_FLUSH, M_ATOMIC_WRITE, M_PAYLOAD, M_START, M_MIDDLE, M_END, M_RWR, M_COMP, M_CNP,
} from "../abi/wire";
export const M_ONLY: u32 = M_START | M_END;
export const M_HEADERS: u32 = 0xff;

// Transport bases (top 3 bits of the opcode).
export const TR_RC: u32 = 0x00;
export const TR_UC: u32 = 0x20;
export const TR_RD: u32 = 0x40;
export const TR_UD: u32 = 0x60;
export const TR_CNP: u32 = 0x80;

// Operation codes (low 5 bits).
export const OP_SEND_FIRST: u32 = 0x00;
export const OP_SEND_MIDDLE: u32 = 0x01;
export const OP_SEND_LAST: u32 = 0x02;
export const OP_SEND_LAST_IMM: u32 = 0x03;
export const OP_SEND_ONLY: u32 = 0x04;
export const OP_SEND_ONLY_IMM: u32 = 0x05;
export const OP_WRITE_FIRST: u32 = 0x06;
export const OP_WRITE_MIDDLE: u32 = 0x07;
export const OP_WRITE_LAST: u32 = 0x08;
export const OP_WRITE_LAST_IMM: u32 = 0x09;
export const OP_WRITE_ONLY: u32 = 0x0a;
export const OP_WRITE_ONLY_IMM: u32 = 0x0b;
export const OP_READ_REQUEST: u32 = 0x0c;
export const OP_READ_RESP_FIRST: u32 = 0x0d;
export const OP_READ_RESP_MIDDLE: u32 = 0x0e;
export const OP_READ_RESP_LAST: u32 = 0x0f;
export const OP_READ_RESP_ONLY: u32 = 0x10;
export const OP_ACK: u32 = 0x11;
export const OP_ATOMIC_ACK: u32 = 0x12;
export const OP_CMP_SWAP: u32 = 0x13;
export const OP_FETCH_ADD: u32 = 0x14;
export const OP_SEND_LAST_INV: u32 = 0x16;
export const OP_SEND_ONLY_INV: u32 = 0x17;
export const OP_FLUSH: u32 = 0x1c;
export const OP_ATOMIC_WRITE: u32 = 0x1d;

// Full BTH opcodes used by name elsewhere.
export const OPCODE_CNP: u32 = TR_CNP | 0x01;
/** The table has one ATOMIC bit for both atomics; executing one tells them apart by opcode (rxe too). */
export const OPCODE_RC_CMP_SWAP: u32 = TR_RC | OP_CMP_SWAP;
export const OPCODE_UD_SEND_ONLY: u32 = TR_UD | OP_SEND_ONLY;
export const OPCODE_UD_SEND_ONLY_IMM: u32 = TR_UD | OP_SEND_ONLY_IMM;

/** A CNP carries 16 reserved bytes after its BTH (counted in its header length). */
export const CNP_RESERVED_SIZE: u32 = 16;

// Extension headers follow the BTH in this order (IBA 9.2 / rxe_opcode.c):
// FETH before RETH (FLUSH), DETH before ImmDt (UD), AETH before AtomicAckETH, RETH before ImmDt.
const HDR_ORDER = memory.data<u8>([7, 4, 1, 0, 2, 3, 6, 5]);

// One 16-byte entry per opcode: mask u32 @0, length u32 @4, offsets i8[8] @8.
const ENTRY: u32 = 16;
const E_MASK: u32 = 0;
const E_LEN: u32 = 4;
const E_OFF: u32 = 8;
const TABLE = memory.data(256 * 16, 16);
// NUL-terminated ASCII names, 32 bytes each.
const NAME_SIZE: u32 = 32;
const NAMES = memory.data(256 * 32, 16);

@inline function hdr_size(h: u32): u32 {
  switch (h) {
    case HDR_RETH: return RETH_SIZE;
    case HDR_AETH: return AETH_SIZE;
    case HDR_ATMETH: return ATMETH_SIZE;
    case HDR_ATMACK: return ATMACK_SIZE;
    case HDR_DETH: return DETH_SIZE;
    case HDR_IMMDT: return IMMDT_SIZE;
    case HDR_IETH: return IETH_SIZE;
    default: return FETH_SIZE;
  }
}

function def(op: u32, mask: u32, name: string): void {
  const e = TABLE + op * ENTRY;
  store<u32>(e + E_MASK, mask);
  let off = BTH_SIZE;
  for (let i: u32 = 0; i < HDR_COUNT; i++) store<i8>(e + E_OFF + i, -1);
  for (let i: u32 = 0; i < HDR_COUNT; i++) {
    const h = <u32>load<u8>(HDR_ORDER + i);
    if (mask & (1 << h)) {
      store<i8>(e + E_OFF + h, <i8>off);
      off += hdr_size(h);
    }
  }
  if (mask & M_CNP) off += CNP_RESERVED_SIZE;
  store<u32>(e + E_LEN, off);
  const n = NAMES + op * NAME_SIZE;
  const len = <u32>min(name.length, <i32>NAME_SIZE - 1);
  for (let i: u32 = 0; i < len; i++) store<u8>(n + i, <u8>name.charCodeAt(i));
  store<u8>(n + len, 0);
}

// Send/write variants shared by RC and UC.
function def_send_write(base: u32, t: string): void {
  const R = M_REQ;
  def(base | OP_SEND_FIRST, M_PAYLOAD | R | M_SEND | M_RWR | M_START, t + " Send First");
  def(base | OP_SEND_MIDDLE, M_PAYLOAD | R | M_SEND | M_MIDDLE, t + " Send Middle");
  def(base | OP_SEND_LAST, M_PAYLOAD | R | M_SEND | M_COMP | M_END, t + " Send Last");
  def(base | OP_SEND_LAST_IMM, M_IMMDT | M_PAYLOAD | R | M_SEND | M_COMP | M_END, t + " Send Last Immediate");
  def(base | OP_SEND_ONLY, M_PAYLOAD | R | M_SEND | M_RWR | M_COMP | M_ONLY, t + " Send Only");
  def(base | OP_SEND_ONLY_IMM, M_IMMDT | M_PAYLOAD | R | M_SEND | M_RWR | M_COMP | M_ONLY, t + " Send Only Immediate");
  def(base | OP_WRITE_FIRST, M_RETH | M_PAYLOAD | R | M_WRITE | M_START, t + " RDMA Write First");
  def(base | OP_WRITE_MIDDLE, M_PAYLOAD | R | M_WRITE | M_MIDDLE, t + " RDMA Write Middle");
  def(base | OP_WRITE_LAST, M_PAYLOAD | R | M_WRITE | M_END, t + " RDMA Write Last");
  def(base | OP_WRITE_LAST_IMM, M_IMMDT | M_PAYLOAD | R | M_WRITE | M_RWR | M_COMP | M_END, t + " RDMA Write Last Immediate");
  def(base | OP_WRITE_ONLY, M_RETH | M_PAYLOAD | R | M_WRITE | M_ONLY, t + " RDMA Write Only");
  def(base | OP_WRITE_ONLY_IMM, M_RETH | M_IMMDT | M_PAYLOAD | R | M_WRITE | M_RWR | M_COMP | M_ONLY, t + " RDMA Write Only Immediate");
}

function build_table(): void {
  def_send_write(TR_RC, "RC");
  const R = M_REQ;
  const A = M_RESP;
  def(TR_RC | OP_READ_REQUEST, M_RETH | R | M_READ | M_ONLY, "RC RDMA Read Request");
  def(TR_RC | OP_READ_RESP_FIRST, M_AETH | M_PAYLOAD | A | M_READ | M_START, "RC RDMA Read Response First");
  def(TR_RC | OP_READ_RESP_MIDDLE, M_PAYLOAD | A | M_READ | M_MIDDLE, "RC RDMA Read Response Middle");
  def(TR_RC | OP_READ_RESP_LAST, M_AETH | M_PAYLOAD | A | M_READ | M_END, "RC RDMA Read Response Last");
  def(TR_RC | OP_READ_RESP_ONLY, M_AETH | M_PAYLOAD | A | M_READ | M_ONLY, "RC RDMA Read Response Only");
  def(TR_RC | OP_ACK, M_AETH | A | M_ONLY, "RC Acknowledge");
  def(TR_RC | OP_ATOMIC_ACK, M_AETH | M_ATMACK | A | M_ATOMIC | M_ONLY, "RC Atomic Acknowledge");
  def(TR_RC | OP_CMP_SWAP, M_ATMETH | R | M_ATOMIC | M_ONLY, "RC Compare Swap");
  def(TR_RC | OP_FETCH_ADD, M_ATMETH | R | M_ATOMIC | M_ONLY, "RC Fetch Add");
  def(TR_RC | OP_SEND_LAST_INV, M_IETH | M_PAYLOAD | R | M_SEND | M_COMP | M_END, "RC Send Last Invalidate");
  def(TR_RC | OP_SEND_ONLY_INV, M_IETH | M_PAYLOAD | R | M_SEND | M_RWR | M_COMP | M_ONLY, "RC Send Only Invalidate");
  def(TR_RC | OP_FLUSH, M_FETH | M_RETH | R | M_FLUSH | M_ONLY, "RC Flush");
  def(TR_RC | OP_ATOMIC_WRITE, M_RETH | M_PAYLOAD | R | M_ATOMIC_WRITE | M_ONLY, "RC Atomic Write");
  def_send_write(TR_UC, "UC");
  def(OPCODE_UD_SEND_ONLY, M_DETH | M_PAYLOAD | R | M_SEND | M_RWR | M_COMP | M_ONLY, "UD Send Only");
  def(OPCODE_UD_SEND_ONLY_IMM, M_DETH | M_IMMDT | M_PAYLOAD | R | M_SEND | M_RWR | M_COMP | M_ONLY, "UD Send Only Immediate");
  def(OPCODE_CNP, M_CNP, "CNP");
}
build_table();

/** Bytes an ATOMIC_WRITE request carries as payload. */
export const ATOMIC_WRITE_PAYLOAD: u32 = 8;

@inline export function opcode_mask(op: u32): u32 { return load<u32>(TABLE + ((op & 0xff) << 4) + E_MASK); }
@inline export function opcode_valid(op: u32): bool { return op < 256 && opcode_mask(op) != 0; }
@inline export function opcode_length(op: u32): u32 { return load<u32>(TABLE + ((op & 0xff) << 4) + E_LEN); }
@inline export function opcode_offset(op: u32, hdr: u32): i32 {
  return <i32>load<i8>(TABLE + ((op & 0xff) << 4) + E_OFF + (hdr & 7));
}
@inline export function opcode_name(op: u32): usize { return NAMES + (op & 0xff) * NAME_SIZE; }
/** The opcode's transport base: TR_RC, TR_UC, TR_RD, TR_UD or TR_CNP. */
@inline export function opcode_transport(op: u32): u32 { return op & 0xe0; }

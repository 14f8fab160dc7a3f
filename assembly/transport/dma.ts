// The one copy routine (rxe copy_data in rxe_mr.c): bytes move between linear
// memory and a WQE's SGE list at the WQE's DMA cursor, each piece checked
// against its MR (key, PD, bounds, access), and the cursor moves on. The
// requester gathers a packet's payload with it (unless one SGE holds it all:
// then the packet points into the MR, zero copy), the completer places READ
// data and atomic results, the responder places SEND data. Nothing allocates.
//
// The cursor is two adjacent u32 of the WQE: the SGE it stands in and the
// offset in that SGE (SWQE_CUR_SGE/SWQE_SGE_OFFSET, RWQE_CUR_SGE/RWQE_SGE_OFFSET).
// A cursor at the end of an SGE and one at the start of the next mean the same.
import { mrCopy, mrLookup, mrSpan } from "../mem/mr";
import { SGE_ADDR, SGE_LENGTH, SGE_LKEY, SGE_SIZE } from "../verbs/wqe";

export const CUR_SGE: usize = 0; // u32 index of the SGE
export const CUR_OFFSET: usize = 4; // u32 offset inside it

export const enum Copy {
  OK = 0,
  SHORT, // the SGEs end before the bytes do
  FAULT, // an SGE's MR refuses the piece (key, PD, bounds or access)
}

/** Direction of copyData: into the SGEs (receive, READ response) or out of them (transmit). */
export const TO_SGL = true;
export const FROM_SGL = false;

@inline function sgeAt(sgl: usize, i: u32): usize { return sgl + <usize>i * SGE_SIZE; }

/** The bytes the `nsge` SGEs at `sgl` describe, saturated at 0xffffffff (a work request's length). */
export function sgeTotal(sgl: usize, nsge: u32): u32 {
  let total: u64 = 0;
  for (let i: u32 = 0; i < nsge; i++) total += <u64>load<u32>(sgeAt(sgl, i) + SGE_LENGTH);
  return total > 0xffffffff ? 0xffffffff : <u32>total;
}

/** Puts the cursor at the start of the first SGE. */
export function dmaReset(cur: usize): void {
  store<u32>(cur + CUR_SGE, 0);
  store<u32>(cur + CUR_OFFSET, 0);
}

/**
 * Copies `len` bytes between `mem` and the `nsge` SGEs at `sgl`, from the cursor
 * at `cur` on, every piece checked for the PD `pd` and the access bits `access`
 * (0: a local read). The cursor moves only when all of it succeeded.
 */
export function copyData(toSgl: bool, pd: u32, access: u32, sgl: usize, nsge: u32, cur: usize, mem: usize, len: u32): Copy {
  let i = load<u32>(cur + CUR_SGE);
  let off = load<u32>(cur + CUR_OFFSET);
  let done: u32 = 0;
  while (done < len) {
    if (i >= nsge) return Copy.SHORT;
    const sge = sgeAt(sgl, i);
    const sl = load<u32>(sge + SGE_LENGTH);
    if (off >= sl) {
      i++;
      off = 0;
      continue;
    }
    const n = min(sl - off, len - done);
    const addr = load<u64>(sge + SGE_ADDR) + <u64>off;
    const mr = mrLookup(load<u32>(sge + SGE_LKEY), pd, addr, <u64>n, access);
    if (!mr) return Copy.FAULT;
    mrCopy(mr, addr, mem + done, n, toSgl); // page by page when the MR's pages are scattered
    done += n;
    off += n;
  }
  store<u32>(cur + CUR_SGE, i);
  store<u32>(cur + CUR_OFFSET, off);
  return Copy.OK;
}

/**
 * For transmit without a copy: when one SGE holds the next `len` bytes (len > 0)
 * and its MR allows them, their address in linear memory, with the cursor moved
 * past them; 0 otherwise, the cursor untouched (copyData then gathers them, and
 * reports a refusal).
 */
export function dmaSpan(pd: u32, access: u32, sgl: usize, nsge: u32, cur: usize, len: u32): usize {
  let i = load<u32>(cur + CUR_SGE);
  let off = load<u32>(cur + CUR_OFFSET);
  while (i < nsge && off >= load<u32>(sgeAt(sgl, i) + SGE_LENGTH)) {
    i++;
    off = 0;
  }
  if (i >= nsge) return 0;
  const sge = sgeAt(sgl, i);
  if (load<u32>(sge + SGE_LENGTH) - off < len) return 0;
  const addr = load<u64>(sge + SGE_ADDR) + <u64>off;
  const mr = mrLookup(load<u32>(sge + SGE_LKEY), pd, addr, <u64>len, access);
  if (!mr) return 0;
  const at = mrSpan(mr, addr, len); // 0 when the bytes cross scattered pages: copyData gathers them
  if (!at) return 0;
  store<u32>(cur + CUR_SGE, i);
  store<u32>(cur + CUR_OFFSET, off + len);
  return at;
}

/** Moves the cursor on by `len` bytes without touching memory (rxe advance_dma_data: a retry skipping what was acknowledged). */
export function dmaAdvance(sgl: usize, nsge: u32, cur: usize, len: u32): void {
  let i = load<u32>(cur + CUR_SGE);
  let off = load<u32>(cur + CUR_OFFSET);
  while (len > 0 && i < nsge) {
    const sl = load<u32>(sgeAt(sgl, i) + SGE_LENGTH);
    if (off >= sl) {
      i++;
      off = 0;
      continue;
    }
    const n = min(sl - off, len);
    off += n;
    len -= n;
  }
  store<u32>(cur + CUR_SGE, i);
  store<u32>(cur + CUR_OFFSET, off);
}

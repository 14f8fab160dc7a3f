// Fixed-capacity object pools carved at device open. Every slot starts with a
// 16-byte header; free slots form a FIFO list so a freed slot is reused last
// (stale handles and keys stay stale as long as possible).
import { SLOT_HANDLE, SLOT_NEXT, SLOT_GEN, SLOT_USE, SLOT_HDR } from "../abi/records";

// ABI constants: generated from abi/schema.json into assembly/abi/records.ts; re-exported for this file's importers.
export { SLOT_HANDLE, SLOT_NEXT, SLOT_GEN, SLOT_USE, SLOT_HDR } from "../abi/records";

const NIL: u32 = 0xffffffff;

@unmanaged
export class Pool {
  base: usize = 0;
  slotSize: u32 = 0;
  cap: u32 = 0;
  head: u32 = 0;
  tail: u32 = 0;
  used: u32 = 0;
}

export function poolInit(p: Pool, base: usize, slotSize: u32, cap: u32): void {
  p.base = base;
  p.slotSize = slotSize;
  p.cap = cap;
  p.used = 0;
  memory.fill(base, 0, <usize>slotSize * cap);
  for (let i: u32 = 0; i < cap; i++) {
    store<u32>(base + <usize>i * slotSize + SLOT_NEXT, i + 1 < cap ? i + 1 : NIL);
  }
  p.head = cap > 0 ? 0 : NIL;
  p.tail = cap > 0 ? cap - 1 : NIL;
}

@inline export function poolSlot(p: Pool, idx: u32): usize {
  return p.base + <usize>idx * p.slotSize;
}

/** Takes a free slot (fields after the header zeroed); -1 when the pool is full. */
export function poolTake(p: Pool): i32 {
  const idx = p.head;
  if (idx == NIL) return -1;
  const slot = poolSlot(p, idx);
  p.head = load<u32>(slot + SLOT_NEXT);
  if (p.head == NIL) p.tail = NIL;
  memory.fill(slot + SLOT_HDR, 0, p.slotSize - <u32>SLOT_HDR);
  store<u32>(slot + SLOT_USE, 0);
  store<u32>(slot + SLOT_NEXT, NIL);
  p.used++;
  return <i32>idx;
}

/** Puts a slot back at the tail of the free list. */
export function poolGive(p: Pool, idx: u32): void {
  const slot = poolSlot(p, idx);
  store<u32>(slot + SLOT_HANDLE, 0);
  store<u32>(slot + SLOT_NEXT, NIL);
  if (p.tail == NIL) p.head = idx;
  else store<u32>(poolSlot(p, p.tail) + SLOT_NEXT, idx);
  p.tail = idx;
  p.used--;
}

/** Mints the handle of a freshly taken slot: (generation << 24) | (index + 1). */
export function poolMint(p: Pool, idx: u32): u32 {
  const slot = poolSlot(p, idx);
  const gen = (load<u32>(slot + SLOT_GEN) + 1) & 0x7f;
  store<u32>(slot + SLOT_GEN, gen);
  const h = (gen << 24) | (idx + 1);
  store<u32>(slot + SLOT_HANDLE, h);
  return h;
}

/** The slot a handle names, or 0 when the handle is stale or out of range. */
export function poolFind(p: Pool, h: u32): usize {
  const idx = (h & 0xffffff) - 1;
  if (idx >= p.cap) return 0;
  const slot = poolSlot(p, idx);
  return load<u32>(slot + SLOT_HANDLE) == h && h != 0 ? slot : 0;
}

@inline export function slotIndex(p: Pool, slot: usize): u32 {
  return <u32>((slot - p.base) / p.slotSize);
}

@inline export function useInc(slot: usize): void { store<u32>(slot + SLOT_USE, load<u32>(slot + SLOT_USE) + 1); }
@inline export function useDec(slot: usize): void { store<u32>(slot + SLOT_USE, load<u32>(slot + SLOT_USE) - 1); }
@inline export function useCount(slot: usize): u32 { return load<u32>(slot + SLOT_USE); }

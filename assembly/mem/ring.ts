// Rings of fixed-size slots in linear memory (SQ, RQ, SRQ, CQ, event ring, TX ring, trace ring).
// Header: line 0 = geometry, line 1 = producer index, line 2 = consumer index,
// entries from byte 192. Indices are free-running u32 counters masked by the
// power-of-two capacity; each sits alone on its 64-byte line so a producer and a
// consumer on two threads never share a cache line. No pointers inside: the
// layout means the same thing to every thread that maps the memory.
import { arenaAlloc, arenaFree, Arena } from "./arena";
import { RING_CAP, RING_SLOT, RING_KIND, RING_OWNER, RING_PROD, RING_CONS, RING_DATA } from "../abi/ring";

// ABI constants: generated from abi/schema.json into assembly/abi/ring.ts; re-exported for this file's importers.
export {
  RING_CAP, RING_SLOT, RING_KIND, RING_OWNER, RING_PROD, RING_CONS, RING_DATA, RING_SQ, RING_RQ, RING_SRQ, RING_CQ,
  RING_EVENT, RING_TX, RING_TRACE,
} from "../abi/ring";

/** Ring storage for every QP, CQ and SRQ comes from this arena. */
export const ringArena = changetype<Arena>(memory.data(offsetof<Arena>()));

export function ringBytes(cap: u32, slot: u32): u32 { return <u32>RING_DATA + cap * slot; }

export function ringInit(r: usize, cap: u32, slot: u32, kind: u32, owner: u32): void {
  memory.fill(r, 0, RING_DATA);
  store<u32>(r + RING_CAP, cap);
  store<u32>(r + RING_SLOT, slot);
  store<u32>(r + RING_KIND, kind);
  store<u32>(r + RING_OWNER, owner);
}

// Index access lives here only. The threads build (asconfig target "shared", --enable threads,
// shared memory) turns them into atomic loads and stores: wasm atomics are sequentially
// consistent, so a producer's slot writes are visible before its index (release) and a
// consumer reads slots only after the index (acquire) — the host thread uses Atomics on the
// same words. ASC_FEATURE_THREADS is a compile-time constant: the normal build keeps plain
// loads and stores (build/softroce.wasm is byte-for-byte what it was before this switch).
@inline export function ringProd(r: usize): u32 { return ASC_FEATURE_THREADS ? atomic.load<u32>(r + RING_PROD) : load<u32>(r + RING_PROD); }
@inline export function ringCons(r: usize): u32 { return ASC_FEATURE_THREADS ? atomic.load<u32>(r + RING_CONS) : load<u32>(r + RING_CONS); }
@inline export function ringSetProd(r: usize, v: u32): void { ASC_FEATURE_THREADS ? atomic.store<u32>(r + RING_PROD, v) : store<u32>(r + RING_PROD, v); }
@inline export function ringSetCons(r: usize, v: u32): void { ASC_FEATURE_THREADS ? atomic.store<u32>(r + RING_CONS, v) : store<u32>(r + RING_CONS, v); }
@inline export function ringCap(r: usize): u32 { return load<u32>(r + RING_CAP); }
@inline export function ringCount(r: usize): u32 { return ringProd(r) - ringCons(r); }

/**
 * Moves the entries of ring `from` (consumer .. producer) to slots 0.. of the
 * fresh ring `to` (same slot size), leaving `to` with consumer 0 and producer =
 * count. The caller checked that they fit.
 */
function ringMove(from: usize, to: usize): void {
  const slot = load<u32>(from + RING_SLOT);
  const n = ringCount(from);
  let c = ringCons(from);
  for (let i: u32 = 0; i < n; i++, c++) memory.copy(ringEntry(to, i), ringEntry(from, c), slot);
  ringSetCons(to, 0);
  ringSetProd(to, n);
}

/** Address of the slot that index `i` maps to. */
@inline export function ringEntry(r: usize, i: u32): usize {
  return r + RING_DATA + <usize>(i & (load<u32>(r + RING_CAP) - 1)) * load<u32>(r + RING_SLOT);
}

/**
 * Resize (ibv_resize_cq, ibv_modify_srq max_wr): a new ring of `cap` slots from
 * the ring arena, same slot size, kind and owner, holding the entries of `r`
 * (the caller checked they fit); `r`, of `bytes` bytes, goes back to the arena.
 * Returns the new ring, or 0 when the arena has no room (`r` is left as it was).
 */
export function ringResize(r: usize, bytes: u32, cap: u32): usize {
  const slot = load<u32>(r + RING_SLOT);
  const nr = arenaAlloc(ringArena, ringBytes(cap, slot));
  if (!nr) return 0;
  ringInit(nr, cap, slot, load<u32>(r + RING_KIND), load<u32>(r + RING_OWNER));
  ringMove(r, nr);
  arenaFree(ringArena, r, bytes);
  return nr;
}

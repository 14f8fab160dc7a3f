// A range allocator over a fixed span of linear memory: first fit, freed ranges
// coalesce with their neighbours, so create/destroy cycles never leak or grow.
// The free list is a sorted array of (start, length) pairs carved at device open;
// it never holds more than (live blocks + 1) entries, so its capacity is fixed.

export const ARENA_ALIGN: u32 = 64;

@unmanaged
export class Arena {
  base: usize = 0;
  size: u32 = 0;
  list: usize = 0; // u32 pairs (start offset, length), sorted by start
  count: u32 = 0;
  cap: u32 = 0;
  free: u32 = 0; // bytes free
}

@inline function entStart(a: Arena, i: u32): u32 { return load<u32>(a.list + (<usize>i << 3)); }
@inline function entLen(a: Arena, i: u32): u32 { return load<u32>(a.list + (<usize>i << 3) + 4); }
@inline function setEnt(a: Arena, i: u32, start: u32, len: u32): void {
  store<u32>(a.list + (<usize>i << 3), start);
  store<u32>(a.list + (<usize>i << 3) + 4, len);
}

/** Bytes a block of `len` really takes (aligned, at least one unit). */
export function arenaRound(len: u32): u32 {
  if (len == 0) return ARENA_ALIGN;
  return (len + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
}

/** Bytes of list storage an arena with `maxBlocks` live blocks needs. */
export function arenaListBytes(maxBlocks: u32): u32 { return (maxBlocks + 2) << 3; }

export function arenaInit(a: Arena, base: usize, size: u32, list: usize, maxBlocks: u32): void {
  a.base = base;
  a.size = size & ~(ARENA_ALIGN - 1);
  a.list = list;
  a.cap = maxBlocks + 2;
  a.count = 1;
  a.free = a.size;
  setEnt(a, 0, 0, a.size);
}

/** Returns the address of a block of at least `len` bytes, or 0 when none fits. */
export function arenaAlloc(a: Arena, len: u32): usize {
  if (len > a.size) return 0;
  const need = arenaRound(len);
  for (let i: u32 = 0; i < a.count; i++) {
    const l = entLen(a, i);
    if (l < need) continue;
    const s = entStart(a, i);
    if (l == need) {
      memory.copy(a.list + (<usize>i << 3), a.list + (<usize>(i + 1) << 3), <usize>(a.count - i - 1) << 3);
      a.count--;
    } else {
      setEnt(a, i, s + need, l - need);
    }
    a.free -= need;
    return a.base + s;
  }
  return 0;
}

/** Returns a block to the arena; `len` is the length it was allocated with. */
export function arenaFree(a: Arena, ptr: usize, len: u32): void {
  const need = arenaRound(len);
  const s = <u32>(ptr - a.base);
  let i: u32 = 0;
  while (i < a.count && entStart(a, i) < s) i++;
  const joinPrev = i > 0 && entStart(a, i - 1) + entLen(a, i - 1) == s;
  const joinNext = i < a.count && s + need == entStart(a, i);
  if (joinPrev && joinNext) {
    setEnt(a, i - 1, entStart(a, i - 1), entLen(a, i - 1) + need + entLen(a, i));
    memory.copy(a.list + (<usize>i << 3), a.list + (<usize>(i + 1) << 3), <usize>(a.count - i - 1) << 3);
    a.count--;
  } else if (joinPrev) {
    setEnt(a, i - 1, entStart(a, i - 1), entLen(a, i - 1) + need);
  } else if (joinNext) {
    setEnt(a, i, s, need + entLen(a, i));
  } else {
    // a.count < a.cap holds: free ranges never outnumber live blocks + 1.
    memory.copy(a.list + (<usize>(i + 1) << 3), a.list + (<usize>i << 3), <usize>(a.count - i) << 3);
    setEnt(a, i, s, need);
    a.count++;
  }
  a.free += need;
}

/** Largest free block, for diagnostics and tests. */
export function arenaLargest(a: Arena): u32 {
  let m: u32 = 0;
  for (let i: u32 = 0; i < a.count; i++) m = max(m, entLen(a, i));
  return m;
}

import { Arena, arenaAlloc, arenaFree, arenaInit, arenaLargest, arenaListBytes, ARENA_ALIGN } from "../../assembly/mem/arena";

function fresh(size: u32, blocks: u32): Arena {
  const a = changetype<Arena>(heap.alloc(offsetof<Arena>()));
  const list = heap.alloc(arenaListBytes(blocks));
  const base = heap.alloc(size + ARENA_ALIGN);
  arenaInit(a, (base + 63) & ~63, size, list, blocks);
  return a;
}

describe("arena", () => {
  it("allocates first fit, aligned to 64 bytes", () => {
    const a = fresh(4096, 8);
    const p = arenaAlloc(a, 10);
    const q = arenaAlloc(a, 100);
    expect(q - p).toBe(64);
    expect(a.free).toBe(4096 - 64 - 128);
  });

  it("refuses what does not fit and returns 0", () => {
    const a = fresh(1024, 8);
    expect(arenaAlloc(a, 2048)).toBe(0);
    expect(arenaAlloc(a, 1024)).not.toBe(0);
    expect(arenaAlloc(a, 1)).toBe(0);
  });

  it("coalesces freed neighbours back into one range", () => {
    const a = fresh(4096, 8);
    const p1 = arenaAlloc(a, 1000);
    const p2 = arenaAlloc(a, 1000);
    const p3 = arenaAlloc(a, 1000);
    arenaFree(a, p1, 1000);
    arenaFree(a, p3, 1000);
    expect(a.count).toBe(2);
    arenaFree(a, p2, 1000);
    expect(a.count).toBe(1);
    expect(a.free).toBe(4096);
    expect(arenaLargest(a)).toBe(4096);
  });

  it("reuses freed ranges: 10,000 alloc/free cycles of mixed sizes never exhaust it", () => {
    const a = fresh(65536, 16);
    for (let i: u32 = 0; i < 10000; i++) {
      const x = arenaAlloc(a, 100 + (i % 7) * 500);
      const y = arenaAlloc(a, 64);
      expect(x).not.toBe(0);
      expect(y).not.toBe(0);
      arenaFree(a, x, 100 + (i % 7) * 500);
      arenaFree(a, y, 64);
    }
    expect(a.free).toBe(65536);
    expect(a.count).toBe(1);
  });
});

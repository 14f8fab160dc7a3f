import { allocZeroed, allocZeroedLine } from "../../assembly/mem/alloc";

describe("allocZeroed", () => {
  it("zeroes memory the bump allocator hands out again", () => {
    const dirty = heap.alloc(256);
    memory.fill(dirty, 0xab, 256);
    heap.free(dirty); // the last block: the stub runtime gives the same bytes back next
    const p = allocZeroed(256);
    expect(p).toBe(dirty, "the freed block is reused");
    let nonZero = 0;
    for (let i: usize = 0; i < 256; i++) if (load<u8>(p + i) != 0) nonZero++;
    expect(nonZero).toBe(0);
    heap.free(p);
  });

  it("allocZeroedLine aligns to 64 bytes and zeroes the whole span", () => {
    const dirty = heap.alloc(1024);
    memory.fill(dirty, 0xcd, 1024);
    heap.free(dirty);
    const p = allocZeroedLine(900);
    expect(p & 63).toBe(0);
    expect(p >= dirty && p < dirty + 64).toBe(true, "within the first line of the block");
    let nonZero = 0;
    for (let i: usize = 0; i < 900; i++) if (load<u8>(p + i) != 0) nonZero++;
    expect(nonZero).toBe(0);
  });
});

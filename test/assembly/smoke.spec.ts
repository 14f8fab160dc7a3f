describe("toolchain", () => {
  it("runs AssemblyScript specs with load/store on linear memory", () => {
    const p = heap.alloc(16);
    store<u32>(p, 0x01020304);
    expect(load<u8>(p)).toBe(4);
    expect(bswap<u32>(load<u32>(p))).toBe(0x04030201);
  });
});

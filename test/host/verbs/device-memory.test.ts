import { describe, expect, it } from "vitest";
import { DeviceMemory } from "../../../host/core/verbs/memory.js";
import { coreModule } from "../../../host/node/wasm-source.js";
import { runPerf } from "../../../host/core/perf/index.js";

const PAGE = 65536;

describe("DeviceMemory keeps its views", () => {
  it("follows a plain memory that grows: the old views detach, the accessors re-derive theirs", () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 4 });
    const mem = new DeviceMemory(memory);
    mem.setU32(8, 0x01020304);
    const before = mem.u8;
    memory.grow(2);
    expect(before.length).toBe(0); // detached by the growth
    expect(mem.u32(8)).toBe(0x01020304);
    mem.setU32(2 * PAGE + 12, 0xdeadbeef);
    expect(mem.u32(2 * PAGE + 12)).toBe(0xdeadbeef);
    expect(mem.u8.length).toBe(3 * PAGE);
    expect(mem.dv.byteLength).toBe(3 * PAGE);
    expect(mem.u8.buffer).toBe(memory.buffer);
    expect(() => mem.u32(3 * PAGE)).toThrow(RangeError); // past the end: still an error
  });

  it("follows a shared memory that grows (its views do not detach, they are short)", () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 4, shared: true });
    const mem = new DeviceMemory(memory);
    memory.grow(1);
    mem.storeIndex(PAGE + 16, 77);
    expect(mem.loadIndex(PAGE + 16)).toBe(77);
    mem.fill(PAGE + 100, 8, 0xaa);
    expect(mem.view(PAGE + 100, 8)).toEqual(new Uint8Array(8).fill(0xaa));
    expect(mem.u8.length).toBe(2 * PAGE);
    expect(new Uint8Array(memory.buffer)[PAGE + 100]).toBe(0xaa);
  });

  it("an in-process RC WRITE run asks memory.buffer a handful of times at open, not per packet or per message", async () => {
    const desc = Object.getOwnPropertyDescriptor(WebAssembly.Memory.prototype, "buffer")!;
    let reads = 0;
    Object.defineProperty(WebAssembly.Memory.prototype, "buffer", {
      ...desc,
      get(this: WebAssembly.Memory) {
        reads++;
        return desc.get!.call(this);
      },
    });
    let packets = 0;
    try {
      const r = await runPerf(await coreModule(), { test: "write_bw", size: 65536, mtu: 4096, iterations: 200, txDepth: 16, verify: false });
      expect(r.ok).toBe(true);
      packets = r.wire.sent;
    } finally {
      Object.defineProperty(WebAssembly.Memory.prototype, "buffer", desc);
    }
    expect(packets).toBeGreaterThan(3200); // 200 messages x 16 packets, and their ACKs
    expect(reads).toBeLessThan(50); // open and attach: a handful
  });
});

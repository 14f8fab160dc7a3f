import { describe, expect, it } from "vitest";
import { instantiateCore } from "../../../host/core/wasm/instance.js";
import { coreModule } from "../../../host/node/wasm-source.js";

describe("core loader", () => {
  it("instantiates build/softroce.wasm with an exported linear memory", async () => {
    const core = await instantiateCore(await coreModule());
    expect(core.memory).toBeInstanceOf(WebAssembly.Memory);
    expect(core.memory.buffer.byteLength).toBeGreaterThanOrEqual(64 * 65536);
  });

  it("gives two instances two separate memories", async () => {
    const mod = await coreModule();
    const a = await instantiateCore(mod);
    const b = await instantiateCore(mod);
    new Uint8Array(a.memory.buffer)[1000] = 42;
    expect(new Uint8Array(b.memory.buffer)[1000]).toBe(0);
  });
});

// The host refuses a core built from another ABI: instantiateCore checks verbs_abi_version().
import { describe, expect, it } from "vitest";
import { CoreAbiError, instantiateCore } from "../../../host/core/wasm/instance.js";
import { VERBS_ABI_VERSION } from "../../../host/core/abi/index.js";
import { coreModule } from "../../../host/node/wasm-source.js";
import { openDeviceWith } from "../../../host/core/verbs/device.js";
import { name, section, sleb, uleb } from "../../../host/core/wasm/encode.js";

/** A minimal wasm module: one page of exported memory and, unless `version` is undefined, verbs_abi_version() returning it. */
function fakeCore(version: number | undefined): Uint8Array {
  const exports = [...name("memory"), 0x02, 0x00];
  const bytes = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  if (version === undefined) {
    bytes.push(...section(5, [1, 0x00, 1]), ...section(7, [1, ...exports]));
  } else {
    bytes.push(
      ...section(1, [1, 0x60, 0, 1, 0x7f]), // type 0: () -> i32
      ...section(3, [1, 0]), // func 0: type 0
      ...section(5, [1, 0x00, 1]), // memory 0: min 1 page
      ...section(7, [2, ...exports, ...name("verbs_abi_version"), 0x00, 0x00]),
      ...section(10, [1, ...(() => { const body = [0, 0x41, ...sleb(version | 0), 0x0b]; return [...uleb(body.length), ...body]; })()]),
    );
  }
  return Uint8Array.from(bytes);
}

describe("ABI version check at load", () => {
  it("loads the core built from this tree", async () => {
    const core = await instantiateCore(await coreModule());
    expect((core.verbs_abi_version as () => number)()).toBe(VERBS_ABI_VERSION);
  });

  it("loads a module that reports this host's version (the check looks at the number, nothing else)", async () => {
    const core = await instantiateCore(fakeCore(VERBS_ABI_VERSION));
    expect(core.memory).toBeInstanceOf(WebAssembly.Memory);
  });

  it("refuses another version with a coded error that names both", async () => {
    const other = VERBS_ABI_VERSION + 1;
    const err = await instantiateCore(fakeCore(other)).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(CoreAbiError);
    const e = err as CoreAbiError;
    expect(e.code).toBe("abi_version");
    expect(e.coreVersion).toBe(other);
    expect(e.hostVersion).toBe(VERBS_ABI_VERSION);
    expect(e.message).toContain(`ABI version ${other}`);
    expect(e.message).toContain(`this host speaks ABI version ${VERBS_ABI_VERSION}`);
  });

  it("refuses an older version and a huge one (read as u32)", async () => {
    await expect(instantiateCore(fakeCore(VERBS_ABI_VERSION - 1))).rejects.toMatchObject({ code: "abi_version", coreVersion: VERBS_ABI_VERSION - 1 });
    await expect(instantiateCore(fakeCore(-1))).rejects.toMatchObject({ code: "abi_version", coreVersion: 0xffffffff });
  });

  it("refuses a module without verbs_abi_version", async () => {
    await expect(instantiateCore(fakeCore(undefined))).rejects.toMatchObject({ name: "CoreAbiError", code: "abi_missing", coreVersion: undefined });
  });

  it("stops a device open on a mismatched core before any call into it", async () => {
    await expect(openDeviceWith(fakeCore(VERBS_ABI_VERSION + 7))).rejects.toBeInstanceOf(CoreAbiError);
  });
});

// Instantiates the device core from bytes or a compiled module, and refuses a core
// built from another ABI than this host's (abi/schema.json, verbs_abi_version).
// Platform entries (host/node, host/browser) decide where the bytes come from.
import { VERBS_ABI_VERSION } from "../abi/version.js";

/** The raw numeric exports of build/softroce.wasm; typed per layer elsewhere. */
export type CoreExports = WebAssembly.Exports & { memory: WebAssembly.Memory };

export class CoreAbort extends Error {
  override name = "CoreAbort";
}

export type CoreAbiErrorCode = "abi_missing" | "abi_version";

/** The module is not a core this host can drive: it has no ABI version, or another one. */
export class CoreAbiError extends Error {
  override name = "CoreAbiError";
  constructor(
    readonly code: CoreAbiErrorCode,
    /** what the module's verbs_abi_version() returned (undefined: no such export) */
    readonly coreVersion: number | undefined,
    /** the version this host was generated for */
    readonly hostVersion: number,
  ) {
    super(
      code === "abi_missing"
        ? `softroce core: the module exports no verbs_abi_version(); this host speaks ABI version ${hostVersion}`
        : `softroce core: ABI version ${coreVersion}, this host speaks ABI version ${hostVersion} ` +
            "(build the core and the host from one tree: npm run build)",
    );
  }
}

/** Throws CoreAbiError unless the exports say they follow this host's ABI version. */
export function checkAbiVersion(exports: WebAssembly.Exports): void {
  const version = exports["verbs_abi_version"];
  if (typeof version !== "function") throw new CoreAbiError("abi_missing", undefined, VERBS_ABI_VERSION);
  const v = Number((version as () => unknown)()) >>> 0;
  if (v !== VERBS_ABI_VERSION) throw new CoreAbiError("abi_version", v, VERBS_ABI_VERSION);
}

function readString(memory: WebAssembly.Memory, ptr: number): string {
  if (!ptr) return "";
  // AssemblyScript strings are UTF-16 with the byte length stored at ptr - 4.
  const len = new Uint32Array(memory.buffer, ptr - 4, 1)[0] >>> 1;
  return String.fromCharCode(...new Uint16Array(memory.buffer, ptr, len));
}

export async function instantiateCore(source: BufferSource | WebAssembly.Module): Promise<CoreExports> {
  let memory: WebAssembly.Memory | undefined;
  const imports = {
    env: {
      abort(msg: number, file: number, line: number, col: number): never {
        const m = memory ? readString(memory, msg) : "";
        const f = memory ? readString(memory, file) : "";
        throw new CoreAbort(`softroce core abort: ${m} at ${f}:${line}:${col}`);
      },
      trace(): void {},
      seed(): number {
        return 0x5eed;
      },
    },
  };
  const instance =
    source instanceof WebAssembly.Module
      ? await WebAssembly.instantiate(source, imports)
      : (await WebAssembly.instantiate(source, imports)).instance;
  const exports = instance.exports as CoreExports;
  checkAbiVersion(exports);
  memory = exports.memory;
  firstCore ??= exports;
  return exports;
}

let firstCore: CoreExports | undefined;

/** The first core this process (or page) instantiated, if any: what tools without a device of their own borrow. */
export function firstLoadedCore(): CoreExports | undefined {
  return firstCore;
}

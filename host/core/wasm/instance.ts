// Instantiates the device core from bytes or a compiled module. Platform
// entries (host/node, host/browser) decide where the bytes come from.

/** The raw numeric exports of build/softroce.wasm; typed per layer elsewhere. */
export type CoreExports = WebAssembly.Exports & { memory: WebAssembly.Memory };

export class CoreAbort extends Error {
  override name = "CoreAbort";
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
  memory = exports.memory;
  return exports;
}

// Browser: esbuild's file loader copies the wasm next to the bundle and gives its URL.
import wasmUrl from "../../build/softroce.wasm";

let cached: Promise<WebAssembly.Module> | undefined;

async function compile(): Promise<WebAssembly.Module> {
  const url = new URL(wasmUrl, import.meta.url);
  const res = await fetch(url);
  if (!res.ok) throw new Error(`softroce: cannot fetch ${url}: HTTP ${res.status}`);
  const type = res.headers.get("content-type") ?? "";
  if (type.startsWith("application/wasm") && WebAssembly.compileStreaming) {
    return WebAssembly.compileStreaming(res);
  }
  return WebAssembly.compile(await res.arrayBuffer());
}

export function coreModule(): Promise<WebAssembly.Module> {
  cached ??= compile();
  return cached;
}

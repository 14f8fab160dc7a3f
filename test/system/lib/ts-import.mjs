// Imports a project TypeScript module (e.g. host/core/capture/pcap.ts) into a suite by
// bundling it with esbuild into a temporary .mjs: suites stay plain node
// scripts yet test the same sources the package is built from.
import { build } from "esbuild";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT, tempDir } from "./harness.mjs";

let n = 0;
export async function importTs(relPath) {
  const out = join(tempDir("ts"), `m${n++}.mjs`);
  await build({
    entryPoints: [resolve(ROOT, relPath)],
    outfile: out,
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    logLevel: "silent",
    packages: "external",
  });
  return import(pathToFileURL(out).href);
}

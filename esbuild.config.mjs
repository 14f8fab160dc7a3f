// Bundles the hosts. Node bundles target node20; the browser bundle targets
// es2022 with platform "browser", so any node: import reachable from it fails.
import * as esbuild from "esbuild";
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync } from "node:fs";

// The folders this script writes start empty: the wasm assets' names carry a content hash, so an old
// build's would otherwise stay beside the new ones and ship in the package.
for (const dir of ["node", "internal", "gateway", "cli", "browser", "playground"]) rmSync(`dist/${dir}`, { recursive: true, force: true });

const common = { bundle: true, format: "esm", sourcemap: true, logLevel: "warning", packages: "external" };

await Promise.all([
  esbuild.build({ ...common, entryPoints: ["host/node/index.ts"], outfile: "dist/node/index.js", platform: "node", target: "node20" }),
  // the device worker openDevice({ worker: true }) starts (host/node/worker/open.ts finds it here)
  esbuild.build({ ...common, entryPoints: ["host/node/worker/device-worker.ts"], outfile: "dist/node/device-thread.js", platform: "node", target: "node20" }),
  // Everything, for this repository's tests, benchmarks and system suites (not published: see
  // package.json "files"). Two levels under the root like the others, so build/softroce.wasm resolves.
  esbuild.build({ ...common, entryPoints: ["host/internal/node.ts"], outfile: "dist/internal/node.js", platform: "node", target: "node20" }),
  esbuild.build({
    ...common,
    packages: undefined,
    entryPoints: ["host/internal/browser.ts"],
    outfile: "dist/internal/browser.js",
    platform: "browser",
    target: "es2022",
    loader: { ".wasm": "file" },
    assetNames: "[name]-[hash]",
  }),
  esbuild.build({ ...common, entryPoints: ["host/gateway/index.ts"], outfile: "dist/gateway/index.js", platform: "node", target: "node20" }),
  esbuild.build({
    ...common,
    entryPoints: ["host/cli/softroce.ts"],
    outfile: "dist/cli/softroce.js",
    platform: "node",
    target: "node20",
    banner: { js: "#!/usr/bin/env node" },
  }),
  esbuild.build({
    ...common,
    packages: undefined,
    entryPoints: ["host/browser/index.ts"],
    outfile: "dist/browser/index.js",
    platform: "browser",
    target: "es2022",
    loader: { ".wasm": "file" },
    assetNames: "[name]-[hash]",
  }),
  ...pages(),
  // the browser's device worker (host/browser/worker.ts looks for it next to the bundle that starts it)
  ...["browser", "internal", ...(existsSync("examples/playground") ? ["playground"] : [])].map((dir) =>
    esbuild.build({ ...common, packages: undefined, entryPoints: ["host/browser/worker-device.ts"], outfile: `dist/${dir}/device-worker.js`, platform: "browser", target: "es2022" }),
  ),
]);
chmodSync("dist/cli/softroce.js", 0o755);

if (existsSync("examples/playground")) {
  for (const f of ["index.html", "style.css", "_headers"]) copyFileSync(`examples/playground/${f}`, `dist/playground/${f}`);
  copyFileSync("examples/browser-chat/index.html", "dist/playground/chat/index.html");
}

/** The pages in examples/ (absent from a copy of host/ alone, as in the build test of browser-smoke). */
function pages() {
  if (!existsSync("examples/playground")) return [];
  mkdirSync("dist/playground", { recursive: true });
  return [
    // The playground (examples/playground): a static folder any file server can serve.
    esbuild.build({
      ...common,
      packages: undefined,
      entryPoints: ["examples/playground/src/main.ts"],
      outfile: "dist/playground/playground.js",
      platform: "browser",
      target: "es2022",
      loader: { ".wasm": "file" },
      assetNames: "[name]-[hash]",
    }),
    // examples/browser-chat, served by `softroce playground` at /chat/
    esbuild.build({
      ...common,
      packages: undefined,
      entryPoints: ["examples/browser-chat/chat.ts"],
      outfile: "dist/playground/chat/chat.js",
      platform: "browser",
      target: "es2022",
      loader: { ".wasm": "file" },
      assetNames: "[name]-[hash]",
    }),
  ];
}

// The package's install step: builds the socket addon (socket options and the
// native batched datapath) with node-gyp against the local Node headers. It
// never fails the install: without the addon softroce endpoints still talk to
// each other over node:dgram, and the Node host says which kernel-interop
// features are missing.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

function findNodeGyp() {
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) return process.env.npm_config_node_gyp;
  const candidates = [];
  try {
    candidates.push(createRequire(import.meta.url).resolve("node-gyp/bin/node-gyp.js"));
  } catch {}
  const npmDir = process.env.npm_execpath ? dirname(dirname(process.env.npm_execpath)) : "/usr/lib/node_modules/npm";
  candidates.push(join(npmDir, "node_modules/node-gyp/bin/node-gyp.js"));
  candidates.push(join(dirname(process.execPath), "../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"));
  return candidates.find((c) => existsSync(c));
}

if (process.env.SOFTROCE_SKIP_NATIVE) {
  console.log("softroce: SOFTROCE_SKIP_NATIVE set, not building the socket addon");
  process.exit(0);
}
if (process.platform !== "linux") {
  console.log(`softroce: the socket addon is Linux-only (this is ${process.platform}); kernel RoCE interop is unavailable`);
  process.exit(0);
}
const gyp = findNodeGyp();
if (!gyp) {
  console.log("softroce: node-gyp not found; the socket addon was not built (kernel RoCE interop unavailable)");
  process.exit(0);
}
// Build against the headers of the running Node; never let node-gyp download them.
const nodedir = [process.env.npm_config_nodedir, dirname(dirname(process.execPath))].find(
  (d) => d && existsSync(join(d, "include/node/node_api.h")),
);
if (!nodedir) {
  console.log("softroce: Node's headers (include/node/node_api.h) not found; the socket addon was not built (kernel RoCE interop unavailable)");
  process.exit(0);
}
const r = spawnSync(process.execPath, [gyp, "rebuild", "--directory", here, `--nodedir=${nodedir}`], { stdio: ["ignore", "pipe", "pipe"], timeout: 180_000 });
if (r.status === 0) {
  console.log("softroce: built the socket addon with the native datapath (host/node/native/build/Release/softroce_sockopt.node)");
} else {
  const why = (r.stderr?.toString() || r.error?.message || "").trim().split("\n").slice(-3).join(" | ");
  console.log(`softroce: the socket addon did not build (${why || "exit " + r.status}); kernel RoCE interop unavailable`);
}
process.exit(0);

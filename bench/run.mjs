// Runs every bench/*.mjs except this file and the modules benches use (a child side, *-peer.mjs;
// shared pieces, *-common.mjs), one after another, each in its own process.
// New benches need no registration here (bench/wake.mjs, the C wake-up probe, runs as `node bench/run.mjs wake`).
// Usage: npm run bench   (builds first)   or   node bench/run.mjs [name-filter]   or   node bench/run.mjs --list [name-filter]
import { readdirSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const dir = fileURLToPath(new URL(".", import.meta.url));
const list = process.argv[2] === "--list";
const filter = process.argv[list ? 3 : 2];
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".mjs") && f !== "run.mjs" && !/-(peer|common)\.mjs$/.test(f) && (!filter || f.includes(filter)))
  .sort();
if (list) {
  // what a run would start, one file a line
  for (const f of files) console.log(`bench/${f}`);
  process.exit(0);
}
let failed = 0;
for (const f of files) {
  console.log(`\n== bench/${f}`);
  const r = spawnSync(process.execPath, [`${dir}${f}`], { stdio: "inherit" });
  if (r.status !== 0) {
    failed++;
    console.log(`bench/${f} exited with ${r.status ?? r.signal}`);
  }
}
if (files.length === 0) console.log("no benches found");
process.exit(failed ? 1 : 0);

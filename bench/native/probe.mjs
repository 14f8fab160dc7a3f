// Builds and runs the benches' C programs: bench/native/udp-limit.c, the probe of what this machine
// can move between two processes over UDP loopback (send, sendmmsg, UDP GSO, GSO + GRO), and
// bench/native/wake.c, the round trips of a hop, the gateway's path and the device worker's shape
// without any user-space work (the floors under the tunnel's and the worker's round trips). Built
// with the compiler node-gyp uses for the addon ($CC, else `cc` from PATH); the probe with its flags
// and its socket setup (host/node/native/udpsock.c), so "the machine's limit" and the native
// datapath come from the same toolchain and the same sockets.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const NATIVE = fileURLToPath(new URL("../../host/node/native/", import.meta.url));
export const PROBE_MODES = ["send", "sendmmsg", "gso", "gso+gro"];

/** Compiles `source` (with `args` after it) into a fresh temporary directory as `name`; returns { path, cc, dispose }. Throws with the compiler's message. */
function buildC(name, source, flags, args = []) {
  const cc = process.env.CC || "cc";
  const dir = mkdtempSync(join(tmpdir(), `softroce-${name}-`));
  const path = join(dir, name);
  const r = spawnSync(cc, [...flags, "-o", path, source, ...args], { encoding: "utf8", timeout: 120_000 });
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${cc} could not build ${source}: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`);
  }
  return { path, cc, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The probe (udp-limit.c), built; see buildC. */
export const buildProbe = () => buildC("udp-limit", fileURLToPath(new URL("./udp-limit.c", import.meta.url)), ["-O2", "-Wall", "-I", NATIVE], [join(NATIVE, "udpsock.c")]);

/** wake.c, built; see buildC. */
export const buildWake = () => buildC("wake", fileURLToPath(new URL("./wake.c", import.meta.url)), ["-O2", "-Wall", "-pthread"]);

/**
 * One wake.c run: `shape` (udp, tcp, relay, worker) waiting as `how` says (block, spin), `count`
 * round trips on loopback `address`. Returns its JSON line ({ rttMedianUs, onewayMedianUs?, ... }).
 */
export function runWake(wake, shape, how, count, address) {
  const r = spawnSync(wake.path, [shape, how, String(count), address], { encoding: "utf8", timeout: 120_000 });
  if (r.status !== 0) throw new Error(`wake ${shape} ${how}: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`);
  return JSON.parse(r.stdout.trim());
}

/** The ways wake.c waits, as the floor measures both. */
export const WAKE_WAYS = ["block", "spin"];

/**
 * The floor under a bench's path (BENCH_FLOOR in bench/gateway.mjs and bench/worker.mjs): wake.c
 * built once; each `round()` runs `shape` and the direct UDP ping-pong, `count` round trips each at
 * `address`, once per way of waiting, and appends what the shape adds (µs) to `added[way]`.
 * Undefined, with the reason printed, when wake.c cannot be built.
 */
export function openFloor(shape, count, address) {
  let wake;
  try {
    wake = buildWake();
  } catch (e) {
    console.log(`(the floor in C is left out: ${e.message.split("\n")[0]})`);
    return undefined;
  }
  const added = Object.fromEntries(WAKE_WAYS.map((w) => [w, []]));
  return {
    added,
    round() {
      for (const how of WAKE_WAYS) added[how].push(runWake(wake, shape, how, count, address).rttMedianUs - runWake(wake, "udp", how, count, address).rttMedianUs);
    },
    dispose: () => wake.dispose(),
  };
}

/**
 * One measurement: `mode` moving `count` datagrams of `size` bytes with `window` in flight from
 * `src` to `dst` (two processes). Returns the probe's JSON line ({ gbps, lost, ... }).
 */
export function runProbe(probe, mode, { size = 4112, count = 60000, window = 128, src = "127.33.1.1", dst = "127.33.1.2" } = {}) {
  const r = spawnSync(probe.path, [mode, String(size), String(count), String(window), src, dst], { encoding: "utf8", timeout: 120_000 });
  if (r.status !== 0) throw new Error(`udp-limit ${mode}: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`);
  return JSON.parse(r.stdout.trim().split("\n").pop());
}

/** min / median / max of a list of numbers. */
export function spread(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return { min: s[0], median: s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2, max: s[s.length - 1] };
}

export function fmtSpread(x, digits = 2) {
  return `${x.min.toFixed(digits)} / ${x.median.toFixed(digits)} / ${x.max.toFixed(digits)}`;
}

// Builds and runs bench/native/udp-limit.c, the C probe of what this machine can move
// between two processes over UDP loopback (send, sendmmsg, UDP GSO, GSO + GRO). Built with
// the compiler node-gyp uses for the addon ($CC, else `cc` from PATH), its flags and its
// socket setup (host/node/native/udpsock.c), so "the machine's limit" and the native
// datapath come from the same toolchain and the same sockets.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const SOURCE = fileURLToPath(new URL("./udp-limit.c", import.meta.url));
const NATIVE = fileURLToPath(new URL("../../host/node/native/", import.meta.url));
export const PROBE_MODES = ["send", "sendmmsg", "gso", "gso+gro"];

/** Compiles the probe into a fresh temporary directory; returns { path, cc, dispose }. Throws with the compiler's message. */
export function buildProbe() {
  const cc = process.env.CC || "cc";
  const dir = mkdtempSync(join(tmpdir(), "softroce-probe-"));
  const path = join(dir, "udp-limit");
  const r = spawnSync(cc, ["-O2", "-Wall", "-I", NATIVE, "-o", path, SOURCE, join(NATIVE, "udpsock.c")], { encoding: "utf8", timeout: 120_000 });
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${cc} could not build ${SOURCE}: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`);
  }
  return { path, cc, dispose: () => rmSync(dir, { recursive: true, force: true }) };
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

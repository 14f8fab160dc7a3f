// Shared by the tests that run the softroce CLI as real processes (the pingpongs):
// a bundle of host/cli built once per test file, processes killed after each test,
// free loopback ports, and rdma-core's pingpong output lines parsed.
import { spawn, type ChildProcess } from "node:child_process";
import dgram from "node:dgram";
import { readFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { afterEach, beforeAll, expect } from "vitest";
import { until as untilFor } from "./until.js";

export interface Run {
  child: ChildProcess;
  /** the CLI's arguments */
  args: string[];
  stdout: string;
  stderr: string;
  done: Promise<number | null>;
}

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/**
 * Registers the hooks for one test file: builds the CLI into .test-build/<dir>/ (never packed; two levels
 * under the root, like dist/cli/, so the bundle finds build/softroce.wasm) and kills
 * what a test left running. Returns `start(...args)`.
 */
export function useCli(dir: string): { cli: string; start: (...args: string[]) => Run } {
  const cli = join(ROOT, `.test-build/${dir}/softroce.js`);
  const running: ChildProcess[] = [];
  beforeAll(async () => {
    await esbuild.build({
      entryPoints: [join(ROOT, "host/cli/softroce.ts")], outfile: cli, bundle: true, format: "esm", platform: "node",
      target: "node20", packages: "external", logLevel: "warning",
    });
  });
  afterEach(() => {
    // still running: neither exited nor ended by a signal (a test may have killed one itself)
    for (const c of running.splice(0)) if (c.exitCode === null && c.signalCode === null && c.pid) process.kill(c.pid, "SIGKILL");
  });
  const start = (...args: string[]): Run => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    running.push(child);
    const r: Run = { child, args, stdout: "", stderr: "", done: undefined as unknown as Promise<number | null> };
    child.stdout!.on("data", (d) => (r.stdout += d));
    child.stderr!.on("data", (d) => (r.stderr += d));
    r.done = new Promise((resolve) => child.on("close", (code) => resolve(code)));
    return r;
  };
  return { cli, start };
}

/**
 * The runs' exit codes, once every one has exited; after `ms`, the ones still running are killed and
 * the error names each run (its arguments, whether it had exited, what it printed): a test running
 * several pairs says which one hung, not only that the test timed out.
 */
export async function exits(runs: Run[], ms: number): Promise<(number | null)[]> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), ms)));
  const codes = await Promise.race([Promise.all(runs.map((r) => r.done)), late]);
  clearTimeout(timer);
  if (codes !== "late") return codes;
  const said = runs.map((r) => {
    const state = r.child.exitCode !== null || r.child.signalCode !== null ? `exited ${r.child.exitCode ?? r.child.signalCode}` : "still running, killed";
    if (state.startsWith("still") && r.child.pid) process.kill(r.child.pid, "SIGKILL");
    return `softroce ${r.args.join(" ")}: ${state}\n--- stdout\n${r.stdout.slice(-2000)}--- stderr\n${r.stderr.slice(-2000)}`;
  });
  throw new Error(`not every process exited within ${ms / 1000} s:\n${said.join("\n")}`);
}

/** support/until.ts's wait with the CLI tests' bound: a child process starts in well under 10 s. */
export function until(cond: () => boolean, ms = 10_000): Promise<void> {
  return untilFor(cond, ms);
}

/** A UDP port free on both addresses (bound on both, then released); each test file has its own /24 in 127.0.0.0/8. */
export async function freeUdpPort(first: string, second: string): Promise<number> {
  for (;;) {
    const a = dgram.createSocket("udp4");
    await new Promise<void>((r) => a.bind(0, first, r));
    const port = a.address().port;
    const b = dgram.createSocket("udp4");
    const ok = await new Promise<boolean>((r) => {
      b.once("error", () => r(false));
      b.bind(port, second, () => r(true));
    });
    a.close();
    b.close();
    if (ok) return port;
  }
}

export async function freeTcpPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "0.0.0.0", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

export const ADDR_RE = /^ {2}(local|remote) address: {1,2}LID 0x([0-9a-f]{4}), QPN 0x([0-9a-f]{6}), PSN 0x([0-9a-f]{6}), GID (\S+)$/;
const BYTES_RE = /^(\d+) bytes in (\d+\.\d\d) seconds = (\d+\.\d\d) Mbit\/sec$/;
const ITERS_RE = /^(\d+) iters in (\d+\.\d\d) seconds = (\d+\.\d\d) usec\/iter$/;

/** rdma-core's pingpong output: the address lines and the two summary lines (each must be there). */
export function parseOut(out: string) {
  const lines = out.trimEnd().split("\n");
  const addr = (which: string) => {
    const m = lines.map((l) => ADDR_RE.exec(l)).find((m) => m?.[1] === which);
    expect(m, `${which} address line in:\n${out}`).toBeTruthy();
    return { lid: m![2], qpn: m![3], psn: m![4], gid: m![5] };
  };
  const b = lines.map((l) => BYTES_RE.exec(l)).find(Boolean);
  const i = lines.map((l) => ITERS_RE.exec(l)).find(Boolean);
  expect(b, out).toBeTruthy();
  expect(i, out).toBeTruthy();
  return { local: addr("local"), remote: addr("remote"), bytes: Number(b![1]), seconds: Number(b![2]), iters: Number(i![1]), lines };
}

/**
 * Whether some socket listens on TCP `port` (Linux's /proc/net/tcp and tcp6, read only: a probe that
 * connected or bound would take the server's one connection or its port). For a server that prints
 * nothing before its client comes (perftest's --output).
 */
export function tcpListening(port: number): boolean {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    // "  sl  local_address rem_address   st ...": a local address ending in :port, state 0A (LISTEN)
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[1]?.endsWith(`:${hex}`) && f[3] === "0A") return true;
    }
  }
  return false;
}

// The tiny test harness every system suite (test/system/*.sys.mjs) runs in:
// register tests with test(), check tools with requireTools(), then run().
// Each suite is its own node process started by test/system/run.mjs; run()
// prints one line per test and writes {suite, passed, failed, tests} to the
// file named by SOFTROCE_SUITE_RESULT so the runner can sum them.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const GREEN = process.stdout.isTTY ? "\x1b[32m" : "";
const RED = process.stdout.isTTY ? "\x1b[31m" : "";
const RESET = process.stdout.isTTY ? "\x1b[0m" : "";

const tests = [];
const tempDirs = [];
const children = new Set();
let missingTools = [];

/** Registers a test; fn may be async and fails by throwing (use node:assert/strict). */
export function test(name, fn) {
  tests.push({ name, fn });
}

/**
 * Checks that each tool exists before any test runs. tools: [{ cmd, pkg, args? }]
 * (cmd is run with args, default ["--version"], and must exit 0 within 30 s).
 * A missing tool becomes a failed test naming the Debian package; run() then
 * runs no other test of the suite.
 */
export function requireTools(tools) {
  for (const t of tools) {
    const r = spawnSync(t.cmd, t.args ?? ["--version"], { stdio: "ignore", timeout: 30_000, killSignal: "SIGKILL" });
    if (r.error || r.status !== 0) {
      missingTools.push(`${t.what ?? t.cmd} not found: apt-get install ${t.pkg}`);
    }
  }
}

/** A fresh temporary directory, removed when the suite ends (unless SOFTROCE_KEEP_TMP=1). */
export function tempDir(tag = "sys") {
  const dir = mkdtempSync(join(tmpdir(), `softroce-${tag}-`));
  tempDirs.push(dir);
  return dir;
}

function killTree(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, "SIGKILL"); // the child leads its own process group
  } catch {
    try {
      process.kill(child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

/**
 * Runs a program with a hard time bound; resolves {code, signal, stdout, stderr,
 * timedOut} (stdout/stderr as strings unless opts.binary). On timeout the whole
 * process group is killed by its id. opts: { timeoutMs, cwd, env, input }.
 */
export function runProcess(cmd, args, opts = {}) {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd ?? ROOT,
      env: opts.env ?? process.env,
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
    });
    children.add(child);
    const out = [];
    const err = [];
    let timedOut = false;
    let spawnError;
    child.stdout.on("data", (d) => out.push(d));
    child.stderr.on("data", (d) => err.push(d));
    child.on("error", (e) => {
      spawnError = e;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      killTree(child);
    }, timeoutMs);
    child.stdin.on("error", () => {});
    child.stdin.end(opts.input ?? undefined);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      const stdout = Buffer.concat(out);
      const stderr = Buffer.concat(err);
      resolve({
        code,
        signal,
        timedOut,
        error: spawnError,
        stdout: opts.binary ? stdout : stdout.toString("utf8"),
        stderr: stderr.toString("utf8"),
      });
    });
  });
}

/** Like runProcess but throws a readable error unless the program exited 0 in time. */
export async function runOk(cmd, args, opts = {}) {
  const r = await runProcess(cmd, args, opts);
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.timedOut) throw new Error(`${cmd} ${args.join(" ")}: killed after ${opts.timeoutMs ?? 60_000} ms`);
  if (r.code !== 0) {
    const tail = String(r.stderr).trim().split("\n").slice(-15).join("\n");
    throw new Error(`${cmd} ${args.join(" ")}: exit ${r.code ?? r.signal}\n${tail}`);
  }
  return r;
}

/** Keeps `fn` from running longer than ms (a hung await becomes a failure). */
export function withTimeout(promise, ms, what) {
  let timer;
  const bound = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result after ${ms} ms`)), ms);
  });
  return Promise.race([promise, bound]).finally(() => clearTimeout(timer));
}

function cleanup() {
  for (const c of children) killTree(c);
  children.clear();
  if (process.env.SOFTROCE_KEEP_TMP === "1") {
    for (const d of tempDirs) console.log(`  (kept ${d})`);
  } else {
    for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  }
  tempDirs.length = 0;
}

process.on("exit", cleanup);
// Results so far, so a suite stopped by the runner still reports what ran.
const results = [];
let current;
/** why the running test was run again (rerun()), kept with its result */
let currentReruns = [];

/**
 * The running test is being run again, for `reason` (the interop guard: the guest's NIC stopped and
 * the test runs on a new guest). Its result carries the reasons, and the runner's summary names it,
 * so that a pass after a rerun shows without reading the log.
 */
export function rerun(reason) {
  currentReruns.push(reason);
}

/** The running test's reruns so far, taken off it (a test of the rerun itself, whose reruns are its subject). */
export function takeReruns() {
  return currentReruns.splice(0);
}
let suiteName = basename(process.argv[1] ?? "suite").replace(/\.sys\.mjs$/, "");

function writeResult() {
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  if (process.env.SOFTROCE_SUITE_RESULT) {
    writeFileSync(process.env.SOFTROCE_SUITE_RESULT, JSON.stringify({ suite: suiteName, passed, failed, tests: results }, null, 2));
  }
  return { passed, failed };
}

for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    if (current !== undefined) {
      console.log(`  ${RED}FAIL${RESET} ${current} (stopped by ${sig})`);
      results.push({ name: current, ok: false, error: `stopped by ${sig} while running`, ms: 0 });
    }
    writeResult();
    cleanup();
    process.exit(130);
  });
}

function firstLines(e) {
  const text = e instanceof Error ? (e.stack ?? e.message) : String(e);
  return text.split("\n").slice(0, 25).map((l) => `      ${l}`).join("\n");
}

/**
 * Runs the registered tests in order (each bounded by opts.testTimeoutMs,
 * default 5 min), prints results, writes the result file and exits 0 only if
 * every test passed and at least one ran.
 */
export async function run(opts = {}) {
  if (opts.name) suiteName = opts.name;
  const testTimeoutMs = opts.testTimeoutMs ?? 300_000;
  if (missingTools.length > 0) {
    for (const msg of missingTools) {
      console.log(`  ${RED}FAIL${RESET} tools: ${msg}`);
      results.push({ name: "tools", ok: false, error: msg, ms: 0 });
    }
  } else {
    for (const t of tests) {
      current = t.name;
      currentReruns = [];
      const t0 = performance.now();
      const reruns = () => (currentReruns.length ? { reruns: currentReruns } : {});
      try {
        await withTimeout(Promise.resolve().then(t.fn), testTimeoutMs, t.name);
        const ms = Math.round(performance.now() - t0);
        console.log(`  ${GREEN}pass${RESET} ${t.name} (${ms} ms${currentReruns.length ? `, after ${currentReruns.length} rerun` : ""})`);
        results.push({ name: t.name, ok: true, ms, ...reruns() });
      } catch (e) {
        const ms = Math.round(performance.now() - t0);
        console.log(`  ${RED}FAIL${RESET} ${t.name} (${ms} ms)\n${firstLines(e)}`);
        results.push({ name: t.name, ok: false, error: String(e instanceof Error ? e.message : e).slice(0, 2000), ms, ...reruns() });
      }
    }
  }
  current = undefined;
  const { passed, failed } = writeResult();
  console.log(`  ${suiteName}: ${passed} passed, ${failed} failed`);
  cleanup();
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}

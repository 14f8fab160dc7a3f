#!/usr/bin/env node
// The system-test runner: runs every test/system/*.sys.mjs as its own node
// process (sequentially, each bounded in time), prints a per-suite summary and
// "N passed, N failed", and writes {passed, failed, suites} as JSON to
// $SOFTROCE_SYSTEM_SUMMARY (default test/.out/system-summary.json).
// A suite that crashes, times out or runs no test counts as failed.
// Usage: node test/system/run.mjs [name-filter ...] — a filter that is a suite's whole name runs that
// suite (`interop` is interop.sys.mjs alone); any other filter runs the suites whose names contain it.
// A suite may raise its time bound with a line `// system-suite-timeout: <seconds>`.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "../..");
const DEFAULT_TIMEOUT_S = Number(process.env.SOFTROCE_SUITE_TIMEOUT_S ?? 600);
const summaryPath = resolve(process.env.SOFTROCE_SYSTEM_SUMMARY ?? join(ROOT, "test/.out/system-summary.json"));

const filters = process.argv.slice(2);
const all = readdirSync(HERE).filter((f) => f.endsWith(".sys.mjs"));
const files = all
  .filter((f) => filters.length === 0 || filters.some((p) => (all.includes(`${p}.sys.mjs`) ? f === `${p}.sys.mjs` : f.includes(p))))
  .sort();

function suiteTimeoutS(file) {
  const m = /^\/\/ system-suite-timeout: (\d+)\s*$/m.exec(readFileSync(file, "utf8"));
  return m ? Number(m[1]) : DEFAULT_TIMEOUT_S;
}

function runSuite(file, resultPath, timeoutS) {
  return new Promise((done) => {
    const child = spawn(process.execPath, [file], {
      cwd: ROOT,
      env: { ...process.env, SOFTROCE_SUITE_RESULT: resultPath },
      stdio: ["ignore", "inherit", "inherit"],
      detached: true, // own process group: a timeout kills the suite and its children
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {}
      setTimeout(() => {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {}
      }, 5000).unref();
    }, timeoutS * 1000);
    child.on("error", (e) => {
      clearTimeout(timer);
      done({ code: null, signal: null, timedOut, error: e.message });
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      // Kill anything the suite left running in its group.
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
      done({ code, signal, timedOut });
    });
  });
}

const scratch = mkdtempSync(join(tmpdir(), "softroce-run-"));
const suites = [];
const t0 = Date.now();
for (const f of files) {
  const file = join(HERE, f);
  const name = f.replace(/\.sys\.mjs$/, "");
  const resultPath = join(scratch, `${name}.json`);
  const timeoutS = suiteTimeoutS(file);
  console.log(`\n# ${relative(ROOT, file)}`);
  const started = Date.now();
  const r = await runSuite(file, resultPath, timeoutS);
  const entry = { name, file: relative(ROOT, file), passed: 0, failed: 0, durationMs: Date.now() - started, exitCode: r.code, tests: [] };
  if (existsSync(resultPath)) {
    try {
      const res = JSON.parse(readFileSync(resultPath, "utf8"));
      entry.passed = res.passed;
      entry.failed = res.failed;
      entry.tests = res.tests;
    } catch (e) {
      entry.error = `unreadable result file: ${e.message}`;
    }
  }
  if (r.timedOut) entry.error = `killed after ${timeoutS} s`;
  else if (r.error) entry.error = `could not start: ${r.error}`;
  else if (!existsSync(resultPath)) entry.error = `exited ${r.code ?? r.signal} without a result`;
  else if (entry.passed + entry.failed === 0) entry.error = "ran no test";
  else if (r.code !== 0 && entry.failed === 0) entry.error = `exited ${r.code ?? r.signal} with every test passed`;
  if (entry.error) {
    // A suite that did not finish properly counts one extra failure.
    entry.failed += 1;
    entry.tests.push({ name: "(suite)", ok: false, error: entry.error, ms: entry.durationMs });
    console.log(`  FAIL (suite) ${entry.error}`);
  }
  suites.push(entry);
}
rmSync(scratch, { recursive: true, force: true });

const passed = suites.reduce((n, s) => n + s.passed, 0);
const failed = suites.reduce((n, s) => n + s.failed, 0) + (suites.length === 0 ? 1 : 0);
console.log("\n# system suites");
if (suites.length === 0) console.log(`  no suite matched in ${relative(ROOT, HERE)} (${filters.join(" ") || "*.sys.mjs"})`);
for (const s of suites) {
  const rerunTests = s.tests.filter((x) => x.reruns?.length);
  const reruns = rerunTests.length ? `, ${rerunTests.length} run again` : "";
  console.log(`  ${s.failed === 0 ? "ok  " : "FAIL"} ${s.name}: ${s.passed} passed, ${s.failed} failed${reruns} (${(s.durationMs / 1000).toFixed(1)} s)`);
  // The failing tests by name, with the first line of their error, and those run again with why: the
  // summary is what a short excerpt of a long log keeps.
  for (const t of s.tests.filter((x) => !x.ok)) console.log(`       failed: ${t.name}: ${String(t.error ?? "").split("\n")[0].slice(0, 200)}`);
  for (const t of rerunTests) console.log(`       run again: ${t.name}: ${t.reruns.join("; ").slice(0, 300)}`);
}
mkdirSync(dirname(summaryPath), { recursive: true });
writeFileSync(summaryPath, JSON.stringify({ passed, failed, durationMs: Date.now() - t0, suites }, null, 2));
console.log(`system tests: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);

// The interop suites' per-run network namespaces (test/system/lib/run-netns.mjs) against real
// namespaces, no guest: the run's own name, which leftovers the next run deletes (a dead or reused
// PID and an empty namespace) and which it keeps (a live run of the suite, something inside, another
// suite's or another shape of name), and interopGuest refusing to start on a namespace that exists
// already; each run's own directory, and what the next run does with a killed run's (stops its guest by
// its PID file, keeps the newest three). Must run as root (ip netns add). Its namespaces are
// `softroce-netns-check-*`, all deleted.
// system-suite-timeout: 120
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { requireTools, run, tempDir, test } from "./lib/harness.mjs";
import { interopGuest } from "./lib/interop-guest.mjs";
import { namespaces, runNetns } from "./lib/run-netns.mjs";

const PREFIX = "softroce-netns-check-";
const OTHER = "softroce-netns-check-cm-"; // another suite whose prefix extends this one's
const SCRIPT = "interop-netns.sys.mjs";
const made = new Set();
const kids = new Set();

requireTools([{ cmd: "ip", args: ["-V"], pkg: "iproute2" }]);
if (process.getuid?.() !== 0) {
  test("runs as root (ip netns add)", () => {
    throw new Error(`this suite must run as root (uid is ${process.getuid?.()})`);
  });
  await run();
}

function add(name) {
  const r = spawnSync("ip", ["netns", "add", name], { encoding: "utf8" });
  assert.equal(r.status, 0, `ip netns add ${name}: ${r.stderr}`);
  made.add(name);
  return name;
}

function cleanup() {
  for (const k of kids) if (k.exitCode === null && k.signalCode === null) k.kill("SIGKILL");
  for (const name of made) if (namespaces().includes(name)) spawnSync("ip", ["netns", "del", name], { stdio: "ignore" });
}
process.on("exit", cleanup);

/** A PID no process has now: a child's that has exited (and was reaped). */
function deadPid() {
  const r = spawnSync(process.execPath, ["-e", ""]);
  assert.equal(r.status, 0);
  assert.throws(() => process.kill(r.pid, 0), { code: "ESRCH" });
  return r.pid;
}

/** A long-lived child (killed at the end); `inNs` runs it inside that namespace. */
async function sleeper(args, inNs) {
  const argv = [process.execPath, "-e", "setTimeout(() => {}, 60_000)", ...args];
  const k = inNs ? spawn("ip", ["netns", "exec", inNs, ...argv], { stdio: "ignore" }) : spawn(argv[0], argv.slice(1), { stdio: "ignore" });
  kids.add(k);
  await new Promise((ok, fail) => {
    k.once("spawn", ok);
    k.once("error", fail);
  });
  if (inNs) {
    // `ip netns exec` execs node in the namespace: wait until the namespace lists it
    for (let i = 0; i < 100 && spawnSync("ip", ["netns", "pids", inNs], { encoding: "utf8" }).stdout.trim() === ""; i++) await new Promise((r) => setTimeout(r, 50));
  }
  return k;
}

test("the run's own name is <prefix><pid> unless the override names another; a bad prefix is refused", () => {
  assert.equal(runNetns({ prefix: PREFIX, script: SCRIPT }).name, `${PREFIX}${process.pid}`);
  assert.equal(runNetns({ prefix: PREFIX, override: "my-ns", script: SCRIPT }).name, "my-ns");
  assert.throws(() => runNetns({ prefix: "softroce-netns-check", script: SCRIPT }), /ending in a dash/);
  assert.throws(() => runNetns({ prefix: "a.b-", script: SCRIPT }), /lower-case letters/);
});

test("a dead run's empty namespace is stale and reaped; live runs', non-empty, own, other-suite and other-shape names stay", async () => {
  const mine = runNetns({ prefix: PREFIX, script: SCRIPT });
  const dead = add(`${PREFIX}${deadPid()}`);
  // a live PID that is not a run of this suite (its PID was reused): stale
  const reused = await sleeper([]);
  const reusedNs = add(`${PREFIX}${reused.pid}`);
  // a live run of this suite (its command line names the script): kept
  const live = await sleeper([join("/somewhere", SCRIPT)]);
  const liveNs = add(`${PREFIX}${live.pid}`);
  // a dead run whose namespace still has a process in it (a killed run's qemu): kept
  const busy = add(`${PREFIX}${deadPid()}`);
  const inside = await sleeper([], busy);
  const own = add(mine.name);
  const other = add(`${OTHER}${deadPid()}`);
  const shape = add(`${PREFIX}${deadPid()}x`);
  assert.deepEqual(mine.stale().sort(), [dead, reusedNs].sort());
  assert.equal(mine.exists(), true);
  assert.deepEqual(mine.reapStale().sort(), [dead, reusedNs].sort());
  const after = namespaces();
  for (const gone of [dead, reusedNs]) assert.ok(!after.includes(gone), `${gone} still listed`);
  for (const kept of [liveNs, busy, own, other, shape]) assert.ok(after.includes(kept), `${kept} deleted`);
  // the process in `busy` ends (the next run stopped the killed run's qemu): now it is stale
  inside.kill("SIGKILL");
  await new Promise((r) => inside.once("exit", r));
  assert.deepEqual(mine.reapStale(), [busy]);
  // the other suite's namespace is its own runs' business
  assert.deepEqual(runNetns({ prefix: OTHER, script: "interop-netns-cm.sys.mjs" }).reapStale(), [other]);
  assert.ok(namespaces().includes(liveNs) && namespaces().includes(shape) && mine.exists());
});

test("interopGuest refuses to start when the run's namespace exists already, and leaves it alone", async () => {
  // named after this process: two runs of this suite at once must not take each other's
  const netns = runNetns({ prefix: PREFIX, override: `${PREFIX}taken-${process.pid}`, script: SCRIPT });
  add(netns.name);
  const G = interopGuest({ work: tempDir("netns"), netns });
  await assert.rejects(G.start(), new RegExp(`netns ${netns.name} exists before this run made it`));
  assert.equal(netns.exists(), true);
  assert.throws(() => interopGuest({ work: tempDir("netns") }), /give netns \(runNetns\) or ns/);
  assert.throws(() => interopGuest({ work: tempDir("netns"), netns, ns: "x" }), /one of them/);
});

test("each run has its own directory; the next run stops a killed run's guest and keeps the newest three dead runs' directories", async () => {
  const work = tempDir("runs");
  const netns = runNetns({ prefix: PREFIX, script: SCRIPT });
  const G = interopGuest({ work, netns });
  assert.equal(G.runDir, join(work, "runs", netns.name));
  assert.equal(G.env.INTEROP_RUN, G.runDir);
  // a killed run's "qemu" (a sleep whose command name is qemu-system-…) with its PID file in its run directory
  const fake = join(work, "qemu-system-x86_64");
  copyFileSync("/bin/sleep", fake);
  chmodSync(fake, 0o755);
  const qemu = spawn(fake, ["60"], { stdio: "ignore" });
  kids.add(qemu);
  await new Promise((ok, fail) => (qemu.once("spawn", ok), qemu.once("error", fail)));
  const dead = [];
  for (let i = 0; i < 5; i++) {
    const d = join(work, "runs", `${PREFIX}${deadPid()}`);
    mkdirSync(d, { recursive: true });
    utimesSync(d, 1000 + i, 1000 + i); // oldest first
    dead.push(d);
  }
  writeFileSync(join(dead[4], "qemu.pid"), String(qemu.pid));
  const live = await sleeper([join("/somewhere", SCRIPT)]);
  const kept = [join(work, "runs", `${PREFIX}${live.pid}`), join(work, "runs", `${OTHER}${deadPid()}`), G.runDir];
  for (const d of kept) mkdirSync(d, { recursive: true });
  G.reapDeadRuns();
  for (let i = 0; i < 100 && qemu.exitCode === null && qemu.signalCode === null; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(qemu.signalCode, "SIGTERM", "the killed run's guest was not stopped");
  const left = readdirSync(join(work, "runs")).map((n) => join(work, "runs", n)).sort();
  assert.deepEqual(left, [...dead.slice(2), ...kept].sort());
});

test("every namespace this suite made is deleted", () => {
  cleanup();
  const left = namespaces().filter((n) => made.has(n));
  assert.deepEqual(left, []);
});

await run();

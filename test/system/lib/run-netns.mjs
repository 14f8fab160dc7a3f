// A network namespace that is one run's own. Parallel runs of a suite on one machine must not share
// one, so its name is `<prefix><pid of the suite's process>` unless the suite's env override names
// another. A run deletes its namespace when it ends (interopGuest's stop and exit hook); a run
// killed outright (SIGKILL) cannot, so the next run deletes the namespaces such runs left behind:
// named `<prefix><digits>`, that PID no longer a process running this suite, nothing left in them.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { basename } from "node:path";

/** The names `ip netns list` prints (its first column). */
export function namespaces() {
  const r = spawnSync("ip", ["netns", "list"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ip netns list failed (${r.status ?? r.signal}): ${r.stderr ?? r.error?.message}`);
  return r.stdout.split("\n").map((l) => l.split(" ")[0]).filter(Boolean);
}

/** Whether `pid` is a live process whose command line names `script` (the suite file). */
function runsScript(pid, script) {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if (e.code === "ESRCH") return false;
    return true; // exists (EPERM): not ours to judge, leave it
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "latin1").split("\0").some((arg) => basename(arg) === script);
  } catch {
    return true; // cannot tell: count it as alive
  }
}

/**
 * The namespace of this run of the suite in file `script` (e.g. "interop.sys.mjs"): `override` if
 * given, else `${prefix}${process.pid}`. `prefix` must be no other suite's prefix followed by digits.
 */
export function runNetns({ prefix, override, script }) {
  if (!/^[a-z][a-z0-9-]*-$/.test(prefix)) throw new Error(`netns prefix ${JSON.stringify(prefix)}: lower-case letters, digits and dashes, ending in a dash`);
  const own = new RegExp(`^${prefix}(\\d+)$`);
  const name = override ?? `${prefix}${process.pid}`;
  return {
    name,
    /** Whether `ip netns list` lists this run's namespace. */
    exists: () => namespaces().includes(name),
    /** Namespaces that runs of this suite killed outright left behind: their PID no longer runs it and nothing is in them. */
    stale: () =>
      namespaces().filter((ns) => {
        const m = own.exec(ns);
        if (!m || ns === name || runsScript(Number(m[1]), script)) return false;
        const pids = spawnSync("ip", ["netns", "pids", ns], { encoding: "utf8" });
        return pids.status === 0 && pids.stdout.trim() === "";
      }),
    /** Whether `other` is the name a run of this suite would have, and that run no longer runs (its PID is gone or reused). */
    deadRun(other) {
      const m = own.exec(other);
      return m !== null && other !== name && !runsScript(Number(m[1]), script);
    },
    /** Deletes the stale namespaces; resolves their names. */
    reapStale() {
      const gone = [];
      for (const ns of this.stale()) {
        if (spawnSync("ip", ["netns", "del", ns], { stdio: "ignore" }).status === 0) gone.push(ns);
      }
      return gone;
    },
  };
}

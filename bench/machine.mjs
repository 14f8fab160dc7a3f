// The machine a bench ran on, in one line for its header: the CPUs, how an idle CPU waits (the
// cpuidle driver: a round trip that waits for a thread or a process to wake moves with it, by a
// third to a half on this project's 2-vCPU machine between "none" and "haltpoll";
// docs/PERFORMANCE.md), Node, and the load average.
import { readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";

function read(path) {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return undefined;
  }
}

/** e.g. "2 CPUs (AMD EPYC), cpuidle haltpoll, Node v20.20.2, load average 0.4 0.6 0.5" */
export function machineLine() {
  const c = cpus();
  const idle = read("/sys/devices/system/cpu/cpuidle/current_driver") ?? "unknown";
  return `${c.length} CPUs (${c[0]?.model.trim() ?? "?"}), cpuidle ${idle}, Node ${process.version}, load average ${loadavg().map((x) => x.toFixed(1)).join(" ")}`;
}

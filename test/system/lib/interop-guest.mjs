// The qemu guest of test/interop as the interop suites drive it: the tools it needs, the root
// check, its addresses, its work directory and namespace, shell text run inside it, `softroce`
// run in its namespace, and the stop that runs whatever way the suite's process ends.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { ROOT, requireTools, run, runOk, runProcess, test } from "./harness.mjs";
import { namespaces } from "./run-netns.mjs";

export const HOST4 = "192.0.2.1";
export const GUEST4 = "192.0.2.2";
export const HOST6 = "fd00:4791::1";
export const GUEST6 = "fd00:4791::2";
export const GUEST_SH = join(ROOT, "test/interop/guest.sh");
export const BUILD_SH = join(ROOT, "test/interop/build-guest.sh");

/** The Debian packages the guest's build and run need; the suite fails at once without root. */
export async function requireGuestTools() {
  requireTools([
    { cmd: "qemu-system-x86_64", pkg: "qemu-system-x86" },
    { cmd: "cpio", pkg: "cpio" },
    { cmd: "busybox", args: ["true"], pkg: "busybox-static" },
    { cmd: "depmod", args: ["--version"], pkg: "kmod" },
    { cmd: "zstd", pkg: "zstd" },
    { cmd: "ip", args: ["-V"], pkg: "iproute2" },
    { cmd: "tshark", pkg: "tshark" },
    { cmd: "apt-get", pkg: "apt" },
    { cmd: "dpkg-deb", pkg: "dpkg" },
  ]);
  if (process.getuid?.() !== 0) {
    // nothing else can run: the suite needs a network namespace, a tap device and qemu on it
    test("runs as root (network namespace, tap device, qemu on the tap)", () => {
      throw new Error(`the interop suite must run as root (uid is ${process.getuid?.()})`);
    });
    await run();
  }
}

/**
 * One suite's guest: `work` names its directory, `netns` (runNetns in run-netns.mjs) its namespace;
 * `cli` the softroce CLI it runs. qemu outlives the guest.sh that started it, so the guest is stopped
 * (by saved PIDs) and its namespace deleted on exit. A fixed name `ns` instead of `netns` (the
 * benchmark's) is one nothing else uses: start() deletes what a killed run left under it.
 */
export function interopGuest({ work, netns, ns: fixed, cli = join(ROOT, "dist/cli/softroce.js") }) {
  if (!netns === !fixed) throw new Error("interopGuest: give netns (runNetns) or ns (a fixed name), one of them");
  netns ??= { name: fixed, exists: () => namespaces().includes(fixed), reapStale: () => [], fixed: true };
  const ns = netns.name;
  const env = { ...process.env, INTEROP_WORK: work, INTEROP_NS: ns };
  let started = false;
  process.on("exit", () => {
    if (started) spawnSync(GUEST_SH, ["stop"], { env, stdio: "ignore", timeout: 20_000 });
  });
  return {
    env,
    cli,
    /** builds the image (or finds it up to date); resolves build-guest.sh's output */
    build: () => runOk(BUILD_SH, [], { env, timeoutMs: 900_000 }),
    /**
     * Deletes the namespaces killed runs left behind, checks this run's is not there yet, stops a
     * guest a killed run left in `work` (then its namespace is empty: deleted too), boots one.
     * Resolves guest.sh's output, `reaped` the stale namespaces deleted.
     */
    async start() {
      const reaped = netns.reapStale();
      if (!netns.fixed && netns.exists()) throw new Error(`netns ${ns} exists before this run made it (another run's, or left behind: ip netns del ${ns})`);
      spawnSync(GUEST_SH, ["stop"], { env, stdio: "ignore", timeout: 20_000 });
      reaped.push(...netns.reapStale());
      started = true;
      return Object.assign(await runOk(GUEST_SH, ["start"], { env, timeoutMs: 240_000 }), { reaped });
    },
    /** Stops the guest (qemu and tshark by their saved PIDs) and deletes the namespace; throws if it is still listed. */
    async stop() {
      const r = await runOk(GUEST_SH, ["stop"], { env, timeoutMs: 30_000 });
      started = false;
      if (netns.exists()) throw new Error(`netns ${ns} still listed by ip netns list after guest.sh stop`);
      return r;
    },
    captureStart: (file) => runOk(GUEST_SH, ["capture-start", file], { env, timeoutMs: 30_000 }),
    captureStop: () => runOk(GUEST_SH, ["capture-stop"], { env, timeoutMs: 30_000 }),
    /** Shell text run in the guest; resolves its output, throws on a non-zero status. */
    async exec(text, timeoutS = 60) {
      const r = await runProcess(GUEST_SH, ["exec", text, String(timeoutS)], { env, timeoutMs: (timeoutS + 10) * 1000 });
      if (r.code !== 0) throw new Error(`in the guest (exit ${r.code ?? r.signal}): ${text}\n${r.stdout}${r.stderr}`);
      return r.stdout;
    },
    /** `softroce <args>` inside the namespace. */
    softroce: (args, timeoutMs) => runProcess("ip", ["netns", "exec", ns, process.execPath, cli, ...args], { env, timeoutMs }),
  };
}

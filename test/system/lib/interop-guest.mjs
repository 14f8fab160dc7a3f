// The qemu guest of test/interop as the interop suites drive it: the tools it needs, the root
// check, its addresses, its work directory and namespace, shell text run inside it, `softroce`
// run in its namespace, and the stop that runs whatever way the suite's process ends.
import { spawnSync } from "node:child_process";
import { connect } from "node:net";
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { ROOT, requireTools, rerun, run, runOk, runProcess, test } from "./harness.mjs";
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
    { cmd: "nft", args: ["--version"], pkg: "nftables" },
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

/** iproute2's tc in the guest (busybox's applet has no clsact). */
const GUEST_TC = "/usr/sbin/tc";
/** RoCEv2 over IPv4 and IPv6 (UDP 4791) as tc's u32 matches it, for withGuestFilters. */
export const TC_ROCE4 = "protocol ip u32 match ip protocol 17 0xff match ip dport 4791 0xffff";
export const TC_ROCE6 = "protocol ipv6 u32 match ip6 protocol 17 0xff match ip6 dport 4791 0xffff";
/** Added to TC_ROCE4 and TC_ROCE6: the CM's MADs' mark (BTH destination QP 1; the IP header, 8 bytes of UDP, then BTH bytes 4..7). */
const TC_QP1 = (ipHeader) => `match u32 0x00000001 0x00ffffff at ${ipHeader + 8 + 4}`;
/** nft's name for the host side's drop rule (a table of its own in the run's namespace). */
const LOSS_TABLE = "softroce_loss";

/**
 * The guest kernel's line when its NIC's transmit queue has been stopped for 5 s: under QEMU's TCG the
 * virtio-net device has, rarely (in two of a dozen CI runs), stopped taking the guest's TX
 * ring for good — every later packet from the guest is lost, the control shell with them. Nothing of
 * ours runs in QEMU or the guest's driver, and nothing we send can stop a ring QEMU does not read.
 */
export const NIC_STALL = /NETDEV WATCHDOG: .*transmit queue \d+ timed out/;

/** Run directories of finished (dead) runs kept beside the live ones: their captures and serial logs. */
const KEEP_DEAD_RUNS = 3;

/**
 * One suite's guest: `work` names its directory (the guest image, built once and shared by the
 * suite's runs), `netns` (runNetns in run-netns.mjs) its namespace; `cli` the softroce CLI it runs.
 * Each run has a directory of its own, `runDir` = `<work>/runs/<namespace>` (guest.sh's PID files
 * and serial log, and the suite's captures), so parallel runs do not stop each other's guest or
 * write one file. qemu outlives the guest.sh that started it, so the guest is stopped (by saved
 * PIDs) and its namespace deleted on exit. A fixed name `ns` instead of `netns` is one nothing
 * else uses: start() deletes what a killed run left under it.
 */
export function interopGuest({ work, netns, ns: fixed, cli = join(ROOT, "dist/cli/softroce.js") }) {
  if (!netns === !fixed) throw new Error("interopGuest: give netns (runNetns) or ns (a fixed name), one of them");
  netns ??= { name: fixed, exists: () => namespaces().includes(fixed), reapStale: () => [], deadRun: () => false, fixed: true };
  const ns = netns.name;
  const runs = join(work, "runs");
  const runDir = join(runs, ns);
  const env = { ...process.env, INTEROP_WORK: work, INTEROP_RUN: runDir, INTEROP_NS: ns };
  let started = false;
  /** the capture running (captureStart's file and maxLen), and the parts earlier guests' captures left */
  let capture;
  const captureParts = [];
  let restarts = 0;
  const serialLog = join(runDir, "serial.log");
  process.on("exit", () => {
    if (started) spawnSync(GUEST_SH, ["stop"], { env, stdio: "ignore", timeout: 20_000 });
  });
  /**
   * The run directories killed runs of this suite left: their guests stopped (guest.sh stop by
   * their saved PIDs, which also deletes their namespaces), all but the newest KEEP_DEAD_RUNS
   * deleted. A fixed name's own directory is stopped like a dead run's (nothing else uses it).
   */
  const reapDeadRuns = () => {
    let names = [];
    try {
      names = readdirSync(runs);
    } catch {
      return;
    }
    const dead = names.filter((n) => netns.deadRun(n) || (netns.fixed && n === ns));
    for (const n of dead) {
      spawnSync(GUEST_SH, ["stop"], { env: { ...process.env, INTEROP_WORK: work, INTEROP_RUN: join(runs, n), INTEROP_NS: n }, stdio: "ignore", timeout: 20_000 });
    }
    const old = dead
      .filter((n) => n !== ns)
      .map((n) => ({ n, t: statSync(join(runs, n)).mtimeMs }))
      .sort((a, b) => b.t - a.t)
      .slice(KEEP_DEAD_RUNS);
    for (const { n } of old) rmSync(join(runs, n), { recursive: true, force: true });
  };
  return {
    env,
    cli,
    /** this run's own directory (captures, guest.sh's run files) */
    runDir,
    /** what start() does first: stops the guests killed runs left, prunes dead runs' directories */
    reapDeadRuns,
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
      reapDeadRuns();
      reaped.push(...netns.reapStale());
      mkdirSync(runDir, { recursive: true });
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
    async captureStart(file, maxLen) {
      const r = await runOk(GUEST_SH, ["capture-start", file, ...(maxLen ? [String(maxLen)] : [])], { env, timeoutMs: 30_000 });
      capture = { file, maxLen };
      return r;
    },
    /** Stops the capture; if the guest was restarted while it ran, the file holds every guest's packets, in order (mergecap -a). */
    async captureStop() {
      const r = await runOk(GUEST_SH, ["capture-stop"], { env, timeoutMs: 30_000 });
      if (capture && captureParts.length > 0) {
        const merged = `${capture.file}.merged`;
        await runOk("mergecap", ["-a", "-F", "pcap", "-w", merged, ...captureParts, ...(existsSync(capture.file) ? [capture.file] : [])], { timeoutMs: 60_000 });
        renameSync(merged, capture.file);
        for (const p of captureParts.splice(0)) rmSync(p, { force: true });
        r.stdout += `merged with the ${restarts === 1 ? "capture of the guest before the restart" : "captures of the guests before the restarts"}\n`;
      }
      capture = undefined;
      return r;
    },
    /** The guest kernel's first NIC_STALL line since this guest booted, or undefined. */
    nicStall() {
      let text = "";
      try {
        text = readFileSync(serialLog, "latin1");
      } catch {
        return undefined;
      }
      const line = text.split("\n").find((l) => NIC_STALL.test(l));
      // from the kernel's timestamp on: what shared the console's line before it is not the kernel's
      return line?.slice(Math.max(0, line.search(/\[\s*\d+\.\d+\]/))).trim();
    },
    /**
     * Shell text run by the shell on the guest's serial console (guest-init.sh), which does not go
     * through eth0: its output, or undefined when nothing answers within timeoutS (the guest's kernel
     * runs no more, or qemu does not). The markers are computed by the shell, so the console's echo of
     * the line sent is not taken for its output.
     */
    console(text, timeoutS = 10) {
      const n = Math.floor(Math.random() * 1e9);
      const between = new RegExp(`__B${n + 1}__\\r?\\n([^]*?)__E${n + 1}__`);
      return new Promise((resolve) => {
        const sock = connect(join(runDir, "serial.sock"));
        let out = "";
        const done = (v) => {
          clearTimeout(timer);
          sock.destroy();
          resolve(v);
        };
        const timer = setTimeout(() => done(undefined), timeoutS * 1000);
        sock.on("connect", () => sock.write(`echo __B$((${n} + 1))__; ${text}; echo __E$((${n} + 1))__\n`));
        sock.on("data", (d) => {
          out += d.toString("latin1");
          const m = between.exec(out);
          if (m) done(m[1].replace(/\r\n/g, "\n"));
        });
        sock.on("error", () => done(undefined));
      });
    },
    /** Whether the guest's control shell answers within timeoutS. */
    async answers(timeoutS = 10) {
      const r = await runProcess(GUEST_SH, ["exec", "echo answering", String(timeoutS)], { env, timeoutMs: (timeoutS + 10) * 1000 });
      return r.code === 0 && r.stdout.includes("answering");
    },
    /** how many times guarded() restarted the guest */
    get restarts() {
      return restarts;
    },
    /**
     * Stops this guest and boots another in a fresh namespace of the same name: the dead guest's
     * serial log kept as serial-<n>.log, a running capture carried on in a new file (merged at
     * captureStop).
     */
    async restart() {
      restarts += 1;
      const was = capture;
      if (was) {
        await runOk(GUEST_SH, ["capture-stop"], { env, timeoutMs: 30_000 });
        if (existsSync(was.file)) {
          const part = `${was.file}.part${restarts}`;
          renameSync(was.file, part);
          captureParts.push(part);
        }
      }
      await runOk(GUEST_SH, ["stop"], { env, timeoutMs: 30_000 });
      if (existsSync(serialLog)) renameSync(serialLog, join(runDir, `serial-${restarts}.log`));
      const r = await runOk(GUEST_SH, ["start"], { env, timeoutMs: 240_000 });
      if (was) await this.captureStart(was.file, was.maxLen);
      return r;
    },
    /**
     * fn, guarded against a guest that stopped: when fn throws and the guest does not answer over
     * its NIC (or its kernel said NIC_STALL), the guest is restarted, so the tests after this one
     * have one. If the NIC stalled — the kernel's watchdog line, or a kernel that still answers on
     * the serial console while nothing comes through eth0 — fn runs once more on the new guest,
     * saying so, with what the console said eth0 had seen: the test has not been run. A guest whose
     * kernel answers nowhere is this test's failure (our traffic may have done it): the error says
     * the guest was restarted, nothing is run again. A test that failed while the guest answers
     * fails as it did.
     */
    guarded(fn) {
      return async () => {
        try {
          return await fn();
        } catch (e) {
          if (!started) throw e;
          let stall = this.nicStall();
          if (!stall && (await this.answers())) throw e;
          if (!stall) {
            const seen = await this.console("cat /proc/uptime; grep eth0 /proc/net/dev");
            if (seen !== undefined) stall = `its kernel answers on the serial console, not over eth0; uptime, then eth0's counters (/proc/net/dev): ${seen.trim().split("\n").map((l) => l.trim()).join(" | ")}`;
          }
          let booted;
          try {
            booted = await this.restart();
          } catch (re) {
            if (e instanceof Error) e.message += `\n(the guest stopped answering${stall ? ` ("${stall}")` : ""}; restarting it failed: ${re instanceof Error ? re.message : re})`;
            throw e;
          }
          const ready = /GUEST-READY after [\d.]+ s/.exec(booted.stdout)?.[0] ?? "booted";
          if (!stall) {
            if (e instanceof Error) e.message += `\n(the guest stopped answering, over its NIC and on its serial console, with no NIC watchdog line in its log: restarted for the tests after this one, ${ready}; its log is serial-${restarts}.log)`;
            throw e;
          }
          process.stdout.write(`      the guest's NIC stopped ("${stall}"), failing this test with: ${String(e instanceof Error ? e.message : e).split("\n")[0]}\n`);
          process.stdout.write(`      guest restarted (${ready}; the dead one's log is serial-${restarts}.log); the test runs again\n`);
          rerun(`on a new guest: its NIC stopped (${stall.slice(0, 300)})`);
          return await fn();
        }
      };
    },
    /** Shell text run in the guest; resolves its output, throws on a non-zero status. */
    async exec(text, timeoutS = 60) {
      const r = await runProcess(GUEST_SH, ["exec", text, String(timeoutS)], { env, timeoutMs: (timeoutS + 10) * 1000 });
      if (r.code !== 0) throw new Error(`in the guest (exit ${r.code ?? r.signal}): ${text}\n${r.stdout}${r.stderr}`);
      return r.stdout;
    },
    /**
     * Runs fn with tc filters on the guest's eth0, in a clsact qdisc deleted after: `dir` ingress or
     * egress, `modules` the actions' kernel modules, `filters` each a filter's words after
     * "filter add dev eth0 <dir>". Resolves [fn's result, `tc -s filter show` of dir after fn].
     */
    async withGuestFilters(dir, modules, filters, fn) {
      const tc = (words) => `${GUEST_TC} ${words}`;
      await this.exec([`for m in sch_ingress cls_u32 ${modules.join(" ")}; do modprobe $m || exit 1; done`, tc("qdisc add dev eth0 clsact"), ...filters.map((f) => tc(`filter add dev eth0 ${dir} ${f}`))].join(" && "));
      try {
        const result = await fn();
        return [result, await this.exec(tc(`-s filter show dev eth0 ${dir}`))];
      } finally {
        await this.exec(tc("qdisc del dev eth0 clsact"));
      }
    },
    /**
     * Runs fn on a lossy wire: one RoCE packet in `oneIn` each way is dropped at random on its way in
     * (the guest's eth0 ingress drops softroce's, tc's gact; nft's input hook in the namespace drops
     * rxe's), where neither sender sees it go; the CM's MADs (QP 1) pass, as their retries take
     * seconds. Resolves [fn's result, { toGuest, toHost }: the packets dropped each way].
     */
    async withLoss(oneIn, fn) {
      const nft = (...args) => runOk("ip", ["netns", "exec", ns, "nft", ...args]);
      const filters = [[TC_ROCE4, 20], [TC_ROCE6, 40]].flatMap(([roce, ipHeader], i) => [
        `prio ${2 * i + 1} ${roce} ${TC_QP1(ipHeader)} action ok`,
        `prio ${2 * i + 2} ${roce} action gact ok random netrand drop ${oneIn}`,
      ]);
      const [[result, toHost], tc] = await this.withGuestFilters("ingress", ["act_gact"], filters, async () => {
        try {
          await nft("add", "table", "inet", LOSS_TABLE);
          await nft("add", "chain", "inet", LOSS_TABLE, "in", "{ type filter hook input priority 0 ; }");
          // the UDP payload's BTH: its destination QP is bits 104..127 of the transport header (8 bytes of UDP, then BTH bytes 5..7)
          await nft("add", "rule", "inet", LOSS_TABLE, "in", "udp", "dport", "4791", "@th,104,24", "!=", "1", "numgen", "random", "mod", String(oneIn), "==", "0", "counter", "drop");
          const result = await fn();
          const m = /counter packets (\d+) /.exec((await nft("list", "table", "inet", LOSS_TABLE)).stdout);
          if (!m) throw new Error("no nft counter in the loss table");
          return [result, Number(m[1])];
        } finally {
          await runProcess("ip", ["netns", "exec", ns, "nft", "delete", "table", "inet", LOSS_TABLE], { timeoutMs: 10_000 });
        }
      });
      const toGuest = [...tc.matchAll(/\(dropped (\d+),/g)].reduce((n, m) => n + Number(m[1]), 0);
      return [result, { toGuest, toHost }];
    },
    /** `softroce <args>` inside the namespace. */
    softroce: (args, timeoutMs) => runProcess("ip", ["netns", "exec", ns, process.execPath, cli, ...args], { env, timeoutMs }),
  };
}

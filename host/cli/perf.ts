// softroce perf <test> --local: perftest's tests between two in-process devices on the simulated wire.
import { PERF_TESTS, PerfOptionError, formatPerfText, resolvePerfOptions, runPerf, type PerfOptions, type PerfResult, type PerfTest } from "../core/perf/index.js";
import { coreModule } from "../node/wasm-source.js";
import { PERF_TCP_PORT, PerfPeerError, rcOnly, runPerfUdp, servePerfUdp, type UdpPerfOptions } from "./perf-exchange.js";
import { PcapRecorder } from "../core/capture/index.js";
import { writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import { type FlagSpec, formatFlags, parseArgs, UsageError } from "./args.js";
import { type Command, InputError, type Io } from "./command.js";
import { fsReason } from "./decode.js";
import { runPerftestFor } from "./perftest-exchange.js";

const FLAGS: FlagSpec[] = [
  { name: "local", type: "boolean", help: "run both sides in this process, over the simulated wire" },
  { name: "address", type: "string", valueName: "addr", help: "two-process mode: local IPv4 or IPv6 address the device binds (its GID 0) [default: 127.0.0.1]" },
  { name: "port", type: "int", min: 0, max: 65535, valueName: "n", help: "two-process mode: UDP port of the device (0: any free one; the peer learns it) [default: 4791]" },
  { name: "tcp-port", short: "p", type: "int", min: 1, max: 65535, valueName: "port", help: `two-process mode: TCP port of the out-of-band exchange [default: ${PERF_TCP_PORT}]` },
  { name: "pcap", type: "string", valueName: "file", help: "two-process mode: write this side's datagrams to a pcap file (RoCEv2 over UDP)" },
  { name: "wait", type: "int", min: 1, max: 3600, valueName: "s", help: "two-process mode: seconds to wait for the peer and for progress [default: 60]" },
  { name: "connection", short: "c", type: "string", choices: ["RC", "UC", "UD"], default: "RC", help: "connection type: RC (every test), UC (send_bw, send_lat, write_bw, write_lat), UD (send_bw, send_lat; size <= mtu); UC/UD may lose or duplicate messages: counted, not failures" },
  { name: "size", short: "s", type: "int", min: 0, max: 1 << 24, valueName: "bytes", help: "message size [default: 65536 for *_bw, 2 for *_lat, 8 for atomic_bw]" },
  { name: "iters", short: "n", type: "int", min: 1, max: 10_000_000, valueName: "n", help: "messages per QP [default: 5000 for *_bw, 1000 for *_lat]" },
  { name: "mtu", short: "m", type: "int", valueName: "bytes", help: "path MTU: 256, 512, 1024, 2048 or 4096", default: 1024 },
  { name: "tx-depth", short: "t", type: "int", min: 1, max: 8192, valueName: "n", help: "work requests in flight per QP [default: 128 for *_bw, 1 for *_lat]" },
  { name: "qp", short: "q", type: "int", min: 1, max: 64, valueName: "n", help: "number of QPs", default: 1 },
  { name: "atomic_type", short: "A", type: "string", choices: ["FETCH_AND_ADD", "CMP_AND_SWAP"], help: "atomic_bw operation [default: FETCH_AND_ADD]" },
  { name: "loss", type: "string", valueName: "p", help: "probability that the wire loses a datagram, 0..1" },
  { name: "dup", type: "string", valueName: "p", help: "probability that the wire duplicates a datagram, 0..1" },
  { name: "reorder", type: "string", valueName: "p", help: "probability that the wire delays a datagram past later ones, 0..1" },
  { name: "corrupt", type: "string", valueName: "p", help: "probability that the wire flips a bit, 0..1" },
  { name: "delay", type: "string", valueName: "us", help: "one-way delay of the wire in µs" },
  { name: "rate", type: "string", valueName: "gbps", help: "link rate of the wire in Gb/s (default: unlimited)" },
  { name: "seed", type: "int", min: 0, max: 0xffffffff, valueName: "n", help: "seed of the wire's faults and of the verify pattern", default: 1 },
  { name: "timeout", type: "int", min: 0, max: 31, valueName: "n", help: "local ACK timeout, 4.096 µs × 2^n", default: 14 },
  { name: "retry", type: "int", min: 0, max: 7, valueName: "n", help: "retry count (7 is seven retries, as the IBA)", default: 7 },
  { name: "verify", type: "boolean", help: "check every message byte for byte (a seeded pattern carrying its sequence number)" },
  { name: "json", short: "j", type: "boolean", help: "print one JSON object instead of the perftest table" },
  { name: "perftest", type: "boolean", help: "two-process mode: speak perftest's own TCP exchange, so Debian 12's ib_write_bw / ib_read_bw is the peer (host/cli/perftest-exchange.ts)" },
  { name: "help", short: "h", type: "boolean", help: "show this help" },
];

const HELP = `usage: softroce perf <test> --local [flags]
       softroce perf <test> [flags]            server: waits for a client
       softroce perf <test> <server> [flags]   client: runs the test against the server

Tests: ${PERF_TESTS.join(", ")}.
--local runs the client and the server as two devices in this process, connected by the simulated
wire (faults are seeded, so a run is reproducible). Output: perftest 4.5's table (BW in MB/sec, MB
being 2^20 bytes, as perftest; latency in µs, half the round trip for send/write, the round trip for
read), or --json. Bandwidth and latency are measured on the wall clock when the wire has no faults,
on the wire's virtual clock otherwise; both are reported.
Without --local, two processes run the test over UDP (RoCEv2): the server (no host argument) binds
its device to --address/--port and listens on TCP --tcp-port; the client (with the server's host)
connects there. Out-of-band exchange (protocol softroce-perf/1): one JSON line each way over TCP; the
client sends its test, size, iterations, MTU, tx depth, QP count, atomic type, timeout, retry count,
GID, UDP port and per QP {qpn, psn, rkey, addr}; the server checks them (same test, valid options),
connects its QPs and answers with its GID, UDP port, path MTU and QPs (or {error}); after the run the
client sends {done} and the server answers with what it received. A path MTU above the port's active
MTU (from the interface MTU, as rxe: 1500 -> 1024, loopback -> 4096) is lowered to it, as perftest
does. Two devices on one host need two addresses (127.0.0.1 and 127.0.0.2) or --port 0 on one side.
Figures are on the wall clock; the wire's fault flags and --verify are for --local only.
Exit status: 0 every message completed once (and verified, with --verify); 1 a message was lost,
duplicated, corrupted or completed with an error; 2 usage error.

${formatFlags(FLAGS)}
`;

function probability(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(v) || v < 0 || v > 1) throw new UsageError(`--${name} wants a probability from 0 to 1, got '${raw}'`);
  return v;
}

function positive(name: string, raw: string | undefined, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(v) || v < 0 || v > max) throw new UsageError(`--${name} wants a number from 0 to ${max}, got '${raw}'`);
  return v;
}

/** The PerfOptions a command line asks for (throws UsageError). */
export interface PerfUdpArgs {
  server?: string;
  address: string;
  udpPort: number;
  tcpPort: number;
  pcap?: string;
  waitMs: number;
}

export function perfOptionsFromArgs(argv: string[]): { options: PerfOptions; json: boolean; help: boolean; udp?: PerfUdpArgs } {
  const { flags, positionals } = parseArgs(argv, FLAGS, 2);
  if (flags.help) return { options: { test: "write_bw" }, json: false, help: true };
  const [test, server] = positionals;
  if (test === undefined) throw new UsageError(`no test given (one of ${PERF_TESTS.join(", ")})`);
  if (!(PERF_TESTS as readonly string[]).includes(test)) throw new UsageError(`unknown test '${test}' (one of ${PERF_TESTS.join(", ")})`);
  const udpFlags = ["address", "port", "tcp-port", "pcap", "wait"].filter((k) => flags[k] !== undefined);
  let udp: { server?: string; address: string; udpPort: number; tcpPort: number; pcap?: string; waitMs: number } | undefined;
  if (flags.local) {
    if (server !== undefined) throw new UsageError(`--local runs both sides here; it takes no server address (got '${server}')`);
    if (udpFlags.length) throw new UsageError(`--${udpFlags[0]} is for the two-process mode over UDP, not --local`);
  } else {
    const local = ["loss", "dup", "reorder", "corrupt", "delay", "rate", "verify"].filter((k) => flags[k] !== undefined && flags[k] !== false);
    if (local.length) throw new UsageError(`--${local[0]} applies to the simulated wire of --local only`);
    const address = (flags.address as string | undefined) ?? "127.0.0.1";
    if (!isIP(address)) throw new UsageError(`--address wants an IPv4 or IPv6 address, got '${address}'`);
    if (server !== undefined && server.trim() === "") throw new UsageError("the server host is empty");
    udp = {
      server,
      address,
      udpPort: (flags.port as number | undefined) ?? 4791,
      tcpPort: (flags["tcp-port"] as number | undefined) ?? PERF_TCP_PORT,
      pcap: flags.pcap as string | undefined,
      waitMs: ((flags.wait as number | undefined) ?? 60) * 1000,
    };
    if (udp.pcap === "") throw new UsageError("--pcap wants a file name");
  }
  const mtu = flags.mtu as number;
  if (![256, 512, 1024, 2048, 4096].includes(mtu)) throw new UsageError(`--mtu must be 256, 512, 1024, 2048 or 4096, got ${mtu}`);
  const rate = positive("rate", flags.rate as string | undefined, 10_000);
  const options: PerfOptions = {
    test: test as PerfTest,
    connection: flags.connection as "RC" | "UC" | "UD",
    size: flags.size as number | undefined,
    iterations: flags.iters as number | undefined,
    mtu,
    txDepth: flags["tx-depth"] as number | undefined,
    qps: flags.qp as number,
    atomicType: flags.atomic_type as "FETCH_AND_ADD" | "CMP_AND_SWAP" | undefined,
    faults: {
      loss: probability("loss", flags.loss as string | undefined),
      dup: probability("dup", flags.dup as string | undefined),
      reorder: probability("reorder", flags.reorder as string | undefined),
      corrupt: probability("corrupt", flags.corrupt as string | undefined),
      delayUs: positive("delay", flags.delay as string | undefined, 10_000_000),
      rateBps: rate === undefined ? undefined : rate * 1e9,
    },
    seed: flags.seed as number,
    timeout: flags.timeout as number,
    retryCnt: flags.retry as number,
    verify: flags.verify === true,
  };
  if (options.atomicType !== undefined && options.test !== "atomic_bw") throw new UsageError("--atomic_type applies to atomic_bw only");
  if (udp) resolvePerfOptionsOrUsage(options);
  return { options, json: flags.json === true, help: false, udp };
}

function resolvePerfOptionsOrUsage(o: PerfOptions): void {
  try {
    resolvePerfOptions(o);
    rcOnly(o);
  } catch (e) {
    if (e instanceof PerfOptionError) throw new UsageError(e.message);
    throw e;
  }
}

async function runUdp(options: PerfOptions, u: PerfUdpArgs, json: boolean, io: Io): Promise<number> {
  const tty = process.stderr.isTTY === true;
  let shown = false;
  const recorder = u.pcap !== undefined ? new PcapRecorder() : undefined;
  const common: UdpPerfOptions = {
    address: u.address,
    udpPort: u.udpPort,
    tcpPort: u.tcpPort,
    timeoutMs: u.waitMs,
    pcap: recorder,
    onStatus: (line) => io.err(`softroce perf: ${line}\n`),
    onProgress(p) {
      shown = true;
      const line = `softroce perf: ${p.done}/${p.total} (${p.total ? Math.floor((100 * p.done) / p.total) : 0}%)`;
      io.err(tty ? `\r${line} ` : `${line}\n`);
    },
  };
  const savePcap = async () => {
    if (!recorder) return;
    try {
      await writeFile(u.pcap!, recorder.pcap());
    } catch (e) {
      throw new InputError(`cannot write ${u.pcap}: ${fsReason(e)}`);
    }
  };
  try {
    if (u.server === undefined) {
      const r = await servePerfUdp(options, common);
      await savePcap();
      io.err(`softroce perf: server done: ${r.test}, received ${r.received}, errors ${r.errors}\n`);
      return r.errors ? 1 : 0;
    }
    const result = await runPerfUdp(options, { ...common, server: u.server });
    if (shown && tty) io.err("\n");
    await savePcap();
    io.out(json ? JSON.stringify(result) + "\n" : formatPerfText(result));
    if (!result.ok) {
      io.err(`softroce perf: FAILED: lost ${result.lost}, duplicated ${result.duplicated}, corrupted ${result.corrupted}, errors ${result.errors}\n`);
      return 1;
    }
    return 0;
  } catch (e) {
    if (e instanceof PerfPeerError) {
      io.err(`softroce perf: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

export const perfCommand: Command = {
  name: "perf",
  summary: "perftest-style bandwidth and latency tests (two processes over UDP, or --local on the simulated wire)",
  async run(argv: string[], io: Io): Promise<number> {
    const { options, json, help, udp } = perfOptionsFromArgs(argv);
    if (help) {
      io.out(HELP);
      return 0;
    }
    if (udp && argv.includes("--perftest")) return runPerftestFor(options, udp, io);
    if (udp) return runUdp(options, udp, json, io);
    let mod: WebAssembly.Module;
    try {
      mod = await coreModule();
    } catch (e) {
      throw new InputError(`cannot load the device core build/softroce.wasm (run 'npm run build'): ${fsReason(e)}`);
    }
    let shown = false;
    const tty = process.stderr.isTTY === true;
    let result: PerfResult;
    try {
      result = await runPerf(mod, options, {
        progressEveryMs: 1000,
        onProgress(p) {
          if (p.wallMs < 1000) return;
          shown = true;
          const pct = p.total ? Math.floor((100 * p.done) / p.total) : 0;
          const line = `softroce perf: ${p.done}/${p.total} (${pct}%) after ${(p.wallMs / 1000).toFixed(1)} s, virtual ${(p.virtualUs / 1e6).toFixed(3)} s`;
          // one line rewritten in place on a terminal; a line per update in a file or pipe
          io.err(tty ? `\r${line} ` : `${line}\n`);
        },
      });
    } catch (e) {
      if (e instanceof PerfOptionError) throw new UsageError(e.message);
      throw e;
    }
    if (shown && tty) io.err("\n");
    io.out(json ? JSON.stringify(result) + "\n" : formatPerfText(result));
    if (!result.ok) {
      const c = result;
      io.err(
        `softroce perf: FAILED: lost ${c.lost}, duplicated ${c.duplicated}, corrupted ${c.corrupted}, errors ${c.errors}` +
          (c.verify ? `, verified ${c.verified}` : "") +
          "\n",
      );
      return 1;
    }
    return 0;
  },
};

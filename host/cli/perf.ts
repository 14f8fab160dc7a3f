// softroce perf <test> --local: perftest's tests between two in-process devices on the simulated wire.
import { PERF_TESTS, PerfOptionError, formatPerfText, runPerf, type PerfOptions, type PerfResult, type PerfTest } from "../core/perf/index.js";
import { coreModule } from "../node/wasm-source.js";
import { type FlagSpec, formatFlags, parseArgs, UsageError } from "./args.js";
import { type Command, InputError, type Io } from "./command.js";
import { fsReason } from "./decode.js";

const FLAGS: FlagSpec[] = [
  { name: "local", type: "boolean", help: "run both sides in this process, over the simulated wire (required for now)" },
  { name: "connection", short: "c", type: "string", choices: ["RC", "UC", "UD"], default: "RC", help: "connection type (UC and UD come with issue 5)" },
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
  { name: "help", short: "h", type: "boolean", help: "show this help" },
];

const HELP = `usage: softroce perf <test> --local [flags]

Tests: ${PERF_TESTS.join(", ")}.
--local runs the client and the server as two devices in this process, connected by the simulated
wire (faults are seeded, so a run is reproducible). Output: perftest 4.5's table (BW in MB/sec, MB
being 2^20 bytes, as perftest; latency in µs, half the round trip for send/write, the round trip for
read), or --json. Bandwidth and latency are measured on the wall clock when the wire has no faults,
on the wire's virtual clock otherwise; both are reported.
Two-process mode (softroce perf <test> [server] over UDP) comes with issue 6.
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
export function perfOptionsFromArgs(argv: string[]): { options: PerfOptions; json: boolean; help: boolean } {
  const { flags, positionals } = parseArgs(argv, FLAGS, 2);
  if (flags.help) return { options: { test: "write_bw" }, json: false, help: true };
  const [test, server] = positionals;
  if (test === undefined) throw new UsageError(`no test given (one of ${PERF_TESTS.join(", ")})`);
  if (!(PERF_TESTS as readonly string[]).includes(test)) throw new UsageError(`unknown test '${test}' (one of ${PERF_TESTS.join(", ")})`);
  if (!flags.local) {
    throw new UsageError(
      `two-process mode (softroce perf ${test}${server ? ` ${server}` : ""} over UDP) comes with issue 6; run both sides in this process with --local`,
    );
  }
  if (server !== undefined) throw new UsageError(`--local runs both sides here; it takes no server address (got '${server}')`);
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
  return { options, json: flags.json === true, help: false };
}

export const perfCommand: Command = {
  name: "perf",
  summary: "perftest-style bandwidth and latency tests (--local: two devices on the simulated wire)",
  async run(argv: string[], io: Io): Promise<number> {
    const { options, json, help } = perfOptionsFromArgs(argv);
    if (help) {
      io.out(HELP);
      return 0;
    }
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

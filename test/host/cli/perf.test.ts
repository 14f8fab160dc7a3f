// The perf engine (host/core/perf) and 'softroce perf --local' (host/cli/perf.ts).
import { describe, expect, it } from "vitest";
import { coreModule } from "../../../host/node/wasm-source.js";
import {
  atomicOperand, bwFigures, checkPattern, fillPattern, latFigures, PERF_RULE, patternSeq, PerfOptionError,
  perftestMtu, resolvePerfOptions, runPerf, testsFor, BW_HEADER, LAT_HEADER, type PerfProgress,
} from "../../../host/core/perf/index.js";
import { perfCommand } from "../../../host/cli/perf.js";
import { runCommand, type Io } from "../../../host/cli/command.js";

describe("verify pattern", () => {
  it("round-trips at any length and alignment, and carries the sequence number", () => {
    for (const len of [0, 1, 3, 4, 5, 7, 8, 63, 64, 1000, 4097]) {
      for (const shift of [0, 1, 2, 3]) {
        const buf = new Uint8Array(len + shift).subarray(shift);
        const k = { seed: 9, qp: 2, seq: 0x01020304 };
        fillPattern(buf, k);
        expect(checkPattern(buf, k), `len ${len} shift ${shift}`).toBe(-1);
        if (len >= 4) expect(patternSeq(buf)).toBe(0x01020304);
      }
    }
  });

  it("finds the first wrong byte, and tells messages, QPs and seeds apart", () => {
    const k = { seed: 1, qp: 0, seq: 5 };
    const buf = new Uint8Array(300);
    fillPattern(buf, k);
    buf[201] ^= 0x10;
    expect(checkPattern(buf, k)).toBe(201);
    buf[201] ^= 0x10;
    for (const other of [{ ...k, seq: 6 }, { ...k, qp: 1 }, { ...k, seed: 2 }]) expect(checkPattern(buf, other)).toBeGreaterThanOrEqual(0);
    // a byte from the same message at another offset is wrong too
    const moved = buf.slice();
    moved.copyWithin(100, 104, 108);
    expect(checkPattern(moved, k)).toBe(100);
  });

  it("derives distinct atomic operands", () => {
    const a = new Set([0, 1, 2, 3].map((s) => atomicOperand(1, 0, s)));
    expect(a.size).toBe(4);
  });
});

describe("figures", () => {
  it("latency statistics as perftest: median, percentiles at floor(n × p), halved round trips", () => {
    const samples = Array.from({ length: 1000 }, (_, i) => 2 * (i + 1)); // 2..2000 µs round trips
    const l = latFigures(samples, 2);
    expect(l).toMatchObject({ t_min: 1, t_max: 1000, t_typical: 501, p99: 991, p99_9: 1000 });
    expect(l.t_avg).toBeCloseTo(500.5, 9);
    expect(l.t_stdev).toBeCloseTo(Math.sqrt((1000 * 1000 - 1) / 12), 6);
  });

  it("bandwidth in MB/sec (2^20 B) and Mpps; peak is the best interval of 1/20 of the run or more", () => {
    // 8 messages of 1 MiB: 4 in the first 4 µs, 4 more in the next 400 µs
    const done = [1, 2, 3, 4, 104, 204, 304, 404];
    const b = bwFigures(1 << 20, 0, done, 3);
    expect(b.duration_us).toBe(404);
    expect(b.bw_avg_mbps).toBeCloseTo((8 / 404) * 1e6, 6);
    expect(b.msg_rate_mpps).toBeCloseTo(8 / 404, 9);
    // the burst of 3 messages in 3 µs is shorter than 1/20 of the run (20.2 µs): the best interval
    // of 3 or more completions spanning that much is 2 -> 104 µs (3 more messages in 102 µs)
    expect(b.bw_peak_mbps).toBeCloseTo((3 / 102) * 1e6, 6);
    expect(b.bw_peak_mbps).toBeGreaterThanOrEqual(b.bw_avg_mbps);
  });
});

describe("options", () => {
  it("fills perftest's defaults", () => {
    expect(resolvePerfOptions({ test: "write_bw" })).toMatchObject({ size: 65536, iterations: 5000, txDepth: 128, qps: 1, mtu: 1024, connection: "RC" });
    expect(resolvePerfOptions({ test: "send_lat" })).toMatchObject({ size: 2, iterations: 1000, txDepth: 1 });
    expect(resolvePerfOptions({ test: "atomic_bw" })).toMatchObject({ size: 8, atomicType: "FETCH_AND_ADD" });
  });

  it("perftest's set_mtu: without -m the active MTU; a -m above it lowered to it, with perftest's two lines", () => {
    expect(perftestMtu(undefined, 1024)).toEqual({ mtu: 1024, notice: [] });
    expect(perftestMtu(undefined, 4096)).toEqual({ mtu: 4096, notice: [] });
    expect(perftestMtu(512, 1024)).toEqual({ mtu: 512, notice: [] });
    expect(perftestMtu(1024, 1024)).toEqual({ mtu: 1024, notice: [] });
    // perftest prints port_attr.active_mtu with %d: the ibv_mtu enum value (IBV_MTU_1024 = 3)
    expect(perftestMtu(4096, 1024)).toEqual({ mtu: 1024, notice: ["Requested mtu is higher than active mtu ", "Changing to active mtu - 3"] });
    expect(perftestMtu(2048, 256).notice[1]).toBe("Changing to active mtu - 1");
  });

  it("rejects what it cannot run, with a clear message", () => {
    const bad: [object, RegExp][] = [
      [{ test: "read_bw", connection: "UC" }, /read_bw does not run on UC \(UC supports send_bw, write_bw, send_lat, write_lat\)/],
      [{ test: "write_bw", connection: "UD" }, /write_bw does not run on UD/],
      [{ test: "send_bw", connection: "UD", size: 2048 }, /UD messages must fit the MTU: size 2048 > mtu 1024/],
      [{ test: "nope_bw" }, /unknown test 'nope_bw'/],
      [{ test: "write_bw", mtu: 1500 }, /mtu must be one of 256, 512, 1024, 2048, 4096/],
      [{ test: "write_bw", faults: { loss: 1.5 } }, /loss must be a probability/],
      [{ test: "write_bw", faults: { corrupt: -0.1 } }, /corrupt must be a probability/],
      [{ test: "atomic_bw", size: 16 }, /size must be 8/],
      [{ test: "write_lat", size: 0 }, /write_lat needs size >= 1/],
      [{ test: "send_lat", txDepth: 4 }, /tx depth must be 1/],
      [{ test: "send_lat", qps: 2 }, /qps must be 1/],
      [{ test: "write_bw", iterations: 0 }, /iterations must be from 1/],
      [{ test: "write_bw", iterations: 4_000_000, qps: 4 }, /iterations × qps must be at most 10000000/],
      [{ test: "write_bw", size: 1 << 24, txDepth: 128, qps: 4, verify: true }, /size × tx depth \(--verify keeps every message in flight apart\) × qps needs 8589934592 bytes of MR per device/],
      [{ test: "write_bw", size: 1 << 24, qps: 40 }, /size × qps needs 671088640 bytes of MR per device; the limit is 536870912/],
      // perftest's MAX_TX
      [{ test: "write_bw", txDepth: 15001 }, /tx depth must be from 1 to 15000, got 15001/],
      // perftest's MAX_QP_NUM
      [{ test: "write_bw", qps: 16385, txDepth: 1 }, /qps must be from 1 to 16384, got 16385/],
      [{ test: "write_bw", mrPerQp: "yes" }, /mr per qp must be true or false/],
      // perftest's send CQ holds tx depth × qps CQEs; past the device's max_cqe (rxe's 32767) it cannot be created
      [{ test: "write_bw", qps: 256 }, /qps × tx depth must be at most 32767 \(one CQ holds every QP's completions; the device's max_cqe\), got 32768/],
    ];
    for (const [o, msg] of bad) expect(() => resolvePerfOptions(o as never), JSON.stringify(o)).toThrow(msg);
    // up to max_cqe, as far as perftest goes on rxe
    expect(resolvePerfOptions({ test: "write_bw", qps: 255 })).toMatchObject({ qps: 255, txDepth: 128 });
    expect(resolvePerfOptions({ test: "write_bw", qps: 256, txDepth: 127 })).toMatchObject({ qps: 256, txDepth: 127 });
    // perftest's tx depth is at most -n (force_dependecies), and the CQ limit applies to what is left
    expect(resolvePerfOptions({ test: "write_bw", iterations: 20 })).toMatchObject({ iterations: 20, txDepth: 20 });
    expect(resolvePerfOptions({ test: "write_bw", iterations: 100, qps: 256 })).toMatchObject({ qps: 256, txDepth: 100 });
    expect(() => resolvePerfOptions({ test: "write_bw", mtu: 7 })).toThrow(PerfOptionError);
  });

  it("runs each test on the connections perftest runs it on, and takes a UD message down to the MTU only when asked", () => {
    expect(testsFor("RC")).toHaveLength(8);
    expect(testsFor("UC")).toEqual(["send_bw", "write_bw", "send_lat", "write_lat"]);
    expect(testsFor("UD")).toEqual(["send_bw", "send_lat"]);
    expect(testsFor("XRC" as never)).toEqual([]);
    for (const c of ["RC", "UC", "UD"] as const) {
      for (const t of testsFor(c)) expect(resolvePerfOptions({ test: t, connection: c, size: 8 }).test).toBe(t);
    }
    expect(resolvePerfOptions({ test: "send_bw", connection: "UD", size: 65536, mtu: 2048, udSizeToMtu: true })).toMatchObject({ size: 2048, mtu: 2048 });
    expect(resolvePerfOptions({ test: "send_bw", connection: "UD", size: 512, mtu: 2048, udSizeToMtu: true }).size).toBe(512);
    expect(resolvePerfOptions({ test: "send_bw", connection: "RC", size: 65536, udSizeToMtu: true }).size).toBe(65536);
    expect(() => resolvePerfOptions({ test: "send_bw", connection: "UD", size: 65536, mtu: 2048 })).toThrow(/size 65536 > mtu 2048/);
  });
});

describe("runPerf on the simulated wire", () => {
  const tests = [
    ["send_bw", 1000],
    ["write_bw", 3000],
    ["read_bw", 2500],
    ["atomic_bw", 8],
    ["send_lat", 100],
    ["write_lat", 1500],
    ["read_lat", 3],
    ["atomic_lat", 8],
  ] as const;
  for (const [test, size] of tests) {
    it(`${test}: every message verified, nothing lost`, async () => {
      const bw = test.endsWith("_bw");
      const r = await runPerf(await coreModule(), { test, size, iterations: bw ? 60 : 20, qps: bw ? 2 : 1, txDepth: bw ? 8 : 1, mtu: 1024, verify: true });
      const messages = bw ? 120 : test === "read_lat" || test === "atomic_lat" ? 20 : 40;
      expect(r).toMatchObject({ ok: true, verified: messages, lost: 0, duplicated: 0, corrupted: 0, errors: 0, clock: "wall", retransmissions: 0 });
      if (bw) expect(r.bw_avg_mbps! > 0 && r.msg_rate_mpps! > 0 && r.bw_peak_mbps! >= r.bw_avg_mbps! * 0.999).toBe(true);
      else expect(r.t_min! > 0 && r.t_max! >= r.t_typical! && r.t_typical! >= r.t_min!).toBe(true);
      expect(r.sim).toBeNull(); // a perfect wire with no delay takes no virtual time
    });
  }

  it("a send CQ past the old 16384 CQEs: 200 QPs at the default tx depth (25,600 in flight) open and run", async () => {
    const r = await runPerf(await coreModule(), { test: "write_bw", size: 64, iterations: 3, qps: 200, mtu: 1024, verify: true });
    expect(r).toMatchObject({ ok: true, verified: 600, lost: 0, duplicated: 0, corrupted: 0, errors: 0 });
  });

  it("perftest's deepest send queue: 15000 WRs in flight on one QP (the device's max_qp_wr is 16384)", async () => {
    const r = await runPerf(await coreModule(), { test: "write_bw", size: 8, iterations: 15000, txDepth: 15000, mtu: 1024, verify: true });
    expect(r).toMatchObject({ ok: true, verified: 15000, tx_depth: 15000 });
  });

  it("CMP_AND_SWAP chains verify too", async () => {
    const r = await runPerf(await coreModule(), { test: "atomic_bw", atomicType: "CMP_AND_SWAP", iterations: 50, txDepth: 4, verify: true });
    expect(r).toMatchObject({ ok: true, verified: 50 });
    const lat = await runPerf(await coreModule(), { test: "atomic_lat", atomicType: "CMP_AND_SWAP", iterations: 30, verify: true });
    expect(lat).toMatchObject({ ok: true, verified: 30, messages: 30 });
  });

  it("atomic_lat under loss and duplication: each atomic done once (the responder replays a duplicate's result), every result verified", async () => {
    for (const atomicType of ["FETCH_AND_ADD", "CMP_AND_SWAP"] as const) {
      const r = await runPerf(await coreModule(), {
        test: "atomic_lat", atomicType, iterations: 200, verify: true, seed: 5, timeout: 5, faults: { loss: 0.05, dup: 0.05, delayUs: 3 },
      });
      expect(r, atomicType).toMatchObject({ ok: true, verified: 200, lost: 0, duplicated: 0, corrupted: 0, errors: 0, clock: "virtual" });
      expect(r.retransmissions + r.wire.duplicated, atomicType).toBeGreaterThan(0);
    }
  });

  it("under loss, dup, reorder and corruption: still verified, figures on the virtual clock, retransmissions counted", async () => {
    const r = await runPerf(await coreModule(), {
      test: "write_bw", size: 4096, iterations: 100, txDepth: 8, mtu: 1024, verify: true, seed: 3, timeout: 5,
      faults: { loss: 0.05, dup: 0.02, reorder: 0.02, corrupt: 0.01, delayUs: 5, rateBps: 10e9 },
    });
    expect(r).toMatchObject({ ok: true, verified: 100, lost: 0, clock: "virtual" });
    expect(r.retransmissions).toBeGreaterThan(0);
    expect(r.wire.lost).toBeGreaterThan(0);
    expect(r.sim).not.toBeNull();
    expect(r.bw_avg_mbps).toBe((r.sim as { bw_avg_mbps: number }).bw_avg_mbps);
    // the same seed gives the same run
    const again = await runPerf(await coreModule(), {
      test: "write_bw", size: 4096, iterations: 100, txDepth: 8, mtu: 1024, verify: true, seed: 3, timeout: 5,
      faults: { loss: 0.05, dup: 0.02, reorder: 0.02, corrupt: 0.01, delayUs: 5, rateBps: 10e9 },
    });
    expect([again.retransmissions, again.packets_sent, again.virtual_us]).toEqual([r.retransmissions, r.packets_sent, r.virtual_us]);
  });

  it("reports failure when retries run out (errors, lost, not ok)", async () => {
    const r = await runPerf(await coreModule(), { test: "write_bw", size: 1024, iterations: 20, txDepth: 4, retryCnt: 0, timeout: 1, faults: { loss: 0.6 }, seed: 1 });
    expect(r.ok).toBe(false);
    expect(r.error_statuses.RETRY_EXC_ERR).toBe(1);
    expect(r.errors).toBeGreaterThanOrEqual(1);
    expect(r.error_statuses.WR_FLUSH_ERR).toBe(r.errors - 1); // the WRs behind it are flushed
    expect(r.lost).toBeGreaterThan(0); // and what was never posted after the QP failed
  });

  it("can give the event loop a turn (the browser's UI) without changing the result", async () => {
    let turns = 0;
    const timer = setInterval(() => turns++, 0);
    const r = await runPerf(await coreModule(), { test: "write_bw", size: 64, iterations: 3000, txDepth: 16, verify: true }, { yieldEveryMs: 0 });
    clearInterval(timer);
    expect(r).toMatchObject({ ok: true, verified: 3000 });
    expect(turns).toBeGreaterThan(0);
  });

  it("calls onProgress", async () => {
    const seen: PerfProgress[] = [];
    await runPerf(await coreModule(), { test: "write_bw", size: 64, iterations: 3000, txDepth: 16 }, { onProgress: (p) => seen.push(p), progressEveryMs: 0 });
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((p) => p.total === 3000 && p.done <= 3000)).toBe(true);
  });
});

function io(): Io & { stdout: string; stderr: string } {
  const o = { stdout: "", stderr: "", out: (t: string) => void (o.stdout += t), err: (t: string) => void (o.stderr += t) };
  return o;
}

describe("softroce perf", () => {
  const run = async (...argv: string[]) => {
    const x = io();
    const code = await runCommand(perfCommand, argv, x);
    return { code, ...x };
  };

  it("prints perftest's bandwidth table", async () => {
    const r = await run("write_bw", "--local", "-s", "4096", "-n", "50", "-t", "16", "--verify");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(BW_HEADER);
    expect(r.stdout).toMatch(/\n 4096 {7}50 {15}\d+\.\d\d +\d+\.\d\d *\t\t   \d+\.\d{6}\n/); // perftest's REPORT_FMT, tabs included
    expect(r.stdout).toContain("verified 50 of 50  lost 0  duplicated 0  corrupted 0  errors 0");
    expect(r.stderr).toBe("");
  });

  it("prints perftest's latency table", async () => {
    const r = await run("read_lat", "--local", "-n", "20");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(LAT_HEADER);
  });

  it("-q: the table's #iterations counts every QP's messages (perftest 4.5's column); --json keeps -n per QP", async () => {
    const r = await run("write_bw", "--local", "-s", "1024", "-n", "10", "-q", "3", "-t", "4");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ 1024\s+30\s+\d+\.\d\d/m);
    const j = JSON.parse((await run("write_bw", "--local", "-s", "1024", "-n", "10", "-q", "3", "-t", "4", "--json")).stdout);
    expect(j).toMatchObject({ iterations: 10, qps: 3, messages: 30 });
  });

  it("--json: one object with the figures and counts", async () => {
    const r = await run("send_bw", "--local", "-s", "100", "-n", "30", "-q", "2", "--verify", "--json", "--loss", "0.02", "--delay", "3", "--seed", "5", "-u", "6");
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines.length).toBe(1);
    const j = JSON.parse(lines[0]!);
    expect(j).toMatchObject({ mode: "local", test: "send_bw", size_bytes: 100, iterations: 30, qps: 2, verified: 60, lost: 0, duplicated: 0, corrupted: 0, ok: true, clock: "virtual", seed: 5 });
    for (const k of ["bw_peak_MiBps", "bw_avg_MiBps", "msg_rate_Mpps", "retransmissions", "virtual_usec"]) expect(typeof j[k], k).toBe("number");
    expect(j.faults).toMatchObject({ loss: 0.02, delay_usec: 3 });
    expect(j.wire.packets_lost).toBeGreaterThanOrEqual(0);
  });

  it("exits 1 when messages fail", async () => {
    const r = await run("write_bw", "--local", "-s", "1024", "-n", "20", "-t", "4", "--retry", "0", "-u", "1", "--loss", "0.6");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^softroce perf: FAILED: lost \d+, duplicated 0, corrupted 0, errors \d+\n$/);
  });

  it("-b: both sides post; perftest's title and one row, the two directions summed; JSON has each way", async () => {
    for (const test of ["write_bw", "read_bw", "send_bw", "atomic_bw"]) {
      const size = test === "atomic_bw" ? [] : ["-s", "2048"];
      const t = await run(test, "--local", "-b", ...size, "-n", "40", "-t", "8", "-q", "2", "--verify");
      expect(t.code, test + t.stderr).toBe(0);
      // perftest's order: the verb, atomics' type, Bidirectional, BW
      expect(t.stdout).toMatch(/\n {20}(RDMA_Write|RDMA_Read|Send|Atomic FETCH_AND_ADD) Bidirectional BW Test\n/);
      // both directions verified: 40 messages × 2 QPs each way
      expect(t.stdout).toContain("verified 160 of 160  lost 0  duplicated 0  corrupted 0  errors 0");
      const j = JSON.parse((await run(test, "--local", "-b", ...size, "-n", "40", "-t", "8", "-q", "2", "--verify", "--json")).stdout);
      expect(j).toMatchObject({ test, bidirectional: true, messages: 160, verified: 160, ok: true });
      for (const k of ["bw_peak_MiBps", "bw_avg_MiBps", "msg_rate_Mpps"]) {
        expect(j.client_to_server[k], k).toBeGreaterThan(0);
        expect(j.server_to_client[k], k).toBeGreaterThan(0);
        // perftest's print_full_bw_report: this side's figure plus the remote's
        expect(j[k], k).toBeCloseTo(j.client_to_server[k] + j.server_to_client[k], 6);
      }
    }
    const uni = JSON.parse((await run("write_bw", "--local", "-s", "2048", "-n", "40", "--json")).stdout);
    expect(uni.bidirectional).toBeUndefined();
    expect(uni.messages).toBe(40);
  });

  it("-b under loss on RC: retransmitted in both directions, every message verified", async () => {
    const r = await runPerf(await coreModule(), { test: "write_bw", bidirectional: true, size: 4096, iterations: 60, txDepth: 8, mtu: 1024, verify: true, seed: 4, timeout: 5, faults: { loss: 0.03, delayUs: 2 } });
    expect(r).toMatchObject({ ok: true, verified: 120, messages: 120, lost: 0, corrupted: 0 });
    expect(r.retransmissions).toBeGreaterThan(0);
    expect(r.each_way).toHaveLength(2);
  });

  it("UC --verify over loss: reports verified of sent and the wire's losses, exit 1; without --verify the losses are no failure", async () => {
    const r = await run("send_bw", "--local", "-c", "UC", "-s", "2048", "-n", "400", "-t", "16", "--verify", "--loss", "0.02", "--seed", "3");
    expect(r.code).toBe(1);
    const m = /verified (\d+) of 400  lost (\d+) /.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(Number(m![1]) + Number(m![2])).toBe(400);
    expect(Number(m![2])).toBeGreaterThan(0);
    expect(r.stdout).toMatch(/wire: lost [1-9]\d* /);
    expect(r.stdout).toContain(`UC does not retransmit: lost and duplicated messages are counted, not errors; ${m![2]} of 400 messages not verified, so the run is not ok`);
    expect(r.stderr).toMatch(/^softroce perf: FAILED: lost \d+, duplicated 0, corrupted 0, errors 0, verified \d+ of 400\n$/);
    const j = JSON.parse((await run("write_bw", "-c", "UC", "--local", "-s", "2048", "-n", "400", "-t", "16", "--verify", "--loss", "0.02", "--seed", "3", "--json")).stdout);
    expect(j.ok).toBe(false);
    expect(j.lost).toBeGreaterThan(0);
    expect(j.verified + j.lost).toBe(400);
    expect(j.wire.packets_lost).toBeGreaterThan(0);
    const plain = await run("send_bw", "--local", "-c", "UC", "-s", "2048", "-n", "400", "-t", "16", "--loss", "0.02", "--seed", "3");
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/ lost [1-9]\d*  duplicated 0/);
  });

  it("validates its arguments (exit 2, one line)", async () => {
    const cases: [string[], RegExp][] = [
      [["write_bw", "--loss", "0.1"], /--loss applies to --local \(the simulated wire\) only/],
      [["write_bw", "10.0.0.5", "--verify"], /--verify applies to --local \(the simulated wire\) only/],
      [["write_bw", "--local", "--port", "0"], /--port is for the two-process mode over UDP, not --local/],
      [["send_lat", "--local", "--perftest", "-U"], /--perftest is a two-process mode \(perftest's exchange with a peer\); --local runs both sides here/],
      [["send_lat", "--local", "-R"], /-R\/--rdma_cm is a two-process mode/],
      [["write_bw", "--address", "localhost"], /--address wants an IPv4 or IPv6 address, got 'localhost'/],
      [["--local"], /no test given/],
      [["ping_bw", "--local"], /unknown test 'ping_bw'/],
      [["write_bw", "--local", "-c", "UD"], /write_bw does not run on UD \(UD supports send_bw, send_lat\)/],
      [["write_bw", "--local", "-c", "XRC"], /--connection must be one of RC, UC, UD/],
      [["write_bw", "--local", "-m", "1500"], /--mtu must be 256, 512, 1024, 2048 or 4096/],
      [["write_bw", "--local", "--loss", "1.2"], /--loss wants a probability from 0 to 1, got '1.2'/],
      [["write_bw", "--local", "--dup", "x"], /--dup wants a probability/],
      [["write_bw", "--local", "-s", "-1"], /--size must be at least 0/],
      [["write_bw", "--local", "-n", "0"], /--iters must be at least 1/],
      [["write_bw", "--local", "--frobnicate"], /unknown flag --frobnicate/],
      [["send_lat", "--local", "-t", "2"], /tx depth must be 1/],
      [["write_bw", "--local", "-A", "CMP_AND_SWAP"], /--atomic_type applies to atomic_bw and atomic_lat only/],
      [["atomic_lat", "--local", "-s", "16"], /atomic_lat moves 8 bytes per operation; size must be 8, got 16/],
      [["atomic_lat", "--local", "-a"], /-a\/--all: atomic_lat has one size, 8 bytes/],
      [["atomic_lat", "--local", "-t", "4"], /tx depth must be 1/],
    ];
    for (const [argv, msg] of cases) {
      const r = await run(...argv);
      expect(r.code, argv.join(" ")).toBe(2);
      expect(r.stderr, argv.join(" ")).toMatch(msg);
      expect(r.stderr.trim().split("\n").length).toBe(1);
      expect(r.stdout).toBe("");
    }
  });

  it("--help", async () => {
    const r = await run("--help");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: softroce perf <test> \[flags\] +server: waits for a client\n.*\n +softroce perf <test> --local/);
    expect(r.stdout).toContain("softroce-perf/1");
  });

  it("the text report names both clocks when the wire has faults", async () => {
    const r = await run("write_bw", "--local", "-s", "512", "-n", "20", "-t", "4", "--loss", "0.05", "--delay", "2", "--seed", "2", "-u", "5");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("\n (virtual clock of the simulated wire, which has faults); on the wall clock:\n");
  });

  it("--perftest refuses an atomic size other than 8 before opening anything, as perftest", async () => {
    const r = await run("atomic_lat", "--perftest", "--address", "127.0.44.1", "-s", "16");
    expect([r.code, r.stdout]).toEqual([2, ""]);
    expect(r.stderr).toMatch(/^softroce perf: atomic_lat moves 8 bytes .*\n$/);
  });

  it("an atomic test's title names the atomic type, as perftest's (Atomic FETCH_AND_ADD BW Test, -A CMP_AND_SWAP, Latency)", async () => {
    const fa = await run("atomic_bw", "--local", "-n", "20", "-t", "4");
    expect(fa.stdout).toContain(`${PERF_RULE}\n                    Atomic FETCH_AND_ADD BW Test\n`);
    const cs = await run("atomic_bw", "--local", "-n", "20", "-t", "4", "-A", "CMP_AND_SWAP");
    expect(cs.stdout).toContain("\n                    Atomic CMP_AND_SWAP BW Test\n");
    const lat = await run("atomic_lat", "--local", "-n", "20", "-A", "CMP_AND_SWAP");
    expect(lat.stdout).toContain("\n                    Atomic CMP_AND_SWAP Latency Test\n");
    // a READ's and an atomic's header: outstanding reads, no inline size; a row of 8-byte messages
    expect(lat.stdout).toContain(" Outstand reads  : 16\n");
    expect(lat.stdout).not.toContain("Max inline data");
    expect(lat.stdout).toMatch(/\n 8 +20 +\d+\.\d\d/);
    expect([cs.code, fa.code, lat.code]).toEqual([0, 0, 0]);
  });
});

// perftest's exchange as Debian 12's perftest speaks it: the key message of the write_bw-tcp
// capture parsed and formatted back byte for byte, the whole TCP conversation of that capture
// replayed against our client and server halves (sizes and order), a peer older than 5.70
// refused as perftest refuses it, and `softroce perf write_bw|read_bw --perftest` as two
// processes on 127.0.15.41 / .42; with several QPs, and against a peer out of step or gone (ours and
// perf's own exchange).
import net from "node:net";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { exits, freeTcpPort, tcpListening, useCli, until } from "../support/cli-process.js";
import {
  connectQp, ExactReader, exchangeSysData, formatKeyMsg, KEY_MSG_LEN, parseKeyMsg, PerftestExchangeError, perftestHeader, perftestPeak, plainQp, VERSION_LEN,
  type PerftestOptions, type QpCtx,
} from "../../../host/cli/perftest-exchange.js";
import { Mtu, QpType } from "../../../host/core/verbs/index.js";
import { parseGid } from "../../../host/core/net/index.js";
import { smallDevice } from "../support/verbs-helpers.js";
import { CM_KEY_MSG_LEN, formatCmKeyMsg, parseCmKeyMsg, PerftestCmError } from "../../../host/cli/perftest-rdmacm.js";
import { BW_HEADER, bwRow, type Connection, LAT_HEADER, PERF_RULE, type PerfTest } from "../../../host/core/perf/index.js";
import { readCaptureAll } from "../../../host/core/capture/pcap.js";
import { parseCmMad } from "../../../host/core/cm/index.js";

/** rxe's perftest logs (test/fixtures/captures/perftest/logs) */
const FIXTURES = fileURLToPath(new URL("../../fixtures/captures/perftest/logs", import.meta.url));

// write_bw-tcp.pcap, the client's first key message (108 bytes)
const KEY_HEX =
  "303030303a303030313a3030303031643a6234646131383a30303030316135633a303030303535643632383632393030303a" +
  "30303a30303a30303a30303a30303a30303a30303a30303a30303a30303a66663a66663a63303a30303a30323a30333a" +
  "30303030303030303a00";

describe("perftest key message", () => {
  it("the captured key message parses to its fields and formats back to the same 108 bytes", () => {
    const bytes = new Uint8Array(KEY_MSG_LEN);
    bytes.set(Buffer.from(KEY_HEX, "hex"));
    const d = parseKeyMsg(bytes);
    expect(d).toMatchObject({ lid: 0, outReads: 1, qpn: 0x1d, psn: 0xb4da18, rkey: 0x1a5c, vaddr: 0x55d628629000n, srqn: 0 });
    expect([...d.gid.subarray(10)]).toEqual([0xff, 0xff, 192, 0, 2, 3]);
    expect(formatKeyMsg(d)).toEqual(bytes);
  });

  it("anything else is refused with perftest's message", () => {
    expect(() => parseKeyMsg(new TextEncoder().encode("0000:0001:zz\0"))).toThrow(PerftestExchangeError);
    expect(() => parseKeyMsg(new Uint8Array(KEY_MSG_LEN))).toThrow(/Failed to parse message from peer/);
  });
});

describe("perftest -R key message (struct pingpong_dest, big-endian fields)", () => {
  it("lays out lid, out_reads, qpn, psn, rkey, vaddr at 24, the GID at 32, srqn at 48: 56 bytes; parses back", () => {
    const gid = Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 2]);
    const d = { lid: 0, outReads: 0x80, qpn: 0x11, psn: 0xabcdef, rkey: 0x1234, vaddr: 0x55d628629000n, gid, srqn: 0 };
    const b = formatCmKeyMsg(d);
    expect(b.length).toBe(CM_KEY_MSG_LEN);
    expect(Buffer.from(b).toString("hex")).toBe(
      "00000000" + "00000080" + "00000011" + "00abcdef" + "00001234" + "00000000" + "000055d628629000" + Buffer.from(gid).toString("hex") + "00000000" + "00000000",
    );
    expect(parseCmKeyMsg(b)).toEqual(d);
    expect(() => parseCmKeyMsg(new Uint8Array(16))).toThrow(PerftestCmError);
  });

  it("rxe's key message (write_bw-rdmacm.pcap frame 31, the client's) parses to the QP its log prints and formats back (padding and gid_index aside)", () => {
    const hex = "00000000000000010000001c00138e38000019150000000000005634db0c800000000000000000000000ffffc00002030000000000000001";
    const b = Uint8Array.from(Buffer.from(hex, "hex"));
    const d = parseCmKeyMsg(b);
    // write_bw-rdmacm.client.out: " local address: LID 0000 QPN 0x001c PSN 0x138e38", GID ::ffff:192.0.2.3
    expect(d).toMatchObject({ lid: 0, outReads: 1, qpn: 0x1c, psn: 0x138e38, rkey: 0x1915, vaddr: 0x5634db0c8000n });
    expect([...d.gid.subarray(10)]).toEqual([0xff, 0xff, 192, 0, 2, 3]);
    const back = formatCmKeyMsg(d);
    expect(Buffer.from(back.subarray(0, 52)).toString("hex")).toBe(hex.slice(0, 104));
  });
});

/** A connected pair of sockets on 127.0.15.43. */
async function socketPair(): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.15.43", r));
  const port = (server.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((r) => server.once("connection", r));
  const c = net.connect({ host: "127.0.15.43", port });
  const s = await accepted;
  server.close();
  return [c, s];
}

describe("perftest's report line", () => {
  it("is spaced as perftest's (the line of read_bw-tcp.client.out, from the same figures)", async () => {
    const linux = readFileSync(join(FIXTURES, "read_bw-tcp.client.out"), "utf8")
      .split("\n").find((l) => l.startsWith(" 4096 "))!;
    const [, size, iters, peak, avg, rate] = /^ (\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$/.exec(linux)!;
    expect(bwRow(Number(size), Number(iters), Number(peak), Number(avg), Number(rate))).toBe(linux);
  });

  it("pads the size to 7 as %-7lu (a longer one pushes the row right); in Gb/sec below 0.1 on average six decimals (REPORT_FMT_EXT)", () => {
    expect(bwRow(1234567890, 5, 1, 2, 3)).toBe(" 1234567890    5                1.00               2.00   \t\t   3.000000");
    expect(bwRow(8, 5, 0.01, 0.005, 0.0007, true)).toBe(" 8          5           0.010000            0.005000            0.000700");
    expect(bwRow(8, 5, 0.2, 0.15, 0.0007, true)).toBe(bwRow(8, 5, 0.2, 0.15, 0.0007));
  });
});

describe("perftest's header", () => {
  // each log's header as ours prints it for the same run (-s 4096 / 64 for latency, -n 5, MTU 1024); the
  // device's name and GID index are the machine's, and Debian's perftest is built with PCIe relaxed ordering
  const logs = readdirSync(FIXTURES).filter((f) => f.endsWith(".out"));
  it("has the 28 logs (7 tests, atomic_lat aside, × TCP and rdma_cm × client and server)", () => {
    expect(logs).toHaveLength(28);
  });
  for (const f of logs) {
    it(`${f}: line for line`, () => {
      const [, test, mode, side] = /^(\w+)-(tcp|rdmacm)\.(client|server)\.out$/.exec(f)!;
      const text = readFileSync(join(FIXTURES, f), "utf8");
      const title = text.search(/^ {20}\S/m);
      const linux = text.slice(text.lastIndexOf(PERF_RULE, title), text.indexOf(" local address:"))
        .replace("Device         : rxe0", "Device         : softroce0").replace("PCIe relax order: ON", "PCIe relax order: OFF").replace("GID index       : 1", "GID index       : 0");
      const t = test as PerfTest;
      const lat = t.endsWith("_lat");
      const o = {
        test: t, ...(side === "client" ? { server: "192.0.2.2" } : {}), tcpPort: 18515, address: "192.0.2.3", udpPort: 4791, timeoutMs: 1000,
        size: t.startsWith("atomic") ? 8 : lat ? 64 : 4096, iters: 5, txDepth: lat ? 1 : 5, rdmaCm: mode === "rdmacm",
        // what runPerftest takes without -o: the device's max_qp_rd_atom (rxe's is 128 too)
        outReads: 128,
      };
      expect(perftestHeader(o, side === "client", 1024)).toBe(linux);
    });
  }
});

describe("perftest's BW peak", () => {
  it("is the shortest time per message over any run i..j (post of i to completion of j), not the gap between two completions", () => {
    const MiB = 2 ** 20;
    // three posted at 0 complete together at 10 ms: 10/3 ms a message at best (a completion-gap rule would say infinite)
    expect(perftestPeak(MiB, Float64Array.from([0, 0, 0]), Float64Array.from([10, 10, 10]))).toBeCloseTo(300, 6);
    // one message every 2 ms, but messages 2..3 took 1 ms each from their post
    expect(perftestPeak(MiB, Float64Array.from([0, 2, 4, 5]), Float64Array.from([2, 4, 5, 6]))).toBeCloseTo(1000, 6);
    expect(perftestPeak(MiB, new Float64Array(0), new Float64Array(0))).toBe(0);
    // with CQ moderation m a run ends only where a completion was seen (every m-th message, and the
    // last); with a post list of l it starts only at a list's post (every l-th message)
    const posted = Float64Array.from([0, 1, 2, 3, 4]);
    const completed = Float64Array.from([5, 2.2, 2.5, 3.6, 8]);
    expect(perftestPeak(MiB, posted, completed)).toBeCloseTo(1000 / 0.5, 6); // 2..2
    expect(perftestPeak(MiB, posted, completed, 2)).toBeCloseTo(1000 / 0.6, 6); // 3..3 (2 is not seen)
    expect(perftestPeak(MiB, posted, completed, 2, 2)).toBeCloseTo(1000 / 0.8, 6); // 2..3 (3 starts no list)
    expect(perftestPeak(MiB, posted, completed, 4, 4)).toBeCloseTo(1000 / 0.9, 6); // 0..3

  });
});

describe("perftest steps 1-4", () => {
  it("version, cycle buffer, cache line, MTU: the sizes perftest reads, the smaller MTU wins", async () => {
    const [c, s] = await socketPair();
    const seen: number[] = [];
    s.on("data", (d) => seen.push(d.length));
    const [a, b] = await Promise.all([exchangeSysData(new ExactReader(c), true, 3), exchangeSysData(new ExactReader(s), false, 2)]);
    expect(a).toEqual({ version: "6.06", mtu: 2 });
    expect(b).toEqual({ version: "6.06", mtu: 2 });
    expect(seen.reduce((x, y) => x + y, 0)).toBe(VERSION_LEN + 4 + 4 + 2);
    c.destroy();
    s.destroy();
  });

  it("a peer older than 5.70 is refused as perftest refuses it", async () => {
    const [c, s] = await socketPair();
    const old = new Uint8Array(VERSION_LEN);
    old.set(new TextEncoder().encode("5.60"));
    s.write(old);
    await expect(exchangeSysData(new ExactReader(c), true, 3)).rejects.toThrow(/not compatible with versions older than 5.70/);
    c.destroy();
    s.destroy();
  });
});

const { start } = useCli("cli-test-perftest");

/** What perftest says on stderr about a device it does not know when the test's inline size is not its default (READ, atomics). */
const INLINE_NOTICE = "Device not recognized to implement inline feature. Disabling it\n";
const inlineNotice = (test: string) => (/^(read|atomic)_/.test(test) ? INLINE_NOTICE : "");

/** Each command line (a test, then flags; run as a client) exits 2 before it connects, with the message given. */
async function refusals(cases: [string[], RegExp][]): Promise<void> {
  for (const [args, msg] of cases) {
    const r = start("perf", args[0]!, "127.0.15.41", "--address", "127.0.15.42", ...args.slice(1));
    expect(await r.done, args.join(" ")).toBe(2);
    expect(r.stderr, args.join(" ")).toMatch(msg);
  }
}

describe("softroce perf --perftest, two processes", () => {
  for (const test of ["write_bw", "read_bw", "atomic_bw"]) {
    it(`${test}: both sides print perftest's table with the client's figures; exit 0`, async () => {
      const size = test === "atomic_bw" ? "8" : "8192";
      const server = start("perf", test, "--perftest", "--address", "127.0.15.41", "-s", size, "-n", "200");
      await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
      const client = start("perf", test, "127.0.15.41", "--perftest", "--address", "127.0.15.42", "-s", size, "-n", "200", "-t", "16");
      const [sc, cc] = await Promise.all([server.done, client.done]);
      expect({ cc, err: client.stderr }).toEqual({ cc: 0, err: inlineNotice(test) });
      expect({ sc, err: server.stderr }).toEqual({ sc: 0, err: inlineNotice(test) });
      const line = (out: string) => out.split("\n").find((l) => new RegExp(`^ ${size}\\s+200\\s`).test(l));
      expect(line(client.stdout), client.stdout).toBeDefined();
      // no -m: each side runs with its port's active MTU (loopback: 4096), as perftest
      for (const out of [client.stdout, server.stdout]) expect(out).toContain(" Mtu             : 4096[B]\n");
      expect(line(server.stdout)).toBe(line(client.stdout));
      expect(client.stdout).toContain({ write_bw: "RDMA_Write BW Test", read_bw: "RDMA_Read BW Test", atomic_bw: "Atomic FETCH_AND_ADD BW Test" }[test]);
      expect(client.stdout).toMatch(/ remote address: LID 0000 QPN 0x[0-9a-f]{4,6} .*\n GID: 00:00:00:00:00:00:00:00:00:00:255:255:127:00:15:41/);
      // perftest prints RKey and VAddr for READ and WRITE only (OUT for READ), as in its logs
      if (test === "atomic_bw") expect(client.stdout).not.toContain("RKey");
      else expect(client.stdout).toMatch(test === "read_bw" ? / PSN 0x[0-9a-f]{6} OUT 0x80 RKey 0x[0-9a-f]{6} VAddr / : / PSN 0x[0-9a-f]{6} RKey 0x[0-9a-f]{6} VAddr /);
    });
  }

  it("the header's TX depth and CQ moderation as perftest's force_dependecies sets them: the depth at most -n, moderation 100, 1 above 8 KiB messages, at most the depth", async () => {
    // rxe's perftest, -n 5: " TX depth        : 5" and " CQ Moderation   : 5" (the client's; the server prints no depth)
    const theirs = readFileSync(join(FIXTURES, "send_bw-tcp.client.out"), "utf8").split("\n").filter((l) => /^ (TX depth|CQ Moderation) /.test(l));
    expect(theirs).toEqual([" TX depth        : 5", " CQ Moderation   : 5"]);
    for (const [size, n, want] of [["4096", "5", theirs], ["65536", "200", [" TX depth        : 128", " CQ Moderation   : 1"]]] as const) {
      const server = start("perf", "send_bw", "--perftest", "--address", "127.0.15.41", "-s", size, "-n", n);
      await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
      const client = start("perf", "send_bw", "127.0.15.41", "--perftest", "--address", "127.0.15.42", "-s", size, "-n", n);
      expect(await Promise.all([server.done, client.done])).toEqual([0, 0]);
      expect(client.stdout.split("\n").filter((l) => /^ (TX depth|CQ Moderation) /.test(l)), size).toEqual(want);
      expect(server.stdout).toContain(want[1] + "\n");
      expect(server.stdout).not.toContain(" TX depth ");
    }
  });

  for (const test of ["send_bw", "write_lat", "read_lat", "send_lat", "atomic_lat"]) {
    it(`${test}: both sides run it through (each prints its own figures), exit 0`, async () => {
      const server = start("perf", test, "--perftest", "--address", "127.0.15.41", "-n", "100");
      await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
      const client = start("perf", test, "127.0.15.41", "--perftest", "--address", "127.0.15.42", "-n", "100");
      const [sc, cc] = await Promise.all([server.done, client.done]);
      expect({ cc, err: client.stderr }).toEqual({ cc: 0, err: inlineNotice(test) });
      expect({ sc, err: server.stderr }).toEqual({ sc: 0, err: inlineNotice(test) });
      const lat = test.endsWith("_lat");
      // perftest's default sizes: 2 bytes for latency, 8 for atomics
      const re = lat ? new RegExp(`^ ${test === "atomic_lat" ? 8 : 2}\\s+(\\d+)\\s+\\d+\\.\\d\\d`, "m") : /^ 65536\s+100\s+\d+\.\d\d\s+\d+\.\d\d/m;
      expect(client.stdout).toMatch(re);
      // read_lat's and atomic_lat's server only serves, as perftest's
      if (test === "read_lat" || test === "atomic_lat") expect(server.stdout).not.toMatch(re);
      else expect(server.stdout).toMatch(re);
      if (lat) expect(Number(re.exec(client.stdout)![1])).toBe(100);
    });
  }

  it("-A CMP_AND_SWAP: atomic_bw and atomic_lat compare-and-swap as perftest's (its title on both sides); exit 0", async () => {
    for (const [test, title] of [["atomic_bw", "Atomic CMP_AND_SWAP BW Test"], ["atomic_lat", "Atomic CMP_AND_SWAP Latency Test"]]) {
      const server = start("perf", test!, "--perftest", "--address", "127.0.15.41", "-n", "50", "-A", "CMP_AND_SWAP");
      await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
      const client = start("perf", test!, "127.0.15.41", "--perftest", "--address", "127.0.15.42", "-n", "50", "-A", "CMP_AND_SWAP");
      expect(await Promise.all([server.done, client.done]), test).toEqual([0, 0]);
      for (const out of [client.stdout, server.stdout]) expect(out).toContain(`\n                    ${title}\n`);
      expect(client.stdout).toMatch(/^ 8\s+50\s+\d+\.\d\d/m);
      // the atomics' address lines: no OUT, RKey or VAddr, as perftest's
      expect(client.stdout).toMatch(/ remote address: LID 0000 QPN 0x[0-9a-f]{4,6} PSN 0x[0-9a-f]{6}\n/);
    }
  });

  it("READ and atomics: perftest's rule before the header and its inline notice on stderr, as rxe's perftest logs show (both sides); WRITE and SEND: neither", async () => {
    for (const test of ["read_bw", "atomic_bw", "read_lat", "write_bw", "send_lat"]) {
      const theirs = (side: string) => readFileSync(join(FIXTURES, `${test}-tcp.${side}.out`), "utf8");
      const theirErr = (side: string) => readFileSync(join(FIXTURES, `${test}-tcp.${side}.err`), "utf8");
      const server = start("perf", test, "--perftest", "--address", "127.0.15.41", "-n", "5");
      await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
      const client = start("perf", test, "127.0.15.41", "--perftest", "--address", "127.0.15.42", "-n", "5");
      expect(await Promise.all([server.done, client.done]), test).toEqual([0, 0]);
      for (const [side, r] of [["client", client], ["server", server]] as const) {
        const rules = (out: string) => out.split("\n").findIndex((l) => !/^-{87}$/.test(l));
        expect({ test, side, rules: rules(r.stdout), err: r.stderr }).toEqual({ test, side, rules: rules(theirs(side)), err: theirErr(side) });
        expect(r.stderr).toBe(inlineNotice(test));
      }
    }
  });
});

describe("softroce perf --perftest -a (every size), two processes", () => {
  const rowsOf = (out: string) => out.split("\n").filter((l) => /^ \d+\s+\d+\s+\d+\.\d\d/.test(l)).map((l) => Number(l.trim().split(/\s+/)[0]));
  const ALL = Array.from({ length: 23 }, (_, i) => 2 << i);
  // the server's rows as perftest's: WRITE and READ bandwidth the client's last report, read_lat none, SEND tests and write_lat their own
  for (const [test, mode, serverRows] of [
    ["write_bw", "--perftest", [ALL[22]]], ["send_bw", "--perftest", ALL], ["send_lat", "-R", ALL], ["read_lat", "--perftest", []], ["write_lat", "--perftest", ALL],
  ] as [string, string, number[]][]) {
    it(`${test} -a ${mode}: a row for each size from 2 to 2^23 bytes on the client, perftest's rows on the server; exit 0`, async () => {
      const server = start("perf", test, mode, "--address", "127.0.15.41", "-a", "-n", "5", "--wait", "20");
      await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
      const client = start("perf", test, "127.0.15.41", mode, "--address", "127.0.15.42", "-a", "-n", "5", "--wait", "20");
      const [sc, cc] = await Promise.all([server.done, client.done]);
      expect({ cc, err: client.stderr }).toEqual({ cc: 0, err: inlineNotice(test) });
      expect({ sc, err: server.stderr }).toEqual({ sc: 0, err: inlineNotice(test) });
      expect(rowsOf(client.stdout)).toEqual(ALL);
      expect(rowsOf(server.stdout)).toEqual(serverRows);
      // perftest keeps CQ moderation with -a (its sizes change under one setting): min(100, tx depth 5), not the 1 of 8 MiB messages
      if (test.endsWith("_bw")) expect(client.stdout).toContain(" CQ Moderation   : 5\n");
      // the buffers hold the largest size: the last row's messages are 8 MiB
      expect(client.stdout).toMatch(/^ 8388608\s+5\s+\d+\.\d\d/m);
    }, 60_000);
  }

  it("refuses -a where perftest does or where it cannot run: atomics (one size), with -s, and between two softroce perf without --perftest", async () => {
    await refusals([
      [["atomic_bw", "--perftest", "-a"], /-a\/--all: atomic_bw has one size, 8 bytes/],
      [["write_bw", "--perftest", "-a", "-s", "64"], /-a\/--all runs every size: drop -s\/--size/],
      [["write_bw", "-a"], /-a\/--all between two processes runs with --perftest or -R/],
    ]);
  });
});

describe("softroce perf --perftest -c UC and -c UD, two processes", () => {
  for (const [test, conn, size] of [
    ["write_bw", "UC", "4096"], ["send_bw", "UC", "4096"], ["write_lat", "UC", "64"], ["send_lat", "UC", "64"], ["send_bw", "UD", "65536"], ["send_lat", "UD", "64"],
  ] as const) {
    it(`${test} -c ${conn} -s ${size}: perftest's ${conn} QPs, both sides through; exit 0`, async () => {
      const server = start("perf", test, "--perftest", "--address", "127.0.15.41", "-c", conn, "-s", size, "-n", "200");
      await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
      const client = start("perf", test, "127.0.15.41", "--perftest", "--address", "127.0.15.42", "-c", conn, "-s", size, "-n", "200");
      expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr).toEqual([0, 0]);
      for (const out of [client.stdout, server.stdout]) expect(out).toContain(` Connection type : ${conn}\t\tUsing SRQ      : OFF\n`);
      // UD: perftest takes a message larger than the MTU (loopback: 4096) down to it
      const bytes = conn === "UD" ? Math.min(Number(size), 4096) : Number(size);
      const row = new RegExp(`^ ${bytes}\\s+200\\s+\\d+\\.\\d\\d`, "m");
      expect(client.stdout).toMatch(row);
      // (send_lat's server times one turn fewer, and prints -n as perftest does)
      expect(server.stdout).toMatch(row);
    });
  }

  it("-c UD -a: the sizes up to the MTU, as perftest says on stderr; refusals: READ on UC, -R with UC (librdmacm)", async () => {
    const server = start("perf", "send_lat", "--perftest", "--address", "127.0.15.41", "-c", "UD", "-a", "-n", "5");
    await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
    const client = start("perf", "send_lat", "127.0.15.41", "--perftest", "--address", "127.0.15.42", "-c", "UD", "-a", "-n", "5");
    expect(await Promise.all([server.done, client.done])).toEqual([0, 0]);
    const sizes = (out: string) => [...out.matchAll(/^ (\d+)\s+\d+\s+\d+\.\d\d/gm)].map((m) => Number(m[1]));
    expect(sizes(client.stdout)).toEqual(Array.from({ length: 12 }, (_, i) => 2 << i));
    expect(client.stderr).toBe(" Max msg size in UD is MTU 4096\n Changing to this MTU\n");
    await refusals([
      [["read_bw", "--perftest", "-c", "UC"], /read_bw does not run on UC/],
      [["write_bw", "-R", "-c", "UC"], /UC is not supported in librdmacm/],
    ]);
  });

  for (const [test, size] of [["send_bw", "65536"], ["send_lat", "64"]] as const) {
    it(`${test} -R -c UD -s ${size}: the test QPs through rdma_cm's UDP port space (SIDR), ${test === "send_lat" ? "the server answering at the address of the client's first message" : "the client sending to the server's QPN and Q_Key"}; exit 0`, async () => {
      const args = ["-R", "-c", "UD", "-s", size, "-n", "200"];
      const server = start("perf", test, "--address", "127.0.15.41", ...args);
      await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
      const client = start("perf", test, "127.0.15.41", "--address", "127.0.15.42", ...args);
      expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr).toEqual([0, 0]);
      for (const out of [client.stdout, server.stdout]) {
        expect(out).toContain(" Connection type : UD\t\tUsing SRQ      : OFF\n");
        expect(out).toContain(" rdma_cm QPs\t : ON\n");
        expect(out).toMatch(new RegExp(`^ ${Math.min(Number(size), 4096)}\\s+200\\s+\\d+\\.\\d\\d`, "m"));
      }
    });
  }
});

describe("softroce perf --perftest -I, two processes", () => {
  it("-I 0 is an -I: perftest's notice on both sides, as for any inline size on a device it does not know; -I on READ is refused, as perftest", async () => {
    const server = start("perf", "send_lat", "--perftest", "--address", "127.0.15.41", "-n", "20", "-I", "0");
    await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
    const client = start("perf", "send_lat", "127.0.15.41", "--perftest", "--address", "127.0.15.42", "-n", "20", "-I", "0");
    expect(await Promise.all([server.done, client.done])).toEqual([0, 0]);
    expect([client.stderr, server.stderr]).toEqual([INLINE_NOTICE, INLINE_NOTICE]);
    await refusals([[["read_bw", "--perftest", "-I", "0"], /-I\/--inline_size: Inline feature not available on READ\/Atomic verbs/]]);
  });
});

describe("softroce perf --perftest -e (perftest's events mode), two processes", () => {
  it("both headers say the test runs with events, under the title (-X 0: the completion vector, the device's one); refused on WRITE, with -D and without --perftest, as perftest", async () => {
    const server = start("perf", "send_bw", "--perftest", "--address", "127.0.15.41", "-n", "50", "-e");
    await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
    const client = start("perf", "send_bw", "127.0.15.41", "--perftest", "--address", "127.0.15.42", "-n", "50", "-e", "-X", "0");
    expect(await Promise.all([server.done, client.done])).toEqual([0, 0]);
    for (const out of [client.stdout, server.stdout]) expect(out).toContain("                    Send BW Test\n Test with events. Using softroce0_comp0\n Dual-port ");
    await refusals([
      [["write_bw", "--perftest", "-e"], /Events feature not available on WRITE verb/],
      [["send_bw", "--perftest", "-e", "-D", "2"], /Duration mode doesn't work with events/],
      [["send_bw", "-e"], /-e\/--events applies to --perftest and -R/],
      [["send_bw", "--perftest", "-e", "-X", "1"], /-X\/--vector 1: Completion vector specified is invalid \(Max completion vector = 0\)/],
      [["send_bw", "--perftest", "-X", "0"], /-X\/--vector: Events must be enabled to select a completion vector/],
      [["write_lat", "--perftest", "-X", "0"], /-X\/--vector: Events feature not available on WRITE verb/],
      [["send_lat", "-X", "0"], /-X\/--vector applies to --perftest and -R/],
    ]);
  });
});

describe("softroce perf --perftest -U and -H (perftest's lists of latency measurements), two processes", () => {
  it("read_lat -U on the client: -n − 1 measurements in the order taken; send_lat -H on both: the counted ones sorted; each then the header again and the row; refused on BW tests and without --perftest", async () => {
    const list = (out: string) => /#, usec\n((?:\d+, [\d.e+-]+\n)+)/.exec(out)?.[1]!.trimEnd().split("\n").map((l) => l.split(", ").map(Number));
    const again = `${PERF_RULE}\n${LAT_HEADER}\n 64 `;
    let server = start("perf", "read_lat", "--perftest", "--address", "127.0.15.41", "-s", "64", "-n", "20");
    await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
    let client = start("perf", "read_lat", "127.0.15.41", "--perftest", "--address", "127.0.15.42", "-s", "64", "-n", "20", "-U");
    expect(await Promise.all([server.done, client.done])).toEqual([0, 0]);
    const unsorted = list(client.stdout)!;
    expect(unsorted.map(([i]) => i)).toEqual(Array.from({ length: 19 }, (_, i) => i + 1));
    expect(unsorted.every(([, us]) => us! > 0)).toBe(true);
    expect(client.stdout).toContain(again);
    expect(server.stdout).not.toContain("#, usec");
    server = start("perf", "send_lat", "--perftest", "--address", "127.0.15.41", "-s", "64", "-n", "20", "-H");
    await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
    client = start("perf", "send_lat", "127.0.15.41", "--perftest", "--address", "127.0.15.42", "-s", "64", "-n", "20", "-H");
    expect(await Promise.all([server.done, client.done])).toEqual([0, 0]);
    for (const out of [client.stdout, server.stdout]) {
      const sorted = list(out)!.map(([, us]) => us!);
      expect(sorted).toHaveLength(17); // 19 measurements, the two largest left out
      expect(sorted).toEqual([...sorted].sort((a, b) => a - b));
      expect(out).toContain(again);
      // the row's t_min is the list's first
      expect(Number(/^ 64\s+20\s+([\d.]+)/m.exec(out)![1])).toBeCloseTo(sorted[0]!, 1);
    }
    await refusals([
      [["write_bw", "--perftest", "-U"], /-U\/--report-unsorted: Available only on Latency tests/],
      [["send_bw", "-R", "-H"], /-H\/--report-histogram: Available only on Latency tests/],
      [["send_lat", "-H"], /-H\/--report-histogram applies to --perftest and -R/],
    ]);
  });
});

describe("softroce perf --perftest -Q and -l (CQ moderation, post lists), two processes", () => {
  const pair = async (test: string, server: string[], client: string[]) => {
    const s = start("perf", test, "--perftest", "--address", "127.0.15.41", ...server);
    await until(() => s.stdout.includes("Waiting for client to connect"), 15_000);
    const c = start("perf", test, "127.0.15.41", "--perftest", "--address", "127.0.15.42", ...client);
    expect(await exits([s, c], 20_000), c.stderr + s.stderr).toEqual([0, 0]);
    return [c.stdout, s.stdout] as const;
  };

  it("-Q 10: both headers say it, every message counted; above 8 KiB perftest's warning first and -Q kept; -D with -Q ends", async () => {
    let [client, server] = await pair("write_bw", ["-n", "100", "-Q", "10"], ["-n", "100", "-Q", "10"]);
    for (const out of [client, server]) expect(out).toContain(" CQ Moderation   : 10\n");
    expect(client).toMatch(/^ 65536\s+100\s+\d+\.\d\d/m);
    [client, server] = await pair("send_bw", ["-s", "16384", "-n", "60", "-Q", "4"], ["-s", "16384", "-n", "60", "-Q", "4"]);
    for (const out of [client, server]) {
      expect(out.startsWith(`${PERF_RULE}\nWarning: Large message requested and CQ moderation enabled\nWarning: It can lead to inaccurate results\n`), out).toBe(true);
      expect(out).toContain(" CQ Moderation   : 4\n");
      expect(out).toMatch(/^ 16384\s+60\s+\d+\.\d\d/m);
    }
    // -D: the messages still in flight at the end are waited for up to the last signaled one
    [client] = await pair("write_bw", ["-D", "2", "-Q", "7"], ["-D", "2", "-Q", "7"]);
    expect(Number(/^ 65536\s+(\d+)\s+0\.00/m.exec(client)?.[1])).toBeGreaterThan(0);
  }, 30_000);

  it("-r sets a SEND server's rx depth (an odd one made even, as perftest's); -N prints no peak; --perform_warm_up runs first; -r on an RDMA test and these without --perftest refused", async () => {
    for (const [r, shown] of [["64", "64"], ["63", "64"]]) {
      const [, server] = await pair("send_bw", ["-n", "200", "-r", r], ["-n", "200"]);
      expect(server).toContain(` RX depth        : ${shown}\n`);
      expect(server).toMatch(/^ 65536\s+200\s+\d+\.\d\d/m);
    }
    let [client, server] = await pair("write_bw", ["-n", "100", "-N"], ["-n", "100", "-N"]);
    const row = /^ 65536\s+100\s+(\d+\.\d\d)\s+(\d+\.\d\d)/m;
    expect(row.exec(client)?.slice(1).map(Number)).toEqual([0, expect.any(Number)]);
    expect(Number(row.exec(client)![2])).toBeGreaterThan(0);
    expect(server).toMatch(/^ 65536\s+100\s+0\.00\s/m); // the client's report
    // --perform_warm_up: a tx depth of WRs first, uncounted (the row still counts -n); READ, and WRITE on 3 QPs with -l
    [client] = await pair("read_bw", ["-n", "100", "-s", "4096"], ["-n", "100", "-s", "4096", "--perform_warm_up"]);
    expect(client).toMatch(/^ 4096\s+100\s+\d+\.\d\d/m);
    [client] = await pair("write_bw", ["-n", "100", "-q", "3", "-s", "4096"], ["-n", "100", "-q", "3", "-s", "4096", "-t", "20", "-l", "4", "--perform_warm_up"]);
    expect(client).toMatch(/^ 4096\s+300\s+\d+\.\d\d/m);
    await refusals([
      [["write_bw", "--perftest", "-r", "4"], /-r\/--rx-depth 4: On RDMA verbs rx depth can be only 1/],
      [["send_bw", "-r", "16"], /-r\/--rx-depth applies to --perftest and -R/],
      [["send_bw", "-N"], /-N\/--noPeak applies to --perftest and -R/],
      [["write_bw", "--perform_warm_up"], /--perform_warm_up applies to --perftest and -R/],
    ]);
  }, 30_000);

  it("--recv_post_list: the header line on both sides, a SEND server's receives in lists (the rx depth rounded down to whole lists), with -b too; perftest's refusals", async () => {
    let [client, server] = await pair("send_bw", ["-n", "200", "-s", "4096", "-r", "63", "--recv_post_list", "8"], ["-n", "200", "-s", "4096", "--recv_post_list", "8"]);
    for (const out of [client, server]) expect(out).toContain(" Recv Post List  : 8\n");
    expect(server).toContain(" RX depth        : 64\n");
    expect(server).toMatch(/^ 4096\s+200\s+\d+\.\d\d/m);
    // lists of 12 out of an rx depth of 64: five lists (60) posted first, five more as they complete, the 120 messages' receives
    [client, server] = await pair("send_bw", ["-b", "-n", "120", "-s", "1024", "-r", "64", "--recv_post_list", "12"], ["-b", "-n", "120", "-s", "1024", "-r", "64", "--recv_post_list", "12"]);
    for (const out of [client, server]) expect(out).toMatch(/^ 1024\s+120\s+\d+\.\d\d/m);
    await refusals([
      [["send_lat", "--perftest", "--recv_post_list", "2"], /--recv_post_list: Receive post list is supported in BW tests only/],
      [["send_bw", "--perftest", "-n", "100", "--recv_post_list", "3"], /--recv_post_list 3: Number of iterations must be a multiple of receive post list size \(-n 100\)/],
      [["send_bw", "--perftest", "-n", "200", "-r", "4", "--recv_post_list", "8"], /--recv_post_list 8: a list longer than the receives posted for each QP \(4\) posts none/],
      [["send_bw", "--recv_post_list", "2"], /--recv_post_list applies to --perftest and -R/],
      [["write_bw", "--disable_pcie_relaxed"], /--disable_pcie_relaxed applies to --perftest and -R/],
    ]);
  }, 30_000);

  it("--use-srq: the receiving side's QPs share an SRQ (-q 4, -b, UD, send_lat); both headers say so; perftest's refusals", async () => {
    // -q 4 -r 16: four receives for each QP's slot in the one SRQ, every one of the 800 messages received
    let [client, server] = await pair("send_bw", ["-q", "4", "-r", "16", "-n", "200", "-s", "4096", "--use-srq"], ["-q", "4", "-n", "200", "-s", "4096", "--use-srq"]);
    for (const out of [client, server]) expect(out).toContain(" Connection type : RC\t\tUsing SRQ      : ON\n");
    expect(server).toMatch(/^ 4096\s+800\s+\d+\.\d\d/m);
    [client, server] = await pair("send_bw", ["-b", "-q", "2", "-n", "100", "-s", "1024", "--use-srq"], ["-b", "-q", "2", "-n", "100", "-s", "1024", "--use-srq"]);
    for (const out of [client, server]) expect(out).toMatch(/^ 1024\s+200\s+\d+\.\d\d/m);
    // UD drops a message no receive waits for: one QP, its slot the whole rx depth (-n), in lists of 4
    [client, server] = await pair("send_bw", ["-c", "UD", "-n", "100", "-s", "1024", "--use-srq", "--recv_post_list", "4"], ["-c", "UD", "-n", "100", "-s", "1024", "--use-srq"]);
    expect(server).toMatch(/^ 1024\s+100\s+\d+\.\d\d/m);
    [client, server] = await pair("send_lat", ["-n", "50", "-s", "64", "--use-srq"], ["-n", "50", "-s", "64", "--use-srq"]);
    expect(client).toMatch(/^ 64\s+50\s+\d+\.\d\d/m);
    await refusals([
      [["write_bw", "--perftest", "--use-srq"], /--use-srq: Using SRQ only available in SEND tests/],
      [["send_bw", "--perftest", "-q", "8", "-r", "4", "--use-srq"], /--use-srq: Using SRQ depth should be greater than number of QPs \(-q 8, rx depth 4/],
      [["send_lat", "-R", "-c", "UD", "--use-srq"], /--use-srq with -R -c UD: rdma_cm's UD exchange posts a receive on the QP/],
      [["send_bw", "--use-srq"], /--use-srq applies to --perftest and -R/],
    ]);
  }, 40_000);

  it("--tclass: the client's packets carry it as the IPv4 TOS byte, the server's (no --tclass) 0; --pcap writes each side's datagrams in --perftest mode; refused with -R", async () => {
    const dir = mkdtempSync(join(tmpdir(), "softroce-tclass-"));
    try {
      const [cf, sf] = [join(dir, "c.pcap"), join(dir, "s.pcap")];
      await pair("send_lat", ["-n", "20", "-s", "64", "--pcap", sf], ["-n", "20", "-s", "64", "--tclass", "96", "--pcap", cf]);
      /** the TOS bytes of the IPv4 packets a side sent (its address the source) */
      const tosFrom = (file: string, src: string) =>
        readCaptureAll(new Uint8Array(readFileSync(file))).filter((r) => r.data && r.data.subarray(12, 16).join(".") === src).map((r) => r.data![1]!);
      const [c, s] = [tosFrom(cf, "127.0.15.42"), tosFrom(sf, "127.0.15.41")];
      // 20 SENDs each way, and their ACKs
      expect(c.length).toBeGreaterThanOrEqual(20);
      expect(s.length).toBeGreaterThanOrEqual(20);
      expect(new Set(c)).toEqual(new Set([96]));
      expect(new Set(s)).toEqual(new Set([0]));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await refusals([
      [["send_lat", "-R", "--tclass", "96"], /--tclass with -R: rdma_cm connects the QPs/],
      [["send_lat", "--perftest", "--tclass", "256"], /--tclass/],
      [["send_lat", "--tclass", "8"], /--tclass applies to --perftest and -R/],
    ]);
  }, 30_000);

  it("-T with -R: every packet of both sides carries the type of service, the CM's MADs too (the passive side's from the REQ); the header and the file say it; --retry_count goes in the REQ; -T refused without -R", async () => {
    const dir = mkdtempSync(join(tmpdir(), "softroce-tos-"));
    try {
      const [cf, sf, json] = [join(dir, "c.pcap"), join(dir, "s.pcap"), join(dir, "c.json")];
      const server = start("perf", "send_lat", "-R", "--address", "127.0.15.41", "-n", "20", "-s", "64", "-T", "104", "--pcap", sf);
      await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
      const client = start("perf", "send_lat", "127.0.15.41", "-R", "--address", "127.0.15.42", "-n", "20", "-s", "64", "-T", "104", "--pcap", cf, "--out_json", "--out_json_file", json, "--retry_count", "5");
      expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr).toEqual([0, 0]);
      for (const out of [client.stdout, server.stdout]) expect(out).toContain(" Data ex. method : rdma_cm \tTOS    : 104\n");
      expect(readFileSync(json, "utf8")).toContain("\nData_ex_method: rdma_cm,\nTOS: 104,\n},\n");
      /** each packet a side sent: its TOS byte and whether it is a MAD (BTH destination QP 1, after the 20-byte IPv4 and 8-byte UDP headers) */
      const sent = (file: string, src: string) =>
        readCaptureAll(new Uint8Array(readFileSync(file)))
          .filter((r) => r.data && r.data.subarray(12, 16).join(".") === src)
          .map((r) => ({ tos: r.data![1]!, mad: ((r.data![33]! << 16) | (r.data![34]! << 8) | r.data![35]!) === 1 }));
      for (const [file, src] of [[cf, "127.0.15.42"], [sf, "127.0.15.41"]] as const) {
        const pkts = sent(file, src);
        expect(pkts.filter((p) => p.mad).length, file).toBeGreaterThanOrEqual(3); // REQ or REP, RTU, DREQ or DREP, of two connections
        expect(pkts.filter((p) => !p.mad).length, file).toBeGreaterThanOrEqual(20);
        expect(new Set(pkts.map((p) => p.tos)), file).toEqual(new Set([104]));
      }
      // the client's REQs (the exchange's connection and the test's): MADs after IPv4, UDP, BTH and DETH
      const reqs = readCaptureAll(new Uint8Array(readFileSync(cf)))
        .filter((r) => r.data && r.data.subarray(12, 16).join(".") === "127.0.15.42" && r.data.length >= 48 + 256)
        .map((r) => parseCmMad(r.data!.subarray(48, 48 + 256)))
        .filter((m) => m.name === "REQ");
      expect(reqs.length).toBeGreaterThanOrEqual(2); // more when one came before the server listened (rejected, tried again)
      for (const m of reqs) if (m.name === "REQ") expect(m.msg.retryCount).toBe(5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await refusals([[["send_lat", "--perftest", "-T", "104"], /-T\/--tos 104: TOS only valid for rdma_cm based QP and RawEth QP/]]);
  }, 30_000);

  it("-l 4: perftest's note, its title and header lines, CQ moderation the list's size; -l 8 -Q 4 keeps -Q; refusals as perftest's and where a list cannot fit", async () => {
    let [client, server] = await pair("write_bw", ["-n", "100", "-l", "4"], ["-n", "100", "-l", "4", "-s", "4096"]);
    for (const out of [client, server]) {
      expect(out.startsWith(`${PERF_RULE}\nPost List requested - CQ moderation will be the size of the post list\n`), out).toBe(true);
      expect(out).toContain("                    RDMA_Write Post List BW Test\n");
      expect(out).toContain(" Post List       : 4\n");
      expect(out).toContain(" CQ Moderation   : 4\n");
    }
    expect(client).toMatch(/^ 4096\s+100\s+\d+\.\d\d/m);
    [client] = await pair("send_bw", ["-n", "96", "-l", "8", "-Q", "4"], ["-n", "96", "-l", "8", "-Q", "4"]);
    expect(client).toContain(" Post List       : 8\n CQ Moderation   : 4\n");
    expect(client).not.toContain("Post List requested");
    expect(client).toMatch(/^ 65536\s+96\s+\d+\.\d\d/m);
    await refusals([
      [["write_bw", "--perftest", "-l", "3", "-n", "100"], /-l\/--post_list 3: Number of iterations must be a multiple of post list size \(-n 100\)/],
      [["write_bw", "--perftest", "-l", "4", "-Q", "3", "-n", "100"], /Post list size must be a multiple of CQ moderation \(-Q 3\)/],
      [["write_bw", "--perftest", "-l", "256", "-n", "512"], /-l\/--post_list 256: a list longer than the tx depth \(128\) never fits in the send queue/],
      [["write_lat", "--perftest", "-l", "2"], /Post list is supported in BW tests only/],
      [["write_bw", "-Q", "5"], /-Q\/--cq-mod applies to --perftest and -R/],
    ]);
  }, 30_000);
});

describe("softroce perf --perftest -b (both ways), two processes", () => {
  for (const test of ["write_bw", "read_bw", "atomic_bw", "send_bw"]) {
    it(`${test} -b: perftest's Bidirectional title, TX depth on both sides, each side's row its own figures plus the peer's report; exit 0`, async () => {
      const args = ["-b", "-n", "100", ...(test === "atomic_bw" ? [] : ["-s", "4096"])];
      const server = start("perf", test, "--perftest", "--address", "127.0.15.41", ...args);
      await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
      const client = start("perf", test, "127.0.15.41", "--perftest", "--address", "127.0.15.42", ...args);
      expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr).toEqual([0, 0]);
      const size = test === "atomic_bw" ? 8 : 4096;
      const rows = [client.stdout, server.stdout].map((out) => {
        expect(out).toContain(`${{ write_bw: "RDMA_Write", read_bw: "RDMA_Read", atomic_bw: "Atomic FETCH_AND_ADD", send_bw: "Send" }[test]} Bidirectional BW Test\n`);
        if (test === "send_bw") expect(out).toContain(" RX depth        : 100\n"); // both sides receive
        expect(out).toContain(" TX depth        : 100\n");
        const m = new RegExp(`^ ${size}\\s+100\\s+(\\d+\\.\\d\\d)\\s+(\\d+\\.\\d\\d)\\s+(\\d+\\.\\d+)`, "m").exec(out);
        expect(m, out).not.toBeNull();
        return m!.slice(1).map(Number);
      });
      // both rows are the same sum (each side's plus the other's), to the rounding of the printed figures
      expect(Math.abs(rows[0]![1]! - rows[1]![1]!)).toBeLessThanOrEqual(0.011);
      expect(rows[0]![1]).toBeGreaterThan(0);
    });
  }

  it("-b -a: a row per size on both sides, a handshake before each size and one after; send_bw -b -a, -c UD, -R -c UD", async () => {
    const server = start("perf", "write_bw", "--perftest", "--address", "127.0.15.41", "-b", "-a", "-n", "5");
    await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
    const client = start("perf", "write_bw", "127.0.15.41", "--perftest", "--address", "127.0.15.42", "-b", "-a", "-n", "5");
    expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr).toEqual([0, 0]);
    const sizes = (out: string) => [...out.matchAll(/^ (\d+)\s+5\s+\d+\.\d\d/gm)].map((m) => Number(m[1]));
    for (const out of [client.stdout, server.stdout]) expect(sizes(out)).toEqual(Array.from({ length: 23 }, (_, i) => 2 << i));
    for (const args of [["--perftest", "-a", "-n", "5"], ["--perftest", "-c", "UD", "-s", "1024", "-n", "100"], ["-R", "-c", "UD", "-s", "1024", "-n", "100"]]) {
      const s = start("perf", "send_bw", "--address", "127.0.15.41", "-b", ...args);
      await until(() => s.stdout.includes("Waiting for client to connect"), 15_000);
      const cl = start("perf", "send_bw", "127.0.15.41", "--address", "127.0.15.42", "-b", ...args);
      expect(await Promise.all([s.done, cl.done]), args.join(" ") + cl.stderr + s.stderr).toEqual([0, 0]);
      const rows = (out: string) => [...out.matchAll(/^ (\d+)\s+(\d+)\s+\d+\.\d\d/gm)].map((m) => `${m[1]} ${m[2]}`);
      const want = args.includes("-a") ? Array.from({ length: 23 }, (_, i) => `${2 << i} 5`) : ["1024 100"];
      for (const out of [cl.stdout, s.stdout]) expect(rows(out), out).toEqual(want);
    }
  });
});

describe("softroce perf --perftest --report-both, -w and -y (perftest's verifier limits), two processes", () => {
  it("write_bw -b --report-both: after the summed row each side's own under Local and Remote results, the client's Remote row the server's Local row; exit 0", async () => {
    const args = ["-b", "--report-both", "-n", "100", "-s", "4096"];
    const server = start("perf", "write_bw", "--perftest", "--address", "127.0.15.41", ...args);
    await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
    const client = start("perf", "write_bw", "127.0.15.41", "--perftest", "--address", "127.0.15.42", ...args);
    expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr).toEqual([0, 0]);
    const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const [rule, header] = [literal(PERF_RULE), literal(BW_HEADER)];
    const section = new RegExp(
      `\\n( 4096 .*)\\n${rule}\\n\\n Local results: \\n${rule}\\n${header}\\n( 4096 .*)\\n${rule}\\n\\n Remote results: \\n${rule}\\n${header}\\n( 4096 .*)\\n${rule}\\n`,
    );
    const [c, sv] = [client.stdout, server.stdout].map((out) => {
      const m = section.exec(out);
      expect(m, out).not.toBeNull();
      return m!.slice(1, 4);
    });
    expect(c![1]).toBe(sv![2]);
    expect(c![2]).toBe(sv![1]);
    // the summed row is the two (BW average: the 4th column), to the rounding of the printed figures
    const avg = (row: string) => Number(row.trim().split(/\s+/)[3]);
    for (const [sum, local, remote] of [c!, sv!]) expect(Math.abs(avg(sum!) - avg(local!) - avg(remote!))).toBeLessThanOrEqual(0.011);
    expect(avg(c![1]!)).toBeGreaterThan(0);
  });

  it("-w and -y: a side whose row misses the limit prints it, then perftest's error on stderr and exits 1; one that reaches it exits 0; refused on latency tests", async () => {
    // write_bw: the server prints the client's report and checks it too
    let server = start("perf", "write_bw", "--perftest", "--address", "127.0.15.41", "-n", "100", "-s", "4096", "-w", "0.001");
    await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
    let client = start("perf", "write_bw", "127.0.15.41", "--perftest", "--address", "127.0.15.42", "-n", "100", "-s", "4096", "-w", "1e9");
    expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr).toEqual([0, 1]);
    expect(client.stderr).toBe("Error: BW result is below bw limit\n");
    expect(server.stderr).toBe("");
    for (const out of [client.stdout, server.stdout]) expect(out).toMatch(/^ 4096\s+100\s+\d+\.\d\d/m);
    // -y alone (perftest 4.5 would need -w beside it), on send_bw's server, its own row
    server = start("perf", "send_bw", "--perftest", "--address", "127.0.15.41", "-n", "100", "-s", "4096", "-y", "1e9");
    await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
    client = start("perf", "send_bw", "127.0.15.41", "--perftest", "--address", "127.0.15.42", "-n", "100", "-s", "4096", "-y", "0");
    expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr).toEqual([1, 0]);
    expect(server.stderr).toBe("Error: Msg rate  is below msg_rate limit\n");
    await refusals([
      [["write_lat", "--perftest", "-w", "1"], /-w\/--limit_bw: a bandwidth test's option \(write_lat prints no BW row\)/],
      [["send_lat", "-R", "--report-both"], /--report-both: a bandwidth test's option/],
      [["write_bw", "-y", "1"], /-y\/--limit_msgrate applies to --perftest and -R/],
      [["write_bw", "--perftest", "-w", "fast"], /--limit_bw wants a number from 0 to 1000000000, got 'fast'/],
      // perftest's own spelling of -H's long name is taken too
      [["send_bw", "--perftest", "--report-histogrm"], /-H\/--report-histogram: Available only on Latency tests/],
    ]);
  });
});

describe("softroce perf --perftest --out_json (perftest's report file), two processes", () => {
  const info = (title: string, more: string) =>
    `{\ntest_info: {\ntest: ${title},\nDual_port: OFF,\nDevice: "softroce0",\nNumber_of_qps: 1,\nTransport_type: IB,\nConnection_type: RC,\nUsing_SRQ: OFF,\n` +
    `PCIe_relax_order: ON,\nibv_wr_API: OFF,\n${more}Mtu: 4096,\nLink_type: Ethernet,\nGID_index: 0,\nMax_inline_data: 0,\nrdma_cm_QPs: OFF,\nData_ex_method: Ethernet,\n},\nresults: {\n`;

  it("write_bw: each side's file holds its header's facts and the row it printed (the server's the client's report); send_lat: the latency row's figures", async () => {
    const dir = mkdtempSync(join(tmpdir(), "softroce-json-"));
    try {
      const file = (n: string) => join(dir, n);
      const server = start("perf", "write_bw", "--perftest", "--address", "127.0.15.41", "-n", "100", "-s", "4096", "--out_json", "--out_json_file", file("s.json"));
      await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
      const client = start("perf", "write_bw", "127.0.15.41", "--perftest", "--address", "127.0.15.42", "-n", "100", "-s", "4096", "--out_json", "--out_json_file", file("c.json"));
      expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr).toEqual([0, 0]);
      const row = / 4096\s+100\s+(\S+)\s+(\S+)\s+(\S+)/.exec(client.stdout)!;
      expect(row, client.stdout).not.toBeNull();
      const results = `MsgSize: 4096,\nn_iterations: 100,\nBW_peak: ${row[1]},\nBW_average: ${row[2]},\nMsgRate: ${row[3]},\n},\n}\n`;
      expect(readFileSync(file("c.json"), "utf8")).toBe(info("RDMA_Write_BW_Test", "TX_depth : 100,\nCQ_Moderation: 100,\n") + results);
      expect(readFileSync(file("s.json"), "utf8")).toBe(info("RDMA_Write_BW_Test", "CQ_Moderation: 100,\n") + results);
      expect(statSync(file("c.json")).mode & 0o777).toBe(0o600);

      const ls = start("perf", "send_lat", "--perftest", "--address", "127.0.15.41", "-n", "20", "-s", "64", "--out_json", "--out_json_file", file("s.json"));
      await until(() => ls.stdout.includes("Waiting for client to connect"), 15_000);
      const lc = start("perf", "send_lat", "127.0.15.41", "--perftest", "--address", "127.0.15.42", "-n", "20", "-s", "64", "--out_json", "--out_json_file", file("c.json"));
      expect(await Promise.all([ls.done, lc.done]), lc.stderr + ls.stderr).toEqual([0, 0]);
      for (const [out, f, more] of [[lc.stdout, "c.json", "TX_depth : 1,\n"], [ls.stdout, "s.json", "RX_depth: 20,\n"]] as const) {
        const fig = out.split("\n").find((l) => l.startsWith(" 64 "))!.trim().split(/\s+/);
        const names = ["t_min", "t_max", "t_typical", "t_avg", "t_stdev", "percentile_99", "percentile_99.9"];
        expect(readFileSync(file(f), "utf8")).toBe(info("Send_Latency_Test", more) + `MsgSize: 64,\nn_iterations: 20,\n` + names.map((n, i) => `${n}: ${fig[i + 2]},\n`).join("") + "},\n}\n");
      }
      // a file it cannot write: perftest's message, the test goes on
      const bs = start("perf", "send_bw", "--perftest", "--address", "127.0.15.41", "-n", "20", "--out_json", "--out_json_file", join(dir, "none", "x.json"));
      await until(() => bs.stdout.includes("Waiting for client to connect"), 15_000);
      const bc = start("perf", "send_bw", "127.0.15.41", "--perftest", "--address", "127.0.15.42", "-n", "20");
      expect(await Promise.all([bs.done, bc.done])).toEqual([0, 0]);
      expect(bs.stderr).toBe(`failed to open ${join(dir, "none", "x.json")}\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await refusals([[["write_bw", "--out_json"], /--out_json applies to --perftest and -R/]]);
  });
});

describe("softroce perf --perftest --output (perftest's verbosity), two processes", () => {
  /** A server with --output prints nothing before its client: the test waits for its TCP port to listen. */
  const pair = async (test: string, serverArgs: string[], clientArgs: string[]) => {
    const port = String(await freeTcpPort());
    const server = start("perf", test, "--perftest", "--address", "127.0.15.41", "-p", port, ...serverArgs);
    await until(() => tcpListening(Number(port)) || server.child.exitCode !== null, 15_000);
    const client = start("perf", test, "127.0.15.41", "--perftest", "--address", "127.0.15.42", "-p", port, ...clientArgs);
    expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr + client.stdout + server.stdout).toEqual([0, 0]);
    return [client, server] as const;
  };
  /** one row: perftest's "%lf\n" and nothing else */
  const figure = /^(\d+\.\d{6})\n$/;

  it("write_bw --output bandwidth: each side prints only the BW average (the server the client's report, the same figure); the file holds it as bw_avg", async () => {
    const dir = mkdtempSync(join(tmpdir(), "softroce-output-"));
    try {
      const json = join(dir, "c.json");
      const args = ["-n", "100", "-s", "4096", "--output", "bandwidth"];
      const [client, server] = await pair("write_bw", args, [...args, "--out_json", "--out_json_file", json, "--disable_pcie_relaxed"]);
      const [c, s] = [figure.exec(client.stdout), figure.exec(server.stdout)];
      expect(c, client.stdout).not.toBeNull();
      expect(s, server.stdout).not.toBeNull();
      expect(s![1]).toBe(c![1]);
      expect(Number(c![1])).toBeGreaterThan(0);
      // --disable_pcie_relaxed: the file says OFF (perftest's default run writes ON)
      expect(readFileSync(json, "utf8")).toContain("\nPCIe_relax_order: OFF,\n");
      expect(readFileSync(json, "utf8")).toMatch(new RegExp(`\\nresults: \\{\\nbw_avg: ${c![1]!.replace(".", "\\.")},\\n\\},\\n\\}\\n$`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("write_bw -b --output=message_rate: each side prints the two directions' message rates summed, the same figure on both", async () => {
    const args = ["-b", "-n", "100", "-s", "4096", "--output=message_rate"];
    const [client, server] = await pair("write_bw", args, args);
    const [c, s] = [figure.exec(client.stdout), figure.exec(server.stdout)];
    expect(c, client.stdout).not.toBeNull();
    expect(s, server.stdout).not.toBeNull();
    expect(s![1]).toBe(c![1]);
    // Mpps: 100 messages of 4 KiB each way take more than a microsecond, and loopback moves them in well under a second
    expect(Number(c![1])).toBeGreaterThan(0.0002);
    expect(Number(c![1])).toBeLessThan(100);
  });

  it("send_lat --output latency: each side prints only its t_avg; with -U the measurements first, then the figure (no rule, no header)", async () => {
    let [client, server] = await pair("send_lat", ["-n", "20", "--output", "latency"], ["-n", "20", "--output", "latency"]);
    for (const out of [client.stdout, server.stdout]) expect(out).toMatch(figure);
    [client] = await pair("send_lat", ["-n", "20", "--output", "latency"], ["-n", "20", "--output", "latency", "-U"]);
    const lines = client.stdout.split("\n");
    expect(lines[0]).toBe("#, usec");
    // -n 20: 19 measurements (perftest's iters - 1), then the average
    expect(lines.slice(1, 20).every((l, i) => l.startsWith(`${i + 1}, `)), client.stdout).toBe(true);
    expect(lines.slice(20).join("\n"), client.stdout).toMatch(figure);
  });

  it("perftest's refusals: a level the test does not print, a level it does not know, and without --perftest or -R", async () => {
    await refusals([
      [["write_bw", "--perftest", "--output", "latency"], /--output latency: Output verbosity level for BW can be: bandwidth, message_rate/],
      [["send_lat", "-R", "--output", "message_rate"], /--output message_rate: Output verbosity level for LAT can be: latency/],
      [["send_bw", "--perftest", "--output", "verbose"], /--output must be one of bandwidth, message_rate, latency, got 'verbose'/],
      [["write_bw", "--output", "bandwidth"], /--output applies to --perftest and -R/],
    ]);
  });
});

describe("softroce perf --perftest --report_gbits, two processes", () => {
  it("both sides print Gb/sec; the client's row is its MB/sec figures × 2^20 × 8 / 10^9 and the server prints the report as it came", async () => {
    const server = start("perf", "write_bw", "--perftest", "--address", "127.0.15.41", "-s", "65536", "-n", "300", "--report_gbits");
    await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
    const client = start("perf", "write_bw", "127.0.15.41", "--perftest", "--address", "127.0.15.42", "-s", "65536", "-n", "300", "--report_gbits");
    expect(await Promise.all([server.done, client.done])).toEqual([0, 0]);
    for (const out of [client.stdout, server.stdout]) expect(out).toContain(" #bytes     #iterations    BW peak[Gb/sec]    BW average[Gb/sec]   MsgRate[Mpps]\n");
    const row = (out: string) => /^ 65536\s+300\s+(\d+\.\d\d)\s+(\d+\.\d\d)\s+(\d+\.\d+)/m.exec(out)!;
    const [c, s] = [row(client.stdout), row(server.stdout)];
    expect(s[0]).toBe(c[0]);
    // the same messages at the message rate: bytes × rate in Gb/s (a rounding apart)
    expect(Number(c[2])).toBeCloseTo((65536 * 8 * Number(c[3]) * 1e6) / 1e9, 1);
  });
});

describe("softroce perf --perftest -D (perftest's duration mode), two processes", () => {
  const bwRow = /^ (\d+)\s+(\d+)\s+(\d+\.\d\d)\s+(\d+\.\d\d)\s+(\d+\.\d+)$/m;
  const latRow = /^ (\d+)\s+(\d+)\s+(\d+\.\d\d)\s+(\d+\.\d\d)\s*$/m;
  for (const [test, mode, secs] of [["write_bw", "--perftest", "4"], ["send_bw", "-R", "2"], ["read_lat", "--perftest", "2"], ["write_lat", "--perftest", "2"], ["send_lat", "--perftest", "2"]] as const) {
    it(`${test} -D ${secs} ${mode}: each side runs its clock out and prints the messages of the sample, no peak; exit 0`, async () => {
      const server = start("perf", test, mode, "--address", "127.0.15.41", "-D", secs, "--wait", "20");
      await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
      const t0 = Date.now();
      const client = start("perf", test, "127.0.15.41", mode, "--address", "127.0.15.42", "-D", secs, "--wait", "20");
      const [sc, cc] = await Promise.all([server.done, client.done]);
      expect({ cc, err: client.stderr }).toEqual({ cc: 0, err: inlineNotice(test) });
      expect({ sc, err: server.stderr }).toEqual({ sc: 0, err: inlineNotice(test) });
      // the run takes its duration (and not many times more)
      expect(Date.now() - t0).toBeGreaterThanOrEqual(Number(secs) * 1000);
      expect(Date.now() - t0).toBeLessThan(Number(secs) * 1000 + 12_000);
      if (test.endsWith("_bw")) {
        // -D leaves the depth at 128 (perftest lowers it only to -n)
        expect(client.stdout).toContain(" TX depth        : 128\n");
        const m = bwRow.exec(client.stdout)!;
        expect(m, client.stdout).not.toBeNull();
        expect(Number(m[2])).toBeGreaterThan(0);
        expect(m[3]).toBe("0.00"); // no peak in duration mode
        expect(Number(m[4])).toBeGreaterThan(0);
        // write_bw's server prints the client's report; send_bw's its own, also of messages in its sample
        const theirs = bwRow.exec(server.stdout)!;
        expect(theirs, server.stdout).not.toBeNull();
        if (test === "write_bw") expect(theirs[0]).toBe(m[0]);
        else expect(Number(theirs[2])).toBeGreaterThan(0);
      } else {
        expect(client.stdout).toContain(" #bytes        #iterations       t_avg[usec]    tps average\n");
        const m = latRow.exec(client.stdout)!;
        expect(m, client.stdout).not.toBeNull();
        const [iters, avg, tps] = [Number(m[2]), Number(m[3]), Number(m[4])];
        expect(iters).toBeGreaterThan(0);
        // t_avg is the sample over its operations, halved for SEND and WRITE; tps the operations per second
        expect(avg * tps).toBeCloseTo((test === "read_lat" ? 1 : 0.5) * 1e6, -4);
        if (test === "read_lat") expect(latRow.test(server.stdout)).toBe(false);
        else expect(Number(latRow.exec(server.stdout)![2])).toBeGreaterThan(0);
      }
    }, 40_000);
  }

  it("send_bw -b -D 2 (run_iter_bi on its clock): each side its own row of the sends and receives completed in its sample, no report swapped, no peak; exit 0", async () => {
    const server = start("perf", "send_bw", "--perftest", "--address", "127.0.15.41", "-b", "-D", "2", "--wait", "20");
    await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
    const client = start("perf", "send_bw", "127.0.15.41", "--perftest", "--address", "127.0.15.42", "-b", "-D", "2", "--wait", "20");
    expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr).toEqual([0, 0]);
    const [c, sv] = [client.stdout, server.stdout].map((out) => {
      expect(out).toContain("Send Bidirectional BW Test\n");
      const m = bwRow.exec(out)!;
      expect(m, out).not.toBeNull();
      expect(m[3]).toBe("0.00");
      return { iters: Number(m[2]), avg: Number(m[4]), rate: Number(m[5]) };
    });
    for (const f of [c!, sv!]) {
      expect(f.iters).toBeGreaterThan(0);
      // the row's figures are its own count over its own sample: BW = count × 65536 B / sample, rate = count / sample
      expect(f.avg / ((f.rate * 1e6 * 65536) / 2 ** 20)).toBeCloseTo(1, 2);
    }
  }, 40_000);

  it("-f 1 with -D 3: the sample is the middle second (its operations over tps); -f's refusals", async () => {
    const server = start("perf", "write_lat", "--perftest", "--address", "127.0.15.41", "-D", "3", "-f", "1", "--wait", "20");
    await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
    const client = start("perf", "write_lat", "127.0.15.41", "--perftest", "--address", "127.0.15.42", "-D", "3", "-f", "1", "--wait", "20");
    expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr).toEqual([0, 0]);
    const m = latRow.exec(client.stdout)!;
    expect(m, client.stdout).not.toBeNull();
    // tps is the sample's operations over its seconds: one second, not the three of -D 3's default margin of 0
    expect(Number(m[2]) / Number(m[4])).toBeGreaterThan(0.9);
    expect(Number(m[2]) / Number(m[4])).toBeLessThan(1.2);
    await refusals([
      [["write_lat", "--perftest", "-f", "1"], /-f\/--margin: the margins of the duration mode's sample; give -D/],
      [["write_lat", "--perftest", "-D", "4", "-f", "2"], /-f\/--margin 2: please check that DURATION > 2\*MARGIN \(-D 4/],
      [["write_lat", "-f", "1"], /-f\/--margin applies to --perftest and -R/],
    ]);
  }, 40_000);

  // a UD or UC sender's completions come as its datagrams leave: its waits never wait for the network,
  // and its clock (a timer) must still get its turn
  for (const [test, conn, size] of [["send_bw", "UD", "1024"], ["write_bw", "UC", "65536"]] as const) {
    it(`${test} -c ${conn} -D 2: a sender whose completions need no answer still ends on its clock; exit 0`, async () => {
      const server = start("perf", test, "--perftest", "--address", "127.0.15.41", "-c", conn, "-s", size, "-D", "2", "--wait", "20");
      await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
      const t0 = Date.now();
      const client = start("perf", test, "127.0.15.41", "--perftest", "--address", "127.0.15.42", "-c", conn, "-s", size, "-D", "2", "--wait", "20");
      expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr).toEqual([0, 0]);
      expect(Date.now() - t0).toBeLessThan(2000 + 12_000);
      const m = bwRow.exec(client.stdout)!;
      expect(m, client.stdout).not.toBeNull();
      expect(Number(m[2])).toBeGreaterThan(0);
    }, 40_000);
  }

  it("refuses -D with -a (as perftest) and between two softroce perf without --perftest", async () => {
    await refusals([
      [["write_bw", "--perftest", "-D", "2", "-a"], /Duration mode currently doesn't support running on all sizes/],
      [["write_bw", "-D", "2"], /-D\/--duration between two processes runs with --perftest or -R/],
    ]);
  });
});

describe("softroce perf --perftest --run_infinitely (perftest's), two processes", () => {
  const bwRows = (out: string) => [...out.matchAll(/^ (\d+)\s+(\d+)\s+(\d+\.\d\d)\s+(\d+\.\d\d)\s+(\d+\.\d+)$/gm)].map((m) => ({ size: Number(m[1]), iters: Number(m[2]), peak: m[3], avg: Number(m[4]), rate: Number(m[5]) }));
  /** A period's length from its row: its messages × size (× 2 for -b's doubled figures) over its BW */
  const periodS = (r: { size: number; iters: number; avg: number }, factor: number) => (factor * r.size * r.iters) / (r.avg * 2 ** 20);
  // and each server's end once the client is stopped: write_bw's sees the exchange's TCP connection
  // close; with -R nothing says so, and its wait for the client's report gives up after --wait with no
  // packet, as send_bw's test does (its run_iter failing: perftest's line after); read_bw -b's own READs
  // fail their retries (read_bw's line)
  const ends: Record<string, RegExp> = {
    "write_bw --perftest": /peer closed the connection/,
    "write_bw -R": /Failed to read from the rdma_cm connection: nothing from the peer for 5 s/,
    "send_bw -R": /nothing from the peer for 5 s during the test[^]*\n Error occurred while running infinitely on server! aborting \.\.\.\n$/,
    "read_bw --perftest": /Completion with error[^]*\n Error occurred while running! aborting \.\.\.\n$/,
  };
  for (const [test, mode, extra, factor] of [["write_bw", "--perftest", [], 1], ["write_bw", "-R", [], 1], ["send_bw", "-R", [], 1], ["read_bw", "--perftest", ["-b"], 2]] as const) {
    it(`${[test, mode, ...extra].join(" ")} --run_infinitely -D 1: a row a second, each its period's messages, no peak, until the client is stopped`, async () => {
      const server = start("perf", test, mode, "--address", "127.0.15.41", "--run_infinitely", "-D", "1", "--wait", "5", ...extra);
      await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
      const client = start("perf", test, "127.0.15.41", mode, "--address", "127.0.15.42", "--run_infinitely", "-D", "1", "--wait", "5", ...extra);
      // the sides that print rows: the client; send_bw's server its receives; with -b both. A period a
      // datagram was lost in may be a retransmission timeout long (with -R the CM's, 19: 2.1 s) and
      // count nothing: three rows that count, however many do not
      const printing = test === "write_bw" ? [client] : [client, server];
      // when each row came (ms): a row is printed as its period closes, so the time between two rows is
      // the later one's period, seen from here
      const arrivals = printing.map((side) => {
        const at: number[] = [];
        side.child.stdout!.on("data", () => {
          while (at.length < bwRows(side.stdout).length) at.push(Date.now());
        });
        return at;
      });
      const counted = (out: string) => bwRows(out).filter((r) => r.iters > 0);
      for (const side of printing) await until(() => counted(side.stdout).length >= 3 && bwRows(side.stdout).length >= 4, 30_000);
      for (const [k, side] of printing.entries()) {
        for (const [i, r] of bwRows(side.stdout).entries()) {
          expect(r.size).toBe(65536);
          expect(r.peak).toBe("0.00");
          if (r.iters === 0) continue;
          // BW and rate of the same messages; the period a second (a timer fires late, never early), and
          // as long as the time between this row and the one before it
          expect(r.avg / ((r.rate * 1e6 * r.size) / 2 ** 20)).toBeCloseTo(1, 2);
          expect(periodS(r, factor)).toBeGreaterThan(0.95);
          if (i === 0) continue;
          const gap = (arrivals[k]![i]! - arrivals[k]![i - 1]!) / 1000;
          expect(Math.abs(periodS(r, factor) - gap), `period ${periodS(r, factor)} s, rows ${gap} s apart`).toBeLessThan(0.4);
        }
      }
      expect(client.child.exitCode).toBeNull();
      client.child.kill("SIGINT");
      await client.done;
      // write_bw's server waits for the client's end and prints no row
      if (test === "write_bw") expect(bwRows(server.stdout)).toEqual([]);
      expect(await server.done).toBe(1);
      expect(server.stderr).toMatch(ends[`${test} ${mode}`]);
    }, 60_000);
  }

  it("refuses what a run without an end cannot do, and perftest's refusals", async () => {
    await refusals([
      [["write_lat", "--perftest", "--run_infinitely"], /run_infinitely exists only in BW tests for now/],
      [["send_bw", "--perftest", "--run_infinitely", "-b"], /run_infinitely mode is not supported in SEND Bidirectional BW test/],
      [["send_bw", "--perftest", "--run_infinitely", "-e"], /run_infinitely does not support events feature yet/],
      [["write_bw", "--perftest", "--run_infinitely", "-a"], /--run_infinitely runs one size until it is stopped: drop -a/],
      [["write_bw", "--perftest", "--run_infinitely", "-D", "4", "-f", "1"], /-f\/--margin with --run_infinitely: every period of -D is a sample/],
      [["write_bw", "--perftest", "--run_infinitely", "-w", "1"], /-w\/--limit_bw with --run_infinitely: a run that never ends/],
      [["write_bw", "--perftest", "--run_infinitely", "-b", "--report-both"], /--report-both with --run_infinitely/],
      [["write_bw", "--perftest", "--run_infinitely", "--pcap", "x.pcap"], /--pcap with --run_infinitely: the capture is written when the run ends/],
      [["write_bw", "--run_infinitely"], /--run_infinitely applies to --perftest and -R/],
    ]);
  });
});

describe("softroce perf --perftest --latency_gap (perftest's), two processes", () => {
  // as perftest's, the gap is waited before a post's time is taken: a measurement (post to post) holds
  // both sides' gaps on write_lat (its row halves them back to one), the client's on read_lat. A gap
  // counted twice would make the typical row twice the gap; the gap is long beside what a loaded
  // machine adds to a timer's wait (3 ms gaps came back 6.75 ms typical under the whole suite's load)
  const GAP = 20_000;
  for (const test of ["write_lat", "read_lat"]) {
    it(`${test} --latency_gap ${GAP} on both sides: every measurement at least the gap, the typical one well under two; a bandwidth test refuses it, as perftest`, async () => {
      const flags = ["--perftest", "-s", "64", "-n", "20", "--latency_gap", String(GAP)];
      const server = start("perf", test, "--address", "127.0.15.41", ...flags);
      await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
      const client = start("perf", test, "127.0.15.41", "--address", "127.0.15.42", ...flags);
      expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr).toEqual([0, 0]);
      const m = /^ 64\s+20\s+(\d+\.\d\d)\s+(\d+\.\d\d)\s+(\d+\.\d\d)\s+(\d+\.\d\d)/m.exec(client.stdout)!;
      expect(m, client.stdout).not.toBeNull();
      const [tMin, , tTypical] = [Number(m[1]), Number(m[2]), Number(m[3])];
      expect(tMin).toBeGreaterThanOrEqual(GAP);
      expect(tTypical).toBeLessThan(1.5 * GAP);
    }, 40_000);
  }

  it("refusals: a bandwidth test (perftest's), without --perftest or -R", async () => {
    await refusals([
      [["write_bw", "--perftest", "--latency_gap", "10"], /--latency_gap: Latency gap feature is only for latency tests \(write_bw, perftest's refusal\)/],
      [["write_lat", "--latency_gap", "10"], /--latency_gap applies to --perftest and -R/],
    ]);
  });
});

describe("softroce perf --perftest and -R --rate_limit (perftest's SW rate limiter and its HW one's fallback), two processes", () => {
  /** The client's message rate (messages a second) from its row of `size` and `iters`. */
  const rateOf = (out: string, size: number, iters: number): number => {
    const m = new RegExp(`^ ${size}\\s+${iters}\\s+\\d+\\.\\d\\d\\s+\\d+\\.\\d\\d\\s+(\\d+\\.\\d+)$`, "m").exec(out);
    expect(m, out).not.toBeNull();
    return Number(m![1]) * 1e6;
  };
  // a run of n messages in bursts of b, one burst a gap from its start, spans at least (n/b - 1) gaps:
  // the rate is at most n / that (without the limiter loopback runs 10 to 50 times as fast); the lower
  // bound is loose (a loaded machine only slows a run down) and says the bursts do not stop
  const cases = [
    { what: "write_bw --perftest -q 2 --rate_limit_type SW --rate_limit 1000 --rate_units p --burst_size 10", test: "write_bw", flags: ["--perftest", "-q", "2", "-n", "100"], limit: ["--rate_limit_type", "SW", "--rate_limit", "1000", "--rate_units", "p", "--burst_size", "10"], pps: 1000, burst: 10, n: 200, said: "" },
    { what: "send_bw -R -t 16 --rate_limit_type SW --rate_limit 1600 --rate_units p (the burst the tx depth, said)", test: "send_bw", flags: ["-R", "-n", "256", "-t", "16"], limit: ["--rate_limit_type", "SW", "--rate_limit", "1600", "--rate_units", "p"], pps: 1600, burst: 16, n: 256, said: " Setting burst size to tx depth = 16\n" },
  ];
  for (const c of cases) {
    it(`${c.what}: the client's message rate at most the limit's (its bursts' gaps), the server's row as ever; exit 0`, async () => {
      const server = start("perf", c.test, "--address", "127.0.15.41", "-s", "64", ...c.flags);
      await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
      const client = start("perf", c.test, "127.0.15.41", "--address", "127.0.15.42", "-s", "64", ...c.flags, ...c.limit);
      expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr).toEqual([0, 0]);
      expect(client.stderr).toBe(c.said);
      const gaps = c.n / c.burst - 1;
      const rate = rateOf(client.stdout, 64, c.n);
      expect(rate).toBeLessThanOrEqual(c.n / (gaps / (c.pps / c.burst)) * 1.001);
      expect(rate).toBeGreaterThan(c.pps / 4);
      expect(server.stdout).toMatch(new RegExp(`^ 64\\s+${c.n}\\s`, "m"));
    }, 40_000);
  }

  it("write_bw --rate_limit 10 (HW, the default type): the QP takes no HW rate, so the SW limiter runs, said as perftest against rxe; --rate_limit_type HW fails there, as perftest's", async () => {
    const flags = ["--perftest", "-s", "64", "-n", "20"];
    let server = start("perf", "write_bw", "--address", "127.0.15.41", ...flags);
    await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
    let client = start("perf", "write_bw", "127.0.15.41", "--address", "127.0.15.42", ...flags, "--rate_limit", "10");
    expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr).toEqual([0, 0]);
    expect(client.stderr).toBe("\x1b[31mThe QP failed to accept HW rate limit, providing SW rate limit \x1b[0m\n");
    expect(client.stdout).toMatch(/^ 64\s+20\s/m);

    server = start("perf", "write_bw", "--address", "127.0.15.41", ...flags);
    await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
    client = start("perf", "write_bw", "127.0.15.41", "--address", "127.0.15.42", ...flags, "--rate_limit", "10", "--rate_limit_type", "HW");
    expect(await Promise.all([server.done, client.done])).toEqual([1, 1]);
    // the header, then the failure: no address lines (perftest's ctx_connect comes before them)
    expect(client.stderr).toBe("\x1b[31mThe QP failed to accept HW rate limit  \x1b[0m\n Unable to Connect the HCA's through the link\n");
    expect(client.stdout).toContain("RDMA_Write BW Test");
    expect(client.stdout).not.toContain("local address");
    expect(server.stderr).toMatch(/Failed to read from socket .*the peer closed the connection/);
  }, 40_000);

  it("refusals: perftest's (units, types, -R with HW, bursts without a limiter), ours, without --perftest or -R", async () => {
    await refusals([
      [["write_bw", "--perftest", "--rate_limit", "3"], /--rate_limit 3: Failed: Unknown rate limit value/],
      [["write_bw", "-R", "--rate_limit", "10"], /HW rate limit isn't supported yet with rdma_cm scenarios/],
      [["write_bw", "--perftest", "--rate_limit", "10", "--rate_units", "p"], /pps rate limit units is not supported when setting HW rate limit/],
      [["write_bw", "--perftest", "--rate_units", "x"], /--rate_units must be one of M, g, p/],
      [["write_bw", "--perftest", "--burst_size", "5"], /Can't enable burst mode when rate limiter is off/],
      [["write_lat", "--perftest", "--rate_limit_type", "SW", "--rate_limit", "1"], /SW Rate limiter cann't be executed on non-BW/],
      [["write_bw", "--perftest", "--rate_limit_type", "SW", "--rate_limit", "1", "--rate_units", "p"], /less than one burst of 128/],
      [["write_bw", "--rate_limit", "10"], /--rate_limit applies to --perftest and -R/],
    ]);
  });
});

describe("softroce perf --perftest --pkey_index and --dont_xchg_versions (perftest's), two processes", () => {
  it("write_bw --pkey_index 70: past the device's max_pkeys (64, rxe's), said as perftest's check_link says it and taken as 0; --pkey_index 3 says nothing (rxe's QPs take it); exit 0", async () => {
    for (const [index, said] of [["70", " Specified PKey Index, 70, greater than allowed max, 63\n Changing to 0\n"], ["3", ""]] as const) {
      const flags = ["--perftest", "-s", "64", "-n", "20"];
      const server = start("perf", "write_bw", "--address", "127.0.15.41", ...flags);
      await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
      const client = start("perf", "write_bw", "127.0.15.41", "--address", "127.0.15.42", ...flags, "--pkey_index", index, "-i", "1");
      expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr).toEqual([0, 0]);
      expect(client.stderr).toBe(said);
      // perftest's RESULT_LINE before the notice: the client's output opens with a second rule
      expect(client.stdout.startsWith(`${"-".repeat(87)}\n${"-".repeat(87)}\n`)).toBe(said !== "");
      expect(client.stdout).toMatch(/^ 64\s+20\s/m);
    }
  }, 40_000);

  it("-V: perftest's version line (the version the exchange sends) and exit 1, as perftest's; before perftest's later checks, and refused without --perftest or -R", async () => {
    for (const args of [["write_bw", "--perftest", "-V"], ["read_lat", "-R", "--version", "-b"]]) {
      const r = start("perf", ...args);
      expect(await r.done, r.stderr).toBe(1);
      expect({ out: r.stdout, err: r.stderr }).toEqual({ out: "Version: 6.06\n", err: "" }); // Debian 12 perftest 4.5-0.17's
    }
    await refusals([[["write_bw", "-V"], /-V\/--version applies to --perftest and -R/]]);
  });

  it("refusals: --dont_xchg_versions (perftest's own check then fails, whatever the peer), a negative index, without --perftest or -R; -O and -i past the device's one port", async () => {
    await refusals([
      [["write_bw", "--perftest", "--dont_xchg_versions"], /--dont_xchg_versions: perftest then checks the peer's version it never received and exits: Current implementation is not compatible with versions older than 5\.70/],
      [["write_bw", "--perftest", "--pkey_index", "-1"], /--pkey_index/],
      [["write_bw", "--pkey_index", "1"], /--pkey_index applies to --perftest and -R/],
      [["write_bw", "--perftest", "-O"], /-O\/--dualport: Unable to query port 2 attributes \(the device has one port/],
      [["write_lat", "--perftest", "-O"], /-O\/--dualport: Dual-port mode only supports BW tests\./],
      [["write_bw", "--perftest", "-i", "2"], /-i\/--ib-port 2: Unable to query port 2 attributes \(the device has one port, 1\)/],
    ]);
  });
});

describe("softroce perf --perftest -W, -S and -L (perftest's), two processes", () => {
  const COUNTERS = "hw_counters/sent_pkts,hw_counters/rcvd_pkts,hw_counters/bad_icrc";
  /** The -W lines after a row of `size`: each counter's change, by name. */
  const countersAfterRow = (out: string, size: string): Record<string, number> => {
    const m = new RegExp(`^ ${size}\\s.*\n((?:\t.*\n)+)\n${PERF_RULE.replace(/-/g, "\\-")}`, "m").exec(out);
    if (!m) throw new Error(`no counters after the ${size} B row in:\n${out}`);
    return Object.fromEntries(m[1]!.trimEnd().split("\n").map((l) => /^\t(\S+)=(\d+)$/.exec(l)!.slice(1)).map(([k, v]) => [k, Number(v)]));
  };

  it("write_bw -W: after each side's row, perftest's tab-indented change of each counter since the device opened and an empty line; what one side sent the other received", async () => {
    const port = String(await freeTcpPort());
    const flags = ["--perftest", "-s", "4096", "-n", "100", "-p", port, "-W", COUNTERS];
    const server = start("perf", "write_bw", "--address", "127.0.15.41", ...flags);
    await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
    const client = start("perf", "write_bw", "127.0.15.41", "--address", "127.0.15.42", ...flags, "--sl", "5", "-L", "64");
    expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr).toEqual([0, 0]);
    const [c, s] = [countersAfterRow(client.stdout, "4096"), countersAfterRow(server.stdout, "4096")];
    expect(Object.keys(c)).toEqual(COUNTERS.split(","));
    // a 4096 B WRITE is one packet at loopback's MTU of 4096: the client sent at least the 100
    expect(c["hw_counters/sent_pkts"]).toBeGreaterThanOrEqual(100);
    expect({ sent: c["hw_counters/sent_pkts"], rcvd: c["hw_counters/rcvd_pkts"] }).toEqual({ sent: s["hw_counters/rcvd_pkts"], rcvd: s["hw_counters/sent_pkts"] });
    expect([c["hw_counters/bad_icrc"], s["hw_counters/bad_icrc"]]).toEqual([0, 0]);
  }, 40_000);

  it("send_lat -W: both sides' rows are followed by their counters: each received the other's 50 messages, and its own SENDs completed (the last perhaps not yet)", async () => {
    const port = String(await freeTcpPort());
    const flags = ["--perftest", "-n", "50", "-p", port, "-W", "hw_counters/rdma_sends,hw_counters/rdma_recvs"];
    const server = start("perf", "send_lat", "--address", "127.0.15.41", ...flags);
    await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
    const client = start("perf", "send_lat", "127.0.15.41", "--address", "127.0.15.42", ...flags);
    expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr).toEqual([0, 0]);
    // rdma_recvs counts a SEND as it arrives: each side's 50 are in before it prints. rdma_sends counts a
    // SEND's completion (as rxe's completer): the last one's ACK may come after the side printed
    for (const out of [client.stdout, server.stdout]) {
      const k = countersAfterRow(out, "2");
      expect(Object.keys(k)).toEqual(["hw_counters/rdma_sends", "hw_counters/rdma_recvs"]);
      expect(k["hw_counters/rdma_recvs"], out).toBe(50);
      expect([49, 50], out).toContain(k["hw_counters/rdma_sends"]);
    }
  }, 40_000);

  it("-W naming no counter of the device: perftest's two lines on stderr and exit 1, before the banner (perftest opens them first)", async () => {
    for (const list of ["counters/port_xmit_data", "hw_counters/sent_pkts,hw_counters/nonesuch", "sent_pkts"]) {
      const r = start("perf", "write_bw", "--perftest", "--address", "127.0.15.41", "-p", String(await freeTcpPort()), "-W", list);
      expect(await r.done, list).toBe(1);
      expect({ out: r.stdout, err: r.stderr }).toEqual({ out: "", err: " Unable to access performance counters\n Unable to create RDMA_CM resources\n" });
    }
  });

  it("refusals: -L other than 64 (perftest's Raw Ethernet hop limit), -S past 15; perftest's memory, Raw Ethernet and mlx5 options say why they are not taken", async () => {
    await refusals([
      [["write_bw", "--perftest", "-L", "3"], /-L\/--hop_limit 3: Hop limit only valid for RawEth QP/],
      [["send_lat", "-R", "--hop_limit", "255"], /Hop limit only valid for RawEth QP/],
      [["write_bw", "--perftest", "--sl", "16"], /--sl must be at most 15/],
      [["write_bw", "-S", "1"], /--sl applies to --perftest and -R/],
      [["write_bw", "--perftest", "--odp"], /unknown flag --odp \(perftest's on-demand paging/],
      [["write_bw", "--perftest", "--use_hugepages"], /--use_hugepages \(perftest's buffers in huge pages/],
      [["write_bw", "--perftest", "--mmap=/tmp/buf"], /--mmap \(perftest's buffer mapped from a file/],
      [["send_bw", "--perftest", "-c", "UD", "-g"], /unknown flag -g \(perftest's multicast, .* is not in softroce perf; softroce mckey runs rdma_cm's multicast/],
      [["write_bw", "--perftest", "--dest_mac", "00:11:22:33:44:55"], /unknown flag --dest_mac \(perftest's Raw Ethernet tests' .*which softroce perf does not run/],
      [["write_bw", "--perftest", "-B", "00:11:22:33:44:55"], /unknown flag -B \(perftest's Raw Ethernet tests'/],
      [["write_bw", "--perftest", "--use_ooo"], /unknown flag --use_ooo \(perftest's option for an mlx5 device's own feature/],
      [["write_bw", "--perftest", "--dlid", "3"], /unknown flag --dlid \(perftest's destination LID for InfiniBand/],
    ]);
  });

  it("-S: the SL in an RC or UC QP's address vector and a UD QP's address handle, as perftest's ctx_modify_qp_to_rtr puts it; 0 without it", async () => {
    const dev = await smallDevice();
    const pd = dev.allocPd();
    const cq = dev.createCq(16);
    const peer = { lid: 0, outReads: 1, qpn: 0x12, psn: 7, rkey: 0, vaddr: 0n, gid: parseGid("::ffff:127.0.0.2"), srqn: 0 };
    const cases: [Connection, number | undefined][] = [["RC", 5], ["UC", 15], ["UD", 7], ["RC", undefined]];
    for (const [connection, sl] of cases) {
      const qpType = { RC: QpType.RC, UC: QpType.UC, UD: QpType.UD }[connection];
      const qp = await plainQp(0)(pd, { qpType, sendCq: cq, recvCq: cq, cap: { maxSendWr: 4, maxRecvWr: 4, maxSendSge: 1, maxRecvSge: 1 } });
      const c: QpCtx = { qp, buf: undefined as never, me: { ...peer, qpn: qp.qpNum, psn: 1 } };
      connectQp(c, peer, Mtu.MTU_1024, { udpPort: 4791, connection, sl } as PerftestOptions, pd, 16);
      expect(connection === "UD" ? c.ud!.ah.query().sl : qp.query().attr.ahAttr.sl, `${connection} -S ${sl}`).toBe(sl ?? 0);
    }
    dev.close();
  });
});

describe("softroce perf --perftest --source_ip and --ipv6 (perftest's), two processes", () => {
  it("--source_ip without --address: the device binds it (the client's GID line, the server's remote line) and the exchange's TCP connection comes from it; --ipv6 taken (the one GID is perftest's pick)", async () => {
    const port = String(await freeTcpPort());
    const flags = ["--perftest", "-s", "4096", "-n", "20", "-p", port];
    const server = start("perf", "write_bw", "--address", "127.0.15.41", ...flags);
    await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
    const client = start("perf", "write_bw", "127.0.15.41", ...flags, "--source_ip", "127.0.15.44", "--ipv6");
    expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr).toEqual([0, 0]);
    const gidLine = " GID: 00:00:00:00:00:00:00:00:00:00:255:255:127:00:15:44\n";
    expect(client.stdout).toContain(` local address: LID 0000 QPN`);
    expect(client.stdout.split(" remote address")[0]).toContain(gidLine);
    expect(server.stdout.split(" remote address")[1]).toContain(gidLine);
    // the exchange's connection, seen by a stand-in for the server: it comes from --source_ip, not the device's --address
    const seen = net.createServer();
    const from = new Promise<string | undefined>((resolve) => seen.once("connection", (s) => (resolve(s.remoteAddress), s.destroy())));
    await new Promise<void>((r) => seen.listen(0, "127.0.15.41", r));
    const standIn = String((seen.address() as net.AddressInfo).port);
    const c2 = start("perf", "write_bw", "127.0.15.41", "--perftest", "-p", standIn, "--address", "127.0.15.42", "--source_ip", "127.0.15.44", "--wait", "5");
    expect(await from).toBe("127.0.15.44");
    expect(await c2.done).toBe(1);
    seen.close();
  }, 40_000);

  it("refusals: --source_ip not IPv4 (perftest's inet_addr), or with -R or -z and another --address (rdma_cm's source is the device's); GPU memory options say why they are not taken", async () => {
    await refusals([
      [["write_bw", "--perftest", "--source_ip", "::1"], /--source_ip wants an IPv4 address/],
      [["write_bw", "-R", "--source_ip", "127.0.15.44"], /--source_ip 127\.0\.15\.44 with -R: rdma_cm's source is the device's address \(--address 127\.0\.15\.42\)/],
      [["write_bw", "-z", "--source_ip", "127.0.15.44"], /--source_ip 127\.0\.15\.44 with -z: rdma_cm's source/],
      [["write_bw", "--source_ip", "127.0.15.44"], /--source_ip applies to --perftest and -R/],
      [["write_bw", "--perftest", "--use_cuda", "0"], /unknown flag --use_cuda \(perftest's buffers in GPU memory/],
    ]);
  });
});

describe("softroce perf --perftest --force-link, -Z/-P and --flow_label (perftest's), two processes", () => {
  /** a server on 127.0.15.41 (once it waits) and a client from 127.0.15.42, each with `flags` and its own */
  async function pair(test: string, flags: string[], own: { server?: string[]; client?: string[] } = {}) {
    const server = start("perf", test, "--address", "127.0.15.41", ...flags, ...(own.server ?? []));
    await until(() => server.stdout.includes("Waiting for client"), 15_000);
    const client = start("perf", test, "127.0.15.41", "--address", "127.0.15.42", ...flags, ...(own.client ?? []));
    return { server, client };
  }
  const GID = /^ GID: 00:00:00:00:00:00:00:00:00:00:255:255:127:00:15:4[12]$/gm;

  it("--force-link=IB -x 0: the header says Link type IB and the GID index -x gave, the address lines their GIDs, the test runs; -Z on the server, -P and --flow_label on the client change nothing (exit 0)", async () => {
    const flags = ["--perftest", "-s", "4096", "-n", "20", "-p", String(await freeTcpPort()), "--force-link=IB", "-x", "0"];
    const { server, client } = await pair("write_bw", flags, { server: ["-Z"], client: ["-P", "--flow_label", "3"] });
    expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr).toEqual([0, 0]);
    for (const out of [client.stdout, server.stdout]) {
      expect(out).toContain(" Link type       : IB\n GID index       : 0\n");
      expect(out.match(GID)?.length, out).toBe(2);
      expect(out).toMatch(/^ 4096\s+20\s/m);
    }
  }, 40_000);

  it("--force-link=ib without -x: no GID, so no GRH: perftest's RTR failure after the header (no GID index line, no address lines) on both sides, exit 1", async () => {
    const flags = ["--perftest", "-n", "5", "-p", String(await freeTcpPort()), "--force-link=ib"];
    const { server, client } = await pair("send_lat", flags);
    expect(await Promise.all([server.done, client.done])).toEqual([1, 1]);
    for (const side of [client, server]) {
      expect(side.stderr).toMatch(/^Failed to modify QP \d+ to RTR\n Unable to Connect the HCA's through the link\n$/);
      expect(side.stdout).toContain(" Link type       : IB\n Max inline data : 0[B]\n");
      expect(side.stdout).not.toContain("GID");
      expect(side.stdout).not.toContain("address:");
    }
  }, 40_000);

  it("-R --force-link=IB: rdma_cm's route has the GID, so the test runs; the header and the address lines show none (perftest's gid_index is unset)", async () => {
    const flags = ["-R", "-n", "5", "-p", String(await freeTcpPort()), "--force-link=IB"];
    const { server, client } = await pair("send_lat", flags);
    expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr).toEqual([0, 0]);
    expect(client.stdout).toContain(" Link type       : IB\n Max inline data : 0[B]\n");
    expect(client.stdout).toMatch(/^ local address: LID 0000 QPN 0x[0-9a-f]{4,} PSN 0x[0-9a-f]{6}\n remote address: LID 0000 QPN 0x[0-9a-f]{4,} PSN 0x[0-9a-f]{6}\n-{20}/m);
    expect(client.stdout).not.toContain("GID");
    expect(client.stdout).toMatch(/^ 2\s+5\s/m);
  }, 40_000);

  it("refusals: --force-link that is neither IB nor Ethernet (by perftest's prefixes: 'eth' is neither), a negative --flow_label, -Z/-P and --force-link without --perftest or -R; -j (perftest's source IP, softroce's --json) with --perftest or -R", async () => {
    await refusals([
      [["write_bw", "--perftest", "--force-link=roce"], /--force-link roce: Invalid link layer value should be IB or ETHERNET/],
      [["write_bw", "--perftest", "--force-link", "eth"], /--force-link eth: Invalid link layer value/],
      [["write_bw", "--perftest", "--flow_label", "-1"], /--flow_label/],
      [["write_bw", "-Z"], /-Z\/--server applies to --perftest and -R/],
      [["write_bw", "-P"], /-P\/--client applies to --perftest and -R/],
      [["write_bw", "--force-link=IB"], /--force-link applies to --perftest and -R/],
      // perftest's -j is its source IP: here -j is --json, which perftest's output is not
      [["write_bw", "--perftest", "-j", "127.0.15.44"], /-j 127\.0\.15\.44: perftest's -j is its source IP, --source_ip here/],
      [["write_bw", "-R", "--json"], /-j\/--json: with --perftest and -R/],
    ]);
  });
});

describe("softroce perf --perftest --reversed (perftest's), two processes", () => {
  const WAITS = "* Waiting for client to connect... *";
  for (const test of ["write_bw", "send_bw", "write_lat"]) {
    it(`${test} --reversed on both: the listening side runs the client's part and the connecting side the server's (its banner before it connects, the server's header); exit 0`, async () => {
      const lat = test.endsWith("_lat");
      const port = String(await freeTcpPort());
      const flags = ["--perftest", "--reversed", "-s", "4096", "-n", "50", "-p", port];
      // the listener says nothing before its header (the banner is the connecting side's now)
      const server = start("perf", test, "--address", "127.0.15.41", ...flags);
      await until(() => tcpListening(Number(port)) || server.child.exitCode !== null, 15_000);
      expect(server.stdout).toBe("");
      const client = start("perf", test, "127.0.15.41", "--address", "127.0.15.42", ...flags);
      expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr).toEqual([0, 0]);
      expect(client.stdout.indexOf(WAITS)).toBeGreaterThanOrEqual(0);
      expect(client.stdout.indexOf(WAITS)).toBeLessThan(client.stdout.indexOf(" Data ex. method"));
      // perftest's header: TX depth on the sending machine (the client's part), rx depth on send_bw's receiver
      expect(server.stdout).toContain(` TX depth        : ${lat ? 1 : 50}\n`);
      expect(client.stdout).not.toContain(" TX depth ");
      if (test === "send_bw") {
        expect(client.stdout).toContain(" RX depth        : 50\n");
        expect(server.stdout).not.toContain(" RX depth ");
      }
      const row = (out: string) => out.split("\n").find((l) => /^ 4096\s+50\s/.test(l));
      expect(row(server.stdout), server.stdout).toBeDefined();
      expect(row(client.stdout), client.stdout).toBeDefined();
      // write_bw: the receiver prints the sender's report; send_bw: the receiver measures its own, no peak
      if (test === "write_bw") expect(row(client.stdout)).toBe(row(server.stdout));
      if (test === "send_bw") expect(row(client.stdout)).toMatch(/^ 4096\s+50\s+0\.00\s/);
      if (test === "send_bw") expect(row(server.stdout)).not.toMatch(/^ 4096\s+50\s+0\.00\s/);
    }, 40_000);
  }

  it("refusals: with -R (perftest's rdma_cm would connect from the side without the server's address), without --perftest", async () => {
    await refusals([
      [["write_bw", "-R", "--reversed"], /--reversed with -R: perftest's rdma_cm then connects from the side without the server's address, and fails/],
      [["write_bw", "--reversed"], /--reversed applies to --perftest and -R/],
    ]);
  });
});

describe("softroce perf --perftest -C (perftest's --report-cycles), two processes", () => {
  it("write_lat -C -U: the measurements in whole cycles over the round trip's 2 (at /proc/cpuinfo's rate, a loopback half round trip of µs to ms), under '#, cycles'; exit 0", async () => {
    const mhz = Number(/^cpu MHz\s*:\s*([0-9.]+)/m.exec(readFileSync("/proc/cpuinfo", "utf8"))![1]);
    const flags = ["--perftest", "-s", "64", "-n", "20"];
    const server = start("perf", "write_lat", "--address", "127.0.15.41", ...flags);
    await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
    const client = start("perf", "write_lat", "127.0.15.41", "--address", "127.0.15.42", ...flags, "-C", "-U");
    expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr).toEqual([0, 0]);
    const list = client.stdout.split("#, cycles\n")[1]!.split(PERF_RULE)[0]!.trimEnd().split("\n").map((l) => Number(l.split(", ")[1]));
    expect(list).toHaveLength(19);
    for (const x of list) {
      expect(Number.isInteger(x * 2), String(x)).toBe(true); // a cycles_t over 2
      expect(x / mhz).toBeGreaterThan(1); // µs: no loopback half round trip is under 1 µs (in µs the test would fail here: 1 cycle is 1/mhz µs)
      expect(x / mhz).toBeLessThan(1e6);
    }
    const m = /^ 64\s+20\s+(\d+\.\d\d)\s/m.exec(client.stdout)!;
    // the row's t_min (%.2f) is the least of the list (%g: six digits)
    expect(Math.abs(Number(m[1]) - Math.min(...list)) / Math.min(...list)).toBeLessThan(1e-5);
  }, 40_000);

  it("refusals: a bandwidth test (perftest's), without --perftest or -R", async () => {
    await refusals([
      [["write_bw", "--perftest", "-C"], /-C\/--report-cycles: Available only on Latency tests \(write_bw, perftest's refusal\)/],
      [["write_lat", "-C"], /-C\/--report-cycles applies to --perftest and -R/],
    ]);
  });
});

describe("softroce perf --perftest and -R -o (perftest's outstanding reads), two processes", () => {
  const OVER = " Number of outstanding reads is above max = 128\n Changing to that max value\n";
  const cases = [
    { mode: "--perftest", test: "read_bw", outs: "4", header: 4, said: "" },
    { mode: "-R", test: "atomic_bw", outs: "200", header: 128, said: OVER },
    { mode: "--perftest", test: "read_lat", outs: "0", header: 128, said: "" },
  ];
  for (const c of cases) {
    it(`${c.test} ${c.mode} -o ${c.outs} on both sides: the header's Outstand reads ${c.header}${c.said ? ", said as perftest's" : ""}; exit 0`, async () => {
      const size = c.test.startsWith("atomic") ? "8" : "64";
      const flags = [c.mode, "-s", size, "-n", "50", "-o", c.outs];
      const server = start("perf", c.test, "--address", "127.0.15.41", ...flags);
      await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
      const client = start("perf", c.test, "127.0.15.41", "--address", "127.0.15.42", ...flags);
      expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr).toEqual([0, 0]);
      for (const side of [client, server]) {
        expect(side.stderr).toBe(INLINE_NOTICE + c.said);
        expect(side.stdout).toContain(` Outstand reads  : ${c.header}\n`);
      }
      // the key message carries it: a READ test's remote address line shows the peer's (perftest's OUT; not with -R)
      if (c.test.startsWith("read") && c.mode === "--perftest") expect(client.stdout).toMatch(new RegExp(` remote address: LID 0000 QPN 0x[0-9a-f]+ PSN 0x[0-9a-f]+ OUT 0x${c.header.toString(16).padStart(2, "0")} `));
    }, 40_000);
  }
});

describe("softroce perf --perftest --wait_destroy and --use_old_post_send (perftest's), two processes", () => {
  for (const mode of ["--perftest", "-R"]) {
    it(`write_bw ${mode} --wait_destroy 1: each side says it waits, last, and waits a second before its resources (and connections) go; exit 0`, async () => {
      const flags = [mode, "-s", "4096", "-n", "20", "--wait_destroy", "1", "--use_old_post_send"];
      const server = start("perf", "write_bw", "--address", "127.0.15.41", ...flags);
      await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
      const t0 = Date.now();
      const client = start("perf", "write_bw", "127.0.15.41", "--address", "127.0.15.42", ...flags);
      let rowAt = 0;
      client.child.stdout!.on("data", () => {
        if (!rowAt && / 4096\s+20\s/.test(client.stdout)) rowAt = Date.now();
      });
      expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr).toEqual([0, 0]);
      for (const out of [client.stdout, server.stdout]) {
        expect(out.endsWith(`${PERF_RULE}\n Waiting 1 seconds before releasing resources...\n`), out).toBe(true);
        expect(out).toContain(" ibv_wr* API     : OFF\n");
      }
      expect(rowAt).toBeGreaterThan(t0);
      expect(Date.now() - rowAt).toBeGreaterThanOrEqual(1000);
    }, 40_000);
  }
});

describe("softroce perf --perftest --cpu_util (perftest's), two processes", () => {
  const util = (out: string, row: RegExp) => {
    const line = out.split("\n").find((l) => row.test(l));
    expect(line, out).toBeDefined();
    const m = /\t {4}(\d+\.\d\d)$/.exec(line!);
    expect(m, line).not.toBeNull();
    return Number(m![1]);
  };
  it("write_bw and send_lat with -D 2: the CPU_Util[%] column after each header and row (write_bw's server, printing the client's report, 0.00); in its --out_json file too", async () => {
    const dir = mkdtempSync(join(tmpdir(), "softroce-cpu-"));
    try {
      for (const [test, header, row] of [["write_bw", "   MsgRate[Mpps]    CPU_Util[%]\n", /^ 65536\s+\d+\s+0\.00\s/], ["send_lat", " tps average    CPU_Util[%]\n", /^ 2\s+\d+\s+\d+\.\d\d\s+\d+\.\d\d/]] as const) {
        const json = join(dir, `${test}.json`);
        const server = start("perf", test, "--perftest", "--address", "127.0.15.41", "-D", "2", "--cpu_util", "--wait", "20");
        await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
        const client = start("perf", test, "127.0.15.41", "--perftest", "--address", "127.0.15.42", "-D", "2", "--cpu_util", "--wait", "20", "--out_json", "--out_json_file", json);
        expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr).toEqual([0, 0]);
        for (const out of [client.stdout, server.stdout]) expect(out).toContain(header);
        const mine = util(client.stdout, row);
        expect(mine).toBeGreaterThan(0);
        expect(mine).toBeLessThanOrEqual(100);
        if (test === "write_bw") expect(util(server.stdout, row)).toBe(0);
        else expect(util(server.stdout, row)).toBeGreaterThan(0);
        expect(readFileSync(json, "utf8")).toContain(`CPU_util: ${mine.toFixed(2)},\n},\n}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it("without -D: perftest's note on stderr, a rule on stdout, and no column; exit 0", async () => {
    const server = start("perf", "write_bw", "--perftest", "--address", "127.0.15.41", "-s", "4096", "-n", "20", "--cpu_util");
    await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
    const client = start("perf", "write_bw", "127.0.15.41", "--perftest", "--address", "127.0.15.42", "-s", "4096", "-n", "20", "--cpu_util");
    expect(await Promise.all([server.done, client.done])).toEqual([0, 0]);
    for (const r of [client, server]) {
      expect(r.stderr).toBe(" CPU Utilization works only with Duration mode.\n");
      expect(r.stdout.startsWith(`${PERF_RULE}\n`), r.stdout).toBe(true);
      expect(r.stdout).not.toContain("CPU_Util");
    }
  }, 40_000);
});

describe("softroce perf --perftest -q (several QPs), two processes", () => {
  const rkeys = (out: string, which: string) => new Set([...out.matchAll(new RegExp(`^ ${which} address: .*RKey (0x[0-9a-f]+)`, "gm"))].map((m) => m[1]));
  for (const test of ["write_bw", "read_bw", "send_bw", "atomic_bw"]) {
    it(`${test} -q 3: a key message and an address line per QP; the client's buffers in one MR, the server's --mr_per_qp in one each; exit 0`, async () => {
      const size = test === "atomic_bw" ? "8" : "4096";
      const server = start("perf", test, "--perftest", "--address", "127.0.15.41", "-s", size, "-n", "100", "-q", "3", "--mr_per_qp");
      await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
      const client = start("perf", test, "127.0.15.41", "--perftest", "--address", "127.0.15.42", "-s", size, "-n", "100", "-q", "3", "-t", "16");
      const [sc, cc] = await Promise.all([server.done, client.done]);
      expect({ cc, err: client.stderr }).toEqual({ cc: 0, err: inlineNotice(test) });
      expect({ sc, err: server.stderr }).toEqual({ sc: 0, err: inlineNotice(test) });
      for (const out of [client.stdout, server.stdout]) {
        expect(out).toContain(" Number of qps   : 3\t\tTransport type : IB\n");
        expect(out.match(/^ local address: /gm)?.length, out).toBe(3);
        expect(out.match(/^ remote address: /gm)?.length, out).toBe(3);
        // perftest's order: every local line, then every remote one
        expect(out.lastIndexOf(" local address: ")).toBeLessThan(out.indexOf(" remote address: "));
        // -n is per QP; #iterations counts every QP's messages, as perftest 4.5's column
        expect(out).toMatch(new RegExp(`^ ${size}\\s+300\\s+\\d+\\.\\d\\d`, "m"));
      }
      if (test === "write_bw" || test === "read_bw") {
        expect(rkeys(client.stdout, "local").size).toBe(1);
        expect(rkeys(client.stdout, "remote").size).toBe(3);
        expect(rkeys(server.stdout, "local").size).toBe(3);
      }
    });
  }

  it("refuses what it does not run: -q on a latency test, and more CQ entries than the device's max_cqe", async () => {
    await refusals([
      [["write_lat", "--perftest", "-q", "2"], /latency tests run on one QP; qps must be 1, got 2/],
      [["write_bw", "--perftest", "-n", "4"], /-n\/--iters 4: Iteration num should be between 5 and 100000000/],
      [["read_lat", "--perftest", "-n", "1"], /Iteration num should be between 5 and 100000000/],
      [["send_bw", "--perftest", "-q", "64"], /-q 64 × \(tx depth 128 \+ 512 receives\) needs 40976 CQ entries; the device's max_cqe is 32767/],
    ]);
  });
});

describe("softroce perf --perftest against a peer out of step or gone: a clear error, never a hang", () => {
  it("two sides with different -q: the server names the report it cannot read, both exit 1", async () => {
    const tcp = String(await freeTcpPort());
    const server = start("perf", "write_bw", "--perftest", "--address", "127.0.15.41", "-p", tcp, "-s", "4096", "-n", "50", "--wait", "3");
    await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
    const client = start("perf", "write_bw", "127.0.15.41", "--perftest", "--address", "127.0.15.42", "-p", tcp, "-s", "4096", "-n", "50", "-q", "3", "--wait", "3");
    const [sc, cc] = await Promise.all([server.done, client.done]);
    expect(sc, server.stderr).toBe(1);
    expect(cc, client.stderr).toBe(1);
    expect(server.stderr).toMatch(/^the peer's report is not one \(size \d+, iterations \d+\): do both sides run the same test with the same -q\?\n$/);
  });

  it("the other way round: the side left waiting gives up after --wait with no byte and no packet", async () => {
    const tcp = String(await freeTcpPort());
    const server = start("perf", "write_bw", "--perftest", "--address", "127.0.15.41", "-p", tcp, "-s", "4096", "-n", "50", "-q", "3", "--wait", "2");
    await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
    const client = start("perf", "write_bw", "127.0.15.41", "--perftest", "--address", "127.0.15.42", "-p", tcp, "-s", "4096", "-n", "50", "--wait", "2");
    const t0 = Date.now();
    const [sc, cc] = await Promise.all([server.done, client.done]);
    expect([sc, cc]).toEqual([1, 1]);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(client.stderr + server.stderr).toMatch(/nothing from the peer for 2 s, on the exchange or the device .*same -q\?/);
  });

  it("a server nobody connects to exits after --wait", async () => {
    const server = start("perf", "write_bw", "--perftest", "--address", "127.0.15.41", "-p", String(await freeTcpPort()), "--wait", "1");
    expect(await server.done).toBe(1);
    expect(server.stderr).toMatch(/^no client connected to TCP port \d+ in 1 s \(--wait\)\n$/);
  });

  it("a send_bw server whose client dies mid-test exits after --wait (it sends nothing that could fail), saying so as perftest's check_alive does: the messages received of those required; exit 17, as perftest's send_bw when its run_iter fails", async () => {
    const tcp = String(await freeTcpPort());
    const server = start("perf", "send_bw", "--perftest", "--address", "127.0.15.41", "-p", tcp, "-s", "64", "-n", "5000000", "--wait", "2");
    await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
    const client = start("perf", "send_bw", "127.0.15.41", "--perftest", "--address", "127.0.15.42", "-p", tcp, "-s", "64", "-n", "5000000");
    // its address lines come before the test: then SENDs flow for a while, and it dies
    await until(() => client.stdout.includes(" remote address: "), 15_000);
    await new Promise((r) => setTimeout(r, 300));
    client.child.kill("SIGKILL");
    // send_bw's main: run_iter failed, exit 17 and no line of its own
    expect(await server.done).toBe(17);
    const m = /^ Did not get Message for 120 Seconds, exiting\.\.\n Total Received=(\d+), Total Iters Required=5000000\n\(nothing from the peer for 2 s during the test \(no packet on the device\)\)\n$/.exec(server.stderr);
    expect(m, server.stderr).not.toBeNull();
    expect(Number(m![1])).toBeLessThan(5_000_000);
  });

  // perftest's main after a failed run_iter: read_bw's one size says so and exits 1, read_lat's sets 17;
  // atomic_bw's and write_lat's lines (write_lat's client waits for the server's WRITE, and its wait
  // gives up after --wait with no packet)
  const failures = [
    ["read_bw", " Failed to complete run_iter_bw function successfully\n", 1],
    ["read_lat", "", 17],
    ["atomic_bw", " Error occurred in run_iter function\n", 1],
    ["write_lat", "Test exited with Error\n", 1],
  ] as const;
  for (const [test, line, status] of failures) {
    it(`${test.startsWith("a") ? "an" : "a"} ${test} client whose server dies mid-test: the completion's error or the wait given up${line ? ", then perftest's line" : ""}; exit ${status}`, async () => {
      const tcp = String(await freeTcpPort());
      const flags = ["--perftest", "-p", tcp, ...(test === "atomic_bw" ? [] : ["-s", "64"]), "-n", "1000000", "--wait", "3"];
      const server = start("perf", test, "--address", "127.0.15.41", ...flags);
      await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
      const client = start("perf", test, "127.0.15.41", "--address", "127.0.15.42", ...flags);
      await until(() => client.stdout.includes(" remote address: "), 15_000);
      await new Promise((r) => setTimeout(r, 300));
      server.child.kill("SIGKILL");
      expect(await client.done, client.stderr).toBe(status);
      expect(client.stderr).toMatch(new RegExp(`(Completion with error|nothing from the peer)[^]*\n${line.replace(/\./g, "\\.")}$`));
      // the line comes once, last
      if (line) expect(client.stderr.indexOf(line)).toBe(client.stderr.length - line.length);
    }, 40_000);
  }
});

describe("softroce perf's own exchange against a client gone", () => {
  it("a send_bw server whose client dies mid-test exits 1, says so and how many messages came (it printed a full run's figures before)", async () => {
    const tcp = String(await freeTcpPort());
    const server = start("perf", "send_bw", "--address", "127.0.15.41", "-p", tcp, "-s", "64", "-n", "5000000", "--wait", "5");
    await until(() => server.stderr.includes("waiting for a client"), 15_000);
    const client = start("perf", "send_bw", "127.0.15.41", "--address", "127.0.15.42", "-p", tcp, "-s", "64", "-n", "5000000");
    await until(() => server.stderr.includes("connected: send_bw"), 15_000);
    await new Promise((r) => setTimeout(r, 300));
    client.child.kill("SIGKILL");
    expect(await server.done).toBe(1);
    expect(server.stderr).toMatch(/softroce perf: the peer closed the out-of-band connection, before the client's end of the run \(\d+ messages received here\)\n$/);
    expect(server.stdout).not.toMatch(/^ 64\s+5000000\s/m);
  });
});

describe("softroce perf -z (perftest's exchange over rdma_cm, its own QPs), two processes", () => {
  /** The CM messages a side sent, by name (MADs after IPv4, UDP, BTH and DETH: destination QP 1). */
  const madsSent = (file: string, src: string) =>
    readCaptureAll(new Uint8Array(readFileSync(file)))
      .filter((r) => r.data && r.data.subarray(12, 16).join(".") === src && ((r.data[33]! << 16) | (r.data[34]! << 8) | r.data[35]!) === 1)
      .map((r) => parseCmMad(r.data!.subarray(48, 48 + 256)).name);

  it("write_bw -z: one rdma_cm connection (the exchange's: the server sends one REP; -R's test QP would be a second), the QP perftest's own; the header, the address lines and --out_json say so; both exit 0", async () => {
    const dir = mkdtempSync(join(tmpdir(), "softroce-z-"));
    try {
      const [sf, json] = [join(dir, "s.pcap"), join(dir, "c.json")];
      const server = start("perf", "write_bw", "-z", "--address", "127.0.15.45", "-s", "4096", "-n", "100", "--pcap", sf, "--wait", "20");
      await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
      const client = start("perf", "write_bw", "127.0.15.45", "-z", "--address", "127.0.15.46", "-s", "4096", "-n", "100", "--out_json", "--out_json_file", json, "--wait", "20");
      expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr).toEqual([0, 0]);
      for (const out of [client.stdout, server.stdout]) {
        expect(out).toContain(" rdma_cm QPs\t : OFF\n Data ex. method : rdma_cm\n");
        expect(out).not.toContain("Waiting for client rdma_cm QP to connect");
        // over rdma_cm perftest prints the address lines by its exchange's SEND connection: no RKey or VAddr
        expect(out.match(/^ (local|remote) address: LID 0000 QPN 0x[0-9a-f]+ PSN 0x[0-9a-f]{6}\n/gm)?.length, out).toBe(2);
        expect(out).toMatch(/^ 4096\s+100\s+\d+\.\d\d\s+\d+\.\d\d/m);
      }
      expect(readFileSync(json, "utf8")).toContain("\nrdma_cm_QPs: OFF,\nData_ex_method: rdma_cm,\n");
      expect(madsSent(sf, "127.0.15.45").filter((n) => n === "REP")).toEqual(["REP"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 40_000);

  for (const [test, flags] of [["read_bw", []], ["send_lat", []], ["send_bw", ["-c", "UD", "-s", "1024"]], ["write_lat", ["-c", "UC"]]] as const) {
    it(`${test} -z ${flags.join(" ")}: the key messages over rdma_cm connect perftest's own QPs; both exit 0`, async () => {
      const args = ["-z", "-n", "100", "--wait", "20", ...flags];
      const server = start("perf", test, "--address", "127.0.15.45", ...args);
      await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
      const client = start("perf", test, "127.0.15.45", "--address", "127.0.15.46", ...args);
      const [sc, cc] = await Promise.all([server.done, client.done]);
      expect({ cc, err: client.stderr }).toEqual({ cc: 0, err: inlineNotice(test) });
      expect({ sc, err: server.stderr }).toEqual({ sc: 0, err: inlineNotice(test) });
      for (const out of [client.stdout, server.stdout]) expect(out).toContain(" Data ex. method : rdma_cm\n");
      expect(client.stdout).toMatch(/^ \d+\s+100\s+\d+\.\d\d/m);
    }, 40_000);
  }

  it("refusals: --reversed and -T (perftest's, as without -R), --local", async () => {
    await refusals([
      [["write_bw", "-z", "--reversed"], /--reversed with -z: perftest's rdma_cm then connects from the side without the server's address, and fails/],
      [["send_lat", "-z", "-T", "104"], /-T\/--tos 104: TOS only valid for rdma_cm based QP and RawEth QP/],
      [["write_bw", "-z", "--rate_limit", "10"], /HW rate limit isn't supported yet with rdma_cm scenarios/],
    ]);
    const r = start("perf", "write_bw", "--local", "-z");
    expect(await r.done).toBe(2);
    expect(r.stderr).toMatch(/-z\/--comm_rdma_cm is a two-process mode/);
  });
});

describe("softroce perf -R (perftest's rdma_cm mode), two processes", () => {
  for (const test of ["write_bw", "read_bw", "atomic_bw", "send_bw", "write_lat", "read_lat", "send_lat", "atomic_lat"]) {
    it(`${test} -R: the exchange over an rdma_cm connection, the test QP connected by rdma_cm; both exit 0`, async () => {
      const lat = test.endsWith("_lat");
      const size = test.startsWith("atomic_") ? "8" : lat ? "2" : "8192";
      const server = start("perf", test, "-R", "--address", "127.0.15.45", "-s", size, "-n", "100", "--wait", "20");
      await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
      const client = start("perf", test, "127.0.15.45", "-R", "--address", "127.0.15.46", "-s", size, "-n", "100", "--wait", "20");
      const [sc, cc] = await Promise.all([server.done, client.done]);
      expect({ cc, err: client.stderr }).toEqual({ cc: 0, err: inlineNotice(test) });
      expect({ sc, err: server.stderr }).toEqual({ sc: 0, err: inlineNotice(test) });
      expect(client.stdout).toContain(" rdma_cm QPs\t : ON\n Data ex. method : rdma_cm\n");
      expect(server.stdout).toContain(" Waiting for client rdma_cm QP to connect\n");
      const re = lat ? new RegExp(`^ ${size}\\s+(\\d+)\\s+\\d+\\.\\d\\d`, "m") : new RegExp(`^ ${size}\\s+100\\s+\\d+\\.\\d\\d\\s+\\d+\\.\\d\\d`, "m");
      expect(client.stdout).toMatch(re);
      if (test !== "read_lat" && test !== "atomic_lat") expect(server.stdout).toMatch(re);
      expect(client.stdout).toMatch(/ remote address: LID 0000 QPN 0x[0-9a-f]{4,6} PSN 0x[0-9a-f]{6}\n GID: 00:00:00:00:00:00:00:00:00:00:255:255:127:00:15:45/);
    });
  }

  for (const test of ["write_bw", "send_bw"]) {
    it(`${test} -R -q 3: a test QP and its rdma_cm connection per QP (the listener's backlog -q), every QP's key message; both exit 0`, async () => {
      const server = start("perf", test, "-R", "--address", "127.0.15.45", "-s", "4096", "-n", "100", "-q", "3", "--wait", "20");
      await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
      const client = start("perf", test, "127.0.15.45", "-R", "--address", "127.0.15.46", "-s", "4096", "-n", "100", "-q", "3", "--wait", "20");
      const [sc, cc] = await Promise.all([server.done, client.done]);
      expect({ cc, err: client.stderr }).toEqual({ cc: 0, err: inlineNotice(test) });
      expect({ sc, err: server.stderr }).toEqual({ sc: 0, err: inlineNotice(test) });
      for (const out of [client.stdout, server.stdout]) {
        expect(out).toContain(" Number of qps   : 3\t\tTransport type : IB\n");
        expect(new Set([...out.matchAll(/^ local address: LID 0000 QPN (0x[0-9a-f]+)/gm)].map((m) => m[1])).size, out).toBe(3);
        expect(out.match(/^ remote address: /gm)?.length, out).toBe(3);
        expect(out).toMatch(/^ 4096\s+300\s+\d+\.\d\d/m);
      }
    });
  }
});

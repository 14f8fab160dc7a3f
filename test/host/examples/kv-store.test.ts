// examples/kv-store as a user runs it: the server process, PUT and GET from the CLI, the bench;
// and the table layout's checks (a slot caught mid-write is retried, a full window refuses).
import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT, exampleAddresses, runExample } from "./run-example.js";
// @ts-expect-error: a plain .mjs module of the example, no types
import * as table from "../../../examples/kv-store/table.mjs";

// Two loopback addresses picked by this process's id (UDP 4791 on each), and free TCP ports, so
// copies of this suite running side by side on one machine do not take each other's.
const [SERVER, CLIENT] = exampleAddresses("kv-store", 2);

function serve() {
  const child = spawn(process.execPath, [join(ROOT, "examples/kv-store/cli.mjs"), "serve", "--address", SERVER, "--tcp-port", "0", "--store-port", "0", "--duration", "60"], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  const ready = new Promise<number>((ok, fail) => {
    child.stdout.on("data", () => {
      const m = /kv-store: RDMA on \S+ \(UDP 4791, control TCP (\d+)\)/.exec(out);
      if (m) ok(Number(m[1]));
    });
    child.once("exit", (c) => fail(new Error(`serve exited ${c}`)));
  });
  const exited = new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
  return { ready, output: () => out, stop: async () => (child.kill("SIGTERM"), exited) };
}

describe("examples/kv-store", () => {
  it("PUT then GET over RDMA from the CLI; a missing key exits 1; bad flags exit 2", { timeout: 120_000 }, async () => {
    const srv = serve();
    try {
      const port = String(await srv.ready);
      const cli = (...a: string[]) => runExample("examples/kv-store/cli.mjs", [...a, "--address", CLIENT, "--server", SERVER, "--tcp-port", port], 30_000);
      const put = await cli("put", "greeting", "hello over RDMA");
      expect(put.stderr).toBe("");
      expect(put.stdout.trim()).toBe("OK");
      const get = await cli("get", "greeting");
      expect(get.stdout.trim()).toBe("hello over RDMA");
      expect(get.code).toBe(0);
      const miss = await cli("get", "nobody");
      expect(miss.code).toBe(1);
      expect(miss.stderr).toMatch(/nobody: not found/);
      const long = await cli("put", "k".repeat(49), "v");
      expect(long.code).toBe(1);
      expect(long.stderr).toMatch(/key must be 1\.\.48 bytes/);
      const bad = await runExample("examples/kv-store/cli.mjs", ["get", "x", "--bogus", "1"]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/unknown flag --bogus/);
    } finally {
      expect(await srv.stop()).toBe(0);
    }
    expect(srv.output()).toMatch(/stopped after 1 PUTs/); // the over-long key never reached the server
  });

  it("the bench runs and prints both ratios", { timeout: 120_000 }, async () => {
    const r = await runExample("examples/kv-store/bench.mjs", ["--rounds", "1", "--keys", "50", "--server", SERVER, "--client", CLIENT], 120_000);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/GET latency, RDMA \/ TCP \(min \/ median \/ max over 1 rounds\): [\d.]+ \/ [\d.]+ \/ [\d.]+/);
    expect(r.stdout).toMatch(/GET throughput, RDMA \/ TCP/);
  });
});

describe("kv-store table layout", () => {
  const enc = new TextEncoder();
  it("finds what was put, reports absent keys, and flags a slot mid-write or with a bad checksum as torn", () => {
    const buckets = 8;
    const t = new Uint8Array(table.tableBytes(buckets));
    const k = enc.encode("alpha");
    expect(table.putInTable(t, buckets, k, enc.encode("one"))).toBe(true);
    const first = table.bucketOf(k, buckets);
    const win = () => t.subarray(first * table.SLOT, (first + table.PROBE) * table.SLOT);
    expect(table.findInWindow(win(), k)).toEqual({ found: true, value: "one" });
    expect(table.findInWindow(win(), enc.encode("beta"))).toEqual({ found: false });
    const dv = new DataView(t.buffer);
    dv.setUint32(first * table.SLOT, dv.getUint32(first * table.SLOT, true) + 1, true); // odd version
    expect(table.findInWindow(win(), k)).toEqual({ torn: true });
    dv.setUint32(first * table.SLOT, dv.getUint32(first * table.SLOT, true) + 1, true);
    t[first * table.SLOT + 60] ^= 1; // a value byte changed without a new checksum
    expect(table.findInWindow(win(), k)).toEqual({ torn: true });
  });

  it("refuses a key whose probe window is full, and bad sizes", () => {
    const buckets = 1;
    const t = new Uint8Array(table.tableBytes(buckets));
    for (let i = 0; i < table.PROBE; i++) expect(table.putInTable(t, buckets, enc.encode(`k${i}`), enc.encode("v"))).toBe(true);
    expect(table.putInTable(t, buckets, enc.encode("one-too-many"), enc.encode("v"))).toBe(false);
    expect(table.putInTable(t, buckets, enc.encode("k2"), enc.encode("updated"))).toBe(true);
    expect(() => table.checkKeyValue("", "v")).toThrow(RangeError);
    expect(() => table.checkKeyValue("k", "v".repeat(197))).toThrow(/at most 196/);
  });
});

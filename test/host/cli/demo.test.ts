// softroce demo (npm start): two live devices on 127.0.0.1 / 127.0.0.2 doing SEND, WRITE, READ and
// atomics; the ladder, the table, the pcap decoded back with every ICRC ok; the port fallback.
import { spawn } from "node:child_process";
import dgram from "node:dgram";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { beforeAll, describe, expect, it } from "vitest";
import { readCaptureAll } from "../../../host/core/capture/pcap.js";
import { decodePacket } from "../../../host/core/wire/decode.js";
import { icrcMatches } from "../../../host/core/capture/recorder.js";
import { WireCodec } from "../../../host/core/wire/codec.js";
import { coreModule } from "../../../host/node/wasm-source.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const CLI = join(ROOT, ".test-build/cli-test-demo/softroce.js");
let tmp: string;

beforeAll(async () => {
  await esbuild.build({
    entryPoints: [join(ROOT, "host/cli/softroce.ts")], outfile: CLI, bundle: true, format: "esm", platform: "node",
    target: "node20", packages: "external", logLevel: "warning",
  });
  tmp = mkdtempSync(join(tmpdir(), "softroce-demo-"));
});

function run(...args: string[]): Promise<{ code: number | null; out: string; err: string; ms: number }> {
  const t = Date.now();
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const kill = setTimeout(() => child.kill("SIGKILL"), 20_000);
  return new Promise((resolve) => child.on("close", (code) => {
    clearTimeout(kill);
    resolve({ code, out, err, ms: Date.now() - t });
  }));
}

const OPCODES = [
  "RC Send Only", "RC Acknowledge", "RC RDMA Write First", "RC RDMA Write Last", "RC Acknowledge",
  "RC RDMA Read Request", "RC RDMA Read Response First", "RC RDMA Read Response Last",
  "RC Compare Swap", "RC Atomic Acknowledge", "RC Fetch Add", "RC Atomic Acknowledge",
];

function checkOutput(out: string) {
  const lines = out.split("\n");
  const head = /^A 127\.0\.0\.1:(\d+) QPN 0x[0-9a-f]+ {2}<-> {2}B 127\.0\.0\.2:(\d+) QPN 0x[0-9a-f]+ {3}\(RC, path MTU 1024\)$/.exec(lines[0]);
  expect(head, out).toBeTruthy();
  const ladder = lines.filter((l) => /^ +\d+\.\d{3} {2}A (──>|<──) B/.test(l));
  expect(ladder.map((l) => l.slice(21, 53).trim())).toEqual(OPCODES);
  expect(ladder.map((l) => l.includes("──>"))).toEqual([true, false, true, true, false, true, false, false, true, false, true, false]);
  expect(ladder[1]).toMatch(/ {2}100 +0 +20 {2}ACK \(no credit limit\), MSN 1$/);
  expect(ladder[11]).toMatch(/ACK \(no credit limit\), MSN 5$/);
  const table = lines.slice(lines.findIndex((l) => l.startsWith("operation")));
  expect(table.slice(0, 7)).toEqual([
    "operation         bytes  status   verified",
    "----------------  -----  -------  --------",
    "SEND                 64  SUCCESS  yes",
    "RDMA WRITE         1500  SUCCESS  yes",
    "RDMA READ          2000  SUCCESS  yes",
    "ATOMIC CMP_SWAP       8  SUCCESS  yes",
    "ATOMIC FETCH_ADD      8  SUCCESS  yes",
  ]);
  return { portA: Number(head![1]), portB: Number(head![2]) };
}

describe("softroce demo", () => {
  it("runs the live exchange in a few seconds, exits 0, and its pcap decodes with every ICRC ok", async () => {
    const file = join(tmp, "demo.pcap");
    const r = await run("demo", "--pcap", file);
    expect(r.code, r.err).toBe(0);
    expect(r.ms).toBeLessThan(10_000); // "a few seconds", with room for a loaded CI machine
    const { portA, portB } = checkOutput(r.out);
    expect(r.out.trimEnd().split("\n").at(-2)).toBe(`wrote ${file}: 12 packets; decoded back: 12/12 ICRC ok`);
    expect(r.out.trimEnd().split("\n").at(-1)).toMatch(/npx softroce playground, then open http:\/\/127\.0\.0\.1:8790\/$/);
    expect(r.out).toMatch(/\n {2}PSN {8}packet sequence number/); // the legend explains the columns
    if (portA === 4791) {
      // the ordinary case: RoCEv2 on 4791, which the decoder (and Wireshark) take for RoCE
      expect(portB).toBe(4791);
      expect(r.err).toBe("");
      const back = await run("decode", "--pcap", file);
      expect(back.code).toBe(0);
      expect(back.err).toBe("12 RoCE packets, 0 skipped (not RoCEv2), 0 bad (malformed or bad ICRC)\n");
    } else {
      expect(r.err).toMatch(/^softroce demo: note: UDP port 4791 is taken on 127\.0\.0\.1 or 127\.0\.0\.2 .*using free ports\. /);
    }
    const codec = await WireCodec.create(await coreModule());
    const recs = readCaptureAll(readFileSync(file));
    expect(recs).toHaveLength(12);
    expect(recs.every((x) => icrcMatches(codec, x.data!))).toBe(true);
    if (portA === 4791) expect(recs.every((x) => decodePacket(codec, x.data!, { frame: x.index }).ok)).toBe(true);
  });

  it("--json: stdout is JSON lines only (one per packet); the run's text goes to stderr", async () => {
    const r = await run("demo", "--json", "--udp-port", "0", "--pcap", join(tmp, "json.pcap"));
    expect(r.code, r.err).toBe(0);
    const lines = r.out.trimEnd().split("\n");
    expect(lines.length).toBe(OPCODES.length);
    for (const l of lines) expect(() => JSON.parse(l), l).not.toThrow();
    expect(r.err).toContain("operation         bytes  status   verified");
  });

  it("falls back to free ports with a note when the port is taken", async () => {
    const s = dgram.createSocket("udp4");
    await new Promise<void>((res) => s.bind(0, "127.0.0.1", res));
    const port = s.address().port;
    const file = join(tmp, "fallback.pcap");
    const r = await run("demo", "--udp-port", String(port), "--pcap", file);
    s.close();
    expect(r.code, r.err).toBe(0);
    expect(r.err).toBe(
      `softroce demo: note: UDP port ${port} is taken on 127.0.0.1 or 127.0.0.2 (is Linux rxe loaded?); using free ports. ` +
        "Wireshark decodes RoCEv2 on 4791 only: use Decode As... > UDP port > InfiniBand to read this capture.\n",
    );
    const { portA, portB } = checkOutput(r.out);
    expect(portA).not.toBe(port);
    expect(portB).not.toBe(port);
    const codec = await WireCodec.create(await coreModule());
    const recs = readCaptureAll(readFileSync(file));
    expect(recs.map((x) => icrcMatches(codec, x.data!))).toEqual(recs.map(() => true));
    // the capture's UDP destination port is B's own; the source port is the sending QP's (rxe's 0xC000..0xFFFF)
    const ip = recs[0].data!;
    expect((ip[22] << 8) | ip[23]).toBe(portB);
    expect((ip[20] << 8) | ip[21]).toBeGreaterThanOrEqual(0xc000);
  });

  it("a capture it cannot write is a failure: exit 1, one line", async () => {
    const r = await run("demo", "--udp-port", "0", "--pcap", join(tmp, "no/such/dir/x.pcap"));
    expect(r.code).toBe(1);
    expect(r.err).toBe(`softroce demo: cannot write ${join(tmp, "no/such/dir/x.pcap")}: no such file\n`);
  });

  it("usage errors exit 2", async () => {
    const r = await run("demo", "--udp-port", "x");
    expect(r.code).toBe(2);
    expect(r.err).toBe("softroce demo: --udp-port wants an integer, got 'x' (see 'softroce demo --help')\n");
  });
});

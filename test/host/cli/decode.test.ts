// The built `softroce` command, run as a user would: exit codes, stdout, one-line stderr.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { beforeAll, describe, expect, it } from "vitest";
import { readCaptureAll, writePcap } from "../../../host/core/capture/pcap.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const CLI = join(ROOT, "dist/cli/softroce.js");
const CAPTURES = join(ROOT, "test/fixtures/captures");

// rc-rnr.pcap frame 23 (an RC ACK), as the Ethernet frame and as its IP packet.
const ACK_FRAME =
  "525400479103525400479102080045000030726840004011444fc0000202c0000203c2d912b7001c00001100ffff0000001b0050cd1b1f0000010dc2be77";
const ACK_IP = ACK_FRAME.slice(28);

let tmp: string;

beforeAll(async () => {
  // Bundle the CLI from the current sources, exactly as esbuild.config.mjs does.
  await esbuild.build({
    entryPoints: [join(ROOT, "host/cli/softroce.ts")],
    outfile: CLI,
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    packages: "external",
    sourcemap: true,
    logLevel: "warning",
    banner: { js: "#!/usr/bin/env node" },
  });
  tmp = mkdtempSync(join(tmpdir(), "softroce-cli-"));
});

function run(...args: string[]) {
  return runWithInput(undefined, ...args);
}

function runWithInput(input: string | undefined, ...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 20_000, input });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** A usage or input failure: exit 2, exactly one stderr line, no stack trace. */
function expectOneLineFailure(r: ReturnType<typeof run>, text: string) {
  expect(r.code).toBe(2);
  expect(r.out).toBe("");
  expect(r.err.endsWith("\n")).toBe(true);
  expect(r.err.trimEnd().split("\n")).toEqual([expect.stringContaining(text)]);
  expect(r.err).not.toMatch(/^\s+at /m);
}

describe("softroce decode --hex", () => {
  it("decodes a good packet (exit 0, text tree)", () => {
    const r = run("decode", "--hex", ACK_IP);
    expect(r.code).toBe(0);
    expect(r.err).toBe("");
    expect(r.out).toContain("InfiniBand RC Acknowledge\n");
    expect(r.out).toContain("  infiniband.aeth.msn: 1\n");
    expect(r.out).toContain("  icrc: ok (found 0x0dc2be77, expected 0x0dc2be77)\n");
  });

  it("accepts an Ethernet frame with --link eth, and spaces, colons, newlines and 0x", () => {
    const spaced = "0x" + ACK_FRAME.match(/../g)!.map((b, i) => (i % 16 === 15 ? b + "\n" : i % 2 ? b + ":" : b + " ")).join("");
    const r = run("decode", "--link", "eth", "--json", "--hex", spaced);
    expect(r.code).toBe(0);
    const lines = r.out.trim().split("\n");
    expect(lines.length).toBe(1);
    expect(JSON.parse(lines[0])).toMatchObject({ "frame.number": 1, "ip.src": "192.0.2.2", "infiniband.bth.psn": 5295387, icrc_ok: true });
  });

  it("a bad ICRC: exit 1, JSON icrc_ok false", () => {
    const r = run("decode", "--json", "--hex", ACK_IP.slice(0, -2) + "00");
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out)).toMatchObject({ icrc: "0x0dc2be00", icrc_expected: "0x0dc2be77", icrc_ok: false });
  });

  it("a malformed packet: exit 1 with an error record", () => {
    const r = run("decode", "--json", "--hex", ACK_IP.slice(0, 60 * 2 - 24 * 2));
    expect(r.code).toBe(1);
    const rec = JSON.parse(r.out);
    expect(rec["frame.number"]).toBe(1);
    expect(rec.error).toMatch(/^TRUNCATED/);
  });

  it("a non-IP frame with --link eth: exit 1, the error says what it is", () => {
    const arp = "ffffffffffff525400479102080600010800060400015254004791020a000001000000000000c0000203";
    const r = run("decode", "--json", "--link=eth", "--hex", arp);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out).error).toBe("not an IP packet: ethertype 0x0806 (ARP)");
  });

  it("reads the hex from stdin with --hex -", () => {
    const r = runWithInput(ACK_IP.replace(/(..)/g, "$1 ") + "\n", "decode", "--json", "--hex", "-");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ "infiniband.bth.opcode": 17, icrc_ok: true });
  });

  it("odd-length hex: exit 2, one line", () => {
    expectOneLineFailure(run("decode", "--hex", "450"), "softroce decode: odd number of hex digits (3)");
  });

  it("non-hex characters: exit 2, one line", () => {
    expectOneLineFailure(run("decode", "--hex", "45zz"), "non-hex character 'z'");
  });

  it("no input: exit 2, one line", () => {
    expectOneLineFailure(run("decode"), "no input: give --hex or --pcap");
  });

  it("an unknown flag: exit 2, one line", () => {
    expectOneLineFailure(run("decode", "--hex", ACK_IP, "--frobnicate"), "unknown flag --frobnicate");
  });

  it("a bad --link value: exit 2, one line", () => {
    expectOneLineFailure(run("decode", "--hex", ACK_IP, "--link", "ppp"), "--link must be one of ip, eth, got 'ppp'");
  });
});

describe("softroce decode --pcap", () => {
  it("skips and counts the TCP frames of a fixture", () => {
    const r = run("decode", "--json", "--pcap", join(CAPTURES, "rc-write-only.pcap"));
    expect(r.code).toBe(0);
    expect(r.err).toBe("10 RoCE packets, 39 skipped (not RoCEv2), 0 bad (malformed or bad ICRC)\n");
    const recs = r.out.trim().split("\n").map((l) => JSON.parse(l));
    expect(recs.length).toBe(10);
    expect(recs.every((x) => x.icrc_ok === true)).toBe(true);
    expect(recs.map((x) => x.opcode_name)).toContain("RC RDMA Write Only");
  });

  it("reads a capture from stdin with --pcap -", () => {
    const r = spawnSync(process.execPath, [CLI, "decode", "--json", "--pcap", "-"], {
      input: readFileSync(join(CAPTURES, "ud-send.pcap")),
      encoding: "utf8",
      timeout: 20_000,
    });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe("6 RoCE packets, 12 skipped (not RoCEv2), 0 bad (malformed or bad ICRC)\n");
    expect(r.stdout.trim().split("\n").length).toBe(6);
  });

  it("text output for an IPv6 capture", () => {
    const r = run("decode", "--pcap", join(CAPTURES, "ud-send-v6.pcap"));
    expect(r.code).toBe(0);
    expect(r.err).toBe("6 RoCE packets, 11 skipped (not RoCEv2), 0 bad (malformed or bad ICRC)\n");
    expect(r.out.match(/^Frame \d+: /gm)!.length).toBe(6);
    expect(r.out).toContain("IPv6 fd00:4791::3 -> fd00:4791::2");
    expect(r.out).toContain("  infiniband.deth.q_key: 0x11111111 (286331153)\n");
  });

  it("a pcapng and an ns pcap decode like the pcap they were made from", () => {
    for (const [other, original] of [
      ["pcapng/rc-read-only.pcapng", "captures/rc-read-only.pcap"],
      ["pcapng/ud-send-v6.ns.pcap", "captures/ud-send-v6.pcap"],
    ]) {
      const a = run("decode", "--json", "--pcap", join(ROOT, "test/fixtures", other));
      const b = run("decode", "--json", "--pcap", join(ROOT, "test/fixtures", original));
      expect(a.code).toBe(0);
      expect(a.out.split("\n").length).toBeGreaterThan(6);
      expect(a.out).toBe(b.out);
      expect(a.err).toBe(b.err);
    }
  });

  it("a frame cut short by the capture's snaplen: counted bad, the error says so", () => {
    const recs = readCaptureAll(new Uint8Array(readFileSync(join(CAPTURES, "rc-write-only.pcap"))));
    const write = recs.find((r) => r.data && r.data[9] === 17 && r.data.length > 500)!;
    // a 100-byte snaplen as `tcpdump -s 100` would write it: caplen 100, original length kept
    const head = new Uint8Array(24);
    const hv = new DataView(head.buffer);
    hv.setUint32(0, 0xa1b2c3d4, true);
    hv.setUint16(4, 2, true);
    hv.setUint16(6, 4, true);
    hv.setUint32(16, 100, true);
    hv.setUint32(20, 1, true);
    const rec = new Uint8Array(16 + 100);
    const rv = new DataView(rec.buffer);
    rv.setUint32(8, 100, true);
    rv.setUint32(12, write.frame.length, true);
    rec.set(write.frame.subarray(0, 100), 16);
    const file = join(tmp, "snapped.pcap");
    writeFileSync(file, Buffer.concat([head, rec]));
    const r = run("decode", "--json", "--pcap", file);
    expect(r.code).toBe(1);
    expect(r.err).toBe("1 RoCE packets, 0 skipped (not RoCEv2), 1 bad (malformed or bad ICRC)\n");
    expect(JSON.parse(r.out).error).toMatch(new RegExp(`^TRUNCATED.*\\(the capture kept 100 of ${write.frame.length} bytes\\)$`));
  });

  it("counts a bad-ICRC packet and exits 1", () => {
    const recs = readCaptureAll(new Uint8Array(readFileSync(join(CAPTURES, "rc-read-only.pcap"))));
    const roce = recs.filter((r) => r.data && r.data[9] === 17).map((r) => r.data!.slice());
    roce[2][roce[2].length - 5] ^= 1; // a payload/header byte: the ICRC no longer matches
    const file = join(tmp, "bad-icrc.pcap");
    writeFileSync(file, writePcap(roce.map((data, i) => ({ data, tsMicros: i }))));
    const r = run("decode", "--json", "--pcap", file);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`${roce.length} RoCE packets, 0 skipped (not RoCEv2), 1 bad (malformed or bad ICRC)\n`);
    const out = r.out.trim().split("\n").map((l) => JSON.parse(l));
    expect(out.filter((x) => x.icrc_ok === false).map((x) => x["frame.number"])).toEqual([3]);
  });

  it("a missing file: exit 2, one line", () => {
    expectOneLineFailure(run("decode", "--pcap", join(tmp, "nope.pcap")), `cannot read ${join(tmp, "nope.pcap")}: no such file`);
  });

  it("a truncated capture: exit 2, one line naming the record", () => {
    const good = readFileSync(join(CAPTURES, "rc-write-only.pcap"));
    const file = join(tmp, "cut.pcap");
    writeFileSync(file, good.subarray(0, good.length - 5));
    const r = run("decode", "--json", "--pcap", file);
    expect(r.code).toBe(2);
    const errLines = r.err.trimEnd().split("\n");
    expect(errLines.length).toBe(1);
    expect(errLines[0]).toMatch(/^softroce decode: .*cut\.pcap: record 49: truncated data at byte \d+ \(\d+ of \d+ bytes\)$/);
    expect(r.err).not.toMatch(/^\s+at /m);
  });

  it("not a capture: exit 2, one line", () => {
    const file = join(tmp, "text.pcap");
    writeFileSync(file, "hello, world\n");
    expectOneLineFailure(run("decode", "--pcap", file), "not a pcap or pcapng file: bad magic 68 65 6c 6c");
  });
});

describe("softroce dispatcher", () => {
  it("--help lists the commands", () => {
    const r = run("--help");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^usage: softroce <command>/);
    expect(r.out).toMatch(/^ {2}decode {2,}/m);
    expect(r.out).toMatch(/^ {2}demo {2,}/m);
  });

  it("an unknown command: usage on stderr, exit 2", () => {
    const r = run("frobnicate");
    expect(r.code).toBe(2);
    expect(r.out).toBe("");
    expect(r.err).toMatch(/^softroce: unknown command 'frobnicate'\nusage: softroce <command>/);
  });

  it("decode --help", () => {
    const r = run("decode", "--help");
    expect(r.code).toBe(0);
    expect(r.out).toContain("--pcap <file>");
  });
});

describe("softroce demo", () => {
  it("writes a pcap whose packets decode with good ICRCs", () => {
    const file = join(tmp, "demo.pcap");
    const r = run("demo", "--generated", "--json", "--pcap", file);
    expect(r.code).toBe(0);
    expect(r.err).toContain("not traffic from a live device");
    const recs = r.out.trim().split("\n").map((l) => JSON.parse(l));
    expect(recs.map((x) => x.opcode_name)).toEqual([
      "RC Send Only",
      "RC Acknowledge",
      "RC RDMA Write First",
      "RC RDMA Write Last",
      "RC Acknowledge",
      "RC RDMA Read Request",
      "RC RDMA Read Response Only",
      "RC Compare Swap",
      "RC Atomic Acknowledge",
      "UD Send Only",
    ]);
    expect(recs.every((x) => x.icrc_ok === true && x["ip.src"].startsWith("127.0.0."))).toBe(true);
    expect(recs[7]["infiniband.atomiceth.cmpdt"]).toBe("0x1111111111111111");
    expect(recs[9]["infiniband.deth.q_key"]).toBe(0x11111111);
    const back = run("decode", "--pcap", file);
    expect(back.code).toBe(0);
    expect(back.err).toBe("10 RoCE packets, 0 skipped (not RoCEv2), 0 bad (malformed or bad ICRC)\n");
  });
});

describe("softroce decode --oneline (tshark's list view)", () => {
  it("prints one line per RoCE packet: number, relative time, addresses, length, opcode, QP, PSN, ICRC", () => {
    const r = run("decode", "--pcap", join(CAPTURES, "rc-read.pcap"), "--oneline");
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split("\n");
    const json = run("decode", "--pcap", join(CAPTURES, "rc-read.pcap"), "--json").out.trimEnd().split("\n");
    expect(lines.length).toBe(json.length);
    expect(lines[0]).toMatch(/^ +\d+ 0\.000000 192\.0\.2\.3 → 192\.0\.2\.2 RRoCE 74 RC RDMA Read Request QP=0x[0-9a-f]{6} PSN=\d+ ICRC ok$/);
    for (const l of lines) expect(l).toMatch(/^ +\d+ \d+\.\d{6} \S+ → \S+ RRoCE \d+ .+ QP=0x[0-9a-f]{6} PSN=\d+( .+)? ICRC (ok|bad)$/);
  });

  it("--json and --oneline together are a usage error", () => {
    expectOneLineFailure(run("decode", "--pcap", join(CAPTURES, "rc-read.pcap"), "--oneline", "--json"), "give --json or --oneline, not both");
  });
});

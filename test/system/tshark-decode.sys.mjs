// tshark cross-check: `softroce decode --json --pcap` and Wireshark's dissector
// (tshark 4.0) must agree field by field on every RoCE packet: packets of every
// opcode tshark knows, emitted by WireCodec and written by host/core/capture/pcap.ts in
// each linktype we write, and the real rxe captures in test/fixtures/captures.
import assert from "node:assert/strict";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT, requireTools, run, runOk, runProcess, tempDir, test } from "./lib/harness.mjs";
import { Rng, opcodeTable, randomSpec } from "./lib/random-packets.mjs";
import { importTs } from "./lib/ts-import.mjs";

const CLI = join(ROOT, "dist/cli/softroce.js");
const CAPTURES = join(ROOT, "test/fixtures/captures");
const SEED = Number(process.env.SOFTROCE_SEED ?? 0x75a4c);
// Opcodes tshark 4.0.17 shows as unknown: FLUSH, ATOMIC_WRITE, CNP.
const TSHARK_UNKNOWN = new Set([0x1c, 0x1d, 0x81]);
// Wireshark shows these as raw bytes (FT_BYTES); compare them as big-endian numbers.
const BYTES_FIELDS = new Set(["infiniband.immdt", "infiniband.ieth", "infiniband.reserved"]);
// Fields every comparison over our generated pcap must have covered (so it cannot pass vacuously).
const MUST_COVER = [
  "infiniband.bth.opcode", "infiniband.bth.se", "infiniband.bth.m", "infiniband.bth.padcnt", "infiniband.bth.tver",
  "infiniband.bth.p_key", "infiniband.bth.destqp", "infiniband.bth.a", "infiniband.bth.reserved7", "infiniband.bth.psn",
  "infiniband.reserved", "infiniband.reth.va", "infiniband.reth.r_key", "infiniband.reth.dmalen",
  "infiniband.aeth.syndrome", "infiniband.aeth.msn", "infiniband.deth.q_key", "infiniband.deth.srcqp",
  "infiniband.atomiceth.swapdt", "infiniband.atomiceth.cmpdt", "infiniband.atomicacketh.origremdt",
  "infiniband.immdt", "infiniband.ieth", "infiniband.invariant.crc",
  "ip.src", "ip.dst", "ip.id", "ip.flags", "ip.ttl", "ip.dsfield", "ip.checksum",
  "ipv6.src", "ipv6.dst", "ipv6.tclass", "ipv6.flow", "ipv6.hlim",
  "udp.srcport", "udp.dstport", "udp.length", "udp.checksum", "frame.len",
];

requireTools([{ cmd: "tshark", args: ["--version"], pkg: "tshark" }]);

/** A value from either decoder as something comparable: a BigInt, or a canonical string. */
function norm(field, v) {
  if (typeof v === "boolean") return v ? 1n : 0n;
  if (typeof v === "number") return Number.isInteger(v) ? BigInt(v) : String(v);
  if (Array.isArray(v)) return v.map((x) => norm(field, x)).join("|");
  const s = String(v);
  if (BYTES_FIELDS.has(field) && /^[0-9a-f]{2}(:[0-9a-f]{2})*$/i.test(s)) return BigInt("0x" + s.replaceAll(":", ""));
  if (/^0x[0-9a-f]+$/i.test(s)) return BigInt(s);
  if (/^\d+$/.test(s)) return BigInt(s);
  if (field.startsWith("ipv6.") && s.includes(":")) return new URL(`http://[${s}]/`).hostname; // canonical form
  return s;
}

/** tshark -T json output -> Map(frame number -> {field: value}) for frames with an infiniband layer. */
function tsharkFrames(json) {
  const frames = new Map();
  for (const pkt of JSON.parse(json)) {
    const layers = pkt._source.layers;
    if (!layers.infiniband) continue;
    // Every occurrence of a field in tree order: infiniband.reserved is BTH byte 4
    // and again DETH's reserved byte; the first one is the BTH's.
    const fields = {};
    const walk = (obj) => {
      for (const [k, v] of Object.entries(obj)) {
        if (v !== null && typeof v === "object" && !Array.isArray(v)) walk(v);
        else (fields[k] ??= []).push(...(Array.isArray(v) ? v : [v]));
      }
    };
    for (const name of ["ip", "ipv6", "udp", "infiniband"]) if (layers[name]) walk(layers[name]);
    fields["frame.len"] = [layers.frame["frame.len"]];
    // (ImmDt and IETH show up twice, as the header item and its value: same bytes.)
    for (const [k, v] of Object.entries(fields)) fields[k] = new Set(v).size === 1 || k === "infiniband.reserved" ? v[0] : v;
    frames.set(Number(layers.frame["frame.number"]), fields);
  }
  return frames;
}

async function tshark(file) {
  const r = await runOk("tshark", ["-r", file, "-n", "--disable-protocol", "rpcordma", "-T", "json", "--no-duplicate-keys"], {
    timeoutMs: 120_000,
  });
  return tsharkFrames(r.stdout);
}

async function ours(file) {
  const r = await runProcess(process.execPath, [CLI, "decode", "--json", "--pcap", file], { timeoutMs: 120_000 });
  assert.equal(r.timedOut, false, `softroce decode ${file} timed out`);
  assert.ok(r.code === 0 || r.code === 1, `softroce decode ${file} exited ${r.code}: ${r.stderr}`);
  const frames = new Map();
  for (const line of r.stdout.split("\n")) {
    if (!line.trim()) continue;
    const rec = JSON.parse(line);
    frames.set(Number(rec["frame.number"]), rec);
  }
  return { frames, code: r.code, stderr: r.stderr };
}

/**
 * Compares every frame field by field; returns {compared: Set of field names, packets}.
 * Throws listing the first mismatches. skipOpcodes: frames compared only for presence.
 */
function compare(label, theirs, mine, skipOpcodes = new Set()) {
  const missing = [...theirs.keys()].filter((n) => !mine.has(n));
  const extra = [...mine.keys()].filter((n) => !theirs.has(n));
  assert.deepEqual({ missing, extra }, { missing: [], extra: [] }, `${label}: frames tshark decodes as RoCE vs frames we decode`);
  const compared = new Set();
  const diffs = [];
  let packets = 0;
  for (const [n, t] of theirs) {
    const m = mine.get(n);
    assert.equal(m.error, undefined, `${label} frame ${n}: we failed: ${m.error}`);
    if (skipOpcodes.has(m["infiniband.bth.opcode"])) continue;
    packets++;
    // BTH byte 4: Wireshark shows it only as infiniband.reserved; ours splits it.
    const mineAll = { ...m, "infiniband.reserved": (m["infiniband.bth.fecn"] << 7) | (m["infiniband.bth.becn"] << 6) | m["infiniband.bth.resv6"] };
    for (const [field, tv] of Object.entries(t)) {
      if (!(field in mineAll)) continue;
      compared.add(field);
      const a = norm(field, tv);
      const b = norm(field, mineAll[field]);
      if (a !== b) diffs.push(`frame ${n} ${field}: tshark ${tv}, softroce ${mineAll[field]}`);
    }
  }
  assert.deepEqual(diffs.slice(0, 12), [], `${label}: ${diffs.length} field mismatches`);
  return { compared, packets };
}

let table;
let codec;
let pcapLib;
async function setup() {
  if (codec) return;
  assert.ok(existsSync(CLI), `${CLI} missing: run npm run build`);
  const mod = await import(pathToFileURL(join(ROOT, "dist/internal/node.js")).href);
  const wasm = await mod.coreModule();
  codec = await mod.WireCodec.create(wasm);
  table = opcodeTable(await mod.instantiateCore(wasm));
  pcapLib = await importTs("host/core/capture/pcap.ts");
}

/** Packets of every opcode in the table: 3 per (opcode, IP version), seeded. */
function generated() {
  const rng = new Rng(SEED);
  const out = [];
  for (const entry of table) {
    for (const v of [4, 6]) {
      for (let i = 0; i < 3; i++) {
        const spec = randomSpec(rng, entry, v);
        // A source port below 4791 could make tshark try another dissector first; rxe uses 0xC000+.
        spec.udpSrcPort = 0xc000 | rng.bits(14);
        out.push({ spec, bytes: codec.emit(spec) });
      }
    }
  }
  return out;
}

for (const [label, linktype, filter] of [
  ["raw IP (linktype 101), IPv4 and IPv6", 101, () => true],
  ["IPv4 (linktype 228)", 228, (p) => p.spec.ipVersion === 4],
  ["IPv6 (linktype 229)", 229, (p) => p.spec.ipVersion === 6],
  ["Ethernet (linktype 1), IPv4 and IPv6", 1, () => true],
]) {
  test(`every opcode, our pcap writer, ${label}: softroce decode agrees with tshark`, async () => {
    await setup();
    const pkts = generated().filter(filter);
    const file = join(tempDir("tshark"), `gen-${linktype}.pcap`);
    writeFileSync(file, pcapLib.writePcap(pkts.map((p, i) => ({ data: p.bytes, tsMicros: 1_000_000 * i })), { linktype }));
    const theirs = await tshark(file);
    const mine = await ours(file);
    assert.equal(mine.code, 0, `softroce decode reported bad packets: ${mine.stderr}`);
    assert.equal(mine.frames.size, pkts.length, "we decoded every packet");
    assert.equal(theirs.size, pkts.length, "tshark decoded every packet as RoCE");
    // The opcodes tshark does not know: we still decode them (and correctly).
    for (const [n, rec] of mine.frames) {
      const spec = pkts[n - 1].spec;
      assert.equal(rec["infiniband.bth.opcode"], spec.opcode, `frame ${n} opcode`);
      assert.equal(rec.icrc_ok, true, `frame ${n} ICRC`);
    }
    const { compared, packets } = compare(label, theirs, mine.frames, TSHARK_UNKNOWN);
    const want = MUST_COVER.filter((f) => (linktype === 228 ? !f.startsWith("ipv6.") : linktype === 229 ? !f.startsWith("ip.") : true));
    assert.deepEqual(want.filter((f) => !compared.has(f)), [], "fields never compared");
    const known = table.filter((e) => !TSHARK_UNKNOWN.has(e.op)).length;
    assert.ok(packets >= known * 3, `${packets} packets compared`);
    console.log(`    seed 0x${SEED.toString(16)}: ${packets} packets, ${compared.size} fields compared; ${pkts.length - packets} of unknown-to-tshark opcodes decoded`);
  });
}

test("the real rxe captures: softroce decode agrees with tshark on every RoCE packet", async () => {
  await setup();
  const files = readdirSync(CAPTURES).filter((f) => f.endsWith(".pcap")).sort();
  assert.ok(files.length >= 10, `captures in ${CAPTURES}`);
  let total = 0;
  const compared = new Set();
  for (const f of files) {
    const file = join(CAPTURES, f);
    const theirs = await tshark(file);
    const mine = await ours(file);
    assert.equal(mine.code, 0, `${f}: softroce decode reported bad packets: ${mine.stderr}`);
    const r = compare(f, theirs, mine.frames);
    total += r.packets;
    for (const x of r.compared) compared.add(x);
  }
  assert.ok(total >= 700, `only ${total} RoCE packets compared`);
  for (const f of ["infiniband.bth.psn", "infiniband.reth.va", "infiniband.aeth.syndrome", "infiniband.deth.srcqp", "infiniband.atomicacketh.origremdt", "ipv6.src"]) {
    assert.ok(compared.has(f), `${f} never compared over the captures`);
  }
  console.log(`    ${files.length} captures, ${total} RoCE packets, ${compared.size} fields compared`);
});

await run();

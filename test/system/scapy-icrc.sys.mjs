// ICRC cross-check: >= 1,000 random packets from WireCodec.emit (every opcode
// of the table, IPv4 and IPv6) are re-checked by test/system/scapy_icrc.py:
// scapy.contrib.roce recomputes every IPv4 ICRC, a Python implementation of
// rxe's masking rule recomputes every ICRC (the only checker for IPv6).
// Deliberately broken packets must be reported bad.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT, requireTools, run, runOk, tempDir, test } from "./lib/harness.mjs";
import { hex, unhex } from "./lib/icrc.mjs";
import { Rng, opcodeTable, randomSpecs } from "./lib/random-packets.mjs";

const PYTHON = "/usr/bin/python3";
const CHECKER = join(ROOT, "test/system/scapy_icrc.py");
const SEED = Number(process.env.SOFTROCE_SEED ?? 0x5ca9e);
const COUNT = Number(process.env.SOFTROCE_ICRC_PACKETS ?? 1200);
const CAPTURES = join(ROOT, "test/fixtures/captures");

// ICRCs from elsewhere: a ConnectX-4 Lx CNP (scapy's roce.uts, Ethernet header
// stripped) and scapy's UC SEND_ONLY example.
const GOLDEN = [
  "45c2003c718c4000401191610a0011010a001201000012b7002800008100ffff40000118000000000000000000000000000000000000000082fd002a",
  "45010040047840004011b4d5c0a80007c0a80007c00012b7002caca22460ffff000000d300cf17104630818be28935d90e9a95505401be885e50000078f353f3",
];

requireTools([
  { cmd: PYTHON, args: ["-c", "import scapy.contrib.roce"], pkg: "python3-scapy", what: "scapy.contrib.roce (/usr/bin/python3)" },
]);

async function checkLines(lines) {
  const file = join(tempDir("icrc"), "packets.txt");
  writeFileSync(file, lines.map(([id, bytes]) => `${id} ${hex(bytes)}`).join("\n") + "\n");
  const r = await runOk(PYTHON, [CHECKER, file], { timeoutMs: 180_000 });
  const results = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(results.length, lines.length, "the checker answered for every packet");
  return new Map(results.map((x) => [x.id, x]));
}

function fixIpv4Checksum(p) {
  p[10] = 0;
  p[11] = 0;
  let s = 0;
  for (let i = 0; i < 20; i += 2) s += (p[i] << 8) | p[i + 1];
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  p[10] = (~s >> 8) & 0xff;
  p[11] = ~s & 0xff;
}

let codec;
let table;
async function setup() {
  if (codec) return;
  const mod = await import(pathToFileURL(join(ROOT, "dist/internal/node.js")).href);
  const wasm = await mod.coreModule();
  codec = await mod.WireCodec.create(wasm);
  table = opcodeTable(await mod.instantiateCore(wasm));
}

test("the Python checkers call the golden vectors and every rxe capture packet good", async () => {
  const got = await checkLines(GOLDEN.map((h, i) => [`golden${i}`, unhex(h)]));
  for (const [id, x] of got) {
    assert.equal(x.verdict, "good", `${id}: ${JSON.stringify(x)}`);
    assert.equal(x.scapy, x.wire, `${id}: scapy`);
  }
  const pcaps = readdirSync(CAPTURES).filter((f) => f.endsWith(".pcap")).map((f) => join(CAPTURES, f));
  assert.ok(pcaps.length >= 10, `captures in ${CAPTURES}`);
  const r = await runOk(PYTHON, [CHECKER, "--pcap", ...pcaps], { timeoutMs: 180_000 });
  const res = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  const bad = res.filter((x) => x.verdict !== "good");
  assert.deepEqual(bad, [], "capture packets the checkers call bad");
  assert.ok(res.length >= 700, `only ${res.length} RoCE packets in the captures`);
  assert.ok(res.filter((x) => x.ip === 6).length >= 20, "too few IPv6 capture packets");
});

let emitted; // [{ id, spec, bytes }]

test(`${COUNT} random emitted packets: every ICRC agrees with scapy (IPv4) and the independent checker (IPv4+IPv6)`, async () => {
  await setup();
  assert.ok(table.length >= 40, `the opcode table has ${table.length} opcodes`);
  const rng = new Rng(SEED);
  const specs = randomSpecs(rng, table, COUNT);
  assert.ok(specs.length >= 1000);
  emitted = specs.map((spec, i) => ({ id: `p${i}`, spec, bytes: Uint8Array.from(codec.emit(spec)) }));

  // Coverage: every opcode over both IP versions, zero and padded payloads.
  for (const { op } of table) {
    for (const v of [4, 6]) {
      assert.ok(emitted.some((e) => e.spec.opcode === op && e.spec.ipVersion === v), `no IPv${v} packet for opcode 0x${op.toString(16)}`);
    }
  }
  const lens = emitted.map((e) => e.spec.payload.length);
  assert.ok(lens.some((n) => n === 0) && lens.some((n) => n % 4 !== 0) && lens.some((n) => n >= 4000), "payload sizes");

  const got = await checkLines(emitted.map((e) => [e.id, e.bytes]));
  const wrong = [];
  for (const e of emitted) {
    const x = got.get(e.id);
    const pad = (4 - (e.spec.payload.length % 4)) % 4;
    if (x.verdict !== "good") wrong.push({ opcode: e.spec.opcode, ip: e.spec.ipVersion, pad, ...x });
    else if (e.spec.ipVersion === 4) assert.equal(x.scapy, x.wire);
  }
  assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} of ${emitted.length} ICRCs disagree (seed ${SEED}); first ones shown`);
  const v4 = emitted.filter((e) => e.spec.ipVersion === 4).length;
  console.log(`    seed 0x${SEED.toString(16)}: ${emitted.length} packets (${v4} IPv4 via scapy, ${emitted.length - v4} IPv6), ${table.length} opcodes`);
});

test("broken ICRCs are reported bad; changing a masked field keeps the ICRC good", async () => {
  assert.ok(emitted, "needs the emitted packets of the previous test");
  const cases = [];
  const pick = (v, k) => emitted.filter((e) => e.spec.ipVersion === v)[k].bytes;
  for (const v of [4, 6]) {
    for (let k = 0; k < 3; k++) {
      const p = pick(v, k);
      const ipLen = v === 4 ? 20 : 40;
      const flipIcrc = Uint8Array.from(p);
      flipIcrc[p.length - 1 - k] ^= 1 << k;
      cases.push([`v${v}-icrc-bit-${k}`, flipIcrc, "bad"]);
      const flipPsn = Uint8Array.from(p); // a covered BTH byte, ICRC left alone
      flipPsn[ipLen + 8 + 11] ^= 0x80;
      cases.push([`v${v}-psn-${k}`, flipPsn, "bad"]);
      const flipSport = Uint8Array.from(p); // the UDP source port is covered
      flipSport[ipLen + 1] ^= 0x01;
      cases.push([`v${v}-sport-${k}`, flipSport, "bad"]);
      const masked = Uint8Array.from(p); // TTL / hop limit is masked: same ICRC
      masked[v === 4 ? 8 : 7] ^= 0x3c;
      if (v === 4) fixIpv4Checksum(masked); // so scapy still takes the packet
      cases.push([`v${v}-ttl-${k}`, masked, "good"]);
    }
  }
  const id = Uint8Array.from(pick(4, 3)); // IPv4 Identification is covered
  id[4] ^= 0x10;
  fixIpv4Checksum(id); // only the ICRC is wrong
  cases.push(["v4-id", id, "bad"]);
  const got = await checkLines(cases.map(([id, bytes]) => [id, bytes]));
  for (const [id, , want] of cases) {
    const x = got.get(id);
    assert.equal(x.verdict, want, `${id}: ${JSON.stringify(x)}`);
    if (want === "bad" && id.startsWith("v4")) {
      assert.ok(x.scapy && x.scapy !== x.wire, `${id}: scapy itself must call it bad (${JSON.stringify(x)})`);
    }
  }
});

await run();

#!/usr/bin/env node
// Summarizes captures for test/fixtures/captures/README.md: frames and file bytes, RoCE opcode
// counts and CM MADs (by attribute), each RoCE packet's ICRC checked twice (softroce decode and
// the independent checker test/system/scapy_icrc.py), and the frames tshark calls malformed.
//   node test/interop/summarize.mjs [--md] FILE.pcap...
// Needs `npm run build` (dist/cli/softroce.js), tshark, and /usr/bin/python3 with scapy.
// Exit status 1 when any RoCE packet of any file fails an ICRC check or softroce decode rejects it.
import { spawnSync } from "node:child_process";
import { statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");
const CLI = join(ROOT, "dist/cli/softroce.js");
const CHECKER = join(ROOT, "test/system/scapy_icrc.py");
// CM attribute IDs (IBA vol 1, table 104; Linux cm_msgs.h CM_*_ATTR_ID)
const CM_ATTR = { 0x01: "ClassPortInfo", 0x10: "REQ", 0x11: "MRA", 0x12: "REJ", 0x13: "REP", 0x14: "RTU",
  0x15: "DREQ", 0x16: "DREP", 0x17: "SIDR_REQ", 0x18: "SIDR_REP", 0x19: "LAP", 0x1a: "APR" };

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 256 << 20 });
  if (r.error) throw r.error;
  return r;
}

const counts = (xs) => {
  const m = new Map();
  for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1);
  return [...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
};

function summarize(file) {
  const dec = run(process.execPath, [CLI, "decode", "--pcap", file, "--json"]);
  const pkts = dec.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  const bad = pkts.filter((p) => p.icrc_ok !== true);
  const ops = counts(pkts.map((p) => p["infiniband.bth.opcode"]).filter((x) => x !== undefined));
  const ts = run("tshark", ["-r", file, "-n", "--disable-protocol", "rpcordma", "-T", "fields", "-E", "separator=/t",
    "-e", "frame.number", "-e", "infiniband.mad.mgmtclass", "-e", "infiniband.mad.method",
    "-e", "infiniband.mad.attributeid", "-e", "infiniband.mad.status", "-e", "_ws.malformed", "-e", "_ws.expert.message"]);
  const rows = ts.stdout.trim().split("\n").filter(Boolean).map((l) => l.split("\t"));
  const mads = counts(rows.filter((r) => r[1]).map((r) => {
    const cls = Number(r[1]), attr = Number(r[3]), method = Number(r[2]), status = Number(r[4] || 0);
    const name = cls === 7 ? CM_ATTR[attr] ?? `attr 0x${attr.toString(16)}` : `class 0x${cls.toString(16)} attr 0x${attr.toString(16)}`;
    return `${name}${method === 3 ? "" : ` m0x${method.toString(16)}`}${status ? ` st0x${status.toString(16)}` : ""}`;
  }));
  const malformed = rows.filter((r) => r[5]).map((r) => Number(r[0]));
  const frames = rows.length;
  let indep = { ok: 0, total: 0, error: "" };
  const chk = run("/usr/bin/python3", [CHECKER, "--pcap", file]);
  if (chk.status === 0 || chk.stdout) {
    const res = chk.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
    indep = { ok: res.filter((x) => x.verdict === "good").length, total: res.length, error: chk.status ? chk.stderr.trim() : "" };
  } else indep.error = chk.stderr.trim();
  return {
    file: basename(file), frames, bytes: statSync(file).size, roce: pkts.length, decodeExit: dec.status,
    icrcOk: pkts.length - bad.length, bad: bad.map((p) => p["frame.number"]), ops, mads, malformed, indep,
  };
}

const md = process.argv.includes("--md");
const files = process.argv.slice(2).filter((a) => a !== "--md");
if (files.length === 0) {
  process.stderr.write("usage: summarize.mjs [--md] FILE.pcap...\n");
  process.exit(2);
}
let failed = false;
for (const f of files) {
  const s = summarize(f);
  const icrcPass = s.icrcOk === s.roce && s.indep.ok === s.indep.total && s.indep.total === s.roce && s.decodeExit === 0;
  if (!icrcPass) failed = true;
  const ops = s.ops.map(([k, n]) => `${k}×${n}`).join(", ") || "–";
  const mads = s.mads.map(([k, n]) => `${k}×${n}`).join(", ") || "–";
  const icrc = `${s.icrcOk}/${s.roce} decode, ${s.indep.ok}/${s.indep.total} checker ${icrcPass ? "PASS" : "FAIL"}`;
  if (md) {
    console.log(`| \`${s.file}\` | ${s.frames} / ${s.bytes} | ${ops} | ${mads} | ${icrc} |${s.malformed.length ? ` tshark malformed: frames ${s.malformed.join(" ")}` : ""}`);
  } else {
    console.log(`${s.file}: ${s.frames} frames, ${s.bytes} bytes; RoCE ${s.roce}; opcodes ${ops}; MADs ${mads}; ICRC ${icrc}` +
      `${s.bad.length ? `; bad frames ${s.bad.join(" ")}` : ""}${s.malformed.length ? `; tshark malformed: frames ${s.malformed.join(" ")}` : ""}` +
      `${s.indep.error ? `; checker: ${s.indep.error.split("\n").pop()}` : ""}`);
  }
}
process.exit(failed ? 1 : 0);

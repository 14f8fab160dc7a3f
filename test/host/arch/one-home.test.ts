// One home for each fact (issue 10): the repetitions the issue found and removed must not come
// back. Each rule names a pattern (a definition, a hand-written layout, a literal) and the only
// files where it may stand; a match anywhere else fails here with its file and line.
import { readFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT, tsFiles } from "./tree.js";



interface Rule {
  what: string;
  /** folders (from the repository root) searched */
  under: string[];
  pattern: RegExp;
  /** files (from the root) or folders ending in "/" where the pattern belongs */
  home: string[];
  /** lines that match but are no repetition (e.g. a named constant's own definition) */
  skip?: RegExp;
}

const RULES: Rule[] = [
  {
    what: "a literal errno (-EINVAL is 22, -EBUSY 16, …): return the named constant from assembly/abi",
    under: ["assembly"],
    pattern: /(?:return|[=(,:?])\s*-(?:[2-9]|1[0-9]|[2-9][0-9]|1[01][0-9])\b(?!\s*[*/<>])/,
    home: ["assembly/abi/", "assembly/wire/packet.ts", "assembly/wire/exports.ts"],
    skip: /^\s*(?:export\s+)?const\s+[A-Z][A-Z0-9_]*\s*(?::\s*\w+)?\s*=\s*-\d+\s*;/,
  },
  {
    what: "an AETH type by hand (`>> 5) & 3`): use aeth_type",
    under: ["assembly", "host"],
    pattern: />>>?\s*5\)?\s*&\s*3\b/,
    home: ["assembly/wire/aeth.ts", "host/core/wire/aeth.ts"],
  },
  {
    what: "a record layout constant outside the generated ABI (REQ_PSN, TXD_*, RXM_*, SWQE_*, …)",
    under: ["assembly"],
    pattern: /^export const (?:REQ|RESP|COMP|SWQE|RWQE|CQE|TXD|RXM|QP|ATTR|AV|R|I|TR)_[A-Z0-9_]+\s*:\s*(?:u32|usize|i32)\s*=\s*\d+\s*;/,
    home: ["assembly/abi/"],
  },
  {
    what: "the receive verdict names (RX_RESULT_NAMES): generated once per side",
    under: ["assembly", "host", "examples"],
    pattern: /\bRX_RESULT_NAMES\s*(?::[^=]*)?=/,
    home: ["assembly/abi/net.ts", "host/core/abi/net.ts"],
  },
  {
    what: "a power-of-two rounding helper (nextPow2 / roundPow2)",
    under: ["assembly", "host"],
    pattern: /function\s+(?:next|round)_?[Pp]ow_?2\b/,
    home: ["assembly/mem/pow2.ts"],
  },
  {
    what: "MTU enum → bytes (mtuBytes / qpMtu): one function per side",
    under: ["assembly", "host/core"],
    pattern: /function\s+(?:mtuBytes|qpMtu|mtu_bytes|mtuToBytes)\b/,
    home: ["assembly/verbs/enums.ts", "host/core/verbs/enums.ts"],
  },
  {
    what: "S_* state constants beside a state enum",
    under: ["assembly"],
    pattern: /\bconst S_[A-Z_]+\s*(?::\s*u32)?\s*=/,
    home: [],
  },
  {
    what: "a scheduler entry besides scheduleQp",
    under: ["assembly/transport"],
    pattern: /function\s+schedule\w*\s*\(/,
    home: ["assembly/transport/qp_sched.ts"],
  },
  {
    what: "a scatter/gather walk (SGE records read): one copy routine, dma.ts",
    under: ["assembly/transport"],
    pattern: /\bSGE_(?:ADDR|LKEY|LENGTH)\b/,
    home: ["assembly/transport/dma.ts"],
  },
  {
    what: "an IPv4/IPv6 header written by hand on the host: the core's emitter (WireCodec.ipPacket) writes them",
    under: ["host"],
    pattern: /\[0\]\s*=\s*0x45\b|setUint16\(\s*6\s*,\s*0x4000\s*\)|setUint32\(\s*0\s*,\s*0x60000000\s*\)/,
    home: [],
  },
  {
    what: "perftest's rule line or a column header spelled again (PERF_RULE, BW_HEADER, LAT_HEADER)",
    under: ["host"],
    pattern: /["'`]-{20,}|#bytes\s+#iterations/,
    home: ["host/core/perf/report.ts"],
  },
  {
    what: "PSN_MASK defined again",
    under: ["assembly", "host/core"],
    pattern: /\bPSN_MASK\s*(?::\s*u32)?\s*=/,
    home: ["assembly/wire/psn.ts"],
  },
];

/** Every match of a rule outside its home: "file:line: text". */
function offenders(rule: Rule, files: { rel: string; text: string }[]): string[] {
  const out: string[] = [];
  for (const f of files) {
    if (rule.home.some((h) => (h.endsWith("/") ? f.rel.startsWith(h) : f.rel === h))) continue;
    f.text.split("\n").forEach((line, i) => {
      if (/^\s*(?:\/\*|\*)/.test(line)) return; // a block comment line
      const code = line.replace(/\/\/.*$/, "");
      if (rule.skip?.test(code)) return;
      if (rule.pattern.test(code)) out.push(`${f.rel}:${i + 1}: ${line.trim()}`);
    });
  }
  return out;
}

function filesUnder(dirs: string[]): { rel: string; text: string }[] {
  return dirs.flatMap((d) => tsFiles(join(ROOT, d))).map((p) => ({ rel: relative(ROOT, p).split(sep).join("/"), text: readFileSync(p, "utf8") }));
}

describe("one home for each fact", () => {
  it("the checker finds a planted repetition and spares its home and comments", () => {
    const planted = [
      { rel: "assembly/transport/x.ts", text: "  if (busy) return -16;\n  // return -16 in a comment\n" },
      { rel: "assembly/abi/x.ts", text: "export const EBUSY: i32 = 16; return -16;\n" },
      { rel: "host/core/capture/x.ts", text: "    out[0] = 0x45;\n" },
      { rel: "assembly/transport/y.ts", text: "const t = (syn >> 5) & 3;\nexport const REQ_PSN: usize = 0;\n" },
    ];
    const hits = (what: string) => offenders(RULES.find((r) => r.what.startsWith(what))!, planted);
    expect(hits("a literal errno")).toEqual(["assembly/transport/x.ts:1: if (busy) return -16;"]);
    expect(hits("an IPv4/IPv6 header")).toEqual(["host/core/capture/x.ts:1: out[0] = 0x45;"]);
    expect(hits("an AETH type")).toEqual(["assembly/transport/y.ts:1: const t = (syn >> 5) & 3;"]);
    expect(hits("a record layout")).toEqual(["assembly/transport/y.ts:2: export const REQ_PSN: usize = 0;"]);
    // -1 (a "none" sentinel), a named constant's definition and a doc comment are no errno
    expect(offenders(RULES[0]!, [{ rel: "assembly/mem/p.ts", text: "  if (idx == NIL) return -1;\nexport const ID_OVER_BUDGET: i32 = -2;\n/** x^(-8 n) mod P */\n" }])).toEqual([]);
  });

  for (const rule of RULES) {
    it(rule.what, () => {
      const files = filesUnder(rule.under);
      expect(files.length).toBeGreaterThan(0);
      expect(offenders(rule, files)).toEqual([]);
    });
  }

  it("responder.ts stays one concern (the RC state machine; sending and UC/UD receive live beside it)", () => {
    const lines = readFileSync(join(ROOT, "assembly/transport/responder.ts"), "utf8").split("\n").length;
    expect(lines).toBeLessThan(900);
  });
});

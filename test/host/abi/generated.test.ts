// The ABI's generated files (assembly/abi, host/core/abi, docs/ABI.md tables) are what
// abi/schema.json says, the schema is sound, and the compiled core agrees with it.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  DOCS_PATH, OTHER_DOCS, ROOT, SCHEMA_PATH, render, renderTree, staleFiles, validate, type AbiSchema,
} from "../../../scripts/gen-abi.mjs";
import {
  Cfg, COUNTER_NAMES, Counter, IP_ID_UNKNOWN, OpMask, PARSE_ERRORS, QpRec, QpState, Ring, RingKind, RX_BUF_CAP, RX_RESULT_NAMES, RxResult,
  TRACE_KIND_NAMES, TraceKind, TraceRec, Txd, VERBS_ABI_VERSION, WIRE_BUF_CAP,
} from "../../../host/core/abi/index.js";
import { openDeviceWith } from "../../../host/core/verbs/device.js";
import { coreModule } from "../../../host/node/wasm-source.js";

const schemaText = readFileSync(join(ROOT, SCHEMA_PATH), "utf8");
const docsText = readFileSync(join(ROOT, DOCS_PATH), "utf8");
const otherDocs = Object.fromEntries(OTHER_DOCS.map((p) => [p, readFileSync(join(ROOT, p), "utf8")]));
const fresh = (): AbiSchema => JSON.parse(schemaText) as AbiSchema;

/** An AssemblyScript string in linear memory (UTF-16, byte length at ptr - 4). */
function asString(memory: WebAssembly.Memory, ptr: number): string {
  const len = new Uint32Array(memory.buffer, ptr - 4, 1)[0]! >>> 1;
  return String.fromCharCode(...new Uint16Array(memory.buffer, ptr, len));
}

describe("generated ABI files", () => {
  it("are up to date with abi/schema.json (run `npm run gen:abi` if not)", () => {
    expect(staleFiles()).toEqual([]);
  });

  it("cover both languages, the index, the version and the docs", () => {
    const files = [...renderTree().keys()];
    const modules = Object.keys(fresh().modules);
    expect(modules.length).toBeGreaterThan(5);
    for (const m of modules) {
      expect(files).toContain(`assembly/abi/${m}.ts`);
      expect(files).toContain(`host/core/abi/${m}.ts`);
    }
    expect(files).toEqual(expect.arrayContaining(["host/core/abi/index.ts", "assembly/abi/version.ts", "host/core/abi/version.ts", DOCS_PATH]));
  });

  it("notices a layout change: the AssemblyScript, TypeScript and docs outputs all go stale", () => {
    const s = fresh();
    const qp = s.layouts.find((l) => l.id === "reqLine")!;
    const psn = qp.fields.find((f) => f.name === "PSN")!;
    psn.doc = `${psn.doc} (changed)`;
    const changed = render(s, docsText, otherDocs);
    const current = renderTree();
    const differ = [...changed].filter(([p, c]) => current.get(p) !== c).map(([p]) => p).sort();
    expect(differ).toEqual(["assembly/abi/qp.ts", DOCS_PATH, "host/core/abi/qp.ts"]);
  });

  it("notices a version change in both languages", () => {
    const s = fresh();
    s.verbsAbiVersion += 1;
    const changed = render(s, docsText, otherDocs);
    expect(changed.get("assembly/abi/version.ts")).toContain(`VERBS_ABI_VERSION: u32 = ${s.verbsAbiVersion};`);
    expect(changed.get("host/core/abi/version.ts")).toContain(`VERBS_ABI_VERSION = ${s.verbsAbiVersion};`);
  });

  it("writes every layout and enum table into docs/ABI.md or a page that marks its place", () => {
    const s = fresh();
    const all = [docsText, ...Object.values(otherDocs)].join("\n");
    for (const l of s.layouts) expect(all).toContain(`**${l.title}**`);
    for (const e of s.enums) expect(all).toContain(`**${e.title}**`);
    expect(otherDocs["docs/TRANSPORT.md"]).toContain("**TX descriptor (TX ring slot, 176 bytes)**");
    expect(docsText).not.toContain("**TX descriptor (TX ring slot, 176 bytes)**");
    // a real row: the requester line's PSN, where the hand copies once disagreed
    expect(docsText).toMatch(/\| 4 \| u32 \| PSN \| next PSN to send \|/);
  });
});

describe("schema validation", () => {
  const rejects = (edit: (s: AbiSchema) => void, message: RegExp) => {
    const s = fresh();
    edit(s);
    expect(() => validate(s)).toThrow(message);
  };

  it("accepts the checked-in schema", () => {
    expect(() => validate(fresh())).not.toThrow();
  });

  it("refuses overlapping fields", () => {
    rejects((s) => { s.layouts.find((l) => l.id === "reqLine")!.fields[2]!.offset = 4; }, /overlaps PSN/);
  });

  it("refuses a misaligned field", () => {
    rejects((s) => { s.layouts.find((l) => l.id === "mr")!.fields.find((f) => f.name === "ADDR")!.offset = 36; }, /not 8-byte aligned/);
  });

  it("refuses fields beyond the record's size", () => {
    rejects((s) => { s.layouts.find((l) => l.id === "cqe")!.size!.value = 48; }, /beyond the size 48/);
  });

  it("refuses a name declared twice in one module", () => {
    rejects((s) => { s.constants.push({ module: "qp", name: "QP_NUM", value: 1, type: "u32" }); }, /QP_NUM declared twice/);
  });

  it("refuses a name table whose values are not 0, 1, 2, ...", () => {
    rejects((s) => { s.enums.find((e) => e.id === "rxResult")!.values[3]!.value = 30; }, /name table needs values/);
  });

  it("refuses an unknown field type and an unknown module", () => {
    rejects((s) => { s.layouts[0]!.fields[0]!.type = "u24"; }, /unknown type "u24"/);
    rejects((s) => { s.layouts[0]!.module = "nowhere"; }, /unknown module "nowhere"/);
  });

  it("refuses a docs marker for an id the schema does not define", () => {
    expect(() => render(fresh(), `${docsText}\n<!-- abi:table noSuchThing -->\n<!-- /abi:table -->\n`)).toThrow(/noSuchThing/);
  });
});

describe("the compiled core agrees with the schema", () => {
  it("exports the facts it returns at run time with the generated values", async () => {
    const dev = await openDeviceWith(await coreModule(), { txRingSize: 64 });
    const core = dev.core as unknown as Record<string, (...a: number[]) => number> & { memory: WebAssembly.Memory };
    expect(core.verbs_abi_version!()).toBe(VERBS_ABI_VERSION);
    expect(core.dev_config_size!()).toBe(Cfg.SIZE);
    expect(core.rx_buf_cap!()).toBe(RX_BUF_CAP);
    expect(core.wire_buf_cap!()).toBe(WIRE_BUF_CAP);
    expect(core.trace_record_size!()).toBe(TraceRec.SIZE);
    expect(core.dev_counter_count!()).toBe(COUNTER_NAMES.length);
    expect(asString(core.memory, core.dev_counter_names!())).toBe(COUNTER_NAMES.join(","));
    expect(asString(core.memory, core.rx_result_names!())).toBe(RX_RESULT_NAMES.join(","));
    expect(asString(core.memory, core.trace_kind_names!())).toBe(TRACE_KIND_NAMES.join(","));
    expect(asString(core.memory, core.trace_state_names!(TraceKind.QP_STATE))).toBe("RESET,INIT,RTR,RTS,SQD,SQE,ERR");
    expect(Counter.FLUSHED_WQES).toBe(COUNTER_NAMES.length - 1);
    expect(RX_RESULT_NAMES[RxResult.BAD_QKEY]).toBe("bad_qkey");
    expect(IP_ID_UNKNOWN).toBe(0xffffffff);
    // parse result names (NUL-terminated ASCII) and opcode mask bits
    const cstr = (p: number) => { let t = ""; const b = new Uint8Array(core.memory.buffer); while (b[p]) t += String.fromCharCode(b[p++]!); return t; };
    for (let k = 1; k < PARSE_ERRORS.length; k++) expect(cstr(core.pkt_error_name!(k))).toBe(PARSE_ERRORS[k]);
    const sendOnly = OpMask.REQ | OpMask.SEND | OpMask.PAYLOAD | OpMask.START | OpMask.END | OpMask.RWR | OpMask.COMP;
    expect(core.op_mask!(0x04)).toBe(sendOnly); // RC SEND ONLY
    expect(core.op_mask!(0x11) & (OpMask.AETH | OpMask.RESP | OpMask.ATMACK)).toBe(OpMask.AETH | OpMask.RESP); // RC ACK
    // the TX ring the device carved has the generated header and slot size
    const tx = core.tx_ring!();
    const u32 = (p: number) => new DataView(core.memory.buffer).getUint32(p, true);
    expect(u32(tx + Ring.SLOT)).toBe(Txd.SLOT);
    expect(u32(tx + Ring.KIND)).toBe(RingKind.TX);
    expect(u32(tx + Ring.CAP)).toBe(64);
    // the first QP record: number qpn_base (configuration record) where QpRec says, type RC, state RESET
    const pd = dev.allocPd();
    const cq = dev.createCq(4);
    const qp = pd.createQp({ qpType: 2, sendCq: cq, recvCq: cq, cap: { maxSendWr: 1, maxRecvWr: 1, maxSendSge: 1, maxRecvSge: 1 } });
    const rec = core.qp_ptr!(qp.handle);
    expect(u32(rec + QpRec.NUM)).toBe(u32(core.dev_config!() + Cfg.QPN_BASE));
    expect(u32(rec + QpRec.TYPE)).toBe(2);
    expect(u32(rec + QpRec.ATTR)).toBe(QpState.RESET);
  });
});

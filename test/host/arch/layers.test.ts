// The core's import graph (issue 10, item 6): no module of assembly/ imports itself back through
// others (no circle), and the layers below the transport (verbs, mem, wire, crc, sched, trace,
// abi) never import assembly/transport: shared helpers live in leaves (qp_sched.ts, qp_error.ts,
// req_line.ts, dma.ts, pkt.ts; verbs/gsi_slot.ts).
import { readFileSync } from "node:fs";
import { dirname, join, normalize, relative, sep } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT, tsFiles } from "./tree.js";

type Graph = Map<string, string[]>;

/** Relative imports of each AssemblyScript module, as repository paths. */
function importGraph(dir: string): Graph {
  const g: Graph = new Map();
  for (const file of tsFiles(join(ROOT, dir))) {
    const rel = relative(ROOT, file).split(sep).join("/");
    const deps: string[] = [];
    const re = /\bfrom\s*"(\.[^"]+)"/g;
    const src = readFileSync(file, "utf8");
    for (let m = re.exec(src); m; m = re.exec(src)) {
      deps.push(normalize(join(dirname(rel), m[1]!)).split(sep).join("/") + ".ts");
    }
    g.set(rel, deps);
  }
  return g;
}

/** The strongly connected components of more than one module (Tarjan), each sorted. */
export function circles(g: Graph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  let n = 0;
  const visit = (v: string): void => {
    index.set(v, n);
    low.set(v, n++);
    stack.push(v);
    on.add(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      for (;;) {
        const w = stack.pop()!;
        on.delete(w);
        comp.push(w);
        if (w === v) break;
      }
      if (comp.length > 1) out.push(comp.sort());
    }
  };
  for (const v of g.keys()) if (!index.has(v)) visit(v);
  return out;
}

describe("assembly/ import graph", () => {
  it("the circle finder finds a planted circle and passes a chain", () => {
    const g: Graph = new Map([["a.ts", ["b.ts"]], ["b.ts", ["c.ts"]], ["c.ts", ["a.ts"]], ["d.ts", ["a.ts"]]]);
    expect(circles(g)).toEqual([["a.ts", "b.ts", "c.ts"]]);
    expect(circles(new Map([["a.ts", ["b.ts"]], ["b.ts", []]]))).toEqual([]);
  });

  it("has no import circle", () => {
    const g = importGraph("assembly");
    expect(g.size).toBeGreaterThan(40);
    expect(circles(g)).toEqual([]);
  });

  it("no layer below the transport imports assembly/transport", () => {
    const g = importGraph("assembly");
    const back: string[] = [];
    for (const [file, deps] of g) {
      if (file.startsWith("assembly/transport/") || file === "assembly/index.ts") continue;
      for (const d of deps) if (d.startsWith("assembly/transport/")) back.push(`${file} -> ${d}`);
    }
    expect(back).toEqual([]);
  });
});

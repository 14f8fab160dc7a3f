// The hosts (host/node, host/browser, host/cli, host/gateway, and any later one) enter
// host/core only through an index.ts: host/core/index.ts or a folder's host/core/<folder>/index.ts.
// A deep import (host/core/<folder>/<file>) from outside host/core fails here, naming the line.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT, tsFiles } from "./tree.js";

const HOST = join(ROOT, "host");
const CORE = join(HOST, "core");

/** Every module specifier of static imports/exports and dynamic import() calls, with its line. */
export function specifiers(source: string): { spec: string; line: number }[] {
  const out: { spec: string; line: number }[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)(["'])([^"']+)\1/gm;
  for (let m = re.exec(source); m; m = re.exec(source)) {
    out.push({ spec: m[2]!, line: source.slice(0, m.index).split("\n").length });
  }
  return out;
}

/** Why importing `spec` from `file` is a deep import into host/core, or undefined when it is allowed. */
export function deepImport(file: string, spec: string): string | undefined {
  if (!spec.startsWith(".")) return undefined;
  const fromCore = file.startsWith(CORE + sep);
  if (fromCore) return undefined;
  const target = resolve(dirname(file), spec).replace(/\.js$/, ".ts");
  if (!target.startsWith(CORE + sep)) return undefined;
  const rel = relative(CORE, target).split(sep);
  if (rel.length === 1 && rel[0] === "index.ts") return undefined;
  if (rel.length === 2 && rel[1] === "index.ts") return undefined;
  return `host/core/${rel.join("/")} (enter through host/core/${rel.length > 1 ? `${rel[0]}/` : ""}index.ts)`;
}

describe("hosts enter host/core only through index.ts files", () => {
  it("the checker flags a deep import and passes folder and core indexes", () => {
    const cli = join(HOST, "cli", "x.ts");
    expect(deepImport(cli, "../core/verbs/device.js")).toMatch(/host\/core\/verbs\/device\.ts/);
    expect(deepImport(cli, "../core/verbs/index.js")).toBeUndefined();
    expect(deepImport(cli, "../core/index.js")).toBeUndefined();
    expect(deepImport(cli, "./args.js")).toBeUndefined();
    expect(deepImport(join(CORE, "sim", "x.ts"), "../verbs/device.js")).toBeUndefined();
    const src = 'import { a } from "../core/wire/codec.js";\nexport * from "../core/index.js";\nconst m = await import("../core/sim/wire.js");\n';
    expect(specifiers(src).map((s) => s.spec)).toEqual(["../core/wire/codec.js", "../core/index.js", "../core/sim/wire.js"]);
  });

  it("no file under host/ outside host/core imports host/core/<folder>/<file>", () => {
    const files = tsFiles(HOST).filter((f) => !f.startsWith(CORE + sep));
    expect(files.length).toBeGreaterThan(20);
    const bad: string[] = [];
    for (const f of files) {
      for (const { spec, line } of specifiers(readFileSync(f, "utf8"))) {
        const why = deepImport(f, spec);
        if (why) bad.push(`${relative(ROOT, f)}:${line} imports ${why}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it("every folder of host/core has an index.ts", () => {
    const folders = readdirSync(CORE).filter((n) => statSync(join(CORE, n)).isDirectory());
    expect(folders.length).toBeGreaterThan(5);
    expect(folders.filter((d) => !readdirSync(join(CORE, d)).includes("index.ts"))).toEqual([]);
  });
});

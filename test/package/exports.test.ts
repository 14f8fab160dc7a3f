// The package root exports exactly what docs/API.md's table "What the package exports" lists,
// per entry (node, browser, both): adding an export means documenting it, and the table names
// nothing that is not there.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import * as esbuild from "esbuild";
import { beforeAll, describe, expect, it } from "vitest";
import * as nodeEntry from "../../host/node/index.js";
import { ROOT } from "./npm.js";

// The browser entry imports the wasm as a file URL (a bundler's job): bundle it as the build does.
let browserEntry: Record<string, unknown> = {};
beforeAll(async () => {
  const outfile = join(ROOT, ".test-build/exports/browser.js");
  await esbuild.build({
    entryPoints: [join(ROOT, "host/browser/index.ts")], outfile, bundle: true, format: "esm", platform: "browser",
    target: "es2022", loader: { ".wasm": "file" }, logLevel: "warning",
  });
  browserEntry = await import(pathToFileURL(outfile).href);
});

/** name -> entry ("node", "browser" or "both") from the table's rows. */
export function documentedExports(md: string): Map<string, string> {
  const start = md.indexOf("## What the package exports");
  if (start < 0) throw new Error("docs/API.md has no section 'What the package exports'");
  const end = md.indexOf("\n## ", start + 1);
  const out = new Map<string, string>();
  for (const line of md.slice(start, end < 0 ? undefined : end).split("\n")) {
    const cells = line.split("|").map((c) => c.trim());
    if (cells.length < 4 || !cells[1].startsWith("`")) continue;
    for (const m of cells[1].matchAll(/`([A-Za-z_$][\w$]*)`/g)) out.set(m[1], cells[2]);
  }
  return out;
}

const doc = documentedExports(readFileSync(join(ROOT, "docs/API.md"), "utf8"));
const listed = (entry: string) => [...doc].filter(([, e]) => e === entry || e === "both").map(([n]) => n).sort();

describe("the package root's exports", () => {
  it("the Node entry exports what docs/API.md lists for node", () => {
    expect(Object.keys(nodeEntry).sort()).toEqual(listed("node"));
  });

  it("the browser entry exports what docs/API.md lists for browser", () => {
    expect(Object.keys(browserEntry).sort()).toEqual(listed("browser"));
  });

  it("internals are not exported", () => {
    for (const name of ["CLIENT_ADDRESS", "slotView", "emitHello", "instantiateCore", "UdpLink", "openDatapath", "TunnelLink", "PacketPort"]) {
      expect(Object.keys(nodeEntry)).not.toContain(name);
      expect(Object.keys(browserEntry)).not.toContain(name);
    }
  });

  it("the table parser reads names and entries", () => {
    const m = documentedExports("## What the package exports\n| a | b | c |\n| --- | --- | --- |\n| `x`, `y` | node | z |\n## Next\n| `w` | both | |\n");
    expect([...m]).toEqual([["x", "node"], ["y", "node"]]);
  });
});

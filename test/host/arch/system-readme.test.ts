// test/system/README.md's table names every system suite the runner finds (test/system/*.sys.mjs),
// each once, and no suite that is not there.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "./tree.js";

const DIR = join(ROOT, "test/system");

describe("test/system/README.md", () => {
  it("has one table row per suite file", () => {
    const suites = readdirSync(DIR)
      .filter((f) => f.endsWith(".sys.mjs"))
      .map((f) => f.slice(0, -".sys.mjs".length))
      .sort();
    expect(suites.length).toBeGreaterThan(0);
    const rows = [...readFileSync(join(DIR, "README.md"), "utf8").matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!).sort();
    expect(rows).toEqual(suites);
  });
});

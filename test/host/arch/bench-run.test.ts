// bench/run.mjs (npm run bench) starts every bench in bench/ by discovery: each bench/*.mjs but the
// runner and the modules benches use (*-peer.mjs, *-common.mjs); bench/wake.mjs among them.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "./tree.js";

describe("bench/run.mjs", () => {
  it("lists every bench file, wake.mjs included, and no helper module", () => {
    const r = spawnSync(process.execPath, [join(ROOT, "bench/run.mjs"), "--list"], { encoding: "utf8" });
    expect(r.status).toBe(0);
    const listed = r.stdout.trim().split("\n");
    const files = readdirSync(join(ROOT, "bench")).filter((f) => f.endsWith(".mjs"));
    const helpers = files.filter((f) => f === "run.mjs" || /-(peer|common)\.mjs$/.test(f));
    expect(helpers.length).toBeGreaterThan(1);
    expect(listed).toContain("bench/wake.mjs");
    expect(listed.sort()).toEqual(files.filter((f) => !helpers.includes(f)).map((f) => `bench/${f}`).sort());
    expect(spawnSync(process.execPath, [join(ROOT, "bench/run.mjs"), "--list", "wake"], { encoding: "utf8" }).stdout.trim()).toBe("bench/wake.mjs");
  });
});

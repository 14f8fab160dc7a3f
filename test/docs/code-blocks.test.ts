// Every code block in README.md and docs/*.md that is a complete program runs here as written.
// The fence's info string says what a block is:
//   ```ts program      a complete program: bundled with "softroce" resolved to this checkout's
//                      sources (host/node/index.ts), run with node; its stdout must equal the
//                      ```text output block that follows it (or the program asserts with node:assert)
//   ```ts fragment     part of a program (not run; it may use names it does not define)
//   ```text output     the expected stdout of the program block just before it
// A ts/js block with neither tag fails this test, so no unrun program slips in.
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CODE_LANGS = new Set(["ts", "typescript", "js", "javascript", "mjs", "mts"]);

export interface Block {
  file: string;
  line: number;
  lang: string;
  tags: string[];
  text: string;
}

/** The fenced blocks of a markdown text (``` fences; the info string split on spaces). */
export function fencedBlocks(file: string, md: string): Block[] {
  const out: Block[] = [];
  const lines = md.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^(`{3,})(.*)$/.exec(lines[i]);
    if (!open) continue;
    const [lang = "", ...tags] = open[2].trim().split(/\s+/).filter(Boolean);
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !lines[j].startsWith(open[1])) body.push(lines[j++]);
    if (j >= lines.length) throw new Error(`${file}:${i + 1}: code fence never closed`);
    out.push({ file, line: i + 1, lang, tags, text: body.join("\n") + "\n" });
    i = j;
  }
  return out;
}

const files = ["README.md", ...readdirSync(join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];
const blocks = files.flatMap((f) => fencedBlocks(f, readFileSync(join(ROOT, f), "utf8")));
const programs = blocks.flatMap((b, i) => (CODE_LANGS.has(b.lang) && b.tags.includes("program") ? [{ block: b, expected: blocks[i + 1]?.tags.includes("output") ? blocks[i + 1] : undefined }] : []));

describe("code blocks in README.md and docs/*.md", () => {
  it("the fence parser finds blocks and their tags", () => {
    const b = fencedBlocks("x.md", "a\n```ts program\nconst x = 1;\n```\n```text output\n1\n```\n````sh\n```\n````\n");
    expect(b.map((x) => [x.lang, x.tags, x.text])).toEqual([
      ["ts", ["program"], "const x = 1;\n"],
      ["text", ["output"], "1\n"],
      ["sh", [], "```\n"],
    ]);
    expect(() => fencedBlocks("y.md", "```ts\nopen")).toThrow(/never closed/);
  });

  it("every ts/js block says whether it is a program or a fragment", () => {
    const untagged = blocks.filter((b) => CODE_LANGS.has(b.lang) && !b.tags.includes("program") && !b.tags.includes("fragment"));
    expect(untagged.map((b) => `${b.file}:${b.line}`)).toEqual([]);
  });

  it("every output block follows a program, and every program's output is checked", () => {
    blocks.forEach((b, i) => {
      if (b.tags.includes("output")) expect(programs.some((p) => p.expected === b), `${b.file}:${b.line} follows no program block`).toBe(true);
      void i;
    });
    for (const p of programs) {
      const asserts = /from "node:assert/.test(p.block.text);
      expect(p.expected !== undefined || asserts, `${p.block.file}:${p.block.line}: a program needs a \`\`\`text output block after it or node:assert`).toBe(true);
    }
    expect(programs.length).toBeGreaterThan(0);
  });

  for (const { block, expected } of programs) {
    it(`${block.file}:${block.line} runs as written`, async () => {
      // Two levels under the root, as dist/node/, so the bundle finds build/softroce.wasm.
      const dir = join(ROOT, ".test-build", "docs");
      mkdirSync(dir, { recursive: true });
      const name = `${block.file.replace(/[/.]/g, "_")}_${block.line}`;
      const src = join(dir, `${name}.mts`);
      writeFileSync(src, block.text);
      const out = join(dir, `${name}.mjs`);
      await esbuild.build({
        entryPoints: [src], outfile: out, bundle: true, format: "esm", platform: "node", target: "node20", logLevel: "silent",
        external: ["ws"],
        plugins: [{
          name: "softroce-from-source",
          setup(b) {
            b.onResolve({ filter: /^softroce(\/gateway)?$/ }, (a) => ({ path: join(ROOT, a.path === "softroce" ? "host/node/index.ts" : "host/gateway/index.ts") }));
          },
        }],
      });
      const r = spawnSync(process.execPath, [out], { cwd: ROOT, encoding: "utf8", timeout: 25_000 });
      expect(r.status, `${block.file}:${block.line} exited ${r.status} (signal ${r.signal})\nstderr:\n${r.stderr}`).toBe(0);
      if (expected) expect(r.stdout).toBe(expected.text);
    });
  }
});

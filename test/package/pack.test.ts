// What `npm pack` puts in the tarball: every file matches the allowlist, and the files the
// package cannot work without are there (no test builds, no internal bundle, no sources of tests).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT, npm, requireBuild } from "./npm.js";

/** Every path the tarball may hold. */
export const ALLOW: RegExp[] = [
  /^package\.json$/,
  /^README\.md$/,
  /^LICENSE$/,
  /^build\/softroce(-shared)?\.wasm$/,
  /^dist\/(node|gateway|cli)\/[\w.-]+\.js(\.map)?$/,
  /^dist\/browser\/(index|device-worker)\.js(\.map)?$/,
  /^dist\/browser\/softroce(-shared)?-[A-Z0-9]+\.wasm$/,
  /^dist\/types\/host\/(index|(browser|node|gateway|cli|core)\/[\w/.-]+)\.d\.ts$/,
  // the playground `softroce playground` serves, and the browser-chat example it serves at /chat/
  /^dist\/playground\/((chat\/)?(index\.html|softroce(-shared)?-[A-Z0-9]+\.wasm)|(playground|device-worker)\.js(\.map)?|chat\/chat\.js(\.map)?|style\.css|_headers)$/,
  /^docs\/[\w/.-]+\.(md|png|svg)$/,
  /^host\/node\/native\/(\w+\.[ch]|binding\.gyp|build\.mjs)$/,
];

/** Files without which the package does not work. */
const REQUIRED = [
  "package.json", "README.md", "LICENSE", "build/softroce.wasm", "dist/node/index.js", "dist/browser/index.js",
  "dist/gateway/index.js", "dist/cli/softroce.js", "dist/types/host/node/index.d.ts", "dist/types/host/browser/index.d.ts",
  "dist/types/host/gateway/index.d.ts", "host/node/native/build.mjs", "host/node/native/binding.gyp",
  "build/softroce-shared.wasm", "dist/node/device-thread.js", "dist/browser/device-worker.js",
  "dist/playground/index.html", "dist/playground/playground.js", "dist/playground/device-worker.js", "dist/playground/chat/index.html",
  "dist/playground/chat/chat.js",
];

const NATIVE = "host/node/native";

/**
 * The addon's sources as the install step compiles them: binding.gyp's sources and every local
 * header they include, transitively. Without one of them the install's build fails and the package
 * falls back to node:dgram.
 */
export function nativeSources(): string[] {
  const gyp = JSON.parse(readFileSync(join(ROOT, NATIVE, "binding.gyp"), "utf8")) as { targets: { sources: string[] }[] };
  const seen = new Set<string>();
  const todo = gyp.targets.flatMap((t) => t.sources);
  while (todo.length) {
    const f = todo.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    for (const m of readFileSync(join(ROOT, NATIVE, f), "utf8").matchAll(/^#include "([\w.]+)"/gm)) {
      if (existsSync(join(ROOT, NATIVE, m[1]))) todo.push(m[1]);
    }
  }
  return [...seen].sort().map((f) => `${NATIVE}/${f}`);
}

export function packFiles(): string[] {
  requireBuild();
  const r = npm(["pack", "--dry-run", "--json", "--ignore-scripts"], ROOT);
  expect(r.status, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { files: { path: string }[] }[])[0].files.map((f) => f.path);
}

describe("package.json and package-lock.json", () => {
  it("the lockfile's root entry is what npm install would write (a fresh clone stays clean)", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
    const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")).packages[""];
    // npm adds hasInstallScript to the lockfile when the package has an install script
    expect(lock.hasInstallScript === true).toBe(Boolean(pkg.scripts?.install || pkg.scripts?.preinstall || pkg.scripts?.postinstall));
    expect(lock.version).toBe(pkg.version);
    expect(lock.license).toBe(pkg.license);
    expect(lock.engines).toEqual(pkg.engines);
    expect(lock.dependencies).toEqual(pkg.dependencies);
    expect(lock.devDependencies).toEqual(pkg.devDependencies);
  });

  it("names a license file and a repository", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
    expect(pkg.license).toBe("MIT");
    expect(readFileSync(join(ROOT, "LICENSE"), "utf8")).toMatch(/^MIT License\n/);
    expect(pkg.repository?.url).toMatch(/^git\+https:\/\//);
  });
});

describe("npm pack", () => {
  it("ships only allowlisted files, and every file the package needs", () => {
    const files = packFiles();
    expect(files.filter((f) => !ALLOW.some((re) => re.test(f)))).toEqual([]);
    expect(REQUIRED.filter((f) => !files.includes(f))).toEqual([]);
    expect(nativeSources().filter((f) => !files.includes(f))).toEqual([]);
    // one wasm asset of each kind where a bundle loads them (an old build's, under another hash, must not ship)
    const assets = files.filter((f) => f.endsWith(".wasm") && f.startsWith("dist/"));
    for (const dir of new Set(assets.map((f) => f.slice(0, f.lastIndexOf("/"))))) {
      const names = assets.filter((f) => f.slice(0, f.lastIndexOf("/")) === dir).map((f) => f.slice(dir.length + 1).replace(/-[A-Z0-9]+\.wasm$/, ""));
      expect(names.sort(), dir).toEqual(["softroce", "softroce-shared"]);
    }
    // what this test exists to keep out
    expect(files.filter((f) => /cli-test|\.test-build|dist\/internal|^test\//.test(f))).toEqual([]);
  });

  it("the addon's sources are binding.gyp's and the headers they include (the list above can fail)", () => {
    const sources = nativeSources();
    for (const f of ["datapath.c", "relay.c", "icrc.c", "icrc.h", "napi_util.h", "udpsock.h"]) expect(sources).toContain(`${NATIVE}/${f}`);
    expect(sources.filter((f) => f.endsWith(".mjs") || f.endsWith(".gyp"))).toEqual([]);
  });

  it("the allowlist refuses what must not ship", () => {
    for (const f of ["dist/cli-test-perf/softroce.js", "dist/internal/node.js", "test/docs/code-blocks.test.ts", ".test-build/x/softroce.js", "dist/types/host/internal/node.d.ts"]) {
      expect(ALLOW.some((re) => re.test(f)), f).toBe(false);
    }
  });
});

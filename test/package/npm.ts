// Running npm from a test. TRAP: under `npm test`, PATH starts with node_modules/.bin, where a
// dependency's own npm (if one is installed) would shadow the system npm; every node_modules/.bin
// entry is removed from PATH here so the npm users have is the one that runs.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

export function cleanEnv(): NodeJS.ProcessEnv {
  const path = (process.env.PATH ?? "").split(delimiter).filter((p) => !p.includes("node_modules")).join(delimiter);
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: path };
  // npm sets these for scripts it runs; a child npm must not inherit the outer run's settings.
  for (const k of Object.keys(env)) if (k.startsWith("npm_")) delete env[k];
  return env;
}

export function npm(args: string[], cwd: string, timeout = 240_000): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync("npm", args, { cwd, env: cleanEnv(), encoding: "utf8", timeout });
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? String(r.error ?? "") };
}

/** The built files the package needs; a test that finds them missing says how to make them. */
export function requireBuild(): void {
  for (const f of ["dist/node/index.js", "dist/browser/index.js", "dist/cli/softroce.js", "dist/types/host/node/index.d.ts", "build/softroce.wasm"]) {
    if (!existsSync(join(ROOT, f))) throw new Error(`${f} is missing: run 'npm run build' first ('npm test' does)`);
  }
}

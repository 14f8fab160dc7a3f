// Runs an example program as a user would (`node examples/<name>/<file>.mjs ...`), bounded in
// time: the examples import "softroce", which resolves to this package's dist/ build.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** Address blocks of the example suites (each file its own, as vitest may run them at once). */
export const ADDRESS_BLOCK = { "hello-rdma": 64, "kv-store": 160 } as const;

/**
 * `n` consecutive loopback addresses in the suite's block of 127.0.14.x (94 addresses), picked by
 * this process's id, so that copies of the suite running at once on one machine (each binds UDP
 * 4791) rarely meet.
 */
export function exampleAddresses(suite: keyof typeof ADDRESS_BLOCK, n: number): string[] {
  const slots = Math.floor(94 / n);
  const first = ADDRESS_BLOCK[suite] + (process.pid % slots) * n;
  return Array.from({ length: n }, (_, i) => `127.0.14.${first + i}`);
}

export interface ExampleRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runExample(file: string, args: string[] = [], timeoutMs = 60_000, input?: string): Promise<ExampleRun> {
  if (!existsSync(join(ROOT, "dist/node/index.js"))) throw new Error("dist/node/index.js missing: run npm run build");
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [join(ROOT, file), ...args], { cwd: ROOT, timeout: timeoutMs, killSignal: "SIGKILL" }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

// Runs an example program as a user would (`node examples/<name>/<file>.mjs ...`), bounded in
// time: the examples import "softroce", which resolves to this package's dist/ build.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

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

// The kernel's text files (/proc, /sys) as the Node host reads them: one read that says undefined
// where the file cannot be read (not Linux, a container without /proc, a missing interface), so each
// caller keeps its own default and none repeats the try.
import { readFileSync } from "node:fs";

/** The text of kernel file `path`, or undefined when it cannot be read. */
export function kernelText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

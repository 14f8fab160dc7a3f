// kernelText (host/node/kernel-text.ts): the one read of a kernel file — its text when it can be read,
// undefined when it cannot, and never a throw — so each caller's default is what a missing file gives.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { kernelText } from "../../../host/node/kernel-text.js";
import { cpuMhz, cpuStat } from "../../../host/cli/perftest-clock.js";

describe("kernelText", () => {
  it("a readable file: its text", () => {
    const dir = mkdtempSync(join(tmpdir(), "softroce-kt-"));
    try {
      writeFileSync(join(dir, "mtu"), "1500\n");
      expect(kernelText(join(dir, "mtu"))).toBe("1500\n");
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it("a missing file or a directory: undefined, no throw", () => {
    expect(kernelText(join(tmpdir(), "softroce-no-such-file-", String(process.pid)))).toBeUndefined();
    expect(kernelText(tmpdir())).toBeUndefined();
  });

  it.runIf(process.platform === "linux")("on Linux: /proc's files, as cpuStat and cpuMhz read them", () => {
    expect(kernelText("/proc/stat")).toMatch(/^cpu /);
    expect(cpuStat()).toEqual({ user: expect.any(Number), idle: expect.any(Number) });
    // an architecture without "cpu MHz" (arm64) says undefined, never throws
    const mhz = cpuMhz();
    expect(mhz === undefined || mhz > 0).toBe(true);
  });
});

import { defineConfig } from "vitest/config";

/**
 * The files whose assertions are timing: they count the busy-poll windows that caught their datagram
 * in time, which depends on the threads they wait for getting a CPU within the window. They run after
 * every other file, one at a time (another file beside them on a 2-vCPU machine makes their windows
 * miss; support/timing-lock.ts keeps two runs of them apart across vitest processes too).
 */
const TIMING = ["test/host/node/busy-poll.test.ts", "test/host/gateway/busy-poll.test.ts"];

const shared = { passWithNoTests: false, testTimeout: 30_000, hookTimeout: 30_000, pool: "forks" } as const;

// One config, no workspace file: vitest 4 silently ignores workspace files. Two projects, run as two
// groups: every file in parallel first (groupOrder 0), then the timing files alone (groupOrder 1).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          ...shared,
          name: "host",
          include: ["test/host/**/*.test.ts", "test/docs/**/*.test.ts", "test/package/**/*.test.ts"],
          exclude: ["**/node_modules/**", ...TIMING],
          sequence: { groupOrder: 0 },
        },
      },
      {
        // a measuring phase is tried again for at least SPAN_MS (support/timing-tries.ts), and a test has up to three
        test: { ...shared, testTimeout: 120_000, name: "timing", include: TIMING, maxWorkers: 1, sequence: { groupOrder: 1 } },
      },
    ],
  },
});

import { defineConfig } from "vitest/config";

// One config, no workspace file: vitest 4 silently ignores workspace files.
export default defineConfig({
  test: {
    include: ["test/host/**/*.test.ts", "test/docs/**/*.test.ts", "test/package/**/*.test.ts"],
    passWithNoTests: false,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
  },
});

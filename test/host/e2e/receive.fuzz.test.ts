// Seeded receive-path fuzzing (test/host/support/receive-fuzz.ts): FUZZ_PACKETS datagrams
// (20,000 in npm test; `npm run fuzz` runs 10^6) over FUZZ_SEEDS seeds, or one FUZZ_SEED.
// A failure names its seed and a one-line command that repeats it.
import { describe, expect, it } from "vitest";
import { capturePayloads, runReceiveFuzz } from "../support/receive-fuzz.js";

const PACKETS = Number(process.env.FUZZ_PACKETS ?? 20_000);
const SEEDS = process.env.FUZZ_SEED !== undefined ? [Number(process.env.FUZZ_SEED)] : [0x5eed1, 0x5eed2, 0x5eed3, 0x5eed4];
const per = Math.ceil(PACKETS / SEEDS.length);

describe("receive path fuzzing", () => {
  const corpus = capturePayloads();
  it("has a corpus of real packets", () => {
    expect(corpus.length).toBeGreaterThan(1000);
  });
  it.each(SEEDS)(`seed %i: ${per.toLocaleString("en")} mutated captures, half with a valid ICRC: no trap, no growth, no forbidden byte written or read`, async (seed) => {
    const r = await runReceiveFuzz(seed, per, corpus);
    if (r.failure) {
      throw new Error(`receive fuzz failed, seed ${seed}: ${r.failure}\n` +
        `repeat: FUZZ_SEED=${seed} FUZZ_PACKETS=${r.packets + 1} npx vitest run test/host/e2e/receive.fuzz.test.ts`);
    }
    expect(r.packets).toBe(per);
    expect(r.validIcrc).toBeGreaterThan(per * 0.4);
    // the fuzzer reaches the transport: some datagrams are accepted, many dropped
    expect(r.verdicts.ok ?? 0).toBeGreaterThan(per * 0.01);
    expect(r.verdicts.dropped ?? 0).toBeGreaterThan(per * 0.2);
  }, 600_000);
});

// envInteger (host/node/env.ts): the one reader of numeric settings from the environment — unset or
// empty is "no setting", a decimal integer in range is the value, anything else a RangeError that
// names the variable, the value and the range.
import { afterEach, describe, expect, it } from "vitest";
import { envInteger } from "../../../host/node/env.js";

const NAME = "SOFTROCE_TEST_ENV_INTEGER";
afterEach(() => {
  delete process.env[NAME];
});

describe("envInteger", () => {
  it("unset or empty: undefined", () => {
    delete process.env[NAME];
    expect(envInteger(NAME, 0, 10)).toBeUndefined();
    process.env[NAME] = "";
    expect(envInteger(NAME, 0, 10)).toBeUndefined();
  });

  it("a decimal integer in range, the ends included", () => {
    for (const [v, n] of [["0", 0], ["7", 7], ["10", 10], ["007", 7]] as const) {
      process.env[NAME] = v;
      expect(envInteger(NAME, 0, 10)).toBe(n);
    }
    process.env[NAME] = "5";
    expect(envInteger(NAME, 5, 5)).toBe(5);
  });

  it("anything else: a RangeError naming the variable, the value and the range", () => {
    for (const bad of ["11", "-1", "1.5", "1e1", "0x5", " 5", "5 ", "+5", "five", "NaN", "Infinity", "99999999999999999999"]) {
      process.env[NAME] = bad;
      expect(() => envInteger(NAME, 0, 10, "µs")).toThrow(new RangeError(`${NAME}=${JSON.stringify(bad)}: an integer 0 .. 10 µs`));
    }
    process.env[NAME] = "3";
    expect(() => envInteger(NAME, 4, 8)).toThrow(new RangeError(`${NAME}="3": an integer 4 .. 8`));
  });
});

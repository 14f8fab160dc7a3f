// perftest's latency report (host/cli/perftest-lat.ts) against the rows of rxe's perftest logs.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { perftestLatency, latReport, printfG } from "../../../host/cli/perftest-lat.js";
import { LAT_HEADER, latRow, PERF_RULE } from "../../../host/core/perf/index.js";

const FIXTURES = fileURLToPath(new URL("../../fixtures/captures/perftest/logs", import.meta.url));

/** Post times (ms) whose consecutive gaps are these measurements (µs) × the round-trip factor. */
function postTimes(deltasUs: number[], rttFactor: number): number[] {
  const t = [1000];
  for (const d of deltasUs) t.push(t[t.length - 1]! + (d * rttFactor) / 1000);
  return t;
}

/** The figures to 1e-6 µs (post times in ms carry float error). */
function rounded(f: ReturnType<typeof perftestLatency>): Record<string, number> {
  const { unsorted: _u, sorted: _s, ...figures } = f;
  return Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, Math.round(v * 1e6) / 1e6]));
}

describe("perftest's latency row", () => {
  // -n 5: four measurements, the two largest left out; t_typical is the mean of the two counted, t_max and the
  // percentiles the first left out, t_stdev whole µs. Each row is rebuilt from measurements that give it.
  const rows = readdirSync(FIXTURES).filter((f) => /_lat-.*\.out$/.test(f)).flatMap((f) =>
    readFileSync(join(FIXTURES, f), "utf8").split("\n").filter((l) => /^ 64 /.test(l)).map((line) => ({ f, line })));

  it("has ten Linux rows to compare with", () => {
    expect(rows).toHaveLength(10);
  });

  // Linux's perftest 4.5 in the interop guest, write_lat -s 64 -n 20 --latency_gap 3000 (its server's row):
  // the count is printed without a width, ten spaces after it (the logs above all have -n 5, one digit)
  it("a count of more than one digit: the spacing after it is still perftest's ten", () => {
    const linux = " 64      20          3375.91        5591.22      3742.56  \t       4046.93     \t616.29 \t\t5591.22 \t\t5591.22";
    const f = { t_min: 3375.91, t_max: 5591.22, t_typical: 3742.56, t_avg: 4046.93, t_stdev: 616.29, p99: 5591.22, p99_9: 5591.22 };
    expect(latRow(64, 20, f)).toBe(linux);
    expect(latRow(64, 1000, f)).toBe(linux.replace(" 20          ", " 1000          "));
  });

  for (const { f, line } of rows) {
    it(`${f}: the same row from measurements with its figures, in any order`, () => {
      const [min, max, typical] = line.trim().split(/\s+/).slice(2, 5).map(Number) as [number, number, number];
      const deltas = [max, min, max + 50, 2 * typical - min];
      const rtt = f.startsWith("read_lat") ? 1 : 2;
      const figures = perftestLatency(postTimes(deltas, rtt), rtt);
      expect(latRow(64, 5, figures)).toBe(line);
      expect(figures.unsorted.map((x) => Math.round(x * 100) / 100)).toEqual(deltas.map((x) => Math.round(x * 100) / 100));
      expect(figures.counted).toBe(2);
    });
  }

  it("counts all but the two largest: median of an odd count, mean, whole-µs stdev, percentiles at ceil(n × p)", () => {
    // 12 measurements 1..12 µs: 10 counted (1..10), the median of an even count the mean of the middle two
    const f = perftestLatency(postTimes(Array.from({ length: 12 }, (_, i) => 12 - i), 1), 1);
    expect(rounded(f)).toMatchObject({ counted: 10, t_min: 1, t_max: 11, t_typical: 5.5, t_avg: 5.5, p99: 11, p99_9: 11 });
    // |5.5 - k| truncated: 4,3,2,1,0,0,1,2,3,4 → squares 60 / 10
    expect(f.t_stdev).toBeCloseTo(Math.sqrt(6), 12);
    // the same from 1000 measurements (998 counted): the percentiles index ceil(998 × 0.99) = 989 and ceil(997.002) = 998
    const big = perftestLatency(postTimes(Array.from({ length: 1000 }, (_, i) => i + 1), 1), 1);
    expect(rounded(big)).toMatchObject({ counted: 998, t_min: 1, t_max: 999, t_typical: 499.5, p99: 989 + 1, p99_9: 998 + 1 });
    const odd = perftestLatency(postTimes([3, 1, 2, 50, 60], 2), 2);
    expect(rounded(odd)).toMatchObject({ counted: 3, t_min: 1, t_typical: 2, t_avg: 2, t_max: 50 });
    // fewer than three measurements: what there is counts; none: zeros
    expect(rounded(perftestLatency(postTimes([7], 1), 1))).toMatchObject({ counted: 1, t_min: 7, t_max: 7, t_typical: 7 });
    expect(perftestLatency([5], 1)).toMatchObject({ counted: 0, t_min: 0, t_max: 0, t_avg: 0 });
  });
});

describe("-U and -H", () => {
  const f = perftestLatency(postTimes([4, 2.5, 3, 100, 1.25], 2), 2);

  it("-U lists every measurement in the order taken, -H the counted ones sorted; after either the rule and the header again, then the row", () => {
    const row = `${latRow(2, 6, f)}\n`;
    expect(latReport(2, 6, f)).toBe(row);
    expect(latReport(2, 6, f, { unsorted: true })).toBe(`#, usec\n1, 4\n2, 2.5\n3, 3\n4, 100\n5, 1.25\n${PERF_RULE}\n${LAT_HEADER}\n${row}`);
    expect(latReport(2, 6, f, { histogram: true })).toBe(`#, usec\n1, 1.25\n2, 2.5\n3, 3\n${PERF_RULE}\n${LAT_HEADER}\n${row}`);
    expect(latReport(2, 6, f, { unsorted: true, histogram: true })).toBe(
      `#, usec\n1, 4\n2, 2.5\n3, 3\n4, 100\n5, 1.25\n#, usec\n1, 1.25\n2, 2.5\n3, 3\n${PERF_RULE}\n${LAT_HEADER}\n${row}`,
    );
  });

  it("-C: each measurement whole cycles at the CPU's rate, then the round trip's share; the lists say cycles, the header usec (perftest's fixed text)", () => {
    // a half round trip of 4 µs: 8 µs at 2445.426 MHz is 19563.408 cycles, a cycles_t of 19563, over 2: 9781.5
    const c = perftestLatency(postTimes([4, 2.5, 3, 100, 1.25], 2), 2, 2445.426);
    expect(c.unsorted).toEqual([4, 2.5, 3, 100, 1.25].map((us) => Math.round(us * 2 * 2445.426) / 2));
    expect(c.unsorted[0]).toBe(9781.5);
    expect(c.t_min).toBe(Math.round(2.5 * 2445.426) / 2);
    expect(latReport(2, 6, c, { unsorted: true, cycles: true })).toBe(`#, cycles\n${c.unsorted.map((x, i) => `${i + 1}, ${printfG(x)}\n`).join("")}${PERF_RULE}\n${LAT_HEADER}\n${latRow(2, 6, c)}\n`);
  });

  it("t_stdev as perftest's int temporaries give it: a squared difference past INT_MAX is INT_MIN, the sum negative, the figure -nan (Linux's -C rows)", () => {
    // half round trips of 1000 cycles and of 100000: differences from the average past 46340
    const mhz = 1000;
    const us = [1, 100, 1, 100, 1, 100, 500, 600];
    const c = perftestLatency(postTimes(us, 2), 2, mhz);
    expect(Number.isNaN(c.t_stdev)).toBe(true);
    expect(latRow(64, 9, c)).toContain("\t-nan   \t\t");
    // differences under 46341 square within an int: a figure, as in µs
    expect(perftestLatency(postTimes(us, 2), 2).t_stdev).toBe(49); // counted 1, 1, 1, 100, 100, 100: each difference 49 after the int
  });

  it("prints each figure as C's %g", () => {
    const cases: [number, string][] = [
      [420.71, "420.71"], [3747.6, "3747.6"], [0, "0"], [1, "1"], [12.3456789, "12.3457"], [100000, "100000"], [999999.5, "1e+06"],
      [1234567, "1.23457e+06"], [0.0001, "0.0001"], [0.00001234, "1.234e-05"], [-2.5, "-2.5"], [Infinity, "inf"], [NaN, "nan"],
    ];
    for (const [x, s] of cases) expect(printfG(x), String(x)).toBe(s);
  });
});

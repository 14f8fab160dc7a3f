import { describe, expect, it } from "vitest";
import { type FlagSpec, formatFlags, parseArgs, UsageError } from "../../../host/cli/args.js";
import { HexError, parseHex } from "../../../host/core/wire/hex.js";

const SPECS: FlagSpec[] = [
  { name: "pcap", short: "r", type: "string", help: "file" },
  { name: "json", short: "j", type: "boolean", help: "json" },
  { name: "count", short: "n", type: "int", min: 1, max: 100, default: 10, help: "count" },
  { name: "link", type: "string", choices: ["ip", "eth"], help: "link" },
];

describe("args", () => {
  it("parses long, --flag=value, short and -nVALUE forms, with defaults", () => {
    expect(parseArgs(["--pcap", "a.pcap", "-j"], SPECS).flags).toEqual({ pcap: "a.pcap", json: true, count: 10 });
    expect(parseArgs(["--pcap=b=c.pcap", "-n5", "--link", "eth"], SPECS).flags).toEqual({ pcap: "b=c.pcap", count: 5, link: "eth" });
    expect(parseArgs(["-r", "x", "-n", "100"], SPECS).flags).toEqual({ pcap: "x", count: 100 });
  });

  it("keeps positionals only where allowed, and after --", () => {
    expect(parseArgs(["one", "--json"], SPECS, 1).positionals).toEqual(["one"]);
    expect(parseArgs(["--", "--json"], SPECS, 1)).toEqual({ flags: { count: 10 }, lists: {}, positionals: ["--json"] });
  });

  it("a repeatable flag is taken each time, in order (getopt's way); another given twice is refused", () => {
    const specs = [...SPECS, { name: "test-option", short: "T", type: "string", repeatable: true, help: "" } as const];
    const r = parseArgs(["-T", "a", "-n", "3", "-Tv", "--test-option=e"], specs);
    expect(r.lists).toEqual({ "test-option": ["a", "v", "e"] });
    expect(r.flags["test-option"]).toBe("e");
    expect(() => parseArgs(["-n", "3", "-n", "4", "-T", "a", "-T", "b"], specs)).toThrow("--count given twice");
  });

  const bad: [string[], string][] = [
    [["--nope"], "unknown flag --nope"],
    [["-z"], "unknown flag -z"],
    [["--pcap"], "--pcap needs a value"],
    [["--json=1"], "--json takes no value"],
    [["--count", "x"], "--count wants an integer, got 'x'"],
    [["--count", "0"], "--count must be at least 1, got 0"],
    [["-n", "101"], "-n/--count must be at most 100, got 101"],
    [["--link", "ppp"], "--link must be one of ip, eth, got 'ppp'"],
    [["--json", "-j"], "--json given twice"],
    [["stray"], "unexpected argument 'stray'"],
    [["--pcap="], "--pcap needs a non-empty value"],
  ];
  for (const [argv, msg] of bad) {
    it(`rejects ${argv.join(" ")}`, () => {
      expect(() => parseArgs(argv, SPECS)).toThrow(new UsageError(msg));
    });
  }

  it("formats aligned help", () => {
    expect(formatFlags(SPECS).split("\n")).toEqual([
      "  -r, --pcap <value>  file",
      "  -j, --json          json",
      "  -n, --count <n>     count [default: 10]",
      "      --link <value>  link (ip|eth)",
    ]);
  });
});

describe("hex input", () => {
  it("accepts separators and 0x prefixes", () => {
    expect(Array.from(parseHex("0x45 00:0A\n-ff,0X10"))).toEqual([0x45, 0x00, 0x0a, 0xff, 0x10]);
  });
  it("names what is wrong", () => {
    expect(() => parseHex("4")).toThrow(new HexError("odd number of hex digits (1)"));
    expect(() => parseHex("45g0")).toThrow(new HexError("non-hex character 'g' in hex input (after 2 digits)"));
    expect(() => parseHex(" : ")).toThrow(new HexError("no hex digits in hex input"));
  });
});

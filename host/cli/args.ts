// A small strict argument parser for the softroce subcommands: long (--name, --name=value) and
// short (-n value, -nvalue) flags, typed and validated values, unknown flags are errors.

/** Bad command line: the CLI prints the message on one line and exits 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

export interface FlagSpec {
  name: string;
  short?: string;
  type: "boolean" | "string" | "int";
  help: string;
  /** Shown in help as --name <valueName>. */
  valueName?: string;
  /** Allowed values for a string flag. */
  choices?: readonly string[];
  /** Inclusive bounds for an int flag. */
  min?: number;
  max?: number;
  default?: string | number | boolean;
  /** Other long names taken for this flag (another tool's spelling); help names them after the flag's own. */
  aliases?: readonly string[];
  /** May be given more than once (getopt's way: each taken in turn; ParsedArgs.lists has them all, `flags` the last). */
  repeatable?: boolean;
}

export type FlagValue = string | number | boolean;

export interface ParsedArgs {
  flags: Record<string, FlagValue | undefined>;
  /** every value a repeatable flag was given, in order */
  lists: Record<string, FlagValue[]>;
  positionals: string[];
}

/**
 * `hints`: flags this command does not have but a user may try (another tool's name, an old
 * name), with a note on what to use instead; the usage error then carries the note.
 */
export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[], maxPositionals = 0, hints: Record<string, string> = {}): ParsedArgs {
  const byName = new Map(specs.flatMap((s) => [s.name, ...(s.aliases ?? [])].map((n) => [n, s] as const)));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short!, s]));
  const flags: Record<string, FlagValue | undefined> = {};
  const lists: Record<string, FlagValue[]> = {};
  const seen = new Set<string>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    let spec: FlagSpec | undefined;
    let inline: string | undefined;
    let shown: string;
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    } else if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      if (eq >= 0) inline = arg.slice(eq + 1);
      shown = `--${name}`;
      spec = byName.get(name);
    } else if (arg.startsWith("-") && arg.length > 1) {
      shown = arg.slice(0, 2);
      spec = byShort.get(arg[1]);
      if (arg.length > 2) inline = arg[2] === "=" ? arg.slice(3) : arg.slice(2);
    } else {
      positionals.push(arg);
      continue;
    }
    if (!spec) throw new UsageError(`unknown flag ${shown}${hints[shown] ? ` (${hints[shown]})` : ""}`);
    if (seen.has(spec.name) && !spec.repeatable) throw new UsageError(`--${spec.name} given twice`);
    seen.add(spec.name);
    if (spec.type === "boolean") {
      if (inline !== undefined) throw new UsageError(`${shown} takes no value`);
      flags[spec.name] = true;
      continue;
    }
    let raw = inline;
    if (raw === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`${shown} needs a value${spec.valueName ? ` (${spec.valueName})` : ""}`);
      raw = argv[++i];
    }
    // a value error names the flag as typed too: "-n/--iters wants an integer"
    flags[spec.name] = checkValue(spec, raw, shown.startsWith("--") ? `--${spec.name}` : `${shown}/--${spec.name}`);
    if (spec.repeatable) (lists[spec.name] ??= []).push(flags[spec.name]!);
  }
  if (positionals.length > maxPositionals) {
    throw new UsageError(`unexpected argument '${positionals[maxPositionals]}'`);
  }
  for (const s of specs) if (flags[s.name] === undefined && s.default !== undefined) flags[s.name] = s.default;
  return { flags, lists, positionals };
}

function checkValue(spec: FlagSpec, raw: string, label: string): FlagValue {
  if (spec.type === "int") {
    if (!/^-?\d+$/.test(raw.trim())) throw new UsageError(`${label} wants an integer, got '${raw}'`);
    const n = Number(raw);
    if (!Number.isSafeInteger(n)) throw new UsageError(`${label} ${raw} is out of range`);
    if (spec.min !== undefined && n < spec.min) throw new UsageError(`${label} must be at least ${spec.min}, got ${n}`);
    if (spec.max !== undefined && n > spec.max) throw new UsageError(`${label} must be at most ${spec.max}, got ${n}`);
    return n;
  }
  if (spec.choices && !spec.choices.includes(raw)) {
    throw new UsageError(`${label} must be one of ${spec.choices.join(", ")}, got '${raw}'`);
  }
  if (raw === "") throw new UsageError(`${label} needs a non-empty value`);
  return raw;
}

/** Help lines for a flag table, aligned. */
export function formatFlags(specs: readonly FlagSpec[]): string {
  const left = specs.map((s) => {
    const v = s.type === "boolean" ? "" : ` <${s.valueName ?? (s.type === "int" ? "n" : "value")}>`;
    return `  ${s.short ? `-${s.short}, ` : "    "}--${s.name}${v}`;
  });
  const width = Math.max(...left.map((l) => l.length)) + 2;
  return specs
    .map((s, i) => {
      const extra = s.choices ? ` (${s.choices.join("|")})` : "";
      const def = s.default !== undefined && s.type !== "boolean" ? ` [default: ${s.default}]` : "";
      const also = s.aliases?.length ? ` (also ${s.aliases.map((a) => `--${a}`).join(", ")})` : "";
      return left[i].padEnd(width) + s.help + extra + def + also;
    })
    .join("\n");
}

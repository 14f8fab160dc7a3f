// The playground's settings: one object, kept in the URL so a state can be shared.
// Parsing is strict: a bad value falls back to the default and is reported, never thrown.

export const OPS = [
  "send",
  "send-imm",
  "write",
  "write-imm",
  "read",
  "cmp-swap",
  "fetch-add",
  "flush",
  "atomic-write",
  "uc-send",
  "ud-send",
] as const;
export type Op = (typeof OPS)[number];

export const OP_LABELS: Record<Op, string> = {
  send: "RC SEND",
  "send-imm": "RC SEND with immediate",
  write: "RC RDMA WRITE",
  "write-imm": "RC RDMA WRITE with immediate",
  read: "RC RDMA READ",
  "cmp-swap": "RC CMP_SWAP (atomic)",
  "fetch-add": "RC FETCH_ADD (atomic)",
  flush: "RC FLUSH",
  "atomic-write": "RC ATOMIC_WRITE",
  "uc-send": "UC SEND",
  "ud-send": "UD SEND",
};

export const MTUS = [256, 512, 1024, 2048, 4096] as const;

export interface Settings {
  /** a preset's name, or "" for free play */
  scenario: string;
  op: Op;
  /** message size in bytes (atomics: 8) */
  size: number;
  /** path MTU in bytes */
  mtu: number;
  /** work requests posted at once (queue depth) */
  depth: number;
  /** random faults, fractions 0..1 */
  loss: number;
  dup: number;
  reorder: number;
  corrupt: number;
  /** one-way delay, µs */
  delay: number;
  seed: number;
}

export const DEFAULT_SETTINGS: Settings = {
  scenario: "",
  op: "write",
  size: 4096,
  mtu: 1024,
  depth: 1,
  loss: 0,
  dup: 0,
  reorder: 0,
  corrupt: 0,
  delay: 5,
  seed: 1,
};

/** Limits a setting must stay within (size × depth must fit the memory region). */
export const LIMITS = {
  size: [1, 1 << 20],
  depth: [1, 256],
  delay: [0, 1_000_000],
  seed: [0, 0xffffffff],
  totalBytes: 16 << 20,
} as const;

const FRACTIONS = ["loss", "dup", "reorder", "corrupt"] as const;

/** Settings from URL search parameters; unknown values fall back to defaults, each noted in `problems`. */
export function parseSettings(search: string | URLSearchParams, base: Settings = DEFAULT_SETTINGS): { settings: Settings; problems: string[] } {
  const p = typeof search === "string" ? new URLSearchParams(search) : search;
  const s: Settings = { ...base };
  const problems: string[] = [];
  const int = (k: "size" | "depth" | "delay" | "seed", [lo, hi]: readonly [number, number]) => {
    const v = p.get(k);
    if (v === null) return;
    const n = Number(v);
    if (v.trim() === "" || !Number.isInteger(n) || n < lo || n > hi) problems.push(`${k}=${v}: an integer from ${lo} to ${hi}`);
    else s[k] = n;
  };
  const sc = p.get("scenario");
  if (sc !== null) s.scenario = sc;
  const op = p.get("op");
  if (op !== null) {
    if ((OPS as readonly string[]).includes(op)) s.op = op as Op;
    else problems.push(`op=${op}: one of ${OPS.join(", ")}`);
  }
  int("size", LIMITS.size);
  int("depth", LIMITS.depth);
  int("delay", LIMITS.delay);
  int("seed", LIMITS.seed);
  const mtu = p.get("mtu");
  if (mtu !== null) {
    if ((MTUS as readonly number[]).includes(Number(mtu))) s.mtu = Number(mtu);
    else problems.push(`mtu=${mtu}: one of ${MTUS.join(", ")}`);
  }
  for (const k of FRACTIONS) {
    const v = p.get(k);
    if (v === null) continue;
    const n = Number(v);
    if (v.trim() === "" || !(n >= 0 && n <= 1)) problems.push(`${k}=${v}: a fraction from 0 to 1`);
    else s[k] = n;
  }
  if (s.size * s.depth > LIMITS.totalBytes) {
    problems.push(`size × depth = ${s.size * s.depth} bytes: at most ${LIMITS.totalBytes}`);
    s.depth = Math.max(1, Math.floor(LIMITS.totalBytes / s.size));
  }
  return { settings: s, problems };
}

/** The URL query that reproduces `s` (only what differs from `base`, scenario first). */
export function settingsQuery(s: Settings, base: Settings = DEFAULT_SETTINGS, extra: Record<string, string> = {}): string {
  const p = new URLSearchParams();
  if (s.scenario) p.set("scenario", s.scenario);
  for (const k of Object.keys(DEFAULT_SETTINGS) as (keyof Settings)[]) {
    if (k === "scenario") continue;
    if (s[k] !== base[k]) p.set(k, String(s[k]));
  }
  for (const [k, v] of Object.entries(extra)) p.set(k, v);
  const q = p.toString();
  return q ? `?${q}` : "";
}

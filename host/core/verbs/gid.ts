// GIDs: 16 bytes, written as IPv6 text ("fe80::1", "::ffff:10.0.0.1").

export function parseGid(g: string | Uint8Array): Uint8Array {
  if (g instanceof Uint8Array) {
    if (g.length !== 16) throw new RangeError(`GID must be 16 bytes, got ${g.length}`);
    return g.slice();
  }
  const out = new Uint8Array(16);
  let s = g.trim();
  // trailing dotted IPv4 (::ffff:a.b.c.d) becomes two groups
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  let tail: number[] = [];
  if (v4) {
    const b = v4.slice(1).map(Number);
    if (b.some((x) => x > 255)) throw new RangeError(`bad GID ${g}`);
    tail = [(b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!];
    s = s.slice(0, v4.index);
    if (s.endsWith(":") && !s.endsWith("::")) s = s.slice(0, -1);
    if (s === "") throw new RangeError(`bad GID ${g}`);
  }
  const halves = s.split("::");
  if (halves.length > 2) throw new RangeError(`bad GID ${g}`);
  const parse = (part: string): number[] =>
    part === "" ? [] : part.split(":").map((h) => {
      if (!/^[0-9a-fA-F]{1,4}$/.test(h)) throw new RangeError(`bad GID ${g}`);
      return parseInt(h, 16);
    });
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  const groups = halves.length === 2 ? [...head, ...new Array(8 - head.length - rest.length - tail.length).fill(0), ...rest, ...tail] : [...head, ...tail];
  if (groups.length !== 8 || (halves.length === 2 && head.length + rest.length + tail.length > 7)) {
    throw new RangeError(`bad GID ${g}`);
  }
  groups.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

export function formatGid(b: Uint8Array): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((b[2 * i]! << 8) | b[2 * i + 1]!);
  if (w.slice(0, 5).every((x) => x === 0) && w[5] === 0xffff) {
    return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  }
  // longest run of zeros becomes ::
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = w.map((x) => x.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

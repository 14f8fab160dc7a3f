// IP address text <-> bytes: IPv4 dotted quad, IPv6 in RFC 5952 canonical text.

export function ipv4ToString(b: Uint8Array, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

export function parseIpv4(s: string): Uint8Array | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^\d{1,3}$/.test(p) || (p.length > 1 && p[0] === "0")) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    out[i] = v;
  }
  return out;
}

/** RFC 5952: lowercase, no leading zeros, the longest run (>= 2) of zero groups as "::", first run on ties. */
export function ipv6ToString(b: Uint8Array, off = 0): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[off + 2 * i]! << 8) | b[off + 2 * i + 1]!);
  // IPv4-mapped addresses keep the dotted quad (RFC 5952 section 5).
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${ipv4ToString(b, off + 12)}`;
  }
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = (x: number) => x.toString(16);
  if (bestStart < 0) return g.map(hex).join(":");
  const head = g.slice(0, bestStart).map(hex).join(":");
  const tail = g.slice(bestStart + bestLen).map(hex).join(":");
  return `${head}::${tail}`;
}

export function parseIpv6(s: string): Uint8Array | undefined {
  let text = s;
  const tailV4: number[] = [];
  const lastColon = text.lastIndexOf(":");
  if (text.includes(".")) {
    const v4 = lastColon < 0 ? undefined : parseIpv4(text.slice(lastColon + 1));
    if (!v4) return undefined;
    tailV4.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
    const head = text.slice(0, lastColon + 1);
    text = head.endsWith("::") ? head : head.slice(0, -1);
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const parseGroups = (t: string): number[] | undefined => {
    if (t === "") return [];
    const out: number[] = [];
    for (const p of t.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined;
      out.push(parseInt(p, 16));
    }
    return out;
  };
  const a = parseGroups(halves[0]!);
  const c = halves.length === 2 ? parseGroups(halves[1]!) : [];
  if (!a || !c) return undefined;
  const right = [...c, ...tailV4];
  let groups: number[];
  if (halves.length === 2) {
    const fill = 8 - a.length - right.length;
    if (fill < 1) return undefined;
    groups = [...a, ...new Array<number>(fill).fill(0), ...right];
  } else {
    groups = [...a, ...right];
    if (groups.length !== 8) return undefined;
  }
  const out = new Uint8Array(16);
  groups.forEach((x, i) => { out[2 * i] = x >> 8; out[2 * i + 1] = x & 0xff; });
  return out;
}

/** Parses either family; IPv6 when the text contains a colon. */
export function parseIp(s: string): { version: 4 | 6; bytes: Uint8Array } | undefined {
  if (s.includes(":")) {
    const bytes = parseIpv6(s);
    return bytes && { version: 6, bytes };
  }
  const bytes = parseIpv4(s);
  return bytes && { version: 4, bytes };
}

/** The wildcard address of `address`'s family: "::" for IPv6 text, "0.0.0.0" otherwise (a listener on every address). */
export function wildcardFor(address: string): "::" | "0.0.0.0" {
  return address.includes(":") ? "::" : "0.0.0.0";
}

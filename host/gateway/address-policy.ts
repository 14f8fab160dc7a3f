// Which UDP destinations (and sources) the gateway talks to: an allowlist of
// addresses and CIDR blocks, with the special-purpose ranges (loopback, private,
// link-local, multicast, 0.0.0.0/8, ::, documentation, ...) refused unless an
// allow entry lies inside that range — naming 127.0.0.1 allows it, 0.0.0.0/0 does
// not. Addresses are compared as 16 bytes, IPv4 as ::ffff:a.b.c.d, so an
// IPv4-mapped IPv6 spelling cannot slip past an IPv4 rule.
import { addressGidBytes } from "../core/net/index.js";

export interface Cidr {
  text: string;
  bytes: Uint8Array;
  /** prefix length in the 128-bit (IPv4-mapped) space */
  bits: number;
}

/** 16 bytes, IPv4 as ::ffff:a.b.c.d (undefined: not an address). */
const mapped = addressGidBytes;

/** "a.b.c.d", "a.b.c.d/n", "v6", "v6/n" → a block; throws RangeError on anything else. */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf("/");
  const addr = slash < 0 ? text : text.slice(0, slash);
  const bytes = mapped(addr);
  if (!bytes) throw new RangeError(`not an address or CIDR block: ${JSON.stringify(text)}`);
  const v4 = !addr.includes(":");
  const max = v4 ? 32 : 128;
  let bits = max;
  if (slash >= 0) {
    const n = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(n) || Number(n) > max) throw new RangeError(`bad prefix length in ${JSON.stringify(text)}`);
    bits = Number(n);
  }
  const total = v4 ? bits + 96 : bits;
  // clear host bits so that the block is canonical
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, total - i * 8));
    bytes[i]! &= (0xff00 >> keep) & 0xff;
  }
  return { text, bytes, bits: total };
}

export function cidrContains(c: Cidr, addr: Uint8Array): boolean {
  let bits = c.bits;
  for (let i = 0; i < 16 && bits > 0; i++, bits -= 8) {
    const m = (0xff00 >> Math.min(8, bits)) & 0xff;
    if ((addr[i]! & m) !== c.bytes[i]) return false;
  }
  return true;
}

/** Block `inner` lies entirely inside `outer`. */
function within(inner: Cidr, outer: Cidr): boolean {
  return inner.bits >= outer.bits && cidrContains(outer, inner.bytes);
}

/** Special-purpose ranges (IANA registries, TURN deny lists): refused unless explicitly allowed. */
export const SPECIAL_RANGES: readonly (readonly [string, string])[] = [
  ["0.0.0.0/8", "this-network"], ["10.0.0.0/8", "private"], ["100.64.0.0/10", "shared"], ["127.0.0.0/8", "loopback"],
  ["169.254.0.0/16", "link-local"], ["172.16.0.0/12", "private"], ["192.0.0.0/24", "ietf"], ["192.0.2.0/24", "documentation"],
  ["192.168.0.0/16", "private"], ["198.18.0.0/15", "benchmarking"], ["198.51.100.0/24", "documentation"],
  ["203.0.113.0/24", "documentation"], ["224.0.0.0/4", "multicast"], ["240.0.0.0/4", "reserved"],
  ["::/128", "unspecified"], ["::1/128", "loopback"], ["::/96", "ipv4-compatible"], ["64:ff9b::/96", "nat64"],
  ["100::/64", "discard"], ["2001:db8::/32", "documentation"], ["fc00::/7", "private"], ["fe80::/10", "link-local"],
  ["ff00::/8", "multicast"],
];
const SPECIAL: readonly { block: Cidr; name: string }[] = SPECIAL_RANGES.map(([t, name]) => ({ block: parseCidr(t), name }));

export type Verdict = { ok: true } | { ok: false; why: string };

export class AddressPolicy {
  readonly allow: readonly Cidr[];

  constructor(allow: readonly string[]) {
    this.allow = allow.map(parseCidr);
  }

  /** Whether the gateway may send to (or accept datagrams from) `address`. */
  check(address: string): Verdict {
    const a = mapped(address);
    if (!a) return { ok: false, why: "not an address" };
    return this.checkGid(a);
  }

  /** `check` of an address as its 16 GID bytes (IPv4 as ::ffff:a.b.c.d). */
  checkGid(a: Uint8Array): Verdict {
    const entries = this.allow.filter((c) => cidrContains(c, a));
    if (entries.length === 0) return { ok: false, why: "not on the allowlist" };
    for (const s of SPECIAL) {
      if (!cidrContains(s.block, a)) continue;
      // inside a special range: allowed only by an entry inside that same range
      if (!entries.some((e) => within(e, s.block))) return { ok: false, why: `${s.name} (${s.block.text}) not explicitly allowed` };
    }
    return { ok: true };
  }
}

/**
 * AddressPolicy.check for the gateway's per-datagram path: the verdict for the last address
 * allowed is remembered, so a conversation's datagrams cost a 16-byte compare (nothing allocated).
 */
export class AddressCheckCache {
  private readonly last = new Uint8Array(16);
  private valid = false;
  private readonly scratch = new Uint8Array(16);
  /** Why the last refused address was refused. */
  why = "";
  constructor(private readonly policy: AddressPolicy) {}

  /** Whether the GID at `b[at .. at + 16)` may be talked to. */
  allows(b: Uint8Array, at: number): boolean {
    const last = this.last;
    if (this.valid) {
      let i = 0;
      while (i < 16 && last[i] === b[at + i]) i++;
      if (i === 16) return true;
    }
    const s = this.scratch;
    for (let i = 0; i < 16; i++) s[i] = b[at + i]!;
    const v = this.policy.checkGid(s);
    if (!v.ok) {
      this.why = v.why;
      return false;
    }
    last.set(s);
    this.valid = true;
    return true;
  }
}

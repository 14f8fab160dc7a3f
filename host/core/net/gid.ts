// GIDs: 16 bytes, written as IPv6 text ("fe80::1", "::ffff:10.0.0.1"). An IPv4 address is
// the IPv4-mapped GID ::ffff:a.b.c.d; links name it by its dotted quad. The one home for
// that mapping in both directions.
import { ipv6ToString, parseIp, parseIpv6 } from "./addr.js";

/** GID bytes from IPv6 text or 16 bytes (copied); RangeError on anything else. */
export function parseGid(g: string | Uint8Array): Uint8Array {
  if (g instanceof Uint8Array) {
    if (g.length !== 16) throw new RangeError(`GID must be 16 bytes, got ${g.length}`);
    return g.slice();
  }
  const bytes = parseIpv6(g.trim());
  if (!bytes) throw new RangeError(`bad GID ${g}`);
  return bytes;
}

/** RFC 5952 text of 16 GID bytes (IPv4-mapped keeps its dotted quad). */
export function formatGid(b: Uint8Array, off = 0): string {
  return ipv6ToString(b, off);
}

/** Whether 16 bytes at `off` are an IPv4-mapped GID (::ffff:a.b.c.d). */
export function isV4MappedGid(b: Uint8Array, off = 0): boolean {
  for (let i = 0; i < 10; i++) if (b[off + i] !== 0) return false;
  return b[off + 10] === 0xff && b[off + 11] === 0xff;
}

/** The GID text of a link address: IPv6 text as is, an IPv4 dotted quad as ::ffff:a.b.c.d. */
export function addressGid(address: string): string {
  return address.includes(":") ? address : `::ffff:${address}`;
}

/** The IPv4-mapped GID (::ffff:a.b.c.d) of the 4 IPv4 address bytes at `off`. */
export function v4MappedGid(ipv4: Uint8Array, off = 0): Uint8Array {
  const g = new Uint8Array(16);
  g[10] = 0xff;
  g[11] = 0xff;
  g.set(ipv4.subarray(off, off + 4), 12);
  return g;
}

/** Whether 16 GID bytes name a multicast group: an IPv4-mapped 224.0.0.0/4 address or ff00::/8. */
export function isMulticastGid(b: Uint8Array): boolean {
  return isV4MappedGid(b) ? (b[12]! & 0xf0) === 0xe0 : b[0] === 0xff;
}

/** The 16 GID bytes of an IPv4 or IPv6 address (IPv4-mapped for IPv4); undefined when it is neither. */
export function addressGidBytes(address: string): Uint8Array | undefined {
  const ip = parseIp(address);
  if (!ip) return undefined;
  return ip.version === 6 ? ip.bytes : v4MappedGid(ip.bytes);
}

/** The link address of 16 GID bytes: the dotted quad for an IPv4-mapped GID, IPv6 text otherwise. */
export function gidToAddress(b: Uint8Array, off = 0): string {
  if (isV4MappedGid(b, off)) return `${b[off + 12]}.${b[off + 13]}.${b[off + 14]}.${b[off + 15]}`;
  return ipv6ToString(b, off);
}

/**
 * gidToAddress for a hot path: the same 16 bytes give the same string object, and a run of
 * datagrams with one address (a flow) costs four 32-bit compares and allocates nothing.
 */
export class AddressCache {
  private w0 = 0;
  private w1 = 0;
  private w2 = 0;
  private w3 = 0;
  private last: string | undefined;
  private readonly byKey = new Map<string, string>();

  /** The address of the GID at `p` in `u8` (`dv` a DataView over the same bytes). */
  at(u8: Uint8Array, dv: DataView, p: number): string {
    const w0 = dv.getUint32(p), w1 = dv.getUint32(p + 4), w2 = dv.getUint32(p + 8), w3 = dv.getUint32(p + 12);
    if (this.last !== undefined && w0 === this.w0 && w1 === this.w1 && w2 === this.w2 && w3 === this.w3) return this.last;
    const key = String.fromCharCode(w0 >>> 16, w0 & 0xffff, w1 >>> 16, w1 & 0xffff, w2 >>> 16, w2 & 0xffff, w3 >>> 16, w3 & 0xffff);
    let a = this.byKey.get(key);
    if (a === undefined) {
      a = gidToAddress(u8, p);
      if (this.byKey.size > 4096) this.byKey.clear();
      this.byKey.set(key, a);
    }
    this.w0 = w0;
    this.w1 = w1;
    this.w2 = w2;
    this.w3 = w3;
    this.last = a;
    return a;
  }
}

/**
 * Address text -> its GID bytes (`parseGid(addressGid(address))`), parsed once per address:
 * the receive paths write a datagram's addresses as GIDs, and a flow repeats them. Bounded
 * (cleared past 4096 addresses: a spray of sources costs a parse each, never memory).
 */
export class GidCache {
  private readonly gids = new Map<string, Uint8Array>();

  /** The GID of `address` (IPv4, IPv6 or GID text); the bytes are shared: do not change them. */
  of(address: string): Uint8Array {
    let g = this.gids.get(address);
    if (!g) {
      g = parseGid(addressGid(address));
      if (this.gids.size > 4096) this.gids.clear();
      this.gids.set(address, g);
    }
    return g;
  }
}

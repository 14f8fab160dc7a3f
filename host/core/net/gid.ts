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

/** The 16 GID bytes of an IPv4 or IPv6 address (IPv4-mapped for IPv4); undefined when it is neither. */
export function addressGidBytes(address: string): Uint8Array | undefined {
  const ip = parseIp(address);
  if (!ip) return undefined;
  if (ip.version === 6) return ip.bytes;
  const g = new Uint8Array(16);
  g[10] = 0xff;
  g[11] = 0xff;
  g.set(ip.bytes, 12);
  return g;
}

/** The link address of 16 GID bytes: the dotted quad for an IPv4-mapped GID, IPv6 text otherwise. */
export function gidToAddress(b: Uint8Array, off = 0): string {
  if (isV4MappedGid(b, off)) return `${b[off + 12]}.${b[off + 13]}.${b[off + 14]}.${b[off + 15]}`;
  return ipv6ToString(b, off);
}

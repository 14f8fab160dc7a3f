// An ICRC written from the spec for the tests, independent of assembly/crc:
// zlib's CRC-32 over 8 x 0xFF, the IP header with its variant fields set to
// ones (IPv4 TOS, TTL, checksum; IPv6 traffic class, flow label, hop limit),
// the UDP header with its checksum set to ones, the BTH with byte 4 set to ones,
// then the rest of the packet up to its last 4 bytes. Returns the 4 wire bytes.
import { crc32 } from "node:zlib";

export function referenceIcrc(packet) {
  const p = Uint8Array.from(packet);
  const version = p[0] >> 4;
  let ipLen;
  if (version === 4) {
    ipLen = (p[0] & 0x0f) * 4;
    p[1] = 0xff; // TOS
    p[8] = 0xff; // TTL
    p[10] = 0xff; // header checksum
    p[11] = 0xff;
  } else if (version === 6) {
    ipLen = 40;
    p[0] |= 0x0f; // traffic class, high nibble
    p[1] = 0xff; // traffic class low nibble + flow label
    p[2] = 0xff;
    p[3] = 0xff;
    p[7] = 0xff; // hop limit
  } else {
    throw new Error(`referenceIcrc: IP version ${version}`);
  }
  if (p.length < ipLen + 8 + 12 + 4) throw new Error(`referenceIcrc: ${p.length} bytes is too short`);
  p[ipLen + 6] = 0xff; // UDP checksum
  p[ipLen + 7] = 0xff;
  p[ipLen + 8 + 4] = 0xff; // BTH byte 4: FECN, BECN, reserved
  const body = p.subarray(0, p.length - 4);
  const crc = crc32(body, crc32(new Uint8Array(8).fill(0xff))) >>> 0;
  return Uint8Array.of(crc & 0xff, (crc >>> 8) & 0xff, (crc >>> 16) & 0xff, crc >>> 24);
}

export const hex = (bytes) => Buffer.from(bytes).toString("hex");
export const unhex = (s) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ""), "hex"));

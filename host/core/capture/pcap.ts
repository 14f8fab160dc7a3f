// Capture files: a classic pcap writer and a pcap/pcapng reader. Pure bytes in, bytes out
// (no I/O, no node:*), so the Node host can stream to a file and the browser can build a Blob.
import { extractIp } from "../net/ip-extract.js";
import { concat } from "../net/bytes.js";

export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;
export const LINKTYPE_IPV4 = 228;
export const LINKTYPE_IPV6 = 229;

/** Largest record we accept unless the file's snaplen says more (Wireshark's standard maximum). */
export const MAX_RECORD = 262144;

/** A capture that cannot be read (or a packet that cannot be written); the message is one line. */
export class PcapError extends Error {
  override name = "PcapError";
}

// ---------------------------------------------------------------------------------------------
// Writer

export interface PcapWriterOptions {
  /** 228 (IPv4), 229 (IPv6), 101 (raw IP, either version; the default) or 1 (Ethernet). */
  linktype?: number;
  /** Nanosecond timestamps (magic a1b23c4d) instead of microseconds. */
  nanos?: boolean;
  /** The snaplen written into the header; records are never cut. Default 262144. */
  snaplen?: number;
}

const WRITABLE = new Set([LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6]);

/**
 * Classic little-endian pcap v2.4. `header()` once, then `record()` per IP packet; each returns
 * the bytes to append. For linktype 1 each packet gets an Ethernet header with locally
 * administered MACs derived from the IP addresses.
 */
export class PcapWriter {
  readonly linktype: number;
  readonly nanos: boolean;
  readonly snaplen: number;

  constructor(opts: PcapWriterOptions = {}) {
    this.linktype = opts.linktype ?? LINKTYPE_RAW;
    this.nanos = opts.nanos ?? false;
    this.snaplen = opts.snaplen ?? MAX_RECORD;
    if (!WRITABLE.has(this.linktype)) throw new PcapError(`cannot write linktype ${this.linktype} (use 1, 101, 228 or 229)`);
  }

  header(): Uint8Array {
    const out = new Uint8Array(24);
    const v = new DataView(out.buffer);
    v.setUint32(0, this.nanos ? 0xa1b23c4d : 0xa1b2c3d4, true);
    v.setUint16(4, 2, true);
    v.setUint16(6, 4, true);
    // thiszone and sigfigs stay 0
    v.setUint32(16, this.snaplen, true);
    v.setUint32(20, this.linktype, true);
    return out;
  }

  /** One record from an IP packet and a time in microseconds. */
  record(packet: Uint8Array, tsMicros: number | bigint): Uint8Array {
    return this.recordNanos(packet, BigInt(tsMicros) * 1000n);
  }

  /** One record with a nanosecond time (truncated to µs in a µs file). */
  recordNanos(packet: Uint8Array, tsNanos: bigint): Uint8Array {
    const frame = this.frame(packet);
    if (tsNanos < 0n) throw new PcapError("negative timestamp");
    const sec = tsNanos / 1_000_000_000n;
    if (sec > 0xffffffffn) throw new PcapError("timestamp beyond 2106");
    const frac = tsNanos % 1_000_000_000n;
    const out = new Uint8Array(16 + frame.length);
    const v = new DataView(out.buffer);
    v.setUint32(0, Number(sec), true);
    v.setUint32(4, Number(this.nanos ? frac : frac / 1000n), true);
    v.setUint32(8, frame.length, true);
    v.setUint32(12, frame.length, true);
    out.set(frame, 16);
    return out;
  }

  private frame(packet: Uint8Array): Uint8Array {
    const version = packet.length > 0 ? packet[0] >> 4 : 0;
    if (version !== 4 && version !== 6) throw new PcapError(`not an IP packet (version ${version})`);
    if (this.linktype === LINKTYPE_IPV4 && version !== 4) throw new PcapError("IPv6 packet in an IPv4 (228) capture");
    if (this.linktype === LINKTYPE_IPV6 && version !== 6) throw new PcapError("IPv4 packet in an IPv6 (229) capture");
    if (this.linktype !== LINKTYPE_ETHERNET) return packet;
    const frame = new Uint8Array(14 + packet.length);
    // Source and destination addresses sit at 12/16 (IPv4) or 8/24 (IPv6); their last 4 bytes
    // make the MAC 02:00:a:b:c:d, so a capture reads consistently per host.
    const [src, dst] = version === 4 ? [12, 16] : [20, 36];
    frame[0] = 0x02;
    if (packet.length >= dst + 4) frame.set(packet.subarray(dst, dst + 4), 2);
    frame[6] = 0x02;
    if (packet.length >= src + 4) frame.set(packet.subarray(src, src + 4), 8);
    frame[12] = version === 4 ? 0x08 : 0x86;
    frame[13] = version === 4 ? 0x00 : 0xdd;
    frame.set(packet, 14);
    return frame;
  }
}

/**
 * Collects a capture in memory as chunks: `new Blob(c.chunks)` in a browser, or `bytes()`.
 * The header is the first chunk.
 */
export class PcapCollector {
  readonly writer: PcapWriter;
  readonly chunks: Uint8Array[];
  private count = 0;

  constructor(opts: PcapWriterOptions = {}) {
    this.writer = new PcapWriter(opts);
    this.chunks = [this.writer.header()];
  }

  add(packet: Uint8Array, tsMicros: number | bigint): void {
    this.chunks.push(this.writer.record(packet, tsMicros));
    this.count++;
  }

  get packets(): number {
    return this.count;
  }

  bytes(): Uint8Array {
    return concat(this.chunks);
  }
}

/** The linktype a set of packets fits best: 228 if all IPv4, 229 if all IPv6, else 101. */
export function linktypeFor(packets: Iterable<Uint8Array>): number {
  let v4 = false;
  let v6 = false;
  for (const p of packets) {
    if (p[0] >> 4 === 4) v4 = true;
    else v6 = true;
  }
  if (v4 && !v6) return LINKTYPE_IPV4;
  if (v6 && !v4) return LINKTYPE_IPV6;
  return LINKTYPE_RAW;
}

export interface PacketAt {
  data: Uint8Array;
  tsMicros: number | bigint;
}

/** A whole capture in one buffer; the linktype defaults to what `linktypeFor` picks. */
export function writePcap(packets: readonly PacketAt[], opts: PcapWriterOptions = {}): Uint8Array {
  const w = new PcapWriter({ ...opts, linktype: opts.linktype ?? linktypeFor(packets.map((p) => p.data)) });
  return concat([w.header(), ...packets.map((p) => w.record(p.data, p.tsMicros))]);
}

// ---------------------------------------------------------------------------------------------
// Reader

export interface CaptureRecord {
  /** 1-based frame number, as Wireshark counts them. */
  index: number;
  /** Time in microseconds since the epoch (truncated from finer resolutions). */
  tsMicros: number;
  /** Time in nanoseconds since the epoch (exact for µs and ns files). */
  tsNanos: bigint;
  linktype: number;
  /** Length on the wire (may exceed the captured bytes). */
  origLen: number;
  /** The captured bytes as stored, link header included. */
  frame: Uint8Array;
  /** The IP packet (link header removed, Ethernet padding trimmed), or */
  data?: Uint8Array;
  /** why this record holds no IP packet. */
  reason?: string;
}

export type CaptureFormat = "pcap" | "pcap-ns" | "pcapng";

export function captureFormat(bytes: Uint8Array): CaptureFormat | undefined {
  if (bytes.length < 4) return undefined;
  const le = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
  if (le === 0xa1b2c3d4 || le === 0xd4c3b2a1) return "pcap";
  if (le === 0xa1b23c4d || le === 0x4d3cb2a1) return "pcap-ns";
  if (le === 0x0a0d0d0a) return "pcapng";
  return undefined;
}

/**
 * The records of a pcap or pcapng file, in order. Throws PcapError (one line, naming the record
 * or block) where the file stops making sense; records before that point have been yielded.
 */
export function* readCapture(bytes: Uint8Array): Generator<CaptureRecord> {
  const fmt = captureFormat(bytes);
  if (fmt === undefined) {
    if (bytes.length < 4) throw new PcapError(`not a capture: ${bytes.length} bytes, too short for a file header`);
    throw new PcapError(`not a pcap or pcapng file: bad magic ${hex(bytes.subarray(0, 4))}`);
  }
  if (fmt === "pcapng") yield* readPcapng(bytes);
  else yield* readPcap(bytes);
}

/** All records of a capture (throws PcapError like readCapture). */
export function readCaptureAll(bytes: Uint8Array): CaptureRecord[] {
  return [...readCapture(bytes)];
}

function* readPcap(bytes: Uint8Array): Generator<CaptureRecord> {
  if (bytes.length < 24) throw new PcapError(`truncated pcap file header: ${bytes.length} of 24 bytes`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = v.getUint32(0, true);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const nanos = magic === 0xa1b23c4d || magic === 0x4d3cb2a1;
  const major = v.getUint16(4, le);
  if (major !== 2) throw new PcapError(`unsupported pcap version ${major}.${v.getUint16(6, le)}`);
  const snaplen = v.getUint32(16, le);
  const linktype = v.getUint32(20, le) & 0xffff;
  const limit = Math.max(snaplen, MAX_RECORD);
  let off = 24;
  for (let index = 1; off < bytes.length; index++) {
    if (bytes.length - off < 16) {
      throw new PcapError(`record ${index}: truncated record header at byte ${off} (${bytes.length - off} of 16 bytes)`);
    }
    const sec = v.getUint32(off, le);
    const frac = v.getUint32(off + 4, le);
    const caplen = v.getUint32(off + 8, le);
    const origLen = v.getUint32(off + 12, le);
    if (caplen > limit) {
      throw new PcapError(`record ${index}: captured length ${caplen} is absurd (snaplen ${snaplen}, maximum ${limit})`);
    }
    // A fraction of a second at or past 1 s is out of spec but harmless: it simply carries.
    const start = off + 16;
    if (bytes.length - start < caplen) {
      throw new PcapError(`record ${index}: truncated data at byte ${start} (${bytes.length - start} of ${caplen} bytes)`);
    }
    const tsNanos = BigInt(sec) * 1_000_000_000n + BigInt(nanos ? frac : frac * 1000);
    yield makeRecord(index, tsNanos, linktype, origLen, bytes.subarray(start, start + caplen));
    off = start + caplen;
  }
}

function makeRecord(index: number, tsNanos: bigint, linktype: number, origLen: number, frame: Uint8Array): CaptureRecord {
  const rec: CaptureRecord = { index, tsMicros: Number(tsNanos / 1000n), tsNanos, linktype, origLen, frame };
  const ip = extractIp(frame, linktype);
  if ("ip" in ip) rec.data = ip.ip;
  else rec.reason = ip.reason;
  return rec;
}

// pcapng block types
const SHB = 0x0a0d0d0a;
const IDB = 0x00000001;
const OPB = 0x00000002; // obsolete packet block
const SPB = 0x00000003;
const EPB = 0x00000006;

interface Iface {
  linktype: number;
  snaplen: number;
  /** Timestamp units per second, and a shift for the binary resolutions (units = 2^shift). */
  perSec: bigint;
  binShift: number;
  offsetSec: bigint;
}

function* readPcapng(bytes: Uint8Array): Generator<CaptureRecord> {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let le = true;
  let ifaces: Iface[] = [];
  let index = 1;
  let off = 0;
  for (let block = 1; off < bytes.length; block++) {
    const left = bytes.length - off;
    const where = `block ${block} at byte ${off}`;
    if (left < 12) throw new PcapError(`${where}: truncated block header (${left} of 12 bytes)`);
    let type = v.getUint32(off, le);
    if (v.getUint32(off, true) === SHB) {
      if (left < 28) throw new PcapError(`${where}: truncated section header (${left} of 28 bytes)`);
      const bom = v.getUint32(off + 8, true);
      if (bom === 0x1a2b3c4d) le = true;
      else if (bom === 0x4d3c2b1a) le = false;
      else throw new PcapError(`${where}: bad byte-order magic ${hex(bytes.subarray(off + 8, off + 12))}`);
      type = SHB;
      const major = v.getUint16(off + 12, le);
      if (major !== 1) throw new PcapError(`${where}: unsupported pcapng version ${major}.${v.getUint16(off + 14, le)}`);
      ifaces = [];
    } else if (block === 1) {
      throw new PcapError(`${where}: pcapng file does not start with a section header`);
    }
    const total = v.getUint32(off + 4, le);
    if (total < 12 || total % 4 !== 0) throw new PcapError(`${where}: bad block length ${total}`);
    if (total > left) throw new PcapError(`${where}: truncated block (${left} of ${total} bytes)`);
    if (v.getUint32(off + total - 4, le) !== total) {
      throw new PcapError(`${where}: trailing block length ${v.getUint32(off + total - 4, le)} does not match ${total}`);
    }
    const body = off + 8;
    const bodyLen = total - 12;
    const need = (n: number, what: string) => {
      if (bodyLen < n) throw new PcapError(`${where}: ${what} too short (${bodyLen} of ${n} bytes)`);
    };
    if (type === IDB) {
      need(8, "interface description");
      const iface: Iface = { linktype: v.getUint16(body, le), snaplen: v.getUint32(body + 4, le), perSec: 1_000_000n, binShift: -1, offsetSec: 0n };
      forOptions(v, body + 8, body + bodyLen, le, (code, at, len) => {
        if (code === 9 && len >= 1) {
          const r = bytes[at];
          if (r & 0x80) {
            const shift = r & 0x7f;
            if (shift > 63) throw new PcapError(`${where}: if_tsresol 2^-${shift} out of range`);
            iface.binShift = shift;
          } else {
            if (r > 18) throw new PcapError(`${where}: if_tsresol 10^-${r} out of range`);
            iface.perSec = 10n ** BigInt(r);
          }
        } else if (code === 14 && len >= 8) {
          iface.offsetSec = v.getBigInt64(at, le);
        }
      });
      ifaces.push(iface);
    } else if (type === EPB || type === OPB) {
      need(20, type === EPB ? "enhanced packet block" : "packet block");
      const ifId = type === EPB ? v.getUint32(body, le) : v.getUint16(body, le);
      const iface = ifaces[ifId];
      if (!iface) throw new PcapError(`${where}: packet ${index} names interface ${ifId}, which was not described`);
      const ts = (BigInt(v.getUint32(body + 4, le)) << 32n) | BigInt(v.getUint32(body + 8, le));
      const caplen = v.getUint32(body + 12, le);
      const origLen = v.getUint32(body + 16, le);
      if (caplen > bodyLen - 20) {
        throw new PcapError(`${where}: packet ${index} captured length ${caplen} exceeds its block (${bodyLen - 20} bytes)`);
      }
      const limit = Math.max(iface.snaplen, MAX_RECORD);
      if (caplen > limit) throw new PcapError(`${where}: packet ${index} captured length ${caplen} is absurd (maximum ${limit})`);
      const tsNanos = toNanos(ts, iface);
      yield makeRecord(index++, tsNanos, iface.linktype, origLen, bytes.subarray(body + 20, body + 20 + caplen));
    } else if (type === SPB) {
      need(4, "simple packet block");
      const iface = ifaces[0];
      if (!iface) throw new PcapError(`${where}: simple packet block ${index} before any interface description`);
      const origLen = v.getUint32(body, le);
      let caplen = Math.min(origLen, bodyLen - 4);
      if (iface.snaplen > 0) caplen = Math.min(caplen, iface.snaplen);
      yield makeRecord(index++, 0n, iface.linktype, origLen, bytes.subarray(body + 4, body + 4 + caplen));
    }
    // any other block (name resolution, statistics, custom, ...) is skipped
    off += total;
  }
}

function toNanos(ts: bigint, iface: Iface): bigint {
  const base = iface.offsetSec * 1_000_000_000n;
  if (iface.binShift >= 0) return base + ((ts * 1_000_000_000n) >> BigInt(iface.binShift));
  return base + (ts * 1_000_000_000n) / iface.perSec;
}

function forOptions(v: DataView, at: number, end: number, le: boolean, fn: (code: number, at: number, len: number) => void): void {
  while (at + 4 <= end) {
    const code = v.getUint16(at, le);
    const len = v.getUint16(at + 2, le);
    if (code === 0) return; // opt_endofopt
    if (at + 4 + len > end) return; // an option overrunning its block is ignored, not trusted
    fn(code, at + 4, len);
    at += 4 + ((len + 3) & ~3);
  }
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");
}

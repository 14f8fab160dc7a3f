// The simulated wire's trace as a capture: every datagram the wire carried, at
// the virtual time it was sent, inside the IP/UDP headers its ICRC assumed, with
// its fate (delivered, lost, duplicate, corrupted, reordered, unroutable) as a
// packet comment. pcapng, because classic pcap has no per-packet comments;
// Wireshark and tshark show them as frame.comment.
import { ipPacket } from "../capture/recorder.js";
import type { WireCodec } from "../wire/codec.js";
import type { TraceRecord } from "./wire.js";
import { LINKTYPE_RAW } from "../capture/pcap.js";
import { concat } from "../net/bytes.js";
const enc = new TextEncoder();

function pad4(n: number): number {
  return (n + 3) & ~3;
}

function block(type: number, body: Uint8Array): Uint8Array {
  const len = 12 + body.length;
  const out = new Uint8Array(len);
  const v = new DataView(out.buffer);
  v.setUint32(0, type, true);
  v.setUint32(4, len, true);
  out.set(body, 8);
  v.setUint32(len - 4, len, true);
  return out;
}

function option(code: number, value: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + pad4(value.length));
  const v = new DataView(out.buffer);
  v.setUint16(0, code, true);
  v.setUint16(2, value.length, true);
  out.set(value, 4);
  return out;
}

const OPT_END = new Uint8Array(4);

export interface SimTraceOptions {
  /** µs since the epoch that virtual time 0 maps to (default 0: the capture starts at 1970) */
  epochMicros?: number;
  /** whose header emitter builds the IP/UDP headers (default: a codec over the first core loaded) */
  codec?: WireCodec;
}

/** The trace as a pcapng file (linktype RAW: IPv4 and IPv6 mixed), one packet per datagram, fate as its comment. */
export function simTracePcapng(trace: readonly TraceRecord[], opts: SimTraceOptions = {}): Uint8Array {
  const shb = new Uint8Array(16);
  const sv = new DataView(shb.buffer);
  sv.setUint32(0, 0x1a2b3c4d, true); // byte-order magic
  sv.setUint16(4, 1, true); // major
  sv.setUint16(6, 0, true); // minor
  sv.setBigInt64(8, -1n, true); // section length unknown
  const idb = new Uint8Array(8);
  const iv = new DataView(idb.buffer);
  iv.setUint16(0, LINKTYPE_RAW, true);
  iv.setUint32(4, 0, true); // snaplen: no limit
  const parts = [block(0x0a0d0d0a, shb), block(0x00000001, idb)]; // if_tsresol default: µs
  const base = opts.epochMicros ?? 0;
  for (const r of trace) {
    const d = r.datagram;
    const pkt = ipPacket(d, opts.codec);
    const ts = BigInt(Math.round(base + r.sentAt));
    const head = new Uint8Array(20);
    const hv = new DataView(head.buffer);
    hv.setUint32(0, 0, true); // interface 0
    hv.setUint32(4, Number(ts >> 32n), true);
    hv.setUint32(8, Number(ts & 0xffffffffn), true);
    hv.setUint32(12, pkt.length, true);
    hv.setUint32(16, pkt.length, true);
    const data = new Uint8Array(pad4(pkt.length));
    data.set(pkt);
    const at = r.deliveredAt !== undefined ? ` delivered_at=${r.deliveredAt}us` : "";
    const corrupted = r.corrupted && r.fate !== "corrupted" ? " corrupted" : "";
    const why = r.reason ? ` reason=${r.reason}${r.label ? ` (${r.label})` : ""}` : "";
    const comment = option(1, enc.encode(`fate=${r.fate}${corrupted}${why}${at}`));
    parts.push(block(0x00000006, concat([head, data, comment, OPT_END])));
  }
  return concat(parts);
}

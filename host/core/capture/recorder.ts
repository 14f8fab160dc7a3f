// Captures what a PacketPort sends and receives as a pcap whose IP and UDP headers are exactly the
// ones each ICRC was computed over, so every ICRC recomputes from the file. A link hands the port
// UDP payloads only (a socket never shows the IP header), so the headers are synthesized here from
// the facts the device used: addresses, ports, the IPv4 ID (0 on our sends, the one the device
// resolved on receive), DF, and lengths. TTL/hop limit, TOS/traffic class and the UDP checksum are
// masked by the ICRC; we write what the Node host's kernel puts on the wire (TTL 64, TOS 0, a
// computed checksum).
import { parseIp } from "../net/addr.js";
import { writePcap } from "./pcap.js";
import { IP_ID_UNKNOWN, type CapturedDatagram, type PacketPort } from "../link/port.js";
import type { WireCodec } from "../wire/codec.js";

export interface CapturedPacket {
  dir: "tx" | "rx";
  /** µs since the epoch */
  tsMicros: number;
  /** the synthesized IP packet (IP + UDP + payload) */
  packet: Uint8Array;
  /** receive only: the device's verdict (0 accepted) */
  rxResult?: number;
}

export interface PcapRecorderOptions {
  /** µs since the epoch for each record (default: Date.now() with performance.now() resolution) */
  now?: () => number;
  /** which directions to keep (default both) */
  directions?: ReadonlyArray<"tx" | "rx">;
}

const IPV4_HDR = 20;
const IPV6_HDR = 40;
const UDP_HDR = 8;
const TTL = 64;

/**
 * Records a port's datagrams (`recorder.attach(port)`). `packets` holds them in order;
 * `pcap()` is the file (linktype 228 or 229 when every packet is one IP version, else 101).
 * Attach one recorder to one side of a conversation to see each packet once.
 */
export class PcapRecorder {
  readonly packets: CapturedPacket[] = [];
  private readonly now: () => number;
  private readonly dirs: ReadonlySet<"tx" | "rx">;

  constructor(opts: PcapRecorderOptions = {}) {
    this.now = opts.now ?? epochMicros;
    this.dirs = new Set(opts.directions ?? ["tx", "rx"]);
  }

  /** Taps the port (replacing any earlier tap); returns a function that removes it. */
  attach(port: PacketPort): () => void {
    const hook = (dir: "tx" | "rx", d: CapturedDatagram) => this.add(dir, d);
    port.capture = hook;
    return () => {
      if (port.capture === hook) port.capture = undefined;
    };
  }

  /** Records one datagram (what the port's hook calls). */
  add(dir: "tx" | "rx", d: CapturedDatagram): void {
    if (!this.dirs.has(dir)) return;
    const rec: CapturedPacket = { dir, tsMicros: this.now(), packet: ipPacket(d) };
    if (d.rxResult !== undefined) rec.rxResult = d.rxResult;
    this.packets.push(rec);
  }

  /** The capture as a classic pcap file. */
  pcap(): Uint8Array {
    return writePcap(this.packets.map((p) => ({ data: p.packet, tsMicros: Math.round(p.tsMicros) })));
  }
}

let epochBase: number | undefined;
function epochMicros(): number {
  epochBase ??= Date.now() * 1000 - performance.now() * 1000;
  return epochBase + performance.now() * 1000;
}

/** IPv4 (IHL 5, DF, TTL 64) or IPv6 + UDP + payload, from the facts the ICRC assumed. */
export function ipPacket(d: CapturedDatagram): Uint8Array {
  const src = parseIp(d.src);
  const dst = parseIp(d.dst);
  if (!src || !dst || src.version !== dst.version) throw new TypeError(`capture: bad address pair ${d.src} -> ${d.dst}`);
  const udpLen = UDP_HDR + d.payload.length;
  const v4 = src.version === 4;
  const ipLen = v4 ? IPV4_HDR : IPV6_HDR;
  const out = new Uint8Array(ipLen + udpLen);
  const v = new DataView(out.buffer);
  if (v4) {
    out[0] = 0x45;
    out[1] = 0; // TOS
    v.setUint16(2, ipLen + udpLen);
    v.setUint16(4, d.ipId === IP_ID_UNKNOWN ? 0 : d.ipId & 0xffff);
    v.setUint16(6, 0x4000); // DF, offset 0
    out[8] = TTL;
    out[9] = 17;
    out.set(src.bytes, 12);
    out.set(dst.bytes, 16);
    v.setUint16(10, ~sum16(out, 0, IPV4_HDR, 0) & 0xffff);
  } else {
    v.setUint32(0, 0x60000000); // version 6, traffic class 0, flow label 0
    v.setUint16(4, udpLen);
    out[6] = 17;
    out[7] = TTL;
    out.set(src.bytes, 8);
    out.set(dst.bytes, 24);
  }
  v.setUint16(ipLen, d.srcPort);
  v.setUint16(ipLen + 2, d.dstPort);
  v.setUint16(ipLen + 4, udpLen);
  out.set(d.payload, ipLen + UDP_HDR);
  // UDP checksum over the pseudo header (addresses, protocol, length) and the datagram.
  let acc = sum16(src.bytes, 0, src.bytes.length, 0);
  acc = sum16(dst.bytes, 0, dst.bytes.length, acc);
  acc += 17 + udpLen;
  acc = sum16(out, ipLen, out.length, acc);
  const ck = ~fold(acc) & 0xffff;
  v.setUint16(ipLen + 6, ck === 0 ? 0xffff : ck);
  return out;
}

function sum16(b: Uint8Array, from: number, to: number, acc: number): number {
  let i = from;
  for (; i + 1 < to; i += 2) acc += (b[i] << 8) | b[i + 1];
  if (i < to) acc += b[i] << 8;
  return fold(acc);
}

function fold(acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 0x10000);
  return acc;
}

/** Whether an IP packet's trailing ICRC is the one its headers and payload give (any UDP port). */
export function icrcMatches(codec: WireCodec, packet: Uint8Array): boolean {
  if (packet.length < 4) return false;
  const v = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  return codec.icrc(packet) === v.getUint32(packet.length - 4, false);
}

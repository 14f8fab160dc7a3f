// Captures what a PacketPort sends and receives as a pcap whose IP and UDP headers are exactly the
// ones each ICRC was computed over, so every ICRC recomputes from the file. A link hands the port
// UDP payloads only (a socket never shows the IP header), so the headers come from the facts the
// device used (addresses, ports, the IPv4 ID — 0 on our sends, the one the device resolved on
// receive —, TTL / hop limit, traffic class, flow label), written by the core's own header emitter
// (WireCodec.ipPacket): one home for the IP/UDP header bytes. The UDP checksum, masked by the ICRC,
// is computed as the Node host's kernel does.
import { writePcap } from "./pcap.js";
import type { CapturedDatagram, PacketPort } from "../link/port.js";
import { sharedCodec, type WireCodec } from "../wire/codec.js";
import type { Datagram } from "../net/datagram.js";

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
  /** whose header emitter builds the IP/UDP headers (default: a codec over the first core loaded) */
  codec?: WireCodec;
  /**
   * Keep packets only while they hold fewer than this many bytes (default: no bound); the ones after
   * are counted in `dropped`, not kept, so a long run cannot take the process's memory.
   */
  maxBytes?: number;
}

/**
 * Records a port's datagrams (`recorder.attach(port)`). `packets` holds them in order;
 * `pcap()` is the file (linktype 228 or 229 when every packet is one IP version, else 101).
 * Attach one recorder to one side of a conversation to see each packet once.
 */
export class PcapRecorder {
  readonly packets: CapturedPacket[] = [];
  /** bytes of the packets kept */
  bytes = 0;
  /** packets not kept: `maxBytes` was reached */
  dropped = 0;
  private readonly maxBytes: number;
  private readonly now: () => number;
  private readonly ownClock: boolean;
  private readonly dirs: ReadonlySet<"tx" | "rx">;
  private readonly codec: WireCodec | undefined;

  constructor(opts: PcapRecorderOptions = {}) {
    this.now = opts.now ?? epochMicros;
    this.ownClock = opts.now !== undefined;
    this.codec = opts.codec;
    this.dirs = new Set(opts.directions ?? ["tx", "rx"]);
    this.maxBytes = opts.maxBytes ?? Infinity;
  }

  /** Taps the port (replacing any earlier tap); returns a function that removes it. */
  attach(port: PacketPort): () => void {
    const hook = (dir: "tx" | "rx", d: CapturedDatagram) => this.add(dir, d);
    port.capture = hook;
    return () => {
      if (port.capture === hook) port.capture = undefined;
    };
  }

  /**
   * Records one datagram (what the port's hook calls). A datagram that carries its time of capture
   * (`tsMicros`: a worker device's records, captured in its worker and delivered later) is stamped
   * with it, unless the recorder was given its own clock (`now`).
   */
  add(dir: "tx" | "rx", d: CapturedDatagram & { tsMicros?: number }): void {
    if (!this.dirs.has(dir)) return;
    if (this.bytes >= this.maxBytes) {
      this.dropped++;
      return;
    }
    const ts = this.ownClock || typeof d.tsMicros !== "number" ? this.now() : d.tsMicros;
    const rec: CapturedPacket = { dir, tsMicros: ts, packet: ipPacket(d, this.codec) };
    this.bytes += rec.packet.length;
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

/**
 * The IP packet (IPv4 or IPv6 + UDP + payload) a datagram travels in, its headers written by the
 * core from the facts its ICRC assumed (`WireCodec.ipPacket`; `codec` defaults to one over the first
 * core loaded).
 */
export function ipPacket(d: Datagram, codec: WireCodec = sharedCodec()): Uint8Array {
  try {
    return codec.ipPacket(d);
  } catch (e) {
    throw new TypeError(`capture: ${d.src}:${d.srcPort} -> ${d.dst}:${d.dstPort}: ${(e as Error).message}`);
  }
}

/** Whether an IP packet's trailing ICRC is the one its headers and payload give (any UDP port). */
export function icrcMatches(codec: WireCodec, packet: Uint8Array): boolean {
  if (packet.length < 4) return false;
  const v = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  return codec.icrc(packet) === v.getUint32(packet.length - 4, false);
}

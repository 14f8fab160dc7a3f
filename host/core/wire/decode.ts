// One RoCEv2 packet -> a flat JSON record with Wireshark's field names (ours where Wireshark has
// none) and a compact text tree built from the same record. Parsing itself is the wasm wire
// layer's (WireCodec); this file only names and formats.
import { HEADER_NAMES, type HeaderName, type PacketInfo, type PacketRepr, type WireCodec } from "./codec.js";
import { AETH_ACK, AethType, aethCode, aethType } from "./aeth.js";

export type FieldValue = string | number | boolean;
/** Flat record: integers as numbers, 64-bit values and ICRCs as "0x…" strings. */
export type PacketRecord = Record<string, FieldValue>;

/** A field's bytes in the packet: [start, end), offsets from the IP header's first byte. */
export type ByteRange = readonly [start: number, end: number];

export interface DecodedPacket {
  record: PacketRecord;
  /**
   * Where each field of `record` lies in the packet (for hex highlighting), by the record's
   * names; bit fields give the byte(s) holding them. Also each header's span ("ip", "udp",
   * "infiniband.bth", "infiniband.reth", …), "payload" and "icrc". Set when the packet parsed.
   */
  ranges?: Record<string, ByteRange>;
  /** Parsed and the ICRC matched. */
  ok: boolean;
  /** Set when the packet could not be parsed. */
  error?: string;
}

export interface PacketMeta {
  /** 1-based frame number. */
  frame: number;
  /** Capture time, if there is one. */
  tsNanos?: bigint;
  /** The frame's length on the wire, link header included (Wireshark's frame.len); default: the packet's. */
  frameLen?: number;
}

// Wire error codes (docs/ABI.md) -> what they mean, for messages.
const ERROR_TEXT: Record<number, string> = {
  1: "packet shorter than its IP header says",
  2: "IP version is neither 4 nor 6",
  3: "bad IP header",
  4: "not UDP",
  5: "UDP destination port is not 4791",
  6: "UDP length disagrees with the IP length",
  7: "too short for a BTH",
  8: "BTH transport version is not 0",
  9: "opcode not in the table",
  10: "too short for the opcode's extension headers",
  11: "payload shorter than the pad count, or payload where the opcode allows none",
  12: "IP fragment",
};

const hex32 = (n: number) => "0x" + (n >>> 0).toString(16).padStart(8, "0");
const hex64 = (n: bigint) => "0x" + BigInt.asUintN(64, n).toString(16).padStart(16, "0");

/** Parses one IP packet with the codec and names its fields. Never throws on bad bytes. */
export function decodePacket(codec: WireCodec, packet: Uint8Array, meta: PacketMeta): DecodedPacket {
  const rec: PacketRecord = { "frame.number": meta.frame };
  if (meta.tsNanos !== undefined) rec["frame.time_epoch"] = timeEpoch(meta.tsNanos);
  rec["frame.len"] = meta.frameLen ?? packet.length;
  const res = codec.parse(packet);
  if (!res.ok) {
    const error = errorText(res.code, res.error, packet);
    rec.error = error;
    return { record: rec, ok: false, error };
  }
  const op = codec.opcode(res.repr.opcode);
  // IPv4 total length / IPv6 payload length, as the header says (the parser has checked it).
  const ipLen = res.repr.ipVersion === 4 ? (packet[2] << 8) | packet[3] : (packet[4] << 8) | packet[5];
  addFields(rec, res.repr, ipLen, op?.name, op?.headers);
  return { record: rec, ok: res.repr.icrcOk, ranges: fieldRanges(rec, res.repr.ipVersion, res.info) };
}

/** A record for a frame that never reached the parser (e.g. not an IP packet at all). */
export function failedPacket(meta: PacketMeta, error: string): DecodedPacket {
  const rec: PacketRecord = { "frame.number": meta.frame };
  if (meta.tsNanos !== undefined) rec["frame.time_epoch"] = timeEpoch(meta.tsNanos);
  if (meta.frameLen !== undefined) rec["frame.len"] = meta.frameLen;
  rec.error = error;
  return { record: rec, ok: false, error };
}

function errorText(code: number, name: string, packet: Uint8Array): string {
  let text = `${name}: ${ERROR_TEXT[code] ?? `wire error ${code}`}`;
  if (code === 9) {
    const bth = bthOffset(packet);
    if (bth !== undefined && bth < packet.length) text += ` (0x${packet[bth].toString(16).padStart(2, "0")})`;
  }
  return text;
}

function bthOffset(p: Uint8Array): number | undefined {
  if (p.length === 0) return undefined;
  if (p[0] >> 4 === 4) return (p[0] & 0x0f) * 4 + 8;
  if (p[0] >> 4 === 6) return 48;
  return undefined;
}

/** Each extension header's fields; a header the packet lacks adds nothing. */
const EXT_FIELDS: Record<HeaderName, (rec: PacketRecord, r: PacketRepr) => void> = {
  RETH(rec, r) {
    if (!r.reth) return;
    rec["infiniband.reth.va"] = hex64(r.reth.va);
    rec["infiniband.reth.r_key"] = r.reth.rkey;
    rec["infiniband.reth.dmalen"] = r.reth.dmaLength;
  },
  AETH(rec, r) {
    if (!r.aeth) return;
    rec["infiniband.aeth.syndrome"] = r.aeth.syndrome;
    rec["infiniband.aeth.msn"] = r.aeth.msn;
    rec.aeth_meaning = aethMeaning(r.aeth.syndrome);
  },
  AtomicETH(rec, r) {
    if (!r.atomicEth) return;
    // Wireshark 4.0 labels AtomicETH's address and key with the RETH field names.
    rec["infiniband.reth.va"] = hex64(r.atomicEth.va);
    rec["infiniband.reth.r_key"] = r.atomicEth.rkey;
    rec["infiniband.atomiceth.swapdt"] = hex64(r.atomicEth.swapAdd);
    rec["infiniband.atomiceth.cmpdt"] = hex64(r.atomicEth.compare);
  },
  AtomicAckETH(rec, r) {
    if (r.atomicAckEth) rec["infiniband.atomicacketh.origremdt"] = hex64(r.atomicAckEth.origRemoteData);
  },
  DETH(rec, r) {
    if (!r.deth) return;
    rec["infiniband.deth.q_key"] = r.deth.qkey;
    rec["infiniband.deth.srcqp"] = r.deth.srcQp;
  },
  ImmDt(rec, r) {
    if (r.immDt !== undefined) rec["infiniband.immdt"] = r.immDt;
  },
  IETH(rec, r) {
    if (r.ieth) rec["infiniband.ieth"] = r.ieth.rkey;
  },
  FETH(rec, r) {
    if (r.feth !== undefined) rec["infiniband.feth"] = r.feth; // no Wireshark field: ours
  },
};

function addFields(rec: PacketRecord, r: PacketRepr, ipLen: number, opName: string | undefined, headers: readonly HeaderName[] | undefined): void {
  if (r.ipVersion === 4) {
    rec["ip.version"] = 4;
    rec["ip.src"] = r.src;
    rec["ip.dst"] = r.dst;
    rec["ip.dsfield"] = r.tos;
    rec["ip.len"] = ipLen;
    rec["ip.id"] = r.ipId;
    rec["ip.flags"] = r.ipFlags;
    rec["ip.flags.df"] = (r.ipFlags >> 1) & 1;
    rec["ip.flags.mf"] = r.ipFlags & 1;
    rec["ip.frag_offset"] = r.fragOffset;
    rec["ip.ttl"] = r.ttl;
    rec["ip.checksum"] = r.ipChecksum;
  } else {
    rec["ipv6.version"] = 6;
    rec["ipv6.src"] = r.src;
    rec["ipv6.dst"] = r.dst;
    rec["ipv6.tclass"] = r.tos;
    rec["ipv6.flow"] = r.flowLabel;
    rec["ipv6.plen"] = ipLen;
    rec["ipv6.hlim"] = r.ttl;
  }
  rec["udp.srcport"] = r.udpSrcPort;
  rec["udp.dstport"] = r.udpDstPort;
  rec["udp.length"] = r.udpLength;
  rec["udp.checksum"] = r.udpChecksum;

  rec["infiniband.bth.opcode"] = r.opcode;
  rec.opcode_name = opName ?? `Unknown (0x${r.opcode.toString(16).padStart(2, "0")})`;
  rec["infiniband.bth.se"] = r.se;
  rec["infiniband.bth.m"] = r.migReq;
  rec["infiniband.bth.padcnt"] = r.padCount;
  rec["infiniband.bth.tver"] = r.tver;
  rec["infiniband.bth.p_key"] = r.pkey;
  // Wireshark 4.0 shows BTH byte 4 only as infiniband.reserved; these three names are ours.
  rec["infiniband.bth.fecn"] = r.fecn;
  rec["infiniband.bth.becn"] = r.becn;
  rec["infiniband.bth.resv6"] = r.resv6;
  rec["infiniband.bth.destqp"] = r.destQp;
  rec["infiniband.bth.a"] = r.ackReq;
  rec["infiniband.bth.reserved7"] = r.resv7;
  rec["infiniband.bth.psn"] = r.psn;
  // Extension headers in the order they sit on the wire (the opcode table's order).
  const order = headers ?? (Object.keys(EXT_FIELDS) as HeaderName[]);
  for (const h of order) EXT_FIELDS[h](rec, r);
  rec.payload_len = r.payload.length;
  rec["infiniband.invariant.crc"] = r.icrc >>> 0;
  rec.icrc = hex32(r.icrc);
  rec.icrc_expected = hex32(r.icrcExpected);
  rec.icrc_ok = r.icrcOk;
}

// Field positions inside each header: [record name, offset, length] (IBTA 9.2-9.3; IPv4/IPv6/UDP RFCs).
type FieldPos = readonly [string, number, number];
const IPV4_FIELDS: FieldPos[] = [
  ["ip.version", 0, 1], ["ip.dsfield", 1, 1], ["ip.len", 2, 2], ["ip.id", 4, 2], ["ip.flags", 6, 1], ["ip.flags.df", 6, 1],
  ["ip.flags.mf", 6, 1], ["ip.frag_offset", 6, 2], ["ip.ttl", 8, 1], ["ip.checksum", 10, 2], ["ip.src", 12, 4], ["ip.dst", 16, 4],
];
const IPV6_FIELDS: FieldPos[] = [
  ["ipv6.version", 0, 1], ["ipv6.tclass", 0, 2], ["ipv6.flow", 1, 3], ["ipv6.plen", 4, 2], ["ipv6.hlim", 7, 1], ["ipv6.src", 8, 16], ["ipv6.dst", 24, 16],
];
const UDP_FIELDS: FieldPos[] = [["udp.srcport", 0, 2], ["udp.dstport", 2, 2], ["udp.length", 4, 2], ["udp.checksum", 6, 2]];
const BTH_FIELDS: FieldPos[] = [
  ["infiniband.bth.opcode", 0, 1], ["opcode_name", 0, 1], ["infiniband.bth.se", 1, 1], ["infiniband.bth.m", 1, 1], ["infiniband.bth.padcnt", 1, 1],
  ["infiniband.bth.tver", 1, 1], ["infiniband.bth.p_key", 2, 2], ["infiniband.bth.fecn", 4, 1], ["infiniband.bth.becn", 4, 1],
  ["infiniband.bth.resv6", 4, 1], ["infiniband.bth.destqp", 5, 3], ["infiniband.bth.a", 8, 1], ["infiniband.bth.reserved7", 8, 1],
  ["infiniband.bth.psn", 9, 3],
];
const EXT_POS: Record<HeaderName, { key: string; size: number; fields: FieldPos[] }> = {
  RETH: { key: "infiniband.reth", size: 16, fields: [["infiniband.reth.va", 0, 8], ["infiniband.reth.r_key", 8, 4], ["infiniband.reth.dmalen", 12, 4]] },
  AETH: { key: "infiniband.aeth", size: 4, fields: [["infiniband.aeth.syndrome", 0, 1], ["aeth_meaning", 0, 1], ["infiniband.aeth.msn", 1, 3]] },
  AtomicETH: {
    key: "infiniband.atomiceth",
    size: 28,
    fields: [["infiniband.reth.va", 0, 8], ["infiniband.reth.r_key", 8, 4], ["infiniband.atomiceth.swapdt", 12, 8], ["infiniband.atomiceth.cmpdt", 20, 8]],
  },
  AtomicAckETH: { key: "infiniband.atomicacketh", size: 8, fields: [["infiniband.atomicacketh.origremdt", 0, 8]] },
  DETH: { key: "infiniband.deth", size: 8, fields: [["infiniband.deth.q_key", 0, 4], ["infiniband.deth.srcqp", 5, 3]] },
  ImmDt: { key: "infiniband.immdt", size: 4, fields: [["infiniband.immdt", 0, 4]] },
  IETH: { key: "infiniband.ieth", size: 4, fields: [["infiniband.ieth", 0, 4]] },
  FETH: { key: "infiniband.feth", size: 4, fields: [["infiniband.feth", 0, 4]] },
};

/** Byte ranges of a parsed packet's fields, for the names `rec` carries. */
function fieldRanges(rec: PacketRecord, ipVersion: 4 | 6, info: PacketInfo): Record<string, ByteRange> {
  const out: Record<string, ByteRange> = {};
  const put = (at: number, fields: FieldPos[]) => {
    for (const [name, off, len] of fields) if (name in rec) out[name] = [at + off, at + off + len];
  };
  const udp = info.bthOffset - 8;
  out[ipVersion === 4 ? "ip" : "ipv6"] = [0, udp];
  put(0, ipVersion === 4 ? IPV4_FIELDS : IPV6_FIELDS);
  out.udp = [udp, udp + 8];
  put(udp, UDP_FIELDS);
  out["infiniband.bth"] = [info.bthOffset, info.bthOffset + 12];
  put(info.bthOffset, BTH_FIELDS);
  HEADER_NAMES.forEach((h, i) => {
    const at = info.headerOffsets[i];
    if (at === undefined || at < 0) return;
    const pos = EXT_POS[h];
    out[pos.key] = [at, at + pos.size];
    put(at, pos.fields);
  });
  out.payload = [info.payloadOffset, info.payloadOffset + info.payloadLength];
  if ("payload_len" in rec) out.payload_len = out.payload;
  const icrc: ByteRange = [info.icrcOffset, info.icrcOffset + 4];
  for (const k of ["icrc", "infiniband.invariant.crc", "icrc_expected", "icrc_ok"]) if (k in rec) out[k] = icrc;
  return out;
}

const NAK_CODES = ["PSN sequence error", "invalid request", "remote access error", "remote operational error", "invalid RD request"];

/** What an AETH syndrome says (IBA 9.7.5.1: ACK / RNR NAK / NAK in bits 6..5). */
export function aethMeaning(syndrome: number): string {
  const low = aethCode(syndrome);
  switch (aethType(syndrome)) {
    case AethType.ACK:
      return syndrome === AETH_ACK ? "ACK (no credit limit)" : `ACK (credits code ${low})`;
    case AethType.RNR_NAK:
      return `RNR NAK (timer code ${low})`;
    case AethType.NAK:
      return `NAK ${NAK_CODES[low] ?? `code ${low}`}`;
    default:
      return `reserved syndrome 0x${syndrome.toString(16)}`;
  }
}

function timeEpoch(ns: bigint): string {
  const sec = ns / 1_000_000_000n;
  const frac = ns % 1_000_000_000n;
  return `${sec}.${frac.toString().padStart(9, "0")}`;
}

/** The record as one JSON line. */
export function toJsonLine(d: DecodedPacket): string {
  return JSON.stringify(d.record);
}

/**
 * Compact tree: a frame line, an IP line, a UDP line, then the InfiniBand fields as indented
 * `name: value` lines with the record's names, then the ICRC verdict.
 */
export function formatTree(d: DecodedPacket): string {
  const r = d.record;
  const lines: string[] = [];
  let frame = `Frame ${r["frame.number"]}`;
  if (r["frame.len"] !== undefined) frame += `: ${r["frame.len"]} bytes`;
  if (typeof r["frame.time_epoch"] === "string") frame += `, ${isoTime(r["frame.time_epoch"])}`;
  lines.push(frame);
  if (d.error !== undefined) {
    lines.push(`  error: ${d.error}`);
    return lines.join("\n") + "\n";
  }
  if (r["ip.version"] === 4) {
    const flags = r["ip.flags.df"] ? "DF" : r["ip.flags.mf"] ? "MF" : "none";
    lines.push(
      `IPv4 ${r["ip.src"]} -> ${r["ip.dst"]}, ip.len ${r["ip.len"]}, ip.id 0x${num(r["ip.id"]).toString(16).padStart(4, "0")}, ip.flags ${flags}, ` +
        `ip.ttl ${r["ip.ttl"]}, ip.dsfield 0x${num(r["ip.dsfield"]).toString(16).padStart(2, "0")}`,
    );
  } else {
    lines.push(
      `IPv6 ${r["ipv6.src"]} -> ${r["ipv6.dst"]}, ipv6.plen ${r["ipv6.plen"]}, ipv6.hlim ${r["ipv6.hlim"]}, ipv6.tclass 0x${num(r["ipv6.tclass"]).toString(16).padStart(2, "0")}, ` +
        `ipv6.flow 0x${num(r["ipv6.flow"]).toString(16).padStart(5, "0")}`,
    );
  }
  lines.push(`UDP ${r["udp.srcport"]} -> ${r["udp.dstport"]}, udp.length ${r["udp.length"]}, udp.checksum 0x${num(r["udp.checksum"]).toString(16).padStart(4, "0")}`);
  lines.push(`InfiniBand ${r.opcode_name}`);
  for (const [k, v] of Object.entries(r)) {
    if (!k.startsWith("infiniband.") && k !== "aeth_meaning" && k !== "payload_len") continue;
    if (k === "infiniband.invariant.crc") continue;
    lines.push(`  ${k}: ${showValue(k, v)}`);
  }
  lines.push(`  icrc: ${r.icrc_ok ? "ok" : "bad"} (found ${r.icrc}, expected ${r.icrc_expected})`);
  return lines.join("\n") + "\n";
}

const HEX_FIELDS = new Set(["infiniband.bth.p_key", "infiniband.bth.destqp", "infiniband.reth.r_key", "infiniband.deth.q_key", "infiniband.ieth", "infiniband.immdt", "infiniband.feth"]);

function showValue(key: string, v: FieldValue): string {
  if (typeof v === "number" && HEX_FIELDS.has(key)) {
    const width = key === "infiniband.bth.p_key" ? 4 : key === "infiniband.bth.destqp" ? 6 : 8;
    return `0x${v.toString(16).padStart(width, "0")} (${v})`;
  }
  if (key === "infiniband.bth.opcode") return `${v} (${num(v) >= 0 ? `0x${num(v).toString(16).padStart(2, "0")}` : ""})`;
  return String(v);
}

function num(v: FieldValue | undefined): number {
  return typeof v === "number" ? v : 0;
}

function isoTime(epoch: string): string {
  const [sec, frac] = epoch.split(".");
  const s = Number(sec);
  if (!Number.isSafeInteger(s) || s * 1000 > 8.64e15) return epoch;
  return new Date(s * 1000).toISOString().replace(".000Z", `.${frac.slice(0, 6)}Z`);
}

// WireCodec: a TypeScript facade over one core instance's wire layer (docs/ABI.md "Wire").
// Packets are copied into the core's scratch buffer, parsed or emitted there, and the
// records are read back through DataViews; nothing here knows a header layout except the
// repr/info record offsets, which the ABI fixes.
import { firstLoadedCore, instantiateCore, type CoreExports } from "../wasm/instance.js";
import { ipv4ToString, ipv6ToString, parseIp } from "../net/addr.js";
import { Info, IP_ID_UNKNOWN, OpMask, PARSE_ERRORS, Repr } from "../abi/index.js";
import type { Datagram } from "../net/datagram.js";

/** The numeric wire exports (docs/ABI.md). */
export interface WireExports {
  memory: WebAssembly.Memory;
  wire_buf(): number;
  wire_buf_cap(): number;
  wire_repr(): number;
  wire_info(): number;
  wire_payload_buf(): number;
  op_valid(op: number): number;
  op_mask(op: number): number;
  op_length(op: number): number;
  op_offset(op: number, hdr: number): number;
  op_name(op: number): number;
  pkt_parse(ptr: number, len: number): number;
  pkt_parse_udp(ptr: number, len: number): number;
  pkt_emit(out: number, cap: number): number;
  pkt_ip_udp(out: number, ulen: number, payloadSum: number): number;
  wire_sum(ptr: number, len: number, acc: number): number;
  pkt_error_name(code: number): number;
  crc32(ptr: number, len: number, prev: number): number;
  icrc_packet(ptr: number, len: number): number;
  psn_add(a: number, b: number): number;
  psn_cmp(a: number, b: number): number;
  psn_diff(a: number, b: number): number;
}

/** Opcode mask bits and parse results: the ABI (abi/schema.json, docs/ABI.md). */
export { OpMask, PARSE_ERRORS } from "../abi/index.js";

/** Extension header names by header index (= mask bit). */
export const HEADER_NAMES = ["RETH", "AETH", "AtomicETH", "AtomicAckETH", "DETH", "ImmDt", "IETH", "FETH"] as const;
export type HeaderName = (typeof HEADER_NAMES)[number];

/** Host-side parse code for a packet longer than wire_buf_cap (never produced by the core). */
export const PARSE_TOO_LONG = -1;

export interface OpcodeInfo {
  opcode: number;
  name: string;
  transport: "RC" | "UC" | "RD" | "UD" | "CNP";
  headers: HeaderName[];
  /** BTH + extension headers, bytes. */
  length: number;
  mask: number;
  /** Offset of each header present, from the BTH start. */
  offsets: Partial<Record<HeaderName, number>>;
  flags: {
    req: boolean; resp: boolean; send: boolean; write: boolean; read: boolean; atomic: boolean; flush: boolean;
    atomicWrite: boolean; payload: boolean; start: boolean; middle: boolean; end: boolean; rwr: boolean;
    comp: boolean; cnp: boolean;
  };
}

export interface PacketRepr {
  ipVersion: 4 | 6;
  src: string;
  dst: string;
  ipId: number;
  ipFlags: number;
  fragOffset: number;
  ttl: number;
  tos: number;
  flowLabel: number;
  ipChecksum: number;
  udpSrcPort: number;
  udpDstPort: number;
  udpLength: number;
  udpChecksum: number;
  opcode: number;
  se: number;
  migReq: number;
  padCount: number;
  tver: number;
  pkey: number;
  fecn: number;
  becn: number;
  resv6: number;
  destQp: number;
  ackReq: number;
  resv7: number;
  psn: number;
  reth?: { va: bigint; rkey: number; dmaLength: number };
  aeth?: { syndrome: number; msn: number };
  atomicEth?: { va: bigint; rkey: number; swapAdd: bigint; compare: bigint };
  atomicAckEth?: { origRemoteData: bigint };
  deth?: { qkey: number; srcQp: number };
  immDt?: number;
  ieth?: { rkey: number };
  feth?: number;
  payload: Uint8Array;
  /** The 4 ICRC bytes as on the wire, read big-endian. */
  icrc: number;
  icrcExpected: number;
  icrcOk: boolean;
}

export interface PacketInfo {
  bthOffset: number;
  payloadOffset: number;
  payloadLength: number;
  icrcOffset: number;
  /** Offset of each extension header from the packet start, by header index; -1 when absent. */
  headerOffsets: number[];
  /** Bytes of the packet used (IP total length). */
  packetLength: number;
}

export type ParseResult =
  | { ok: true; repr: PacketRepr; info: PacketInfo }
  | { ok: false; code: number; error: string };

type Parsed = "ipChecksum" | "udpLength" | "padCount" | "icrc" | "icrcExpected" | "icrcOk";
type Defaulted = "ipVersion" | "ipId" | "ipFlags" | "fragOffset" | "ttl" | "tos" | "flowLabel" | "udpSrcPort"
  | "udpDstPort" | "udpChecksum" | "se" | "migReq" | "tver" | "pkey" | "fecn" | "becn" | "resv6" | "ackReq"
  | "resv7" | "psn" | "payload";
/** What emit needs: the repr minus parsed-only fields; fields with a sensible default are optional. */
export type PacketSpec = Omit<PacketRepr, Parsed | Defaulted> & Partial<Pick<PacketRepr, Defaulted>>;

/** IP/UDP fields of a datagram received without its headers, named as in the repr (for parseUdpPayload). */
export interface IpUdpFacts {
  src: string;
  dst: string;
  ipVersion?: 4 | 6;
  ipId?: number;
  ipFlags?: number;
  fragOffset?: number;
  ttl?: number;
  tos?: number;
  flowLabel?: number;
  udpSrcPort?: number;
  udpDstPort?: number;
  udpChecksum?: number;
}

export const SPEC_DEFAULTS = {
  ipId: 0, ipFlags: 2, fragOffset: 0, ttl: 64, tos: 0, flowLabel: 0, udpSrcPort: 0xc000, udpDstPort: 4791,
  udpChecksum: 0, se: 0, migReq: 0, tver: 0, pkey: 0xffff, fecn: 0, becn: 0, resv6: 0, ackReq: 0, resv7: 0, psn: 0,
} as const;

// The repr and parse-info records (docs/ABI.md), generated from abi/schema.json.
const R = Repr;
const REPR_SIZE = Repr.SIZE;
const I = Info;

const SIMPLE_FIELDS = [
  "ipId", "ipFlags", "fragOffset", "ttl", "tos", "flowLabel", "udpSrcPort", "udpDstPort", "udpChecksum", "se",
  "migReq", "tver", "pkey", "fecn", "becn", "resv6", "ackReq", "resv7", "psn",
] as const;

const TRANSPORTS = ["RC", "UC", "RD", "UD", "CNP"] as const;

/** Largest value of each numeric spec field (its width on the wire). */
const FIELD_MAX: [string, number][] = [
  ["ipId", 0xffff], ["ipFlags", 7], ["fragOffset", 0x1fff], ["ttl", 0xff], ["tos", 0xff], ["flowLabel", 0xfffff],
  ["udpSrcPort", 0xffff], ["udpDstPort", 0xffff], ["udpChecksum", 0xffff], ["opcode", 0xff], ["se", 1], ["migReq", 1],
  ["tver", 15], ["pkey", 0xffff], ["fecn", 1], ["becn", 1], ["resv6", 0x3f], ["destQp", 0xffffff], ["ackReq", 1],
  ["resv7", 0x7f], ["psn", 0xffffff], ["immDt", 0xffffffff], ["feth", 0xffffffff],
];

export class WireCodec {
  readonly core: CoreExports;
  private readonly x: WireExports;
  readonly bufPtr: number;
  readonly bufCap: number;
  private readonly reprPtr: number;
  private readonly infoPtr: number;
  private readonly payloadPtr: number;
  private readonly opcodes: (OpcodeInfo | undefined)[] = [];

  constructor(core: CoreExports) {
    this.core = core;
    this.x = core as unknown as WireExports;
    this.bufPtr = this.x.wire_buf();
    this.bufCap = this.x.wire_buf_cap();
    this.reprPtr = this.x.wire_repr();
    this.infoPtr = this.x.wire_info();
    this.payloadPtr = this.x.wire_payload_buf();
    for (let op = 0; op < 256; op++) this.opcodes.push(this.x.op_valid(op) ? this.readOpcode(op) : undefined);
  }

  static async create(mod: WebAssembly.Module): Promise<WireCodec> {
    return new WireCodec(await instantiateCore(mod));
  }

  private viewBuffer: ArrayBuffer | undefined;
  private u8View = new Uint8Array(0);
  private dvView = new DataView(new ArrayBuffer(0));
  /** Views over linear memory, re-derived only when memory has grown (which detaches the old buffer). */
  private get u8(): Uint8Array {
    if (this.viewBuffer !== this.x.memory.buffer) this.refreshViews();
    return this.u8View;
  }
  private get dv(): DataView {
    if (this.viewBuffer !== this.x.memory.buffer) this.refreshViews();
    return this.dvView;
  }
  private refreshViews(): void {
    const b = this.x.memory.buffer as ArrayBuffer;
    this.viewBuffer = b;
    this.u8View = new Uint8Array(b);
    this.dvView = new DataView(b);
  }

  private cstring(ptr: number): string {
    const m = this.u8;
    let s = "";
    for (let p = ptr; m[p] !== 0 && p < m.length; p++) s += String.fromCharCode(m[p]!);
    return s;
  }

  private readOpcode(op: number): OpcodeInfo {
    const mask = this.x.op_mask(op) >>> 0;
    const offsets: Partial<Record<HeaderName, number>> = {};
    const present: [HeaderName, number][] = [];
    HEADER_NAMES.forEach((name, h) => {
      const o = this.x.op_offset(op, h);
      if (o >= 0) { offsets[name] = o; present.push([name, o]); }
    });
    present.sort((a, b) => a[1] - b[1]);
    const b = (m: number) => (mask & m) !== 0;
    return {
      opcode: op,
      name: this.cstring(this.x.op_name(op)),
      transport: TRANSPORTS[Math.min(op >> 5, 4)]!,
      headers: present.map((p) => p[0]),
      length: this.x.op_length(op),
      mask,
      offsets,
      flags: {
        req: b(OpMask.REQ), resp: b(OpMask.RESP), send: b(OpMask.SEND), write: b(OpMask.WRITE), read: b(OpMask.READ),
        atomic: b(OpMask.ATOMIC), flush: b(OpMask.FLUSH), atomicWrite: b(OpMask.ATOMIC_WRITE), payload: b(OpMask.PAYLOAD),
        start: b(OpMask.START), middle: b(OpMask.MIDDLE), end: b(OpMask.END), rwr: b(OpMask.RWR), comp: b(OpMask.COMP),
        cnp: b(OpMask.CNP),
      },
    };
  }

  /** The opcode table entry, or undefined for an opcode the device does not know. */
  opcode(op: number): OpcodeInfo | undefined {
    return Number.isInteger(op) && op >= 0 && op < 256 ? this.opcodes[op] : undefined;
  }

  errorName(code: number): string {
    return this.cstring(this.x.pkt_error_name(code >>> 0));
  }

  /** Parses one IPv4/IPv6 RoCEv2 packet (IP header first). */
  parse(packet: Uint8Array): ParseResult {
    if (packet.length > this.bufCap) {
      return { ok: false, code: PARSE_TOO_LONG, error: `PACKET_TOO_LONG: ${packet.length} bytes > wire_buf_cap ${this.bufCap}` };
    }
    this.u8.set(packet, this.bufPtr);
    const code = this.x.pkt_parse(this.bufPtr, packet.length) >>> 0;
    if (code !== 0) return { ok: false, code, error: this.errorName(code) };
    return { ok: true, repr: this.readRepr(), info: this.readInfo() };
  }

  /** Parses a bare UDP payload (BTH .. ICRC) with the IP/UDP facts it arrived with. */
  parseUdpPayload(payload: Uint8Array, facts: IpUdpFacts): ParseResult {
    if (payload.length > this.bufCap) {
      return { ok: false, code: PARSE_TOO_LONG, error: `PACKET_TOO_LONG: ${payload.length} bytes > wire_buf_cap ${this.bufCap}` };
    }
    const version = this.writeAddresses(facts.src, facts.dst, facts.ipVersion);
    const dv = this.dv;
    const r = this.reprPtr;
    for (const f of ["ipId", "ipFlags", "fragOffset", "ttl", "tos", "flowLabel", "udpSrcPort", "udpDstPort", "udpChecksum"] as const) {
      dv.setUint32(r + R[f], facts[f] ?? SPEC_DEFAULTS[f], true);
    }
    dv.setUint32(r + R.ipVersion, version, true);
    this.u8.set(payload, this.bufPtr);
    const code = this.x.pkt_parse_udp(this.bufPtr, payload.length) >>> 0;
    if (code !== 0) return { ok: false, code, error: this.errorName(code) };
    return { ok: true, repr: this.readRepr(), info: this.readInfo() };
  }

  /** Parses a datagram as a link carries it (UDP payload + the facts its ICRC was computed over). */
  parseDatagram(d: Datagram): ParseResult {
    return this.parseUdpPayload(d.payload, {
      src: d.src, dst: d.dst, ipId: d.ipId, ttl: d.ttl, tos: d.tos, flowLabel: d.flowLabel,
      udpSrcPort: d.srcPort, udpDstPort: d.dstPort,
    });
  }

  private writeAddresses(src: string, dst: string, want?: 4 | 6): 4 | 6 {
    const s = parseIp(src);
    const d = parseIp(dst);
    if (!s) throw new Error(`bad source address: ${src}`);
    if (!d) throw new Error(`bad destination address: ${dst}`);
    if (s.version !== d.version) throw new Error(`address families differ: ${src} / ${dst}`);
    if (want !== undefined && want !== s.version) throw new Error(`ipVersion ${want} but addresses are IPv${s.version}`);
    const m = this.u8;
    const r = this.reprPtr;
    m.fill(0, r + R.src, r + R.src + 32);
    m.set(s.bytes, r + R.src);
    m.set(d.bytes, r + R.dst);
    return s.version;
  }

  private readRepr(): PacketRepr {
    const dv = this.dv;
    const m = this.u8;
    const r = this.reprPtr;
    const u32 = (o: number) => dv.getUint32(r + o, true);
    const u64 = (o: number) => dv.getBigUint64(r + o, true);
    const ipVersion = u32(R.ipVersion) as 4 | 6;
    const opcode = u32(R.opcode);
    const mask = this.x.op_mask(opcode) >>> 0;
    const payloadPtr = u32(R.payloadPtr);
    const payloadLen = u32(R.payloadLen);
    const repr: PacketRepr = {
      ipVersion,
      src: ipVersion === 4 ? ipv4ToString(m, r + R.src) : ipv6ToString(m, r + R.src),
      dst: ipVersion === 4 ? ipv4ToString(m, r + R.dst) : ipv6ToString(m, r + R.dst),
      ipId: u32(R.ipId), ipFlags: u32(R.ipFlags), fragOffset: u32(R.fragOffset), ttl: u32(R.ttl), tos: u32(R.tos),
      flowLabel: u32(R.flowLabel), ipChecksum: u32(R.ipChecksum), udpSrcPort: u32(R.udpSrcPort),
      udpDstPort: u32(R.udpDstPort), udpLength: u32(R.udpLength), udpChecksum: u32(R.udpChecksum), opcode,
      se: u32(R.se), migReq: u32(R.migReq), padCount: u32(R.padCount), tver: u32(R.tver), pkey: u32(R.pkey),
      fecn: u32(R.fecn), becn: u32(R.becn), resv6: u32(R.resv6), destQp: u32(R.destQp), ackReq: u32(R.ackReq),
      resv7: u32(R.resv7), psn: u32(R.psn),
      payload: m.slice(payloadPtr, payloadPtr + payloadLen),
      icrc: u32(R.icrc), icrcExpected: u32(R.icrcExpected), icrcOk: u32(R.icrc) === u32(R.icrcExpected),
    };
    if (mask & OpMask.RETH) repr.reth = { va: u64(R.rethVa), rkey: u32(R.rethRkey), dmaLength: u32(R.rethLen) };
    if (mask & OpMask.AETH) repr.aeth = { syndrome: u32(R.aethSyndrome), msn: u32(R.aethMsn) };
    if (mask & OpMask.ATMETH) {
      repr.atomicEth = { va: u64(R.atmVa), rkey: u32(R.atmRkey), swapAdd: u64(R.atmSwapAdd), compare: u64(R.atmCompare) };
    }
    if (mask & OpMask.ATMACK) repr.atomicAckEth = { origRemoteData: u64(R.atmackOrig) };
    if (mask & OpMask.DETH) repr.deth = { qkey: u32(R.dethQkey), srcQp: u32(R.dethSrcQp) };
    if (mask & OpMask.IMMDT) repr.immDt = u32(R.immDt);
    if (mask & OpMask.IETH) repr.ieth = { rkey: u32(R.iethRkey) };
    if (mask & OpMask.FETH) repr.feth = u32(R.feth);
    return repr;
  }

  private readInfo(): PacketInfo {
    const dv = this.dv;
    const i = this.infoPtr;
    const headerOffsets: number[] = [];
    for (let h = 0; h < 8; h++) headerOffsets.push(dv.getInt32(i + I.hdrOff + 4 * h, true));
    return {
      bthOffset: dv.getUint32(i + I.bthOff, true),
      payloadOffset: dv.getUint32(i + I.payloadOff, true),
      payloadLength: dv.getUint32(i + I.payloadLen, true),
      icrcOffset: dv.getUint32(i + I.icrcOff, true),
      headerOffsets,
      packetLength: dv.getUint32(i + I.packetLen, true),
    };
  }

  /** Builds a packet (IP + UDP + BTH + headers + payload + pad + ICRC); returns a copy. Throws on a bad spec. */
  emit(spec: PacketSpec): Uint8Array {
    const info = this.opcode(spec.opcode);
    if (!info) throw new Error(`emit: UNKNOWN_OPCODE ${spec.opcode}`);
    const payload = spec.payload ?? new Uint8Array(0);
    if (payload.length > this.bufCap) throw new Error(`emit: payload of ${payload.length} bytes > ${this.bufCap}`);
    for (const [field, max] of FIELD_MAX) {
      const v = (spec as unknown as Record<string, number | undefined>)[field];
      if (v !== undefined && !(Number.isInteger(v) && v >= 0 && v <= max)) {
        throw new RangeError(`emit: ${field} = ${v} is outside 0..${max}`);
      }
    }
    const version = this.writeAddresses(spec.src, spec.dst, spec.ipVersion);
    const m = this.u8;
    const dv = this.dv;
    const r = this.reprPtr;
    m.fill(0, r + R.ipId, r + REPR_SIZE);
    const w32 = (o: number, v: number) => dv.setUint32(r + o, v >>> 0, true);
    const w64 = (o: number, v: bigint) => dv.setBigUint64(r + o, BigInt.asUintN(64, v), true);
    w32(R.ipVersion, version);
    for (const f of SIMPLE_FIELDS) w32(R[f], spec[f] ?? SPEC_DEFAULTS[f]);
    w32(R.opcode, spec.opcode);
    w32(R.destQp, spec.destQp);
    const need = (name: HeaderName, v: unknown) => {
      if (info.offsets[name] !== undefined && v === undefined) throw new Error(`emit: ${info.name} needs ${name}`);
    };
    need("RETH", spec.reth); need("AETH", spec.aeth); need("AtomicETH", spec.atomicEth);
    need("AtomicAckETH", spec.atomicAckEth); need("DETH", spec.deth); need("ImmDt", spec.immDt);
    need("IETH", spec.ieth); need("FETH", spec.feth);
    if (spec.reth) { w64(R.rethVa, spec.reth.va); w32(R.rethRkey, spec.reth.rkey); w32(R.rethLen, spec.reth.dmaLength); }
    if (spec.aeth) { w32(R.aethSyndrome, spec.aeth.syndrome); w32(R.aethMsn, spec.aeth.msn); }
    if (spec.atomicEth) {
      w64(R.atmVa, spec.atomicEth.va); w32(R.atmRkey, spec.atomicEth.rkey);
      w64(R.atmSwapAdd, spec.atomicEth.swapAdd); w64(R.atmCompare, spec.atomicEth.compare);
    }
    if (spec.atomicAckEth) w64(R.atmackOrig, spec.atomicAckEth.origRemoteData);
    if (spec.deth) { w32(R.dethQkey, spec.deth.qkey); w32(R.dethSrcQp, spec.deth.srcQp); }
    if (spec.immDt !== undefined) w32(R.immDt, spec.immDt);
    if (spec.ieth) w32(R.iethRkey, spec.ieth.rkey);
    if (spec.feth !== undefined) w32(R.feth, spec.feth);
    m.set(payload, this.payloadPtr);
    w32(R.payloadPtr, this.payloadPtr);
    w32(R.payloadLen, payload.length);
    const n = this.x.pkt_emit(this.bufPtr, this.bufCap);
    if (n < 0) throw new Error(`emit: ${this.errorName(n)} (${n})`);
    return this.u8.slice(this.bufPtr, this.bufPtr + n);
  }

  /**
   * The IP packet a datagram travels in: the IPv4 (IHL 5, DF) or IPv6 and UDP headers the core writes
   * for the datagram's facts (`assembly/wire/packet.ts` emit_ip_udp, as for every packet it builds),
   * then the UDP payload. Unknown facts take the device's defaults: IPv4 ID 0 (also for
   * IP_ID_UNKNOWN), TTL / hop limit 64 (also for 0), traffic class and flow label 0. The UDP checksum
   * is computed, as a host's kernel does, unless `udpChecksum` gives it (0: none, what Linux rxe sends).
   */
  ipPacket(d: Datagram, opts: { udpChecksum?: number } = {}): Uint8Array {
    const version = this.writeAddresses(d.src, d.dst);
    const ulen = 8 + d.payload.length;
    if (ulen > (version === 4 ? 0xffff - 20 : 0xffff)) throw new RangeError(`ipPacket: a UDP payload of ${d.payload.length} bytes does not fit an IPv${version} packet`);
    const facts: [number, number | undefined, number][] = [
      [R.ipId, d.ipId === IP_ID_UNKNOWN ? 0 : d.ipId, 0xffff], [R.ttl, d.ttl || undefined, 0xff], [R.tos, d.tos, 0xff],
      [R.flowLabel, d.flowLabel, 0xfffff], [R.udpSrcPort, d.srcPort, 0xffff], [R.udpDstPort, d.dstPort, 0xffff],
      [R.udpChecksum, opts.udpChecksum, 0xffff],
    ];
    const r = this.reprPtr;
    const dv = this.dv;
    dv.setUint32(r + R.ipVersion, version, true);
    dv.setUint32(r + R.ipFlags, SPEC_DEFAULTS.ipFlags, true);
    dv.setUint32(r + R.fragOffset, 0, true);
    dv.setUint32(r + R.ttl, SPEC_DEFAULTS.ttl, true);
    dv.setUint32(r + R.tos, 0, true);
    dv.setUint32(r + R.flowLabel, 0, true);
    dv.setUint32(r + R.ipId, 0, true);
    dv.setUint32(r + R.udpChecksum, 0, true);
    for (const [off, v, max] of facts) {
      if (v === undefined) continue;
      if (!(Number.isInteger(v) && v >= 0 && v <= max)) throw new RangeError(`ipPacket: ${v} is outside 0..${max}`);
      dv.setUint32(r + off, v, true);
    }
    let sum = -1;
    if (opts.udpChecksum === undefined) {
      sum = 0;
      for (let off = 0; off < d.payload.length; off += this.bufCap) {
        const piece = d.payload.subarray(off, off + this.bufCap);
        this.u8.set(piece, this.bufPtr);
        sum = this.x.wire_sum(this.bufPtr, piece.length, sum) >>> 0;
      }
    }
    const hl = this.x.pkt_ip_udp(this.bufPtr, ulen, sum) >>> 0;
    if (hl === 0) throw new Error(`ipPacket: the core refused IPv${version} with ${ulen} UDP bytes`);
    const out = new Uint8Array(hl + ulen);
    out.set(this.u8.subarray(this.bufPtr, this.bufPtr + hl + 8));
    out.set(d.payload, hl + 8);
    return out;
  }

  /** zlib-compatible CRC-32, continuing from `prev` (0 to start). */
  crc32(data: Uint8Array, prev = 0): number {
    let crc = prev >>> 0;
    if (data.length === 0) return this.x.crc32(this.bufPtr, 0, crc) >>> 0;
    for (let off = 0; off < data.length; off += this.bufCap) {
      const chunk = data.subarray(off, off + this.bufCap);
      this.u8.set(chunk, this.bufPtr);
      crc = this.x.crc32(this.bufPtr, chunk.length, crc) >>> 0;
    }
    return crc;
  }

  /** CRC-32 of the first len bytes already in the scratch buffer (see `scratch`): no copy. */
  crc32Resident(len: number, prev = 0): number {
    if (len > this.bufCap) throw new RangeError(`crc32Resident: ${len} > ${this.bufCap}`);
    return this.x.crc32(this.bufPtr, len, prev >>> 0) >>> 0;
  }

  /** A view of the core's scratch packet buffer (wire_buf_cap bytes). */
  scratch(): Uint8Array {
    return new Uint8Array(this.x.memory.buffer, this.bufPtr, this.bufCap);
  }

  /** The ICRC a full IP packet (its last 4 bytes being the ICRC) should carry, wire bytes read big-endian. */
  icrc(packet: Uint8Array): number {
    if (packet.length > this.bufCap) throw new RangeError(`icrc: ${packet.length} bytes > wire_buf_cap ${this.bufCap}`);
    this.u8.set(packet, this.bufPtr);
    return this.x.icrc_packet(this.bufPtr, packet.length) >>> 0;
  }

  psnAdd(a: number, b: number): number { return this.x.psn_add(a, b) >>> 0; }
  psnCmp(a: number, b: number): number { return this.x.psn_cmp(a, b); }
  psnDiff(a: number, b: number): number { return this.x.psn_diff(a, b); }
}

let shared: WireCodec | undefined;

/**
 * A codec over the first core this process loaded (every core writes the same bytes): for tools
 * handed no codec, such as `ipPacket` in a capture. Throws when no core has been loaded yet.
 */
export function sharedCodec(): WireCodec {
  if (shared) return shared;
  const core = firstLoadedCore();
  if (!core) throw new Error("no softroce core is loaded yet: pass a WireCodec (WireCodec.create) or open a device first");
  return (shared = new WireCodec(core));
}

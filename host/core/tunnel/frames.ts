// The tunnel frame codec (docs/TUNNEL.md): the binary WebSocket messages between a
// browser (or any) client and the softroce gateway. Parse is strict: a frame from
// the network is hostile, and every malformed one is a TunnelFrameError with a code,
// never any other exception. Emit builds exactly what parse accepts.
import { addressGidBytes, gidToAddress } from "../net/gid.js";
import { copyPieces } from "../net/bytes.js";

/** Version 1: one datagram per DATA frame. */
export const TUNNEL_VERSION = 1;
/** Version 2: version 1's frames, a 40-byte HELLO that says the largest frame, and BATCH (several datagrams in one frame). */
export const TUNNEL_VERSION_BATCH = 2;
/** The WebSocket subprotocol a client offers to speak version 2; a gateway that picks it answers with a version-2 HELLO. */
export const TUNNEL_SUBPROTOCOL_V2 = "softroce-tunnel.2";

export const FrameKind = { DATA: 1, HELLO: 2, ERROR: 3, BATCH: 4 } as const;
export type FrameKindValue = (typeof FrameKind)[keyof typeof FrameKind];

/** DATA: version, kind, peer UDP port, peer address (16-byte GID), IPv4 ID, then the RoCEv2 UDP payload. */
export const DATA_HEADER_LEN = 24;
/** HELLO is fixed-size: 36 bytes in version 1, 40 in version 2 (max_frame appended). */
export const HELLO_LEN = 36;
export const HELLO_V2_LEN = 40;
/** BATCH: version, kind, count; then per datagram a 24-byte record header (length, port, address, ID) and its payload. */
export const BATCH_HEADER_LEN = 4;
export const BATCH_RECORD_LEN = 24;
/** The most datagrams one BATCH may carry. */
export const BATCH_MAX_COUNT = 1024;
/** ERROR: version, kind, code, then at most this many bytes of UTF-8 reason. */
export const ERROR_HEADER_LEN = 4;
export const ERROR_REASON_MAX = 119;
/** The smallest RoCEv2 payload a DATA frame may carry: BTH (12) + ICRC (4). */
export const MIN_ROCE_PAYLOAD = 16;
/** ipId value meaning "the gateway did not see the IPv4 Identification". */
export const TUNNEL_IP_ID_UNKNOWN = 0xffffffff;

/** Every reason a frame is refused or a datagram dropped, as numbered on the wire in ERROR frames. */
export const TUNNEL_ERRORS = [
  "none", "bad_frame", "not_roce", "destination_refused", "rate_limited", "qpn_not_owned", "unknown_qpn",
  "backlog", "internal",
] as const;
export type TunnelErrorName = (typeof TUNNEL_ERRORS)[number];

export type FrameErrorCode =
  | "short" | "bad_version" | "bad_kind" | "bad_length" | "bad_port" | "bad_address" | "bad_ip_id" | "bad_reserved"
  | "bad_qpn_range" | "bad_utf8" | "not_bytes";

/** A malformed frame. `code` says which rule it broke. */
export class TunnelFrameError extends Error {
  constructor(readonly code: FrameErrorCode, detail: string) {
    super(`tunnel frame ${code}: ${detail}`);
    this.name = "TunnelFrameError";
  }
}

export interface DataFrame {
  kind: typeof FrameKind.DATA;
  /** client → gateway: the destination; gateway → client: the source */
  address: string;
  port: number;
  /** gateway → client: the IPv4 ID the ICRC covered, or TUNNEL_IP_ID_UNKNOWN; client → gateway: 0 */
  ipId: number;
  /** BTH … ICRC (a view into the frame) */
  payload: Uint8Array;
}

export interface HelloFrame {
  kind: typeof FrameKind.HELLO;
  /** 1 or 2 (TUNNEL_VERSION_BATCH): the version both ends speak on this connection; absent when emitting means 1 */
  version?: number;
  /** version 2: the largest WebSocket message the gateway takes (a BATCH up to this size) */
  maxFrame?: number;
  /** the gateway's UDP address: the client's GID (IPv4-mapped on the wire for IPv4) */
  address: string;
  /** the gateway's UDP source port: the client's local port */
  port: number;
  /** 0: every datagram the gateway sends carries IPv4 ID 0 (the only policy of version 1) */
  ipIdPolicy: number;
  /** the gateway sends IPv4 with DF */
  dontFragment: boolean;
  /** largest RoCEv2 payload (BTH … ICRC) the gateway forwards */
  maxPayload: number;
  qpnBase: number;
  qpnCount: number;
  clientId: number;
}

export interface ErrorFrame {
  kind: typeof FrameKind.ERROR;
  code: number;
  name: string;
  reason: string;
}

/** Version 2: several datagrams in one message, each as a DATA frame would carry it. */
export interface BatchFrame {
  kind: typeof FrameKind.BATCH;
  datagrams: DataFrame[];
}

export type TunnelFrame = DataFrame | HelloFrame | ErrorFrame | BatchFrame;

function be16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}
function be32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}
function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 8;
  b[o + 1] = v;
}
function put32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = v >>> 16;
  b[o + 2] = v >>> 8;
  b[o + 3] = v;
}

/** 16-byte GID form of an IPv4 or IPv6 address (IPv4 as ::ffff:a.b.c.d); a coded error for anything else. */
export function addressToGid(address: string): Uint8Array {
  const g = addressGidBytes(address);
  if (!g) throw new TunnelFrameError("bad_address", `not an IPv4 or IPv6 address: ${JSON.stringify(address)}`);
  return g;
}

function asBytes(data: unknown): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TunnelFrameError("not_bytes", "a tunnel frame is a binary message");
}

/** Offsets in a DATA frame's header and in a BATCH record's (the same 24 bytes but for the first two). */
export const RECORD_PORT_OFF = 2;
export const RECORD_ADDRESS_OFF = 4;
export const RECORD_IP_ID_OFF = 20;

/** The peer UDP port of the DATA header or BATCH record at `at` (visitDatagrams' `at`). */
export function recordPort(b: Uint8Array, at: number): number {
  return be16(b, at + RECORD_PORT_OFF);
}
/** The IPv4 ID field of the DATA header or BATCH record at `at`. */
export function recordIpId(b: Uint8Array, at: number): number {
  return be32(b, at + RECORD_IP_ID_OFF);
}

/** The frame's version, checked against 1 .. `maxVersion` (and 2); its kind is b[1]. */
function checkVersion(b: Uint8Array, maxVersion: number): number {
  if (b.length < 2) throw new TunnelFrameError("short", `${b.length} bytes, a frame has at least 2`);
  const version = b[0]!;
  if (version < TUNNEL_VERSION || version > Math.min(maxVersion, TUNNEL_VERSION_BATCH)) {
    const want = maxVersion <= TUNNEL_VERSION ? `${TUNNEL_VERSION}` : `${TUNNEL_VERSION} or ${TUNNEL_VERSION_BATCH}`;
    throw new TunnelFrameError("bad_version", `version ${version}, expected ${want}`);
  }
  return version;
}

/** A DATA frame's rules (the header is 24 bytes, a payload of at least 16, a port). */
function checkData(b: Uint8Array): void {
  if (b.length < DATA_HEADER_LEN + MIN_ROCE_PAYLOAD) {
    throw new TunnelFrameError("short", `DATA of ${b.length} bytes, at least ${DATA_HEADER_LEN + MIN_ROCE_PAYLOAD}`);
  }
  if (be16(b, RECORD_PORT_OFF) === 0) throw new TunnelFrameError("bad_port", "DATA with UDP port 0");
}

/** A BATCH frame's rules, every record walked; returns its count. */
function checkBatch(b: Uint8Array, version: number): number {
  if (version !== TUNNEL_VERSION_BATCH) throw new TunnelFrameError("bad_kind", `kind ${b[1]} is not in version ${version}`);
  if (b.length < BATCH_HEADER_LEN) throw new TunnelFrameError("short", `BATCH of ${b.length} bytes`);
  const count = be16(b, 2);
  if (count === 0 || count > BATCH_MAX_COUNT) throw new TunnelFrameError("bad_length", `BATCH of ${count} datagrams (1..${BATCH_MAX_COUNT})`);
  let at = BATCH_HEADER_LEN;
  for (let i = 0; i < count; i++) {
    if (b.length - at < BATCH_RECORD_LEN + MIN_ROCE_PAYLOAD) {
      throw new TunnelFrameError("short", `BATCH datagram ${i} at byte ${at}: ${b.length - at} bytes left`);
    }
    const len = be16(b, at);
    if (len < MIN_ROCE_PAYLOAD) throw new TunnelFrameError("bad_length", `BATCH datagram ${i} of ${len} bytes, at least ${MIN_ROCE_PAYLOAD}`);
    const end = at + BATCH_RECORD_LEN + len;
    if (end > b.length) throw new TunnelFrameError("short", `BATCH datagram ${i} of ${len} bytes runs past the frame`);
    if (be16(b, at + RECORD_PORT_OFF) === 0) throw new TunnelFrameError("bad_port", `BATCH datagram ${i} with UDP port 0`);
    at = end;
  }
  if (at !== b.length) throw new TunnelFrameError("bad_length", `BATCH has ${b.length - at} bytes after its ${count} datagrams`);
  return count;
}

/**
 * Parses one binary WebSocket message of version 1 .. `maxVersion` (default 2: any; a version-1
 * connection passes 1). Throws TunnelFrameError (only) when it is malformed.
 */
export function parseFrame(data: Uint8Array | ArrayBuffer | ArrayBufferView, maxVersion = TUNNEL_VERSION_BATCH): TunnelFrame {
  const b = asBytes(data);
  const version = checkVersion(b, maxVersion);
  switch (b[1]) {
    case FrameKind.DATA: {
      checkData(b);
      return {
        kind: FrameKind.DATA, port: recordPort(b, 0), address: gidToAddress(b, RECORD_ADDRESS_OFF), ipId: recordIpId(b, 0),
        payload: b.subarray(DATA_HEADER_LEN),
      };
    }
    case FrameKind.HELLO: {
      const want = version === TUNNEL_VERSION ? HELLO_LEN : HELLO_V2_LEN;
      if (b.length !== want) throw new TunnelFrameError("bad_length", `HELLO of ${b.length} bytes, expected ${want}`);
      const port = be16(b, 2);
      if (port === 0) throw new TunnelFrameError("bad_port", "HELLO with UDP port 0");
      if (b[20]! !== 0) throw new TunnelFrameError("bad_ip_id", `IPv4 ID policy ${b[20]} unknown`);
      if ((b[21]! & 0xfe) !== 0) throw new TunnelFrameError("bad_reserved", "HELLO flags reserved bits set");
      const maxPayload = be16(b, 22);
      if (maxPayload < MIN_ROCE_PAYLOAD) throw new TunnelFrameError("bad_length", `HELLO max payload ${maxPayload}`);
      const qpnBase = be32(b, 24);
      const qpnCount = be32(b, 28);
      if (qpnBase < 2 || qpnCount === 0 || qpnBase + qpnCount > 0x1000000) {
        throw new TunnelFrameError("bad_qpn_range", `QPN range base ${qpnBase} count ${qpnCount}`);
      }
      const h: HelloFrame = {
        kind: FrameKind.HELLO, version, port, address: gidToAddress(b, 4), ipIdPolicy: b[20]!, dontFragment: (b[21]! & 1) !== 0,
        maxPayload, qpnBase, qpnCount, clientId: be32(b, 32),
      };
      if (version === TUNNEL_VERSION_BATCH) {
        const maxFrame = be32(b, 36);
        if (maxFrame < DATA_HEADER_LEN + maxPayload) {
          throw new TunnelFrameError("bad_length", `HELLO max frame ${maxFrame} is below one DATA frame (${DATA_HEADER_LEN + maxPayload})`);
        }
        h.maxFrame = maxFrame;
      }
      return h;
    }
    case FrameKind.ERROR: {
      if (b.length < ERROR_HEADER_LEN || b.length > ERROR_HEADER_LEN + ERROR_REASON_MAX) {
        throw new TunnelFrameError("bad_length", `ERROR of ${b.length} bytes`);
      }
      const code = be16(b, 2);
      let reason: string;
      try {
        reason = new TextDecoder("utf-8", { fatal: true }).decode(b.subarray(ERROR_HEADER_LEN));
      } catch {
        throw new TunnelFrameError("bad_utf8", "ERROR reason is not UTF-8");
      }
      return { kind: FrameKind.ERROR, code, name: TUNNEL_ERRORS[code] ?? `error_${code}`, reason };
    }
    case FrameKind.BATCH: {
      const count = checkBatch(b, version);
      const datagrams: DataFrame[] = [];
      for (let i = 0, at = BATCH_HEADER_LEN; i < count; i++) {
        const end = at + BATCH_RECORD_LEN + be16(b, at);
        datagrams.push({
          kind: FrameKind.DATA, port: recordPort(b, at), address: gidToAddress(b, at + RECORD_ADDRESS_OFF), ipId: recordIpId(b, at),
          payload: b.subarray(at + BATCH_RECORD_LEN, end),
        });
        at = end;
      }
      return { kind: FrameKind.BATCH, datagrams };
    }
    default:
      throw new TunnelFrameError("bad_kind", `kind ${b[1]} unknown`);
  }
}

/**
 * One datagram of a DATA or BATCH frame, as visitDatagrams shows it: `at` is its DATA header or
 * BATCH record (read with recordPort, recordIpId; the peer's 16-byte GID is at at +
 * RECORD_ADDRESS_OFF), the payload is b[payloadAt, payloadAt + length). Return false to stop.
 */
export type DatagramVisit = (b: Uint8Array, at: number, payloadAt: number, length: number) => boolean;

/**
 * The datagrams of a message without building objects (the gateway's path, nothing allocated per
 * datagram): the frame is checked whole by parseFrame's rules first — a malformed one throws
 * TunnelFrameError before any visit — then `visit` runs for each datagram in order. Returns the
 * frame's kind; a well-formed HELLO or ERROR is visited not at all (parseFrame reads those).
 */
export function visitDatagrams(b: Uint8Array, maxVersion: number, visit: DatagramVisit): FrameKindValue {
  const version = checkVersion(b, maxVersion);
  const kind = b[1];
  if (kind === FrameKind.DATA) {
    checkData(b);
    visit(b, 0, DATA_HEADER_LEN, b.length - DATA_HEADER_LEN);
    return FrameKind.DATA;
  }
  if (kind === FrameKind.BATCH) {
    const count = checkBatch(b, version);
    for (let i = 0, at = BATCH_HEADER_LEN; i < count; i++) {
      const len = be16(b, at);
      if (!visit(b, at, at + BATCH_RECORD_LEN, len)) break;
      at += BATCH_RECORD_LEN + len;
    }
    return FrameKind.BATCH;
  }
  return parseFrame(b, maxVersion).kind;
}

/** Writes a DATA header into `out[at..at+24)`; the caller puts the payload after it. */
export function writeDataHeader(out: Uint8Array, address: string | Uint8Array, port: number, ipId: number, version = TUNNEL_VERSION, at = 0): void {
  writeRecordHeader(out, at, address, port, ipId);
  out[at] = version;
  out[at + 1] = FrameKind.DATA;
}

/** A DATA header or a BATCH record header: the same 24 bytes but for the first two (version and kind, or the length). */
function writeRecordHeader(out: Uint8Array, at: number, address: string | Uint8Array, port: number, ipId: number, gidAt = 0): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new TunnelFrameError("bad_port", `UDP port ${port}`);
  put16(out, at + RECORD_PORT_OFF, port);
  if (typeof address === "string") out.set(addressToGid(address), at + RECORD_ADDRESS_OFF);
  else {
    if (address.length < gidAt + 16) throw new TunnelFrameError("bad_address", `a GID is 16 bytes, ${address.length - gidAt} given`);
    for (let i = 0; i < 16; i++) out[at + RECORD_ADDRESS_OFF + i] = address[gidAt + i]!;
  }
  put32(out, at + RECORD_IP_ID_OFF, ipId >>> 0);
}

/** A whole DATA frame (one copy of the payload pieces). */
export function emitData(address: string | Uint8Array, port: number, ipId: number, pieces: Uint8Array[], version = TUNNEL_VERSION): Uint8Array {
  let len = 0;
  for (const p of pieces) len += p.length;
  const out = new Uint8Array(DATA_HEADER_LEN + len);
  writeDataHeader(out, address, port, ipId, version);
  copyPieces(out, DATA_HEADER_LEN, pieces);
  return out;
}

/**
 * Builds version-2 frames out of datagrams, one copy each: `add` appends a datagram (its payload
 * as pieces) to the pending message, `take` returns it — a DATA frame when it holds one datagram,
 * else a BATCH — and starts the next. `add` returns false, taking nothing, when the datagram would
 * make the message longer than `maxFrame` or the batch longer than BATCH_MAX_COUNT: take, then add.
 */
export class BatchWriter {
  private buf: Uint8Array;
  private used = BATCH_HEADER_LEN;
  private n = 0;
  constructor(readonly maxFrame: number) {
    if (!Number.isInteger(maxFrame) || maxFrame < DATA_HEADER_LEN + MIN_ROCE_PAYLOAD) throw new RangeError(`bad max frame ${maxFrame}`);
    this.buf = new Uint8Array(Math.min(maxFrame, 64 * 1024));
  }
  /** Datagrams pending. */
  get count(): number {
    return this.n;
  }
  /** Bytes pending (the message `take` would return, give or take the BATCH header). */
  get bytes(): number {
    return this.n ? this.used : 0;
  }
  add(address: string | Uint8Array, port: number, ipId: number, pieces: Uint8Array[]): boolean {
    let len = 0;
    for (const p of pieces) len += p.length;
    const at = this.reserve(len);
    if (at < 0) return false;
    writeRecordHeader(this.buf, at, address, port, ipId);
    copyPieces(this.buf, at + BATCH_RECORD_LEN, pieces);
    this.commit(len);
    return true;
  }
  /**
   * `add` for one payload `src[srcAt, srcAt + len)` to or from the peer whose 16-byte GID is at
   * `gid[gidAt]`: nothing allocated (the gateway's path).
   */
  addFrom(gid: Uint8Array, gidAt: number, port: number, ipId: number, src: Uint8Array, srcAt: number, len: number): boolean {
    return this.addGather(gid, gidAt, port, ipId, src, srcAt, len, 0, 0, 0, 0);
  }
  /**
   * `addFrom` for a payload gathered from three ranges of `src` (a TX descriptor's headers,
   * payload and trailer, read in place from the device's memory): nothing allocated but the
   * view of a large range's copy.
   */
  addGather(
    gid: Uint8Array, gidAt: number, port: number, ipId: number, src: Uint8Array,
    a0: number, l0: number, a1: number, l1: number, a2: number, l2: number,
  ): boolean {
    const len = l0 + l1 + l2;
    const at = this.reserve(len);
    if (at < 0) return false;
    writeRecordHeader(this.buf, at, gid, port, ipId, gidAt);
    let o = at + BATCH_RECORD_LEN;
    o = copyRange(this.buf, o, src, a0, l0);
    o = copyRange(this.buf, o, src, a1, l1);
    copyRange(this.buf, o, src, a2, l2);
    this.commit(len);
    return true;
  }
  /** Where a record for `len` payload bytes goes (the buffer grown), or -1 when it belongs in the next message. */
  private reserve(len: number): number {
    if (len < MIN_ROCE_PAYLOAD || len > 0xffff) throw new TunnelFrameError("bad_length", `a datagram of ${len} bytes`);
    const end = this.used + BATCH_RECORD_LEN + len;
    if (this.n > 0 && (end > this.maxFrame || this.n === BATCH_MAX_COUNT)) return -1;
    if (end > this.buf.length) {
      const grown = new Uint8Array(Math.min(Math.max(end, this.buf.length * 2), Math.max(end, this.maxFrame)));
      grown.set(this.buf.subarray(0, this.used));
      this.buf = grown;
    }
    return this.used;
  }
  private commit(len: number): void {
    put16(this.buf, this.used, len);
    this.used += BATCH_RECORD_LEN + len;
    this.n++;
  }
  /**
   * Writes the pending message's frame header in place and returns where the frame starts in `buf`
   * (it ends at `used`): one datagram is a plain DATA frame (its record header becomes the DATA
   * header), more are a BATCH frame from offset 0.
   */
  private seal(): number {
    if (this.n === 1) {
      this.buf[BATCH_HEADER_LEN] = TUNNEL_VERSION_BATCH;
      this.buf[BATCH_HEADER_LEN + 1] = FrameKind.DATA;
      return BATCH_HEADER_LEN;
    }
    this.buf[0] = TUNNEL_VERSION_BATCH;
    this.buf[1] = FrameKind.BATCH;
    put16(this.buf, 2, this.n);
    return 0;
  }
  /** The pending message (undefined when nothing is pending); the writer starts a fresh one. */
  take(): Uint8Array | undefined {
    if (this.n === 0) return undefined;
    let out: Uint8Array;
    const start = this.seal();
    if (this.n === 1) out = this.buf.slice(start, this.used);
    else {
      if (this.used <= 4096) out = this.buf.slice(0, this.used);
      else {
        // a large batch leaves in the writer's own buffer (no second copy); the next gets a fresh one
        out = this.buf.subarray(0, this.used);
        this.buf = new Uint8Array(this.buf.length);
      }
    }
    this.used = BATCH_HEADER_LEN;
    this.n = 0;
    return out;
  }

  /** Buffers lent by `lend`, oldest first, and the ones given back, ready for reuse. */
  private readonly lent: Uint8Array[] = [];
  private readonly spare: Uint8Array[] = [];
  /**
   * `take` without a copy or a new buffer: the pending message as a view of the writer's own
   * buffer, which the writer does not touch again until `returned` gives it back; the next message
   * is written into a buffer given back earlier (or a new one). For a sender that says when it is
   * done with the bytes, in the order it was given them (`ws`'s send callback); `returned` gives
   * back the oldest lent buffer.
   */
  lend(): Uint8Array | undefined {
    if (this.n === 0) return undefined;
    const out = this.buf.subarray(this.seal(), this.used);
    this.lent.push(this.buf);
    this.buf = this.spare.pop() ?? new Uint8Array(this.buf.length);
    this.used = BATCH_HEADER_LEN;
    this.n = 0;
    return out;
  }
  /** The sender is done with the oldest buffer `lend` handed out: it may be written again. */
  returned(): void {
    const b = this.lent.shift();
    // keep one or two of the current size; a smaller one (from before the buffer grew) goes
    if (b && this.spare.length < 2 && b.length >= this.buf.length) this.spare.push(b);
  }
  /** Buffers lent and not given back yet. */
  get lentCount(): number {
    return this.lent.length;
  }
}

/** Copies `src[at, at + len)` to `out[o]`; returns the end. Short ranges byte by byte (no view to make). */
function copyRange(out: Uint8Array, o: number, src: Uint8Array, at: number, len: number): number {
  if (len > 64) out.set(src.subarray(at, at + len), o);
  else for (let i = 0; i < len; i++) out[o + i] = src[at + i]!;
  return o + len;
}

/** A whole BATCH frame of `datagrams` (version 2; one datagram or more). */
export function emitBatch(datagrams: { address: string | Uint8Array; port: number; ipId: number; payload: Uint8Array }[]): Uint8Array {
  if (datagrams.length < 1 || datagrams.length > BATCH_MAX_COUNT) throw new TunnelFrameError("bad_length", `BATCH of ${datagrams.length} datagrams`);
  let len = BATCH_HEADER_LEN;
  for (const d of datagrams) {
    if (d.payload.length < MIN_ROCE_PAYLOAD || d.payload.length > 0xffff) throw new TunnelFrameError("bad_length", `a datagram of ${d.payload.length} bytes`);
    len += BATCH_RECORD_LEN + d.payload.length;
  }
  const out = new Uint8Array(len);
  out[0] = TUNNEL_VERSION_BATCH;
  out[1] = FrameKind.BATCH;
  put16(out, 2, datagrams.length);
  let at = BATCH_HEADER_LEN;
  for (const d of datagrams) {
    writeRecordHeader(out, at, d.address, d.port, d.ipId);
    put16(out, at, d.payload.length);
    out.set(d.payload, at + BATCH_RECORD_LEN);
    at += BATCH_RECORD_LEN + d.payload.length;
  }
  return out;
}

export function emitHello(h: Omit<HelloFrame, "kind">): Uint8Array {
  const version = h.version ?? TUNNEL_VERSION;
  if (version !== TUNNEL_VERSION && version !== TUNNEL_VERSION_BATCH) throw new TunnelFrameError("bad_version", `HELLO version ${version}`);
  const v2 = version === TUNNEL_VERSION_BATCH;
  if (v2 && !(Number.isInteger(h.maxFrame) && h.maxFrame! >= DATA_HEADER_LEN + h.maxPayload && h.maxFrame! <= 0xffffffff)) {
    throw new TunnelFrameError("bad_length", `HELLO max frame ${h.maxFrame}`);
  }
  const out = new Uint8Array(v2 ? HELLO_V2_LEN : HELLO_LEN);
  out[0] = version;
  out[1] = FrameKind.HELLO;
  put16(out, 2, h.port);
  out.set(addressToGid(h.address), 4);
  out[20] = h.ipIdPolicy;
  out[21] = h.dontFragment ? 1 : 0;
  put16(out, 22, h.maxPayload);
  put32(out, 24, h.qpnBase);
  put32(out, 28, h.qpnCount);
  put32(out, 32, h.clientId);
  if (v2) put32(out, 36, h.maxFrame!);
  return out;
}

export function emitError(name: TunnelErrorName, reason: string, version = TUNNEL_VERSION): Uint8Array {
  let text = new TextEncoder().encode(reason);
  if (text.length > ERROR_REASON_MAX) {
    // cut at a character boundary
    let n = ERROR_REASON_MAX;
    while (n > 0 && (text[n]! & 0xc0) === 0x80) n--;
    text = text.subarray(0, n);
  }
  const out = new Uint8Array(ERROR_HEADER_LEN + text.length);
  out[0] = version;
  out[1] = FrameKind.ERROR;
  put16(out, 2, TUNNEL_ERRORS.indexOf(name));
  out.set(text, ERROR_HEADER_LEN);
  return out;
}

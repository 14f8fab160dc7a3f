// The tunnel frame codec (docs/TUNNEL.md): the binary WebSocket messages between a
// browser (or any) client and the softroce gateway. Parse is strict: a frame from
// the network is hostile, and every malformed one is a TunnelFrameError with a code,
// never any other exception. Emit builds exactly what parse accepts.
import { addressGidBytes, gidToAddress } from "../net/gid.js";
import { copyPieces } from "../net/bytes.js";

export const TUNNEL_VERSION = 1;

export const FrameKind = { DATA: 1, HELLO: 2, ERROR: 3 } as const;
export type FrameKindValue = (typeof FrameKind)[keyof typeof FrameKind];

/** DATA: version, kind, peer UDP port, peer address (16-byte GID), IPv4 ID, then the RoCEv2 UDP payload. */
export const DATA_HEADER_LEN = 24;
/** HELLO is fixed-size. */
export const HELLO_LEN = 36;
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

export type TunnelFrame = DataFrame | HelloFrame | ErrorFrame;

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

/** Parses one binary WebSocket message. Throws TunnelFrameError (only) when it is malformed. */
export function parseFrame(data: Uint8Array | ArrayBuffer | ArrayBufferView): TunnelFrame {
  const b = asBytes(data);
  if (b.length < 2) throw new TunnelFrameError("short", `${b.length} bytes, a frame has at least 2`);
  if (b[0] !== TUNNEL_VERSION) throw new TunnelFrameError("bad_version", `version ${b[0]}, expected ${TUNNEL_VERSION}`);
  switch (b[1]) {
    case FrameKind.DATA: {
      if (b.length < DATA_HEADER_LEN + MIN_ROCE_PAYLOAD) {
        throw new TunnelFrameError("short", `DATA of ${b.length} bytes, at least ${DATA_HEADER_LEN + MIN_ROCE_PAYLOAD}`);
      }
      const port = be16(b, 2);
      if (port === 0) throw new TunnelFrameError("bad_port", "DATA with UDP port 0");
      return {
        kind: FrameKind.DATA, port, address: gidToAddress(b, 4), ipId: be32(b, 20),
        payload: b.subarray(DATA_HEADER_LEN),
      };
    }
    case FrameKind.HELLO: {
      if (b.length !== HELLO_LEN) throw new TunnelFrameError("bad_length", `HELLO of ${b.length} bytes, expected ${HELLO_LEN}`);
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
      return {
        kind: FrameKind.HELLO, port, address: gidToAddress(b, 4), ipIdPolicy: b[20]!, dontFragment: (b[21]! & 1) !== 0,
        maxPayload, qpnBase, qpnCount, clientId: be32(b, 32),
      };
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
    default:
      throw new TunnelFrameError("bad_kind", `kind ${b[1]} unknown`);
  }
}

/** Writes a DATA header into `out[0..24)`; the caller puts the payload at out[24..]. */
export function writeDataHeader(out: Uint8Array, address: string | Uint8Array, port: number, ipId: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new TunnelFrameError("bad_port", `UDP port ${port}`);
  out[0] = TUNNEL_VERSION;
  out[1] = FrameKind.DATA;
  put16(out, 2, port);
  out.set(typeof address === "string" ? addressToGid(address) : address, 4);
  put32(out, 20, ipId >>> 0);
}

/** A whole DATA frame (one copy of the payload pieces). */
export function emitData(address: string | Uint8Array, port: number, ipId: number, pieces: Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of pieces) len += p.length;
  const out = new Uint8Array(DATA_HEADER_LEN + len);
  writeDataHeader(out, address, port, ipId);
  copyPieces(out, DATA_HEADER_LEN, pieces);
  return out;
}

export function emitHello(h: Omit<HelloFrame, "kind">): Uint8Array {
  const out = new Uint8Array(HELLO_LEN);
  out[0] = TUNNEL_VERSION;
  out[1] = FrameKind.HELLO;
  put16(out, 2, h.port);
  out.set(addressToGid(h.address), 4);
  out[20] = h.ipIdPolicy;
  out[21] = h.dontFragment ? 1 : 0;
  put16(out, 22, h.maxPayload);
  put32(out, 24, h.qpnBase);
  put32(out, 28, h.qpnCount);
  put32(out, 32, h.clientId);
  return out;
}

export function emitError(name: TunnelErrorName, reason: string): Uint8Array {
  let text = new TextEncoder().encode(reason);
  if (text.length > ERROR_REASON_MAX) {
    // cut at a character boundary
    let n = ERROR_REASON_MAX;
    while (n > 0 && (text[n]! & 0xc0) === 0x80) n--;
    text = text.subarray(0, n);
  }
  const out = new Uint8Array(ERROR_HEADER_LEN + text.length);
  out[0] = TUNNEL_VERSION;
  out[1] = FrameKind.ERROR;
  put16(out, 2, TUNNEL_ERRORS.indexOf(name));
  out.set(text, ERROR_HEADER_LEN);
  return out;
}

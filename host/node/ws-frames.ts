// RFC 6455 for the client side of the tunnel's WebSocket (host/node/ws-client.ts): the upgrade
// response's checks and a strict reader of the frames a server sends. Bytes from the server are
// hostile: every malformed input is a WsError with a code and the close code the client answers
// with (1002 protocol error, 1007 bad UTF-8, 1009 too big), never any other exception, and the
// reader never holds more than one frame (at most maxPayload) nor loops without consuming bytes.
import { createHash } from "node:crypto";

/** The GUID of RFC 6455 §1.3 that the server appends to the client's key. */
const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/** The most bytes the upgrade response's status line and headers may take. */
export const WS_MAX_HEADER = 16 * 1024;

export const WsOpcode = { CONTINUATION: 0, TEXT: 1, BINARY: 2, CLOSE: 8, PING: 9, PONG: 10 } as const;

export type WsErrorCode =
  | "bad_handshake" | "bad_status" | "bad_accept" | "bad_protocol" | "bad_extension" | "header_too_long"
  | "masked_frame" | "bad_rsv" | "bad_opcode" | "control_fragmented" | "control_too_long" | "bad_length" | "too_big"
  | "unexpected_continuation" | "expected_continuation" | "bad_utf8" | "bad_close";

/** A malformed upgrade response or server frame: `code` says which rule it broke, `closeCode` what the client closes with. */
export class WsError extends Error {
  constructor(readonly code: WsErrorCode, detail: string, readonly closeCode = 1002) {
    super(`websocket ${code}: ${detail}`);
    this.name = "WsError";
  }
}

/** The Sec-WebSocket-Accept a server must answer `key` with. */
export function wsAccept(key: string): string {
  return createHash("sha1").update(key + WS_GUID).digest("base64");
}

export interface UpgradeResponse {
  /** bytes of the status line and headers, through the empty line; frames start here */
  headerLen: number;
  /** the subprotocol the server picked ("" when none) */
  protocol: string;
}

const CRLFCRLF = [13, 10, 13, 10];

/**
 * The server's answer to the upgrade in `b` (the bytes read so far): undefined while the empty
 * line has not come, else the checked response (101, Upgrade: websocket, Connection: upgrade, the
 * Accept for `key`, a subprotocol among `offered`, no extension). Throws WsError.
 */
export function parseUpgradeResponse(b: Uint8Array, key: string, offered: readonly string[]): UpgradeResponse | undefined {
  let end = -1;
  const lim = Math.min(b.length, WS_MAX_HEADER);
  for (let i = 0; i + 3 < lim; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) {
      end = i;
      break;
    }
  }
  if (end < 0) {
    if (b.length >= WS_MAX_HEADER) throw new WsError("header_too_long", `no end of the upgrade response in ${WS_MAX_HEADER} bytes`);
    return undefined;
  }
  const text = Buffer.from(b.buffer, b.byteOffset, end).toString("latin1");
  const lines = text.split("\r\n");
  const status = /^HTTP\/1\.1 (\d{3})(?: (.*))?$/.exec(lines[0]!);
  if (!status) throw new WsError("bad_handshake", `status line ${JSON.stringify(lines[0]!.slice(0, 80))}`);
  if (status[1] !== "101") throw new WsError("bad_status", `the server answered ${status[1]} ${(status[2] ?? "").slice(0, 80)}`.trimEnd());
  const h = new Map<string, string>();
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i]!;
    const c = l.indexOf(":");
    if (c <= 0) throw new WsError("bad_handshake", `header line ${JSON.stringify(l.slice(0, 80))}`);
    const name = l.slice(0, c).trim().toLowerCase();
    const value = l.slice(c + 1).trim();
    h.set(name, h.has(name) ? `${h.get(name)}, ${value}` : value);
  }
  if ((h.get("upgrade") ?? "").toLowerCase() !== "websocket") throw new WsError("bad_handshake", "no Upgrade: websocket");
  if (!(h.get("connection") ?? "").toLowerCase().split(",").some((t) => t.trim() === "upgrade")) throw new WsError("bad_handshake", "no Connection: upgrade");
  if (h.get("sec-websocket-accept") !== wsAccept(key)) throw new WsError("bad_accept", "Sec-WebSocket-Accept does not match the key");
  const protocol = h.get("sec-websocket-protocol") ?? "";
  if (protocol !== "" && !offered.includes(protocol)) throw new WsError("bad_protocol", `the server picked ${JSON.stringify(protocol.slice(0, 80))}, not offered`);
  if (h.has("sec-websocket-extensions")) throw new WsError("bad_extension", "the server named an extension none was offered");
  return { headerLen: end + 4, protocol };
}

/** What a WsFrameReader finds; views passed to it are valid during the call only. */
export interface WsFrameSink {
  message(binary: boolean, data: Uint8Array): void;
  ping(data: Uint8Array): void;
  pong(data: Uint8Array): void;
  /** the server's close frame (code undefined: it had no body); after it the reader takes no more frames */
  closed(code: number | undefined, reason: string): void;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
/** Decodes UTF-8, or throws WsError bad_utf8 (close 1007). */
export function wsUtf8(b: Uint8Array): string {
  try {
    return utf8.decode(b);
  } catch {
    throw new WsError("bad_utf8", "text is not UTF-8", 1007);
  }
}

/** The close codes a peer may send (RFC 6455 §7.4, and the IANA registry as `ws` takes it). */
export function closeCodeOk(c: number): boolean {
  return (c >= 1000 && c <= 1014 && c !== 1004 && c !== 1005 && c !== 1006) || (c >= 3000 && c <= 4999);
}

/**
 * Reads a server's frames: complete frames in a chunk are handed on in place (no copy); a frame
 * cut by the end of a chunk is held (one copy) until it is whole; a fragmented message is
 * assembled (one copy). Server frames are unmasked, have no RSV bits, control frames are whole
 * and at most 125 bytes, a message is at most maxPayload bytes.
 */
export class WsFrameReader {
  private held: Uint8Array = new Uint8Array(0);
  private heldLen = 0;
  /** the held frame's full length once its header is in (0: not known yet) */
  private heldNeed = 0;
  private msg: Uint8Array | undefined;
  private msgLen = 0;
  private msgBinary = false;
  private closed = false;

  constructor(private readonly sink: WsFrameSink, readonly maxPayload: number) {}

  /** Bytes from the server; throws WsError (after which the reader must not be used again). */
  push(c: Uint8Array): void {
    let at = 0;
    if (this.heldLen > 0) {
      at = this.fillHeld(c);
      if (this.heldNeed === 0 || this.heldLen < this.heldNeed) return; // all of c taken, frame not whole yet
      const f = this.held.subarray(0, this.heldLen);
      this.heldLen = 0;
      this.heldNeed = 0;
      this.frame(f, 0);
    }
    while (at < c.length && !this.closed) {
      const len = this.frameLength(c, at, c.length - at);
      if (len < 0 || at + len > c.length) {
        this.hold(c, at, len < 0 ? 0 : len);
        return;
      }
      this.frame(c, at);
      at += len;
    }
  }

  /** The whole length (header + payload) of the frame at b[at], checking its header; -1 when the header is not all in. */
  private frameLength(b: Uint8Array, at: number, n: number): number {
    if (n < 2) return -1;
    const b0 = b[at]!, b1 = b[at + 1]!;
    if (b0 & 0x70) throw new WsError("bad_rsv", `RSV bits ${(b0 >> 4) & 7} set, no extension was agreed`);
    const op = b0 & 0x0f;
    if (op > 2 && op < 8 || op > 10) throw new WsError("bad_opcode", `opcode ${op}`);
    if (b1 & 0x80) throw new WsError("masked_frame", "a server's frame is masked");
    let len = b1 & 0x7f;
    let h = 2;
    if (op >= 8) {
      if (!(b0 & 0x80)) throw new WsError("control_fragmented", `control frame ${op} without FIN`);
      if (len > 125) throw new WsError("control_too_long", `control frame ${op} of ${len === 126 ? "a 16-bit" : "a 64-bit"} length`);
    } else if (len === 126) {
      if (n < 4) return -1;
      len = (b[at + 2]! << 8) | b[at + 3]!;
      h = 4;
    } else if (len === 127) {
      if (n < 10) return -1;
      const hi = ((b[at + 2]! << 24) | (b[at + 3]! << 16) | (b[at + 4]! << 8) | b[at + 5]!) >>> 0;
      if (hi & 0x80000000) throw new WsError("bad_length", "64-bit length with the top bit set");
      if (hi !== 0) throw new WsError("too_big", `frame of ${hi} * 2^32 bytes`, 1009);
      len = ((b[at + 6]! << 24) | (b[at + 7]! << 16) | (b[at + 8]! << 8) | b[at + 9]!) >>> 0;
      h = 10;
    }
    if (op < 8 && (op === 0 ? this.msgLen : 0) + len > this.maxPayload) {
      throw new WsError("too_big", `message of ${(op === 0 ? this.msgLen : 0) + len} bytes, more than ${this.maxPayload}`, 1009);
    }
    return h + len;
  }

  /** Keeps b[at..] (a frame's start; `len` its whole length when known) until the rest comes. */
  private hold(b: Uint8Array, at: number, len: number): void {
    const n = b.length - at;
    const cap = Math.max(len, 16, n);
    if (this.held.length < cap) this.held = new Uint8Array(Math.max(cap, Math.min(this.held.length * 2, this.maxPayload + 14)));
    this.held.set(b.subarray(at), 0);
    this.heldLen = n;
    this.heldNeed = len;
  }

  /** Moves bytes of c into the held frame (its header first, then up to its length); returns how many were taken. */
  private fillHeld(c: Uint8Array): number {
    let at = 0;
    while (this.heldNeed === 0) {
      if (at >= c.length) return at;
      // one byte at a time until the header is whole (at most 10 bytes)
      if (this.heldLen >= this.held.length) this.grow(this.heldLen + 16);
      this.held[this.heldLen++] = c[at++]!;
      const len = this.frameLength(this.held, 0, this.heldLen);
      if (len >= 0) {
        this.heldNeed = len;
        if (this.held.length < len) this.grow(len);
      }
    }
    const take = Math.min(this.heldNeed - this.heldLen, c.length - at);
    this.held.set(c.subarray(at, at + take), this.heldLen);
    this.heldLen += take;
    return at + take;
  }

  private grow(n: number): void {
    const g = new Uint8Array(Math.max(n, 16));
    g.set(this.held.subarray(0, this.heldLen));
    this.held = g;
  }

  /** One whole frame at b[at] (its header already checked by frameLength). */
  private frame(b: Uint8Array, at: number): void {
    const b0 = b[at]!;
    const fin = (b0 & 0x80) !== 0;
    const op = b0 & 0x0f;
    let len = b[at + 1]! & 0x7f;
    let p = at + 2;
    if (len === 126) {
      len = (b[at + 2]! << 8) | b[at + 3]!;
      p = at + 4;
    } else if (len === 127) {
      len = ((b[at + 6]! << 24) | (b[at + 7]! << 16) | (b[at + 8]! << 8) | b[at + 9]!) >>> 0;
      p = at + 10;
    }
    const data = b.subarray(p, p + len);
    switch (op) {
      case WsOpcode.CONTINUATION: {
        if (!this.msg) throw new WsError("unexpected_continuation", "a continuation frame with no message started");
        if (this.msg.length < this.msgLen + len) {
          const g = new Uint8Array(Math.min(this.maxPayload, Math.max(this.msgLen + len, this.msg.length * 2)));
          g.set(this.msg.subarray(0, this.msgLen));
          this.msg = g;
        }
        this.msg.set(data, this.msgLen);
        this.msgLen += len;
        if (fin) {
          const m = this.msg.subarray(0, this.msgLen);
          const binary = this.msgBinary;
          this.msg = undefined;
          this.msgLen = 0;
          this.deliver(binary, m);
        }
        return;
      }
      case WsOpcode.TEXT:
      case WsOpcode.BINARY:
        if (this.msg) throw new WsError("expected_continuation", `a new message (opcode ${op}) inside a fragmented one`);
        if (fin) return this.deliver(op === WsOpcode.BINARY, data);
        this.msg = new Uint8Array(Math.max(len, 1024));
        this.msg.set(data);
        this.msgLen = len;
        this.msgBinary = op === WsOpcode.BINARY;
        return;
      case WsOpcode.CLOSE: {
        if (len === 1) throw new WsError("bad_close", "a close frame with a 1-byte body");
        this.closed = true;
        if (len === 0) return this.sink.closed(undefined, "");
        const code = (data[0]! << 8) | data[1]!;
        if (!closeCodeOk(code)) throw new WsError("bad_close", `close code ${code}`);
        return this.sink.closed(code, wsUtf8(data.subarray(2)));
      }
      case WsOpcode.PING:
        return this.sink.ping(data);
      default:
        return this.sink.pong(data);
    }
  }

  private deliver(binary: boolean, data: Uint8Array): void {
    if (!binary) wsUtf8(data); // checked here; the sink decodes what it keeps
    this.sink.message(binary, data);
  }
}

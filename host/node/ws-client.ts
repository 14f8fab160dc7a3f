// A minimal RFC 6455 client over a plain TCP socket (ws:// only), for the Node tunnel device's
// WebSocket to the gateway (host/node/tunnel-socket.ts): what TunnelLink needs of a WebSocket
// (WebSocketLike, with sendCallsBack) and nothing more, on the round trip's path:
// - reads go through net.Socket's `onread` (one reused buffer, no stream machinery, no Buffer
//   per read); a binary message that arrives whole in one read is handed to the listener as a view
//   of that buffer, valid during the call only (TunnelLink copies what it keeps);
// - each message leaves as one write of one buffer (header and masked payload; masked with a
//   fresh random key as a client must, RFC 6455 §5.3), TCP_NODELAY set;
// - the server's frames are parsed strictly (ws-frames.ts): a malformed one is an "error" event
//   carrying a WsError, a close with its close code, and the socket ended — never an exception
//   out of the socket's callbacks.
// Text messages are decoded (strings); ping is answered with pong; close is answered and ends the socket.
import net from "node:net";
import { randomBytes, randomFillSync } from "node:crypto";
import { WsError, WsFrameReader, WsOpcode, parseUpgradeResponse, wsUtf8, type WsFrameSink } from "./ws-frames.js";

export interface WsClientOptions {
  /** subprotocols offered (Sec-WebSocket-Protocol) */
  protocols?: string[];
  /** extra request headers */
  headers?: Record<string, string>;
  /** the largest message taken from the server (default 64 MiB: the gateway's largest maxFrameBytes) */
  maxPayload?: number;
  /** connect + upgrade must be done within this (default 10000 ms) */
  handshakeTimeoutMs?: number;
  /** how long close() waits for the server's close frame before it drops the socket (default 2000 ms) */
  closeTimeoutMs?: number;
}

type Listener = (ev: any) => void;

const CONNECTING = 0, OPEN = 1, CLOSING = 2, CLOSED = 3;
/** The socket's read buffer: a read takes at most this much; larger messages are assembled. */
const READ_BUFFER = 256 * 1024;
/** Write buffers kept for reuse once written. */
const SPARE_WRITE_BUFFERS = 4;
/** Where the payload starts in a write buffer: 4-aligned after the longest header (14 bytes), so masking runs on 32-bit words. */
const PAYLOAD_AT = 16;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

export class WsClient implements WsFrameSink {
  static readonly CONNECTING = CONNECTING;
  static readonly OPEN = OPEN;
  static readonly CLOSING = CLOSING;
  static readonly CLOSED = CLOSED;
  readyState: number = CONNECTING;
  /** kept for WebSocketLike; binary messages are always Uint8Array views */
  binaryType = "arraybuffer";
  /** the subprotocol the server picked ("" when none) */
  protocol = "";
  /** send(data, done) calls done in order once data may be reused (here: at once, the bytes are copied) */
  readonly sendCallsBack = true as const;
  /** frames and bytes each way, and the WsError that ended the connection, if one did */
  readonly stats = { framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0, reads: 0, pings: 0 };
  error: WsError | undefined;

  private readonly socket: net.Socket;
  private readonly listeners = new Map<string, Listener[]>();
  private readonly key = randomBytes(16).toString("base64");
  private readonly offered: string[];
  private readonly reader: WsFrameReader;
  private hs: Uint8Array | undefined = new Uint8Array(0);
  private readonly spare: Buffer[] = [];
  private readonly rand = Buffer.allocUnsafe(4096);
  private randAt = 4096;
  private closeSent = false;
  private closeEmitted = false;
  private closeCode = 1006;
  private closeReason = "";
  private timer: NodeJS.Timeout | undefined;
  private readonly closeTimeoutMs: number;
  private readonly msgEv: { type: "message"; data: unknown } = { type: "message", data: undefined };

  constructor(url: string, opts: WsClientOptions = {}) {
    const u = new URL(url);
    if (u.protocol !== "ws:") throw new TypeError(`WsClient: ${u.protocol} URLs are not supported (ws: only)`);
    this.offered = opts.protocols ?? [];
    this.closeTimeoutMs = opts.closeTimeoutMs ?? 2000;
    this.reader = new WsFrameReader(this, opts.maxPayload ?? 64 << 20);
    const host = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
    const port = Number(u.port || 80);
    const buf = Buffer.allocUnsafe(READ_BUFFER);
    this.socket = net.connect({ host, port, noDelay: true, onread: { buffer: buf, callback: (n: number, b: Buffer) => (this.onRead(b.subarray(0, n)), true) } });
    this.socket.setNoDelay(true);
    this.socket.on("connect", () => {
      const lines = [
        `GET ${u.pathname}${u.search} HTTP/1.1`, `Host: ${u.host}`, "Upgrade: websocket", "Connection: Upgrade",
        `Sec-WebSocket-Key: ${this.key}`, "Sec-WebSocket-Version: 13",
      ];
      if (this.offered.length) lines.push(`Sec-WebSocket-Protocol: ${this.offered.join(", ")}`);
      for (const [k, v] of Object.entries(opts.headers ?? {})) {
        if (/[\r\n]/.test(k) || /[\r\n]/.test(v)) return this.fail(new WsError("bad_handshake", `header ${JSON.stringify(k)} has a line break`));
        lines.push(`${k}: ${v}`);
      }
      this.socket.write(`${lines.join("\r\n")}\r\n\r\n`, "latin1");
    });
    this.socket.on("error", (e) => {
      if (this.readyState === CLOSED) return;
      this.emit("error", { type: "error", error: e, message: e.message });
    });
    this.socket.on("close", () => this.finish());
    this.timer = setTimeout(() => {
      if (this.readyState === CONNECTING) this.fail(new WsError("bad_handshake", "no upgrade in time"));
    }, opts.handshakeTimeoutMs ?? 10000);
  }

  get bufferedAmount(): number {
    return this.socket.writableLength;
  }

  addEventListener(type: string, fn: Listener): void {
    const l = this.listeners.get(type);
    if (l) l.push(fn);
    else this.listeners.set(type, [fn]);
  }

  removeEventListener(type: string, fn: Listener): void {
    const l = this.listeners.get(type);
    const i = l?.indexOf(fn) ?? -1;
    if (i >= 0) l!.splice(i, 1);
  }

  private emit(type: string, ev: unknown): void {
    const l = this.listeners.get(type);
    if (!l) return;
    // the listeners there when the event came (one added by a listener hears the next event, as with EventEmitter)
    for (let i = 0, n = l.length; i < n && i < l.length; i++) {
      try {
        l[i]!(ev);
      } catch (e) {
        // a listener's exception is its own; it must not break the socket's state
        queueMicrotask(() => { throw e; });
      }
    }
  }

  /** One binary message (a Uint8Array; strings as text); `done` once `data` may be reused: at once, it is copied. */
  send(data: Uint8Array | string, done?: () => void): void {
    if (this.readyState !== OPEN) {
      if (this.readyState === CONNECTING) throw new Error("WebSocket is not open: readyState 0 (CONNECTING)");
      if (done) queueMicrotask(done);
      return;
    }
    if (typeof data === "string") this.writeFrame(WsOpcode.TEXT, Buffer.from(data, "utf8"));
    else this.writeFrame(WsOpcode.BINARY, data);
    done?.();
  }

  /** Starts the closing handshake (CONNECTING: drops the connection). */
  close(code = 1000, reason = ""): void {
    if (this.readyState === CLOSED || this.readyState === CLOSING) return;
    if (this.readyState === CONNECTING) {
      this.readyState = CLOSING;
      this.socket.destroy();
      return;
    }
    if (code !== 1000 && !(code >= 3000 && code <= 4999)) throw new RangeError(`close code ${code}: 1000 or 3000-4999`);
    const r = Buffer.from(reason, "utf8");
    if (r.length > 123) throw new RangeError("close reason longer than 123 bytes");
    this.sendClose(code, r);
    this.readyState = CLOSING;
    this.armCloseTimer();
  }

  private sendClose(code: number, reason: Uint8Array): void {
    if (this.closeSent || this.socket.destroyed) return;
    this.closeSent = true;
    const body = Buffer.allocUnsafe(2 + reason.length);
    body.writeUInt16BE(code, 0);
    body.set(reason, 2);
    this.writeFrame(WsOpcode.CLOSE, body);
  }

  private armCloseTimer(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.socket.destroy(), this.closeTimeoutMs);
    this.timer.unref?.();
  }

  /** A masked frame in one buffer, one write. */
  private writeFrame(op: number, data: Uint8Array): void {
    const len = data.length;
    const h = len < 126 ? 6 : len < 65536 ? 8 : 14;
    const need = PAYLOAD_AT + len;
    let buf = this.spare.pop();
    if (!buf || buf.length < need) buf = Buffer.allocUnsafeSlow(Math.max(4096, 2 ** Math.ceil(Math.log2(need))));
    const at = PAYLOAD_AT - h;
    buf[at] = 0x80 | op;
    if (len < 126) buf[at + 1] = 0x80 | len;
    else if (len < 65536) {
      buf[at + 1] = 0x80 | 126;
      buf.writeUInt16BE(len, at + 2);
    } else {
      buf[at + 1] = 0x80 | 127;
      buf.writeUInt32BE(0, at + 2);
      buf.writeUInt32BE(len, at + 6);
    }
    if (this.randAt + 4 > this.rand.length) {
      randomFillSync(this.rand);
      this.randAt = 0;
    }
    const k0 = this.rand[this.randAt]!, k1 = this.rand[this.randAt + 1]!, k2 = this.rand[this.randAt + 2]!, k3 = this.rand[this.randAt + 3]!;
    this.randAt += 4;
    buf[PAYLOAD_AT - 4] = k0;
    buf[PAYLOAD_AT - 3] = k1;
    buf[PAYLOAD_AT - 2] = k2;
    buf[PAYLOAD_AT - 1] = k3;
    buf.set(data, PAYLOAD_AT);
    // the payload starts 4-aligned in a buffer of its own (allocUnsafeSlow): long ones XOR 32-bit words, then the tail
    let i = 0;
    if (len >= 256) {
      const words = len >>> 2;
      const w = new Uint32Array(buf.buffer, buf.byteOffset + PAYLOAD_AT, words);
      const k = LITTLE_ENDIAN ? (k0 | (k1 << 8) | (k2 << 16) | (k3 << 24)) >>> 0 : ((k0 << 24) | (k1 << 16) | (k2 << 8) | k3) >>> 0;
      for (let j = 0; j < words; j++) w[j]! ^= k;
      i = words << 2;
    }
    for (; i < len; i++) buf[PAYLOAD_AT + i]! ^= (i & 3) === 0 ? k0 : (i & 3) === 1 ? k1 : (i & 3) === 2 ? k2 : k3;
    this.stats.framesOut++;
    this.stats.bytesOut += h + len;
    const b = buf;
    this.socket.write(buf.subarray(at, PAYLOAD_AT + len), () => {
      if (this.spare.length < SPARE_WRITE_BUFFERS) this.spare.push(b);
    });
  }

  /** Bytes from the socket (onread: `b` is the reused read buffer). */
  private onRead(b: Buffer): void {
    this.stats.reads++;
    this.stats.bytesIn += b.length;
    if (this.readyState === CLOSED || this.error) return;
    try {
      if (this.hs) {
        const all = this.hs.length ? Buffer.concat([this.hs, b]) : b;
        const r = parseUpgradeResponse(all, this.key, this.offered);
        if (!r) {
          this.hs = Uint8Array.from(all);
          return;
        }
        this.hs = undefined;
        this.protocol = r.protocol;
        this.readyState = OPEN;
        clearTimeout(this.timer);
        this.timer = undefined;
        this.emit("open", { type: "open" });
        if (all.length > r.headerLen && this.readyState === OPEN) this.reader.push(all.subarray(r.headerLen));
        return;
      }
      this.reader.push(b);
    } catch (e) {
      this.fail(e instanceof WsError ? e : new WsError("bad_handshake", String(e)));
    }
  }

  /** A protocol error: "error" with the WsError, our close frame with its code, the socket ended. */
  private fail(e: WsError): void {
    if (this.error || this.readyState === CLOSED) return;
    this.error = e;
    this.closeCode = this.readyState === CONNECTING ? 1006 : e.closeCode;
    this.closeReason = e.code;
    this.emit("error", { type: "error", error: e, message: e.message });
    if (this.readyState === OPEN) this.sendClose(e.closeCode, Buffer.alloc(0));
    this.readyState = CLOSING;
    this.socket.end();
    this.armCloseTimer();
  }

  // ---- WsFrameSink (the reader's findings)
  message(binary: boolean, data: Uint8Array): void {
    this.stats.framesIn++;
    if (this.readyState !== OPEN) return;
    // one event object, reused: listeners read it during the call
    this.msgEv.data = binary ? data : wsUtf8(data);
    this.emit("message", this.msgEv);
    this.msgEv.data = undefined;
  }

  ping(data: Uint8Array): void {
    this.stats.pings++;
    if (this.readyState === OPEN) this.writeFrame(WsOpcode.PONG, data);
  }

  pong(): void {}

  closed(code: number | undefined, reason: string): void {
    this.closeCode = code ?? 1005;
    this.closeReason = reason;
    // answer with the same code (none: an empty close), then end our side
    if (!this.closeSent) {
      this.closeSent = true;
      const body = code === undefined ? Buffer.alloc(0) : Buffer.from([code >> 8, code & 0xff]);
      this.writeFrame(WsOpcode.CLOSE, body);
    }
    this.readyState = CLOSING;
    this.socket.end();
    this.armCloseTimer();
  }

  private finish(): void {
    if (this.closeEmitted) return;
    this.closeEmitted = true;
    clearTimeout(this.timer);
    this.readyState = CLOSED;
    this.emit("close", { type: "close", code: this.closeCode, reason: this.closeReason, wasClean: this.closeCode !== 1006 && !this.error });
  }
}

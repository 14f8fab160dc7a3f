// A Link over a WebSocket to the softroce gateway (docs/TUNNEL.md). Works with the
// browser's WebSocket and with `ws` in Node: only send, bufferedAmount, readyState,
// binaryType, close and addEventListener are used. The HELLO gives the device its
// identity (GID = gateway address, local port = gateway UDP port, QPN base). Version 1:
// every datagram becomes one DATA frame; version 2 (the HELLO says so, when the WebSocket
// offered TUNNEL_SUBPROTOCOL_V2): the datagrams the device sends in one turn (its drains of
// its TX ring, and what the continuations of its completions post: deferFlush) leave as one BATCH
// frame, gathered with one copy each. Backpressure comes from bufferedAmount; a lost
// tunnel behaves as a link going down (datagrams are dropped, RC retries run out).
import { IP_ID_UNKNOWN, type Link, type OutgoingDatagram, type PacketPort } from "../link/port.js";
import { Rxm, Rxr, RxrFlag, Txd } from "../abi/index.js";
import { isV4MappedGid, parseGid } from "../net/gid.js";
import {
  BatchWriter, DATA_HEADER_LEN, FrameKind, RECORD_ADDRESS_OFF, TUNNEL_IP_ID_UNKNOWN, TUNNEL_VERSION_BATCH, TunnelFrameError, emitData,
  parseFrame, recordIpId, recordPort, visitDatagrams, writeDataHeader, type DataFrame, type HelloFrame,
} from "./frames.js";

/** The part of WebSocket this link needs (browser WebSocket and `ws` both have it). */
export interface WebSocketLike {
  binaryType: string;
  readonly bufferedAmount: number;
  readonly readyState: number;
  send(data: Uint8Array): void;
  /**
   * true: `send(data, done)` calls `done` once it no longer needs `data`, in the order sent (Node's
   * `ws`, as host/node/tunnel-socket.ts makes it): the link then sends its frame buffers without
   * copying and reuses them. Absent (browsers, which copy on send): a frame is a fresh copy.
   */
  readonly sendCallsBack?: boolean;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (ev: any) => void): void;
}

export interface TunnelLinkOptions {
  /** bytes queued in the WebSocket before the link applies backpressure (default 1 MiB) */
  highWaterMark?: number;
  /** how long to wait for the HELLO (default 5000 ms) */
  helloTimeoutMs?: number;
  /**
   * The device's in-flight budget toward its peers through this tunnel (Link.inFlightPackets and
   * Link.inFlightBudget): unacknowledged RC request packets and bytes (defaults
   * TUNNEL_IN_FLIGHT_PACKETS, TUNNEL_IN_FLIGHT_BYTES; 0: no limit). The peer behind the gateway
   * has a socket receive buffer the link cannot see: without a bound, a burst larger than it is
   * dropped there and only the ACK timeout recovers it.
   */
  inFlightPackets?: number;
  inFlightBytes?: number;
}

type CallbackSend = { send(data: Uint8Array, done: () => void): void };

/** Receive batch records (and slots) a TunnelLink carves in the device's memory. */
const RX_RECORDS = 64;

/** TunnelLinkOptions.inFlightPackets's default: as many as a Node UDP device keeps out (udp.ts). */
export const TUNNEL_IN_FLIGHT_PACKETS = 128;
/** TunnelLinkOptions.inFlightBytes's default: well inside a Linux peer's default-sized receive buffer. */
export const TUNNEL_IN_FLIGHT_BYTES = 1 << 20;

const OPEN = 1;

const nextTick = (globalThis as { process?: { nextTick?: (f: () => void) => void } }).process?.nextTick;

export class TunnelLink implements Link {
  port: PacketPort | undefined;
  /** datagrams sent and received; frames: WebSocket messages sent and received (fewer with version 2's BATCH) */
  readonly stats = { sent: 0, received: 0, framesSent: 0, framesReceived: 0, droppedDown: 0, badFrames: 0, errors: 0, backpressured: 0 };
  /** version 2: the datagrams of this turn, one BATCH when it ends */
  private readonly batch: BatchWriter | undefined;
  /**
   * When what the device sent in this turn leaves (turnEnd): once the promise continuations its
   * receive set off have run (Node: a nextTick queued from a microtask runs after the whole
   * microtask queue), so an ACK the receive produced leaves in one BATCH with the request the
   * application posts on seeing the completion, one frame and one wake-up of the gateway and of the
   * peer instead of two. Without nextTick (browsers): at the end of the current microtask. Made
   * once: nothing is allocated per turn.
   */
  private readonly afterMicrotasks: () => void = nextTick ? () => nextTick(this.turnEnd) : () => this.turnEnd();
  private turnEndQueued = false;
  /** The port's deferred flush (Link.deferFlush), run at the turn's end before the BATCH leaves. */
  private portFlush: (() => void) | undefined;
  /** ERROR frames from the gateway, newest last (at most 32 kept). */
  readonly gatewayErrors: { name: string; reason: string }[] = [];
  private down = false;
  private blocked = false;
  private readonly highWater: number;
  private readonly gwGid: string;
  /** Called once when the tunnel closes. */
  onDown: ((why: string) => void) | undefined;
  readonly inFlightPackets: number;
  readonly inFlightBudget: number;

  private constructor(readonly ws: WebSocketLike, readonly hello: HelloFrame, opts: TunnelLinkOptions) {
    this.highWater = opts.highWaterMark ?? 1 << 20;
    this.inFlightPackets = opts.inFlightPackets ?? TUNNEL_IN_FLIGHT_PACKETS;
    this.inFlightBudget = opts.inFlightBytes ?? TUNNEL_IN_FLIGHT_BYTES;

    this.gwGid = hello.address;
    if (hello.version === TUNNEL_VERSION_BATCH) this.batch = new BatchWriter(hello.maxFrame!);
    ws.addEventListener("message", (ev: { data: unknown }) => this.onMessage(ev.data));
    ws.addEventListener("close", (ev: { code?: number; reason?: string }) => this.goDown(`closed (${ev.code ?? "?"} ${ev.reason ?? ""})`));
    ws.addEventListener("error", () => this.goDown("error"));
  }

  /** Waits for the socket to open and the gateway's HELLO; rejects on close, a bad first frame or timeout. */
  static connect(ws: WebSocketLike, opts: TunnelLinkOptions = {}): Promise<TunnelLink> {
    for (const k of ["inFlightPackets", "inFlightBytes"] as const) {
      const v = opts[k];
      if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > 0xffffffff)) {
        try { ws.close(); } catch { /* already closed */ }
        return Promise.reject(new RangeError(`bad ${k} ${v} (a whole number, 0: no limit)`));
      }
    }
    ws.binaryType = "arraybuffer";
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (e: Error | undefined, link?: TunnelLink) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (e) {
          reject(e);
          try { ws.close(); } catch { /* already closed */ }
        } else resolve(link!);
      };
      const timer = setTimeout(() => finish(new Error("tunnel: no HELLO from the gateway")), opts.helloTimeoutMs ?? 5000);
      ws.addEventListener("message", (ev: { data: unknown }) => {
        if (done) return;
        try {
          const f = parseFrame(ev.data as ArrayBuffer);
          if (f.kind === FrameKind.HELLO) return finish(undefined, new TunnelLink(ws, f, opts));
          if (f.kind === FrameKind.ERROR) return finish(new Error(`tunnel: gateway error ${f.name}: ${f.reason}`));
          finish(new Error("tunnel: the first frame is not a HELLO"));
        } catch (e) {
          finish(e instanceof TunnelFrameError ? e : new Error("tunnel: bad first frame"));
        }
      });
      ws.addEventListener("close", (ev: { code?: number; reason?: string }) =>
        finish(new Error(`tunnel: closed before HELLO (${ev.code ?? "?"} ${ev.reason ?? ""})`)));
      ws.addEventListener("error", () => finish(new Error("tunnel: WebSocket error (refused at upgrade?)")));
    });
  }

  get isDown(): boolean {
    return this.down;
  }

  /**
   * Link.holdAcks (version 2): the plain ACKs of a received batch wait for the port's deferred flush
   * (deferFlush below) and follow what the application posts in reaction to its completions, in
   * the same BATCH frame. The gateway forwards a frame's datagrams in order in one sendmmsg, and a
   * peer that polls its socket can take the first of them alone: with the ACK first it spent a
   * turn on the ACK before it saw the request (in the gateway bench's traces, 600–850 of 1500
   * ping-pong round trips reached the target as two batches). false: each ACK goes into the frame
   * as the device makes it.
   */
  ackAfterRequests = true;
  get holdAcks(): boolean {
    return this.batch !== undefined && this.ackAfterRequests;
  }
  /**
   * Link.deferFlush: after the promise continuations of this turn (Node), or at the end of this
   * microtask (browsers). The port's flush has waited for them already, so what it hands over
   * leaves in the same call, not after a second wait of the link's own.
   */
  deferFlush(fn: () => void): void {
    this.portFlush = fn;
    this.queueTurnEnd();
  }

  private queueTurnEnd(): void {
    if (this.turnEndQueued) return;
    this.turnEndQueued = true;
    queueMicrotask(this.afterMicrotasks);
  }
  /** The turn's end: the port's deferred flush (its TX ring into the BATCH), then the BATCH. */
  private readonly turnEnd = (): void => {
    try {
      const fn = this.portFlush;
      this.portFlush = undefined;
      fn?.();
      this.flushBatch();
    } finally {
      // cleared last: what the port's flush hands over joins this BATCH, not a turn end of its own
      this.turnEndQueued = false;
    }
  };

  /** The device's TX ring and memory, for sendRing (linear memory does not grow once the device is open). */
  private ring: { data: number; mask: number; slot: number; u8: Uint8Array; dv: DataView } | undefined;

  /** Batched receive into the device's memory (rx_batch), when the core has it; else one `port.receive` per datagram. */
  private rx: { records: number; count: number; slots: number; slotSize: number; used: number } | undefined;

  attachPort(port: PacketPort): void {
    this.port = port;
    // receive slots first: carving them may grow the memory, and the views come after
    const area = port.rxBatchArea(RX_RECORDS, RX_RECORDS, Math.max(this.hello.maxPayload, 64));
    const r = port.ringLayout();
    const buffer = port.memory.buffer;
    this.ring = { data: r.data, mask: r.cap - 1, slot: r.slot, u8: new Uint8Array(buffer), dv: new DataView(buffer) };
    if (!area) return;
    this.rx = { records: area.records, count: area.recordCount, slots: area.slots, slotSize: area.slotSize, used: 0 };
    // what every received datagram shares: to the HELLO's address and port, DF, TTL/TOS/flow label unseen
    const { u8, dv } = this.ring;
    const dst = parseGid(this.gwGid.includes(":") ? this.gwGid : `::ffff:${this.gwGid}`);
    for (let i = 0; i < area.recordCount; i++) {
      const rec = area.records + i * Rxr.SIZE;
      u8.set(dst, rec + Rxm.DST);
      dv.setUint32(rec + Rxm.DST_PORT, this.hello.port, true);
      dv.setUint32(rec + Rxm.IP_FLAGS, 2, true);
      dv.setUint32(rec + Rxm.TTL, 0, true);
      dv.setUint32(rec + Rxm.TOS, 0, true);
      dv.setUint32(rec + Rxm.FLOW_LABEL, 0, true);
      dv.setUint32(rec + Rxr.ID_HINT, 0, true);
      dv.setUint32(rec + Rxr.DATA, area.slots + i * area.slotSize, true);
    }
  }

  /** One received datagram into the next batch record (visitDatagrams' visitor); a full batch goes to the device. */
  private readonly toRecord = (b: Uint8Array, at: number, payloadAt: number, len: number): boolean => {
    const rx = this.rx!;
    const { u8, dv } = this.ring!;
    const rec = rx.records + rx.used * Rxr.SIZE;
    const gid = at + RECORD_ADDRESS_OFF;
    for (let i = 0; i < 16; i++) u8[rec + Rxm.SRC + i] = b[gid + i]!;
    dv.setUint32(rec + Rxm.IP_VERSION, isV4MappedGid(b, gid) ? 4 : 6, true);
    dv.setUint32(rec + Rxm.SRC_PORT, recordPort(b, at), true);
    const id = recordIpId(b, at);
    dv.setUint32(rec + Rxm.IP_ID, id === TUNNEL_IP_ID_UNKNOWN ? IP_ID_UNKNOWN : id, true);
    // longer than a slot (than the HELLO's max payload: the gateway never sends that): cut, and the device drops it as too long
    const cut = Math.min(len, rx.slotSize);
    dv.setUint32(rec + Rxr.LENGTH, cut, true);
    dv.setUint32(rec + Rxr.FLAGS, cut < len ? RxrFlag.TRUNCATED : 0, true);
    u8.set(b.subarray(payloadAt, payloadAt + cut), rx.slots + rx.used * rx.slotSize);
    this.stats.received++;
    if (++rx.used === rx.count) this.deliverBatch();
    return true;
  };

  private deliverBatch(): void {
    const rx = this.rx!;
    const n = rx.used;
    rx.used = 0;
    if (n) this.port?.receiveBatch(rx.records, n);
  }

  /**
   * Link.sendRing: TX descriptors read in place (headers, payload and trailer copied once into the
   * pending message; no per-datagram object). Stops early, blocked, at the high-water mark.
   */
  sendRing(first: number, count: number): number {
    const g = this.ring!;
    if (this.down || this.ws.readyState !== OPEN) {
      this.stats.droppedDown += count;
      return count;
    }
    // blocked at the high-water mark: nothing until pollDrain resumes the port
    if (this.blocked) return 0;
    const { u8, dv } = g;
    const b = this.batch;
    let n = 0;
    while (n < count) {
      const d = g.data + ((first + n) & g.mask) * g.slot;
      const hdrLen = dv.getUint32(d + Txd.HDR_LEN, true);
      const payLen = dv.getUint32(d + Txd.PAYLOAD_LEN, true);
      const trLen = dv.getUint32(d + Txd.TRAILER_LEN, true);
      const pay = dv.getUint32(d + Txd.PAYLOAD, true);
      const port = dv.getUint32(d + Txd.DST_PORT, true);
      n++;
      if (b) {
        if (!b.addGather(u8, d + Txd.DST, port, 0, u8, d + Txd.HDR, hdrLen, pay, payLen, d + Txd.TRAILER, trLen)) {
          this.flushBatch();
          b.addGather(u8, d + Txd.DST, port, 0, u8, d + Txd.HDR, hdrLen, pay, payLen, d + Txd.TRAILER, trLen);
        }
      } else {
        const frame = new Uint8Array(DATA_HEADER_LEN + hdrLen + payLen + trLen);
        writeDataHeader(frame, u8.subarray(d + Txd.DST, d + Txd.DST + 16), port, 0);
        frame.set(u8.subarray(d + Txd.HDR, d + Txd.HDR + hdrLen), DATA_HEADER_LEN);
        frame.set(u8.subarray(pay, pay + payLen), DATA_HEADER_LEN + hdrLen);
        frame.set(u8.subarray(d + Txd.TRAILER, d + Txd.TRAILER + trLen), DATA_HEADER_LEN + hdrLen + payLen);
        this.ws.send(frame);
        this.stats.framesSent++;
      }
      if (this.ws.bufferedAmount + (b?.bytes ?? 0) >= this.highWater) {
        this.flushBatch();
        this.stats.sent += n;
        this.blocked = true;
        this.stats.backpressured++;
        this.pollDrain();
        return n;
      }
    }
    this.stats.sent += n;
    if (b && b.count > 0) this.queueTurnEnd();
    return n;
  }

  send(d: OutgoingDatagram, done: () => void): boolean {
    if (this.down || this.ws.readyState !== OPEN) {
      this.stats.droppedDown++;
      done();
      return true;
    }
    const b = this.batch;
    if (b) {
      // one copy into the pending BATCH; it leaves when this turn's microtasks have run (after the
      // port's drain of the TX ring, deferFlush), or at once when full
      if (!b.add(d.dst, d.dstPort, 0, d.pieces)) {
        this.flushBatch();
        b.add(d.dst, d.dstPort, 0, d.pieces);
      }
      this.queueTurnEnd();
    } else {
      // one copy into the frame; the pieces are free as soon as send() returns
      this.ws.send(emitData(d.dst, d.dstPort, 0, d.pieces));
      this.stats.framesSent++;
    }
    this.stats.sent++;
    done();
    if (this.ws.bufferedAmount + (b?.bytes ?? 0) >= this.highWater) {
      this.flushBatch();
      this.blocked = true;
      this.stats.backpressured++;
      this.pollDrain();
      return false;
    }
    return true;
  }

  /** Sends the BATCH gathered so far (nothing when it is empty; dropped when the tunnel is down). */
  private flushBatch(): void {
    const b = this.batch;
    if (!b || b.count === 0) return;
    if (this.down || this.ws.readyState !== OPEN) {
      b.take(); // dropped
      return;
    }
    if (this.ws.sendCallsBack) (this.ws as WebSocketLike & CallbackSend).send(b.lend()!, this.frameSent);
    else this.ws.send(b.take()!);
    this.stats.framesSent++;
  }
  /** The socket is done with the oldest frame lent to it (sendCallsBack). */
  private readonly frameSent = (): void => this.batch?.returned();

  /** Closes the tunnel (the device sees the link go down); what is gathered for a BATCH leaves first. */
  close(): void {
    this.flushBatch();
    this.goDown("closed by the host");
    try { this.ws.close(1000, "bye"); } catch { /* already closed */ }
  }

  private pollDrain(): void {
    // WebSocket has no drain event: look again shortly.
    setTimeout(() => {
      if (!this.blocked) return;
      if (this.down || this.ws.bufferedAmount < this.highWater / 2) {
        this.blocked = false;
        this.port?.resume();
      } else this.pollDrain();
    }, 2);
  }

  private goDown(why: string): void {
    if (this.down) return;
    this.down = true;
    if (this.blocked) {
      this.blocked = false;
      this.port?.resume();
    }
    this.onDown?.(why);
  }

  private onMessage(data: unknown): void {
    if (this.rx && this.port) {
      // DATA and BATCH straight into the device's batch records: nothing allocated per datagram
      let b: Uint8Array;
      try {
        b = data instanceof ArrayBuffer ? new Uint8Array(data) : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : undefined!;
        if (!b) throw new TunnelFrameError("not_bytes", "not a binary message");
        const kind = visitDatagrams(b, TUNNEL_VERSION_BATCH, this.toRecord);
        if (kind === FrameKind.DATA || kind === FrameKind.BATCH) {
          this.stats.framesReceived++;
          this.deliverBatch();
          return;
        }
      } catch {
        this.rx.used = 0;
        this.stats.badFrames++;
        return;
      }
    }
    let f;
    try {
      f = parseFrame(data as ArrayBuffer);
    } catch {
      this.stats.badFrames++;
      return;
    }
    if (f.kind === FrameKind.ERROR) {
      this.stats.errors++;
      this.gatewayErrors.push({ name: f.name, reason: f.reason });
      if (this.gatewayErrors.length > 32) this.gatewayErrors.shift();
      return;
    }
    this.stats.framesReceived++;
    if (f.kind === FrameKind.BATCH) {
      for (const d of f.datagrams) this.deliver(d);
      return;
    }
    if (f.kind !== FrameKind.DATA) {
      this.stats.badFrames++;
      return;
    }
    this.deliver(f);
  }

  private deliver(f: DataFrame): void {
    this.stats.received++;
    this.port?.receive({
      src: f.address, dst: this.gwGid, srcPort: f.port, dstPort: this.hello.port,
      ipId: f.ipId === TUNNEL_IP_ID_UNKNOWN ? IP_ID_UNKNOWN : f.ipId, payload: f.payload,
    });
  }
}

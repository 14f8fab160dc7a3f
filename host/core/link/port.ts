// The host half of the packet path: moves datagrams between a device's rings
// and a link (the simulated wire, a UDP socket, a WebSocket tunnel). It never
// looks inside a packet. Transmit is zero copy: a TX descriptor becomes three
// views over linear memory (headers, payload in the MR, trailer) that the link
// sends and then releases; receive is the one copy into the RX buffer. The
// device's one timer is kept here: after every call, re-armed to its earliest
// deadline.
import type { Datagram, DatagramFacts } from "../net/datagram.js";
import type { DeviceMemory } from "../verbs/memory.js";
import { IP_ID_UNKNOWN, Ring, RX_RESULT_NAMES, Rxm, Txd } from "../abi/index.js";
import { addressGid, gidToAddress, isV4MappedGid, parseGid } from "../net/gid.js";
import { concat } from "../net/bytes.js";

/** Where time comes from: a virtual clock in simulations, the real one otherwise (µs). */
export interface Clock {
  now(): number;
  setTimer(atUs: number, fn: () => void): unknown;
  clearTimer(timer: unknown): void;
}

/** A datagram to send, as gather pieces over linear memory. */
export interface OutgoingDatagram extends DatagramFacts {
  /** the IPv4 ID the ICRC assumed (always known on transmit) */
  ipId: number;
  /** headers, payload, trailer: views valid until `done` is called */
  pieces: Uint8Array[];
  length: number;
}

export interface Link {
  /**
   * Sends one datagram; calls `done()` (synchronously or later, in send order)
   * once the pieces may be reused. Returns false when it took the datagram but
   * wants no more until `resume()` is called on the port (backpressure).
   */
  send(d: OutgoingDatagram, done: () => void): boolean;
}

/** The transport exports the port needs (docs/TRANSPORT.md). */
export interface TransportCore {
  memory: WebAssembly.Memory;
  transport_open(txCap: number, localPort: number): number;
  tx_ring(): number;
  rx_buf(): number;
  rx_buf_cap(): number;
  rx_meta(): number;
  rx(len: number, now: number): number;
  tick(now: number): number;
  tx_release(n: number, now: number): void;
  next_deadline(): number;
}

// The TX descriptor, RX meta record and RX result names are the device's ABI (abi/schema.json).
export { IP_ID_UNKNOWN, RX_RESULT_NAMES, Rxm, Txd } from "../abi/index.js";

/**
 * One datagram as a capture sees it: the UDP payload and the IP/UDP facts its ICRC was computed
 * over (for received datagrams, the IPv4 ID the device resolved when the link could not see it).
 */
export interface CapturedDatagram extends DatagramFacts {
  /** IPv4 Identification (IP_ID_UNKNOWN when neither the link nor the device knew it) */
  ipId: number;
  /** The UDP payload (BTH … ICRC): a view valid only during the call; copy what you keep. */
  payload: Uint8Array;
  /** Receive only: the device's verdict (0 accepted, else an index into RX_RESULT_NAMES; -1 too long). */
  rxResult?: number;
}

/** Sees every datagram the port sends ("tx") and every one it is handed ("rx", accepted or dropped). */
export type CaptureHook = (dir: "tx" | "rx", d: CapturedDatagram) => void;

export class PacketPort {
  /** Datagrams handed to the link whose `done` has not come yet. */
  private inFlight = 0;
  /** Descriptors already handed to the link (host cursor; the device's consumer index trails it). */
  private cursor = 0;
  private blocked = false;
  private timer: unknown;
  private timerAt = Infinity;
  private servicing = false;
  private gidCache = new Map<string, Uint8Array>();
  private addrCache = new Map<string, string>();
  readonly stats = { txDatagrams: 0, rxDatagrams: 0, rxDropped: 0, drops: {} as Record<string, number> };
  /** Optional tap (host/core/capture/recorder.ts PcapRecorder): costs nothing when unset. */
  capture: CaptureHook | undefined;

  constructor(
    private readonly core: TransportCore,
    private readonly mem: DeviceMemory,
    readonly clock: Clock,
    private readonly link: Link,
    /** Called after the port ran the device (completions and events may be new). */
    private readonly afterDevice: () => void = () => {},
  ) {
    this.cursor = mem.u32((core.tx_ring() >>> 0) + Ring.CONS);
  }

  /** One datagram from the link: copy into the RX buffer, describe it, let the device run. Returns the rx result. */
  receive(d: Datagram): number {
    if (this.closed) return -1;
    const len = d.payload.length;
    const core = this.core;
    const m = this.mem;
    if (len > core.rx_buf_cap()) {
      this.countDrop("too_long");
      this.capture?.("rx", { ...d, ipId: d.ipId ?? IP_ID_UNKNOWN, rxResult: -1 });
      return -1;
    }
    m.u8.set(d.payload, core.rx_buf());
    const meta = core.rx_meta();
    const src = this.gid(d.src);
    const dst = this.gid(d.dst);
    m.setU32(meta + Rxm.IP_VERSION, isV4MappedGid(src) ? 4 : 6);
    m.u8.set(src, meta + Rxm.SRC);
    m.u8.set(dst, meta + Rxm.DST);
    m.setU32(meta + Rxm.SRC_PORT, d.srcPort);
    m.setU32(meta + Rxm.DST_PORT, d.dstPort);
    m.setU32(meta + Rxm.IP_ID, d.ipId ?? IP_ID_UNKNOWN);
    m.setU32(meta + Rxm.IP_FLAGS, 2);
    m.setU32(meta + Rxm.TTL, d.ttl ?? 0);
    m.setU32(meta + Rxm.TOS, d.tos ?? 0);
    m.setU32(meta + Rxm.FLOW_LABEL, d.flowLabel ?? 0);
    const r = core.rx(len, this.clock.now());
    this.stats.rxDatagrams++;
    if (r !== 0) this.countDrop(RX_RESULT_NAMES[r] ?? `reason_${r}`);
    // The device wrote back the IPv4 ID it resolved (docs/TRANSPORT.md, RX path).
    if (this.capture) this.capture("rx", { ...d, ipId: m.u32(meta + Rxm.IP_ID), rxResult: r });
    this.service();
    return r;
  }

  private closed = false;

  /** Stops the timer; later datagrams and calls are ignored. */
  close(): void {
    this.closed = true;
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  /** The link can take datagrams again. */
  resume(): void {
    this.blocked = false;
    this.service();
  }

  /** Drains the TX ring into the link, releases what was sent, re-arms the timer. */
  service(): void {
    if (this.servicing || this.closed) return;
    this.servicing = true;
    try {
      for (let rounds = 0; rounds < 1_000_000; rounds++) {
        const released = this.drain();
        if (released === 0) break;
        this.core.tx_release(released, this.clock.now());
      }
      this.armTimer();
    } finally {
      this.servicing = false;
    }
    this.afterDevice();
  }

  private completedSync = 0;

  /** Hands every ready descriptor to the link; returns how many completed synchronously. */
  private drain(): number {
    const core = this.core;
    const m = this.mem;
    const r = core.tx_ring() >>> 0; // above 2 GiB with a large MR arena: unsigned
    const cap = m.u32(r + Ring.CAP);
    const slot = m.u32(r + Ring.SLOT);
    const prod = m.u32(r + Ring.PROD);
    this.completedSync = 0;
    while (!this.blocked && this.cursor !== prod) {
      const dsc = r + Ring.DATA + (this.cursor & (cap - 1)) * slot;
      const hdrLen = m.u32(dsc + Txd.HDR_LEN);
      const payloadLen = m.u32(dsc + Txd.PAYLOAD_LEN);
      const trailerLen = m.u32(dsc + Txd.TRAILER_LEN);
      const buf = m.u8.buffer;
      const pieces = [new Uint8Array(buf, dsc + Txd.HDR, hdrLen)];
      if (payloadLen) pieces.push(new Uint8Array(buf, m.u32(dsc + Txd.PAYLOAD), payloadLen));
      pieces.push(new Uint8Array(buf, dsc + Txd.TRAILER, trailerLen));
      const d: OutgoingDatagram = {
        src: this.address(m.u8, dsc + Txd.SRC),
        dst: this.address(m.u8, dsc + Txd.DST),
        srcPort: m.u32(dsc + Txd.SRC_PORT),
        dstPort: m.u32(dsc + Txd.DST_PORT),
        ipId: m.u32(dsc + Txd.IP_ID),
        ttl: m.u32(dsc + Txd.TTL), tos: m.u32(dsc + Txd.TOS), flowLabel: m.u32(dsc + Txd.FLOW_LABEL),
        pieces,
        length: hdrLen + payloadLen + trailerLen,
      };
      if (this.capture) {
        const payload = concat(pieces);
        this.capture("tx", {
          src: d.src, dst: d.dst, srcPort: d.srcPort, dstPort: d.dstPort, ipId: d.ipId, payload,
          ttl: m.u32(dsc + Txd.TTL), tos: m.u32(dsc + Txd.TOS), flowLabel: m.u32(dsc + Txd.FLOW_LABEL),
        });
      }
      this.cursor = (this.cursor + 1) >>> 0;
      this.inFlight++;
      this.stats.txDatagrams++;
      let sync = true;
      const ok = this.link.send(d, () => {
        this.inFlight--;
        if (sync) this.completedSync++;
        else {
          this.core.tx_release(1, this.clock.now());
          this.service();
        }
      });
      sync = false;
      if (!ok) this.blocked = true;
    }
    return this.completedSync;
  }

  private armTimer(): void {
    const next = this.core.next_deadline();
    if (next === this.timerAt) return;
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    this.timerAt = next;
    if (next === Infinity) return;
    this.timer = this.clock.setTimer(next, () => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.core.tick(this.clock.now());
      this.service();
    });
  }

  private countDrop(reason: string): void {
    this.stats.rxDropped++;
    this.stats.drops[reason] = (this.stats.drops[reason] ?? 0) + 1;
  }

  private gid(address: string): Uint8Array {
    let g = this.gidCache.get(address);
    if (!g) {
      g = parseGid(addressGid(address));
      if (this.gidCache.size > 4096) this.gidCache.clear();
      this.gidCache.set(address, g);
    }
    return g;
  }

  private address(u8: Uint8Array, p: number): string {
    // Cache by the 16 raw bytes (as a short string key) so steady traffic allocates no text.
    let key = "";
    for (let i = 0; i < 16; i += 4) key += String.fromCharCode((u8[p + i]! << 8) | u8[p + i + 1]!, (u8[p + i + 2]! << 8) | u8[p + i + 3]!);
    let a = this.addrCache.get(key);
    if (a === undefined) {
      a = gidToAddress(u8, p);
      if (this.addrCache.size > 4096) this.addrCache.clear();
      this.addrCache.set(key, a);
    }
    return a;
  }
}

// The host half of the packet path: moves datagrams between a device's rings
// and a link (the simulated wire, a UDP socket, a WebSocket tunnel). It never
// looks inside a packet. Transmit is zero copy: a TX descriptor becomes three
// views over linear memory (headers, payload in the MR, trailer) that the link
// sends and then releases; receive is the one copy into the RX buffer. The
// device's one timer is kept here: after every call, re-armed to its earliest
// deadline.
import type { Datagram, DatagramFacts } from "../net/datagram.js";
import type { DeviceMemory } from "../verbs/memory.js";
import { IP_ID_UNKNOWN, Ring, RX_RESULT_NAMES, Rxm, Rxr, Txd } from "../abi/index.js";
import { AddressCache, GidCache, isV4MappedGid } from "../net/gid.js";
import { concat } from "../net/bytes.js";

/** Where time comes from: a virtual clock in simulations, the real one otherwise (µs). */
export interface Clock {
  now(): number;
  setTimer(atUs: number, fn: () => void): unknown;
  clearTimer(timer: unknown): void;
  /** whether an armed timer keeps the process alive (Node's ref/unref; absent: nothing to say) */
  holdTimer?(timer: unknown, hold: boolean): void;
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
  /**
   * Bytes the peer can buffer (its socket receive buffer, as the kernel accounts for datagrams):
   * the device keeps at most this much unacknowledged RC request traffic out (the device-wide
   * in-flight budget, assembly/sched/budget.ts). Unset: no limit.
   */
  readonly inFlightBudget?: number;
  /**
   * The same in packets: what bounds the peer's queueing delay (a datagram costs its receiver
   * CPU whatever its size), kept well below the ACK timeout. Unset: no limit.
   */
  readonly inFlightPackets?: number;
  /**
   * Batched transmit straight from the TX ring (the Node datapath): sends descriptors
   * `first` .. `first + count - 1` (free-running ring indices; `ringLayout()` on the port says
   * where they are) and returns how many it dealt with — each sent or refused, its bytes
   * copied, so the port releases them at once. Fewer than `count`: blocked; the link calls
   * `resume()` on the port when it can take more. Without it the port sends one datagram at a time.
   * With `sourcePortReady` the port hands the ring over in runs of one UDP source port, each
   * descriptor's port read once and checked (or moved to the device's port) on the way, and says
   * which in `srcPort`: the link sends the run from it without reading the descriptors' ports again.
   */
  sendRing?(first: number, count: number, srcPort?: number): number;
  /**
   * Runs `fn` later in this turn of the event loop, after the promise continuations of the
   * current callback (Node: a nextTick queued from a microtask). With it, a received batch that
   * holds ACKs (holdAcks, and the link saw more datagrams behind it: receiveBatch's `more`) is
   * drained once the application's reaction to the batch's completions (posts from
   * `await cq.next()` continuations) is in the TX ring too, so both leave in one batched send.
   */
  deferFlush?(fn: () => void): void;
  /**
   * With deferFlush: true when the deferral is real (the flush runs after the application's
   * reaction): the port then asks the device to hold the plain ACKs of a received batch with
   * more datagrams behind it until the flush, so they leave after the requests the application
   * posted meanwhile, in the same batched send (TransportCore.tx_ack_hold); a batch that emptied
   * the link's socket holds nothing.
   */
  readonly holdAcks?: boolean;
  /** Called once by the port's constructor, before anything is sent or received. */
  attachPort?(port: PacketPort): void;
  /**
   * Per-QP UDP source ports (the Node link's socket pool): whether the link can send from UDP
   * port `port` now (opening what it needs). Asked before each descriptor with a port the link
   * has not confirmed in this drain; on false the port moves the descriptor to the device's
   * port (source port and ICRC rewritten by the device) and its QP with it. Without it every
   * descriptor leaves with the port the device wrote (and sendRing is handed the ring uncut).
   */
  sourcePortReady?(port: number): boolean;
  /**
   * Hands the port, now, what already waits in the link (a non-blocking receive; the port's
   * `receiveBatch` runs inside the call). The port calls it when its timer fires, before the
   * device acts on the expired deadline: an event loop runs expired timers before it looks at
   * its sockets (libuv's order), so on a busy host a retransmission timer fires while the ACKs
   * that answer it already sit in the socket; taken first, they cancel it, as they would have
   * a moment earlier. The native link does it (a poll and a recvmmsg batch); node:dgram cannot
   * (its socket is read only by the loop) and the WebSocket tunnel neither: without it the
   * timer acts on what the device has seen.
   */
  receivePending?(): void;
}

/** Where the TX ring's descriptors are: descriptor i at `data + (i & (cap - 1)) * slot`. */
export interface TxRingLayout {
  data: number;
  cap: number;
  slot: number;
}

/** Receive slots and batch records carved in linear memory for `receiveBatch`. */
export interface RxBatchArea {
  records: number;
  recordCount: number;
  slots: number;
  slotCount: number;
  slotSize: number;
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
  rx_at?(data: number, len: number, now: number): number;
  tick(now: number): number;
  tx_release(n: number, now: number): void;
  next_deadline(): number;
  tx_budget_set(bytes: number, packets: number): number;
  rx_batch_init?(records: number, slots: number, slotSize: number): number;
  rx_batch_slots?(): number;
  rx_batch_slot_size?(): number;
  rx_batch?(recs: number, count: number, now: number): number;
  rx_batch_taken?(): number;
  rx_batch_upto?(recs: number, count: number, now: number): number;
  tx_ack_hold?(on: number, now: number): void;
  tx_ack_held?(): number;
  tx_budget_stat(which: number): number;
  tx_set_sport?(index: number, port: number): number;
  qp_sport_fallback?(qpn: number, port: number): number;
  qp_sports?(): number;
  icrc_offload?(on: number): number;
}

/** tx_budget_stat's figures, by index. */
export const BUDGET_STATS = ["limit", "inflight", "waiting", "admits", "waits", "wakes", "peak", "limitPackets", "inflightPackets"] as const;
export type BudgetStats = Record<(typeof BUDGET_STATS)[number], number>;

// The TX descriptor, RX meta and batch records and RX result names are the device's ABI (abi/schema.json).
export { IP_ID_UNKNOWN, RX_RESULT_NAMES, Rxm, Rxr, RxrFlag, Txd, TxFlag } from "../abi/index.js";

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

/**
 * While a deferred flush is due, the TX ring is drained early once it holds this many descriptors:
 * the deferral exists to join a reply and its held ACK in one send, not to hold back a stream of
 * requests (a 64 KiB message at MTU 4096 is 16 packets).
 */
const DEFER_FLUSH_AT = 16;

export class PacketPort {
  /** The TX ring's address (fixed once the device is open: asked once, not per drain). */
  private readonly txRing: number;
  /** Datagrams handed to the link whose `done` has not come yet. */
  private inFlight = 0;
  /** Descriptors already handed to the link (host cursor; the device's consumer index trails it). */
  private cursor = 0;
  private blocked = false;
  private timer: unknown;
  /** when the armed timer fires (Infinity: none armed); the device's deadline may be later (armTimer) */
  private timerAt = Infinity;
  /** the armed timer keeps the process alive (something is due; Clock.holdTimer) */
  private timerHeld = true;
  private servicing = false;
  private readonly gids = new GidCache();
  /** GID -> address text, one cache per side (a flow repeats both). */
  private readonly srcAddrs = new AddressCache();
  private readonly dstAddrs = new AddressCache();
  /** sportFallbacks: descriptors moved to the device's UDP port because the link could not send from their QP's */
  readonly stats = { txDatagrams: 0, rxDatagrams: 0, rxDropped: 0, sportFallbacks: 0, drops: {} as Record<string, number> };
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
    this.txRing = core.tx_ring() >>> 0; // above 2 GiB with a large MR arena: unsigned
    this.cursor = mem.u32(this.txRing + Ring.CONS);
    link.attachPort?.(this);
    if (link.inFlightBudget || link.inFlightPackets) core.tx_budget_set(link.inFlightBudget ?? 0, link.inFlightPackets ?? 0);
  }

  /**
   * Sets the device-wide in-flight budget: bytes (at the receiver's socket-buffer cost of each
   * packet) and packets of unacknowledged RC requests; 0 = no limit. Links set it at attach
   * (`Link.inFlightBudget`, `inFlightPackets`).
   */
  setBudget(bytes: number, packets = 0): void {
    if (!(bytes >= 0) || !Number.isInteger(packets) || packets < 0 || packets > 0xffffffff) {
      throw new RangeError(`bad in-flight budget: ${bytes} bytes, ${packets} packets`);
    }
    this.core.tx_budget_set(bytes, packets);
    this.service();
  }

  /** The device-wide in-flight budget: its limit (bytes, 0 none), bytes in flight, QPs waiting, counters. */
  budget(): BudgetStats {
    const out = {} as BudgetStats;
    BUDGET_STATS.forEach((k, i) => (out[k] = this.core.tx_budget_stat(i)));
    return out;
  }

  /** Whether `receiveSim` can take records whose IP facts the link wrote (rx_batch_upto). */
  get canReceiveBatchFacts(): boolean {
    return this.core.rx_batch_upto !== undefined;
  }

  /** Whether `receive` validates a datagram already in the device's linear memory in place (rx_at). */
  get canReceiveAt(): boolean {
    return this.core.rx_at !== undefined;
  }

  /**
   * One datagram from the link: copy into the RX buffer, describe it, let the device run. Returns
   * the rx result. A payload that is already a view of the device's linear memory (a receive slot
   * the link wrote, e.g. the simulated wire's inbox) is validated where it lies, without the copy.
   */
  receive(d: Datagram): number {
    if (this.closed) return -1;
    const len = d.payload.length;
    const core = this.core;
    const m = this.mem;
    if (this.rxMeta < 0) {
      // fixed addresses in the core: asked once, not per datagram
      this.rxBuf = core.rx_buf() >>> 0;
      this.rxMeta = core.rx_meta() >>> 0;
      this.rxCap = core.rx_buf_cap();
    }
    if (len > this.rxCap) {
      this.countDrop("too_long");
      this.capture?.("rx", { ...d, ipId: d.ipId ?? IP_ID_UNKNOWN, rxResult: -1 });
      return -1;
    }
    // the views once per datagram (each accessor re-checks memory.buffer)
    const u8 = m.u8;
    const dv = m.dv;
    const inPlace = d.payload.buffer === u8.buffer && core.rx_at !== undefined;
    if (!inPlace) u8.set(d.payload, this.rxBuf);
    const meta = this.rxMeta;
    // only the port writes the addresses into the RX meta record (the device writes back the IPv4 ID):
    // a flow's next datagram leaves them as they are
    if (d.src !== this.rxSrc) {
      const src = this.gids.of(d.src);
      dv.setUint32(meta + Rxm.IP_VERSION, isV4MappedGid(src) ? 4 : 6, true);
      u8.set(src, meta + Rxm.SRC);
      this.rxSrc = d.src;
    }
    if (d.dst !== this.rxDst) {
      u8.set(this.gids.of(d.dst), meta + Rxm.DST);
      this.rxDst = d.dst;
    }
    dv.setUint32(meta + Rxm.SRC_PORT, d.srcPort >>> 0, true);
    dv.setUint32(meta + Rxm.DST_PORT, d.dstPort >>> 0, true);
    dv.setUint32(meta + Rxm.IP_ID, (d.ipId ?? IP_ID_UNKNOWN) >>> 0, true);
    dv.setUint32(meta + Rxm.IP_FLAGS, 2, true);
    dv.setUint32(meta + Rxm.TTL, (d.ttl ?? 0) >>> 0, true);
    dv.setUint32(meta + Rxm.TOS, (d.tos ?? 0) >>> 0, true);
    dv.setUint32(meta + Rxm.FLOW_LABEL, (d.flowLabel ?? 0) >>> 0, true);
    const r = inPlace ? core.rx_at!(d.payload.byteOffset, len, this.clock.now()) : core.rx(len, this.clock.now());
    this.stats.rxDatagrams++;
    if (r !== 0) this.countDrop(RX_RESULT_NAMES[r] ?? `reason_${r}`);
    // The device wrote back the IPv4 ID it resolved (docs/TRANSPORT.md, RX path).
    if (this.capture) this.capture("rx", { ...d, ipId: m.u32(meta + Rxm.IP_ID), rxResult: r });
    this.service();
    this.told();
    return r;
  }

  private closed = false;
  /** rx_buf(), rx_meta(), rx_buf_cap() (-1: not asked yet) */
  private rxBuf = -1;
  private rxMeta = -1;
  private rxCap = 0;
  /** The addresses the RX meta record holds now. */
  private rxSrc: string | undefined;
  private rxDst: string | undefined;

  /** The device's linear memory (it never grows once the device is open). */
  get memory(): WebAssembly.Memory {
    return this.mem.memory;
  }

  ringLayout(): TxRingLayout {
    const r = this.txRing;
    return { data: r + Ring.DATA, cap: this.mem.u32(r + Ring.CAP), slot: this.mem.u32(r + Ring.SLOT) };
  }

  /**
   * ICRC offload: a link that computes each sent datagram's ICRC as it sends it (the Node datapath)
   * asks the device to leave them to it (call from `attachPort`, before anything is sent). True when
   * the device took it; false for a core without the export, which keeps computing its own.
   */
  setIcrcOffload(on: boolean): boolean {
    return this.core.icrc_offload ? this.core.icrc_offload(on ? 1 : 0) === 1 : false;
  }

  /**
   * Carves receive slots and batch records in linear memory for a link that receives in place
   * (call from `attachPort`, before taking views of the memory: this may grow it). Undefined
   * when the core has no batched receive.
   */
  rxBatchArea(records: number, slots: number, slotSize: number): RxBatchArea | undefined {
    const c = this.core;
    if (!c.rx_batch_init || !c.rx_batch_slots || !c.rx_batch_slot_size) return undefined;
    // addresses as unsigned: with a large arena the area may lie above 2 GiB (an i32 result is negative there)
    const recs = c.rx_batch_init(records, slots, slotSize) >>> 0;
    if (!recs) throw new RangeError(`rx_batch_init refused ${records} records, ${slots} slots of ${slotSize} bytes`);
    return { records: recs, recordCount: records, slots: c.rx_batch_slots() >>> 0, slotCount: slots, slotSize: c.rx_batch_slot_size() };
  }

  /**
   * `count` datagrams received in place, described by batch records at `recs` (Rxr): one core
   * call validates and dispatches them all, then the TX ring is drained in the same turn (the
   * batch's ACKs and responses leave before this returns). `more` (default true): the link saw
   * more datagrams waiting behind this batch. With a link that holds ACKs (Link.holdAcks) only
   * such a batch holds them: a batch that emptied the socket (`more` false) is most likely a lone
   * request whose sender waits, so its ACKs leave at once and wake the peer while the
   * application here prepares its answer (which then leaves at its post).
   */
  receiveBatch(recs: number, count: number, more = true): void {
    if (this.closed || count <= 0) return;
    const core = this.core;
    const now = this.clock.now();
    if (more && !this.acksHeld && this.link.holdAcks && this.link.deferFlush && core.tx_ack_hold && core.tx_ack_held) {
      // released by the flush below, in this turn (its plain ACKs follow the application's posts)
      core.tx_ack_hold(1, now);
      this.acksHeld = true;
    }
    // the core stops behind a READ request with a request to its QP behind it (rx_batch_taken):
    // the READ's responses leave before the rest is looked at, as rxe sends them first
    for (let at = 0; ; ) {
      const ok = core.rx_batch!(recs + at * Rxr.SIZE, count - at, now);
      const took = core.rx_batch_taken ? Math.max(1, Math.min(core.rx_batch_taken(), count - at)) : count - at;
      if (ok !== took || this.capture) this.recordVerdicts(recs + at * Rxr.SIZE, took);
      at += took;
      if (at >= count) break;
      this.readStops++;
      this.sendNow();
    }
    this.batches++;
    this.stats.rxDatagrams += count;
    if (this.acksHeld) {
      // completions now (CQ waiters wake), the TX ring later in this turn (see Link.deferFlush),
      // unless it already holds a burst (DEFER_FLUSH_AT); nothing held: drained now
      if (!this.flushPending) {
        this.flushPending = true;
        this.link.deferFlush!(this.flush);
      }
      if (this.flushPending) this.service();
      this.told();
      return;
    }
    this.service();
    this.told();
  }

  /**
   * Called after every received datagram or batch, once its completions are out: for a wait on memory
   * a peer writes with no completion to say so (rsockets' riostream spins on a byte of its buffer),
   * which then goes on inside the same turn — before the link's busy poll holds the event loop.
   */
  readonly received = new Set<() => void>();

  private told(): void {
    if (this.received.size === 0) return;
    for (const f of [...this.received]) f();
  }

  /** Counts the drops among `count` batch records and shows them all to the capture. */
  private recordVerdicts(recs: number, count: number): void {
    const dv = this.mem.dv;
    for (let i = 0; i < count; i++) {
      const rec = recs + i * Rxr.SIZE;
      const r = dv.getInt32(rec + Rxr.RESULT, true);
      if (r !== 0) this.countDrop(r < 0 ? "too_long" : RX_RESULT_NAMES[r] ?? `reason_${r}`);
      if (this.capture) this.captureRecord(rec, r);
    }
  }

  /**
   * The simulated wire's batch (host/core/sim/link.ts): `count` datagrams in place, described by
   * batch records whose every IP fact (IP flags, TTL, TOS, flow label) the link wrote. The device
   * may stop early (`rx_batch_upto`: after a datagram that made a completion, or a READ request);
   * the TX ring is drained as after `receive`. Returns how many records it dealt with (at least
   * one): the link hands the rest over again once the application had its turn.
   */
  receiveSim(recs: number, count: number): number {
    if (this.closed || count <= 0) return count;
    const took = Math.max(1, this.core.rx_batch_upto!(recs, count, this.clock.now()));
    this.batches++;
    this.stats.rxDatagrams += took;
    this.recordVerdicts(recs, took);
    this.service();
    this.told();
    return took;
  }

  /**
   * What the port holds back now, for a stalled application's report: descriptors the device put
   * in the TX ring that the link has not taken, whether the link refused more (waiting for
   * `resume`), a deferred flush due and plain ACKs held for it, datagrams handed to the link and
   * not done, and the device's timer (µs deadline, Infinity: none).
   */
  holding(): { txUnsent: number; blocked: boolean; flushPending: boolean; acksHeld: boolean; inFlight: number; timerAt: number } {
    return {
      txUnsent: this.ringBacklog(), blocked: this.blocked, flushPending: this.flushPending, acksHeld: this.acksHeld,
      inFlight: this.inFlight, timerAt: this.timerAt,
    };
  }

  /** Batches received (receiveBatch calls). */
  batches = 0;
  /** Times the device's timer fired (core.tick calls). */
  ticks = 0;
  /** true: re-arm the platform timer whenever the device's deadline moves, later ones too (the way before; armTimer) */
  eagerTimer = false;
  /** Cuts in received batches behind a READ request, its responses sent before the request behind it (rx_batch_taken). */
  readStops = 0;
  private flushPending = false;
  /** A deferred flush is due (Link.deferFlush): it runs once this thread's JS stack unwinds, so a caller that keeps the thread busy delays it. */
  get flushDue(): boolean {
    return this.flushPending;
  }
  /** The device holds plain ACKs until the flush (tx_ack_hold). */
  private acksHeld = false;
  private readonly flush = (): void => {
    this.flushPending = false;
    if (this.acksHeld) {
      this.acksHeld = false;
      this.core.tx_ack_hold!(0, this.clock.now());
    }
    this.service();
  };

  private captureRecord(rec: number, rxResult: number): void {
    const m = this.mem;
    const u8 = m.u8;
    this.capture!("rx", {
      src: this.srcAddrs.at(u8, m.dv, rec + Rxm.SRC), dst: this.dstAddrs.at(u8, m.dv, rec + Rxm.DST),
      srcPort: m.u32(rec + Rxm.SRC_PORT), dstPort: m.u32(rec + Rxm.DST_PORT), ipId: m.u32(rec + Rxm.IP_ID),
      payload: new Uint8Array(u8.buffer, m.u32(rec + Rxr.DATA), m.u32(rec + Rxr.LENGTH)), rxResult,
    });
  }

  /**
   * Sends what the device already put in the TX ring (a deferred flush not yet run: the ACKs of the
   * last batch received, which the peer's requester waits for), then stops the timer; later
   * datagrams and calls are ignored.
   */
  close(): void {
    if (this.closed) return;
    if (this.flushPending) this.flush();
    else this.service();
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
    if (this.flushPending && this.holdingBack()) {
      // a flush is due later in this turn: it drains the ring and re-arms the timer
      this.afterDevice();
      return;
    }
    this.sendNow();
    this.afterDevice();
  }

  /** Drains the TX ring into the link (a deferred flush's hold aside), releases what was sent, re-arms the timer. */
  private sendNow(): void {
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
  }

  private completedSync = 0;

  /**
   * While a deferred flush is due: does the ring wait for it? Only while the device holds an ACK
   * the flush will send (what the application posts meanwhile then joins it in one send) and the
   * ring holds less than a burst; otherwise it drains now, as the "now" flush would.
   */
  private holdingBack(): boolean {
    if (!this.acksHeld || !this.core.tx_ack_held!()) return false;
    return this.ringBacklog() < DEFER_FLUSH_AT;
  }

  /** Descriptors the device put in the TX ring that the link has not taken yet. */
  private ringBacklog(): number {
    return (this.mem.u32(this.txRing + Ring.PROD) - this.cursor) >>> 0;
  }

  /** Hands every ready descriptor to a batching link; returns how many it took (all released at once). */
  private drainRing(): number {
    const m = this.mem;
    const r = this.txRing;
    const prod = m.u32(r + Ring.PROD);
    const cut = this.link.sourcePortReady !== undefined;
    if (cut) this.beginPortChecks(r);
    // with per-QP ports: the port of descriptor `cursor` when the last run's scan already checked it
    let next = -1;
    let taken = 0;
    while (!this.blocked && this.cursor !== prod) {
      let count = (prod - this.cursor) >>> 0;
      let srcPort: number | undefined;
      if (cut) {
        const sp = next >= 0 ? next : this.checkedPort(this.cursor);
        next = -1;
        let run = 1;
        while (run < count) {
          const p = this.checkedPort((this.cursor + run) >>> 0);
          if (p !== sp) {
            next = p;
            break;
          }
          run++;
        }
        count = run;
        srcPort = sp;
      }
      const n = this.link.sendRing!(this.cursor, count, srcPort);
      // after the send: the datapath wrote the IPv4 ID each datagram went with, and its ICRC
      if (this.capture) for (let i = 0; i < n; i++) this.captureTx(this.descriptor(r, (this.cursor + i) >>> 0));
      this.cursor = (this.cursor + n) >>> 0;
      this.stats.txDatagrams += n;
      taken += n;
      if (n < count) this.blocked = true;
    }
    return taken;
  }

  /** The TX ring's geometry and the ports confirmed, for one drain's checkedPort calls. */
  private readonly portRing = { data: 0, mask: 0, slot: 0, dv: undefined as DataView | undefined, ok: -1, refused: -1 };

  /** Starts a drain's source-port checks (a pool socket may have been swept since the last). */
  private beginPortChecks(ring: number): void {
    const m = this.mem;
    const pr = this.portRing;
    pr.data = ring + Ring.DATA;
    pr.mask = m.u32(ring + Ring.CAP) - 1;
    pr.slot = m.u32(ring + Ring.SLOT);
    pr.dv = m.dv;
    pr.ok = -1;
    pr.refused = -1;
  }

  /**
   * The UDP source port descriptor `i` leaves from, read once: the one the device wrote when the
   * link can send from it, else the device's port (tx_set_sport rewrites the port and the ICRC, and
   * the QP moves there from then on, counted). Call after beginPortChecks in the same drain.
   */
  private checkedPort(i: number): number {
    const pr = this.portRing;
    const dv = pr.dv!;
    const dsc = pr.data + (i & pr.mask) * pr.slot;
    const sp = dv.getUint32(dsc + Txd.SRC_PORT, true);
    if (sp === pr.ok) return sp;
    if (sp !== pr.refused && this.link.sourcePortReady!(sp)) {
      pr.ok = sp;
      return sp;
    }
    pr.refused = sp;
    const core = this.core;
    if (!core.tx_set_sport || core.tx_set_sport(i, 0) !== 0) return sp;
    core.qp_sport_fallback?.(dv.getUint32(dsc + Txd.QPN, true), sp);
    this.stats.sportFallbacks++;
    return dv.getUint32(dsc + Txd.SRC_PORT, true);
  }

  /**
   * QP `qpn` will send from UDP port `port` (a modify gave it one): the link readies it now, before
   * the QP's first packet (on the Node link: the pool's socket is opened here, not inside a burst
   * of sends); when it cannot, the QP moves to the device's port before it built any packet.
   */
  prepareSourcePort(qpn: number, port: number): void {
    if (!this.link.sourcePortReady || this.link.sourcePortReady(port)) return;
    if (this.core.qp_sport_fallback?.(qpn, port)) this.stats.sportFallbacks++;
  }

  /**
   * The UDP source ports live QPs send from (0xC000..0xFFFF; the device's own port is not
   * listed), or undefined when the device cannot say.
   */
  sourcePortsInUse(): Set<number> | undefined {
    if (!this.core.qp_sports) return undefined;
    const bm = this.core.qp_sports() >>> 0;
    const u8 = this.mem.u8;
    const out = new Set<number>();
    for (let i = 0; i < 0x4000 / 8; i++) {
      const b = u8[bm + i]!;
      if (!b) continue;
      for (let k = 0; k < 8; k++) if (b & (1 << k)) out.add(0xc000 + i * 8 + k);
    }
    return out;
  }

  private descriptor(ring: number, index: number): number {
    const m = this.mem;
    return ring + Ring.DATA + (index & (m.u32(ring + Ring.CAP) - 1)) * m.u32(ring + Ring.SLOT);
  }

  private captureTx(dsc: number): void {
    const m = this.mem;
    const u8 = m.u8;
    const hdrLen = m.u32(dsc + Txd.HDR_LEN);
    const payloadLen = m.u32(dsc + Txd.PAYLOAD_LEN);
    const trailerLen = m.u32(dsc + Txd.TRAILER_LEN);
    const payload = new Uint8Array(hdrLen + payloadLen + trailerLen);
    payload.set(u8.subarray(dsc + Txd.HDR, dsc + Txd.HDR + hdrLen), 0);
    if (payloadLen) payload.set(u8.subarray(m.u32(dsc + Txd.PAYLOAD), m.u32(dsc + Txd.PAYLOAD) + payloadLen), hdrLen);
    payload.set(u8.subarray(dsc + Txd.TRAILER, dsc + Txd.TRAILER + trailerLen), hdrLen + payloadLen);
    this.capture!("tx", {
      src: this.srcAddrs.at(u8, m.dv, dsc + Txd.SRC), dst: this.dstAddrs.at(u8, m.dv, dsc + Txd.DST),
      srcPort: m.u32(dsc + Txd.SRC_PORT), dstPort: m.u32(dsc + Txd.DST_PORT), ipId: m.u32(dsc + Txd.IP_ID), payload,
      ttl: m.u32(dsc + Txd.TTL), tos: m.u32(dsc + Txd.TOS), flowLabel: m.u32(dsc + Txd.FLOW_LABEL),
    });
  }

  /** Hands every ready descriptor to the link; returns how many completed synchronously. */
  private drain(): number {
    if (this.link.sendRing) return this.drainRing();
    const m = this.mem;
    const r = this.txRing;
    const cap = m.u32(r + Ring.CAP);
    const slot = m.u32(r + Ring.SLOT);
    const prod = m.u32(r + Ring.PROD);
    this.completedSync = 0;
    const ports = this.link.sourcePortReady !== undefined;
    if (ports) this.beginPortChecks(r);
    while (!this.blocked && this.cursor !== prod) {
      const dsc = r + Ring.DATA + (this.cursor & (cap - 1)) * slot;
      // first: a refused port is rewritten (with the ICRC) before the datagram is described
      const srcPort = ports ? this.checkedPort(this.cursor) : m.u32(dsc + Txd.SRC_PORT);
      // the views once per descriptor (each of DeviceMemory's accessors re-checks memory.buffer)
      const dv = m.dv;
      const u8 = m.u8;
      const hdrLen = dv.getUint32(dsc + Txd.HDR_LEN, true);
      const payloadLen = dv.getUint32(dsc + Txd.PAYLOAD_LEN, true);
      const trailerLen = dv.getUint32(dsc + Txd.TRAILER_LEN, true);
      const buf = u8.buffer;
      const pieces = [new Uint8Array(buf, dsc + Txd.HDR, hdrLen)];
      if (payloadLen) pieces.push(new Uint8Array(buf, dv.getUint32(dsc + Txd.PAYLOAD, true), payloadLen));
      pieces.push(new Uint8Array(buf, dsc + Txd.TRAILER, trailerLen));
      const d: OutgoingDatagram = {
        src: this.srcAddrs.at(u8, dv, dsc + Txd.SRC),
        dst: this.dstAddrs.at(u8, dv, dsc + Txd.DST),
        srcPort,
        dstPort: dv.getUint32(dsc + Txd.DST_PORT, true),
        ipId: dv.getUint32(dsc + Txd.IP_ID, true),
        ttl: dv.getUint32(dsc + Txd.TTL, true), tos: dv.getUint32(dsc + Txd.TOS, true), flowLabel: dv.getUint32(dsc + Txd.FLOW_LABEL, true),
        pieces,
        length: hdrLen + payloadLen + trailerLen,
      };
      if (this.capture) {
        const payload = concat(pieces);
        this.capture("tx", {
          src: d.src, dst: d.dst, srcPort: d.srcPort, dstPort: d.dstPort, ipId: d.ipId, payload,
          ttl: dv.getUint32(dsc + Txd.TTL, true), tos: dv.getUint32(dsc + Txd.TOS, true), flowLabel: dv.getUint32(dsc + Txd.FLOW_LABEL, true),
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

  /**
   * Arms the platform timer for the device's next deadline — only when that is earlier than the one
   * armed. A later deadline (each request of a ping-pong pushes the ACK timeout out; its ACK clears
   * it) keeps the armed timer: when that fires early, the tick finds nothing due and the service
   * re-arms for what is due then. So a round trip costs no platform timer (re)arm, where clearing and
   * setting a timer per message did (eagerTimer: that way, kept for side-by-side benches).
   */
  private armTimer(): void {
    const next = this.core.next_deadline();
    if (next === this.timerAt) return;
    if (next > this.timerAt && !this.eagerTimer) {
      // nothing due (Infinity): the armed timer stays, but no longer keeps the process alive
      const hold = next !== Infinity;
      if (hold !== this.timerHeld) {
        this.timerHeld = hold;
        this.clock.holdTimer?.(this.timer, hold);
      }
      return;
    }
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    this.timerHeld = true;
    this.timer = undefined;
    this.timerAt = next;
    if (next === Infinity) return;
    this.timer = this.clock.setTimer(next, () => {
      this.timer = undefined;
      this.timerAt = Infinity;
      // what already arrived first (Link.receivePending): an ACK that waits in the socket stops
      // the retransmission this deadline would make
      if (this.link.receivePending) {
        this.link.receivePending();
        if (this.closed) return;
      }
      this.ticks++;
      this.core.tick(this.clock.now());
      this.service();
    });
  }

  private countDrop(reason: string): void {
    this.stats.rxDropped++;
    this.stats.drops[reason] = (this.stats.drops[reason] ?? 0) + 1;
  }
}

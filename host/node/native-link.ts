// The Node fast path: the device's port on the native datapath (datapath.ts, host/node/native).
// Nothing per datagram in JS on the way out and nothing per datagram on the way in:
//  - TX: the port hands a run of TX descriptors to `sendRing`, which gives the addon the ring
//    itself (its layout is the TX descriptor's, docs/TRANSPORT.md): sendmmsg, UDP GSO for runs of
//    equal-size datagrams to one peer, each segment's ICRC moved to the IPv4 ID Linux gives it.
//    The kernel has copied the bytes when the call returns, so the port releases them at once.
//  - RX: the addon watches the socket and recvmmsg's (with UDP_GRO) straight into slots in linear
//    memory, writing one batch record per datagram in the layout the core reads; the port makes
//    one core call per batch (rx_batch) and drains the TX ring before returning to libuv, so the
//    batch's ACKs and responses leave in the same turn.
// The socket is made as UdpLink's is (IPv4: DF and ID 0; IPv6: UDP checksum 0 accepted). Where
// the addon is missing `NativeUdpLink.open` says why and the host stays on node:dgram (udp.ts).
import { isIPv4, isIPv6 } from "node:net";
import { isMainThread } from "node:worker_threads";
import { Rxm, Rxr, Txd, TxFlag, type Link, type PacketPort } from "../core/link/index.js";
import { gidToAddress, parseGid } from "../core/net/index.js";
import {
  datapathAddon, datapathUnavailableReason, openDatapath, TX_GSO, TX_ICRC, type DatapathAddon, type NativeDatapath,
  type RxLayout, type TxLayout,
} from "./datapath.js";
import { DEFAULT_IN_FLIGHT_PACKETS, type UdpSendError } from "./udp.js";
import { errnoName } from "./errno.js";
import { SourcePortPool, type UdpSourcePorts } from "./sport-pool.js";
import { UdpLinkBase } from "./udp-link-base.js";
import { sockoptAddon } from "./sockopt.js";
import { envChoice, envChoiceOrInteger } from "./env.js";

/**
 * The TX ring's descriptor as the datapath reads it (the core's layout; stride and capacity from the
 * ring). With `icrc` (the ICRC offload) a descriptor the core marked TXF_ICRC_HOST gets its ICRC
 * computed by the addon as it leaves, over the descriptor's source address and port.
 */
export function txDescriptorLayout(cap: number, slot: number, icrc = false): TxLayout {
  return {
    stride: slot, ringCap: cap, dstAddr: Txd.DST, dstPort: Txd.DST_PORT, flags: -1, ipId: Txd.IP_ID, result: Txd.RESULT,
    ttl: Txd.TTL, tos: Txd.TOS, flowLabel: Txd.FLOW_LABEL,
    pieces: [
      { data: Txd.HDR, len: Txd.HDR_LEN, inline: true },
      { data: Txd.PAYLOAD, len: Txd.PAYLOAD_LEN },
      { data: Txd.TRAILER, len: Txd.TRAILER_LEN, inline: true },
    ],
    ...(icrc ? { srcAddr: Txd.SRC, srcPort: Txd.SRC_PORT, icrcFill: { word: Txd.FLAGS, bit: TxFlag.ICRC_HOST } } : {}),
  };
}

/** The core's batch record as the datapath writes it (the destination is the bound address, written once). */
export const RX_BATCH_LAYOUT: RxLayout = {
  stride: Rxr.SIZE, data: Rxr.DATA, length: Rxr.LENGTH, family: Rxm.IP_VERSION, src: Rxm.SRC, srcPort: Rxm.SRC_PORT,
  dst: -1, dstPort: Rxm.DST_PORT, ipId: Rxm.IP_ID, idHint: Rxr.ID_HINT, flags: Rxr.FLAGS,
};

/** The same with the ICRC offload: the addon computes each datagram's ICRC into Rxr.ICRC (flag RXR_ICRC_HOST). */
export const RX_BATCH_LAYOUT_ICRC: RxLayout = { ...RX_BATCH_LAYOUT, icrc: Rxr.ICRC };

/**
 * Whether a link offloads the ICRC: NativeUdpLinkOptions.icrcOffload, else env
 * SOFTROCE_ICRC_OFFLOAD ("0" off, "1" on), else on — where the addon has the carry-less-multiplication
 * CRC (x86-64 PCLMULQDQ). Without it the offload stays off: a table CRC in C is no faster than the
 * core's SIMD braid, so moving the work would buy nothing. `state` is what `devinfo -v` prints.
 */
export function icrcOffloadChoice(addon: DatapathAddon, asked?: boolean): { on: boolean; state: string } {
  const want = asked ?? envChoice("SOFTROCE_ICRC_OFFLOAD", ["0", "1"] as const) !== "0";
  if (!want) return { on: false, state: asked === false ? "off (asked for)" : "off (SOFTROCE_ICRC_OFFLOAD=0)" };
  if (!addon.crc32Clmul) {
    return { on: false, state: addon.crc32 ? "off (the CPU has no PCLMULQDQ: the core's CRC is as fast as a table CRC in C)" : "off (the socket addon predates the ICRC offload)" };
  }
  return { on: true, state: "on (TX and RX, PCLMULQDQ CRC-32 in the socket addon)" };
}

/** A link's busy poll: "adaptive" (gated windows of ADAPTIVE_BUSY_POLL_US), a fixed window in µs (every window opens), 0 off. */
export type BusyPoll = number | "adaptive";

/** NativeUdpLinkOptions.busyPollUs's default on the main thread. */
export const DEFAULT_BUSY_POLL: BusyPoll = "adaptive";

/**
 * Its default in a worker thread (the device worker's link among them): off. There the event loop a
 * window holds is also the one that hears the other threads (the device worker's doorbells from the
 * application thread, whose posts would wait for the window), and the answer to a received batch
 * comes from another thread, not from the socket. Measured for the device worker: with a 200 µs
 * window its 64 B round trip took 1.9-2.1x of the same device without it (bench/worker.mjs
 * BENCH_AB=1; docs/PERFORMANCE.md, "The levers, and the datapath's busy poll, side by side"); its own
 * look (workerAnswerSpinUs) watches the socket and the doorbells together instead.
 */
export const WORKER_THREAD_BUSY_POLL: BusyPoll = 0;

/**
 * The adaptive busy poll's window, µs: after a received batch that drained the socket, how long the
 * addon polls for the next datagram before it sleeps in epoll (docs/PERFORMANCE.md, "The adaptive
 * busy poll": the 64 B round trip's answer comes within it on this machine, quiet and loaded).
 */
export const ADAPTIVE_BUSY_POLL_US = 200;

/** The longest fixed busy-poll window (µs; the addon's setBusyPoll takes no more). */
export const MAX_BUSY_POLL_US = 1000;

/** A busy-poll setting checked: "adaptive", or whole µs 0..MAX_BUSY_POLL_US. */
export function checkBusyPoll(v: unknown): BusyPoll {
  if (v === "adaptive" || (typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= MAX_BUSY_POLL_US)) return v;
  throw new RangeError(`bad busyPollUs ${JSON.stringify(v)}: "adaptive" or whole µs 0..${MAX_BUSY_POLL_US}`);
}

/** Env SOFTROCE_BUSY_POLL_US, read strictly: "adaptive" or whole µs 0..MAX_BUSY_POLL_US; undefined when unset or empty. */
export function busyPollFromEnv(): BusyPoll | undefined {
  return envChoiceOrInteger("SOFTROCE_BUSY_POLL_US", ["adaptive"] as const, 0, MAX_BUSY_POLL_US, "µs");
}

interface LinkSettings {
  flush: "defer" | "now";
  busyPoll: BusyPoll;
  ackHold: "more" | "every";
}

/**
 * The flush, busy poll and ACK hold of a link: its options, else env SOFTROCE_FLUSH /
 * SOFTROCE_BUSY_POLL_US ("adaptive" or µs) / SOFTROCE_ACK_HOLD, else the defaults.
 */
function linkSettings(opts: NativeUdpLinkOptions): LinkSettings {
  const flush = opts.flush ?? envChoice("SOFTROCE_FLUSH", ["defer", "now"] as const) ?? DEFAULT_FLUSH;
  const busyPoll = checkBusyPoll(opts.busyPollUs ?? busyPollFromEnv() ?? (isMainThread ? DEFAULT_BUSY_POLL : WORKER_THREAD_BUSY_POLL));
  const ackHold = opts.ackHold ?? envChoice("SOFTROCE_ACK_HOLD", ["more", "every"] as const) ?? "more";
  return { flush, busyPoll, ackHold };
}

export interface NativeUdpLinkOptions {
  address: string;
  port: number;
  /** the device's TX ring capacity (OpenDeviceOptions.txRingSize; default 1024) */
  txRingSize?: number;
  recvBufferSize?: number;
  sendBufferSize?: number;
  /**
   * UDP GSO for runs of equal-size datagrams: "auto" (default) on IPv6, and on IPv4 when the
   * socket is on loopback (segmented in software, so each segment's IPv4 ID is known); true
   * everywhere (IPv4 toward peers whose egress device segments in software); false never.
   */
  gso?: boolean | "auto";
  /** UDP_GRO on receive (default true: a GSO send arrives whole and its segment index is its ID) */
  gro?: boolean;
  /** see UdpLinkOptions.inFlightPackets */
  inFlightPackets?: number;
  onSendError?: (e: UdpSendError) => void;
  /**
   * Busy poll after each received batch that drained the socket (NativeDatapath.setBusyPoll; env
   * SOFTROCE_BUSY_POLL_US): "adaptive" (default; in a worker thread the default is 0, DEFAULT_BUSY_POLL) polls up to ADAPTIVE_BUSY_POLL_US for the next
   * datagram while most recent windows caught one, else only every 16th window (a probe), at most
   * 1 ms a wake-up; a number (1..1000 µs) opens every window that long, at most 2 ms a wake-up
   * (CPU for round trips, whatever the traffic); 0 off. docs/PERFORMANCE.md, "The adaptive busy poll".
   */
  busyPollUs?: BusyPoll;
  /** when a received batch's ACKs and responses leave (NativeUdpLink.flush) */
  flush?: "now" | "defer";
  /**
   * With flush "defer": which received batches hold their plain ACKs until the application's
   * reaction, to leave with its reply in one send — "more" (default) only batches with more
   * datagrams behind them, "every" a lone request's too (NativeUdpLink.holdEveryBatch; env
   * SOFTROCE_ACK_HOLD). docs/PERFORMANCE.md, "One send per side per round trip".
   */
  ackHold?: "more" | "every";
  /** the datapath's addon (tests: null as if it were missing) */
  addon?: DatapathAddon | null;
  /**
   * ICRC offload: the addon computes the ICRC of every datagram the device sends (just before
   * sendmmsg, for the IPv4 ID it goes with) and of every datagram received (right after recvmmsg),
   * and the device skips its own pass (docs/PERFORMANCE.md, "ICRC offload"). Default: env
   * SOFTROCE_ICRC_OFFLOAD ("0" off), else on where the CPU has PCLMULQDQ (icrcOffloadChoice).
   */
  icrcOffload?: boolean;
  /** see UdpLinkOptions.udpSourcePorts (default "per-qp") */
  udpSourcePorts?: UdpSourcePorts;
  /** see UdpLinkOptions.sourcePortCap (default 1024) */
  sourcePortCap?: number;
}

/**
 * NativeUdpLink.flush's default: "defer" (while datagrams keep arriving, a received batch's plain
 * ACKs follow the application's reply in one send; a lone request's ACK leaves at once; streams
 * drain at once, see PacketPort's receiveBatch and holdingBack).
 */
export const DEFAULT_FLUSH: "now" | "defer" = "defer";

/** Receive geometry: recvmmsg takes up to 64 datagrams; with GRO a slot holds a whole GSO send. */
const RX_SLOTS = 64;
const RX_SLOTS_GRO = 16;
const RX_SLOT = 4608; // an MTU-4096 RoCE datagram and its headers, rounded up
const RX_SLOT_GRO = 65536;
const RX_RECORDS = 256;

export class NativeUdpLink extends UdpLinkBase implements Link {
  port: PacketPort | undefined;
  readonly path = "native" as const;
  readonly limitations: string[] = [];
  /** the same counters as UdpLink's, plus the datapath's own (`datapathStats()`) */
  readonly stats = {
    sent: 0, sendErrors: 0, received: 0, backpressured: 0, resumed: 0, sendErrorsByCode: {} as Record<string, number>,
    /** receivePending: looks at the socket before an expired timer acts, and those that found datagrams */
    pendingChecks: 0, pendingHits: 0,
  };
  readonly localPort: number;
  readonly inFlightPackets: number;
  readonly gso: boolean;
  readonly gro: boolean;
  /** ICRC offload: asked for and possible at open (the layouts carry it); `icrcOffloadState` says what the device took */
  readonly icrcOffload: boolean;
  icrcOffloadState: string;
  private flagsOr: number;
  private dv: DataView | undefined;
  private ringData = 0;
  private ringMask = 0;
  private slot = 0;
  private records = 0;
  private waiting = false;
  /** the pool socket a writable wait watches (-1: the datapath's own, or none) */
  private waitFd = -1;
  private shut = false;
  private readonly onSendError: ((e: UdpSendError) => void) | undefined;
  private readonly resumeFn = () => {
    this.waiting = false;
    this.waitFd = -1;
    this.stats.resumed++;
    this.port?.resume();
  };

  private constructor(
    readonly datapath: NativeDatapath,
    readonly address: string,
    private readonly opts: NativeUdpLinkOptions,
    icrc: { on: boolean; state: string },
    settings: LinkSettings,
  ) {
    super();
    this.icrcOffload = icrc.on;
    this.icrcOffloadState = icrc.state;
    this.localPort = datapath.port;
    this.inFlightPackets = opts.inFlightPackets ?? DEFAULT_IN_FLIGHT_PACKETS;
    this.onSendError = opts.onSendError;
    this.flush = settings.flush;
    this.holdEveryBatch = settings.ackHold === "every";
    this.setBusyPoll(settings.busyPoll);
    const info = datapath.info();
    const loopback = datapath.family === 4 && address.startsWith("127.");
    const gsoWanted = opts.gso === undefined || opts.gso === "auto" ? datapath.family === 6 || loopback : opts.gso;
    this.gso = gsoWanted && info.gso;
    this.gro = info.gro;
    this.flagsOr = TX_ICRC | (this.gso ? TX_GSO : 0);
    if (gsoWanted && !info.gso) this.limitations.push("UDP GSO unavailable (the kernel does not know UDP_SEGMENT): one datagram per send");
    if (datapath.family === 6 && info.flowLabel === false) {
      this.limitations.push("IPv6 flow label: the kernel refused IPV6_FLOWINFO_SEND or IPV6_AUTOFLOWLABEL; datagrams carry the kernel's label, not the address handle's");
    }
    const sockets = sockoptAddon();
    if ((opts.udpSourcePorts ?? "per-qp") === "per-qp" && sockets) {
      this.pool = new SourcePortPool({ address, family: datapath.family, cap: opts.sourcePortCap, addon: sockets, inUse: () => this.port?.sourcePortsInUse(), onClose: (fd) => this.poolSocketClosing(fd) });
    }
  }

  /**
   * Opens the datapath's socket at `address`:`port` (the TX layout follows the device's ring,
   * `txRingSize`); `{ reason }` when the addon is missing (use UdpLink instead). Socket errors throw.
   */
  static open(opts: NativeUdpLinkOptions): { link: NativeUdpLink; reason?: undefined } | { link?: undefined; reason: string } {
    if (!isIPv4(opts.address) && !isIPv6(opts.address)) throw new TypeError(`not an IPv4 or IPv6 address: ${opts.address}`);
    if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new RangeError(`bad UDP port ${opts.port}`);
    const pk = opts.inFlightPackets;
    if (pk !== undefined && (!Number.isInteger(pk) || pk < 0 || pk > 0xffffffff)) throw new RangeError(`bad inFlightPackets ${pk}`);
    const addon = opts.addon === undefined ? datapathAddon() : opts.addon;
    if (!addon) return { reason: datapathUnavailableReason() ?? "socket addon unavailable" };
    const cap = opts.txRingSize ?? 1024;
    const gro = opts.gro ?? true;
    const icrc = icrcOffloadChoice(addon, opts.icrcOffload);
    const settings = linkSettings(opts); // before the socket opens: a bad setting leaves nothing open
    const r = openDatapath(
      {
        // the device's memory comes at attach (setMemory); until then an empty buffer
        memory: new ArrayBuffer(0),
        address: opts.address, port: opts.port,
        recvBufferSize: opts.recvBufferSize, sendBufferSize: opts.sendBufferSize,
        gro, gso: opts.gso !== false,
        txLayout: txDescriptorLayout(cap, TX_SLOT_BYTES, icrc.on), rxLayout: icrc.on ? RX_BATCH_LAYOUT_ICRC : RX_BATCH_LAYOUT,
      },
      addon,
    );
    if (!r.datapath) return { reason: r.reason };
    return { link: new NativeUdpLink(r.datapath, opts.address, opts, icrc, settings) };
  }

  /** Bytes the peer can buffer: half our receive buffer as the kernel granted it (see UdpLink). */
  get inFlightBudget(): number {
    return Math.floor(this.datapath.info().recvBufferSize / 2);
  }

  attachPort(port: PacketPort): void {
    this.port = port;
    const ring = port.ringLayout();
    if (ring.cap !== (this.opts.txRingSize ?? 1024) || ring.slot !== TX_SLOT_BYTES) {
      throw new RangeError(`the device's TX ring (${ring.cap} x ${ring.slot} B) is not the one the datapath was opened for`);
    }
    this.ringData = ring.data;
    this.ringMask = ring.cap - 1;
    this.slot = ring.slot;
    // before anything is sent: the device leaves the ICRC of its descriptors to the datapath (on
    // receive the datapath's value comes with each record; a core without the export ignores it)
    if (this.icrcOffload && !port.setIcrcOffload(true)) this.icrcOffloadState = "off (the device's core has no icrc_offload)";
    const area = port.rxBatchArea(RX_RECORDS, this.gro ? RX_SLOTS_GRO : RX_SLOTS, this.gro ? RX_SLOT_GRO : RX_SLOT);
    if (!area) throw new Error("the core has no batched receive (rx_batch)");
    // linear memory does not grow from here on: views are taken once
    const memory = port.memory;
    this.datapath.setMemory(memory);
    this.dv = new DataView(memory.buffer);
    this.records = area.records;
    // the destination of every datagram is the bound address: written once into each record
    const u8 = new Uint8Array(memory.buffer);
    const dst = parseGid(this.address.includes(":") ? this.address : `::ffff:${this.address}`);
    for (let i = 0; i < area.recordCount; i++) u8.set(dst, area.records + i * Rxr.SIZE + Rxm.DST);
    const recs = area.records;
    this.datapath.receive(
      { area: area.slots, slotSize: area.slotSize, slots: area.slotCount, meta: recs, metaCap: area.recordCount },
      (count, error, more) => {
        if (error) {
          this.limitations.push(`receiving stopped: ${errnoName(-error)}`);
          return;
        }
        this.stats.received += count;
        // a batch that emptied the socket holds no ACK (PacketPort.receiveBatch) unless every batch
        // holds; an addon built before `more` holds as it did
        this.port?.receiveBatch(recs, count, more !== 0 || this.holdEveryBatch);
      },
    );
  }

  /**
   * Link.receivePending: one non-blocking look at the socket (poll, then recvmmsg batches of what
   * is there, handed to the port inside this call) before the port acts on an expired timer.
   * Nothing when called from inside a batch (the addon does not nest). Counted (pendingChecks,
   * pendingHits: checks that found datagrams).
   */
  receivePending(): void {
    this.stats.pendingChecks++;
    if (this.datapath.pollReceive(0) > 0) this.stats.pendingHits++;
  }

  deferFlush(fn: () => void): void {
    if (this.flush !== "defer") return fn();
    if (this.pendingFlush) return;
    this.pendingFlush = fn;
    // a microtask queued now runs after the completions' waiters were resolved; the tick it queues
    // runs once the whole microtask queue is empty, i.e. after every promise continuation the batch
    // set off (the application's posts) and before control returns to libuv: no loop hop
    queueMicrotask(this.afterMicrotasks);
  }
  private readonly afterMicrotasks = (): void => process.nextTick(this.runPendingFlush);
  /** A deferred flush not yet run (the port also drains its ring when it closes). */
  private pendingFlush: (() => void) | undefined;
  private readonly runPendingFlush = (): void => {
    const fn = this.pendingFlush;
    this.pendingFlush = undefined;
    fn?.();
  };
  /**
   * Link.deferFlush: "defer" holds the plain ACKs of a received batch that did not empty the
   * socket (the addon's `more`: datagrams keep arriving) until the promise continuations the
   * batch's completions set off have run (a nextTick queued from a microtask, same turn: tens of
   * µs at most), and while one is held what the application posts waits with it, so a reply and
   * the ACK leave in one sendmmsg (one UDP GSO send on loopback, the reply first); anything else
   * drains at once. A batch that emptied the socket (a lone request: its sender is waiting) holds
   * nothing: its ACK leaves before the application's reaction runs, as with "now", and wakes the
   * peer while the reply is made — on an idle machine that early wake-up is worth more than the
   * system call and the peer's wake-up it costs (docs/PERFORMANCE.md, "The Node fast path").
   * "now" drains everything before the receive callback returns (rxe's behaviour: send_ack from
   * the responder task at once). Default from NativeUdpLinkOptions.flush, else env SOFTROCE_FLUSH
   * ("defer" | "now"), else DEFAULT_FLUSH.
   */
  flush: "now" | "defer";

  /**
   * With flush "defer": hold the ACKs of every received batch, a lone request's too (default false:
   * only batches with more datagrams behind them; NativeUdpLinkOptions.ackHold "every" sets it). The
   * device worker's `workerAckHold` sets it: there the answer comes from the application thread, and
   * the held ACK waits for it (DeviceServer.flushAfterTurn).
   */
  holdEveryBatch = false;

  /** Link.holdAcks: a deferred flush sends a batch's plain ACKs after the application's posts (batches with more behind them). */
  get holdAcks(): boolean {
    return this.flush === "defer";
  }

  /** The port sends through `sendRing`; a datagram one at a time has no place here. */
  send(): boolean {
    throw new Error("NativeUdpLink sends TX descriptors in place (sendRing), not single datagrams");
  }

  /**
   * Link.sendRing: one sendBatch over the run. With per-QP ports the port cut the ring into runs of
   * one source port (`srcPort`, checked: the device's or open in the pool), each sent from that
   * port's socket; the descriptors' ports are not read here.
   */
  sendRing(first: number, count: number, srcPort?: number): number {
    const fd = this.pool && srcPort !== undefined && srcPort !== this.localPort ? this.pool.fd(srcPort) : -1;
    const n = this.datapath.sendBatch(this.ringData, first, count, this.flagsOr, fd);
    const dv = this.dv!;
    let ok = 0;
    for (let i = 0; i < n; i++) {
      const d = this.ringData + ((first + i) & this.ringMask) * this.slot;
      if (dv.getInt32(d + Txd.RESULT, true) >= 0) ok++;
      else this.sendFailed(d, -dv.getInt32(d + Txd.RESULT, true));
    }
    this.stats.sent += ok;
    if (n < count && !this.waiting) {
      this.waiting = true;
      this.stats.backpressured++;
      // the wait watches the socket that pushed back: a pool socket's, or the datapath's own
      this.waitFd = fd;
      this.datapath.onWritable(this.resumeFn, fd);
    }
    return n;
  }

  /**
   * The pool closes the socket a writable wait watches: the wait moves to the datapath's own socket
   * (the watch on the pool socket's dup ends now; the port resumes on the next turn and the ring's
   * next run goes wherever its port now leads).
   */
  private poolSocketClosing(fd: number): void {
    if (!this.waiting || this.waitFd !== fd || this.shut) return;
    this.waitFd = -1;
    this.datapath.onWritable(this.resumeFn);
  }

  private sendFailed(d: number, errno: number): void {
    const dv = this.dv!;
    const code = errnoName(errno);
    this.stats.sendErrors++;
    this.stats.sendErrorsByCode[code] = (this.stats.sendErrorsByCode[code] ?? 0) + 1;
    if (!this.onSendError) return;
    const length = dv.getUint32(d + Txd.HDR_LEN, true) + dv.getUint32(d + Txd.PAYLOAD_LEN, true) + dv.getUint32(d + Txd.TRAILER_LEN, true);
    const dst = gidToAddress(new Uint8Array(dv.buffer, d + Txd.DST, 16).slice());
    this.onSendError({ code, length, dst, dstPort: dv.getUint32(d + Txd.DST_PORT, true), message: `${code} (sendmmsg)` });
  }

  /** The busy poll as set (NativeUdpLinkOptions.busyPollUs); `busyPollState` says what runs. */
  busyPoll: BusyPoll = 0;
  /** What `devinfo -v` prints as udp_busy_poll: "adaptive (...)", "fixed N µs (...)", "off" (and why). */
  busyPollState = "off";

  /** Sets the busy poll (see NativeUdpLinkOptions.busyPollUs); a fresh gate when adaptive. */
  setBusyPoll(v: BusyPoll): void {
    v = checkBusyPoll(v);
    this.busyPoll = v;
    if (v === "adaptive") {
      this.busyPollState = this.datapath.setBusyPoll(ADAPTIVE_BUSY_POLL_US, true)
        ? `adaptive (${ADAPTIVE_BUSY_POLL_US} µs windows after a received batch, gated on their hit rate)`
        : "off (the socket addon predates the adaptive busy poll; run `node host/node/native/build.mjs` to rebuild it)";
    } else {
      this.datapath.setBusyPoll(v);
      this.busyPollState = v ? `fixed ${v} µs (every window opens)` : "off";
    }
  }

  /** The datapath's counters (system calls, GSO sends and segments, GRO splits, EAGAINs). */
  datapathStats() {
    return this.datapath.stats();
  }

  async close(): Promise<void> {
    this.runPendingFlush();
    this.shut = true;
    this.datapath.close();
    await this.closePoolAndGroups();
  }
}

/** Bytes of one TX descriptor (assembly/transport/net.ts TXD_SLOT). */
export const TX_SLOT_BYTES = 176;

// The native batched UDP datapath (host/node/native/datapath.c), typed. One socket moves
// datagrams straight between the kernel and ONE memory buffer — the wasm linear memory, an
// ArrayBuffer or a SharedArrayBuffer — with no JS call and no allocation per datagram:
//  - TX: `sendBatch` sends a batch of records (each one datagram as up to four pieces of the
//    buffer, plus its destination) with sendmmsg; runs to one peer of equal length that allow
//    it (TX_GSO) go as one UDP GSO send, each segment's ICRC moved to the IPv4 ID Linux gives
//    it (TX_ICRC). Results per record; EAGAIN ends the batch early (resume on `onWritable`).
//  - RX: `receive` lets the addon watch the socket (uv_poll) and, on readable, recvmmsg
//    straight into slots of the buffer (GRO super-datagrams split by segment size), write one
//    metadata record per datagram, and call back once per batch with the count.
// The record layouts are defined here, once, and handed to the addon as offsets, so the
// device's TX descriptors can later be read in place (docs/PERFORMANCE.md, "Native datapath").
// Without the addon `openDatapath` returns the reason and the host keeps node:dgram (udp.ts).
import { isIPv4, isIPv6 } from "node:net";
import { sockoptAddon, sockoptUnavailableReason } from "./sockopt.js";

/** TX record flag: the record may share a UDP GSO send with its neighbours (same peer, same length). */
export const TX_GSO = 1;
/** TX record flag: the datagram's last 4 bytes are a RoCEv2 ICRC computed for the IPv4 ID in `ipId`. */
export const TX_ICRC = 2;
/**
 * TX record flag (ICRC offload): the addon computes the datagram's RoCEv2 ICRC into its last 4 bytes
 * as it sends it, for the IPv4 ID it goes with (written to `ipId`), over the layout's `srcAddr` and
 * `srcPort` (absent: the socket's own). A layout's `icrcFill` word asks for it per record, and the
 * addon clears that bit once it has filled the ICRC in: send such records with TX_ICRC too, so that
 * one going out again (after EAGAIN, a GSO fallback, or a second sendBatch) has its ICRC moved to
 * the ID it then gets. A request through `flagsOr` is not cleared: the ICRC is computed each time.
 */
export const TX_ICRC_FILL = 4;
/** RX record flag: the datagram was longer than its slot and was cut. */
export const RX_TRUNCATED = 1;
/** RX record flag: the datagram is a segment of a GRO super-datagram (its index is `idHint`). */
export const RX_GRO = 2;
/** RX record flag (ICRC offload, a layout with `icrc`): the record's `icrc` word holds the datagram's ICRC computed for IPv4 ID `idHint`. */
export const RX_ICRC = 4;
/** The `ipId` the addon writes on receive: a UDP socket never sees the IP header. */
export const RX_IP_ID_UNSEEN = 0xffffffff;

/** One gather piece of a TX record: where its data and its length are. */
export interface TxPieceLayout {
  /** inline: the bytes sit at record + `data`; otherwise record + `data` holds a u32 buffer offset */
  data: number;
  /** record + `len` holds the piece's length (u32; 0 = no piece) */
  len: number;
  inline?: boolean;
}

/** Byte offsets of the fields of a TX record (little-endian u32 unless said otherwise); -1: absent. */
export interface TxLayout {
  stride: number;
  /** 0: records form a table (record i at base + i * stride); a power of two: a ring of that many */
  ringCap: number;
  /** u8[16]: destination address as a GID (IPv4 as ::ffff:a.b.c.d) */
  dstAddr: number;
  dstPort: number;
  /** TX_GSO | TX_ICRC (or -1: only the batch's flagsOr) */
  flags: number;
  /** in: the IPv4 ID the ICRC was computed for; out: the ID the datagram went with */
  ipId: number;
  /** out, i32: bytes sent, or -errno (EMSGSIZE, ENOBUFS, EFAULT for a piece outside the buffer, ...) */
  result: number;
  pieces: TxPieceLayout[];
  /**
   * u32: the datagram's TTL / hop limit and TOS / traffic class (the address handle's), sent as
   * per-datagram cmsgs (IP_TTL, IP_TOS; IPV6_HOPLIMIT, IPV6_TCLASS). Absent or -1: the socket's.
   */
  ttl?: number;
  tos?: number;
  /**
   * u32: the IPv6 flow label (low 20 bits; the address handle's GRH flow label), sent as the
   * destination's sin6_flowinfo on a socket with IPV6_FLOWINFO_SEND and no automatic label, so 0
   * stays 0 (`DatapathInfo.flowLabel` says whether the socket took it). Absent or -1: 0. IPv4: unused.
   */
  flowLabel?: number;
  /** ICRC offload (TX_ICRC_FILL): u8[16] source GID and u32 UDP source port the ICRC covers; absent or -1: the socket's */
  srcAddr?: number;
  srcPort?: number;
  /** ICRC offload: a record whose word at `word` has `bit` set gets its ICRC computed as it leaves (and the bit cleared) */
  icrcFill?: { word: number; bit: number };
}

/** The default TX record: a table of 64-byte records with up to four pieces anywhere in the buffer. */
export const TX_RECORD = {
  stride: 64, ringCap: 0, dstAddr: 0, dstPort: 16, flags: 20, ipId: 24, result: 28,
  pieces: [{ data: 32, len: 36 }, { data: 40, len: 44 }, { data: 48, len: 52 }, { data: 56, len: 60 }],
} as const satisfies TxLayout;

/** Byte offsets of the fields the addon writes per received datagram; -1: not written. */
export interface RxLayout {
  stride: number;
  /** u32: where the datagram's bytes are in the buffer */
  data: number;
  length: number;
  /** u32: 4 or 6 */
  family: number;
  /** u8[16]: source address as a GID */
  src: number;
  srcPort: number;
  /** u8[16]: destination address (with `pktinfo`; zeros otherwise) */
  dst: number;
  dstPort: number;
  /** u32: always RX_IP_ID_UNSEEN */
  ipId: number;
  /** u32: the segment's index in its GRO super-datagram (its IPv4 ID when a softroce GSO send made it), else 0 */
  idHint: number;
  /** u32: RX_TRUNCATED | RX_GRO | RX_ICRC */
  flags: number;
  /** ICRC offload: u32, the datagram's ICRC as computed on arrival for IPv4 ID `idHint` (RX_ICRC set); absent or -1: not computed */
  icrc?: number;
}

export const RX_RECORD = {
  stride: 64, data: 0, length: 4, family: 8, srcPort: 12, src: 16, dst: 32, dstPort: 48, ipId: 52, idHint: 56, flags: 60,
} as const satisfies RxLayout;

export interface DatapathOptions {
  /** the buffer every offset refers to */
  memory: WebAssembly.Memory | ArrayBuffer | SharedArrayBuffer | Uint8Array;
  /** local IPv4 or IPv6 address to bind */
  address: string;
  /** UDP port (0: any free one; `port` on the datapath says which) */
  port: number;
  reuseAddr?: boolean;
  /** SO_RCVBUF / SO_SNDBUF to ask for (default 4 MiB each; Linux caps them at net.core.[rw]mem_max) */
  recvBufferSize?: number;
  sendBufferSize?: number;
  /** UDP_GRO on receive (default false): fewer, larger receives; each slot must then hold 65536 bytes */
  gro?: boolean;
  /** use UDP GSO for TX_GSO runs (default true; off where the kernel lacks UDP_SEGMENT) */
  gso?: boolean;
  /** IP_PKTINFO / IPV6_RECVPKTINFO: fill `dst` of each RX record (default false: the bound address is the destination) */
  pktinfo?: boolean;
  /**
   * IP_RECVERR / IPV6_RECVERR (default false): ICMP errors for what this socket sends are queued on
   * it. Each one wakes the receiver as a socket error, which the addon reads, clears and counts
   * (`rxSocketErrors`, `rxLastSocketError`) and receiving goes on. Tests use it to provoke one.
   */
  recvErr?: boolean;
  txLayout?: TxLayout;
  rxLayout?: RxLayout;
}

export interface ReceiveOptions {
  /** first slot's offset; slot i is at area + i * slotSize */
  area: number;
  /** bytes a slot holds: the largest datagram expected (65536 with GRO) */
  slotSize: number;
  /** slots, one per datagram of a recvmmsg (at most 64) */
  slots: number;
  /** where the metadata records go, and how many fit; a batch never holds more */
  meta: number;
  metaCap: number;
  /** recvmmsg'd datagrams per wakeup before the loop gets the thread back (default 256) */
  budget?: number;
}

/**
 * Called once per received batch: `count` records at `meta`, valid until the callback returns
 * (the next batch reuses the slots). `error` is 0, or a negative errno once when receiving
 * stopped for good (-EFAULT: the buffer was detached, e.g. a non-shared memory grew). `more`: 1
 * when the socket may hold more datagrams behind this batch (the receive filled every slot, or
 * the records ran out mid-receive: another batch follows in this wake-up), 0 when the receive
 * found it drained; undefined from an addon built before it.
 */
export type BatchHandler = (count: number, error: number, more?: number) => void;

export interface DatapathInfo {
  fd: number;
  family: 4 | 6;
  port: number;
  /** what the kernel granted (Linux reports twice the size asked for, bookkeeping included) */
  recvBufferSize: number;
  sendBufferSize: number;
  gso: boolean;
  gro: boolean;
  pktinfo: boolean;
  /** ICRC offload: the TX layout asks for filled ICRCs (icrcFill), the RX layout for computed ones (icrc) */
  icrcTx: boolean;
  icrcRx: boolean;
  /** the CPU runs the addon's carry-less-multiplication CRC (x86-64 PCLMULQDQ); without it the offload is not used */
  icrcClmul: boolean;
  /** IPv6: each datagram leaves with its record's flow label (the layout has one; IPV6_FLOWINFO_SEND on, IPV6_AUTOFLOWLABEL off) */
  flowLabel: boolean;
  closed: boolean;
  /** receive() is on, and the addon's uv_poll watches the socket for readable (absent in older builds) */
  receiving?: boolean;
  watchingReadable?: boolean;
  /** the socket holds a datagram now (a poll without waiting), and the size of the one at its head (FIONREAD; 0: none) */
  readableNow?: boolean;
  headDatagramBytes?: number;
}

export interface DatapathStats {
  txDatagrams: number; txBytes: number; txSyscalls: number; txGsoSends: number; txGsoSegments: number;
  txGsoFallbacks: number; txErrors: number; txBadRecords: number; txEagain: number;
  rxDatagrams: number; rxBytes: number; rxSyscalls: number; rxGroSplits: number; rxTruncated: number;
  rxBatches: number; rxWakeups: number; rxErrors: number;
  /** batches delivered with `more` set (the socket not drained behind them) */
  rxBatchesMore: number;
  /**
   * Busy poll (setBusyPoll): windows opened, windows that caught a datagram (no epoll sleep before
   * it), windows the adaptive gate held back (absent in builds before it), empty polls, and windows
   * ended because a yield came back after a whole window (the CPU was wanted elsewhere: a miss).
   */
  rxBusyPolls: number; rxBusyHits: number; rxBusyGated?: number; rxBusySpins?: number; rxBusyLate?: number; rxBusyReady?: number;
  /** pollReceive: calls, and calls that found datagrams before their window ended */
  rxPollCalls: number; rxPollHits: number;
  /** ICRC offload: datagrams whose ICRC the addon filled in on TX, and computed on RX */
  txIcrcFilled: number; rxIcrcComputed: number;
  /**
   * Socket errors (epoll's POLLERR: an ICMP error with recvErr, an error recvmmsg kept for the next
   * call) read and cleared, receiving going on; and the errno the last one carried (0: none yet).
   * Absent in older builds.
   */
  rxSocketErrors?: number; rxLastSocketError?: number;
}

interface NativeHandle {
  sendBatch(base: number, first: number, count: number, flagsOr: number, fromFd?: number): number;
  receive(area: number, slotSize: number, slots: number, meta: number, metaCap: number, budget: number, fn: BatchHandler): void;
  stopReceive(): void;
  setBusyPoll(us: number, adaptive?: number, capUs?: number): void;
  slowYield?(us: number): void;
  pollReceive?(us: number): number;
  onWritable(fn: () => void, fd?: number): void;
  setMemory(m: Uint8Array | ArrayBuffer): void;
  info(): DatapathInfo;
  stats(): DatapathStats;
  close(): void;
}

/** What the addon adds for the datapath (host/node/native/datapath.c). */
export interface DatapathAddon {
  Datapath: new (memory: Uint8Array | ArrayBuffer, socket: object, tx: Int32Array, rx: Int32Array) => NativeHandle;
  patchIcrcId(memory: Uint8Array | ArrayBuffer, offset: number, length: number, fromId: number, toId: number): void;
  /** The offload's raw CRC-32 register after [offset, offset + length) from `crc` (absent in older builds). */
  crc32?(memory: Uint8Array | ArrayBuffer, offset: number, length: number, crc: number): number;
  /** The ICRC the offload computes for the IPv4 (DF) or IPv6 RoCEv2 packet at [offset, offset + length), -1 when not one. */
  icrcOfPacket?(memory: Uint8Array | ArrayBuffer, offset: number, length: number): number;
  /** The CPU runs the carry-less-multiplication CRC. */
  crc32Clmul?: boolean;
  /** It also runs the 256-bit one (AVX2 + VPCLMULQDQ: two lanes an instruction), for runs of 256 bytes or more. */
  crc32Vclmul?: boolean;
  /** Keeps runs of 256 bytes or more off the 256-bit path (false) or lets them on it (true, the default); returns whether they take it now. */
  crc32Wide?(on: boolean): boolean;
}

/** The datapath part of a loaded addon module, or why it cannot serve. */
export function datapathAddonFrom(mod: unknown, missing?: string): { addon: DatapathAddon; reason?: undefined } | { addon?: undefined; reason: string } {
  if (!mod) return { reason: missing ?? "socket addon not loaded" };
  const m = mod as Partial<DatapathAddon>;
  if (typeof m.Datapath !== "function" || typeof m.patchIcrcId !== "function") {
    return { reason: "the socket addon was built without the datapath; run `node host/node/native/build.mjs` to rebuild it" };
  }
  return { addon: m as DatapathAddon };
}

/** The addon's datapath, or undefined (`datapathUnavailableReason()` says why). */
export function datapathAddon(): DatapathAddon | undefined {
  return datapathAddonFrom(sockoptAddon(), sockoptUnavailableReason()).addon;
}

export function datapathUnavailableReason(): string | undefined {
  return datapathAddonFrom(sockoptAddon(), sockoptUnavailableReason()).reason;
}

/** A TX layout as the addon's constructor takes it: [stride, ringCap, dstAddr, dstPort, flags, ipId, result, n, (data, len, inline) x n, ttl, tos, flowLabel, srcAddr, srcPort, icrcFill word, bit]. */
export function txLayoutWords(l: TxLayout): Int32Array {
  if (l.pieces.length < 1 || l.pieces.length > 4) throw new RangeError("TX layout: 1..4 pieces");
  const w = [l.stride, l.ringCap, l.dstAddr, l.dstPort, l.flags, l.ipId, l.result, l.pieces.length];
  for (const p of l.pieces) w.push(p.data, p.len, p.inline ? 1 : 0);
  w.push(l.ttl ?? -1, l.tos ?? -1, l.flowLabel ?? -1, l.srcAddr ?? -1, l.srcPort ?? -1, l.icrcFill?.word ?? -1, l.icrcFill?.bit ?? 0);
  return Int32Array.from(w);
}

/** An RX layout as the addon's constructor takes it: [stride, data, length, family, src, srcPort, dst, dstPort, ipId, idHint, flags, icrc]. */
export function rxLayoutWords(l: RxLayout): Int32Array {
  return Int32Array.from([l.stride, l.data, l.length, l.family, l.src, l.srcPort, l.dst, l.dstPort, l.ipId, l.idHint, l.flags, l.icrc ?? -1]);
}

function memoryView(m: DatapathOptions["memory"]): Uint8Array {
  if (m instanceof Uint8Array) return m;
  if (m instanceof WebAssembly.Memory) return new Uint8Array(m.buffer);
  return new Uint8Array(m);
}

export class NativeDatapath {
  readonly family: 4 | 6;
  /** the bound UDP port */
  readonly port: number;
  readonly txLayout: TxLayout;
  readonly rxLayout: RxLayout;

  constructor(private readonly h: NativeHandle, family: 4 | 6, txLayout: TxLayout, rxLayout: RxLayout) {
    this.family = family;
    this.port = h.info().port;
    this.txLayout = txLayout;
    this.rxLayout = rxLayout;
  }

  /**
   * Sends records first .. first + count - 1 of the table (or ring) at `base`; `flagsOr` is OR'ed into
   * every record's flags. Returns how many records were dealt with: `count`, or fewer when the socket
   * said EAGAIN (the rest are untouched but for their ipId/ICRC, and their result reads 0: send them
   * again after `onWritable`). Each record's `result` says bytes sent or -errno; nothing throws per datagram.
   * `fromFd`: send from that bound UDP socket of the same family instead (a QP's own source port,
   * sport-pool.ts); -1 or absent: the datapath's socket.
   */
  sendBatch(base: number, first: number, count: number, flagsOr = 0, fromFd = -1): number {
    return fromFd < 0 ? this.h.sendBatch(base, first, count, flagsOr) : this.h.sendBatch(base, first, count, flagsOr, fromFd);
  }

  /** Starts (or re-targets) receiving; `onBatch` runs once per batch (see BatchHandler). */
  receive(o: ReceiveOptions, onBatch: BatchHandler): void {
    this.h.receive(o.area, o.slotSize, o.slots, o.meta, o.metaCap, o.budget ?? 256, onBatch);
  }

  stopReceive(): void {
    this.h.stopReceive();
  }

  /**
   * Busy polling: after a received batch that drained the socket the addon keeps polling it (yielding
   * the CPU between polls) up to `us` µs for the next datagram instead of sleeping in epoll (a
   * wake-up costs tens of µs across CPUs). 0 (default) off; 0..1000. `adaptive`: a window opens only
   * while most recent windows caught a datagram (else every 16th, a probe; host/node/native/poll_gate.h),
   * and one wake-up spends at most 1 ms in windows; fixed (default): every window, at most 2 ms.
   * `capUs` (1..2000, benches): another bound on what one wake-up spends in windows. Returns false
   * when adaptive (or a cap) was asked for and the addon predates it (polling stays off).
   */
  setBusyPoll(us: number, adaptive = false, capUs?: number): boolean {
    if ((adaptive || capUs !== undefined) && !this.hasAdaptiveBusyPoll) {
      this.h.setBusyPoll(0);
      return false;
    }
    if (adaptive || capUs !== undefined) this.h.setBusyPoll(us, adaptive ? 1 : 0, capUs ?? 0);
    else this.h.setBusyPoll(us);
    return true;
  }

  /**
   * Fault injection (tests): each yield between busy polls also sleeps `us` µs (0..1000000; 0 off),
   * as a yield beside CPU hogs can last a scheduler tick. An addon built before it: an error.
   */
  slowYield(us: number): void {
    if (!this.h.slowYield) throw new Error("slowYield: the datapath addon predates it (rebuild it: node host/node/native/build.mjs)");
    this.h.slowYield(us);
  }

  /** The addon's busy poll has the gate (it counts rxBusyGated). */
  get hasAdaptiveBusyPoll(): boolean {
    return this.h.stats().rxBusyGated !== undefined;
  }

  /**
   * A busy poll now, typically right after a send whose answer comes soon: checks the socket
   * without sleeping for up to `us` µs (0..2000) and, once datagrams are there, receives them as a
   * readable socket would (the `receive` batch handler runs inside this call); returns how many
   * arrived. 0: none in time, not receiving, called from inside a batch handler (no nesting), or
   * an addon built before pollReceive. The wait holds this thread and a CPU.
   */
  pollReceive(us: number): number {
    return this.h.pollReceive ? this.h.pollReceive(us) : 0;
  }

  /**
   * `fn` once, when the socket can take more (after sendBatch returned less than its count): the
   * datapath's own, or with `fd` (sendBatch's fromFd, a pool socket) that one — watched on a dup of
   * it, closed when the wait ends, when a new onWritable replaces it, or when the datapath closes.
   */
  onWritable(fn: () => void, fd?: number): void {
    if (fd === undefined || fd < 0) this.h.onWritable(fn);
    else this.h.onWritable(fn, fd);
  }

  /** Points the datapath at a new view of the buffer (a non-shared wasm memory that grew). */
  setMemory(m: DatapathOptions["memory"]): void {
    this.h.setMemory(memoryView(m));
  }

  info(): DatapathInfo {
    return this.h.info();
  }

  stats(): DatapathStats {
    return this.h.stats();
  }

  /** Stops receiving and closes the socket; later calls throw ERR_SOCKET_CLOSED. */
  close(): void {
    this.h.close();
  }
}

/**
 * Opens a datapath on a new socket bound to `address`:`port`, with what udp.ts's sockets get
 * (IPv4: DF and ID 0; IPv6: UDP checksum 0 accepted), nonblocking, buffers sized, and GRO when
 * asked. Without the addon: `{ reason }`, and the host stays on node:dgram. Socket errors throw.
 */
export function openDatapath(
  opts: DatapathOptions,
  /** null: as if the addon were missing */
  addon: DatapathAddon | null | undefined = datapathAddon(),
): { datapath: NativeDatapath; reason?: undefined } | { datapath?: undefined; reason: string } {
  if (!addon) return { reason: datapathUnavailableReason() ?? "socket addon unavailable" };
  const family = isIPv4(opts.address) ? 4 : isIPv6(opts.address) ? 6 : 0;
  if (!family) throw new TypeError(`not an IPv4 or IPv6 address: ${opts.address}`);
  const tx = opts.txLayout ?? TX_RECORD;
  const rx = opts.rxLayout ?? RX_RECORD;
  const h = new addon.Datapath(
    memoryView(opts.memory),
    {
      family, address: opts.address, port: opts.port, reuseAddr: opts.reuseAddr ?? false,
      recvBufferSize: opts.recvBufferSize ?? 4 << 20, sendBufferSize: opts.sendBufferSize ?? 4 << 20,
      gro: opts.gro ?? false, gso: opts.gso ?? true, pktinfo: opts.pktinfo ?? false, recvErr: opts.recvErr ?? false,
    },
    txLayoutWords(tx),
    rxLayoutWords(rx),
  );
  return { datapath: new NativeDatapath(h, family, tx, rx) };
}

/** Moves the ICRC of the RoCEv2 UDP payload at [offset, offset + length) from IPv4 ID `fromId` to `toId`, in place. */
export function patchIcrcId(addon: DatapathAddon, memory: Uint8Array | ArrayBuffer, offset: number, length: number, fromId: number, toId: number): void {
  addon.patchIcrcId(memory, offset, length, fromId, toId);
}

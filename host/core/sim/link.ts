// Binds a device's packet port to the simulated wire: the wire's virtual clock
// is the device's clock, and a sent datagram is copied onto the wire at once
// (so its TX descriptor is released at once).
//
// Transmit reads the TX ring itself (Link.sendRing): each descriptor's header,
// payload and trailer are gathered straight into a datagram the wire hands out
// (its one copy), with the facts read through views taken once, so a packet
// costs no gather arrays, descriptor objects or address strings. Receive: the
// link carves slots in its device's memory at attach (an inbox, ./inbox.ts) that
// the wire copies datagrams for this device into, for the port to validate in place; datagrams
// the wire delivers together (a batch: the same arrival time, nothing between them) are
// described in batch records and validated by one core call (PacketPort.receiveSim).
import type { Clock, Link, OutgoingDatagram, PacketPort, TxRingLayout } from "../link/port.js";
import { IP_ID_UNKNOWN, Rxm, Rxr, Txd } from "../abi/index.js";
import type { Datagram } from "../net/datagram.js";
import { AddressCache, GidCache, isV4MappedGid } from "../net/gid.js";
import { DeviceMemory } from "../verbs/memory.js";
import type { SimClock } from "./clock.js";
import type { SimWire } from "./wire.js";
import { SimInbox } from "./inbox.js";

/** A Clock over a SimClock (which cannot cancel events: cancelled timers are skipped). */
export function simClock(clock: SimClock): Clock {
  return {
    now: () => clock.now,
    setTimer(atUs: number, fn: () => void) {
      const t = { live: true };
      clock.schedule(atUs, () => {
        if (t.live) fn();
      });
      return t;
    },
    clearTimer(t: unknown) {
      (t as { live: boolean }).live = false;
    },
  };
}

/** Header and trailer bytes are copied one by one below this many (no view to make); longer pieces with `set`. */
const BYTE_LOOP_MAX = 128;

/**
 * Receive slots per device: datagrams on their way to it that can sit in its memory at once
 * (more fall back to the wire's own buffers and the port's copy). `perf write_bw` with 64 KiB
 * messages at MTU 4096, 128 in flight, keeps up to ~130 data packets on the wire (1.1 MB of slots).
 */
export const SIM_INBOX_SLOTS = 256;
/** A slot holds any datagram of a path MTU of 4096 (BTH + the longest headers + 4096 + pad + ICRC). */
export const SIM_INBOX_SLOT_SIZE = 4224;

export class SimLink implements Link {
  private mem: DeviceMemory | undefined;
  private ring: TxRingLayout | undefined;
  private readonly srcs = new AddressCache();
  private readonly dsts = new AddressCache();
  /** This device's receive slots (undefined when its core has no batched-receive area, or before attach). */
  inbox: SimInbox | undefined;
  /**
   * Takes a batch of the wire's datagrams in inbox slots (the wire's attach `batch`); undefined
   * when the core cannot take records with the wire's IP facts.
   */
  batch: ((datagrams: readonly Datagram[], count: number) => number) | undefined;
  private port: PacketPort | undefined;
  /** the batch records' address and count */
  private recs = 0;
  private recCount = 0;
  /** per record, the addresses its SRC and DST hold now (a flow's next datagram leaves them as they are) */
  private recSrc: (string | undefined)[] = [];
  private recDst: (string | undefined)[] = [];
  /** the GID bytes of wire addresses (as the port's receive parses them) */
  private readonly gids = new GidCache();
  /** Views of payloads in this device's memory, made once per place (the MR's slots repeat). */
  private readonly views = new ViewCache();

  constructor(private readonly wire: SimWire) {}

  attachPort(port: PacketPort): void {
    // carved before any view is taken: this may grow the memory
    const area = port.canReceiveAt ? port.rxBatchArea(SIM_INBOX_SLOTS, SIM_INBOX_SLOTS, SIM_INBOX_SLOT_SIZE) : undefined;
    if (area) this.inbox = new SimInbox(port.memory, area.slots, area.slotCount, area.slotSize);
    this.mem = new DeviceMemory(port.memory);
    this.ring = port.ringLayout();
    this.port = port;
    if (area && port.canReceiveBatchFacts) {
      this.recs = area.records >>> 0;
      this.recCount = area.recordCount;
      const dv = this.mem.dv;
      for (let i = 0; i < this.recCount; i++) {
        // what the wire never changes: the records' other fields stay as rx_batch_init zeroed them
        dv.setUint32(this.recs + i * Rxr.SIZE + Rxm.IP_FLAGS, 2, true); // DF, as receive() says
      }
      this.recSrc = new Array<string | undefined>(this.recCount).fill(undefined);
      this.recDst = new Array<string | undefined>(this.recCount).fill(undefined);
      this.batch = this.receiveBatch;
    }
  }

  /**
   * The wire's batch: described in the batch records (as many calls as it needs records),
   * validated by the core in place. Returns how many the device took: it hands back after a
   * datagram that made a completion or was a READ request (PacketPort.receiveSim), and the
   * wire brings the rest again once the application had its turn.
   */
  private readonly receiveBatch = (ds: readonly Datagram[], count: number): number => {
    const port = this.port!;
    const m = this.mem!;
    const u8 = m.u8;
    const dv = m.dv;
    const recs = this.recs;
    const recSrc = this.recSrc;
    const recDst = this.recDst;
    for (let first = 0; first < count; first += this.recCount) {
      const n = Math.min(this.recCount, count - first);
      for (let i = 0; i < n; i++) {
        const d = ds[first + i]!;
        const rec = recs + i * Rxr.SIZE;
        if (d.src !== recSrc[i]) {
          const src = this.gids.of(d.src);
          dv.setUint32(rec + Rxm.IP_VERSION, isV4MappedGid(src) ? 4 : 6, true);
          u8.set(src, rec + Rxm.SRC);
          recSrc[i] = d.src;
        }
        if (d.dst !== recDst[i]) {
          u8.set(this.gids.of(d.dst), rec + Rxm.DST);
          recDst[i] = d.dst;
        }
        dv.setUint32(rec + Rxm.SRC_PORT, d.srcPort >>> 0, true);
        dv.setUint32(rec + Rxm.DST_PORT, d.dstPort >>> 0, true);
        dv.setUint32(rec + Rxm.IP_ID, (d.ipId ?? IP_ID_UNKNOWN) >>> 0, true);
        dv.setUint32(rec + Rxm.TTL, (d.ttl ?? 0) >>> 0, true);
        dv.setUint32(rec + Rxm.TOS, (d.tos ?? 0) >>> 0, true);
        dv.setUint32(rec + Rxm.FLOW_LABEL, (d.flowLabel ?? 0) >>> 0, true);
        dv.setUint32(rec + Rxr.DATA, d.payload.byteOffset, true);
        dv.setUint32(rec + Rxr.LENGTH, d.payload.length, true);
      }
      const took = port.receiveSim(recs, n);
      if (took < n) return first + took;
    }
    return count;
  };

  send(d: OutgoingDatagram, done: () => void): boolean {
    this.wire.sendPieces(d, d.pieces, d.length); // the wire's one copy of the descriptor's pieces
    done();
    return true;
  }

  sendRing(first: number, count: number): number {
    const m = this.mem!;
    const { data, cap, slot } = this.ring!;
    const wire = this.wire;
    // the views once per run: nothing below runs the device, so its memory cannot grow meanwhile
    const u8 = m.u8;
    const dv = m.dv;
    const views = this.views;
    let kept = false; // views.keep once a run, when a payload needs a view (`.buffer` is a call into the engine)
    for (let i = 0; i < count; i++) {
      const dsc = data + (((first + i) >>> 0) & (cap - 1)) * slot;
      const hdrLen = dv.getUint32(dsc + Txd.HDR_LEN, true);
      const payloadLen = dv.getUint32(dsc + Txd.PAYLOAD_LEN, true);
      const trailerLen = dv.getUint32(dsc + Txd.TRAILER_LEN, true);
      const dst = this.dsts.at(u8, dv, dsc + Txd.DST);
      const dstPort = dv.getUint32(dsc + Txd.DST_PORT, true);
      const d = wire.takeFor(dst, dstPort, hdrLen + payloadLen + trailerLen);
      const out = d.payload;
      copyBytes(out, 0, u8, dsc + Txd.HDR, hdrLen);
      if (payloadLen) {
        const from = dv.getUint32(dsc + Txd.PAYLOAD, true);
        if (payloadLen > BYTE_LOOP_MAX) {
          if (!kept) kept = views.keep(u8);
          out.set(views.at(u8, from, payloadLen), hdrLen);
        } else copyBytes(out, hdrLen, u8, from, payloadLen);
      }
      copyBytes(out, hdrLen + payloadLen, u8, dsc + Txd.TRAILER, trailerLen);
      d.src = this.srcs.at(u8, dv, dsc + Txd.SRC);
      d.dst = dst;
      d.srcPort = dv.getUint32(dsc + Txd.SRC_PORT, true);
      d.dstPort = dstPort;
      d.ipId = dv.getUint32(dsc + Txd.IP_ID, true);
      d.ttl = dv.getUint32(dsc + Txd.TTL, true);
      d.tos = dv.getUint32(dsc + Txd.TOS, true);
      d.flowLabel = dv.getUint32(dsc + Txd.FLOW_LABEL, true);
      wire.sendTaken(d);
    }
    return count;
  }
}

/** Copies `len` bytes of `src` from `from` into `out` at `at`. */
function copyBytes(out: Uint8Array, at: number, src: Uint8Array, from: number, len: number): void {
  if (len > BYTE_LOOP_MAX) {
    out.set(src.subarray(from, from + len), at);
    return;
  }
  for (let k = 0; k < len; k++) out[at + k] = src[from + k]!;
}

/** Views kept (a power of two): a flow's payloads come from a few thousand places in its MRs at most. */
const VIEW_CACHE = 4096;

/**
 * Views of byte ranges of one memory, direct-mapped: copying a payload out of linear memory into
 * another memory needs a view of its range (`set` takes no offsets), and a sender moves its
 * messages through the same MR places over and over, so the view of a place is made once, not per
 * packet (no allocation on the path once warm). A range of `len` bytes at `from` sits in entry
 * `floor(from / len)`: a message's packets (consecutive ranges of one length) take consecutive
 * entries, so the cache lines a burst reads are few and shared (the payload copies stream through
 * the caches and evict what a scattered hash touches), and no two of VIEW_CACHE consecutive
 * packets collide. Each entry's start and length are kept side by side, compared as numbers (not
 * through the view's accessors); the memory's buffer is checked once per run of packets (`keep`).
 */
class ViewCache {
  private readonly views: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(VIEW_CACHE).fill(undefined);
  /** per entry: its view's start and length (length 0: no view) */
  private readonly ranges = new Float64Array(2 * VIEW_CACHE);
  /** the buffer the views are of */
  private buffer: ArrayBufferLike | undefined;

  /** Before a run of `at` calls with `mem`: views of another buffer (a grown memory detaches the old one) are dropped. */
  keep(mem: Uint8Array): true {
    const b = mem.buffer;
    if (b === this.buffer) return true;
    this.buffer = b;
    this.views.fill(undefined);
    this.ranges.fill(0);
    return true;
  }

  /** `len` bytes (len > 0) of `mem` (a view of the whole memory, the one `keep` was last given) from `from`. */
  at(mem: Uint8Array, from: number, len: number): Uint8Array {
    const i = Math.floor(from / len) & (VIEW_CACHE - 1);
    const r = this.ranges;
    if (r[2 * i] === from && r[2 * i + 1] === len) return this.views[i]!;
    const v = mem.subarray(from, from + len);
    this.views[i] = v;
    r[2 * i] = from;
    r[2 * i + 1] = len;
    return v;
  }
}

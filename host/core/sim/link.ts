// Binds a device's packet port to the simulated wire: the wire's virtual clock
// is the device's clock, and a sent datagram is copied onto the wire at once
// (so its TX descriptor is released at once).
//
// Transmit reads the TX ring itself (Link.sendRing): each descriptor's header,
// payload and trailer are gathered straight into a datagram the wire hands out
// (its one copy), with the facts read through views taken once, so a packet
// costs no gather arrays, descriptor objects or address strings. Receive: the
// link carves slots in its device's memory at attach (an inbox, ./inbox.ts) that
// the wire copies datagrams for this device into, for the port to validate in place.
import type { Clock, Link, OutgoingDatagram, PacketPort, TxRingLayout } from "../link/port.js";
import { Txd } from "../abi/index.js";
import { AddressCache } from "../net/gid.js";
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

  constructor(private readonly wire: SimWire) {}

  attachPort(port: PacketPort): void {
    // carved before any view is taken: this may grow the memory
    const area = port.canReceiveAt ? port.rxBatchArea(1, SIM_INBOX_SLOTS, SIM_INBOX_SLOT_SIZE) : undefined;
    if (area) this.inbox = new SimInbox(port.memory, area.slots, area.slotCount, area.slotSize);
    this.mem = new DeviceMemory(port.memory);
    this.ring = port.ringLayout();
  }

  send(d: OutgoingDatagram, done: () => void): boolean {
    this.wire.sendPieces(d, d.pieces, d.length); // the wire's one copy of the descriptor's pieces
    done();
    return true;
  }

  sendRing(first: number, count: number): number {
    const m = this.mem!;
    const { data, cap, slot } = this.ring!;
    const wire = this.wire;
    for (let i = 0; i < count; i++) {
      const dsc = data + (((first + i) >>> 0) & (cap - 1)) * slot;
      const u8 = m.u8;
      const dv = m.dv;
      const hdrLen = dv.getUint32(dsc + Txd.HDR_LEN, true);
      const payloadLen = dv.getUint32(dsc + Txd.PAYLOAD_LEN, true);
      const trailerLen = dv.getUint32(dsc + Txd.TRAILER_LEN, true);
      const dst = this.dsts.at(u8, dv, dsc + Txd.DST);
      const dstPort = dv.getUint32(dsc + Txd.DST_PORT, true);
      const d = wire.takeFor(dst, dstPort, hdrLen + payloadLen + trailerLen);
      const out = d.payload;
      copyBytes(out, 0, u8, dsc + Txd.HDR, hdrLen);
      if (payloadLen) copyBytes(out, hdrLen, u8, dv.getUint32(dsc + Txd.PAYLOAD, true), payloadLen);
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

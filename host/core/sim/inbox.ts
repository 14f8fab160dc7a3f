// Receive slots in a device's linear memory that the simulated wire writes datagrams into: the
// wire's one copy of a datagram lands where the device validates it (PacketPort.receive sees a
// payload already in linear memory and hands the core its address, rx_at), so a packet crosses
// the wire with two copies (MR -> slot, slot -> MR) instead of three.
//
// A slot is held from the wire's take (at send) to the end of the datagram's delivery, or its
// loss; when all are held, the wire falls back to a datagram of its own (and the port copies).
import type { Datagram } from "../net/datagram.js";

/** A datagram whose payload is a view of one receive slot. */
interface SlotDatagram extends Datagram {
  /** the whole slot (payload is its first `payload.length` bytes) */
  readonly slot: Uint8Array;
  /**
   * the view of the slot the payload was before it last changed length (a flow's packets take two
   * lengths, a message's first with its RETH and the rest: swapped back, not made again)
   */
  other: Uint8Array;
  /** the inbox the slot belongs to, and the slot's place in it (`owns`: two loads, where a WeakSet cost a hash lookup a datagram) */
  readonly inbox: SimInbox;
  readonly index: number;
}

export class SimInbox {
  private readonly free: SlotDatagram[] = [];
  /** every slot's datagram, by index */
  private readonly all: SlotDatagram[] = [];
  /** datagrams the wire wrote into a slot */
  used = 0;
  /** datagrams that found no free slot or did not fit one (the wire made its own) */
  fallbacks = 0;

  /**
   * `count` slots of `slotSize` bytes from `first` in `memory` (a device's RX batch area: carved
   * at attach, so the memory does not grow under the views).
   */
  constructor(memory: WebAssembly.Memory, first: number, count: number, readonly slotSize: number) {
    const buffer = memory.buffer;
    const base = first >>> 0; // above 2 GiB with a large MR arena: unsigned
    for (let i = count - 1; i >= 0; i--) {
      const slot = new Uint8Array(buffer, base + i * slotSize, slotSize);
      const d: SlotDatagram = {
        src: "", dst: "", srcPort: 0, dstPort: 0, ipId: undefined, ttl: undefined, tos: undefined, flowLabel: undefined, payload: slot, slot, other: slot, inbox: this, index: i,
      };
      this.free.push(d);
      this.all[i] = d;
    }
  }

  /** A free slot's datagram with a payload of `length` bytes to fill (facts stale), or undefined. */
  take(length: number): Datagram | undefined {
    const d = length <= this.slotSize ? this.free.pop() : undefined;
    if (!d || d.slot.length === 0) {
      // none free, too long, or the views went stale (the memory grew after attach): the wire copies
      if (d) this.free.push(d);
      this.fallbacks++;
      return undefined;
    }
    if (d.payload.length !== length) {
      const was = d.payload;
      d.payload = d.other.length === length ? d.other : d.slot.subarray(0, length);
      d.other = was;
    }
    this.used++;
    return d;
  }

  /** Whether `d` is one of this inbox's slot datagrams (itself, not a copy of one). */
  owns(d: Datagram): boolean {
    const s = d as Partial<SlotDatagram>;
    return s.inbox === this && this.all[s.index!] === d;
  }

  /** A slot datagram back once delivered or lost (nobody reads it any more). */
  release(d: Datagram): void {
    this.free.push(d as SlotDatagram);
  }

  /** Slots free now. */
  get available(): number {
    return this.free.length;
  }
}

// Test harness for the RC responder: one device on the simulated wire with one
// connected RC QP, fed request packets built by the independent encoder
// (WireCodec.emit) as if from a peer at 127.0.0.2, QPN 0x99. Whatever the
// device sends is read back from the wire's trace and parsed by the same codec.
import { coreModule } from "../../../host/node/wasm-source.js";
import { WireCodec, type PacketRepr, type PacketSpec } from "../../../host/core/wire/codec.js";
import { SimNetwork } from "../../../host/core/sim/network.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { RX_RESULT_NAMES, type Link, type OutgoingDatagram } from "../../../host/core/link/port.js";
import { concat } from "../../../host/core/net/bytes.js";
import type { Datagram } from "../../../host/core/net/datagram.js";
import { openDeviceWith } from "../../../host/core/verbs/device.js";
import { Access, Mtu, QpType } from "../../../host/core/verbs/enums.js";
import type { Device } from "../../../host/core/verbs/device.js";
import type { QueuePair } from "../../../host/core/verbs/qp.js";
import type { CompletionQueue, WorkCompletion } from "../../../host/core/verbs/cq.js";
import type { ProtectionDomain } from "../../../host/core/verbs/pd.js";
import type { MemoryRegion } from "../../../host/core/verbs/mr.js";
import type { SharedReceiveQueue } from "../../../host/core/verbs/srq.js";
import type { CompletionChannel } from "../../../host/core/verbs/channel.js";

export const LOCAL = "127.0.0.1";
export const PEER = "127.0.0.2";
export const PEER_QPN = 0x99;

// RC opcodes (IBA 9.2, only used to build requests and name expectations)
export const Op = {
  SEND_FIRST: 0x00, SEND_MIDDLE: 0x01, SEND_LAST: 0x02, SEND_LAST_IMM: 0x03, SEND_ONLY: 0x04, SEND_ONLY_IMM: 0x05,
  WRITE_FIRST: 0x06, WRITE_MIDDLE: 0x07, WRITE_LAST: 0x08, WRITE_LAST_IMM: 0x09, WRITE_ONLY: 0x0a,
  WRITE_ONLY_IMM: 0x0b, READ_REQUEST: 0x0c, READ_RESP_FIRST: 0x0d, READ_RESP_MIDDLE: 0x0e, READ_RESP_LAST: 0x0f,
  READ_RESP_ONLY: 0x10, ACK: 0x11, ATOMIC_ACK: 0x12, CMP_SWAP: 0x13, FETCH_ADD: 0x14, SEND_ONLY_INV: 0x17,
  FLUSH: 0x1c, ATOMIC_WRITE: 0x1d,
} as const;

export {
  AETH_ACK as ACK, AETH_NAK_SEQ as NAK_SEQ, AETH_NAK_INV as NAK_INV, AETH_NAK_ACC as NAK_ACC, AETH_NAK_OP as NAK_OP,
} from "../../../host/core/wire/aeth.js";

export interface RespOptions {
  rqPsn?: number;
  access?: number;
  pathMtu?: number;
  maxDestRdAtomic?: number;
  minRnrTimer?: number;
  srq?: boolean;
  txRingSize?: number;
  recvSge?: number;
  /** attach a HoldLink instead of the simulated wire (to fill the TX ring on purpose) */
  holdLink?: boolean;
  /** give the CQ a completion channel (b.channel) */
  channel?: boolean;
}

/** A link that records every datagram and, while `hold` is set, keeps their descriptors (backpressure). */
export class HoldLink implements Link {
  hold = false;
  readonly sent: Datagram[] = [];
  private held: (() => void)[] = [];
  send(d: OutgoingDatagram, done: () => void): boolean {
    this.sent.push({ src: d.src, dst: d.dst, srcPort: d.srcPort, dstPort: d.dstPort, ipId: d.ipId, payload: concat(d.pieces) });
    if (this.hold) {
      this.held.push(done);
      return false;
    }
    done();
    return true;
  }
  /** Gives every held descriptor back and lets the port send again. */
  release(resume: () => void): void {
    this.hold = false;
    for (const done of this.held.splice(0)) done();
    resume();
  }
}

/** What the device sent, in the fields the tests compare. */
export interface Sent {
  opcode: number;
  psn: number;
  destQp: number;
  ackReq: number;
  syndrome?: number;
  msn?: number;
  orig?: bigint;
  payload: Uint8Array;
}

let codecP: Promise<WireCodec> | undefined;

export class RespBench {
  private seen = 0;
  private constructor(
    readonly codec: WireCodec,
    readonly net: SimNetwork,
    readonly dev: Device,
    readonly pd: ProtectionDomain,
    readonly cq: CompletionQueue,
    readonly qp: QueuePair,
    readonly srq: SharedReceiveQueue | undefined,
    readonly opts: Required<Omit<RespOptions, "srq" | "txRingSize" | "recvSge" | "holdLink" | "channel">>,
    readonly link: HoldLink | undefined,
    readonly channel: CompletionChannel | undefined,
  ) {}

  static async open(o: RespOptions = {}): Promise<RespBench> {
    const mod = await coreModule();
    codecP ??= WireCodec.create(mod);
    const codec = await codecP;
    const net = new SimNetwork({ trace: true });
    let link: HoldLink | undefined;
    let dev: Device;
    if (o.holdLink) {
      link = new HoldLink();
      dev = await openDeviceWith(mod, { gids: [`::ffff:${LOCAL}`], txRingSize: o.txRingSize });
      dev.attach(link, { now: () => 0, setTimer: () => 0, clearTimer: () => {} });
    } else {
      dev = await net.addDevice(mod, LOCAL, { gids: [`::ffff:${LOCAL}`], txRingSize: o.txRingSize });
    }
    const pd = dev.allocPd();
    const channel = o.channel ? dev.createCompChannel() : undefined;
    const cq = channel ? dev.createCq(64, { channel }) : dev.createCq(64);
    const srq = o.srq ? pd.createSrq({ maxWr: 16, maxSge: 4 }) : undefined;
    const qp = pd.createQp({
      qpType: QpType.RC, sendCq: cq, recvCq: cq, srq,
      cap: { maxSendWr: 4, maxRecvWr: 16, maxSendSge: 1, maxRecvSge: o.recvSge ?? 4 },
    });
    const opts = {
      rqPsn: o.rqPsn ?? 100,
      access: o.access ?? (Access.REMOTE_WRITE | Access.REMOTE_READ | Access.REMOTE_ATOMIC),
      pathMtu: o.pathMtu ?? Mtu.MTU_1024,
      maxDestRdAtomic: o.maxDestRdAtomic ?? 4,
      minRnrTimer: o.minRnrTimer ?? 12,
    };
    connectQp(qp, { qpNum: PEER_QPN, psn: opts.rqPsn, gid: `::ffff:${PEER}` }, {
      sqPsn: 7, pathMtu: opts.pathMtu, qpAccessFlags: opts.access, maxDestRdAtomic: opts.maxDestRdAtomic,
      minRnrTimer: opts.minRnrTimer,
    });
    return new RespBench(codec, net, dev, pd, cq, qp, srq, opts, link, channel);
  }

  get mtu(): number {
    return 128 << this.opts.pathMtu;
  }

  /** An MR of `len` bytes, access LOCAL_WRITE + the remote bits asked for. */
  mr(len: number, access = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ | Access.REMOTE_ATOMIC): MemoryRegion {
    return this.pd.regMr(len, access);
  }

  /** Builds a request (UDP payload: BTH .. ICRC) from the peer. */
  request(spec: Partial<PacketSpec> & { opcode: number }): Uint8Array {
    const full = this.codec.emit({
      ipVersion: 4, src: PEER, dst: LOCAL, ipId: 0, ipFlags: 2, udpSrcPort: 4791, udpDstPort: 4791,
      destQp: this.qp.qpNum, psn: this.opts.rqPsn, ...spec,
    } as PacketSpec);
    return full.subarray(28);
  }

  /** Delivers a request; returns the receive-path result name. */
  deliver(spec: Partial<PacketSpec> & { opcode: number }): string {
    return this.deliverRaw(this.request(spec));
  }

  deliverRaw(payload: Uint8Array): string {
    const r = this.dev.port!.receive({ src: PEER, dst: LOCAL, srcPort: 4791, dstPort: 4791, ipId: 0, payload });
    return RX_RESULT_NAMES[r] ?? `reason_${r}`;
  }

  /** Packets the device put on the wire since the last call. */
  sent(): Sent[] {
    const all = this.link ? this.link.sent : this.net.wire.trace!.map((t) => t.datagram);
    const out: Sent[] = [];
    for (; this.seen < all.length; this.seen++) {
      const d = all[this.seen]!;
      if (d.src !== LOCAL) continue;
      const p = this.codec.parseDatagram(d);
      if (!p.ok) throw new Error(`device sent an unparsable packet: ${p.error}`);
      if (!p.repr.icrcOk) throw new Error("device sent a packet with a bad ICRC");
      out.push(summarize(p.repr));
    }
    return out;
  }

  poll(max = 64): WorkCompletion[] {
    return this.cq.poll(max);
  }

  counters(): Record<string, number> {
    return this.dev.queryCounters() as Record<string, number>;
  }
}

function summarize(r: PacketRepr): Sent {
  const s: Sent = { opcode: r.opcode, psn: r.psn, destQp: r.destQp, ackReq: r.ackReq, payload: r.payload.slice() };
  if (r.aeth) {
    s.syndrome = r.aeth.syndrome;
    s.msn = r.aeth.msn;
  }
  if (r.atomicAckEth) s.orig = r.atomicAckEth.origRemoteData;
  return s;
}

/** An ACK-type answer without payload, as the tests write them. */
export function ack(opcode: number, psn: number, syndrome: number, msn: number): Partial<Sent> {
  return { opcode, psn, syndrome, msn, destQp: PEER_QPN, ackReq: 0 };
}

/** Bytes 0, 1, 2, … (mod 251) so misplaced data shows. */
export function pattern(len: number, seed = 0): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i + seed) % 251;
  return b;
}

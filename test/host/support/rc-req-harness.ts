// A requester/completer test bench: one device at 127.0.0.1 whose RC QP is
// connected to a scripted peer at 127.0.0.2 (nothing is attached there, so the
// wire records what the device sends and drops it). The test plays the peer:
// it reads the requests from the wire trace (decoded by the independent
// WireCodec) and answers with ACKs, NAKs, READ responses and atomic ACKs it
// builds with the same codec.
import { coreModule } from "../../../host/node/wasm-source.js";
import { WireCodec, type PacketRepr, type PacketSpec } from "../../../host/core/wire/codec.js";
import { SimNetwork } from "../../../host/core/sim/network.js";
import { connectQp, type ConnectOptions } from "../../../host/core/verbs/connect.js";
import { Access, Mtu, QpType } from "../../../host/core/verbs/enums.js";
import type { Device } from "../../../host/core/verbs/device.js";
import type { QueuePair } from "../../../host/core/verbs/qp.js";
import type { CompletionQueue } from "../../../host/core/verbs/cq.js";
import type { MemoryRegion } from "../../../host/core/verbs/mr.js";
import type { ProtectionDomain } from "../../../host/core/verbs/pd.js";
import type { SendWr } from "../../../host/core/verbs/post.js";

export const PEER_QPN = 0x99;
export const PEER_PSN = 0x500;
export const ACK = 0x1f; // AETH syndrome: ACK, credits "unlimited"

export interface ReqBenchOptions extends Partial<ConnectOptions> {
  sqSigAll?: boolean;
  maxSendWr?: number;
  maxSendSge?: number;
  maxInlineData?: number;
  cqe?: number;
  /** QpType.RC (default) or QpType.UC */
  qpType?: number;
}

export class ReqBench {
  net!: SimNetwork;
  dev!: Device;
  codec!: WireCodec;
  pd!: ProtectionDomain;
  cq!: CompletionQueue;
  qp!: QueuePair;
  mr!: MemoryRegion;
  private seen = 0;

  static async create(o: ReqBenchOptions = {}): Promise<ReqBench> {
    const b = new ReqBench();
    const mod = await coreModule();
    b.codec = await WireCodec.create(mod);
    b.net = new SimNetwork({ trace: true });
    b.dev = await b.net.addDevice(mod, "127.0.0.1");
    b.pd = b.dev.allocPd();
    b.cq = b.dev.createCq(o.cqe ?? 64);
    b.qp = b.pd.createQp({
      qpType: o.qpType ?? QpType.RC,
      sendCq: b.cq,
      recvCq: b.cq,
      sqSigAll: o.sqSigAll ?? false,
      cap: { maxSendWr: o.maxSendWr ?? 64, maxRecvWr: 4, maxSendSge: o.maxSendSge ?? 4, maxRecvSge: 1, maxInlineData: o.maxInlineData ?? 0 },
    });
    connectQp(b.qp, { qpNum: PEER_QPN, psn: PEER_PSN, gid: "::ffff:127.0.0.2" }, {
      sqPsn: 0x10,
      pathMtu: Mtu.MTU_1024,
      ...o,
    });
    b.mr = b.pd.regMr(1 << 16, Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ | Access.REMOTE_ATOMIC);
    for (let i = 0; i < b.mr.length; i++) b.mr.bytes[i] = (i * 7 + 3) & 0xff;
    return b;
  }

  /** Packets the device sent since the last call, decoded (ICRC checked). */
  sent(): PacketRepr[] {
    const trace = this.net.wire.trace!;
    const out: PacketRepr[] = [];
    for (; this.seen < trace.length; this.seen++) {
      const d = trace[this.seen]!.datagram;
      if (d.src !== "127.0.0.1") continue;
      const r = this.codec.parseDatagram(d);
      if (!r.ok) throw new Error(`device sent an unparsable packet: ${r.error}`);
      if (!r.repr.icrcOk) throw new Error("device sent a packet with a bad ICRC");
      out.push(r.repr);
    }
    return out;
  }

  post(wr: SendWr | SendWr[]): void {
    this.qp.postSend(wr);
  }

  /** Delivers a response packet from the peer; returns the device's rx result (0 = accepted). */
  respond(spec: Partial<PacketSpec> & { opcode: number }): number {
    const full = this.codec.emit({
      ipVersion: 4,
      src: "127.0.0.2",
      dst: "127.0.0.1",
      udpSrcPort: 0xc000,
      udpDstPort: 4791,
      destQp: this.qp.qpNum,
      ...spec,
    } as PacketSpec);
    return this.dev.port!.receive({ src: "127.0.0.2", dst: "127.0.0.1", srcPort: 0xc000, dstPort: 4791, ipId: 0, payload: full.subarray(28) });
  }

  ack(psn: number, syndrome = ACK, msn = 0): number {
    return this.respond({ opcode: 0x11, psn, aeth: { syndrome, msn } });
  }

  /** Runs the virtual clock forward by `us` (timers fire). */
  advance(us: number): void {
    const target = this.net.now + us;
    this.net.run(target);
    // the clock only moves with events; nothing else is due before `target`
    const clock = this.net.wire.clock;
    if (clock.now < target) clock.now = target;
  }

  poll(n = 16) {
    return this.cq.poll(n);
  }

  get now(): number {
    return this.net.now;
  }
}

/** Opcode names for readable expectations. */
export const OP = {
  SEND_FIRST: 0x00, SEND_MIDDLE: 0x01, SEND_LAST: 0x02, SEND_LAST_IMM: 0x03, SEND_ONLY: 0x04, SEND_ONLY_IMM: 0x05,
  WRITE_FIRST: 0x06, WRITE_MIDDLE: 0x07, WRITE_LAST: 0x08, WRITE_LAST_IMM: 0x09, WRITE_ONLY: 0x0a, WRITE_ONLY_IMM: 0x0b,
  READ_REQ: 0x0c, READ_FIRST: 0x0d, READ_MIDDLE: 0x0e, READ_LAST: 0x0f, READ_ONLY: 0x10, ACK: 0x11, ATOMIC_ACK: 0x12,
  CMP_SWAP: 0x13, FETCH_ADD: 0x14, SEND_LAST_INV: 0x16, SEND_ONLY_INV: 0x17, FLUSH: 0x1c, ATOMIC_WRITE: 0x1d,
} as const;

export const psnAdd = (a: number, n: number): number => (a + n) & 0xffffff;

/** Short view of a packet for expectations: [opcode, psn, ackReq, payload length]. */
export function brief(p: PacketRepr): [number, number, number, number] {
  return [p.opcode, p.psn, p.ackReq, p.payload.length];
}

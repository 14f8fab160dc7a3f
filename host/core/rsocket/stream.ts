// rsockets' stream protocol (librdmacm's rsocket.c, SOCK_STREAM) over softroce's rdma_cm, so that
// rdma-core's rstream and other rsocket programs on Linux are the peer. What goes on the wire:
//
// - the connection: an RC connection in RDMA_PS_TCP whose REQ and REP carry a struct rs_conn_data
//   (40 bytes, after the CMA header rdma_cm puts in front): version 1, flags, the receive credits
//   (the RQ's size, big-endian), the iomap's size, then two rs_sge (address, rkey, length; big-endian):
//   where the peer writes its buffer updates (`target_sgl`, two entries) and the first half of the
//   receive buffer (`data_buf`).
// - data: RDMA WRITE WITH IMMEDIATE into the receive buffer the peer gave, the immediate
//   RS_OP_DATA << 29 | length; every message consumes one of the peer's posted receives (a credit).
// - credits: the receiver RDMA WRITEs the next half of its buffer (an rs_sge in the peer's host order:
//   little-endian unless the peer's flags say network order) into the peer's `target_sgl` entry, with
//   the immediate RS_OP_SGL << 29 | (messages consumed + RQ size): a half-buffer and more messages at
//   once; a zero-length WRITE WITH IMMEDIATE gives messages alone.
// - iomaps (riomap / riowrite): a side that maps a buffer tells the peer where it is by an RDMA WRITE
//   WITH IMMEDIATE of an rs_iomap (offset, then an rs_sge; the peer's host order) into the peer's
//   target iomap, the array after its target_sgl (`target_iomap_size` entries, a scaled byte in
//   rs_conn_data), the immediate RS_OP_IOMAP_SGL << 29 | the entry's index; the peer then RDMA WRITEs
//   (no immediate, no receive consumed) straight into that buffer at an offset the entry covers.
// - shutdown: a zero-length WRITE WITH IMMEDIATE RS_OP_CTRL << 29 | RS_CTRL_DISCONNECT (or SHUTDOWN
//   for a half close), then the QP to ERR and the connection torn down (a DREQ).
//
// The counters keep rsocket's names and widths (16-bit message sequence numbers) so that what this
// side sends when is what rsocket would send: a peer's credits are spent and given back by the same
// rules. The accounting of this side's own send queue and buffer is its own business, but kept as
// rsocket's. Progress happens only inside send(), recv() and close(), as rsocket's does in rsend/rrecv.
import { Access, WcStatus, WrOpcode, type CompletionQueue, type MemoryRegion, type QueuePair, type WorkCompletion } from "../verbs/index.js";
import { realClock } from "../link/real-clock.js";
import type { Clock } from "../link/port.js";
import { PortSpace, RdmaCmEvent, RdmaCmEventType as E, type CmEventRouter, type EventChannel, type RdmaCmId } from "../cm/index.js";

/** rsocket's message types (the immediate's bits 31..29). */
export const RsOp = { DATA: 0, WRITE: 2, SGL: 4, IOMAP_SGL: 6, CTRL: 7 } as const;
/** RS_OP_CTRL's data. */
export const RsCtrl = { DISCONNECT: 0, KEEPALIVE: 1, SHUTDOWN: 2 } as const;
export const rsMsg = (op: number, data: number): number => ((op << 29) | data) >>> 0;
export const rsMsgOp = (msg: number): number => msg >>> 29;
export const rsMsgData = (msg: number): number => msg & 0x1fffffff;

/** struct rs_conn_data's size and layout (version, flags, credits, reserved[3], target_iomap_size, target_sgl, data_buf) */
export const RS_CONN_DATA_LEN = 40;
export const RS_CONN_FLAG_NET = 1;
export const RS_CONN_FLAG_IOMAP = 2;
/** rsocket's defaults (rsocket.c): queue sizes, inline data, buffers (SO_SNDBUF / SO_RCVBUF double what they are given) */
export const RS_DEFAULTS = { sqSize: 384, rqSize: 384, sqInline: 64, sbufSize: 1 << 17, rbufSize: 1 << 17 } as const;
/** rsocket's smallest send (SO_SNDLOWAT), and a datagram rsocket's receive buffer and send slot */
export const RS_SNDLOWAT = 2048;
const RS_OLAP_START_SIZE = 2048;
const RS_MAX_TRANSFER = 65536;
const RS_QP_CTRL_SIZE = 4;
const RS_QP_MIN_SIZE = 16;
const RS_QP_MAX_SIZE = 0xfffe;
/** entries of target_sgl, the array the peer writes buffer updates into */
const RS_SGL_SIZE = 2;
const RS_SGE_LEN = 16;
/** struct rs_iomap: the offset (u64), then an rs_sge */
const RS_IOMAP_LEN = 8 + RS_SGE_LEN;
const RECV_FLAG = 1n << 63n;

/** One rs_sge. */
export interface RsSge {
  addr: bigint;
  key: number;
  length: number;
}

export interface RsConnData {
  version: number;
  flags: number;
  credits: number;
  targetIomapSize: number;
  targetSgl: RsSge;
  dataBuf: RsSge;
}

function putSge(v: DataView, at: number, s: RsSge, little: boolean): void {
  v.setBigUint64(at, s.addr, little);
  v.setUint32(at + 8, s.key, little);
  v.setUint32(at + 12, s.length, little);
}

function getSge(v: DataView, at: number, little: boolean): RsSge {
  return { addr: v.getBigUint64(at, little), key: v.getUint32(at + 8, little), length: v.getUint32(at + 12, little) };
}

/** rs_format_conn_data's bytes (every field big-endian). */
export function formatConnData(c: RsConnData): Uint8Array {
  const b = new Uint8Array(RS_CONN_DATA_LEN);
  const v = new DataView(b.buffer);
  b[0] = c.version;
  b[1] = c.flags;
  v.setUint16(2, c.credits);
  b[7] = c.targetIomapSize;
  putSge(v, 8, c.targetSgl, false);
  putSge(v, 24, c.dataBuf, false);
  return b;
}

/** The peer's rs_conn_data; undefined when shorter than one. */
export function parseConnData(b: Uint8Array | undefined): RsConnData | undefined {
  if (!b || b.length < RS_CONN_DATA_LEN) return undefined;
  const v = new DataView(b.buffer, b.byteOffset, RS_CONN_DATA_LEN);
  return { version: b[0]!, flags: b[1]!, credits: v.getUint16(2), targetIomapSize: b[7]!, targetSgl: getSge(v, 8, false), dataBuf: getSge(v, 24, false) };
}

/** An rsocket failure, with the errno rsocket would set. */
export class RsocketError extends Error {
  override name = "RsocketError";
  constructor(readonly errno: string, message: string) {
    super(message);
  }
}

export interface RsocketOptions {
  sqSize?: number;
  rqSize?: number;
  /** RDMA_INLINE (rsocket uses it for its SENDs' data; this side copies every message into its send buffer) */
  sqInline?: number;
  /** the send buffer, bytes (rsocket: SO_SNDBUF × 2) */
  sbufSize?: number;
  /** the receive buffer, bytes (rsocket: SO_RCVBUF × 2) */
  rbufSize?: number;
  /** RDMA_IOMAPSIZE: how many buffers the peer may map into this side's target iomap (rsocket's default 0) */
  iomapSize?: number;
  /**
   * SO_KEEPALIVE with TCP_KEEPIDLE in seconds (rsocket's tcp_svc): every that many seconds while
   * connected, a zero-length RS_CTRL_KEEPALIVE write the peer takes without answering (default 0: none)
   */
  keepalive?: number;
}

const short = (v: number): number => (v << 16) >> 16;

/** rs_value_to_scale / rs_scale_to_value: a count in `bits` bits, exact up to 2^(bits-1), coarser above. */
export const rsValueToScale = (v: number, bits: number): number => (v <= 1 << (bits - 1) ? v : (1 << (bits - 1)) | (v >> bits));
export const rsScaleToValue = (v: number, bits: number): number => (v <= 1 << (bits - 1) ? v : (v & ~(1 << (bits - 1))) << bits);

/** One rs_iomap: bytes from `offset` of the mapped space are at `sge`. */
interface RsIomap {
  offset: number;
  sge: RsSge;
}

/** A buffer of this side's that the peer may write (riomap): the MR, its offset, its entry in the peer's target iomap. */
interface IomapMr {
  mr: MemoryRegion;
  offset: number;
  index: number;
}

/**
 * One connected rsocket (SOCK_STREAM). Made by `rsConnect` (the active side) or `rsAccept` (a
 * CONNECT_REQUEST); `send` and `recv` move bytes, `shutdown` and `close` end it.
 */
export class RStream {
  private qp!: QueuePair;
  private cq!: CompletionQueue;
  private smr!: MemoryRegion;
  private rmr!: MemoryRegion;
  private targetMr!: MemoryRegion;
  /** the target SGL's bytes (over the MR's fixed view of linear memory, made once) */
  private targetView!: DataView;
  sqSize = 0;
  rqSize = 0;
  readonly sbufSize: number;
  readonly rbufSize: number;

  // rsocket's counters
  private sseqNo = 0;
  private sseqComp = 0;
  private rseqNo = 0;
  private rseqComp = 0;
  private ctrlSeqno = 0;
  private ctrlMaxSeqno = RS_QP_CTRL_SIZE;
  private sqeAvail = 0;
  private sbufBytesAvail = 0;
  /** where the next message's bytes go in the send buffer */
  private sbufPos = 0;
  private rbufBytesAvail = 0;
  private rbufFreeOffset = 0;
  private rbufOffset = 0;
  private targetSge = 0;
  private remoteSge = 1;
  private remoteSgl: RsSge = { addr: 0n, key: 0, length: 0 };
  /** entries of this side's target iomap (RDMA_IOMAPSIZE as rsocket scales it) */
  private readonly targetIomapSize: number;
  /** the peer's target iomap: address, key, entries (0: the peer maps nothing of ours) */
  private remoteIomap: RsSge = { addr: 0n, key: 0, length: 0 };
  /** this side's mapped buffers by their entry in the peer's iomap (rsocket's remote_iomappings) */
  private iomapped: (IomapMr | undefined)[] = [];
  /** mapped and not yet told to the peer (rsocket's iomap_queue) */
  private iomapQueue: IomapMr[] = [];
  /** the peer writes its rs_sge in its host order: little-endian unless its flags said network order */
  private peerLittle = true;
  /** data messages received and not yet read: their lengths, oldest first */
  private rmsg: number[] = [];
  private rmsgHead = 0;
  /** their sum: the bytes received and not yet read */
  private rmsgBytes = 0;
  /** keepalive messages sent (RsocketOptions.keepalive), and the peer's taken */
  keepalivesSent = 0;
  keepalivesReceived = 0;
  /** the keepalive's armed timer and the clock it was armed on */
  private keepaliveTimer: { clock: Clock; timer: unknown } | undefined;
  // rsocket's state bits
  connected = false;
  readable = false;
  writable = false;
  /** why the connection failed (rsocket's rs->err), if it did */
  err: string | undefined;
  /** the ctrl slots (RS_QP_CTRL_SIZE rs_sge each) at the send buffer's end */
  private ctrlSlot = 0;
  /** a wait for the CQ's next completion that has not resolved yet */
  private pendingWc: Promise<WorkCompletion> | undefined;
  /** the one wait under way on the CQ (or the connection's end); a second caller waits for it to end */
  private waiting: Promise<void> | undefined;

  private constructor(readonly id: RdmaCmId, readonly ch: EventChannel, private readonly o: RsocketOptions) {
    this.sbufSize = Math.max(RS_SNDLOWAT << 1, o.sbufSize ?? RS_DEFAULTS.sbufSize);
    this.rbufSize = o.rbufSize ?? RS_DEFAULTS.rbufSize;
    this.targetIomapSize = rsScaleToValue(rsValueToScale(o.iomapSize ?? 0, 8), 8);
  }

  /** rs_create_ep and rs_init_bufs: one CQ for both queues, the QP, the buffers, every receive posted. */
  private createEp(): void {
    const dev = this.id.verbs!;
    // rs_set_qp_size: within RS_QP_MIN_SIZE .. the device's max_qp_wr and RS_QP_MAX_SIZE
    const max = Math.min(dev.query().maxQpWr, RS_QP_MAX_SIZE);
    const clamp = (n: number) => Math.max(RS_QP_MIN_SIZE, Math.min(max, n));
    this.sqSize = clamp(this.o.sqSize ?? RS_DEFAULTS.sqSize);
    this.rqSize = clamp(this.o.rqSize ?? RS_DEFAULTS.rqSize);
    this.cq = dev.createCq(this.sqSize + this.rqSize);
    this.qp = this.id.createQp(undefined, {
      sendCq: this.cq, recvCq: this.cq, sqSigAll: true,
      cap: { maxSendWr: this.sqSize, maxRecvWr: this.rqSize, maxSendSge: 2, maxRecvSge: 1 },
    });
    const pd = this.id.pd!;
    this.smr = pd.regMr(this.sbufSize + RS_SGE_LEN * RS_QP_CTRL_SIZE, Access.LOCAL_WRITE);
    this.targetMr = pd.regMr(RS_SGE_LEN * RS_SGL_SIZE + RS_IOMAP_LEN * this.targetIomapSize, Access.LOCAL_WRITE | Access.REMOTE_WRITE);
    this.targetView = new DataView(this.targetMr.bytes.buffer, this.targetMr.bytes.byteOffset, this.targetMr.bytes.byteLength);
    this.rmr = pd.regMr(this.rbufSize, Access.LOCAL_WRITE | Access.REMOTE_WRITE);
    this.sbufBytesAvail = this.sbufSize;
    this.rbufFreeOffset = this.rbufSize >> 1;
    this.rbufBytesAvail = this.rbufSize >> 1;
    this.sqeAvail = this.sqSize - this.ctrlMaxSeqno;
    this.rseqComp = this.rqSize >> 1;
    for (let i = 0; i < this.rqSize; i++) this.postRecv();
  }

  /** rs_format_conn_data: this side's buffers as the peer will use them. */
  private connData(): Uint8Array {
    return formatConnData({
      version: 1, flags: RS_CONN_FLAG_IOMAP, credits: this.rqSize, targetIomapSize: rsValueToScale(this.targetIomapSize, 8),
      targetSgl: { addr: this.targetMr.addr, key: this.targetMr.rkey, length: RS_SGL_SIZE },
      dataBuf: { addr: this.rmr.addr, key: this.rmr.rkey, length: this.rbufSize >> 1 },
    });
  }

  /** rs_save_conn_data: where this side writes the peer's buffer updates, its first buffer, its credits. */
  private saveConnData(c: RsConnData): void {
    this.remoteSgl = c.targetSgl;
    this.remoteSge = 1;
    this.peerLittle = (c.flags & RS_CONN_FLAG_NET) === 0;
    if (c.flags & RS_CONN_FLAG_IOMAP) {
      this.remoteIomap = { addr: c.targetSgl.addr + BigInt(RS_SGE_LEN * c.targetSgl.length), key: c.targetSgl.key, length: rsScaleToValue(c.targetIomapSize, 8) };
    }
    this.setTarget(0, c.dataBuf);
    this.sseqComp = c.credits;
    this.connected = this.readable = this.writable = true;
    this.armKeepalive();
  }

  /**
   * tcp_svc's timer for this rsocket: every `keepalive` seconds on the device's clock, if still
   * connected and a control credit is free (as tcp_svc_send_keepalive: none is waited for), one
   * RS_CTRL_KEEPALIVE. The timer keeps no process alive.
   */
  private armKeepalive(): void {
    const seconds = this.o.keepalive ?? 0;
    if (!(seconds > 0)) return;
    const clock = this.id.verbs?.port?.clock ?? realClock;
    const arm = (): void => {
      const timer = clock.setTimer(clock.now() + seconds * 1e6, () => {
        this.keepaliveTimer = undefined;
        if (!this.connected) return;
        if (this.ctrlAvail()) {
          try {
            this.postCtrl(RsCtrl.KEEPALIVE);
          } catch {
            return; // the QP is going away: the next send or receive says so, not a timer
          }
          this.keepalivesSent++;
        }
        arm();
      });
      clock.holdTimer?.(timer, false);
      this.keepaliveTimer = { clock, timer };
    };
    arm();
  }

  private disarmKeepalive(): void {
    if (this.keepaliveTimer === undefined) return;
    this.keepaliveTimer.clock.clearTimer(this.keepaliveTimer.timer);
    this.keepaliveTimer = undefined;
  }

  private target(i: number): RsSge {
    return getSge(this.targetView, i * RS_SGE_LEN, true);
  }

  private setTarget(i: number, s: RsSge): void {
    putSge(this.targetView, i * RS_SGE_LEN, s, true);
  }

  /** rsocket's active side: rdma_resolve_addr, rdma_resolve_route, the endpoint, rdma_connect with its rs_conn_data. */
  static async connect(ch: EventChannel, to: { address: string; port: number }, from: { address: string } | undefined, o: RsocketOptions, wait: CmEventRouter): Promise<RStream> {
    const id = ch.createId(PortSpace.TCP, undefined);
    const rs = new RStream(id, ch, o);
    try {
      id.resolveAddr(from ? { address: from.address, port: 0 } : undefined, to, 2000);
      await cmEvent(wait, id, E.ADDR_RESOLVED, "rconnect");
      id.resolveRoute(2000);
      await cmEvent(wait, id, E.ROUTE_RESOLVED, "rconnect");
      rs.createEp();
      // rs_do_connect: flow control, retry and RNR retry 7, no RDMA reads
      id.connect({ privateData: rs.connData(), flowControl: 1, retryCount: 7, rnrRetryCount: 7, responderResources: 0, initiatorDepth: 0 });
      const ev = await cmEvent(wait, id, E.ESTABLISHED, "rconnect");
      const c = parseConnData(ev.param.conn?.privateData);
      if (!c || c.version !== 1) throw new RsocketError("ENOTSUP", "rconnect: Operation not supported (the peer's rs_conn_data is not version 1)");
      rs.saveConnData(c);
      return rs;
    } catch (e) {
      rs.free();
      throw e;
    }
  }

  /**
   * rs_accept for a CONNECT_REQUEST: the endpoint, the peer's rs_conn_data saved, rdma_accept with the
   * request's own parameters and this side's rs_conn_data; a request without version 1 is rejected.
   */
  static async accept(ev: RdmaCmEvent, o: RsocketOptions, wait: CmEventRouter): Promise<RStream> {
    const id = ev.id;
    const creq = parseConnData(ev.param.conn?.privateData);
    if (!creq || creq.version !== 1) {
      id.reject();
      id.destroy();
      throw new RsocketError("EINVAL", "raccept: a connection request without rsocket's version 1 data, rejected");
    }
    const rs = new RStream(id, wait.ch, o);
    try {
      rs.createEp();
      rs.saveConnData(creq);
      const p = ev.param.conn!;
      id.accept({
        privateData: rs.connData(), responderResources: p.responderResources, initiatorDepth: p.initiatorDepth,
        flowControl: p.flowControl, retryCount: p.retryCount, rnrRetryCount: p.rnrRetryCount,
      });
      await cmEvent(wait, id, E.ESTABLISHED, "raccept");
      return rs;
    } catch (e) {
      rs.free();
      throw e;
    }
  }

  private postRecv(): void {
    this.qp.postRecv({ wrId: RECV_FLAG, sgList: [] });
  }

  // ------------------------------------------------------------------ completions

  /** rs_poll_cq: every completion there; receives are posted again for those that came. */
  private pollCq(): void {
    let received = 0;
    for (;;) {
      const wcs = this.cq.poll(32);
      if (!wcs.length) break;
      for (const wc of wcs) received += this.completion(wc);
    }
    if (this.connected) for (let i = 0; i < received; i++) this.postRecv();
  }

  /** One completion; 1 for a successful receive (to be posted again), else 0. */
  private completion(wc: WorkCompletion): number {
    if (wc.wrId & RECV_FLAG) {
      if (wc.status !== WcStatus.SUCCESS) return 0;
      const msg = wc.immData >>> 0;
      switch (rsMsgOp(msg)) {
        case RsOp.SGL:
          this.sseqComp = rsMsgData(msg) & 0xffff;
          break;
        case RsOp.IOMAP_SGL:
        case RsOp.WRITE:
          break;
        case RsOp.CTRL:
          if (rsMsgData(msg) === RsCtrl.DISCONNECT) this.disconnected();
          else if (rsMsgData(msg) === RsCtrl.SHUTDOWN) {
            if (this.writable) this.readable = false;
            else this.disconnected();
          } else if (rsMsgData(msg) === RsCtrl.KEEPALIVE) this.keepalivesReceived++; // taken, never answered
          break;
        default: {
          const len = rsMsgData(msg);
          this.rmsg.push(len);
          this.rmsgBytes += len;
        }
      }
      return 1;
    }
    const msg = Number(wc.wrId & 0xffffffffn);
    switch (rsMsgOp(msg)) {
      case RsOp.SGL:
        this.ctrlMaxSeqno++;
        break;
      case RsOp.CTRL:
        this.ctrlMaxSeqno++;
        if (rsMsgData(msg) === RsCtrl.DISCONNECT) this.disconnected();
        break;
      case RsOp.IOMAP_SGL:
        this.sqeAvail++;
        this.sbufBytesAvail += RS_IOMAP_LEN;
        break;
      default:
        this.sqeAvail++;
        this.sbufBytesAvail += rsMsgData(msg);
    }
    if (wc.status !== WcStatus.SUCCESS && this.connected) {
      this.connected = this.readable = this.writable = false;
      this.err = `EIO (a work request failed with status ${wc.status})`;
    }
    return 0;
  }

  private disconnected(): void {
    this.connected = this.readable = this.writable = false;
  }

  /**
   * rs_get_comp / rs_process_cq: credits given, completions taken, until `test` holds or the
   * connection drops; waits on the CQ (or the CM's DISCONNECTED) in between.
   */
  private async progress(test: () => boolean, wait: CmEventRouter): Promise<void> {
    for (;;) {
      this.updateCredits();
      this.pollCq();
      if (test()) break;
      if (!this.connected) break;
      // one wait at a time, whoever calls (a send and a receive may both be waiting): the others
      // wait for it to end and look again
      this.waiting ??= this.waitOnce(wait).finally(() => (this.waiting = undefined));
      await this.waiting;
    }
    this.updateCredits();
  }

  /** The CQ's next completion taken, or the connection's end seen. */
  private async waitOnce(wait: CmEventRouter): Promise<void> {
    // a wait the connection's end won stays for the next round, so the completion it takes is not lost
    this.pendingWc ??= this.cq.next();
    const next = await wait.race(this.pendingWc, (e) => e.id === this.id && e.event === E.DISCONNECTED);
    if (next === undefined || next instanceof RdmaCmEvent) this.disconnected();
    else {
      this.pendingWc = undefined;
      if (this.completion(next) && this.connected) this.postRecv();
    }
  }

  // ------------------------------------------------------------------ credits

  private ctrlAvail(): boolean {
    return this.ctrlSeqno !== this.ctrlMaxSeqno;
  }

  /** rs_give_credits */
  private giveCredits(): boolean {
    return (this.rbufBytesAvail >= this.rbufSize >> 1 || short(this.rseqNo - this.rseqComp) >= 0) && this.ctrlAvail() && this.connected;
  }

  private updateCredits(): void {
    if (this.giveCredits()) this.sendCredits();
  }

  /** rs_send_credits: the next half of the receive buffer into the peer's target_sgl, or messages alone. */
  private sendCredits(): void {
    this.ctrlSeqno++;
    this.rseqComp = (this.rseqNo + (this.rqSize >> 1)) & 0xffff;
    const msg = rsMsg(RsOp.SGL, this.rseqNo + this.rqSize);
    const half = this.rbufSize >> 1;
    if (this.rbufBytesAvail >= half) {
      const slot = this.sbufSize + (this.ctrlSlot++ % RS_QP_CTRL_SIZE) * RS_SGE_LEN;
      const b = this.smr.bytes;
      putSge(new DataView(b.buffer, b.byteOffset + slot, RS_SGE_LEN), 0, { addr: this.rmr.addr + BigInt(this.rbufFreeOffset), key: this.rmr.rkey, length: half }, this.peerLittle);
      this.qp.postSend({
        wrId: BigInt(msg), opcode: WrOpcode.RDMA_WRITE_WITH_IMM, immData: msg, sgList: [this.smr.sge(slot, RS_SGE_LEN)],
        rdma: { remoteAddr: this.remoteSgl.addr + BigInt(this.remoteSge * RS_SGE_LEN), rkey: this.remoteSgl.key },
      });
      this.rbufBytesAvail -= half;
      this.rbufFreeOffset += half;
      if (this.rbufFreeOffset >= this.rbufSize) this.rbufFreeOffset = 0;
      if (++this.remoteSge === this.remoteSgl.length) this.remoteSge = 0;
    } else {
      this.postMsg(msg);
    }
  }

  /** An RS_OP_CTRL message (disconnect, shutdown, keepalive) on a control credit the caller saw free. */
  private postCtrl(ctrl: number): void {
    this.postMsg(rsMsg(RsOp.CTRL, ctrl));
    this.ctrlSeqno++;
  }

  /** rs_post_msg: a zero-length RDMA WRITE WITH IMMEDIATE carrying `msg`. */
  private postMsg(msg: number): void {
    this.qp.postSend({ wrId: BigInt(msg), opcode: WrOpcode.RDMA_WRITE_WITH_IMM, immData: msg, sgList: [], rdma: { remoteAddr: 0n, rkey: 0 } });
  }

  // ------------------------------------------------------------------ send

  /** rs_can_send */
  private canSend(): boolean {
    return this.sqeAvail > 0 && this.sbufBytesAvail >= RS_SNDLOWAT && this.sseqNo !== this.sseqComp && this.target(this.targetSge).length !== 0;
  }

  /** rs_get_comp until rs_can_send, for `verb`; ECONNRESET once the connection cannot send. */
  private async untilCanSend(verb: string, wait: CmEventRouter): Promise<void> {
    if (this.canSend()) return;
    await this.progress(() => this.canSend() || !this.writable, wait);
    if (!this.writable) throw new RsocketError("ECONNRESET", `${verb}: Connection reset by peer${this.err ? ` (${this.err})` : ""}`);
  }

  /** The send buffer is a ring: `data` copied in at its position, as one SGE or two where it wraps. */
  private stage(data: Uint8Array): ReturnType<MemoryRegion["sge"]>[] {
    const b = this.smr.bytes;
    const first = Math.min(data.length, this.sbufSize - this.sbufPos);
    b.set(data.subarray(0, first), this.sbufPos);
    const sges = [this.smr.sge(this.sbufPos, first)];
    if (first < data.length) {
      b.set(data.subarray(first), 0);
      sges.push(this.smr.sge(0, data.length - first));
    }
    this.sbufPos = (this.sbufPos + data.length) % this.sbufSize;
    return sges;
  }

  /** rsocket's transfer sizes: pieces from 2 KiB, doubling to 64 KiB, the rest in one when it fits. */
  private static pieces(): (left: number) => number {
    let olen = RS_OLAP_START_SIZE;
    return (left) => {
      if (olen >= left) return left;
      const xfer = olen;
      if (olen < RS_MAX_TRANSFER) olen <<= 1;
      return xfer;
    };
  }

  /** rsend, blocking: every byte of `data` written to the peer's buffer (ECONNRESET once it cannot be). */
  async send(data: Uint8Array, wait: CmEventRouter): Promise<void> {
    if (this.iomapQueue.length) await this.sendIomaps("rsend", wait);
    const piece = RStream.pieces();
    for (let off = 0; off < data.length; ) {
      await this.untilCanSend("rsend", wait);
      const t = this.target(this.targetSge);
      const xfer = Math.min(piece(data.length - off), this.sbufBytesAvail, t.length);
      this.writeData(this.stage(data.subarray(off, off + xfer)), xfer, t);
      off += xfer;
    }
  }

  /** rs_write_data: the target entry advanced before the write (the peer may refill it after). */
  private writeData(sgList: ReturnType<MemoryRegion["sge"]>[], length: number, t: RsSge): void {
    this.sseqNo = (this.sseqNo + 1) & 0xffff;
    this.sqeAvail--;
    this.sbufBytesAvail -= length;
    this.setTarget(this.targetSge, { addr: t.addr + BigInt(length), key: t.key, length: t.length - length });
    if (t.length === length && ++this.targetSge === RS_SGL_SIZE) this.targetSge = 0;
    const msg = rsMsg(RsOp.DATA, length);
    this.qp.postSend({ wrId: BigInt(msg), opcode: WrOpcode.RDMA_WRITE_WITH_IMM, immData: msg, sgList, rdma: { remoteAddr: t.addr, rkey: t.key } });
  }

  // ------------------------------------------------------------------ iomaps

  /**
   * riomap(PROT_WRITE) at `offset`: `len` bytes of linear memory the peer may riowrite into, returned
   * as this side's view of them; the peer is told before this side's next send (ENOMEM when the peer's
   * target iomap has no free entry: it set RDMA_IOMAPSIZE lower, or 0).
   */
  iomap(len: number, offset: number): Uint8Array {
    if (!this.connected) throw new RsocketError("EINVAL", "riomap: Invalid argument (not connected)");
    let index = 0;
    while (index < this.remoteIomap.length && this.iomapped[index]) index++;
    if (index >= this.remoteIomap.length) {
      throw new RsocketError("ENOMEM", `riomap: Cannot allocate memory (the peer's iomap has ${this.remoteIomap.length} entries, every one in use)`);
    }
    const m: IomapMr = { mr: this.id.pd!.regMr(len, Access.LOCAL_WRITE | Access.REMOTE_WRITE), offset, index };
    this.iomapped[index] = m;
    this.iomapQueue.push(m);
    return m.mr.bytes;
  }

  /** riounmap: the buffer `iomap` returned deregistered and its entry free again (EINVAL if it is not one). */
  iounmap(bytes: Uint8Array): void {
    const m = this.iomapped.find((x) => x?.mr.bytes === bytes);
    if (!m) throw new RsocketError("EINVAL", "riounmap: Invalid argument (not a mapped buffer)");
    this.iomapped[m.index] = undefined;
    this.iomapQueue = this.iomapQueue.filter((x) => x !== m);
    m.mr.destroy();
  }

  /** rs_send_iomaps: each mapping not yet told, as an rs_iomap written into the peer's target iomap. */
  private async sendIomaps(verb: string, wait: CmEventRouter): Promise<void> {
    while (this.iomapQueue.length) {
      await this.untilCanSend(verb, wait);
      const m = this.iomapQueue.shift()!;
      const iom = new Uint8Array(RS_IOMAP_LEN);
      const v = new DataView(iom.buffer);
      v.setBigUint64(0, BigInt(m.offset), this.peerLittle);
      putSge(v, 8, { addr: m.mr.addr, key: m.mr.rkey, length: m.mr.length }, this.peerLittle);
      this.sseqNo = (this.sseqNo + 1) & 0xffff;
      this.sqeAvail--;
      this.sbufBytesAvail -= RS_IOMAP_LEN;
      const msg = rsMsg(RsOp.IOMAP_SGL, m.index);
      this.qp.postSend({
        wrId: BigInt(msg), opcode: WrOpcode.RDMA_WRITE_WITH_IMM, immData: msg, sgList: this.stage(iom),
        rdma: { remoteAddr: this.remoteIomap.addr + BigInt(m.index * RS_IOMAP_LEN), rkey: this.remoteIomap.key },
      });
    }
  }

  /** rs_find_iomap: the entry of this side's target iomap (written by the peer) that covers `offset`. */
  private findIomap(offset: number): RsIomap | undefined {
    for (let i = 0; i < this.targetIomapSize; i++) {
      const at = RS_SGE_LEN * RS_SGL_SIZE + i * RS_IOMAP_LEN;
      const o = Number(this.targetView.getBigUint64(at, true));
      const sge = getSge(this.targetView, at + 8, true);
      if (offset >= o && offset < o + sge.length) return { offset: o, sge };
    }
    return undefined;
  }

  /**
   * riowrite, blocking: `data` into the peer's mapped buffer at `offset` by RDMA WRITEs (no immediate:
   * the peer sees the bytes land, nothing else), in rsocket's pieces. EINVAL where no mapping of the
   * peer's covers the bytes.
   */
  async iowrite(data: Uint8Array, offset: number, wait: CmEventRouter): Promise<void> {
    if (this.iomapQueue.length) await this.sendIomaps("riowrite", wait);
    const piece = RStream.pieces();
    let iom: RsIomap | undefined;
    for (let off = 0; off < data.length; ) {
      const at = offset + off;
      if (!iom || at >= iom.offset + iom.sge.length) iom = this.findIomap(at);
      if (!iom) throw new RsocketError("EINVAL", `riowrite: Invalid argument (no mapping of the peer's covers offset ${at})`);
      await this.untilCanSend("riowrite", wait);
      const xfer = Math.min(piece(data.length - off), this.sbufBytesAvail, iom.offset + iom.sge.length - at);
      this.sqeAvail--;
      this.sbufBytesAvail -= xfer;
      const msg = rsMsg(RsOp.WRITE, xfer);
      this.qp.postSend({
        wrId: BigInt(msg), opcode: WrOpcode.RDMA_WRITE, sgList: this.stage(data.subarray(off, off + xfer)),
        rdma: { remoteAddr: iom.sge.addr + BigInt(at - iom.offset), rkey: iom.sge.key },
      });
      off += xfer;
    }
  }

  /**
   * Until `test` holds (a byte of a mapped buffer the peer writes, say: riostream spins on one), or the
   * connection ends: false then. Completions are taken meanwhile, so a disconnect is seen.
   */
  async until(test: () => boolean, wait: CmEventRouter): Promise<boolean> {
    const port = this.id.verbs?.port;
    while (!test()) {
      this.pollCq();
      if (wait.take((e) => e.id === this.id && e.event === E.DISCONNECTED)) this.disconnected();
      if (!this.connected) return test();
      // the next event-loop turn, or — sooner — the end of the next received batch (Port.received):
      // the look then comes inside the batch's turn, not after the link's busy poll gave it back
      await new Promise<void>((r) => {
        const go = (): void => {
          port?.received.delete(go);
          clearImmediate(next);
          r();
        };
        const next = setImmediate(go);
        port?.received.add(go);
      });
    }
    return true;
  }

  // ------------------------------------------------------------------ receive

  private haveRdata(): boolean {
    return this.rmsgHead < this.rmsg.length;
  }

  /** rrecv, blocking: at least one byte into `into` (its length at most), or 0 once the peer has closed. */
  async recv(into: Uint8Array, wait: CmEventRouter): Promise<number> {
    if (!this.haveRdata()) await this.progress(() => this.haveRdata() || !this.readable, wait);
    let got = 0;
    while (got < into.length && this.haveRdata()) {
      let size: number;
      const pending = this.rmsg[this.rmsgHead]!;
      if (into.length - got < pending) {
        size = into.length - got;
        this.rmsg[this.rmsgHead] = pending - size;
      } else {
        this.rseqNo = (this.rseqNo + 1) & 0xffff;
        size = pending;
        this.rmsgHead++;
      }
      this.rmsgBytes -= size;
      // the receive buffer is read in order, wrapping at its end
      const rb = this.rmr.bytes;
      while (size > 0) {
        const n = Math.min(size, this.rbufSize - this.rbufOffset);
        into.set(rb.subarray(this.rbufOffset, this.rbufOffset + n), got);
        this.rbufOffset = (this.rbufOffset + n) % this.rbufSize;
        this.rbufBytesAvail += n;
        got += n;
        size -= n;
      }
    }
    if (this.rmsgHead > 1024 && this.rmsgHead * 2 > this.rmsg.length) {
      this.rmsg = this.rmsg.slice(this.rmsgHead);
      this.rmsgHead = 0;
    }
    this.updateCredits();
    return got;
  }

  /** Bytes received and not yet read. */
  get pendingBytes(): number {
    return this.rmsgBytes;
  }

  /**
   * rrecv into a buffer of its own: waits for data, then returns what there is (at most `max` bytes)
   * in one new Uint8Array, or null once the peer has closed. For callers that hand the bytes on (a
   * stream's push) and would otherwise copy them twice.
   */
  async recvSome(max: number, wait: CmEventRouter): Promise<Uint8Array | null> {
    if (!this.haveRdata()) await this.progress(() => this.haveRdata() || !this.readable, wait);
    const n = Math.min(max, this.pendingBytes);
    if (n === 0) return null;
    const b = new Uint8Array(n);
    await this.recv(b, wait);
    return b;
  }

  /** recv until `into` is full; false if the peer closed first. */
  async recvAll(into: Uint8Array, wait: CmEventRouter): Promise<boolean> {
    for (let off = 0; off < into.length; ) {
      const n = await this.recv(into.subarray(off), wait);
      if (n === 0) return false;
      off += n;
    }
    return true;
  }

  // ------------------------------------------------------------------ close

  /**
   * rshutdown: "rdwr" sends RS_CTRL_DISCONNECT; "wr" stops this side's sending, RS_CTRL_SHUTDOWN while
   * the peer may still send (RS_CTRL_DISCONNECT once it may not); "rd" stops reading, and sends
   * RS_CTRL_DISCONNECT only if this side was no longer writing. Then every send completed.
   */
  async shutdown(wait: CmEventRouter, how: "rd" | "wr" | "rdwr" = "rdwr"): Promise<void> {
    if (this.connected) {
      let ctrl: number = RsCtrl.DISCONNECT;
      if (how === "rdwr") this.readable = this.writable = false;
      else if (how === "wr") {
        this.writable = false;
        if (this.readable) ctrl = RsCtrl.SHUTDOWN;
      } else {
        this.readable = false;
        if (this.writable) return;
      }
      if (!this.ctrlAvail()) await this.progress(() => this.ctrlAvail() || !this.connected, wait);
      if (this.connected && this.ctrlAvail()) this.postCtrl(ctrl);
    }
    if (this.connected) await this.progress(() => this.ctrlMaxSeqno - this.ctrlSeqno + this.sqeAvail === this.sqSize || !this.connected, wait);
  }

  /** rclose: shut down if still connected, then the connection torn down (a DREQ) and everything freed. */
  async close(wait: CmEventRouter): Promise<void> {
    if (this.connected) await this.shutdown(wait);
    try {
      this.id.disconnect();
    } catch {
      /* the peer's DREQ came first */
    }
    this.free();
  }

  /**
   * What a process's end does to an rsocket it did not close (ucma's cleanup): no RS_CTRL_DISCONNECT, the
   * ID destroyed (a DREQ if it was connected, so the peer's waits end) and everything freed.
   */
  abort(): void {
    this.free();
  }

  private free(): void {
    this.disarmKeepalive();
    try {
      if (this.id.qp) this.id.destroyQp();
    } catch {
      /* going away */
    }
    for (const x of [this.smr, this.rmr, this.targetMr, ...this.iomapped.map((m) => m?.mr), this.cq]) {
      try {
        x?.destroy();
      } catch {
        /* going away */
      }
    }
    try {
      this.id.destroy();
    } catch {
      /* already */
    }
  }
}

/** librdmacm's synchronous wait as rsocket makes it: `want` on `id`, else an error named after the call. */
export async function cmEvent(wait: CmEventRouter, id: RdmaCmId, want: number, verb: string): Promise<RdmaCmEvent> {
  const ev = await wait.next((e) => e.id === id);
  if (!ev) throw new RsocketError("ETIMEDOUT", `${verb}: Connection timed out`);
  if (ev.event !== want || ev.status) {
    if (ev.event === E.REJECTED) throw new RsocketError("ECONNREFUSED", `${verb}: Connection refused`);
    throw new RsocketError("ECONNRESET", `${verb}: ${ev.event === E.UNREACHABLE ? "No route to host" : `unexpected event ${ev.event}, status ${ev.status}`}`);
  }
  return ev;
}

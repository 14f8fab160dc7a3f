// Completion queue (ibv_cq): polled by reading the CQE ring directly, with no
// call into the device; next() waits for the device to produce one.
import { CqRec, Cqe, Ring } from "./abi.js";
import type { Device } from "./device.js";
import { WcFlags } from "./enums.js";
import type { CompletionChannel } from "./channel.js";
import { check, Errno, fail, VerbsError } from "./errors.js";

const NOTIFY_NEXT = 1;
const NOTIFY_SOLICITED = 2;

/** ibv_wc */
export interface WorkCompletion {
  wrId: bigint;
  status: number;
  opcode: number;
  vendorErr: number;
  byteLen: number;
  /** imm_data (with WcFlags.WITH_IMM) */
  immData: number;
  /** invalidated_rkey (with WcFlags.WITH_INV): the same field as immData */
  invalidatedRkey: number;
  qpNum: number;
  srcQp: number;
  wcFlags: number;
  pkeyIndex: number;
  slid: number;
  sl: number;
  dlidPathBits: number;
  /** the sender's GID for UD receives (with WcFlags.GRH) */
  sgid?: Uint8Array;
}

/** A blank completion for pollEach to fill. */
function emptyWc(): WorkCompletion {
  return {
    wrId: 0n, status: 0, opcode: 0, vendorErr: 0, byteLen: 0, immData: 0, invalidatedRkey: 0, qpNum: 0, srcQp: 0, wcFlags: 0,
    pkeyIndex: 0, slid: 0, sl: 0, dlidPathBits: 0, sgid: undefined,
  };
}

export class CompletionQueue {
  readonly rec: number;
  private _ring: number;
  private _cqe: number;
  private mask: number;
  private destroyed = false;
  private waiters: { resolve: (wc: WorkCompletion) => void; reject: (e: Error) => void }[] = [];

  /** armed notification: 0 none, 1 next completion, 2 solicited (CqRec.NOTIFY) */
  private armed = 0;
  private armedAt = 0;
  private unacked = 0;

  constructor(readonly device: Device, readonly handle: number, readonly channel?: CompletionChannel) {
    if (channel) channel.refs++;
    const m = device.mem;
    this.rec = device.core.cq_ptr(handle);
    this._ring = m.u32(this.rec + CqRec.RING);
    this._cqe = m.u32(this.rec + CqRec.CQE);
    this.mask = m.u32(this._ring + Ring.CAP) - 1;
  }

  /** the CQE ring's address */
  get ring(): number {
    return this._ring;
  }
  /** entries the CQ holds (>= the cqe asked for) */
  get cqe(): number {
    return this._cqe;
  }

  /**
   * ibv_resize_cq: at least `cqe` entries, keeping the completions not yet polled
   * (EINVAL outside 1..max_cqe or below the number waiting).
   */
  resize(cqe: number): void {
    const verb = "ibv_resize_cq";
    if (this.destroyed) fail(verb, "EINVAL", "CQ destroyed");
    if (!Number.isInteger(cqe)) fail(verb, "EINVAL", "cqe must be an integer");
    const d = this.device;
    const m = d.mem;
    const since = (m.loadIndex(this._ring + Ring.PROD) - this.armedAt) >>> 0;
    check(verb, d.call(() => d.core.cq_resize(this.handle, cqe | 0)));
    this._ring = m.u32(this.rec + CqRec.RING);
    this._cqe = m.u32(this.rec + CqRec.CQE);
    this.mask = m.u32(this._ring + Ring.CAP) - 1;
    const prod = m.loadIndex(this._ring + Ring.PROD);
    this.armedAt = (prod - Math.min(since, prod)) >>> 0;
  }

  /** ibv_poll_cq: up to `max` completions, oldest first. */
  poll(max = 1): WorkCompletion[] {
    if (this.destroyed) fail("ibv_poll_cq", "EINVAL", "CQ destroyed");
    const m = this.device.mem;
    const out: WorkCompletion[] = [];
    let c = m.loadIndex(this.ring + Ring.CONS);
    const p = m.loadIndex(this.ring + Ring.PROD);
    while (c !== p && out.length < max) {
      out.push(this.read(this.ring + Ring.DATA + (c & this.mask) * Cqe.SIZE));
      c = (c + 1) >>> 0;
    }
    if (out.length) m.storeIndex(this.ring + Ring.CONS, c);
    return out;
  }

  /** The completion pollEach hands out (one per CQ, rewritten for each entry). */
  private scratch: WorkCompletion | undefined;

  /**
   * @internal A poll that allocates no array and no completion object (the perf loop polls after
   * every simulated event): up to `max` completions, oldest first, each read into one object this
   * CQ reuses and passed to `fn`, which must not keep it (copy what it needs). Each entry is
   * consumed before `fn` runs, so `fn` may post, or poll again. Returns how many it handed out.
   */
  pollEach(max: number, fn: (wc: WorkCompletion) => void): number {
    if (this.destroyed) fail("ibv_poll_cq", "EINVAL", "CQ destroyed");
    const m = this.device.mem;
    let n = 0;
    while (n < max) {
      const c = m.loadIndex(this.ring + Ring.CONS);
      if (c === m.loadIndex(this.ring + Ring.PROD)) break;
      const wc = this.read(this.ring + Ring.DATA + (c & this.mask) * Cqe.SIZE, (this.scratch ??= emptyWc()));
      m.storeIndex(this.ring + Ring.CONS, (c + 1) >>> 0);
      n++;
      fn(wc);
    }
    return n;
  }

  private read(e: number, into?: WorkCompletion): WorkCompletion {
    const m = this.device.mem;
    const dv = m.dv;
    const flags = dv.getUint32(e + Cqe.WC_FLAGS, true);
    const imm = dv.getUint32(e + Cqe.IMM_DATA, true);
    if (into) {
      into.wrId = dv.getBigUint64(e + Cqe.WR_ID, true);
      into.status = dv.getUint32(e + Cqe.STATUS, true);
      into.opcode = dv.getUint32(e + Cqe.OPCODE, true);
      into.vendorErr = dv.getUint32(e + Cqe.VENDOR_ERR, true);
      into.byteLen = dv.getUint32(e + Cqe.BYTE_LEN, true);
      into.immData = imm;
      into.invalidatedRkey = imm;
      into.qpNum = dv.getUint32(e + Cqe.QP_NUM, true);
      into.srcQp = dv.getUint32(e + Cqe.SRC_QP, true);
      into.wcFlags = flags;
      into.pkeyIndex = dv.getUint16(e + Cqe.PKEY_INDEX, true);
      into.slid = dv.getUint16(e + Cqe.SLID, true);
      into.sl = dv.getUint8(e + Cqe.SL);
      into.dlidPathBits = dv.getUint8(e + Cqe.DLID_PATH_BITS);
      into.sgid = flags & WcFlags.GRH ? m.u8.slice(e + Cqe.SGID, e + Cqe.SGID + 16) : undefined;
      return into;
    }
    const wc: WorkCompletion = {
      wrId: dv.getBigUint64(e + Cqe.WR_ID, true),
      status: dv.getUint32(e + Cqe.STATUS, true),
      opcode: dv.getUint32(e + Cqe.OPCODE, true),
      vendorErr: dv.getUint32(e + Cqe.VENDOR_ERR, true),
      byteLen: dv.getUint32(e + Cqe.BYTE_LEN, true),
      immData: imm,
      invalidatedRkey: imm,
      qpNum: dv.getUint32(e + Cqe.QP_NUM, true),
      srcQp: dv.getUint32(e + Cqe.SRC_QP, true),
      wcFlags: flags,
      pkeyIndex: dv.getUint16(e + Cqe.PKEY_INDEX, true),
      slid: dv.getUint16(e + Cqe.SLID, true),
      sl: dv.getUint8(e + Cqe.SL),
      dlidPathBits: dv.getUint8(e + Cqe.DLID_PATH_BITS),
    };
    if (flags & WcFlags.GRH) wc.sgid = m.u8.slice(e + Cqe.SGID, e + Cqe.SGID + 16);
    return wc;
  }

  /** Resolves with the next completion (polling first). */
  next(): Promise<WorkCompletion> {
    let [wc] = this.poll(1);
    // a worker device may look for it briefly before this thread sleeps (Device.awaitSpin)
    if (!wc && this.device.awaitSpin?.(this)) [wc] = this.poll(1);
    if (wc) return Promise.resolve(wc);
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.device.watchCq(this, true);
    });
  }

  /**
   * ibv_req_notify_cq: the next completion added after this call (solicitedOnly:
   * the next solicited or error completion) sends one event to the CQ's channel.
   */
  reqNotify(solicitedOnly = false): void {
    if (this.destroyed) fail("ibv_req_notify_cq", "EINVAL", "CQ destroyed");
    const m = this.device.mem;
    this.armed = solicitedOnly ? NOTIFY_SOLICITED : NOTIFY_NEXT;
    this.armedAt = m.loadIndex(this.ring + Ring.PROD);
    m.setU32(this.rec + CqRec.NOTIFY, this.armed);
    this.device.watchCq(this, true);
  }

  /** ibv_ack_cq_events */
  ackEvents(n: number): void {
    this.unacked = Math.max(0, this.unacked - n);
  }

  /** Events delivered to the channel and not acknowledged. */
  get unackedEvents(): number {
    return this.unacked;
  }

  private notifyDue(): boolean {
    const m = this.device.mem;
    const p = m.loadIndex(this.ring + Ring.PROD);
    if (p === this.armedAt) return false;
    if (this.armed === NOTIFY_NEXT) return true;
    // solicited only: a CQE the device marked solicited, or any error completion
    let i = ((p - this.armedAt) >>> 0) > this.mask + 1 ? (p - this.mask - 1) >>> 0 : this.armedAt;
    for (; i !== p; i = (i + 1) >>> 0) {
      const e = this.ring + Ring.DATA + (i & this.mask) * Cqe.SIZE;
      if (m.u8[e + Cqe.SOLICITED] || m.u32(e + Cqe.STATUS) !== 0) return true;
    }
    this.armedAt = p;
    return false;
  }

  /** @internal called by the device pump */
  wake(): void {
    if (this.armed && !this.destroyed && this.notifyDue()) {
      this.armed = 0;
      this.device.mem.setU32(this.rec + CqRec.NOTIFY, 0);
      this.unacked++;
      this.channel?.notify(this);
    }
    while (this.waiters.length) {
      const [wc] = this.destroyed ? [] : this.poll(1);
      if (!wc) break;
      this.waiters.shift()!.resolve(wc);
    }
    if (!this.waiters.length && !this.armed) this.device.watchCq(this, false);
  }

  /** Entries waiting to be polled. */
  get depth(): number {
    const m = this.device.mem;
    return (m.loadIndex(this.ring + Ring.PROD) - m.loadIndex(this.ring + Ring.CONS)) >>> 0;
  }

  /** True once a completion was lost to overflow (the CQ_ERR event was raised). */
  get overflowed(): boolean {
    return (this.device.mem.u32(this.rec + CqRec.FLAGS) & 1) !== 0;
  }

  /** ibv_destroy_cq: EBUSY while a QP uses it. A second call does nothing. */
  destroy(): void {
    if (this.destroyed) return;
    const d = this.device;
    check("ibv_destroy_cq", d.call(() => d.core.cq_destroy(this.handle)));
    this.destroyed = true;
    d.cqs.delete(this.handle);
    d.watchCq(this, false);
    if (this.channel) this.channel.refs--;
    for (const w of this.waiters.splice(0)) w.reject(new VerbsError("ibv_get_cq_event", Errno.EINVAL, "CQ destroyed"));
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }
}

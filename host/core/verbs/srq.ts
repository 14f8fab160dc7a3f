// Shared receive queue (ibv_srq).
import { Ring, SrqInit, SrqRec } from "./abi.js";
import { SrqAttrMask } from "./enums.js";
import { check, fail } from "./errors.js";
import type { ProtectionDomain } from "./pd.js";
import { checkRecvWr, writeRecvWr, type RecvWr } from "./post.js";
import { postToRing } from "./ring.js";

/** ibv_srq_attr */
export interface SrqAttr {
  maxWr?: number;
  maxSge?: number;
  srqLimit?: number;
}

/** ibv_srq_init_attr: { attr: { maxWr, maxSge, srqLimit } } (the attr fields may also sit at the top level) */
export interface SrqInitAttr extends SrqAttr {
  attr?: SrqAttr;
}

function u32(v: number | undefined): number {
  const x = v ?? 0;
  return Number.isInteger(x) && x >= 0 && x <= 0xffffffff ? x : -1;
}

export class SharedReceiveQueue {
  readonly rec: number;
  private ring: number;
  private destroyed = false;

  private constructor(readonly pd: ProtectionDomain, readonly handle: number) {
    const d = pd.device;
    this.rec = d.core.srq_ptr(handle);
    this.ring = d.mem.u32(this.rec + SrqRec.RING);
  }

  static create(pd: ProtectionDomain, init: SrqInitAttr): SharedReceiveQueue {
    const verb = "ibv_create_srq";
    const a = { ...init, ...(init?.attr ?? {}) };
    const vals = [a.maxWr, a.maxSge, a.srqLimit].map(u32);
    if (vals.some((v) => v < 0)) fail(verb, "EINVAL", "malformed attribute");
    const d = pd.device;
    const p = d.core.dev_args();
    d.mem.setU32(p + SrqInit.MAX_WR, vals[0]!);
    d.mem.setU32(p + SrqInit.MAX_SGE, vals[1]!);
    d.mem.setU32(p + SrqInit.LIMIT, vals[2]!);
    const h = check(verb, d.call(() => d.core.srq_create(pd.handle)));
    const srq = new SharedReceiveQueue(pd, h);
    d.srqs.set(h, srq);
    return srq;
  }

  private live(verb: string): void {
    if (this.destroyed) fail(verb, "EINVAL", "SRQ destroyed");
  }

  /** ibv_query_srq */
  query(): Required<SrqAttr> {
    this.live("ibv_query_srq");
    const m = this.pd.device.mem;
    return { maxWr: m.u32(this.rec + SrqRec.MAX_WR), maxSge: m.u32(this.rec + SrqRec.MAX_SGE), srqLimit: m.u32(this.rec + SrqRec.LIMIT) };
  }

  /** ibv_modify_srq: resize (maxWr, keeping posted WQEs) and/or arm the limit (srqLimit). */
  modify(attr: SrqAttr & { attrMask?: number }): void {
    const verb = "ibv_modify_srq";
    this.live(verb);
    let mask = attr.attrMask;
    if (mask === undefined) {
      mask = 0;
      if (attr.maxWr !== undefined) mask |= SrqAttrMask.MAX_WR;
      if (attr.srqLimit !== undefined) mask |= SrqAttrMask.LIMIT;
    }
    const lim = u32(attr.srqLimit);
    if (lim < 0 || u32(attr.maxWr) < 0) fail(verb, "EINVAL", "malformed attribute");
    const d = this.pd.device;
    const p = d.core.dev_args();
    d.mem.setU32(p + SrqInit.MAX_WR, attr.maxWr ?? 0);
    d.mem.setU32(p + SrqInit.LIMIT, lim);
    check(verb, d.call(() => d.core.srq_modify(this.handle, mask!)));
    this.ring = d.mem.u32(this.rec + SrqRec.RING); // a resize moves the ring
  }

  /** ibv_post_srq_recv (no doorbell: the responder takes WQEs when it needs them) */
  postRecv(wrs: RecvWr | RecvWr[]): void {
    const verb = "ibv_post_srq_recv";
    const list = Array.isArray(wrs) ? wrs : [wrs];
    this.live(verb);
    const d = this.pd.device;
    const max = d.mem.u32(this.rec + SrqRec.MAX_SGE);
    const { error } = postToRing(d.mem, this.ring, verb, list, (wr) => checkRecvWr(wr, max, "max_sge"), (p, wr) =>
      writeRecvWr(d.mem, p, wr),
    );
    if (error) throw error;
  }

  /** WQEs posted and not yet taken. */
  get depth(): number {
    const m = this.pd.device.mem;
    return (m.loadIndex(this.ring + Ring.PROD) - m.loadIndex(this.ring + Ring.CONS)) >>> 0;
  }

  /** ibv_destroy_srq: EBUSY while a QP uses it. A second call does nothing. */
  destroy(): void {
    if (this.destroyed) return;
    const d = this.pd.device;
    check("ibv_destroy_srq", d.call(() => d.core.srq_destroy(this.handle)));
    this.destroyed = true;
    d.srqs.delete(this.handle);
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }
}

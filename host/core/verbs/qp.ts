// Queue pair (ibv_qp): create, modify, query, post, destroy.
import { DOORBELL_RQ, DOORBELL_SQ, Init, QpRec } from "./abi.js";
import type { CompletionQueue } from "./cq.js";
import { QpState, QpType } from "./enums.js";
import { check, fail } from "./errors.js";
import type { ProtectionDomain } from "./pd.js";
import { checkRecvWr, checkSendWr, writeRecvWr, writeSendWr, type RecvWr, type SendWr } from "./post.js";
import { deriveMask, readAttr, readCap, writeAttr, type QpAttr, type QpAttrOut, type QpCap } from "./qp-attr.js";
import { postToRing } from "./ring.js";
import type { SharedReceiveQueue } from "./srq.js";

/** ibv_qp_init_attr */
export interface QpInitAttr {
  qpType: number;
  sendCq: CompletionQueue;
  recvCq: CompletionQueue;
  srq?: SharedReceiveQueue;
  cap?: QpCap;
  sqSigAll?: boolean | number;
}

export interface QpInitAttrOut {
  qpType: number;
  sendCq: CompletionQueue;
  recvCq: CompletionQueue;
  srq?: SharedReceiveQueue;
  cap: Required<QpCap>;
  sqSigAll: number;
}

function u32(v: number | undefined): number {
  const x = v ?? 0;
  return Number.isInteger(x) && x >= 0 && x <= 0xffffffff ? x : -1;
}

export class QueuePair {
  readonly rec: number;
  readonly qpNum: number;
  readonly qpType: number;
  readonly sendCq: CompletionQueue;
  readonly recvCq: CompletionQueue;
  readonly srq?: SharedReceiveQueue;
  /** the capabilities granted (>= those asked for) */
  readonly cap: Required<QpCap>;
  private readonly sq: number;
  private readonly rq: number;
  private destroyed = false;

  private constructor(readonly pd: ProtectionDomain, readonly handle: number, init: QpInitAttr) {
    const d = pd.device;
    const m = d.mem;
    this.rec = d.core.qp_ptr(handle);
    this.qpNum = m.u32(this.rec + QpRec.NUM);
    this.qpType = m.u32(this.rec + QpRec.TYPE);
    this.sendCq = init.sendCq;
    this.recvCq = init.recvCq;
    this.srq = init.srq;
    this.sq = m.u32(this.rec + QpRec.SQ);
    this.rq = m.u32(this.rec + QpRec.RQ);
    this.cap = readCap(m, this.rec + QpRec.ATTR);
  }

  static create(pd: ProtectionDomain, init: QpInitAttr): QueuePair {
    const verb = "ibv_create_qp";
    const d = pd.device;
    if (!init || typeof init !== "object") fail(verb, "EINVAL", "no init attributes");
    const cq = (c: CompletionQueue | undefined): number => (c && c.device === d && !c.isDestroyed ? c.handle : 0);
    const srq = init.srq;
    if (srq && (srq.pd.device !== d || srq.isDestroyed)) fail(verb, "EINVAL", "SRQ of another device or destroyed");
    const cap = init.cap ?? {};
    const vals = [init.qpType, cap.maxSendWr, cap.maxRecvWr, cap.maxSendSge, cap.maxRecvSge, cap.maxInlineData].map(u32);
    if (vals.some((v) => v < 0)) fail(verb, "EINVAL", "malformed attribute");
    const a = d.core.dev_args();
    const m = d.mem;
    m.fill(a, 64);
    m.setU32(a + Init.QP_TYPE, vals[0]!);
    m.setU32(a + Init.SEND_CQ, cq(init.sendCq));
    m.setU32(a + Init.RECV_CQ, cq(init.recvCq));
    m.setU32(a + Init.SRQ, srq ? srq.handle : 0);
    m.setU32(a + Init.MAX_SEND_WR, vals[1]!);
    m.setU32(a + Init.MAX_RECV_WR, vals[2]!);
    m.setU32(a + Init.MAX_SEND_SGE, vals[3]!);
    m.setU32(a + Init.MAX_RECV_SGE, vals[4]!);
    m.setU32(a + Init.MAX_INLINE_DATA, vals[5]!);
    m.setU32(a + Init.SQ_SIG_ALL, init.sqSigAll ? 1 : 0);
    d.refillEntropy();
    const h = check(verb, d.call(() => d.core.qp_create(pd.handle)));
    const qp = new QueuePair(pd, h, init);
    d.qpsByNum.set(qp.qpNum, qp);
    return qp;
  }

  /** Current state, read from the QP record (no call into the device). */
  get state(): number {
    return this.destroyed ? QpState.UNKNOWN : this.pd.device.mem.u32(this.rec + QpRec.ATTR);
  }

  private live(verb: string): void {
    if (this.destroyed) fail(verb, "EINVAL", "QP destroyed");
  }

  /** ibv_modify_qp: the mask comes from the fields present, or from attr.attrMask. */
  modify(attr: QpAttr): void {
    const verb = "ibv_modify_qp";
    this.live(verb);
    const d = this.pd.device;
    const mask = deriveMask(attr);
    try {
      writeAttr(d.mem, d.core.dev_args(), attr);
    } catch (e) {
      fail(verb, "EINVAL", (e as Error).message);
    }
    check(verb, d.call(() => d.core.qp_modify(this.handle, mask)));
  }

  /** ibv_query_qp: every attribute, and the creation attributes. */
  query(): { attr: QpAttrOut; initAttr: QpInitAttrOut } {
    this.live("ibv_query_qp");
    const m = this.pd.device.mem;
    return {
      attr: readAttr(m, this.rec + QpRec.ATTR),
      initAttr: {
        qpType: this.qpType,
        sendCq: this.sendCq,
        recvCq: this.recvCq,
        srq: this.srq,
        cap: { ...this.cap },
        sqSigAll: m.u32(this.rec + QpRec.SQ_SIG_ALL),
      },
    };
  }

  /**
   * ibv_post_send: writes the WRs into the SQ and rings the doorbell once.
   * Throws a VerbsError with badWr = index of the first WR not posted.
   */
  postSend(wrs: SendWr | SendWr[]): void {
    const verb = "ibv_post_send";
    const list = Array.isArray(wrs) ? wrs : [wrs];
    this.live(verb);
    const st = this.state;
    // rxe_post_send: a QP below RTS cannot send (ERR accepts and flushes)
    if (st === QpState.RESET || st === QpState.INIT || st === QpState.RTR) {
      fail(verb, "EINVAL", `QP in ${["RESET", "INIT", "RTR"][st]}`);
    }
    const d = this.pd.device;
    const lim = { qpType: this.qpType, maxSge: this.cap.maxSendSge, maxInline: this.cap.maxInlineData, device: d };
    const bytes = d.mem.byteLength;
    const { posted, error } = postToRing(d.mem, this.sq, verb, list, (wr) => checkSendWr(wr, lim, bytes), (p, wr) =>
      writeSendWr(d.mem, p, wr),
    );
    if (posted) d.call(() => d.core.doorbell(this.handle, DOORBELL_SQ, d.now()));
    if (error) throw error;
  }

  /** ibv_post_recv */
  postRecv(wrs: RecvWr | RecvWr[]): void {
    const verb = "ibv_post_recv";
    const list = Array.isArray(wrs) ? wrs : [wrs];
    this.live(verb);
    if (this.srq) fail(verb, "EINVAL", "QP uses an SRQ"); // rxe_post_recv
    if (this.state === QpState.RESET) fail(verb, "EINVAL", "QP in RESET"); // rxe_post_recv: state < INIT
    const d = this.pd.device;
    const max = this.cap.maxRecvSge;
    const { posted, error } = postToRing(d.mem, this.rq, verb, list, (wr) => checkRecvWr(wr, max, "max_recv_sge"), (p, wr) =>
      writeRecvWr(d.mem, p, wr),
    );
    if (posted) d.call(() => d.core.doorbell(this.handle, DOORBELL_RQ, d.now()));
    if (error) throw error;
  }

  /** ibv_destroy_qp: outstanding WRs vanish without completions. A second call does nothing. */
  destroy(): void {
    if (this.destroyed) return;
    const d = this.pd.device;
    check("ibv_destroy_qp", d.call(() => d.core.qp_destroy(this.handle)));
    this.destroyed = true;
    d.qpsByNum.delete(this.qpNum);
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }

  /** 'RC', 'UC' or 'UD' */
  get typeName(): string {
    return this.qpType === QpType.RC ? "RC" : this.qpType === QpType.UC ? "UC" : "UD";
  }
}

// Queue pair (ibv_qp): create, modify, query, post, destroy.
import { Attr, DOORBELL_RQ, DOORBELL_SQ, Init, QpRec } from "./abi.js";
import type { CompletionQueue } from "./cq.js";
import { Access, MwType, nameOf, QpState, QpType, WrOpcode } from "./enums.js";
import { parseGid } from "../net/gid.js";
import { incRkey, type MemoryWindow } from "./mw.js";
import { check, fail } from "./errors.js";
import type { ProtectionDomain } from "./pd.js";
import { checkRecvWr, checkSendWr, writeRecvWr, writeSendWr, type MwBindInfo, type RecvWr, type SendWr, type SqLimits } from "./post.js";
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

/** BIND_MW WRs that bindMw builds for a type 1 window (the only way such a window binds). */
const bindingType1 = new WeakSet<SendWr>();

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
    this.sqLimits = {
      qpType: this.qpType, maxSge: this.cap.maxSendSge, maxInline: this.cap.maxInlineData, device: d,
      wrClass: (op: number, type: number) => d.wrClass(op, type),
    };
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

  /**
   * The UDP source port of this QP's packets: rxe's per-QP port (0xC000 + hash_32(qpn, 14) at
   * create, rdma_get_udp_sport at RTR), or the device's (udpSourcePorts "device", or the host's
   * fallback when it could not bind the QP's port).
   */
  get udpSourcePort(): number {
    const p = this.pd.device.mem.u32(this.rec + QpRec.ATTR + Attr.UDP_SPORT);
    return p || this.pd.device.udpPort;
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
    // a QP that can send (RTR on) gets its UDP source port readied now, not at its first packet
    const st = this.state;
    if (st >= QpState.RTR && st <= QpState.SQE) {
      const sp = d.mem.u32(this.rec + QpRec.ATTR + Attr.UDP_SPORT);
      if (sp && sp !== this.preparedSport) {
        this.preparedSport = sp;
        d.port?.prepareSourcePort(this.qpNum, sp);
      }
    }
  }
  /** The UDP source port last readied with the link (QueuePair.modify). */
  private preparedSport = 0;

  /**
   * ibv_query_qp: every attribute, and the creation attributes. sqPsn and rqPsn
   * are the current ones once the QP has sent or received (rxe reports
   * qp->req.psn and qp->resp.psn: the next PSN to send, the next expected).
   */
  query(): { attr: QpAttrOut; initAttr: QpInitAttrOut } {
    this.live("ibv_query_qp");
    const m = this.pd.device.mem;
    const attr = readAttr(m, this.rec + QpRec.ATTR);
    // transport lines (assembly/verbs/qp.ts): flags word first, the PSN after it; bit 0 = set up
    if (m.u32(this.rec + QpRec.REQ) & 1) attr.sqPsn = m.u32(this.rec + QpRec.REQ + 4);
    if (m.u32(this.rec + QpRec.RESP) & 1) attr.rqPsn = m.u32(this.rec + QpRec.RESP + 4);
    return {
      attr,
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
    this.live(verb);
    const st = this.state;
    // rxe_post_send: a QP below RTS cannot send (ERR accepts and flushes)
    if (st === QpState.RESET || st === QpState.INIT || st === QpState.RTR) {
      fail(verb, "EINVAL", `QP in ${nameOf(QpState, st)}`);
    }
    const d = this.pd.device;
    let list: SendWr[];
    if (Array.isArray(wrs)) list = wrs;
    else {
      list = this.oneWr;
      list[0] = wrs;
    }
    let r: ReturnType<typeof postToRing>;
    try {
      r = postToRing(d.mem, this.sq, verb, list, this.checkSend, this.writeSend);
    } finally {
      if (list === this.oneWr) list[0] = undefined as unknown as SendWr; // not kept alive by the QP
    }
    if (r.posted) d.call(this.ringSq);
    if (r.error) throw r.error;
  }

  /** The limits checkSendWr holds this QP's WRs to (its type and caps never change): made once. */
  private readonly sqLimits: SqLimits;
  /** postSend's list for a single WR (emptied after each post). */
  private readonly oneWr: SendWr[] = [undefined as unknown as SendWr];
  /** postSend's check of one WR, made once (not per post). */
  private readonly checkSend = (wr: SendWr): ReturnType<typeof checkSendWr> => {
    const e = checkSendWr(wr, this.sqLimits, this.pd.device.mem.byteLength);
    if (e) return e;
    // a type 1 window is bound with bindMw (ibv_bind_mw), never by a BIND_MW WR
    if (wr.opcode === WrOpcode.BIND_MW && wr.bindMw!.mw.type === MwType.TYPE_1 && !bindingType1.has(wr)) return ["EINVAL", "BIND_MW WR for a type 1 window"];
    return undefined;
  };
  /** postSend's write of one checked WR into its SQ slot `p`. */
  private readonly writeSend = (p: number, wr: SendWr): void => {
    writeSendWr(this.pd.device.mem, p, wr);
    // what the WR will set, as the application's view of it (ib_update_fast_reg_key, ibv_bind_mw)
    if (wr.opcode === WrOpcode.REG_MR) wr.reg!.mr.mapped(wr.reg!.key, wr.reg!.addr ?? wr.reg!.mr.addr, wr.reg!.length ?? wr.reg!.mr.length, wr.reg!.access);
    if (wr.opcode === WrOpcode.BIND_MW) wr.bindMw!.mw.setRkey(wr.bindMw!.rkey);
  };
  /** postSend's doorbell (inside Device.call). */
  private readonly ringSq = (): void => {
    const d = this.pd.device;
    d.core.doorbell(this.handle, DOORBELL_SQ, d.now());
  };

  /**
   * ibv_bind_mw: binds a type 1 window (length 0 unbinds it) through the send
   * queue; returns the window's new rkey (ibv_inc_rkey of the old one), which
   * works once the bind completes (WC BIND_MW).
   */
  bindMw(mw: MemoryWindow, bind: { wrId?: bigint; sendFlags?: number; bindInfo: MwBindInfo }): number {
    const verb = "ibv_bind_mw";
    this.live(verb);
    const i = bind?.bindInfo;
    if (!mw || mw.isDestroyed || mw.pd.device !== this.pd.device || !i) fail(verb, "EINVAL", "no window or bind info");
    if (mw.type !== MwType.TYPE_1) fail(verb, "EINVAL", "ibv_bind_mw binds type 1 windows; a type 2 window takes a BIND_MW work request");
    if (!i.mr && (i.addr !== 0n || BigInt(i.length) !== 0n)) fail(verb, "EINVAL", "an address or length without an MR");
    if (i.mwAccessFlags & Access.ZERO_BASED) fail(verb, "EINVAL", "a type 1 window cannot be zero based");
    if (i.mr && i.mr.pd !== mw.pd) fail(verb, "EPERM", "the MR is in another PD than the window");
    const rkey = incRkey(mw.rkey);
    const wr: SendWr = { wrId: bind.wrId, sendFlags: bind.sendFlags, opcode: WrOpcode.BIND_MW, bindMw: { mw, rkey, bindInfo: i } };
    bindingType1.add(wr);
    try {
      this.postSend(wr); // errors name ibv_post_send, as rxe's provider posts the bind
    } finally {
      bindingType1.delete(wr);
    }
    return rkey;
  }

  /**
   * ibv_attach_mcast: this UD QP receives datagrams sent to QPN 0xFFFFFF at the
   * multicast GID (an IPv4-mapped 224.0.0.0/4 or an ff00::/8 address); the
   * device's link joins that group. `lid` is unused on RoCE.
   */
  attachMcast(gid: string | Uint8Array, lid = 0): void {
    const verb = "ibv_attach_mcast";
    this.live(verb);
    const g = this.mcastArg(verb, gid, lid);
    const d = this.pd.device;
    check(verb, d.call(() => d.core.mcast_attach(this.handle)));
    d.multicastAttached(g, this);
  }

  /** ibv_detach_mcast: EINVAL when the QP is not attached to the group. */
  detachMcast(gid: string | Uint8Array, lid = 0): void {
    const verb = "ibv_detach_mcast";
    this.live(verb);
    const g = this.mcastArg(verb, gid, lid);
    const d = this.pd.device;
    check(verb, d.call(() => d.core.mcast_detach(this.handle)));
    d.multicastDetached(g, this);
  }

  private mcastArg(verb: string, gid: string | Uint8Array, lid: number): Uint8Array {
    let g: Uint8Array;
    try {
      g = parseGid(gid);
    } catch (e) {
      fail(verb, "EINVAL", (e as Error).message);
    }
    if (!Number.isInteger(lid) || lid < 0 || lid > 0xffff) fail(verb, "EINVAL", `lid ${lid}`);
    const d = this.pd.device;
    d.mem.u8.set(g, d.core.dev_args());
    return g;
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
    const r = d.call(() => d.core.qp_destroy(this.handle));
    if (r === -16) fail("ibv_destroy_qp", "EBUSY", "the QP is attached to a multicast group (detachMcast first)");
    check("ibv_destroy_qp", r);
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

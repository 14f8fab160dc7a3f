// The communication manager of IBTA chapter 12 as Linux's ib_cm implements it
// (drivers/infiniband/core/cm.c), one per port: communication IDs, the state
// machine, REQ/MRA/REJ/REP/RTU/DREQ/DREP/SIDR with the MAD layer's timeouts and
// retries, duplicate and stale-connection handling, TIMEWAIT. The idiom is
// rxe's: an enum and name table (cm-consts.ts), one small handler per message
// that checks the state and moves to the next, every transition traced.
// Time enters only through the Clock; MADs only through the MadTransport.
// Where this differs from Linux, the comment at the spot says why.
import type { Clock } from "../link/port.js";
import { Access, QpState, QpType, WcStatus } from "../verbs/enums.js";
import type { QpAttr } from "../verbs/qp-attr.js";
import {
  CmState, CM_STATE_NAMES, cmAckTimeout, cmConvertToMs, IbCmEventType, IB_CM_EVENT_NAMES, MRA_FLAG_DELAY, MsgResponse,
  RejReason, SidrStatus, TransportServiceType,
} from "./cm-consts.js";
import {
  blankCm, CM_MESSAGES, emitCmMad, parseCmMad, privateDataSize, type CmDrep, type CmDreq, type CmMad, type CmMra,
  type CmMsg, type CmMsgName, type CmRej, type CmRep, type CmReq, type CmRtu, type CmSidrRep, type CmSidrReq,
} from "./cm-msgs.js";
import { cmFail } from "./errno.js";
import { ahAttrOf, avForResponse, avFromPath, pathFromReq, replyTo, sameGid, type CmAv } from "./cm-av.js";
import type {
  CmHandler, CmRepParam, CmReqParam, CmSidrRepParam, CmSidrReqParam, IbCmEvent,
} from "./cm-params.js";
import { GSI_QKEY, GSI_QPN, MadError, MadMethod, parseMad, unmatchedResponse, DEFAULT_PKEY, type MadHeader } from "./mad.js";
import type { MadAddress, MadTransport } from "./mad-transport.js";

/** struct cm_timewait_info: the keys a connection is found by while it lives. */
interface TimewaitInfo {
  localId: number;
  remoteId: number;
  remoteCaGuid: bigint;
  remoteQpn: number;
  inRemoteIds: boolean;
  inRemoteQpns: boolean;
}

/** An outstanding MAD that expects an answer (ib_mad_send_buf with a timeout). */
interface SendBuf {
  id: CmId;
  mad: Uint8Array;
  to: MadAddress;
  name: CmMsgName;
  timeoutMs: number;
  retriesLeft: number;
  /** the state the answer is awaited in (msg->context[1]) */
  stateTag: CmState;
  timer: unknown;
  done: boolean;
}

export interface CmTraceRecord {
  /** µs */
  at: number;
  localId: number;
  from: string;
  to: string;
  cause: string;
}

export interface CmOptions {
  transport: MadTransport;
  clock: Clock;
  /** the device's node GUID (the CA GUID in REQ and REP) */
  nodeGuid: bigint;
  /** the CA's ACK delay (ibv_device_attr.local_ca_ack_delay; rxe: 15) */
  ackDelay?: number;
  /** high 32 bits of our transaction IDs (the MAD agent's hi_tid) */
  hiTid?: number;
  /** u32 source for the communication ID operand (default: crypto) */
  random?: () => number;
  /** our port's GID table: a REQ for a GID not in it is rejected "invalid GID", as Linux does */
  gids?: () => Uint8Array[];
  /** records kept in `trace` (default 4096) */
  traceLimit?: number;
}

const CM_ATTRS = Object.keys(CM_MESSAGES) as CmMsgName[];
const zeroCounts = (): Record<CmMsgName, number> => Object.fromEntries(CM_ATTRS.map((k) => [k, 0])) as Record<CmMsgName, number>;

export class CmId {
  state: CmState = CmState.IDLE;
  localId = 0;
  remoteId = 0;
  serviceId = 0n;
  serviceMask = 0n;
  /** the TID of the exchange we answer in (REQ's, or the last DREQ's) */
  tid = 0n;
  av: CmAv | undefined;
  /** the outstanding MAD that expects an answer */
  msg: SendBuf | undefined;
  timewait: TimewaitInfo | undefined;
  /** kept to resend MRA, RTU and DREP on duplicates */
  privateData: Uint8Array | undefined;
  localQpn = 0;
  remoteQpn = 0;
  qpType = 0;
  sqPsn = 0;
  rqPsn = 0;
  timeoutMs = 0;
  pathMtu = 0;
  pkey = DEFAULT_PKEY;
  maxCmRetries = 0;
  responderResources = 0;
  initiatorDepth = 0;
  retryCount = 0;
  rnrRetryCount = 0;
  serviceTimeout = 0;
  targetAckDelay = 0;
  /** remote SIDR requests are found by requestId + source (see onSidrReq) */
  sidrKey: string | undefined;
  /** Linux makes an ID visible to MAD handlers only once a new connection is set up (cm_finalize_id) */
  visible = false;
  destroyed = false;

  constructor(readonly cm: CommunicationManager, public handler: CmHandler, public context?: unknown) {}

  get stateName(): string {
    return CM_STATE_NAMES[this.state] ?? String(this.state);
  }

  /** ib_cm_listen: mask 0 means exact match. */
  listen(serviceId: bigint, serviceMask = 0n): void {
    this.cm.listen(this, serviceId, serviceMask);
  }
  /** ib_send_cm_req */
  sendReq(p: CmReqParam): void {
    this.cm.sendReq(this, p);
  }
  /** ib_send_cm_rep */
  sendRep(p: CmRepParam): void {
    this.cm.sendRep(this, p);
  }
  /** ib_send_cm_rtu */
  sendRtu(privateData?: Uint8Array): void {
    this.cm.sendRtu(this, privateData);
  }
  /** ib_send_cm_dreq */
  sendDreq(privateData?: Uint8Array): void {
    this.cm.sendDreq(this, privateData);
  }
  /** ib_send_cm_drep */
  sendDrep(privateData?: Uint8Array): void {
    this.cm.sendDrep(this, privateData);
  }
  /** ib_send_cm_rej */
  sendRej(reason: number, ari?: Uint8Array, privateData?: Uint8Array): void {
    this.cm.sendRej(this, reason, ari, privateData);
  }
  /** ib_send_cm_mra; serviceTimeout | MRA_FLAG_DELAY sends it only when a duplicate arrives */
  sendMra(serviceTimeout: number, privateData?: Uint8Array): void {
    this.cm.sendMra(this, serviceTimeout, privateData);
  }
  /** ib_send_cm_sidr_req */
  sendSidrReq(p: CmSidrReqParam): void {
    this.cm.sendSidrReq(this, p);
  }
  /** ib_send_cm_sidr_rep */
  sendSidrRep(p: CmSidrRepParam): void {
    this.cm.sendSidrRep(this, p);
  }
  /** ib_cm_notify(IB_EVENT_COMM_EST): data arrived before the RTU */
  notifyEstablished(): void {
    this.cm.establish(this);
  }
  /** ib_cm_init_qp_attr: the attributes for the QP's move to `qpState` (INIT, RTR or RTS). */
  initQpAttr(qpState: number): QpAttr {
    return this.cm.initQpAttr(this, qpState);
  }
  /** ib_destroy_cm_id */
  destroy(): void {
    this.cm.destroyId(this, 0);
  }
}

export class CommunicationManager {
  readonly counters = {
    /** cm_tx_msgs, cm_tx_retries, cm_rx_msgs, cm_rx_duplicates, per message */
    tx: zeroCounts(),
    txRetries: zeroCounts(),
    rx: zeroCounts(),
    rxDuplicates: zeroCounts(),
    /** MADs dropped, by reason (MadError codes, "unmatched", state mismatches) */
    drops: {} as Record<string, number>,
    /** Get/Set answered "unsupported method/attribute" (the MAD layer's answer) */
    unmatchedAnswered: 0,
  };
  readonly trace: CmTraceRecord[] = [];
  readonly nodeGuid: bigint;
  readonly ackDelay: number;
  private readonly transport: MadTransport;
  private readonly clock: Clock;
  private readonly hiTid: number;
  private readonly ids = new Map<number, CmId>();
  private readonly listens: CmId[] = [];
  private readonly remoteIds = new Map<string, TimewaitInfo>();
  private readonly remoteQpns = new Map<string, TimewaitInfo>();
  private readonly remoteSidr = new Map<string, CmId>();
  private nextLocal = 0;
  private readonly idOperand: number;
  private nextServiceId = 0x0200000000000000n;
  private readonly traceLimit: number;

  constructor(private readonly o: CmOptions) {
    this.transport = o.transport;
    this.clock = o.clock;
    this.nodeGuid = o.nodeGuid;
    this.ackDelay = o.ackDelay ?? 15;
    this.hiTid = o.hiTid ?? 1;
    this.idOperand = (o.random ?? cryptoU32)() >>> 0;
    this.traceLimit = o.traceLimit ?? 4096;
    this.transport.onReceive((mad, from) => this.receive(mad, from));
  }

  /** ib_create_cm_id */
  createId(handler: CmHandler, context?: unknown): CmId {
    const id = this.allocId(handler, context);
    id.visible = true;
    return id;
  }

  /** A live ID by local communication ID (for tests and tools). */
  idByLocal(localId: number): CmId | undefined {
    return this.ids.get(localId);
  }

  get idCount(): number {
    return this.ids.size;
  }

  private allocId(handler: CmHandler, context?: unknown): CmId {
    const id = new CmId(this, handler, context);
    // cm_alloc_id_priv: a cyclic counter XOR a random operand, so IDs are unpredictable but unique.
    for (;;) {
      const n = this.nextLocal;
      this.nextLocal = (this.nextLocal + 1) >>> 0;
      const local = (n ^ this.idOperand) >>> 0;
      if (!this.ids.has(local)) {
        id.localId = local;
        break;
      }
    }
    this.ids.set(id.localId, id);
    return id;
  }

  /** cm_acquire_id: the ID with this local ID whose remote ID is `remoteId`. */
  private acquire(localId: number, remoteId: number): CmId | undefined {
    const id = this.ids.get(localId);
    return id && id.visible && !id.destroyed && id.remoteId === remoteId ? id : undefined;
  }

  private setState(id: CmId, s: CmState, cause: string): void {
    if (this.trace.length >= this.traceLimit) this.trace.splice(0, this.trace.length - this.traceLimit + 1);
    this.trace.push({ at: this.clock.now(), localId: id.localId, from: id.stateName, to: CM_STATE_NAMES[s]!, cause });
    id.state = s;
  }

  private drop(reason: string): void {
    this.counters.drops[reason] = (this.counters.drops[reason] ?? 0) + 1;
  }

  private deliver(id: CmId, event: IbCmEventType, ev: Omit<IbCmEvent, "event" | "name"> = {}): void {
    const ret = id.handler(id, { event, name: IB_CM_EVENT_NAMES[event]!, ...ev });
    if (ret) this.destroyId(id, ret);
  }

  // ---- transaction IDs and sending ----

  /** cm_form_tid: hi_tid, then the local ID as Linux's little-endian hosts put it (byte-reversed). */
  formTid(id: CmId): bigint {
    return (BigInt(this.hiTid >>> 0) << 32n) | BigInt(bswap32(id.localId));
  }

  private send(mad: Uint8Array, to: MadAddress, name: CmMsgName): void {
    this.counters.tx[name]++;
    this.transport.send(mad, to);
  }

  /** cm_alloc_msg + ib_post_send_mad: a MAD to the ID's peer; with a timeout it is retried maxCmRetries times. */
  private post<K extends CmMsgName>(id: CmId, name: K, tid: bigint, msg: Partial<CmMsg<K>>, timeoutMs = 0, stateTag?: CmState): SendBuf | undefined {
    const av = id.av;
    if (!av) cmFail(`ib_send_cm_${name.toLowerCase()}`, "ENODEV", "no address vector");
    const mad = emitCmMad(name, { transactionId: tid }, msg);
    this.send(mad, av.to, name);
    if (!timeoutMs) return undefined;
    const buf: SendBuf = { id, mad, to: av.to, name, timeoutMs, retriesLeft: id.maxCmRetries, stateTag: stateTag ?? id.state, timer: undefined, done: false };
    this.arm(buf);
    return buf;
  }

  private arm(buf: SendBuf): void {
    buf.timer = this.clock.setTimer(this.clock.now() + buf.timeoutMs * 1000, () => this.sendTimeout(buf));
  }

  /** The MAD layer's retry: resend until the retries run out, then fail the send (IB_WC_RESP_TIMEOUT_ERR). */
  private sendTimeout(buf: SendBuf): void {
    buf.timer = undefined;
    if (buf.done) return;
    if (buf.retriesLeft > 0) {
      buf.retriesLeft--;
      this.counters.txRetries[buf.name]++;
      this.send(buf.mad, buf.to, buf.name);
      this.arm(buf);
      return;
    }
    buf.done = true;
    this.processSendError(buf);
  }

  /** ib_cancel_mad */
  private cancel(buf: SendBuf | undefined): void {
    if (!buf || buf.done) return;
    buf.done = true;
    if (buf.timer !== undefined) this.clock.clearTimer(buf.timer);
    buf.timer = undefined;
  }

  /** ib_modify_mad: a new timeout from now, used for the retries too. False when nothing is outstanding. */
  private modify(buf: SendBuf | undefined, timeoutMs: number): boolean {
    if (!buf || buf.done) return false;
    if (buf.timer !== undefined) this.clock.clearTimer(buf.timer);
    buf.timeoutMs = timeoutMs;
    this.arm(buf);
    return true;
  }

  /** cm_process_send_error */
  private processSendError(buf: SendBuf): void {
    const id = buf.id;
    if (id.destroyed || buf !== id.msg || buf.stateTag !== id.state) return;
    let event: IbCmEventType;
    switch (id.state) {
      case CmState.REQ_SENT:
      case CmState.MRA_REQ_RCVD:
        this.resetToIdle(id, "REQ timed out");
        event = IbCmEventType.REQ_ERROR;
        break;
      case CmState.REP_SENT:
      case CmState.MRA_REP_RCVD:
        this.resetToIdle(id, "REP timed out");
        event = IbCmEventType.REP_ERROR;
        break;
      case CmState.DREQ_SENT:
        this.enterTimewait(id, "DREQ timed out");
        event = IbCmEventType.DREQ_ERROR;
        break;
      case CmState.SIDR_REQ_SENT:
        this.setState(id, CmState.IDLE, "SIDR_REQ timed out");
        event = IbCmEventType.SIDR_REQ_ERROR;
        break;
      default:
        return;
    }
    this.deliver(id, event, { sendStatus: WcStatus.RESP_TIMEOUT_ERR });
  }

  // ---- the tables a connection is found in ----

  private insertRemoteId(tw: TimewaitInfo): TimewaitInfo | undefined {
    const k = `${tw.remoteId}/${tw.remoteCaGuid}`;
    const cur = this.remoteIds.get(k);
    if (cur) return cur;
    this.remoteIds.set(k, tw);
    tw.inRemoteIds = true;
    return undefined;
  }

  private insertRemoteQpn(tw: TimewaitInfo): TimewaitInfo | undefined {
    const k = `${tw.remoteQpn}/${tw.remoteCaGuid}`;
    const cur = this.remoteQpns.get(k);
    if (cur) return cur;
    this.remoteQpns.set(k, tw);
    tw.inRemoteQpns = true;
    return undefined;
  }

  private cleanupTimewait(tw: TimewaitInfo | undefined): void {
    if (!tw) return;
    if (tw.inRemoteIds) this.remoteIds.delete(`${tw.remoteId}/${tw.remoteCaGuid}`);
    if (tw.inRemoteQpns) this.remoteQpns.delete(`${tw.remoteQpn}/${tw.remoteCaGuid}`);
    tw.inRemoteIds = tw.inRemoteQpns = false;
  }

  /** cm_enter_timewait: out of the tables; back to IDLE after cm_convert_to_ms(av.timeout). */
  private enterTimewait(id: CmId, cause: string): void {
    const tw = id.timewait;
    this.cleanupTimewait(tw);
    this.setState(id, CmState.TIMEWAIT, cause);
    const remoteId = id.remoteId;
    const remoteQpn = tw?.remoteQpn ?? id.remoteQpn;
    const waitMs = cmConvertToMs(id.av?.timeout ?? 0);
    this.clock.setTimer(this.clock.now() + waitMs * 1000, () => this.timewaitExit(id.localId, remoteId, remoteQpn));
    id.timewait = undefined;
  }

  /** cm_timewait_handler */
  private timewaitExit(localId: number, remoteId: number, remoteQpn: number): void {
    const id = this.acquire(localId, remoteId);
    if (!id || id.state !== CmState.TIMEWAIT || id.remoteQpn !== remoteQpn) return;
    this.setState(id, CmState.IDLE, "timewait over");
    this.deliver(id, IbCmEventType.TIMEWAIT_EXIT);
  }

  /** cm_reset_to_idle */
  private resetToIdle(id: CmId, cause: string): void {
    this.setState(id, CmState.IDLE, cause);
    this.cleanupTimewait(id.timewait);
    id.timewait = undefined;
  }

  private newTimewait(id: CmId): TimewaitInfo {
    return { localId: id.localId, remoteId: 0, remoteCaGuid: 0n, remoteQpn: 0, inRemoteIds: false, inRemoteQpns: false };
  }

  // ---- receive ----

  private receive(mad: Uint8Array, from: MadAddress): void {
    let hdr: MadHeader;
    try {
      hdr = parseMad(mad).hdr;
    } catch (e) {
      if (e instanceof MadError) return this.drop(e.code);
      throw e;
    }
    // The CM registers for class CM, version 2, method Send only (cm_add_one); the MAD layer
    // answers a Get or Set nobody registered for, and drops every other unmatched MAD.
    if (hdr.method === MadMethod.GET || hdr.method === MadMethod.SET) {
      const resp = unmatchedResponse(mad)!;
      this.counters.unmatchedAnswered++;
      this.transport.send(resp, replyTo(from));
      return;
    }
    let m: CmMad;
    try {
      m = parseCmMad(mad);
    } catch (e) {
      if (e instanceof MadError) return this.drop(e.code);
      throw e;
    }
    this.counters.rx[m.name]++;
    switch (m.name) {
      case "REQ": return this.onReq(m.hdr, m.msg, mad, from);
      case "MRA": return this.onMra(m.msg);
      case "REJ": return this.onRej(m.msg);
      case "REP": return this.onRep(m.msg, mad, from);
      case "RTU": return this.onRtu(m.msg);
      case "DREQ": return this.onDreq(m.hdr, m.msg, from);
      case "DREP": return this.onDrep(m.msg);
      case "SIDR_REQ": return this.onSidrReq(m.hdr, m.msg, from);
      case "SIDR_REP": return this.onSidrRep(m.msg);
      // Linux ignores LAP and APR on RoCE ports (cm_lap_handler, cm_apr_handler).
      case "LAP":
      case "APR":
        return this.drop("lap_apr_on_roce");
    }
  }

  /** cm_req_handler with cm_match_req. */
  private onReq(hdr: MadHeader, req: CmReq, mad: Uint8Array, from: MadAddress): void {
    const id = this.allocId(() => 0);
    id.remoteId = req.localCommId;
    id.serviceId = req.serviceId;
    id.serviceMask = ~0n & 0xffffffffffffffffn;
    id.tid = hdr.transactionId;
    id.timeoutMs = cmConvertToMs(req.localCmResponseTimeout);
    id.maxCmRetries = req.maxCmRetries;
    id.remoteQpn = req.localQpn;
    id.initiatorDepth = req.responderResources;
    id.responderResources = req.initiatorDepth;
    id.pathMtu = req.pathPacketPayloadMtu;
    id.pkey = req.partitionKey;
    id.sqPsn = req.startingPsn;
    id.retryCount = req.retryCount;
    id.rnrRetryCount = req.rnrRetryCount;
    id.qpType = reqQpType(req);
    id.av = avForResponse(from);
    const tw = this.newTimewait(id);
    tw.remoteId = id.remoteId;
    tw.remoteCaGuid = req.localCaGuid;
    tw.remoteQpn = id.remoteQpn;
    id.timewait = tw;
    this.setState(id, CmState.REQ_RCVD, "REQ");

    const dupOf = this.insertRemoteId(tw);
    if (dupOf) {
      const cur = this.acquire(dupOf.localId, dupOf.remoteId);
      if (cur) this.dupReq(cur, from);
      return this.discard(id);
    }
    const staleOf = this.insertRemoteQpn(tw);
    if (staleOf) {
      // The peer reuses a QPN we still hold a connection for: it lost that one (IBTA 12.9.8.3.1).
      this.cleanupTimewait(tw);
      const cur = this.acquire(staleOf.localId, staleOf.remoteId);
      this.issueRej(hdr, mad, from, RejReason.STALE_CONN, MsgResponse.REQ);
      if (cur && cur.state === CmState.ESTABLISHED) this.sendDreq(cur);
      return this.discard(id);
    }
    const listen = this.findListen(req.serviceId);
    if (!listen) {
      this.cleanupTimewait(tw);
      this.issueRej(hdr, mad, from, RejReason.INVALID_SERVICE_ID, MsgResponse.REQ);
      return this.discard(id);
    }

    const path = pathFromReq(req, from);
    id.handler = listen.handler;
    id.context = listen.context;
    // cm_init_av_by_path: the GID the peer addressed must be ours.
    const gids = this.o.gids?.();
    if (gids) {
      const idx = gids.findIndex((g) => sameGid(g, path.sgid));
      if (idx < 0) {
        this.sendRej(id, RejReason.INVALID_GID, gids[0], undefined);
        return this.discard(id);
      }
      path.sgidIndex = idx;
    }
    id.av = avFromPath(path, from);
    id.visible = true;
    this.deliver(id, IbCmEventType.REQ_RECEIVED, {
      privateData: req.privateData,
      reqRcvd: {
        listenId: listen,
        primaryPath: path,
        remoteCaGuid: req.localCaGuid,
        remoteQkey: req.localQkey,
        remoteQpn: req.localQpn,
        qpType: id.qpType,
        startingPsn: req.startingPsn,
        responderResources: req.initiatorDepth,
        initiatorDepth: req.responderResources,
        localCmResponseTimeout: req.remoteCmResponseTimeout,
        flowControl: req.endToEndFlowControl,
        remoteCmResponseTimeout: req.localCmResponseTimeout,
        retryCount: req.retryCount,
        rnrRetryCount: req.rnrRetryCount,
        srq: req.srq,
        from,
      },
    });
  }

  /** The new ID could not be used: drop it without a word (state IDLE, then destroy). */
  private discard(id: CmId): void {
    if (id.state !== CmState.IDLE) this.setState(id, CmState.IDLE, "discarded");
    this.destroyId(id, 0);
  }

  /** cm_dup_req_handler */
  private dupReq(cur: CmId, from: MadAddress): void {
    this.counters.rxDuplicates.REQ++;
    switch (cur.state) {
      case CmState.MRA_REQ_SENT: {
        const mra = this.formatMra(cur, MsgResponse.REQ, cur.serviceTimeout, cur.privateData);
        this.send(emitCmMad("MRA", { transactionId: cur.tid }, mra), replyTo(from), "MRA");
        return;
      }
      case CmState.TIMEWAIT: {
        const rej = this.formatRej(cur, RejReason.STALE_CONN);
        this.send(emitCmMad("REJ", { transactionId: cur.tid }, rej), replyTo(from), "REJ");
        return;
      }
      default:
        // REQ_RCVD, REP_SENT, ...: the REP's own retries answer a lost REP (Linux does not resend it here).
        return;
    }
  }

  /** cm_issue_rej: a REJ for a message no ID took, built from its header alone. */
  private issueRej(hdr: MadHeader, mad: Uint8Array, from: MadAddress, reason: number, msgRejected: number): void {
    const rej = blankCm("REJ");
    // "We just need common CM header information. Cast to any message."
    rej.remoteCommId = readU32(mad, 24);
    rej.localCommId = readU32(mad, 28);
    rej.messageRejected = msgRejected;
    rej.reason = reason;
    this.send(emitCmMad("REJ", { transactionId: hdr.transactionId }, rej), replyTo(from), "REJ");
  }

  /** cm_rep_handler */
  private onRep(rep: CmRep, mad: Uint8Array, from: MadAddress): void {
    const id = this.acquire(rep.remoteCommId, 0);
    if (!id) return this.dupRep(rep, from);
    if (id.state !== CmState.REQ_SENT && id.state !== CmState.MRA_REQ_RCVD) return this.drop("rep_in_" + id.stateName);
    const tw = id.timewait!;
    tw.remoteId = rep.localCommId;
    tw.remoteCaGuid = rep.localCaGuid;
    tw.remoteQpn = rep.localQpn;
    if (this.insertRemoteId(tw)) return this.drop("rep_duplicate_remote_id");
    const staleOf = this.insertRemoteQpn(tw);
    if (staleOf) {
      this.remoteIds.delete(`${tw.remoteId}/${tw.remoteCaGuid}`);
      tw.inRemoteIds = false;
      const cur = this.acquire(staleOf.localId, staleOf.remoteId);
      this.issueRej(parseMad(mad).hdr, mad, from, RejReason.STALE_CONN, MsgResponse.REP);
      if (cur && cur.state === CmState.ESTABLISHED) this.sendDreq(cur);
      return;
    }
    this.setState(id, CmState.REP_RCVD, "REP");
    id.remoteId = rep.localCommId;
    id.remoteQpn = rep.localQpn;
    id.initiatorDepth = rep.responderResources;
    id.responderResources = rep.initiatorDepth;
    id.sqPsn = rep.startingPsn;
    id.rnrRetryCount = rep.rnrRetryCount;
    id.targetAckDelay = rep.targetAckDelay;
    if (id.av) id.av.timeout = cmAckTimeout(id.targetAckDelay, id.av.timeout - 1);
    this.cancel(id.msg);
    this.deliver(id, IbCmEventType.REP_RECEIVED, {
      privateData: rep.privateData,
      repRcvd: {
        remoteCaGuid: rep.localCaGuid,
        remoteQkey: rep.localQkey,
        remoteQpn: rep.localQpn,
        startingPsn: rep.startingPsn,
        responderResources: rep.initiatorDepth,
        initiatorDepth: rep.responderResources,
        targetAckDelay: rep.targetAckDelay,
        failoverAccepted: rep.failoverAccepted,
        flowControl: rep.endToEndFlowControl,
        rnrRetryCount: rep.rnrRetryCount,
        srq: rep.srq,
      },
    });
  }

  /** cm_dup_rep_handler: our RTU (or MRA) was lost; send it again. */
  private dupRep(rep: CmRep, from: MadAddress): void {
    const cur = this.acquire(rep.remoteCommId, rep.localCommId);
    if (!cur) return this.drop("rep_unmatched");
    this.counters.rxDuplicates.REP++;
    if (cur.state === CmState.ESTABLISHED) {
      const rtu: Partial<CmRtu> = { localCommId: cur.localId, remoteCommId: cur.remoteId, privateData: cur.privateData };
      this.send(emitCmMad("RTU", { transactionId: cur.tid }, rtu), replyTo(from), "RTU");
    } else if (cur.state === CmState.MRA_REP_SENT) {
      const mra = this.formatMra(cur, MsgResponse.REP, cur.serviceTimeout, cur.privateData);
      this.send(emitCmMad("MRA", { transactionId: cur.tid }, mra), replyTo(from), "MRA");
    }
  }

  /** cm_rtu_handler */
  private onRtu(rtu: CmRtu): void {
    const id = this.acquire(rtu.remoteCommId, rtu.localCommId);
    if (!id) return this.drop("rtu_unmatched");
    if (id.state !== CmState.REP_SENT && id.state !== CmState.MRA_REP_RCVD) {
      this.counters.rxDuplicates.RTU++;
      return;
    }
    this.setState(id, CmState.ESTABLISHED, "RTU");
    this.cancel(id.msg);
    this.deliver(id, IbCmEventType.RTU_RECEIVED, { privateData: rtu.privateData });
  }

  /** cm_dreq_handler */
  private onDreq(hdr: MadHeader, dreq: CmDreq, from: MadAddress): void {
    const id = this.acquire(dreq.remoteCommId, dreq.localCommId);
    if (!id) {
      // Already gone (its DREP was lost): cm_issue_drep answers from the DREQ alone.
      this.counters.rxDuplicates.DREQ++;
      const drep: Partial<CmDrep> = { remoteCommId: dreq.localCommId, localCommId: dreq.remoteCommId };
      this.send(emitCmMad("DREP", { transactionId: hdr.transactionId }, drep), replyTo(from), "DREP");
      return;
    }
    if (id.localQpn !== dreq.remoteQpnEecn) return this.drop("dreq_wrong_qpn");
    switch (id.state) {
      case CmState.REP_SENT:
      case CmState.DREQ_SENT:
        this.cancel(id.msg);
        break;
      case CmState.ESTABLISHED:
      case CmState.MRA_REP_RCVD:
        break;
      case CmState.TIMEWAIT: {
        this.counters.rxDuplicates.DREQ++;
        const drep: Partial<CmDrep> = { localCommId: id.localId, remoteCommId: id.remoteId, privateData: id.privateData };
        this.send(emitCmMad("DREP", { transactionId: id.tid }, drep), replyTo(from), "DREP");
        return;
      }
      case CmState.DREQ_RCVD:
        this.counters.rxDuplicates.DREQ++;
        return;
      default:
        return this.drop("dreq_in_" + id.stateName);
    }
    this.setState(id, CmState.DREQ_RCVD, "DREQ");
    id.tid = hdr.transactionId;
    this.deliver(id, IbCmEventType.DREQ_RECEIVED, { privateData: dreq.privateData });
  }

  /** cm_drep_handler */
  private onDrep(drep: CmDrep): void {
    const id = this.acquire(drep.remoteCommId, drep.localCommId);
    if (!id) return this.drop("drep_unmatched");
    if (id.state !== CmState.DREQ_SENT && id.state !== CmState.DREQ_RCVD) return this.drop("drep_in_" + id.stateName);
    this.enterTimewait(id, "DREP");
    this.cancel(id.msg);
    this.deliver(id, IbCmEventType.DREP_RECEIVED, { privateData: drep.privateData });
  }

  /** cm_acquire_rejected_id + cm_rej_handler */
  private onRej(rej: CmRej): void {
    let id: CmId | undefined;
    if (rej.reason === RejReason.TIMEOUT) {
      // The ARI of a timeout REJ is the sender's CA GUID: find the connection by (remote ID, GUID).
      const guid = readU64(rej.ari, 0);
      const tw = this.remoteIds.get(`${rej.localCommId}/${guid}`);
      id = tw && this.acquire(tw.localId, rej.localCommId);
    } else if (rej.messageRejected === MsgResponse.REQ) {
      id = this.acquire(rej.remoteCommId, 0);
    } else {
      id = this.acquire(rej.remoteCommId, rej.localCommId);
    }
    if (!id) return this.drop("rej_unmatched");
    const s = id.state;
    if (s === CmState.REQ_SENT || s === CmState.MRA_REQ_RCVD || s === CmState.REP_SENT || s === CmState.MRA_REP_RCVD ||
        s === CmState.REQ_RCVD || s === CmState.MRA_REQ_SENT) {
      this.cancel(id.msg);
      if (rej.reason === RejReason.STALE_CONN) this.enterTimewait(id, "REJ stale");
      else this.resetToIdle(id, "REJ");
    } else if (s === CmState.DREQ_SENT || s === CmState.REP_RCVD || s === CmState.MRA_REP_SENT || s === CmState.ESTABLISHED) {
      this.cancel(id.msg);
      this.enterTimewait(id, "REJ");
    } else {
      return this.drop("rej_in_" + id.stateName);
    }
    this.deliver(id, IbCmEventType.REJ_RECEIVED, {
      privateData: rej.privateData,
      rejRcvd: { reason: rej.reason, ari: rej.ari, ariLength: rej.rejectedInfoLength },
    });
  }

  /** cm_acquire_mraed_id + cm_mra_handler: the peer needs longer; wait service timeout + packet life. */
  private onMra(mra: CmMra): void {
    let id: CmId | undefined;
    if (mra.messageMraed === MsgResponse.REQ) id = this.acquire(mra.remoteCommId, 0);
    else if (mra.messageMraed === MsgResponse.REP || mra.messageMraed === MsgResponse.OTHER) {
      id = this.acquire(mra.remoteCommId, mra.localCommId);
    }
    if (!id) return this.drop("mra_unmatched");
    const timeout = cmConvertToMs(mra.serviceTimeout) + cmConvertToMs(id.av?.timeout ?? 0);
    if (id.state === CmState.REQ_SENT && mra.messageMraed === MsgResponse.REQ && this.modify(id.msg, timeout)) {
      this.setState(id, CmState.MRA_REQ_RCVD, "MRA");
    } else if (id.state === CmState.REP_SENT && mra.messageMraed === MsgResponse.REP && this.modify(id.msg, timeout)) {
      this.setState(id, CmState.MRA_REP_RCVD, "MRA");
    } else {
      if (id.state === CmState.MRA_REQ_RCVD || id.state === CmState.MRA_REP_RCVD) this.counters.rxDuplicates.MRA++;
      return this.drop("mra_in_" + id.stateName);
    }
    id.msg!.stateTag = id.state;
    this.deliver(id, IbCmEventType.MRA_RECEIVED, { privateData: mra.privateData, mraRcvd: { serviceTimeout: mra.serviceTimeout } });
  }

  /** cm_sidr_req_handler */
  private onSidrReq(hdr: MadHeader, req: CmSidrReq, from: MadAddress): void {
    const id = this.allocId(() => 0);
    id.remoteId = req.requestId;
    id.serviceId = req.serviceId;
    id.serviceMask = 0xffffffffffffffffn;
    id.tid = hdr.transactionId;
    id.av = avForResponse(from);
    // Linux keys remote SIDR requests by request ID and the LRH source LID, which is
    // the same (0) for every RoCE peer; the source GID keeps two peers that chose the
    // same request ID apart.
    const key = `${req.requestId}/${hexGid(from.gid)}/${from.port ?? ""}`;
    if (this.remoteSidr.has(key)) {
      this.counters.rxDuplicates.SIDR_REQ++;
      return this.discard(id);
    }
    this.setState(id, CmState.SIDR_REQ_RCVD, "SIDR_REQ");
    this.remoteSidr.set(key, id);
    id.sidrKey = key;
    const listen = this.findListen(req.serviceId);
    id.visible = true;
    if (!listen) {
      this.sendSidrRep(id, { status: SidrStatus.UNSUPPORTED });
      return this.discard(id);
    }
    id.handler = listen.handler;
    id.context = listen.context;
    this.deliver(id, IbCmEventType.SIDR_REQ_RECEIVED, {
      privateData: req.privateData,
      sidrReqRcvd: { listenId: listen, serviceId: req.serviceId, pkey: req.partitionKey, from },
    });
  }

  /** cm_sidr_rep_handler */
  private onSidrRep(rep: CmSidrRep): void {
    const id = this.acquire(rep.requestId, 0);
    if (!id) return this.drop("sidr_rep_unmatched");
    if (id.state !== CmState.SIDR_REQ_SENT) return this.drop("sidr_rep_in_" + id.stateName);
    this.setState(id, CmState.IDLE, "SIDR_REP");
    this.cancel(id.msg);
    this.deliver(id, IbCmEventType.SIDR_REP_RECEIVED, {
      privateData: rep.privateData,
      sidrRepRcvd: { status: rep.status, qkey: rep.qkey, qpn: rep.qpn, info: rep.additionalInformation, infoLen: rep.additionalInformationLength },
    });
  }

  // ---- listening ----

  /** ib_cm_listen (cm_init_listen + cm_insert_listen) */
  listen(id: CmId, serviceId: bigint, serviceMask: bigint): void {
    const verb = "ib_cm_listen";
    if (id.state !== CmState.IDLE) cmFail(verb, "EINVAL", `state ${id.stateName}`);
    const mask = serviceMask ? serviceMask : 0xffffffffffffffffn;
    let sid = serviceId & mask;
    const IB_SERVICE_ID_AGN_MASK = 0xff00000000000000n;
    const IB_CM_ASSIGN_SERVICE_ID = 0x0200000000000000n;
    if ((sid & IB_SERVICE_ID_AGN_MASK) === IB_CM_ASSIGN_SERVICE_ID && sid !== IB_CM_ASSIGN_SERVICE_ID) cmFail(verb, "EINVAL", "reserved service ID");
    let m = mask;
    if (sid === IB_CM_ASSIGN_SERVICE_ID) {
      sid = this.nextServiceId++;
      m = 0xffffffffffffffffn;
    }
    for (const l of this.listens) {
      if ((l.serviceMask & sid) === (m & l.serviceId)) cmFail(verb, "EBUSY", `service ID 0x${sid.toString(16)} has a listener`);
    }
    id.serviceId = sid;
    id.serviceMask = m;
    this.listens.push(id);
    this.setState(id, CmState.LISTEN, "listen");
  }

  /** cm_find_listen */
  private findListen(serviceId: bigint): CmId | undefined {
    return this.listens.find((l) => (l.serviceMask & serviceId) === l.serviceId);
  }

  // ---- sending, by the consumer ----

  /** ib_send_cm_req */
  sendReq(id: CmId, p: CmReqParam): void {
    const verb = "ib_send_cm_req";
    if (!p.primaryPath) cmFail(verb, "EINVAL", "no primary path");
    if (p.qpType !== QpType.RC && p.qpType !== QpType.UC) cmFail(verb, "EINVAL", `QP type ${p.qpType}`);
    checkPrivateData(verb, "REQ", p.privateData);
    if (id.state !== CmState.IDLE || id.timewait) cmFail(verb, "EINVAL", `state ${id.stateName}`);
    const path = p.primaryPath;
    id.timewait = this.newTimewait(id);
    id.av = avFromPath(path, { gid: path.dgid, port: path.dport, qpn: GSI_QPN, pkeyIndex: 0, qkey: GSI_QKEY });
    id.serviceId = p.serviceId;
    id.serviceMask = 0xffffffffffffffffn;
    id.timeoutMs = cmConvertToMs(path.packetLifeTime) * 2 + cmConvertToMs(p.remoteCmResponseTimeout);
    id.maxCmRetries = p.maxCmRetries;
    id.initiatorDepth = p.initiatorDepth;
    id.responderResources = p.responderResources;
    id.retryCount = p.retryCount;
    id.pathMtu = path.mtu;
    id.pkey = path.pkey;
    id.qpType = p.qpType;
    const req = this.formatReq(id, p);
    id.tid = this.formTid(id);
    id.localQpn = p.qpNum;
    id.rqPsn = p.startingPsn;
    id.msg = this.post(id, "REQ", id.tid, req, id.timeoutMs, CmState.REQ_SENT);
    this.setState(id, CmState.REQ_SENT, "send REQ");
  }

  /** cm_format_req */
  private formatReq(id: CmId, p: CmReqParam): Partial<CmReq> {
    const path = p.primaryPath;
    const local = path.hopLimit <= 1;
    return checkedFields("ib_send_cm_req", "REQ", {
      localCommId: id.localId,
      serviceId: p.serviceId,
      localCaGuid: this.nodeGuid,
      localQpn: p.qpNum,
      initiatorDepth: p.initiatorDepth,
      remoteCmResponseTimeout: p.remoteCmResponseTimeout,
      transportServiceType: p.qpType === QpType.UC ? TransportServiceType.UC : TransportServiceType.RC,
      endToEndFlowControl: p.flowControl,
      startingPsn: p.startingPsn,
      localCmResponseTimeout: p.localCmResponseTimeout,
      partitionKey: path.pkey,
      pathPacketPayloadMtu: path.mtu,
      maxCmRetries: p.maxCmRetries,
      responderResources: p.responderResources,
      retryCount: p.retryCount,
      rnrRetryCount: p.rnrRetryCount,
      srq: p.srq,
      primaryLocalPortGid: path.sgid,
      primaryRemotePortGid: path.dgid,
      // A routed path (hop limit > 1, every RoCEv2 path rdma_cm resolves) has no LIDs to give:
      // Linux puts the permissive LID in both and clears "subnet local".
      primaryLocalPortLid: local ? 0 : 0xffff,
      primaryRemotePortLid: local ? 0 : 0xffff,
      primaryFlowLabel: path.flowLabel,
      primaryPacketRate: path.rate,
      primaryTrafficClass: path.trafficClass,
      primaryHopLimit: path.hopLimit,
      primarySl: path.sl,
      primarySubnetLocal: local ? 1 : 0,
      primaryLocalAckTimeout: cmAckTimeout(this.ackDelay, path.packetLifeTime),
      privateData: p.privateData,
    });
  }

  /** ib_send_cm_rep */
  sendRep(id: CmId, p: CmRepParam): void {
    const verb = "ib_send_cm_rep";
    checkPrivateData(verb, "REP", p.privateData);
    if (id.state !== CmState.REQ_RCVD && id.state !== CmState.MRA_REQ_SENT) cmFail(verb, "EINVAL", `state ${id.stateName}`);
    const rep = checkedFields(verb, "REP", {
      localCommId: id.localId,
      remoteCommId: id.remoteId,
      startingPsn: p.startingPsn,
      responderResources: p.responderResources,
      targetAckDelay: this.ackDelay,
      failoverAccepted: p.failoverAccepted ?? 0,
      rnrRetryCount: p.rnrRetryCount,
      localCaGuid: this.nodeGuid,
      initiatorDepth: p.initiatorDepth,
      endToEndFlowControl: p.flowControl ?? 0,
      srq: p.srq ?? 0,
      localQpn: p.qpNum & 0xffffff,
      privateData: p.privateData,
    });
    id.msg = this.post(id, "REP", id.tid, rep, id.timeoutMs, CmState.REP_SENT);
    this.setState(id, CmState.REP_SENT, "send REP");
    id.initiatorDepth = p.initiatorDepth;
    id.responderResources = p.responderResources;
    id.rqPsn = p.startingPsn;
    id.localQpn = p.qpNum & 0xffffff;
  }

  /** ib_send_cm_rtu */
  sendRtu(id: CmId, privateData?: Uint8Array): void {
    const verb = "ib_send_cm_rtu";
    checkPrivateData(verb, "RTU", privateData);
    if (id.state !== CmState.REP_RCVD && id.state !== CmState.MRA_REP_SENT) cmFail(verb, "EINVAL", `state ${id.stateName}`);
    this.post(id, "RTU", id.tid, { localCommId: id.localId, remoteCommId: id.remoteId, privateData });
    this.setState(id, CmState.ESTABLISHED, "send RTU");
    id.privateData = privateData?.slice();
  }

  /** ib_send_cm_dreq */
  sendDreq(id: CmId, privateData?: Uint8Array): void {
    const verb = "ib_send_cm_dreq";
    checkPrivateData(verb, "DREQ", privateData);
    if (id.state !== CmState.ESTABLISHED) cmFail(verb, "EINVAL", `state ${id.stateName}`);
    const dreq: Partial<CmDreq> = { localCommId: id.localId, remoteCommId: id.remoteId, remoteQpnEecn: id.remoteQpn, privateData };
    id.msg = this.post(id, "DREQ", this.formTid(id), dreq, id.timeoutMs, CmState.DREQ_SENT);
    this.setState(id, CmState.DREQ_SENT, "send DREQ");
  }

  /** ib_send_cm_drep: TIMEWAIT even if the DREP is lost (the peer's DREQ retries find us there). */
  sendDrep(id: CmId, privateData?: Uint8Array): void {
    const verb = "ib_send_cm_drep";
    checkPrivateData(verb, "DREP", privateData);
    if (id.state !== CmState.DREQ_RCVD) cmFail(verb, "EINVAL", `state ${id.stateName}`);
    id.privateData = privateData?.slice();
    this.enterTimewait(id, "send DREP");
    this.post(id, "DREP", id.tid, { localCommId: id.localId, remoteCommId: id.remoteId, privateData });
  }

  /** cm_format_rej: who is rejected depends on the state we reject in. */
  private formatRej(id: CmId, reason: number, ari?: Uint8Array, privateData?: Uint8Array): Partial<CmRej> {
    const rej: Partial<CmRej> = { remoteCommId: id.remoteId, reason };
    switch (id.state) {
      case CmState.REQ_RCVD:
        rej.localCommId = 0;
        rej.messageRejected = MsgResponse.REQ;
        break;
      case CmState.MRA_REQ_SENT:
        rej.localCommId = id.localId;
        rej.messageRejected = MsgResponse.REQ;
        break;
      case CmState.REP_RCVD:
      case CmState.MRA_REP_SENT:
        rej.localCommId = id.localId;
        rej.messageRejected = MsgResponse.REP;
        break;
      default:
        rej.localCommId = id.localId;
        rej.messageRejected = MsgResponse.OTHER;
    }
    if (ari && ari.length) {
      rej.rejectedInfoLength = ari.length;
      rej.ari = ari;
    }
    if (privateData && privateData.length) rej.privateData = privateData;
    return rej;
  }

  /** ib_send_cm_rej */
  sendRej(id: CmId, reason: number, ari?: Uint8Array, privateData?: Uint8Array): void {
    const verb = "ib_send_cm_rej";
    checkPrivateData(verb, "REJ", privateData);
    if (ari && ari.length > CM_MESSAGES.REJ.layout.ari.length) cmFail(verb, "EINVAL", `ARI of ${ari.length} bytes`);
    if (!Number.isInteger(reason) || reason < 0 || reason > 0xffff) cmFail(verb, "EINVAL", `reason ${reason}`);
    switch (id.state) {
      case CmState.REQ_SENT:
      case CmState.MRA_REQ_RCVD:
      case CmState.REQ_RCVD:
      case CmState.MRA_REQ_SENT:
      case CmState.REP_RCVD:
      case CmState.MRA_REP_SENT: {
        const rej = this.formatRej(id, reason, ari, privateData);
        this.post(id, "REJ", id.tid, rej);
        this.resetToIdle(id, "send REJ");
        return;
      }
      case CmState.REP_SENT:
      case CmState.MRA_REP_RCVD: {
        const rej = this.formatRej(id, reason, ari, privateData);
        this.post(id, "REJ", id.tid, rej);
        this.enterTimewait(id, "send REJ");
        return;
      }
      default:
        cmFail(verb, "EINVAL", `state ${id.stateName}`);
    }
  }

  private formatMra(id: CmId, msgMraed: number, serviceTimeout: number, privateData?: Uint8Array): Partial<CmMra> {
    // IBA_SET keeps the field's 5 bits: the delay flag in serviceTimeout never reaches the wire.
    return { messageMraed: msgMraed, localCommId: id.localId, remoteCommId: id.remoteId, serviceTimeout: serviceTimeout & 0x1f, privateData };
  }

  /** ib_send_cm_mra */
  sendMra(id: CmId, serviceTimeout: number, privateData?: Uint8Array): void {
    const verb = "ib_send_cm_mra";
    checkPrivateData(verb, "MRA", privateData);
    let next: CmState;
    let response: number;
    if (id.state === CmState.REQ_RCVD) {
      next = CmState.MRA_REQ_SENT;
      response = MsgResponse.REQ;
    } else if (id.state === CmState.REP_RCVD) {
      next = CmState.MRA_REP_SENT;
      response = MsgResponse.REP;
    } else {
      cmFail(verb, "EINVAL", `state ${id.stateName}`);
    }
    if (!(serviceTimeout & MRA_FLAG_DELAY)) this.post(id, "MRA", id.tid, this.formatMra(id, response, serviceTimeout, privateData));
    this.setState(id, next, serviceTimeout & MRA_FLAG_DELAY ? "MRA held back" : "send MRA");
    id.serviceTimeout = serviceTimeout;
    id.privateData = privateData?.slice();
  }

  /** ib_send_cm_sidr_req */
  sendSidrReq(id: CmId, p: CmSidrReqParam): void {
    const verb = "ib_send_cm_sidr_req";
    if (!p.path) cmFail(verb, "EINVAL", "no path");
    checkPrivateData(verb, "SIDR_REQ", p.privateData);
    if (id.state !== CmState.IDLE) cmFail(verb, "EINVAL", `state ${id.stateName}`);
    id.av = avFromPath(p.path, { gid: p.path.dgid, port: p.path.dport, qpn: GSI_QPN, pkeyIndex: 0, qkey: GSI_QKEY });
    id.serviceId = p.serviceId;
    id.serviceMask = 0xffffffffffffffffn;
    id.timeoutMs = p.timeoutMs;
    id.maxCmRetries = p.maxCmRetries;
    const req = checkedFields(verb, "SIDR_REQ", {
      requestId: id.localId, partitionKey: p.path.pkey, serviceId: p.serviceId, privateData: p.privateData,
    });
    id.tid = this.formTid(id);
    id.msg = this.post(id, "SIDR_REQ", id.tid, req, id.timeoutMs, CmState.SIDR_REQ_SENT);
    this.setState(id, CmState.SIDR_REQ_SENT, "send SIDR_REQ");
  }

  /** ib_send_cm_sidr_rep */
  sendSidrRep(id: CmId, p: CmSidrRepParam): void {
    const verb = "ib_send_cm_sidr_rep";
    checkPrivateData(verb, "SIDR_REP", p.privateData);
    if (p.info && p.info.length > CM_MESSAGES.SIDR_REP.layout.additionalInformation.length) cmFail(verb, "EINVAL", "info too long");
    if (id.state !== CmState.SIDR_REQ_RCVD) cmFail(verb, "EINVAL", `state ${id.stateName}`);
    const rep = checkedFields(verb, "SIDR_REP", {
      requestId: id.remoteId,
      status: p.status,
      qpn: p.qpNum ?? 0,
      serviceId: id.serviceId,
      qkey: p.qkey ?? 0,
      additionalInformation: p.info?.length ? p.info : undefined,
      privateData: p.privateData?.length ? p.privateData : undefined,
    } satisfies Partial<CmSidrRep>);
    this.post(id, "SIDR_REP", id.tid, rep);
    this.setState(id, CmState.IDLE, "send SIDR_REP");
    if (id.sidrKey) this.remoteSidr.delete(id.sidrKey);
    id.sidrKey = undefined;
  }

  /** cm_establish: data came in before the RTU; the REP retries stop and USER_ESTABLISHED follows. */
  establish(id: CmId): void {
    const verb = "ib_cm_notify";
    if (id.state === CmState.ESTABLISHED) cmFail(verb, "EISCONN");
    if (id.state !== CmState.REP_SENT && id.state !== CmState.MRA_REP_RCVD) cmFail(verb, "EINVAL", `state ${id.stateName}`);
    this.setState(id, CmState.ESTABLISHED, "COMM_EST");
    const { localId, remoteId } = id;
    // Linux queues the event to its work queue; the clock's "now" keeps the order.
    this.clock.setTimer(this.clock.now(), () => {
      const cur = this.acquire(localId, remoteId);
      if (!cur || cur.state !== CmState.ESTABLISHED) return;
      this.cancel(cur.msg);
      this.deliver(cur, IbCmEventType.USER_ESTABLISHED);
    });
  }

  /** ib_cm_init_qp_attr (cm_init_qp_init_attr, _rtr_attr, _rts_attr). */
  initQpAttr(id: CmId, qpState: number): QpAttr {
    const verb = "ib_cm_init_qp_attr";
    const s = id.state;
    const av = id.av;
    const connected =
      s === CmState.REQ_RCVD || s === CmState.MRA_REQ_SENT || s === CmState.REP_RCVD || s === CmState.MRA_REP_SENT ||
      s === CmState.REP_SENT || s === CmState.MRA_REP_RCVD || s === CmState.ESTABLISHED;
    if (qpState === QpState.INIT) {
      if (!(connected || s === CmState.REQ_SENT || s === CmState.MRA_REQ_RCVD) || !av) cmFail(verb, "EINVAL", `state ${id.stateName}`);
      // Remote write always; read and atomics only when we grant responder resources.
      const access = Access.REMOTE_WRITE | (id.responderResources ? Access.REMOTE_READ | Access.REMOTE_ATOMIC : 0);
      return { qpState: QpState.INIT, qpAccessFlags: access, pkeyIndex: av.pkeyIndex, portNum: 1 };
    }
    if (qpState === QpState.RTR) {
      if (!connected || !av) cmFail(verb, "EINVAL", `state ${id.stateName}`);
      const attr: QpAttr = {
        qpState: QpState.RTR, ahAttr: ahAttrOf(av, av.to.port), pathMtu: id.pathMtu, destQpNum: id.remoteQpn, rqPsn: id.rqPsn,
      };
      if (id.qpType === QpType.RC || id.qpType === QpType.XRC_RECV) {
        attr.maxDestRdAtomic = id.responderResources;
        attr.minRnrTimer = 0;
      }
      return attr;
    }
    if (qpState === QpState.RTS) {
      if (!connected || !av) cmFail(verb, "EINVAL", `state ${id.stateName}`);
      const attr: QpAttr = { qpState: QpState.RTS, sqPsn: id.sqPsn };
      if (id.qpType === QpType.RC) {
        attr.retryCnt = id.retryCount;
        attr.rnrRetry = id.rnrRetryCount;
        attr.maxRdAtomic = id.initiatorDepth;
        attr.timeout = av.timeout;
      }
      return attr;
    }
    cmFail(verb, "EINVAL", `QP state ${qpState}`);
  }

  /** cm_destroy_id: what Linux says to the peer on the way out, by state. */
  destroyId(id: CmId, err: number): void {
    if (id.destroyed) return;
    for (let pass = 0; pass < 2; pass++) {
      switch (id.state) {
        case CmState.LISTEN: {
          const i = this.listens.indexOf(id);
          if (i >= 0) this.listens.splice(i, 1);
          break;
        }
        case CmState.SIDR_REQ_SENT:
          this.setState(id, CmState.IDLE, "destroy");
          this.cancel(id.msg);
          break;
        case CmState.SIDR_REQ_RCVD:
          this.sendSidrRep(id, { status: SidrStatus.REJECT });
          break;
        case CmState.REQ_SENT:
        case CmState.MRA_REQ_RCVD:
          this.cancel(id.msg);
          this.sendRej(id, RejReason.TIMEOUT, u64Bytes(this.nodeGuid));
          break;
        case CmState.REQ_RCVD:
          // -ENOMEM: the consumer could not take it now; stay silent so the peer's retry gets through later.
          if (err === -12) this.resetToIdle(id, "destroy (no memory)");
          else this.sendRej(id, RejReason.CONSUMER_DEFINED);
          break;
        case CmState.REP_SENT:
        case CmState.MRA_REP_RCVD:
          this.cancel(id.msg);
          this.sendRej(id, RejReason.CONSUMER_DEFINED);
          break;
        case CmState.MRA_REQ_SENT:
        case CmState.REP_RCVD:
        case CmState.MRA_REP_SENT:
          this.sendRej(id, RejReason.CONSUMER_DEFINED);
          break;
        case CmState.ESTABLISHED:
          this.sendDreq(id);
          continue; // "goto retest": now DREQ_SENT
        case CmState.DREQ_SENT:
          this.cancel(id.msg);
          this.enterTimewait(id, "destroy");
          break;
        case CmState.DREQ_RCVD:
          this.sendDrep(id);
          break;
        default:
          break;
      }
      break;
    }
    this.cleanupTimewait(id.timewait);
    id.timewait = undefined;
    if (id.sidrKey) this.remoteSidr.delete(id.sidrKey);
    id.sidrKey = undefined;
    this.cancel(id.msg);
    id.destroyed = true;
    this.ids.delete(id.localId);
  }
}

// ---- helpers ----

/** A uniformly random u32 (the CM's and rdma_cm's default source). */
export function cryptoU32(): number {
  const b = new Uint32Array(1);
  globalThis.crypto.getRandomValues(b);
  return b[0]!;
}

function bswap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}

function readU32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

function readU64(b: Uint8Array, o: number): bigint {
  return (BigInt(readU32(b, o)) << 32n) | BigInt(readU32(b, o + 4));
}

function u64Bytes(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  for (let i = 7; i >= 0; i--, v >>= 8n) b[i] = Number(v & 0xffn);
  return b;
}

function hexGid(g: Uint8Array): string {
  let s = "";
  for (const x of g) s += x.toString(16).padStart(2, "0");
  return s;
}

/** cm_req_get_qp_type */
function reqQpType(req: CmReq): number {
  switch (req.transportServiceType) {
    case TransportServiceType.RC: return QpType.RC;
    case TransportServiceType.UC: return QpType.UC;
    case TransportServiceType.XRC: return req.extendedTransportType === 1 ? QpType.XRC_RECV : 0;
    default: return 0;
  }
}

function checkPrivateData(verb: string, name: CmMsgName, pd: Uint8Array | undefined): void {
  if (pd && pd.length > privateDataSize(name)) cmFail(verb, "EINVAL", `${pd.length} bytes of private data, ${name} holds ${privateDataSize(name)}`);
}

/** Values a consumer passes must fit their fields; Linux would truncate silently, we refuse (EINVAL). */
function checkedFields<K extends CmMsgName>(verb: string, name: K, rec: Partial<CmMsg<K>>): Partial<CmMsg<K>> {
  try {
    emitCmMad(name, {}, rec);
  } catch (e) {
    if (e instanceof RangeError) cmFail(verb, "EINVAL", e.message);
    throw e;
  }
  return rec;
}


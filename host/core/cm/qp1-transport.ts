// The MadTransport of a real device: its QP1 (the GSI). Opens the GSI QP on
// the device (a UD QP numbered 1 with Q_Key 0x80010000, P_Key index 0), keeps
// receive buffers of 40 B GRH + 256 B MAD posted as Linux's MAD layer does,
// sends each MAD as a UD SEND to the peer's QP1, and hands received MADs up
// with the address they came from. While no receiver is set, QP1 still answers
// as Linux's MAD layer and ib_cm always do: a CM MAD goes to a CM with no
// listeners (a REQ gets REJ "invalid service ID", a DREQ a DREP), a Get or Set
// gets GetResp with status 0x000c. One QP1 per device: `of(device)` returns
// the device's (the Node host opens it with the device). Completions are taken
// synchronously inside the device's progress (a completion channel whose
// notification polls), so the simulated wire's synchronous runs carry MADs.
import { AddressHandle, GRH_SIZE, parseRecvGrh } from "../verbs/ah.js";
import { CompletionChannel } from "../verbs/channel.js";
import type { CompletionQueue, WorkCompletion } from "../verbs/cq.js";
import type { Device } from "../verbs/device.js";
import { Access, QpState, QpType, SendFlags, WcFlags, WcOpcode, WcStatus, WrOpcode } from "../verbs/enums.js";
import { formatGid, isV4MappedGid, parseGid } from "../net/gid.js";
import type { MemoryRegion } from "../verbs/mr.js";
import type { ProtectionDomain } from "../verbs/pd.js";
import type { QueuePair } from "../verbs/qp.js";
import { GSI_QKEY, GSI_QPN, MAD_SIZE, MadError, MgmtClass, unmatchedResponse } from "./mad.js";
import { CommunicationManager } from "./cm.js";
import type { MadAddress, MadTransport } from "./mad-transport.js";
import type { Clock } from "../link/port.js";

/** A receive slot: the GRH area every UD receive starts with, then the MAD. */
const RECV_SLOT = GRH_SIZE + MAD_SIZE;
/** Linux's mad_recvq_size / mad_sendq_size default is 512; a softroce port needs fewer. */
const DEFAULT_DEPTH = 64;
const ROCE_UDP_PORT = 4791;
/** The largest number of AHs kept for peers (least recently made goes first). */
const AH_CACHE = 64;

export interface Qp1TransportOptions {
  /** receive buffers kept posted (default 64) */
  recvDepth?: number;
  /** MADs in flight on the send queue (default 64); a send beyond it is dropped and counted */
  sendDepth?: number;
  /** the UDP port of the device that has `gid` (softroce runs several devices on one host; default 4791) */
  peerUdpPort?: (gid: Uint8Array) => number;
  /**
   * the clock of the listener-less CM that answers unclaimed CM MADs (default: the device's port's; a
   * device in a worker has no port on this thread, so its opener passes one)
   */
  clock?: Clock;
}

export interface Qp1Counters {
  /** MADs handed to the receiver */
  received: number;
  /** MADs sent (posted) */
  sent: number;
  /** Get/Set MADs answered GetResp 0x000c because no receiver is set */
  unmatchedAnswered: number;
  /** CM MADs taken by the listener-less CM because no receiver is set (a REQ is answered REJ 8) */
  cmUnclaimed: number;
  /** receives that were not a whole MAD, or completed in error */
  badReceive: number;
  /** sends refused: send queue full, or the MAD not 256 bytes */
  sendDropped: number;
  /** send completions in error */
  sendErrors: number;
}

function depth(v: number | undefined, what: string): number {
  const d = v ?? DEFAULT_DEPTH;
  if (!Number.isInteger(d) || d < 1 || d > 4096) throw new RangeError(`${what} must be an integer in 1..4096 (got ${v})`);
  return d;
}

/** A channel that, instead of queueing CQ events, runs `fn` at once (inside the device's pump). */
class PollingChannel extends CompletionChannel {
  constructor(device: Device, private readonly fn: () => void) {
    super(device);
  }
  override notify(): void {
    this.fn();
  }
}

export class Qp1Transport implements MadTransport {
  readonly counters: Qp1Counters = { received: 0, sent: 0, unmatchedAnswered: 0, cmUnclaimed: 0, badReceive: 0, sendDropped: 0, sendErrors: 0 };
  readonly qp: QueuePair;
  private readonly pd: ProtectionDomain;
  private readonly cq: CompletionQueue;
  private readonly channel: PollingChannel;
  private readonly mr: MemoryRegion;
  private readonly recvDepth: number;
  private readonly sendDepth: number;
  private readonly sendBase: number;
  private freeSend: number[] = [];
  private readonly ahs = new Map<string, AddressHandle>();
  private handler: ((mad: Uint8Array, from: MadAddress) => void) | undefined;
  private polling = false;
  private closed = false;
  /** ib_cm with no listeners: what answers CM MADs while no receiver is set */
  private idleCm: ((mad: Uint8Array, from: MadAddress) => void) | undefined;

  /** Opens QP1 on `device` (EINVAL when the device already has one). */
  static open(device: Device, opts: Qp1TransportOptions = {}): Qp1Transport {
    const t = new Qp1Transport(device, opts);
    byDevice.set(device, t);
    device.addEventListener("close", () => {
      if (byDevice.get(device) === t) byDevice.delete(device);
    });
    return t;
  }

  /** The device's QP1: the one already open, else a new one with these options. */
  static of(device: Device, opts: Qp1TransportOptions = {}): Qp1Transport {
    const t = byDevice.get(device);
    if (!t || t.closed) return Qp1Transport.open(device, opts);
    const given = Object.keys(opts).filter((k) => opts[k as keyof Qp1TransportOptions] !== undefined);
    // options a QP1 that is open already cannot take (openDevice opens it unless `gsi: false`): said, not dropped
    if (given.length > 0) throw new TypeError(`Qp1Transport.of: the device's QP1 is open already, ${given.join(" and ")} cannot apply to it (open the device with gsi: false and call Qp1Transport.open; for the peers' UDP ports, openRdmaCm's peerUdpPort reaches the open QP1)`);
    return t;
  }

  /** MadTransport.usePeerUdpPort: the rdma_cm's mapping, unless this transport was opened with one. */
  usePeerUdpPort(port: (gid: Uint8Array) => number): void {
    if (!this.opts.peerUdpPort) this.peerUdpPort = port;
  }

  /** the peers' UDP ports: the options', else an rdma_cm's (usePeerUdpPort), else 4791 for all */
  private peerUdpPort: ((gid: Uint8Array) => number) | undefined;

  private constructor(readonly device: Device, private readonly opts: Qp1TransportOptions) {
    this.peerUdpPort = opts.peerUdpPort;
    this.recvDepth = depth(opts.recvDepth, "recvDepth");
    this.sendDepth = depth(opts.sendDepth, "sendDepth");
    this.pd = device.allocPd();
    this.channel = new PollingChannel(device, () => this.poll());
    this.cq = device.createCq(this.recvDepth + this.sendDepth, { channel: this.channel });
    this.sendBase = this.recvDepth * RECV_SLOT;
    this.mr = this.pd.regMr(this.sendBase + this.sendDepth * MAD_SIZE, Access.LOCAL_WRITE);
    this.qp = this.pd.createQp({
      qpType: QpType.GSI, sendCq: this.cq, recvCq: this.cq,
      cap: { maxSendWr: this.sendDepth, maxRecvWr: this.recvDepth, maxSendSge: 1, maxRecvSge: 1 },
    });
    // ib_mad_port_start: INIT with P_Key index 0 and the GSI Q_Key, RTR, RTS with SQ PSN 0
    this.qp.modify({ qpState: QpState.INIT, pkeyIndex: 0, portNum: 1, qkey: GSI_QKEY });
    this.qp.modify({ qpState: QpState.RTR });
    this.qp.modify({ qpState: QpState.RTS, sqPsn: 0 });
    for (let i = 0; i < this.sendDepth; i++) this.freeSend.push(i);
    for (let i = 0; i < this.recvDepth; i++) this.postRecv(i);
    this.cq.reqNotify();
  }

  /** The GSI's QP number (1). */
  get qpNum(): number {
    return this.qp.qpNum;
  }

  onReceive(handler: (mad: Uint8Array, from: MadAddress) => void): void {
    this.handler = handler;
  }

  send(mad: Uint8Array, to: MadAddress): void {
    if (this.closed) return;
    if (mad.length !== MAD_SIZE) {
      this.counters.sendDropped++;
      return;
    }
    this.poll(); // frees the slots of completed sends
    const slot = this.freeSend.pop();
    if (slot === undefined) {
      this.counters.sendDropped++;
      return;
    }
    const off = this.sendBase + slot * MAD_SIZE;
    this.mr.bytes.set(mad, off);
    const ah = this.ahFor(to);
    this.qp.postSend({
      wrId: BigInt(this.recvDepth + slot),
      opcode: WrOpcode.SEND,
      sendFlags: SendFlags.SIGNALED,
      sgList: [this.mr.sge(off, MAD_SIZE)],
      ud: { ah, remoteQpn: to.qpn, remoteQkey: to.qkey },
    });
    this.counters.sent++;
  }

  /** MADs posted whose send has not completed yet. */
  get sendsInFlight(): number {
    this.poll();
    return this.sendDepth - this.freeSend.length;
  }

  /** Resolves once every MAD posted so far has left (its send completed), or after `timeoutMs`. */
  async drain(timeoutMs = 1000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (this.sendsInFlight > 0 && !this.closed && Date.now() < end) await new Promise((r) => setTimeout(r, 2));
  }

  /** Destroys QP1 and what it used; MADs in flight are lost (drain() first to let them leave). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (byDevice.get(this.device) === this) byDevice.delete(this.device);
    this.qp.destroy();
    for (const ah of this.ahs.values()) ah.destroy();
    this.ahs.clear();
    this.mr.destroy();
    this.cq.destroy();
    this.pd.destroy();
  }

  private postRecv(i: number): void {
    this.qp.postRecv({ wrId: BigInt(i), sgList: [this.mr.sge(i * RECV_SLOT, RECV_SLOT)] });
  }

  /** The source GID index for a destination: the caller's, else the first GID of the destination's family. */
  private sgidFor(to: MadAddress): number {
    if (to.sgidIndex !== undefined) return to.sgidIndex;
    const v4 = isV4MappedGid(to.gid);
    for (let i = 0; i < this.device.gidTableSize; i++) {
      if (isV4MappedGid(parseGid(this.device.queryGid(i))) === v4) return i;
    }
    return 0;
  }

  private ahFor(to: MadAddress): AddressHandle {
    const sgidIndex = this.sgidFor(to);
    const destPort = to.port ?? this.peerUdpPort?.(to.gid) ?? ROCE_UDP_PORT;
    const tc = to.trafficClass ?? 0;
    const fl = to.flowLabel ?? 0;
    const key = `${formatGid(to.gid)}|${destPort}|${sgidIndex}|${tc}|${fl}`;
    const old = this.ahs.get(key);
    if (old) return old;
    if (this.ahs.size >= AH_CACHE) {
      const [k, ah] = this.ahs.entries().next().value as [string, AddressHandle];
      this.ahs.delete(k);
      ah.destroy();
    }
    const ah = this.pd.createAh({
      grh: { dgid: to.gid, sgidIndex, hopLimit: 64, trafficClass: tc, flowLabel: fl },
      isGlobal: true, portNum: 1, destPort: destPort === ROCE_UDP_PORT ? undefined : destPort,
    });
    this.ahs.set(key, ah);
    return ah;
  }

  /** Takes every completion: sends free their slot, receives go up and are posted again. */
  private poll(): void {
    if (this.polling || this.closed) return;
    this.polling = true;
    try {
      for (;;) {
        const wcs = this.cq.poll(16);
        if (!wcs.length) break;
        for (const wc of wcs) this.complete(wc);
      }
      if (!this.closed) this.cq.reqNotify();
    } finally {
      this.polling = false;
    }
  }

  private complete(wc: WorkCompletion): void {
    const id = Number(wc.wrId);
    if (id >= this.recvDepth) {
      if (wc.status !== WcStatus.SUCCESS) this.counters.sendErrors++;
      this.freeSend.push(id - this.recvDepth);
      return;
    }
    if (wc.status === WcStatus.WR_FLUSH_ERR) return; // the QP is going away
    try {
      const base = id * RECV_SLOT;
      const grh = parseRecvGrh(this.mr.bytes.subarray(base, base + GRH_SIZE));
      if (wc.status !== WcStatus.SUCCESS || wc.opcode !== WcOpcode.RECV || wc.byteLen !== RECV_SLOT || !(wc.wcFlags & WcFlags.GRH) || !wc.sgid || !grh) {
        this.counters.badReceive++;
        return;
      }
      const mad = this.mr.bytes.slice(base + GRH_SIZE, base + RECV_SLOT);
      const from: MadAddress = {
        gid: wc.sgid, qpn: wc.srcQp, pkeyIndex: wc.pkeyIndex, qkey: GSI_QKEY,
        port: this.peerUdpPort?.(wc.sgid) ?? ROCE_UDP_PORT, hopLimit: grh.hopLimit, trafficClass: grh.trafficClass, flowLabel: grh.flowLabel,
      };
      this.deliver(mad, from);
    } finally {
      if (!this.closed) this.postRecv(id);
    }
  }

  /** A CM MAD nobody receives goes to a CM with no listeners (made on first use), as Linux's ib_cm is always loaded. */
  private unclaimedCm(mad: Uint8Array, from: MadAddress): boolean {
    if (!this.idleCm) {
      const clock = this.opts.clock ?? this.device.port?.clock;
      if (!clock) return false;
      const shim = {
        send: (m: Uint8Array, to: MadAddress) => this.send(m, to),
        onReceive: (h: (m: Uint8Array, f: MadAddress) => void) => void (this.idleCm = h),
      };
      const device = this.device;
      new CommunicationManager({
        transport: shim, clock, nodeGuid: device.nodeGuid, ackDelay: device.query().localCaAckDelay,
        gids: () => Array.from({ length: device.gidTableSize }, (_, i) => parseGid(device.queryGid(i))),
      });
    }
    this.counters.cmUnclaimed++;
    this.idleCm!(mad, from);
    return true;
  }

  private deliver(mad: Uint8Array, from: MadAddress): void {
    if (this.handler) {
      this.counters.received++;
      this.handler(mad, from);
      return;
    }
    if (mad[1] === MgmtClass.CM && this.unclaimedCm(mad, from)) return;
    let resp: Uint8Array | undefined;
    try {
      resp = unmatchedResponse(mad);
    } catch (e) {
      if (!(e instanceof MadError)) throw e;
      this.counters.badReceive++;
      return;
    }
    if (resp) {
      this.counters.unmatchedAnswered++;
      this.send(resp, { ...from, qpn: from.qpn || GSI_QPN });
    }
  }
}

/** Each device's open QP1. */
const byDevice = new WeakMap<Device, Qp1Transport>();

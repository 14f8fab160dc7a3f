// The RDMA CM as librdmacm presents it (rdma-core librdmacm/cma.c over the
// kernel's drivers/infiniband/core/cma.c and ucma.c), on the ib_cm of cm.ts and
// the verbs API: IP addresses and ports, address and route resolution on this
// host, listen with a backlog, connect/accept/reject/disconnect moving the QP
// through INIT, RTR and RTS with what the CM negotiated, and the UD flavour
// over SIDR. Events queue on an event channel with librdmacm's numbering.
// Where this differs from Linux, the comment at the spot says why.
import { parseIp } from "../net/addr.js";
import { gidToAddress, isMulticastGid, isV4MappedGid, parseGid } from "../net/gid.js";
import type { Clock } from "../link/port.js";
import type { Device } from "../verbs/device.js";
import type { ProtectionDomain } from "../verbs/pd.js";
import type { QueuePair, QpInitAttr } from "../verbs/qp.js";
import type { CompletionQueue } from "../verbs/cq.js";
import { QpState, QpType } from "../verbs/enums.js";
import { MULTICAST_QPN } from "../abi/index.js";
import { CommunicationManager, cryptoU32, type CmId } from "./cm.js";
import { ahAttrOf, sameGid } from "./cm-av.js";
import type { IbCmEvent, PathRecord } from "./cm-params.js";
import { IbCmEventType, MRA_FLAG_DELAY, RejReason, SidrStatus } from "./cm-consts.js";
import { CMA_HDR_SIZE, CmaHdrError, emitCmaHdr, ipToGid, isZeroAddress, parseCmaHdr, PortSpace, RDMA_UDP_QKEY, serviceId, splitServiceId } from "./cma-hdr.js";
import { privateDataSize } from "./cm-msgs.js";
import { cmFail, Errno, RdmaCmError } from "./errno.js";
import type { MadTransport } from "./mad-transport.js";
import { EventChannel, RdmaCmEvent, RdmaCmEventType, type ConnEventParam, type RdmaCmEventInit } from "./rdma-cm-event.js";

/** rdma_conn_param's "use the device's maximum" (rdma_cma.h). */
export const RDMA_MAX_RESP_RES = 0xff;
export const RDMA_MAX_INIT_DEPTH = 0xff;

/** What cma.c asks of the CM on every connection. */
export const CMA_CM_RESPONSE_TIMEOUT = 20;
export const CMA_MAX_CM_RETRIES = 15;
export const CMA_CM_MRA_SETTING = MRA_FLAG_DELAY | 24;
/** The packet life time rdma_cm assumes on RoCE: 18 in Debian 12's 6.1 kernel (its REQs carry local ACK timeout 19 = cm_ack_timeout(15, 18), docs/reference/cm-wire.md). */
export const CMA_IBOE_PACKET_LIFETIME = 18;
/** The hop limit a routed IPv4/IPv6 path gets (ip4_dst_hoplimit's default). */
const ROCE_HOP_LIMIT = 64;
/** ucma's max_backlog (the sysctl's default). */
const UCMA_MAX_BACKLOG = 1024;
/** inet_get_local_port_range's default. */
const EPHEMERAL_LOW = 32768;
const EPHEMERAL_HIGH = 60999;
const ENOMEM = -Errno.ENOMEM;

/** enum rdma_cm_state (cma_priv.h); the names are trace vocabulary. */
export const RdmaCmState = {
  IDLE: 0,
  ADDR_QUERY: 1,
  ADDR_RESOLVED: 2,
  ROUTE_QUERY: 3,
  ROUTE_RESOLVED: 4,
  CONNECT: 5,
  DISCONNECT: 6,
  ADDR_BOUND: 7,
  LISTEN: 8,
  DEVICE_REMOVAL: 9,
  DESTROYING: 10,
} as const;
export type RdmaCmState = (typeof RdmaCmState)[keyof typeof RdmaCmState];
export const RDMA_CM_STATE_NAMES = Object.keys(RdmaCmState) as readonly (keyof typeof RdmaCmState)[];

/** rdma_create_qp's ibv_qp_init_attr: the QP type is the ID's; CQs are optional. */
export type CmQpInitAttr = Omit<QpInitAttr, "qpType" | "sendCq" | "recvCq"> & Partial<Pick<QpInitAttr, "sendCq" | "recvCq">>;

/** rdma_set_option's level RDMA_OPTION_ID and its options, as Linux 6.1's rdma_user_cm.h numbers them. */
export const RDMA_OPTION_ID = 0;
/** u8: the type of service, the path's traffic class (rdma_set_service_type) */
export const RDMA_OPTION_ID_TOS = 0;
/** int: share the bound port with IDs that set it too, until one listens (rdma_set_reuseaddr) */
export const RDMA_OPTION_ID_REUSEADDR = 1;
/** int: an IPv6 bind of this ID takes IPv6 only, or (0) IPv4 as well (rdma_set_afonly) */
export const RDMA_OPTION_ID_AFONLY = 2;
/** u8: the RC QP's local ACK timeout, and the RoCE path's packet life time one less (rdma_set_ack_timeout) */
export const RDMA_OPTION_ID_ACK_TIMEOUT = 3;

/** rdma_cma.h enum rdma_cm_mc_join_flags */
export const McJoinFlag = { FULLMEMBER: 0, SENDONLY_FULLMEMBER: 1 } as const;
export type McJoinFlag = (typeof McJoinFlag)[keyof typeof McJoinFlag];

/** A group an ID joined (struct cma_multicast). */
interface CmaMulticast {
  mgid: Uint8Array;
  joinFlags: McJoinFlag;
  /** the QP was attached on MULTICAST_JOIN */
  attached: boolean;
  /** the join's context, given back in its event (librdmacm's context pointer) */
  context: unknown;
}

/** RoCE multicast has no LIDs; the join's event and the QP attachment carry this one (mckey prints "mlid 0x0"). */
const ROCE_MLID = 0;

/** RDMA_OPTION_ID's options by number, as messages name them. */
const OPTION_ID_NAMES: Readonly<Record<number, string>> = {
  [RDMA_OPTION_ID_TOS]: "TOS", [RDMA_OPTION_ID_REUSEADDR]: "REUSEADDR", [RDMA_OPTION_ID_AFONLY]: "AFONLY", [RDMA_OPTION_ID_ACK_TIMEOUT]: "ACK_TIMEOUT",
};

/** A socket address: an IPv4 or IPv6 address and a port. */
export interface SockAddr {
  address: string;
  port: number;
}

/** struct rdma_conn_param; absent fields are 0, as in a zeroed C struct. */
export interface ConnParam {
  privateData?: Uint8Array;
  responderResources?: number;
  initiatorDepth?: number;
  flowControl?: number;
  retryCount?: number;
  rnrRetryCount?: number;
  srq?: number;
  /** only when the ID has no QP (rdma_create_qp was not used) */
  qpNum?: number;
}

export interface RdmaCmDeviceSpec {
  device: Device;
  /** how this device's CM reaches its peers (later: the device's QP1) */
  mad: MadTransport;
}

export interface RdmaCmOptions {
  devices: RdmaCmDeviceSpec[];
  /** default: the first device's link clock */
  clock?: Clock;
  /** u32 source for PSNs, ports and comm IDs (default: crypto) */
  random?: () => number;
  /**
   * the peer device's UDP port for an address (softroce runs devices on one host on other ports;
   * default 4791): where this rdma_cm's MADs and connections go, and, given to each device's QP1
   * (MadTransport.usePeerUdpPort), where the answers to a peer's MADs go
   */
  peerUdpPort?: (address: string) => number;
}

interface CmaDevice {
  device: Device;
  cm: CommunicationManager;
  pd: ProtectionDomain | undefined;
  /** ib_cm listeners by service ID, shared by the rdma IDs listening on them (ib_cm_insert_listen) */
  listens: Map<bigint, { cmId: CmId; users: Set<RdmaCmId> }>;
}

/** struct rdma_cm_id */
export class RdmaCmId {
  /** the device the ID is bound to, once it is (struct ibv_context *verbs) */
  verbs: Device | undefined;
  pd: ProtectionDomain | undefined;
  qp: QueuePair | undefined;
  sendCq: CompletionQueue | undefined;
  recvCq: CompletionQueue | undefined;
  portNum = 0;
  readonly route = {
    addr: { srcAddr: { address: "0.0.0.0", port: 0 } as SockAddr, dstAddr: { address: "0.0.0.0", port: 0 } as SockAddr },
    pathRec: undefined as PathRecord | undefined,
    numPaths: 0,
  };
  /** @internal rdma_cm's state */
  state: RdmaCmState = RdmaCmState.IDLE;
  /** @internal */
  dev: CmaDevice | undefined;
  /** @internal the ib_cm ID of a connection */
  cmId: CmId | undefined;
  /** @internal our receive PSN, random (id_priv->seq_num) */
  seqNum = 0;
  /** @internal ucma's count of CONNECT_REQUESTs a listener may still queue */
  backlog = 0;
  /** @internal */
  bound = false;
  /** @internal AF_INET binds are family-only (rdma_bind_addr), AF_INET6 ones not, unless RDMA_OPTION_ID_AFONLY said */
  afonly = false;
  /** @internal RDMA_OPTION_ID_AFONLY was set (id_priv->options' CMA_OPTION_AFONLY): a bind keeps `afonly` */
  afonlySet = false;
  /** @internal RDMA_OPTION_ID_REUSEADDR (id_priv->reuseaddr) */
  reuseaddr = false;
  /** @internal librdmacm's id_priv->initiator_depth / responder_resources */
  initiatorDepth = 0;
  responderResources = 0;
  /** @internal the CQs rdma_create_qp made (destroyed with the QP) */
  ownCqs: CompletionQueue[] = [];
  /** @internal a CONNECT_RESPONSE the QP could not take (librdmacm's connect_error) */
  connectError = false;
  /** @internal UD: the Q_Key */
  qkey = 0;
  /** @internal the listener whose CONNECT_REQUEST made this ID */
  listenParent: RdmaCmId | undefined;
  /** @internal rdma_set_option's type of service (id_priv->tos, tos_set): the route's traffic class */
  tos: number | undefined;
  /** @internal rdma_set_option's ACK timeout (id_priv->timeout, timeout_set): the RC QP's, and the route's packet life time */
  ackTimeout: number | undefined;
  /** @internal the multicast groups joined (rdma_join_multicast), by address */
  readonly mcs = new Map<string, CmaMulticast>();

  constructor(
    private readonly rcm: RdmaCm,
    readonly channel: EventChannel,
    readonly ps: number,
    readonly qpType: number,
    public context: unknown,
  ) {}

  get stateName(): string {
    return RDMA_CM_STATE_NAMES[this.state] ?? String(this.state);
  }

  /** rdma_bind_addr */
  bindAddr(addr: SockAddr): void {
    this.rcm.bindAddr(this, addr);
  }
  /** rdma_resolve_addr: ADDR_RESOLVED or ADDR_ERROR follows on the channel. */
  resolveAddr(src: SockAddr | undefined, dst: SockAddr, timeoutMs: number): void {
    this.rcm.resolveAddr(this, src, dst, timeoutMs);
  }
  /**
   * rdma_set_option(id, RDMA_OPTION_ID, option, value): RDMA_OPTION_ID_TOS (0–255, before
   * rdma_resolve_route: the path's traffic class, the GRH's, which RoCEv2 sends as the IPv4 TOS byte or
   * the IPv6 traffic class and the REQ carries to the passive side), RDMA_OPTION_ID_REUSEADDR and
   * RDMA_OPTION_ID_AFONLY (0 or not, before rdma_bind_addr), RDMA_OPTION_ID_ACK_TIMEOUT (RC, 0–31:
   * the QP's local ACK timeout at RTS; before rdma_resolve_route also the path's packet life time,
   * one less). Other levels and options: ENOSYS.
   */
  setOption(level: number, optname: number, value: number): void {
    this.rcm.setOption(this, level, optname, value);
  }
  /** rdma_resolve_route: ROUTE_RESOLVED or ROUTE_ERROR follows. */
  resolveRoute(timeoutMs: number): void {
    this.rcm.resolveRoute(this, timeoutMs);
  }
  /** rdma_listen */
  listen(backlog: number): void {
    this.rcm.listen(this, backlog);
  }
  /** rdma_connect */
  connect(param?: ConnParam): void {
    this.rcm.connect(this, param);
  }
  /** rdma_accept */
  accept(param?: ConnParam): void {
    this.rcm.accept(this, param);
  }
  /** rdma_reject */
  reject(privateData?: Uint8Array): void {
    this.rcm.reject(this, privateData);
  }
  /** rdma_establish: the active side without a QP answers CONNECT_RESPONSE with the RTU. */
  establish(): void {
    this.rcm.establish(this);
  }
  /** rdma_disconnect */
  disconnect(): void {
    this.rcm.disconnect(this);
  }
  /** rdma_create_qp: the QP of this ID, in INIT (UD: in RTS); CQs are made when none are given. */
  createQp(pd: ProtectionDomain | undefined, init: CmQpInitAttr): QueuePair {
    return this.rcm.createQp(this, pd, init);
  }
  /** rdma_destroy_qp */
  destroyQp(): void {
    this.rcm.destroyQp(this);
  }
  /** rdma_get_local_addr */
  getLocalAddr(): SockAddr {
    return { ...this.route.addr.srcAddr };
  }
  /** rdma_get_peer_addr */
  getPeerAddr(): SockAddr {
    return { ...this.route.addr.dstAddr };
  }
  /**
   * rdma_join_multicast_ex: MULTICAST_JOIN follows (its `ud` parameter: the group's address handle,
   * QPN 0xFFFFFF, the Q_Key) and the ID's QP, if it has one and the join is not send-only, is attached
   * to the group; or MULTICAST_ERROR. `context`, librdmacm's context pointer, comes back as the
   * event's `context`.
   */
  joinMulticast(addr: string, joinFlags: McJoinFlag = McJoinFlag.FULLMEMBER, context?: unknown): void {
    this.rcm.joinMulticast(this, addr, joinFlags, context);
  }
  /** rdma_leave_multicast: the QP detached from the group; EADDRNOTAVAIL for a group not joined. */
  leaveMulticast(addr: string): void {
    this.rcm.leaveMulticast(this, addr);
  }
  /** rdma_destroy_id */
  destroy(): void {
    this.rcm.destroyId(this);
  }
  get isDestroyed(): boolean {
    return this.state === RdmaCmState.DESTROYING;
  }
}

/** Opens the RDMA CM over these devices (what rdma_get_devices would list). */
export function openRdmaCm(o: RdmaCmOptions): RdmaCm {
  return new RdmaCm(o);
}

export class RdmaCm {
  private readonly devs: CmaDevice[] = [];
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly binds = new Map<string, Set<RdmaCmId>>();
  private readonly ids = new Set<RdmaCmId>();

  constructor(private readonly o: RdmaCmOptions) {
    const clock = o.clock ?? o.devices.find((d) => d.device.port)?.device.port?.clock;
    if (!clock) throw new TypeError("openRdmaCm: no clock (attach a device to a link, or pass one)");
    this.clock = clock;
    this.random = o.random ?? cryptoU32;
    const peerUdpPort = o.peerUdpPort;
    for (const { device, mad } of o.devices) {
      // the replies to a peer's MADs go where its device listens, as this rdma_cm's own MADs do
      if (peerUdpPort) mad.usePeerUdpPort?.((gid) => peerUdpPort(gidToAddress(gid)));
      const cm = new CommunicationManager({
        transport: mad, clock, nodeGuid: device.nodeGuid, ackDelay: device.query().localCaAckDelay, random: this.random,
        gids: () => gidTable(device),
      });
      const cd: CmaDevice = { device, cm, pd: undefined, listens: new Map() };
      this.devs.push(cd);
      device.addEventListener("close", () => this.deviceRemoved(cd));
    }
  }

  /** rdma_get_devices */
  getDevices(): Device[] {
    return this.devs.map((d) => d.device);
  }

  /** The ib_cm of a device (its counters and trace). */
  cmOf(device: Device): CommunicationManager | undefined {
    return this.devs.find((d) => d.device === device)?.cm;
  }

  /** rdma_create_event_channel */
  createEventChannel(): EventChannel {
    return new EventChannel(
      (ch, ps, ctx) => this.createId(ch, ps, ctx),
      (e) => {
        // ucma_get_event: a retrieved connection request frees a backlog slot of its listener.
        if (e.event === RdmaCmEventType.CONNECT_REQUEST && e.listenId) e.listenId.backlog++;
      },
    );
  }

  /**
   * ucma_close: what the kernel does when a process's rdma_cm file closes, however the process ends.
   * Every ID still on the channel is destroyed as rdma_destroy_id would (a connection's DREQ, a pending
   * request's REJ, a listen's end), then the channel. A tool that gives up mid-handshake leaves an ID
   * no code path holds; without this its peer would learn nothing until its own retries ran out.
   */
  closeChannel(ch: EventChannel): void {
    for (const id of [...this.ids]) if (id.channel === ch) this.destroyId(id);
    ch.destroy();
  }

  private createId(channel: EventChannel, ps: number, context: unknown): RdmaCmId {
    const verb = "rdma_create_id";
    if (channel.isDestroyed) cmFail(verb, "EINVAL", "event channel destroyed");
    if (ps !== PortSpace.TCP && ps !== PortSpace.UDP && ps !== PortSpace.IB && ps !== PortSpace.IPOIB) cmFail(verb, "EINVAL", `port space ${ps}`);
    // librdmacm: UDP and IPoIB port spaces are datagram, the others connected.
    const qpType = ps === PortSpace.UDP || ps === PortSpace.IPOIB ? QpType.UD : QpType.RC;
    const id = new RdmaCmId(this, channel, ps, qpType, context);
    id.seqNum = this.random() & 0xffffff;
    this.ids.add(id);
    return id;
  }

  private event(e: RdmaCmEventInit): void {
    e.id.channel.push(new RdmaCmEvent(e));
  }

  /** Runs `fn` on the next turn of the clock, as Linux's work queue does, unless the ID is gone. */
  private later(id: RdmaCmId, fn: () => void): void {
    this.clock.setTimer(this.clock.now(), () => {
      if (id.state !== RdmaCmState.DESTROYING) fn();
    });
  }

  // ---- addresses ----

  private deviceOf(address: string): { dev: CmaDevice; index: number } | undefined {
    const gid = ipToGid(address);
    for (const dev of this.devs) {
      const t = gidTable(dev.device);
      const index = t.findIndex((g) => sameGid(g, gid));
      if (index >= 0) return { dev, index };
    }
    return undefined;
  }

  private attach(id: RdmaCmId, dev: CmaDevice): void {
    id.dev = dev;
    id.verbs = dev.device;
    id.portNum = 1;
    dev.pd ??= dev.device.allocPd();
    id.pd = dev.pd;
  }

  /** rdma_bind_addr (rdma_bind_addr_dst + cma_get_port) */
  bindAddr(id: RdmaCmId, addr: SockAddr): void {
    const verb = "rdma_bind_addr";
    const ip = parseIp(addr.address);
    if (!ip) cmFail(verb, "EAFNOSUPPORT", `not an IP address: ${addr.address}`);
    if (!Number.isInteger(addr.port) || addr.port < 0 || addr.port > 0xffff) cmFail(verb, "EINVAL", `port ${addr.port}`);
    if (id.state !== RdmaCmState.IDLE) cmFail(verb, "EINVAL", `state ${id.stateName}`);
    let dev: CmaDevice | undefined;
    if (!isZeroAddress(addr.address)) {
      const found = this.deviceOf(addr.address);
      // rdma_translate_ip: no interface has the address.
      if (!found) cmFail(verb, "EADDRNOTAVAIL", `${addr.address} is not an address of an RDMA device here`);
      dev = found.dev;
    }
    if (!id.afonlySet) id.afonly = ip.version === 4;
    id.route.addr.srcAddr = { address: addr.address, port: addr.port };
    if (id.route.addr.dstAddr.address === "0.0.0.0" && ip.version === 6) id.route.addr.dstAddr = { address: "::", port: 0 };
    const port = addr.port ? this.usePort(id, addr.port) : this.anyPort(id);
    id.route.addr.srcAddr.port = port;
    id.bound = true;
    if (dev) this.attach(id, dev);
    id.state = RdmaCmState.ADDR_BOUND;
  }

  private bindKey(ps: number, port: number): string {
    return `${ps}/${port}`;
  }

  /** cma_use_port */
  private usePort(id: RdmaCmId, port: number): number {
    this.checkPort("rdma_bind_addr", id, port, id.reuseaddr);
    this.addBind(id, port);
    return port;
  }

  /** cma_check_port: whether the port's other owners leave this ID its address (`reuse`: both set REUSEADDR share it). */
  private checkPort(verb: string, id: RdmaCmId, port: number, reuse: boolean): void {
    const owners = this.binds.get(this.bindKey(id.ps, port));
    if (owners) {
      const mine = id.route.addr.srcAddr.address;
      for (const cur of owners) {
        if (cur === id) continue;
        if (reuse && cur.reuseaddr) continue;
        const theirs = cur.route.addr.srcAddr.address;
        if (id.afonly && cur.afonly && parseIp(mine)!.version !== parseIp(theirs)!.version) continue;
        if (isZeroAddress(mine) || isZeroAddress(theirs)) cmFail(verb, "EADDRNOTAVAIL", `port ${port} is taken`);
        if (sameGid(ipToGid(mine), ipToGid(theirs))) cmFail(verb, "EADDRINUSE", `${mine}:${port}`);
      }
    }
  }

  /** cma_alloc_any_port: a random port of the ephemeral range that no one holds */
  private anyPort(id: RdmaCmId): number {
    const span = EPHEMERAL_HIGH - EPHEMERAL_LOW + 1;
    let rover = EPHEMERAL_LOW + (this.random() % span);
    for (let left = span; left > 0; left--) {
      if (!this.binds.has(this.bindKey(id.ps, rover))) {
        this.addBind(id, rover);
        return rover;
      }
      rover = rover >= EPHEMERAL_HIGH ? EPHEMERAL_LOW : rover + 1;
    }
    cmFail("rdma_bind_addr", "EADDRNOTAVAIL", "no free port");
  }

  private addBind(id: RdmaCmId, port: number): void {
    const k = this.bindKey(id.ps, port);
    let s = this.binds.get(k);
    if (!s) this.binds.set(k, (s = new Set()));
    s.add(id);
  }

  private releasePort(id: RdmaCmId): void {
    if (!id.bound) return;
    const k = this.bindKey(id.ps, id.route.addr.srcAddr.port);
    const s = this.binds.get(k);
    s?.delete(id);
    if (s && !s.size) this.binds.delete(k);
    id.bound = false;
  }

  /** rdma_resolve_addr: on this host the "route" is the device whose GID table holds the source. */
  resolveAddr(id: RdmaCmId, src: SockAddr | undefined, dst: SockAddr, timeoutMs: number): void {
    const verb = "rdma_resolve_addr";
    const dip = parseIp(dst.address);
    if (!dip) cmFail(verb, "EINVAL", `not an IP address: ${dst.address}`);
    if (src && !parseIp(src.address)) cmFail(verb, "EINVAL", `not an IP address: ${src.address}`);
    if (!Number.isFinite(timeoutMs)) cmFail(verb, "EINVAL", `timeout ${timeoutMs}`);
    if (id.state === RdmaCmState.IDLE) {
      this.bindAddr(id, src ?? { address: dip.version === 4 ? "0.0.0.0" : "::", port: 0 });
    } else if (id.state !== RdmaCmState.ADDR_BOUND) {
      cmFail(verb, "EINVAL", `state ${id.stateName}`);
    }
    if (parseIp(id.route.addr.srcAddr.address)!.version !== dip.version) cmFail(verb, "EINVAL", "source and destination of two families");
    id.state = RdmaCmState.ADDR_QUERY;
    id.route.addr.dstAddr = { address: dst.address, port: dst.port };
    this.later(id, () => {
      if (id.state !== RdmaCmState.ADDR_QUERY) return;
      let source = id.route.addr.srcAddr.address;
      if (!id.dev) {
        // No routing table here: the first device with an address of the destination's family.
        const dev = isZeroAddress(dst.address) ? this.devs[0] : this.devs.find((d) => familyGid(d.device, dip.version) !== undefined);
        const gid = dev && familyGid(dev.device, dip.version);
        if (!dev || gid === undefined) {
          id.state = RdmaCmState.ADDR_BOUND;
          return this.event({ id, event: RdmaCmEventType.ADDR_ERROR, status: -Errno.ENODEV });
        }
        this.attach(id, dev);
        source = gid;
        id.route.addr.srcAddr = { address: source, port: id.route.addr.srcAddr.port };
      }
      if (isZeroAddress(dst.address)) id.route.addr.dstAddr = { address: source, port: dst.port }; // cma_resolve_loopback
      id.state = RdmaCmState.ADDR_RESOLVED;
      this.event({ id, event: RdmaCmEventType.ADDR_RESOLVED });
    });
  }

  /** rdma_set_option: ucma_set_option_id's cases, each checked as the kernel's rdma_set_* is. */
  setOption(id: RdmaCmId, level: number, optname: number, value: number): void {
    const verb = "rdma_set_option";
    const option = level === RDMA_OPTION_ID ? OPTION_ID_NAMES[optname] : undefined;
    if (option === undefined) cmFail(verb, "ENOSYS", `level ${level}, option ${optname}: softroce takes level RDMA_OPTION_ID, options TOS, REUSEADDR, AFONLY and ACK_TIMEOUT`);
    if (!Number.isInteger(value)) cmFail(verb, "EINVAL", `${option} ${value}: an integer`);
    switch (optname) {
      case RDMA_OPTION_ID_TOS:
        // librdmacm passes a u8 (optlen 1): ucma checks the length, the value is whatever the byte holds
        if (value < 0 || value > 0xff) cmFail(verb, "EINVAL", `type of service ${value}: one byte, 0..255`);
        id.tos = value;
        break;
      case RDMA_OPTION_ID_REUSEADDR: {
        // rdma_set_reuseaddr: on while the ID does not listen; off only before it is bound
        const reuse = value !== 0;
        if (!((reuse && id.state !== RdmaCmState.LISTEN) || id.state === RdmaCmState.IDLE)) cmFail(verb, "EINVAL", `REUSEADDR ${value} in state ${id.stateName}`);
        id.reuseaddr = reuse;
        break;
      }
      case RDMA_OPTION_ID_AFONLY:
        // rdma_set_afonly: before the bind, or while it is only a bind
        if (id.state !== RdmaCmState.IDLE && id.state !== RdmaCmState.ADDR_BOUND) cmFail(verb, "EINVAL", `AFONLY in state ${id.stateName}`);
        id.afonly = value !== 0;
        id.afonlySet = true;
        break;
      case RDMA_OPTION_ID_ACK_TIMEOUT:
        // rdma_set_ack_timeout: RC only. Linux takes any byte; the QP's attribute is five bits, and a
        // modify with more would fail later (our device refuses it), so it is refused here
        if (id.qpType !== QpType.RC) cmFail(verb, "EINVAL", "ACK_TIMEOUT: an RC ID's (port space TCP or IB)");
        if (value < 0 || value > 31) cmFail(verb, "EINVAL", `ACK timeout ${value}: an exponent 0..31 (4.096 µs × 2^n; 0 no timer)`);
        id.ackTimeout = value;
        break;
    }
  }

  /** rdma_resolve_route: cma_resolve_iboe_route's path record. */
  resolveRoute(id: RdmaCmId, timeoutMs: number): void {
    const verb = "rdma_resolve_route";
    if (!timeoutMs) cmFail(verb, "EINVAL", "timeout 0");
    if (id.state !== RdmaCmState.ADDR_RESOLVED) cmFail(verb, "EINVAL", `state ${id.stateName}`);
    id.state = RdmaCmState.ROUTE_QUERY;
    this.later(id, () => {
      if (id.state !== RdmaCmState.ROUTE_QUERY) return;
      const dev = id.dev!;
      const { srcAddr, dstAddr } = id.route.addr;
      const sgid = ipToGid(srcAddr.address);
      const sgidIndex = gidTable(dev.device).findIndex((g) => sameGid(g, sgid));
      if (sgidIndex < 0) {
        id.state = RdmaCmState.ADDR_RESOLVED;
        return this.event({ id, event: RdmaCmEventType.ROUTE_ERROR, status: -Errno.ENODEV });
      }
      id.route.pathRec = {
        sgid,
        dgid: ipToGid(dstAddr.address),
        sgidIndex,
        // cma_get_roce_udp_flow_label: from the ports when there is no IPv6 flow label.
        flowLabel: (srcAddr.port * 31 + dstAddr.port) & 0xfffff,
        hopLimit: ROCE_HOP_LIMIT,
        // rdma_set_option's TOS, else default_roce_tos (0)
        trafficClass: id.tos ?? 0,
        sl: 0,
        pkey: 0xffff,
        mtu: dev.device.queryPort().activeMtu,
        rate: 0,
        // rdma_set_option's ACK timeout halves into the packet life time (IBTA 12.7.34: ACK timeout = 2 × life + the CA's delay)
        packetLifeTime: id.ackTimeout ? id.ackTimeout - 1 : CMA_IBOE_PACKET_LIFETIME,
        serviceId: serviceId(id.ps, dstAddr.port),
        dport: this.o.peerUdpPort?.(dstAddr.address),
      };
      id.route.numPaths = 1;
      id.state = RdmaCmState.ROUTE_RESOLVED;
      this.event({ id, event: RdmaCmEventType.ROUTE_RESOLVED });
    });
  }

  // ---- QPs ----

  /** rdma_create_qp (librdmacm rdma_create_qp_ex with ucma_init_conn_qp / ucma_init_ud_qp). */
  createQp(id: RdmaCmId, pd: ProtectionDomain | undefined, init: CmQpInitAttr): QueuePair {
    const verb = "rdma_create_qp";
    if (id.qp) cmFail(verb, "EINVAL", "the ID has a QP");
    if (!id.dev || !id.verbs) cmFail(verb, "EINVAL", "the ID is not bound to a device yet");
    const usePd = pd ?? id.pd!;
    if (usePd.device !== id.verbs) cmFail(verb, "EINVAL", "PD of another device");
    const made: CompletionQueue[] = [];
    const sendCq = init.sendCq ?? made[made.push(id.verbs.createCq(Math.max(1, init.cap?.maxSendWr ?? 1))) - 1]!;
    const recvCq = init.recvCq ?? made[made.push(id.verbs.createCq(Math.max(1, init.cap?.maxRecvWr ?? 1))) - 1]!;
    let qp: QueuePair | undefined;
    try {
      qp = usePd.createQp({ ...init, qpType: id.qpType, sendCq, recvCq });
      if (id.qpType === QpType.UD) {
        qp.modify({ qpState: QpState.INIT, pkeyIndex: 0, portNum: id.portNum, qkey: id.qkey || RDMA_UDP_QKEY });
        qp.modify({ qpState: QpState.RTR });
        qp.modify({ qpState: QpState.RTS, sqPsn: 0 });
      } else {
        // rdma_init_qp_attr before there is a CM ID: INIT with no remote access (cma_ib_init_qp_attr).
        qp.modify({ qpState: QpState.INIT, pkeyIndex: 0, portNum: id.portNum, qpAccessFlags: 0 });
      }
    } catch (e) {
      qp?.destroy();
      for (const cq of made) cq.destroy();
      throw e;
    }
    id.qp = qp;
    id.pd = usePd;
    id.sendCq = sendCq;
    id.recvCq = recvCq;
    id.ownCqs = made;
    return qp;
  }

  /** rdma_destroy_qp */
  destroyQp(id: RdmaCmId): void {
    id.qp?.destroy();
    id.qp = undefined;
    for (const cq of id.ownCqs) cq.destroy();
    id.ownCqs = [];
    id.sendCq = id.recvCq = undefined;
  }

  /**
   * ucma_modify_qp_rtr: INIT again with the CM's attributes, then RTR; the consumer's
   * responder resources replace the CM's unless RDMA_MAX_RESP_RES.
   */
  private modifyQpRtr(id: RdmaCmId, respRes: number): void {
    const qp = id.qp;
    if (!qp || !id.cmId) return;
    qp.modify(id.cmId.initQpAttr(QpState.INIT));
    const rtr = id.cmId.initQpAttr(QpState.RTR);
    rtr.rqPsn = id.seqNum; // rdma_init_qp_attr
    if (respRes !== RDMA_MAX_RESP_RES) rtr.maxDestRdAtomic = respRes;
    // Linux takes the REQ's MTU as it is; a port with a smaller active MTU would then refuse
    // the modify, so the smaller of the two is used (the same when both ports agree).
    rtr.pathMtu = Math.min(rtr.pathMtu ?? 0, id.verbs!.queryPort().activeMtu);
    qp.modify(rtr);
  }

  /** ucma_modify_qp_rts */
  private modifyQpRts(id: RdmaCmId, initDepth: number): void {
    const qp = id.qp;
    if (!qp || !id.cmId) return;
    const rts = id.cmId.initQpAttr(QpState.RTS);
    if (initDepth !== RDMA_MAX_INIT_DEPTH) rts.maxRdAtomic = initDepth;
    // rdma_init_qp_attr: rdma_set_option's ACK timeout over the CM's
    if (id.ackTimeout !== undefined && rts.timeout !== undefined) rts.timeout = id.ackTimeout;
    qp.modify(rts);
  }

  private modifyQpErr(id: RdmaCmId): void {
    if (id.qp && !id.qp.isDestroyed) id.qp.modify({ qpState: QpState.ERR });
  }

  // ---- listening ----

  /** rdma_listen (ucma_listen's backlog, cma_ib_listen on the bound device or on every device) */
  listen(id: RdmaCmId, backlog: number): void {
    const verb = "rdma_listen";
    if (id.state === RdmaCmState.IDLE) this.bindAddr(id, { address: "0.0.0.0", port: 0 });
    if (id.state !== RdmaCmState.ADDR_BOUND) cmFail(verb, "EINVAL", `state ${id.stateName}`);
    // cma_bind_listen: IDs may share a port by REUSEADDR, but a listener has its address to itself
    if (id.reuseaddr) this.checkPort(verb, id, id.route.addr.srcAddr.port, false);
    id.backlog = backlog > 0 && backlog < UCMA_MAX_BACKLOG ? backlog : UCMA_MAX_BACKLOG;
    const sid = serviceId(id.ps, id.route.addr.srcAddr.port);
    const devs = id.dev ? [id.dev] : this.devs;
    for (const dev of devs) {
      let l = dev.listens.get(sid);
      if (!l) {
        const cmId = dev.cm.createId((cm, ev) => this.onListenEvent(dev, cm, ev));
        cmId.listen(sid);
        l = { cmId, users: new Set() };
        dev.listens.set(sid, l);
      }
      l.users.add(id);
    }
    id.state = RdmaCmState.LISTEN;
  }

  private unlisten(id: RdmaCmId): void {
    const sid = serviceId(id.ps, id.route.addr.srcAddr.port);
    for (const dev of this.devs) {
      const l = dev.listens.get(sid);
      if (!l || !l.users.delete(id)) continue;
      if (!l.users.size) {
        l.cmId.destroy();
        dev.listens.delete(sid);
      }
    }
  }

  /** cma_ib_req_handler: which rdma listener a REQ or SIDR_REQ is for, and a new ID for it. */
  private onListenEvent(dev: CmaDevice, cmId: CmId, ev: IbCmEvent): number {
    const sidr = ev.event === IbCmEventType.SIDR_REQ_RECEIVED;
    if (ev.event !== IbCmEventType.REQ_RECEIVED && !sidr) return 0;
    const sid = sidr ? ev.sidrReqRcvd!.serviceId : cmId.serviceId;
    let hdr;
    try {
      hdr = parseCmaHdr(ev.privateData!);
    } catch (e) {
      if (e instanceof CmaHdrError) return -Errno.EINVAL; // the CM answers with a consumer REJ
      throw e;
    }
    const { ps, port } = splitServiceId(sid);
    const listener = [...(dev.listens.get(sid)?.users ?? [])].find(
      (l) => l.ps === ps && l.route.addr.srcAddr.port === port && matchPrivateData(l, hdr.ipVersion, hdr.dst),
    );
    if (!listener) return -Errno.EINVAL;
    // cma_ib_check_req_qp_type
    if (sidr ? listener.qpType !== QpType.UD : ev.reqRcvd!.qpType !== listener.qpType) return -Errno.EINVAL;
    if (listener.state !== RdmaCmState.LISTEN) return -Errno.ECONNABORTED;
    // ucma_event_handler: a listener whose backlog is full takes no more; -ENOMEM keeps the CM silent.
    if (listener.backlog <= 0) return ENOMEM;

    const conn = this.createId(listener.channel, listener.ps, listener.context);
    conn.route.addr.srcAddr = { address: hdr.dst, port };
    conn.route.addr.dstAddr = { address: hdr.src, port: hdr.port };
    conn.afonly = listener.afonly;
    conn.listenParent = listener;
    this.attach(conn, dev);
    conn.cmId = cmId;
    cmId.handler = sidr ? (i, e) => this.onSidrServerEvent(conn, i, e) : (i, e) => this.onConnEvent(conn, i, e);
    conn.state = RdmaCmState.CONNECT;
    listener.backlog--;
    const data = ev.privateData!.subarray(CMA_HDR_SIZE);
    if (sidr) {
      this.event({ id: conn, listenId: listener, event: RdmaCmEventType.CONNECT_REQUEST, ud: { privateData: data, privateDataLen: data.length, ahAttr: undefined, qpNum: 0, qkey: 0 } });
      return 0;
    }
    const r = ev.reqRcvd!;
    conn.route.pathRec = r.primaryPath;
    conn.route.numPaths = 1;
    // ucma_process_conn_req: the new ID starts from what the peer offered.
    conn.initiatorDepth = r.initiatorDepth;
    conn.responderResources = r.responderResources;
    this.event({
      id: conn, listenId: listener, event: RdmaCmEventType.CONNECT_REQUEST,
      conn: {
        privateData: data, privateDataLen: data.length, responderResources: r.responderResources, initiatorDepth: r.initiatorDepth,
        flowControl: r.flowControl, retryCount: r.retryCount, rnrRetryCount: r.rnrRetryCount, srq: r.srq, qpNum: r.remoteQpn,
      },
    });
    // The consumer has not answered yet: hold an MRA ready for the peer's retries.
    if (conn.state === RdmaCmState.CONNECT) cmId.sendMra(CMA_CM_MRA_SETTING);
    return 0;
  }

  // ---- connecting ----

  /** ucma_valid_param */
  private validParam(verb: string, id: RdmaCmId, p: ConnParam | undefined): void {
    if (id.ps !== PortSpace.TCP) return;
    if (!id.qp && !p) cmFail(verb, "EINVAL", "no QP and no connection parameters");
    if (!p) return;
    const a = id.verbs!.query();
    const rr = p.responderResources ?? 0;
    const id0 = p.initiatorDepth ?? 0;
    if (rr !== RDMA_MAX_RESP_RES && rr > (a.maxQpRdAtom & 0xff)) cmFail(verb, "EINVAL", `responder resources ${rr}`);
    if (id0 !== RDMA_MAX_INIT_DEPTH && id0 > (a.maxQpInitRdAtom & 0xff)) cmFail(verb, "EINVAL", `initiator depth ${id0}`);
  }

  /** rdma_connect: a REQ (RC) or a SIDR_REQ (UD) with rdma_cm's header before the consumer's private data. */
  connect(id: RdmaCmId, p: ConnParam | undefined): void {
    const verb = "rdma_connect";
    if (id.state !== RdmaCmState.ROUTE_RESOLVED || !id.dev || !id.route.pathRec) cmFail(verb, "EINVAL", `state ${id.stateName}`);
    this.validParam(verb, id, p);
    const dev = id.dev;
    const a = dev.device.query();
    id.initiatorDepth = p && (p.initiatorDepth ?? 0) !== RDMA_MAX_INIT_DEPTH ? p.initiatorDepth ?? 0 : a.maxQpInitRdAtom & 0xff;
    id.responderResources = p && (p.responderResources ?? 0) !== RDMA_MAX_RESP_RES ? p.responderResources ?? 0 : a.maxQpRdAtom & 0xff;
    const user = p?.privateData ?? new Uint8Array(0);
    const room = privateDataSize(id.qpType === QpType.UD ? "SIDR_REQ" : "REQ") - CMA_HDR_SIZE;
    if (user.length > room) cmFail(verb, "EINVAL", `${user.length} bytes of private data, room for ${room}`);
    const pd = new Uint8Array(CMA_HDR_SIZE + user.length);
    emitCmaHdr({ src: id.route.addr.srcAddr.address, dst: id.route.addr.dstAddr.address, port: id.route.addr.srcAddr.port }, pd);
    pd.set(user, CMA_HDR_SIZE);
    id.state = RdmaCmState.CONNECT;
    const path = id.route.pathRec;
    try {
      if (id.qpType === QpType.UD) {
        const cmId = dev.cm.createId((i, e) => this.onSidrClientEvent(id, i, e));
        id.cmId = cmId;
        cmId.sendSidrReq({
          path, serviceId: serviceId(id.ps, id.route.addr.dstAddr.port), timeoutMs: 2 ** (CMA_CM_RESPONSE_TIMEOUT - 8),
          maxCmRetries: CMA_MAX_CM_RETRIES, privateData: pd,
        });
        return;
      }
      const cmId = dev.cm.createId((i, e) => this.onConnEvent(id, i, e));
      id.cmId = cmId;
      cmId.sendReq({
        primaryPath: path,
        serviceId: serviceId(id.ps, id.route.addr.dstAddr.port),
        qpNum: id.qp ? id.qp.qpNum : p?.qpNum ?? 0,
        qpType: id.qpType,
        startingPsn: id.seqNum,
        privateData: pd,
        responderResources: id.responderResources,
        initiatorDepth: id.initiatorDepth,
        flowControl: p?.flowControl ?? 0,
        // librdmacm sends 7 and 7 when there are no parameters; the kernel caps both at 7.
        retryCount: Math.min(7, p ? p.retryCount ?? 0 : 7),
        rnrRetryCount: Math.min(7, p ? p.rnrRetryCount ?? 0 : 7),
        remoteCmResponseTimeout: CMA_CM_RESPONSE_TIMEOUT,
        localCmResponseTimeout: CMA_CM_RESPONSE_TIMEOUT,
        maxCmRetries: CMA_MAX_CM_RETRIES,
        srq: id.qp ? (id.qp.srq ? 1 : 0) : p?.srq ?? 0,
      });
    } catch (e) {
      id.cmId?.destroy();
      id.cmId = undefined;
      id.state = RdmaCmState.ROUTE_RESOLVED;
      throw e;
    }
  }

  /** cma_ib_handler with librdmacm's event processing folded in. */
  private onConnEvent(id: RdmaCmId, cmId: CmId, ev: IbCmEvent): number {
    const st = id.state;
    if (ev.event === IbCmEventType.TIMEWAIT_EXIT ? st !== RdmaCmState.DISCONNECT : st !== RdmaCmState.CONNECT) return 0;
    switch (ev.event) {
      case IbCmEventType.REQ_ERROR:
      case IbCmEventType.REP_ERROR:
        this.event({ id, event: RdmaCmEventType.UNREACHABLE, status: -Errno.ETIMEDOUT });
        return 0;
      case IbCmEventType.REP_RECEIVED: {
        cmId.sendMra(CMA_CM_MRA_SETTING);
        const r = ev.repRcvd!;
        const conn: ConnEventParam = {
          privateData: ev.privateData, privateDataLen: ev.privateData?.length ?? 0, responderResources: r.responderResources,
          initiatorDepth: r.initiatorDepth, flowControl: r.flowControl, retryCount: 0, rnrRetryCount: r.rnrRetryCount, srq: r.srq,
          qpNum: r.remoteQpn,
        };
        if (!id.qp) {
          this.event({ id, event: RdmaCmEventType.CONNECT_RESPONSE, conn });
          return 0;
        }
        // ucma_process_conn_resp: the QP to RTR and RTS with the CM's values, then the RTU.
        try {
          this.modifyQpRtr(id, RDMA_MAX_RESP_RES);
          this.modifyQpRts(id, RDMA_MAX_INIT_DEPTH);
          cmId.sendRtu();
        } catch (e) {
          this.modifyQpErr(id);
          id.connectError = true;
          this.event({ id, event: RdmaCmEventType.CONNECT_ERROR, status: -((e as RdmaCmError).errno ?? Errno.EINVAL), conn });
          return 0;
        }
        this.event({ id, event: RdmaCmEventType.ESTABLISHED, conn });
        return 0;
      }
      case IbCmEventType.RTU_RECEIVED:
      case IbCmEventType.USER_ESTABLISHED:
        this.event({ id, event: RdmaCmEventType.ESTABLISHED, conn: emptyConn() });
        return 0;
      case IbCmEventType.DREQ_ERROR:
      case IbCmEventType.DREQ_RECEIVED:
      case IbCmEventType.DREP_RECEIVED:
        id.state = RdmaCmState.DISCONNECT;
        if (id.connectError) return 0;
        this.event({
          id, event: RdmaCmEventType.DISCONNECTED, status: ev.event === IbCmEventType.DREQ_ERROR ? -Errno.ETIMEDOUT : 0, conn: emptyConn(),
        });
        return 0;
      case IbCmEventType.TIMEWAIT_EXIT:
        this.event({ id, event: RdmaCmEventType.TIMEWAIT_EXIT });
        return 0;
      case IbCmEventType.REJ_RECEIVED:
        this.modifyQpErr(id);
        if (id.connectError) return 0;
        this.event({
          id, event: RdmaCmEventType.REJECTED, status: ev.rejRcvd!.reason,
          conn: { ...emptyConn(), privateData: ev.privateData, privateDataLen: ev.privateData?.length ?? 0 },
        });
        return 0;
      default:
        return 0; // MRA_RECEIVED: nothing to tell the consumer
    }
  }

  /** cma_sidr_rep_handler */
  private onSidrClientEvent(id: RdmaCmId, _cmId: CmId, ev: IbCmEvent): number {
    if (id.state !== RdmaCmState.CONNECT) return 0;
    if (ev.event === IbCmEventType.SIDR_REQ_ERROR) {
      this.event({ id, event: RdmaCmEventType.UNREACHABLE, status: -Errno.ETIMEDOUT });
      return 0;
    }
    if (ev.event !== IbCmEventType.SIDR_REP_RECEIVED) return 0;
    const r = ev.sidrRepRcvd!;
    const pd = ev.privateData;
    if (r.status !== SidrStatus.SUCCESS) {
      this.event({ id, event: RdmaCmEventType.UNREACHABLE, status: r.status, ud: { privateData: pd, privateDataLen: pd?.length ?? 0, ahAttr: undefined, qpNum: 0, qkey: 0 } });
      return 0;
    }
    // cma_set_qkey: a Q_Key already chosen must match.
    if (id.qkey && id.qkey !== r.qkey) {
      this.event({ id, event: RdmaCmEventType.ADDR_ERROR, status: -Errno.EINVAL });
      return 0;
    }
    id.qkey = r.qkey;
    const path = id.route.pathRec!;
    const ahAttr = ahAttrOf(path, path.dport);
    this.event({ id, event: RdmaCmEventType.ESTABLISHED, ud: { privateData: pd, privateDataLen: pd?.length ?? 0, ahAttr, qpNum: r.qpn, qkey: r.qkey } });
    return 0;
  }

  /** The passive side of a SIDR exchange has no events after CONNECT_REQUEST. */
  private onSidrServerEvent(_id: RdmaCmId, _cmId: CmId, _ev: IbCmEvent): number {
    return 0;
  }

  /** rdma_accept: the QP to RTR and RTS, then the REP (RC) or SIDR_REP (UD). */
  accept(id: RdmaCmId, p: ConnParam | undefined): void {
    const verb = "rdma_accept";
    if (id.state !== RdmaCmState.CONNECT || !id.cmId) cmFail(verb, "EINVAL", `state ${id.stateName}`);
    this.validParam(verb, id, p);
    const cmId = id.cmId;
    if (id.qpType === QpType.UD) {
      if (p?.privateData && p.privateData.length > privateDataSize("SIDR_REP")) cmFail(verb, "EINVAL", "private data too long");
      id.qkey ||= RDMA_UDP_QKEY;
      cmId.sendSidrRep({ status: SidrStatus.SUCCESS, qpNum: id.qp ? id.qp.qpNum : p?.qpNum ?? 0, qkey: id.qkey, privateData: p?.privateData });
      return;
    }
    const a = id.verbs!.query();
    const wantId = p?.initiatorDepth ?? 0;
    const wantRr = p?.responderResources ?? 0;
    id.initiatorDepth = !p || wantId === RDMA_MAX_INIT_DEPTH ? Math.min(id.initiatorDepth, a.maxQpInitRdAtom & 0xff) : wantId;
    id.responderResources = !p || wantRr === RDMA_MAX_RESP_RES ? Math.min(id.responderResources, a.maxQpRdAtom & 0xff) : wantRr;
    if (p?.privateData && p.privateData.length > privateDataSize("REP")) cmFail(verb, "EINVAL", "private data too long");
    try {
      this.modifyQpRtr(id, id.responderResources);
      this.modifyQpRts(id, id.initiatorDepth);
      cmId.sendRep({
        qpNum: id.qp ? id.qp.qpNum : p?.qpNum ?? 0,
        startingPsn: id.seqNum,
        privateData: p?.privateData,
        responderResources: id.responderResources,
        initiatorDepth: id.initiatorDepth,
        failoverAccepted: 0,
        flowControl: p?.flowControl ?? 0,
        rnrRetryCount: Math.min(7, p ? p.rnrRetryCount ?? 0 : 7),
        srq: id.qp ? (id.qp.srq ? 1 : 0) : p?.srq ?? 0,
      });
    } catch (e) {
      // rdma_accept's reject path: the QP to ERR and a consumer REJ.
      this.modifyQpErr(id);
      try {
        cmId.sendRej(RejReason.CONSUMER_DEFINED);
      } catch {
        /* already past the point of rejecting */
      }
      throw e;
    }
  }

  /** rdma_establish (and rdma_accept on the active side): the RTU for a CONNECT_RESPONSE. */
  establish(id: RdmaCmId): void {
    const verb = "rdma_establish";
    if (id.qp) cmFail(verb, "EINVAL", "the ID has a QP (its RTU went with ESTABLISHED)");
    if (!id.cmId || id.state !== RdmaCmState.CONNECT) cmFail(verb, "EINVAL", `state ${id.stateName}`);
    try {
      id.cmId.sendRtu();
    } catch (e) {
      this.modifyQpErr(id);
      throw e;
    }
  }

  /** rdma_reject: a consumer REJ (reason 28) or, for UD, SIDR_REP "rejected". */
  reject(id: RdmaCmId, privateData?: Uint8Array): void {
    const verb = "rdma_reject";
    if (!id.cmId) cmFail(verb, "EINVAL", "no connection request");
    if (id.qpType === QpType.UD) {
      if (privateData && privateData.length > privateDataSize("SIDR_REP")) cmFail(verb, "EINVAL", "private data too long");
      id.cmId.sendSidrRep({ status: SidrStatus.REJECT, privateData });
      return;
    }
    if (privateData && privateData.length > privateDataSize("REJ")) cmFail(verb, "EINVAL", "private data too long");
    id.cmId.sendRej(RejReason.CONSUMER_DEFINED, undefined, privateData);
  }

  /** rdma_disconnect: the QP to ERR, then a DREQ, or the DREP that answers one. */
  disconnect(id: RdmaCmId): void {
    const verb = "rdma_disconnect";
    if (!id.cmId) cmFail(verb, "EINVAL", "not connected");
    this.modifyQpErr(id);
    try {
      id.cmId.sendDreq();
    } catch (e) {
      if (!(e instanceof RdmaCmError)) throw e;
      try {
        id.cmId.sendDrep();
      } catch (e2) {
        if (!(e2 instanceof RdmaCmError)) throw e2;
        // Linux's rdma_disconnect returns 0 here too.
      }
    }
  }

  /** rdma_destroy_id: the CM says goodbye as its state requires; queued events go with the ID. */
  /**
   * rdma_join_multicast_ex over RoCEv2 (cma.c's cma_iboe_join_multicast): on an ID bound to a device
   * (ADDR_BOUND or ADDR_RESOLVED) and of a UD port space; the MGID is the group's address as a GID
   * (IPv4-mapped); the join's address handle has hop limit 64, SL 0, no LID. IPv6 groups fail with
   * ENOTSUPP as on Linux 6.1 (RoCEv2 multicast through rdma_cm is IPv4 there). The link joins the group
   * when the QP is attached (a send-only member does not join: it only sends).
   */
  joinMulticast(id: RdmaCmId, addr: string, joinFlags: McJoinFlag, context: unknown): void {
    const verb = "rdma_join_multicast";
    if (id.state !== RdmaCmState.ADDR_BOUND && id.state !== RdmaCmState.ADDR_RESOLVED) cmFail(verb, "EINVAL", `state ${id.stateName}`);
    if (id.qpType !== QpType.UD) cmFail(verb, "EINVAL", "not a UD port space");
    if (joinFlags !== McJoinFlag.FULLMEMBER && joinFlags !== McJoinFlag.SENDONLY_FULLMEMBER) cmFail(verb, "EINVAL", `join flags ${joinFlags}`);
    const dev = id.dev;
    if (!dev) cmFail(verb, "ENODEV", "the ID is not bound to a device");
    const ip = parseIp(addr);
    if (!ip || isZeroAddress(addr)) cmFail(verb, "EINVAL", `not a multicast address: ${addr}`);
    if (ip.version === 6) cmFail(verb, "ENOTSUPP", "IPv6 multicast on RoCEv2 (Linux's rdma_cm joins IPv4 groups only)");
    const mgid = ipToGid(addr);
    if (!isMulticastGid(mgid)) cmFail(verb, "EINVAL", `not a multicast address: ${addr}`);
    const sgidIndex = gidTable(dev.device).findIndex((g) => sameGid(g, ipToGid(id.route.addr.srcAddr.address)));
    if (sgidIndex < 0) cmFail(verb, "ENODEV", `no GID for ${id.route.addr.srcAddr.address}`);
    const mc: CmaMulticast = { mgid, joinFlags, attached: false, context };
    id.mcs.set(addr, mc);
    this.later(id, () => {
      if (id.mcs.get(addr) !== mc) return; // left before the join completed
      const qkey = id.ps === PortSpace.UDP ? RDMA_UDP_QKEY : id.qkey;
      const ahAttr = ahAttrOf(
        { dgid: mc.mgid, flowLabel: 0, sgidIndex, hopLimit: ROCE_HOP_LIMIT, trafficClass: 0, sl: 0, rate: 0 }, this.o.peerUdpPort?.(addr),
      );
      ahAttr.dlid = ROCE_MLID;
      // ucma_process_join: librdmacm attaches the ID's QP, unless the member only sends
      if (id.qp && joinFlags !== McJoinFlag.SENDONLY_FULLMEMBER) {
        try {
          id.qp.attachMcast(mc.mgid, ROCE_MLID);
          mc.attached = true;
        } catch (e) {
          id.mcs.delete(addr);
          return this.event({ id, event: RdmaCmEventType.MULTICAST_ERROR, status: -((e as { errno?: number }).errno ?? Errno.EINVAL), context });
        }
      }
      this.event({ id, event: RdmaCmEventType.MULTICAST_JOIN, ud: { privateData: undefined, privateDataLen: 0, ahAttr, qpNum: MULTICAST_QPN, qkey }, context });
    });
  }

  /** rdma_leave_multicast: the ID's QP detached (if the join attached it), the group forgotten. */
  leaveMulticast(id: RdmaCmId, addr: string): void {
    const mc = id.mcs.get(addr);
    if (!mc) cmFail("rdma_leave_multicast", "EADDRNOTAVAIL", `${addr} was not joined`);
    id.mcs.delete(addr);
    if (mc.attached && id.qp && !id.qp.isDestroyed) id.qp.detachMcast(mc.mgid, ROCE_MLID);
  }

  destroyId(id: RdmaCmId): void {
    if (id.state === RdmaCmState.DESTROYING) return;
    const was = id.state;
    id.state = RdmaCmState.DESTROYING;
    if (was === RdmaCmState.LISTEN) this.unlisten(id);
    id.cmId?.destroy();
    id.cmId = undefined;
    id.mcs.clear(); // the kernel leaves the groups; a QP still attached stays so until it is detached (ibv_destroy_qp: EBUSY)
    this.releasePort(id);
    // ucma_free_ctx: events not yet reported go; a connection request's new ID with them.
    for (const e of id.channel.purge((e) => e.id === id || e.listenId === id)) {
      if (e.id !== id && e.event === RdmaCmEventType.CONNECT_REQUEST) this.destroyId(e.id);
    }
    this.ids.delete(id);
  }

  /** DEVICE_REMOVAL for every ID on a device that closes. */
  private deviceRemoved(dev: CmaDevice): void {
    for (const id of [...this.ids]) {
      if (id.dev !== dev || id.state === RdmaCmState.DESTROYING || id.state === RdmaCmState.DEVICE_REMOVAL) continue;
      id.state = RdmaCmState.DEVICE_REMOVAL;
      this.event({ id, event: RdmaCmEventType.DEVICE_REMOVAL });
    }
    for (const l of dev.listens.values()) l.cmId.destroy();
    dev.listens.clear();
  }
}

// ---- helpers ----

function gidTable(device: Device): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < device.gidTableSize; i++) out.push(parseGid(device.queryGid(i)));
  return out;
}

/** The IP address of a device's first GID of this family (a dotted quad for 4), if any; link-local GIDs are not routable. */
function familyGid(device: Device, version: 4 | 6): string | undefined {
  for (let i = 0; i < device.gidTableSize; i++) {
    const g = parseGid(device.queryGid(i));
    const mapped = isV4MappedGid(g);
    if (version === 4 && mapped) return gidToAddress(g);
    if (version === 6 && !mapped && !(g[0] === 0xfe && (g[1]! & 0xc0) === 0x80)) return gidToAddress(g);
  }
  return undefined;
}

/** cma_match_private_data: a listener bound to an address takes requests for that address only. */
function matchPrivateData(l: RdmaCmId, ipVersion: 4 | 6, dst: string): boolean {
  const mine = l.route.addr.srcAddr.address;
  const v = parseIp(mine)!.version;
  if (isZeroAddress(mine) && !l.afonly) return true;
  if (v !== ipVersion) return false;
  return isZeroAddress(mine) || sameGid(ipToGid(mine), ipToGid(dst));
}

function emptyConn(): ConnEventParam {
  return { privateData: undefined, privateDataLen: 0, responderResources: 0, initiatorDepth: 0, flowControl: 0, retryCount: 0, rnrRetryCount: 0, srq: 0, qpNum: 0 };
}



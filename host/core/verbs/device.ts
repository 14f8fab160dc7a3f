// The device: one wasm instance, opened with a configuration record; the verbs
// that hang off the context (ibv_query_device, ibv_query_port, ibv_query_gid,
// ibv_alloc_pd, ibv_create_cq) and the async event pump.
import { instantiateCore } from "../wasm/instance.js";
import { Cfg, CFG_FLAG_DEVICE_SPORT, CFG_FLAG_PRIVILEGED_QKEY, Ev, GID_TABLE_LEN, MAX_PKEYS, Ring, type VerbsCore } from "./abi.js";
import { CompletionChannel } from "./channel.js";
import { CompletionQueue } from "./cq.js";
import { AtomicCap, DeviceCapFlags, EventType, LinkLayer, PortState, QpType, WrOpcode } from "./enums.js";
import { check, fail } from "./errors.js";
import { AsyncEvent } from "./events.js";
import { formatGid, parseGid } from "../net/gid.js";
import { ROCE_V2_PORT } from "../net/datagram.js";
import { DeviceMemory } from "./memory.js";
import { ProtectionDomain } from "./pd.js";
import type { QueuePair } from "./qp.js";
import type { SharedReceiveQueue } from "./srq.js";
import { PacketPort, type Clock, type Link } from "../link/port.js";
import { gidToAddress } from "../net/gid.js";
import { Counter } from "../abi/index.js";

export interface OpenDeviceOptions {
  maxPd?: number;
  maxMr?: number;
  maxCq?: number;
  maxQp?: number;
  maxSrq?: number;
  maxAh?: number;
  maxQpWr?: number;
  maxCqe?: number;
  maxSge?: number;
  maxSrqWr?: number;
  maxSrqSge?: number;
  maxInlineData?: number;
  /**
   * bytes of linear memory for memory regions (default 16 MiB): the most all MRs
   * together can hold, and max_mr_size. Up to the wasm32 limit: a device's memory
   * (this, ringArenaBytes and the pools) must stay under 3.75 GiB (ENOMEM).
   */
  mrArenaBytes?: number;
  /** memory windows (default 4096) */
  maxMw?: number;
  /** multicast groups (default 64) and QPs attached per group (default 56, as rxe) */
  maxMcastGrp?: number;
  maxMcastQpAttach?: number;
  /** bytes of linear memory for SQ/RQ/SRQ/CQ rings (default 16 MiB) */
  ringArenaBytes?: number;
  /** lowest QP number (default 17, as rxe) */
  qpnBase?: number;
  /**
   * QPNs are spread over qpnBase .. qpnBase + qpnCount − 1 by a random bijection drawn at open, so
   * they are no function of open order (default: the rest of the 24-bit space; at least maxQp)
   */
  qpnCount?: number;
  /**
   * fills its argument with random bytes: MR key bits, the QPN map and where MRs start come from it
   * (default crypto.getRandomValues; the seeded simulated wire passes its PRNG so runs repeat)
   */
  entropy?: (bytes: Uint8Array) => void;
  /** async event ring slots (default 1024) */
  eventRingSize?: number;
  /** GID table; default one link-local GID derived from the node GUID */
  gids?: (string | Uint8Array)[];
  /** node GUID; default random */
  nodeGuid?: bigint;
  /** active MTU of the port (ibv_mtu, default MTU_1024 as rxe on a 1500-byte link) */
  activeMtu?: number;
  /** allow qkeys with bit 31 set (the caller has CAP_NET_RAW); default false */
  privilegedQkey?: boolean;
  /** TX descriptor ring size (a power of two, default 1024) */
  txRingSize?: number;
  /** local UDP port the device's ICRCs assume as source port (default 4791) */
  port?: number;
  /**
   * UDP source port of each QP's packets: "per-qp" (default) the one Linux rxe gives the QP
   * (0xC000 + hash_32(qpn, 14) at create, rdma_get_udp_sport(flow label, qpn, dest qpn) at RTR),
   * "device" every QP from `port`. The Node host sends "per-qp" from a pool of sockets (and falls
   * back to the device's port per QP when it cannot bind one); a tunnel device is always "device".
   */
  udpSourcePorts?: "per-qp" | "device";
}

/** The CQEs a CQ may be created with by default (rxe's RXE_MAX_CQE): ibv_create_cq beyond it is EINVAL. */
export const DEFAULT_MAX_CQE = 32767;

/** The device's completion vectors (ibv_context's num_comp_vectors; rxe's is 1): vector 0 only. */
export const NUM_COMP_VECTORS = 1;

const DEFAULTS = {
  maxPd: 1024,
  maxMr: 16384,
  maxCq: 1024,
  maxQp: 256,
  maxSrq: 256,
  maxAh: 4096,
  maxQpWr: 16384,
  maxCqe: DEFAULT_MAX_CQE,
  maxSge: 32,
  maxSrqWr: 16384,
  maxSrqSge: 27,
  maxInlineData: 512,
  mrArenaBytes: 16 << 20,
  maxMw: 4096,
  maxMcastGrp: 64,
  maxMcastQpAttach: 56,
  ringArenaBytes: 16 << 20,
  qpnBase: 17,
  eventRingSize: 1024,
  activeMtu: 3,
  txRingSize: 1024,
  port: ROCE_V2_PORT,
} as const;

const MAX_RD_ATOM = 128;
const MAX_MTU = 5;
const MAX_MSG_SZ = 0x80000000;
export const VENDOR_ID = 0xffffff;
/** IB_PORT_CM_SUP: port_cap_flags bit 16 */
export const PORT_CM_SUP = 1 << 16;

export interface DeviceAttr {
  fwVer: string;
  nodeGuid: bigint;
  sysImageGuid: bigint;
  maxMrSize: bigint;
  pageSizeCap: bigint;
  vendorId: number;
  vendorPartId: number;
  hwVer: number;
  maxQp: number;
  maxQpWr: number;
  deviceCapFlags: number;
  maxSge: number;
  maxSgeRd: number;
  maxCq: number;
  maxCqe: number;
  maxMr: number;
  maxPd: number;
  maxQpRdAtom: number;
  maxEeRdAtom: number;
  maxResRdAtom: number;
  maxQpInitRdAtom: number;
  maxEeInitRdAtom: number;
  atomicCap: number;
  maxEe: number;
  maxRdd: number;
  maxMw: number;
  maxRawIpv6Qp: number;
  maxRawEthyQp: number;
  maxMcastGrp: number;
  maxMcastQpAttach: number;
  maxTotalMcastQpAttach: number;
  maxAh: number;
  maxFmr: number;
  maxMapPerFmr: number;
  maxSrq: number;
  maxSrqWr: number;
  maxSrqSge: number;
  maxPkeys: number;
  localCaAckDelay: number;
  physPortCnt: number;
}

export interface PortAttr {
  state: number;
  maxMtu: number;
  activeMtu: number;
  gidTblLen: number;
  portCapFlags: number;
  maxMsgSz: number;
  badPkeyCntr: number;
  qkeyViolCntr: number;
  pkeyTblLen: number;
  lid: number;
  smLid: number;
  lmc: number;
  maxVlNum: number;
  smSl: number;
  subnetTimeout: number;
  initTypeReply: number;
  activeWidth: number;
  activeSpeed: number;
  physState: number;
  linkLayer: number;
}

/** Opens a device on an instantiated core or a compiled module (platform-neutral). */
export async function openDeviceWith(source: WebAssembly.Module | BufferSource, options: OpenDeviceOptions = {}): Promise<Device> {
  const core = (await instantiateCore(source)) as VerbsCore;
  return new Device(core, options);
}

function cryptoEntropy(bytes: Uint8Array): void {
  globalThis.crypto.getRandomValues(bytes);
}

function randomGuid(): bigint {
  const b = new Uint8Array(8);
  globalThis.crypto.getRandomValues(b);
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v;
}

export class Device extends EventTarget {
  readonly mem: DeviceMemory;
  private readonly opts: Required<Omit<OpenDeviceOptions, "gids" | "nodeGuid" | "privilegedQkey" | "qpnCount" | "entropy" | "udpSourcePorts">>;
  private readonly entropy: (bytes: Uint8Array) => void;
  readonly nodeGuid: bigint;
  private readonly gidCount: number;
  private pendingEvents: AsyncEvent[] = [];
  /** live objects by handle / QP number, for events and lookups */
  readonly qpsByNum = new Map<number, QueuePair>();
  readonly cqs = new Map<number, CompletionQueue>();
  readonly srqs = new Map<number, SharedReceiveQueue>();
  private cqWaiters = new Set<CompletionQueue>();

  constructor(readonly core: VerbsCore, options: OpenDeviceOptions = {}) {
    super();
    this.mem = new DeviceMemory(core.memory);
    const o = { ...DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as Device["opts"];
    this.opts = o;
    this.nodeGuid = options.nodeGuid ?? randomGuid();
    const gids = options.gids?.map(parseGid) ?? [this.linkLocalGid()];
    if (gids.length > GID_TABLE_LEN) fail("ibv_open_device", "EINVAL", `at most ${GID_TABLE_LEN} GIDs`);
    this.gidCount = gids.length;
    // the WR opcodes each QP type takes, asked once here: a post then makes no call for it
    for (const type of [QpType.RC, QpType.UC, QpType.UD]) for (const op of Object.values(WrOpcode)) this.wrClass(op, type);
    const c = core.dev_config();
    const m = this.mem;
    m.setU32(c + Cfg.MAX_PD, o.maxPd);
    m.setU32(c + Cfg.MAX_MR, o.maxMr);
    m.setU32(c + Cfg.MAX_CQ, o.maxCq);
    m.setU32(c + Cfg.MAX_QP, o.maxQp);
    m.setU32(c + Cfg.MAX_SRQ, o.maxSrq);
    m.setU32(c + Cfg.MAX_AH, o.maxAh);
    m.setU32(c + Cfg.MAX_QP_WR, o.maxQpWr);
    m.setU32(c + Cfg.MAX_CQE, o.maxCqe);
    m.setU32(c + Cfg.MAX_SGE, o.maxSge);
    m.setU32(c + Cfg.MAX_SRQ_WR, o.maxSrqWr);
    m.setU32(c + Cfg.MAX_SRQ_SGE, o.maxSrqSge);
    m.setU32(c + Cfg.MAX_INLINE, o.maxInlineData);
    if (!Number.isInteger(o.mrArenaBytes) || o.mrArenaBytes < 0 || o.mrArenaBytes > 0xffffffff) {
      fail("ibv_open_device", "EINVAL", `mrArenaBytes ${o.mrArenaBytes}: 0 .. 4294967295`);
    }
    m.setU32(c + Cfg.MR_ARENA, o.mrArenaBytes);
    m.setU32(c + Cfg.MAX_MW, o.maxMw);
    m.setU32(c + Cfg.MAX_MCAST_GRP, o.maxMcastGrp);
    m.setU32(c + Cfg.MAX_MCAST_QP_ATTACH, o.maxMcastQpAttach);
    m.setU32(c + Cfg.RING_ARENA, o.ringArenaBytes);
    m.setU32(c + Cfg.QPN_BASE, o.qpnBase);
    m.setU32(c + Cfg.QPN_COUNT, options.qpnCount ?? Math.max(0, 0xffffff - o.qpnBase));
    m.setU32(c + Cfg.EVENT_CAP, o.eventRingSize);
    m.setU32(c + Cfg.MAX_RD_ATOM, MAX_RD_ATOM);
    m.setU32(c + Cfg.MAX_MTU, MAX_MTU);
    m.setU32(c + Cfg.ACTIVE_MTU, o.activeMtu);
    m.setU32(c + Cfg.GID_COUNT, gids.length);
    const sport = options.udpSourcePorts ?? "per-qp";
    if (sport !== "per-qp" && sport !== "device") fail("ibv_open_device", "EINVAL", `udpSourcePorts ${String(sport)}: "per-qp" or "device"`);
    m.setU32(c + Cfg.FLAGS, (options.privilegedQkey ? CFG_FLAG_PRIVILEGED_QKEY : 0) | (sport === "device" ? CFG_FLAG_DEVICE_SPORT : 0));
    const g = core.dev_gids();
    gids.forEach((gid, i) => m.u8.set(gid, g + 16 * i));
    this.entropy = options.entropy ?? cryptoEntropy;
    this.refillEntropy();
    const opened = core.dev_open();
    if (opened === -12) {
      fail("ibv_open_device", "ENOMEM", `device memory too large: mrArenaBytes ${o.mrArenaBytes} + ringArenaBytes ${o.ringArenaBytes} + pools exceed the wasm32 limit (3.75 GiB carved at open)`);
    }
    check("ibv_open_device", opened);
    // The packet path is carved right after the device, before any MR view exists.
    check("ibv_open_device", core.transport_open(o.txRingSize, o.port));
  }

  /** The device's UDP port: the source port of every QP's packets under udpSourcePorts "device" (OpenDeviceOptions.port). */
  get udpPort(): number {
    return this.opts.port;
  }

  /** Tops up the device's entropy pool when it runs low (before verbs that draw from it: reg_mr, create_qp). */
  refillEntropy(): void {
    const core = this.core;
    if (core.entropy_avail() >= core.entropy_low()) return;
    const fresh = new Uint8Array(core.entropy_cap());
    this.entropy(fresh); // into a plain buffer: getRandomValues refuses views of shared memory
    this.mem.u8.set(fresh, core.entropy_pool());
    core.entropy_filled(fresh.length);
  }

  /**
   * True when a worker thread runs this device (openDevice's `worker` option): the verbs here
   * post and poll through shared rings, the worker owns the progress, the socket and the timers.
   */
  worker = false;
  /** Why a device asked for with `worker: true` runs on this thread instead (no SharedArrayBuffer, …). */
  workerFallback: string | undefined;
  /**
   * @internal A worker device's brief look for a completion before a CompletionQueue.next() sleeps
   * (host/core/worker/app-spin.ts): true when the CQ got one meanwhile. Undefined: next() sleeps at once.
   */
  awaitSpin: ((cq: CompletionQueue) => boolean) | undefined;

  /** The link this device sends and receives on (the simulated wire, UDP, a tunnel). */
  port: PacketPort | undefined;

  /** Binds the device to a link; `clock` drives its timers (a virtual clock on the simulated wire). */
  attach(link: Link, clock: Clock): PacketPort {
    if (this.port) fail("attach", "EBUSY", "device is already attached to a link");
    this.port = new PacketPort(this.core, this.mem, clock, link, () => this.pump());
    return this.port;
  }

  /** ibv_close_device: stops the device's timer and releases its link (the 'close' event). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.port?.close();
    this.dispatchEvent(new Event("close"));
  }
  closed = false;

  /** The device's time in µs (its link's clock; 0 before it is attached). */
  now(): number {
    return this.port ? this.port.clock.now() : 0;
  }

  private linkLocalGid(): Uint8Array {
    const b = new Uint8Array(16);
    b[0] = 0xfe;
    b[1] = 0x80;
    for (let i = 0; i < 8; i++) b[8 + i] = Number((this.nodeGuid >> BigInt(56 - 8 * i)) & 0xffn);
    return b;
  }

  /** The device's linear memory (MR bytes, rings and records live here). */
  get memory(): WebAssembly.Memory {
    return this.core.memory;
  }

  private readonly wrClasses = new Map<number, number>();

  /**
   * The class bits the core gives WR opcode `op` on QP type `qpType` (`wr_class`, rxe_wr_opcode_info);
   * 0 when the type does not take it. A pure function of its arguments, asked at open for every
   * opcode and type, so a post costs no call into the core (nor a round trip to a device worker).
   */
  wrClass(op: number, qpType: number): number {
    if (!Number.isInteger(op) || op < 0 || op > 0xff) return 0;
    const key = (qpType << 8) | op;
    let c = this.wrClasses.get(key);
    if (c === undefined) this.wrClasses.set(key, (c = this.core.wr_class(op, qpType) >>> 0));
    return c;
  }

  /** Runs a device call, then drains the event ring and wakes CQ waiters. */
  call<T>(fn: () => T): T {
    try {
      return fn();
    } finally {
      // service() drains the TX ring and re-arms the timer, then calls pump().
      if (this.port) this.port.service();
      else this.pump();
    }
  }

  /** Drains async events and completion notifications; cheap when idle. */
  pump(): void {
    const r = this.core.dev_events();
    const m = this.mem;
    let c = m.loadIndex(r + Ring.CONS);
    const p = m.loadIndex(r + Ring.PROD);
    if (c !== p) {
      const cap = m.u32(r + Ring.CAP);
      for (; c !== p; c = (c + 1) >>> 0) {
        const e = r + Ring.DATA + (c & (cap - 1)) * Ev.SIZE;
        this.queueEvent(m.u32(e + Ev.TYPE) as EventType, m.u32(e + Ev.ELEMENT), m.u32(e + Ev.INFO));
      }
      m.storeIndex(r + Ring.CONS, c);
    }
    if (this.cqWaiters.size) for (const cq of [...this.cqWaiters]) cq.wake();
  }

  private queueEvent(type: EventType, element: number, info: number): void {
    let qp: QueuePair | undefined, cq: CompletionQueue | undefined, srq: SharedReceiveQueue | undefined, portNum: number | undefined;
    switch (type) {
      case EventType.CQ_ERR:
        cq = this.cqs.get(element);
        break;
      case EventType.SRQ_ERR:
      case EventType.SRQ_LIMIT_REACHED:
        srq = this.srqs.get(element);
        break;
      case EventType.PORT_ACTIVE:
      case EventType.PORT_ERR:
      case EventType.GID_CHANGE:
      case EventType.DEVICE_FATAL:
        portNum = element;
        break;
      default:
        qp = this.qpsByNum.get(element);
    }
    const ev = new AsyncEvent({ eventType: type, qp, cq, srq, portNum, element, info });
    if (this.pendingEvents.push(ev) === 1) {
      queueMicrotask(() => {
        const list = this.pendingEvents;
        this.pendingEvents = [];
        for (const e of list) this.dispatchEvent(e);
      });
    }
  }

  /** Node-style subscription; same as addEventListener('event', …). */
  on(type: "event", listener: (ev: AsyncEvent) => void): this {
    this.addEventListener(type, listener as EventListener);
    return this;
  }
  off(type: "event", listener: (ev: AsyncEvent) => void): this {
    this.removeEventListener(type, listener as EventListener);
    return this;
  }

  /** @internal CQs with a pending next() */
  watchCq(cq: CompletionQueue, on: boolean): void {
    if (on) this.cqWaiters.add(cq);
    else this.cqWaiters.delete(cq);
  }

  cfg(off: number): number {
    return this.mem.u32(this.core.dev_config() + off);
  }

  /** ibv_query_device */
  query(): DeviceAttr {
    const o = this.opts;
    return {
      fwVer: "0.1.0",
      nodeGuid: this.nodeGuid,
      sysImageGuid: this.nodeGuid,
      maxMrSize: BigInt(o.mrArenaBytes),
      pageSizeCap: 0xfffffffffffff000n,
      vendorId: VENDOR_ID,
      vendorPartId: 0,
      hwVer: 0,
      maxQp: o.maxQp,
      maxQpWr: o.maxQpWr,
      deviceCapFlags:
        DeviceCapFlags.BAD_PKEY_CNTR | DeviceCapFlags.BAD_QKEY_CNTR | DeviceCapFlags.UD_AV_PORT_ENFORCE |
        DeviceCapFlags.PORT_ACTIVE_EVENT | DeviceCapFlags.SYS_IMAGE_GUID | DeviceCapFlags.RC_RNR_NAK_GEN |
        DeviceCapFlags.SRQ_RESIZE | DeviceCapFlags.MEM_WINDOW | DeviceCapFlags.MEM_MGT_EXTENSIONS |
        DeviceCapFlags.MEM_WINDOW_TYPE_2B,
      maxSge: o.maxSge,
      maxSgeRd: o.maxSge,
      maxCq: o.maxCq,
      maxCqe: o.maxCqe,
      maxMr: o.maxMr,
      maxPd: o.maxPd,
      maxQpRdAtom: MAX_RD_ATOM,
      maxEeRdAtom: 0,
      maxResRdAtom: MAX_RD_ATOM * o.maxQp,
      maxQpInitRdAtom: MAX_RD_ATOM,
      maxEeInitRdAtom: 0,
      atomicCap: AtomicCap.HCA,
      maxEe: 0,
      maxRdd: 0,
      maxMw: o.maxMw,
      maxRawIpv6Qp: 0,
      maxRawEthyQp: 0,
      maxMcastGrp: o.maxMcastGrp,
      maxMcastQpAttach: o.maxMcastQpAttach,
      maxTotalMcastQpAttach: o.maxMcastGrp * o.maxMcastQpAttach,
      maxAh: o.maxAh,
      maxFmr: 0,
      maxMapPerFmr: 0,
      maxSrq: o.maxSrq,
      maxSrqWr: o.maxSrqWr,
      maxSrqSge: o.maxSrqSge,
      maxPkeys: MAX_PKEYS,
      localCaAckDelay: 15,
      physPortCnt: 1,
    };
  }

  /** ibv_query_port: port 1 only (EINVAL otherwise, as ib_query_port). */
  queryPort(portNum = 1): PortAttr {
    if (portNum !== 1) fail("ibv_query_port", "EINVAL", `no port ${portNum}`);
    // the port's P_Key and Q_Key violation counters are the device's drop counters (16 bits, saturating)
    const base = this.core.dev_counters();
    const sat = (i: number): number => Math.min(0xffff, Number(this.mem.u64(base + 8 * i)));
    return {
      state: PortState.ACTIVE,
      maxMtu: MAX_MTU,
      activeMtu: this.opts.activeMtu,
      gidTblLen: GID_TABLE_LEN,
      portCapFlags: PORT_CM_SUP, // rxe's RXE_PORT_CAP_FLAGS: the port has a CM on QP1
      maxMsgSz: MAX_MSG_SZ,
      badPkeyCntr: sat(Counter.BAD_PKEY),
      qkeyViolCntr: sat(Counter.BAD_QKEY),
      pkeyTblLen: 1,
      lid: 0,
      smLid: 0,
      lmc: 0,
      maxVlNum: 1,
      smSl: 0,
      subnetTimeout: 0,
      initTypeReply: 0,
      activeWidth: 1,
      activeSpeed: 1,
      physState: 5,
      linkLayer: LinkLayer.ETHERNET,
    };
  }

  /** ibv_query_gid: the GID at `index` as text; EINVAL outside the table, all-zero for empty entries. */
  queryGid(index: number, portNum = 1): string {
    if (portNum !== 1) fail("ibv_query_gid", "EINVAL", `no port ${portNum}`);
    if (!Number.isInteger(index) || index < 0 || index >= GID_TABLE_LEN) fail("ibv_query_gid", "EINVAL", `index ${index}`);
    const g = this.core.dev_gids() + 16 * index;
    return formatGid(this.mem.u8.slice(g, g + 16));
  }

  /** Number of valid GID table entries. */
  get gidTableSize(): number {
    return this.gidCount;
  }

  /** ibv_alloc_pd */
  allocPd(): ProtectionDomain {
    const h = check("ibv_alloc_pd", this.call(() => this.core.pd_alloc()));
    return new ProtectionDomain(this, h);
  }

  /** ibv_create_cq: `cqe` in 1..maxCqe; the CQ may hold more (cq.cqe). */
  createCq(cqe: number, opts: { channel?: CompletionChannel; compVector?: number } = {}): CompletionQueue {
    const verb = "ibv_create_cq";
    if (!Number.isInteger(cqe)) fail(verb, "EINVAL", "cqe must be an integer");
    const ch = opts.channel;
    if (ch && (ch.device !== this || ch.isDestroyed)) fail(verb, "EINVAL", "channel of another device or destroyed");
    // ib core refuses a vector past num_comp_vectors with EINVAL
    const vector = opts.compVector ?? 0;
    if (!Number.isInteger(vector) || vector < 0 || vector >= NUM_COMP_VECTORS) fail(verb, "EINVAL", `comp_vector ${opts.compVector}`);
    const h = check(verb, this.call(() => this.core.cq_create(cqe | 0)));
    const cq = new CompletionQueue(this, h, ch);
    this.cqs.set(h, cq);
    return cq;
  }

  /** ibv_create_comp_channel */
  createCompChannel(): CompletionChannel {
    return new CompletionChannel(this);
  }

  /** The counters block (rxe hw counters plus drop reasons) by name. */
  queryCounters(): Record<string, number> {
    const namesPtr = this.core.dev_counter_names();
    const len = this.mem.u32(namesPtr - 4) >>> 1;
    const names = String.fromCharCode(...new Uint16Array(this.memory.buffer.slice(namesPtr, namesPtr + 2 * len))).split(",");
    const base = this.core.dev_counters();
    const out: Record<string, number> = {};
    names.forEach((n, i) => (out[n] = Number(this.mem.u64(base + 8 * i))));
    return out;
  }

  /** Multicast groups some QP is attached to: group address (as links name it) -> attached QPs. */
  private readonly mcast = new Map<string, Set<QueuePair>>();
  private readonly mcastListeners = new Set<(address: string, join: boolean) => void>();

  /**
   * Links that must join multicast groups (the Node UDP socket, the simulated
   * wire) listen here: `fn(address, true)` when the first QP attaches to a group,
   * `fn(address, false)` when the last one detaches; called at once for the
   * groups already joined. Returns the function that stops listening.
   */
  onMulticast(fn: (address: string, join: boolean) => void): () => void {
    this.mcastListeners.add(fn);
    for (const a of this.mcast.keys()) fn(a, true);
    return () => this.mcastListeners.delete(fn);
  }

  /** The multicast groups joined, as addresses. */
  get multicastGroups(): string[] {
    return [...this.mcast.keys()];
  }

  /** @internal qp.attachMcast succeeded */
  multicastAttached(gid: Uint8Array, qp: QueuePair): void {
    const a = gidToAddress(gid);
    let s = this.mcast.get(a);
    if (!s) {
      s = new Set();
      this.mcast.set(a, s);
      for (const fn of this.mcastListeners) fn(a, true);
    }
    s.add(qp);
  }

  /** @internal qp.detachMcast succeeded */
  multicastDetached(gid: Uint8Array, qp: QueuePair): void {
    const a = gidToAddress(gid);
    const s = this.mcast.get(a);
    if (!s) return;
    s.delete(qp);
    if (s.size === 0) {
      this.mcast.delete(a);
      for (const fn of this.mcastListeners) fn(a, false);
    }
  }

  /** Attributes this device was opened with (limits). */
  get limits(): Readonly<Device["opts"]> {
    return this.opts;
  }
}

// librdmacm's events (rdma_cma.h enum rdma_cm_event_type, struct rdma_cm_event)
// and the event channel they queue on (rdma_create_event_channel,
// rdma_get_cm_event, rdma_ack_cm_event), with librdmacm's numbering and names.
import type { AhAttr } from "../verbs/av.js";
import type { RdmaCmId } from "./rdma-cm.js";

export const RdmaCmEventType = {
  ADDR_RESOLVED: 0,
  ADDR_ERROR: 1,
  ROUTE_RESOLVED: 2,
  ROUTE_ERROR: 3,
  CONNECT_REQUEST: 4,
  CONNECT_RESPONSE: 5,
  CONNECT_ERROR: 6,
  UNREACHABLE: 7,
  REJECTED: 8,
  ESTABLISHED: 9,
  DISCONNECTED: 10,
  DEVICE_REMOVAL: 11,
  MULTICAST_JOIN: 12,
  MULTICAST_ERROR: 13,
  ADDR_CHANGE: 14,
  TIMEWAIT_EXIT: 15,
} as const;
export type RdmaCmEventType = (typeof RdmaCmEventType)[keyof typeof RdmaCmEventType];
const EVENT_NAMES = Object.keys(RdmaCmEventType) as readonly (keyof typeof RdmaCmEventType)[];

/** rdma_event_str: "RDMA_CM_EVENT_ESTABLISHED", or "UNKNOWN EVENT". */
export function eventStr(event: number): string {
  const n = EVENT_NAMES[event];
  return n ? `RDMA_CM_EVENT_${n}` : "UNKNOWN EVENT";
}

/** struct rdma_conn_param as an event carries it (RC). */
export interface ConnEventParam {
  /** the message's private data after what rdma_cm put in front (a view of the whole field) */
  privateData: Uint8Array | undefined;
  privateDataLen: number;
  responderResources: number;
  initiatorDepth: number;
  flowControl: number;
  retryCount: number;
  rnrRetryCount: number;
  srq: number;
  qpNum: number;
}

/** struct rdma_ud_param (UD). */
export interface UdEventParam {
  privateData: Uint8Array | undefined;
  privateDataLen: number;
  ahAttr: AhAttr | undefined;
  qpNum: number;
  qkey: number;
}

export interface RdmaCmEventInit {
  id: RdmaCmId;
  listenId?: RdmaCmId;
  event: RdmaCmEventType;
  status?: number;
  conn?: ConnEventParam;
  ud?: UdEventParam;
  /** MULTICAST_JOIN / MULTICAST_ERROR: the join's context */
  context?: unknown;
}

/** struct rdma_cm_event */
export class RdmaCmEvent {
  readonly id: RdmaCmId;
  /** CONNECT_REQUEST: the listening ID the request came to */
  readonly listenId: RdmaCmId | undefined;
  readonly event: RdmaCmEventType;
  /** 0, a negative errno (-110 ETIMEDOUT …), or for REJECTED the IB reject reason, for UNREACHABLE after SIDR the SIDR status */
  readonly status: number;
  readonly param: { conn?: ConnEventParam; ud?: UdEventParam };
  /**
   * MULTICAST_JOIN and MULTICAST_ERROR: the context given to joinMulticast (librdmacm returns its
   * context pointer in param.ud.private_data; here it is a field of its own, since privateData holds bytes)
   */
  readonly context: unknown;
  private acked = false;

  constructor(e: RdmaCmEventInit) {
    this.id = e.id;
    this.listenId = e.listenId;
    this.event = e.event;
    this.status = e.status ?? 0;
    this.param = { conn: e.conn, ud: e.ud };
    this.context = e.context;
  }

  /** "ESTABLISHED", … */
  get eventName(): string {
    return EVENT_NAMES[this.event] ?? String(this.event);
  }

  /** rdma_ack_cm_event. A second call does nothing. */
  ack(): void {
    this.acked = true;
  }

  get isAcked(): boolean {
    return this.acked;
  }
}

/** struct rdma_event_channel: events of the IDs created on it, in order. */
export class EventChannel {
  private readonly queue: RdmaCmEvent[] = [];
  private readonly waiters: ((e: RdmaCmEvent) => void)[] = [];
  private destroyed = false;

  constructor(
    /** creates the IDs (RdmaCm.createId on this channel) */
    private readonly create: (channel: EventChannel, ps: number, context: unknown) => RdmaCmId,
    /** told when a CONNECT_REQUEST is taken off the queue (ucma gives the listener its backlog slot back) */
    private readonly taken: (e: RdmaCmEvent) => void,
  ) {}

  /** rdma_create_id(channel, &id, context, ps) */
  createId(ps: number, context?: unknown): RdmaCmId {
    return this.create(this, ps, context);
  }

  /** @internal queues an event */
  push(e: RdmaCmEvent): void {
    if (this.destroyed) return;
    const w = this.waiters.shift();
    if (w) {
      this.taken(e);
      w(e);
    } else this.queue.push(e);
  }

  /** @internal drops the queued events of one ID (rdma_destroy_id); returns them */
  purge(pred: (e: RdmaCmEvent) => boolean): RdmaCmEvent[] {
    const out: RdmaCmEvent[] = [];
    for (let i = this.queue.length - 1; i >= 0; i--) if (pred(this.queue[i]!)) out.unshift(...this.queue.splice(i, 1));
    return out;
  }

  /** rdma_get_cm_event on a non-blocking channel: the next event, or undefined (EAGAIN). */
  poll(): RdmaCmEvent | undefined {
    const e = this.queue.shift();
    if (e) this.taken(e);
    return e;
  }

  /** rdma_get_cm_event: the next event, when there is one. */
  getCmEvent(): Promise<RdmaCmEvent> {
    const e = this.poll();
    if (e) return Promise.resolve(e);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** events waiting */
  get pending(): number {
    return this.queue.length;
  }

  /** rdma_destroy_event_channel */
  destroy(): void {
    this.destroyed = true;
    this.queue.length = 0;
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }
}

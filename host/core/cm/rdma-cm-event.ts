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

/**
 * One channel's events for callers that wait on different IDs at once (a perftest run's comm and test
 * connections, an rsocket's CM events beside its CQ): it takes every event off the channel as it comes and
 * acks it, and hands each to the first wait that matches it, else holds it for the next wait that does.
 * librdmacm's own programs do this with a thread per channel (rsocket's, perftest's event loop); here it
 * is a pump on the event loop. It owns the channel's reading: nothing else may call getCmEvent on it.
 */
export class CmEventRouter {
  private readonly held: RdmaCmEvent[] = [];
  private readonly waits = new Set<{ match: (ev: RdmaCmEvent) => boolean; take: (ev: RdmaCmEvent | undefined) => void }>();
  private stopped = false;

  constructor(readonly ch: EventChannel) {
    void this.pump();
  }

  private async pump(): Promise<void> {
    while (!this.stopped) {
      let ev: RdmaCmEvent;
      try {
        ev = await this.ch.getCmEvent();
      } catch {
        return;
      }
      ev.ack();
      if (this.stopped) return;
      const w = [...this.waits].find((x) => x.match(ev));
      if (w) w.take(ev);
      else this.held.push(ev);
    }
  }

  /** A wait for the first event `match` takes; `take` is called once, with undefined when the router stops. */
  private add(match: (ev: RdmaCmEvent) => boolean, take: (ev: RdmaCmEvent | undefined) => void): () => void {
    const w = {
      match,
      take: (ev: RdmaCmEvent | undefined) => {
        this.waits.delete(w);
        take(ev);
      },
    };
    this.waits.add(w);
    return () => this.waits.delete(w);
  }

  /** A held event `match` takes, taken now; undefined if none is held. */
  take(match: (ev: RdmaCmEvent) => boolean): RdmaCmEvent | undefined {
    const i = this.held.findIndex(match);
    return i >= 0 ? this.held.splice(i, 1)[0] : undefined;
  }

  /** The first event `match` takes, held ones first; undefined after `ms` (0: no limit) or once stopped. */
  next(match: (ev: RdmaCmEvent) => boolean, ms = 0): Promise<RdmaCmEvent | undefined> {
    const held = this.take(match);
    if (held || this.stopped) return Promise.resolve(held);
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const drop = this.add(match, (ev) => {
        if (timer) clearTimeout(timer);
        resolve(ev);
      });
      if (ms > 0) {
        timer = setTimeout(() => {
          drop();
          resolve(undefined);
        }, ms);
      }
    });
  }

  /** The first event for `id` (any ID when undefined) among `kinds`; undefined after `ms`. */
  wait(id: RdmaCmId | undefined, kinds: readonly number[], ms: number): Promise<RdmaCmEvent | undefined> {
    return this.next((e) => (id === undefined || e.id === id) && kinds.includes(e.event), Math.max(1, ms));
  }

  /**
   * `other` (a wait for a completion, say), or the event `match` takes if that comes first (undefined if
   * the router stops first). A wait the event won stays pending for the caller to take later; an event
   * `other` beat, or came as `other` failed, is held for the next wait.
   */
  async race<T>(other: Promise<T>, match: (ev: RdmaCmEvent) => boolean): Promise<T | RdmaCmEvent | undefined> {
    const held = this.take(match);
    if (held || this.stopped) return held;
    let drop = (): void => {};
    let taken: RdmaCmEvent | undefined;
    const ev = new Promise<RdmaCmEvent | undefined>((resolve) => {
      drop = this.add(match, (e) => resolve((taken = e)));
    });
    let won: T | RdmaCmEvent | undefined;
    try {
      return (won = await Promise.race([other, ev]));
    } finally {
      drop();
      // `other` won (or failed), and the event came between that and this line (the pump runs in
      // between, and this wait was still listed): it is held for the next wait, not lost with this one
      if (taken !== undefined && won !== taken) this.held.unshift(taken);
    }
  }

  /** Stops taking events; the waits under way end with undefined. */
  stop(): void {
    this.stopped = true;
    for (const w of [...this.waits]) w.take(undefined);
  }
}

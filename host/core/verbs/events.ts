// Asynchronous events (ibv_async_event): drained from the device's event ring
// after each call into the device and delivered on a microtask, as EventTarget
// events of type 'event' (works the same in browsers and Node).
import { EventType, nameOf } from "./enums.js";
import type { CompletionQueue } from "./cq.js";
import type { QueuePair } from "./qp.js";
import type { SharedReceiveQueue } from "./srq.js";

export interface AsyncEventInit {
  eventType: EventType;
  qp?: QueuePair;
  cq?: CompletionQueue;
  srq?: SharedReceiveQueue;
  portNum?: number;
  /** raw element field of the record (QP number, CQ/SRQ handle, port) */
  element: number;
  info: number;
}

export class AsyncEvent extends Event {
  readonly eventType: EventType;
  readonly qp?: QueuePair;
  readonly cq?: CompletionQueue;
  readonly srq?: SharedReceiveQueue;
  readonly portNum?: number;
  readonly element: number;
  readonly info: number;

  constructor(init: AsyncEventInit) {
    super("event");
    this.eventType = init.eventType;
    this.qp = init.qp;
    this.cq = init.cq;
    this.srq = init.srq;
    this.portNum = init.portNum;
    this.element = init.element;
    this.info = init.info;
  }

  /** 'CQ_ERR', 'SRQ_LIMIT_REACHED', … (ibv_event_type_str without IBV_EVENT_). */
  get eventName(): string {
    return nameOf(EventType, this.eventType);
  }
}

// Asynchronous events (ibv_event_type numbering): the device appends records to
// the event ring; the host drains it after each call into the device. A full
// ring never overwrites: the event is counted as lost instead.
import { count, Counter } from "./counters";
import { ringCap, ringCount, ringEntry, ringProd, ringSetProd } from "../mem/ring";
import { EV_TYPE, EV_ELEMENT, EV_INFO } from "../abi/events";

// ABI constants: generated from abi/schema.json into assembly/abi/events.ts; re-exported for this file's importers.
export {
  EVENT_CQ_ERR, EVENT_QP_FATAL, EVENT_QP_REQ_ERR, EVENT_QP_ACCESS_ERR, EVENT_COMM_EST, EVENT_SQ_DRAINED,
  EVENT_PATH_MIG, EVENT_PATH_MIG_ERR, EVENT_DEVICE_FATAL, EVENT_PORT_ACTIVE, EVENT_PORT_ERR, EVENT_SRQ_ERR,
  EVENT_SRQ_LIMIT_REACHED, EVENT_QP_LAST_WQE_REACHED, EV_TYPE, EV_ELEMENT, EV_INFO, EV_SIZE,
} from "../abi/events";

let eventRing: usize = 0;

export function eventsAttach(r: usize): void { eventRing = r; }
export function eventsRing(): usize { return eventRing; }

export function raiseEvent(type: u32, element: u32, info: u32): void {
  const r = eventRing;
  if (!r) return;
  if (ringCount(r) >= ringCap(r)) {
    count(Counter.EVENTS_LOST);
    return;
  }
  const i = ringProd(r);
  const e = ringEntry(r, i);
  store<u32>(e + EV_TYPE, type);
  store<u32>(e + EV_ELEMENT, element);
  store<u32>(e + EV_INFO, info);
  store<u32>(e + 12, 0);
  ringSetProd(r, i + 1);
}

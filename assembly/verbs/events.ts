// Asynchronous events (ibv_event_type numbering): the device appends records to
// the event ring; the host drains it after each call into the device. A full
// ring never overwrites: the event is counted as lost instead.
import { count, Counter } from "./counters";
import { ringCap, ringCount, ringEntry, ringProd, ringSetProd } from "../mem/ring";

export const EVENT_CQ_ERR: u32 = 0;
export const EVENT_QP_FATAL: u32 = 1;
export const EVENT_QP_REQ_ERR: u32 = 2;
export const EVENT_QP_ACCESS_ERR: u32 = 3;
export const EVENT_COMM_EST: u32 = 4;
export const EVENT_SQ_DRAINED: u32 = 5;
export const EVENT_PATH_MIG: u32 = 6;
export const EVENT_PATH_MIG_ERR: u32 = 7;
export const EVENT_DEVICE_FATAL: u32 = 8;
export const EVENT_PORT_ACTIVE: u32 = 9;
export const EVENT_PORT_ERR: u32 = 10;
export const EVENT_SRQ_ERR: u32 = 14;
export const EVENT_SRQ_LIMIT_REACHED: u32 = 15;
export const EVENT_QP_LAST_WQE_REACHED: u32 = 16;

// Event record, 16 bytes.
export const EV_TYPE: usize = 0; // u32 event type
export const EV_ELEMENT: usize = 4; // u32 QP number, CQ/SRQ handle or port number
export const EV_INFO: usize = 8; // u32 detail (e.g. CQ producer index at overflow)
export const EV_SIZE: u32 = 16;

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

// A QP's place in the device's scheduler: its slot in the TX arbiter and its two
// timers. Every engine queues a QP and arms its timers through these, and the
// progress loop (engine.ts) maps a timer that fired back to its QP; this file
// imports no engine, so none of them has to import another to get here.
import { arbiterSchedule } from "../sched/arbiter";
import { timerCancel } from "../sched/timers";
import { qpAt, qpIndex } from "../verbs/qp";

/** Timers per QP: retransmit (even id) and RNR (odd id). */
export const TIMERS_PER_QP: u32 = 2;

@inline export function retransTimerId(qp: usize): i32 { return <i32>(qpIndex(qp) << 1); }
@inline export function rnrTimerId(qp: usize): i32 { return <i32>((qpIndex(qp) << 1) | 1); }

/** The QP record a timer id belongs to. */
@inline export function timerQp(id: i32): usize { return qpAt(<u32>id >> 1); }
@inline export function isRnrTimer(id: i32): bool { return (id & 1) != 0; }

/** Cancels both timers of `qp` (it leaves RTS for good). */
export function qpStopTimers(qp: usize): void {
  timerCancel(retransTimerId(qp));
  timerCancel(rnrTimerId(qp));
}

/** Queues `qp` for the sender (it has something to send). */
@inline export function scheduleQp(qp: usize): void { arbiterSchedule(qpIndex(qp)); }

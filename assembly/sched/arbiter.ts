// The TX arbiter: one FIFO of QPs that have something to send (requests,
// responses, ACKs). rxe arbitrates by queuing rather than by per-QP tasks; here
// a QP is queued at most once, and the sender takes the next QP in turn, sends a
// bounded burst from it and re-queues it if it still has work. Storage is carved
// once at open.
import { allocZeroed } from "../mem/alloc";

let ring: usize = 0;
let queued: usize = 0;
let cap: u32 = 0;
let head: u32 = 0;
let tail: u32 = 0;

export function arbiterInit(maxQp: u32): void {
  ring = heap.alloc(<usize>maxQp << 2);
  queued = allocZeroed(<usize>maxQp);
  cap = maxQp;
  head = 0;
  tail = 0;
}

/** Queues QP index `qp` unless it is queued already. */
export function arbiterSchedule(qp: u32): void {
  assert(qp < cap, "qp index out of range");
  if (load<u8>(queued + qp)) return;
  store<u8>(queued + qp, 1);
  store<u32>(ring + (<usize>(tail % cap) << 2), qp);
  tail++;
}

/** Takes the next queued QP index, or -1 when none waits. */
export function arbiterNext(): i32 {
  if (head == tail) return -1;
  const qp = load<u32>(ring + (<usize>(head % cap) << 2));
  head++;
  store<u8>(queued + qp, 0);
  return <i32>qp;
}

export function arbiterIsQueued(qp: u32): bool {
  return load<u8>(queued + qp) != 0;
}

export function arbiterLength(): u32 {
  return tail - head;
}

// The device-wide in-flight budget (issue 11): a device never has more
// unacknowledged RC request traffic out than the peer can buffer. The host sets
// the limit in bytes, derived from the socket buffers (0 = no limit, the
// default: the simulated wire has no buffer to overrun); every packet is charged
// at what the receiving kernel accounts for it (its skb truesize, estimated
// below), so a 64 B and a 4 KiB packet cost what they cost there.
//
// What it limits is the host's output, not the transport: an RC requester asks
// for admission before it sends PSNs it has never sent (a whole message, or the
// part up to its next AckReq packet, so every admitted run ends in a packet the
// responder acknowledges), and it gets it back as the completer sees the PSNs
// acknowledged. Retransmissions go out without asking (their PSNs were
// admitted). A QP that does not fit waits in a FIFO; acknowledgements wake the
// QPs at its head, in order, while they fit: the arbiter then serves them as any
// other. While QPs wait, a QP that did not wait queues behind them (fair share).
// Whatever the limit, a QP may start when nothing is in flight, so a message
// larger than the budget still goes. RC semantics do not change: timers, ACKs,
// retries and the PSN window are the transport's, as before.
//
// Storage per QP index, carved at open (memory never grows later).
import { arbiterSchedule } from "./arbiter";
import { allocZeroed } from "../mem/alloc";
import { psn_distance, psn_next } from "../wire/psn";

const F_VALID: u8 = 1; // admitEnd holds the end of what was admitted
const F_WAITING: u8 = 2; // in the wait FIFO
const F_WOKEN: u8 = 4; // woken from the FIFO: may start ahead of the QPs still waiting

let cap: u32 = 0;
let flags: usize = 0; // u8 per QP
let admitEnd: usize = 0; // u32 per QP: first PSN not admitted
let charged: usize = 0; // u32 per QP: packets charged (admitted, not yet acknowledged)
let unit: usize = 0; // u32 per QP: bytes charged per packet
let need: usize = 0; // u32 per QP: bytes a waiting QP asked for
let needPkts: usize = 0; // u32 per QP: packets it asked for
let fifo: usize = 0; // u32 x fifoCap: waiting QP indices
let fifoCap: u32 = 0;
let head: u32 = 0;
let tail: u32 = 0;
let waiting: u32 = 0;

let limit: u64 = 0;
let inflight: u64 = 0;
// the same in packets: what bounds the receiver's queueing delay (each packet costs it CPU)
let limitPkts: u32 = 0;
let inflightPkts: u32 = 0;
// counters (budget_stats)
let admits: u64 = 0;
let blocks: u64 = 0;
let wakes: u64 = 0;
let peak: u64 = 0;

export function budgetInit(maxQp: u32): void {
  cap = maxQp;
  flags = allocZeroed(<usize>maxQp);
  admitEnd = allocZeroed(<usize>maxQp << 2);
  charged = allocZeroed(<usize>maxQp << 2);
  unit = allocZeroed(<usize>maxQp << 2);
  need = allocZeroed(<usize>maxQp << 2);
  needPkts = allocZeroed(<usize>maxQp << 2);
  // a forgotten QP leaves its entry behind until it reaches the head: room for two per QP
  fifoCap = maxQp << 1;
  fifo = heap.alloc(<usize>fifoCap << 2);
  head = 0;
  tail = 0;
  waiting = 0;
  inflight = 0;
  inflightPkts = 0;
}

/**
 * What a packet of `len` UDP payload bytes costs in the receiver's socket
 * buffer: Linux charges the skb's truesize, the data rounded up to a power of
 * two with the IP/UDP headers and the skb's headroom and shared info, plus the
 * sk_buff (measured on loopback: 64 B -> 832, 1052 B -> 2304, 4124 B -> 8456).
 */
export function truesizeOf(len: u32): u32 {
  let n: u32 = len + 28 + 320;
  n = n <= 512 ? 512 : <u32>1 << (32 - clz<u32>(n - 1));
  return n + 320;
}

@inline function u32At(base: usize, idx: u32): u32 { return load<u32>(base + (<usize>idx << 2)); }
@inline function setU32(base: usize, idx: u32, v: u32): void { store<u32>(base + (<usize>idx << 2), v); }

/** Sets `idx`'s charge to `packets`, moving the device total with it. */
function setCharge(idx: u32, packets: u32): void {
  const was = u32At(charged, idx);
  const before = <u64>was * <u64>u32At(unit, idx);
  inflightPkts = inflightPkts - was + packets;
  setU32(charged, idx, packets);
  const after = <u64>packets * <u64>u32At(unit, idx);
  inflight = inflight - before + after;
  if (inflight > peak) peak = inflight;
}

/**
 * May QP `idx` send `packets` new PSNs from `psn` on (the oldest unacknowledged
 * is `compPsn`), each charged `unitBytes`? True when admitted (or already
 * admitted: a retransmission); false when it waits (it is queued to be woken).
 */
export function budgetAdmit(idx: u32, psn: u32, compPsn: u32, packets: u32, unitBytes: u32): bool {
  const f = load<u8>(flags + idx);
  if ((f & F_VALID) && psn_distance(psn, u32At(admitEnd, idx)) < 0) return true;
  const cost = <u64>packets * <u64>unitBytes;
  if (limit | limitPkts) {
    if (f & F_WAITING) return false;
    const behind = waiting > 0 && !(f & F_WOKEN);
    if (behind || (inflight > 0 && !fits(cost, packets))) {
      enqueue(idx, <u32>min<u64>(cost, 0xffffffff), packets);
      return false;
    }
  }
  // PSNs before `psn` were admitted before (or acknowledged): the charge runs from compPsn
  setU32(unit, idx, unitBytes);
  const end = psn_next(psn, packets);
  setU32(admitEnd, idx, end);
  store<u8>(flags + idx, (f | F_VALID) & ~F_WOKEN);
  const d = psn_distance(end, compPsn);
  setCharge(idx, d > 0 ? <u32>d : 0);
  admits++;
  return true;
}

/** Would `bytes` in `packets` more fit both limits? */
@inline function fits(bytes: u64, packets: u32): bool {
  return (!limit || inflight + bytes <= limit) && (!limitPkts || <u64>inflightPkts + <u64>packets <= <u64>limitPkts);
}

function enqueue(idx: u32, bytes: u32, packets: u32): void {
  setU32(need, idx, bytes);
  setU32(needPkts, idx, packets);
  store<u8>(flags + idx, (load<u8>(flags + idx) | F_WAITING) & ~F_WOKEN);
  store<u32>(fifo + (<usize>(tail % fifoCap) << 2), idx);
  tail++;
  waiting++;
  blocks++;
}

/** QP `idx` saw PSNs before `compPsn` acknowledged: its charge shrinks to what is still out. */
export function budgetAcked(idx: u32, compPsn: u32): void {
  if (!(load<u8>(flags + idx) & F_VALID)) return;
  const d = psn_distance(u32At(admitEnd, idx), compPsn);
  const left: u32 = d > 0 ? <u32>d : 0;
  if (left == u32At(charged, idx)) return;
  setCharge(idx, left);
  wake();
}

/** QP `idx` left RTS/SQD, was reset or destroyed: nothing of it is in flight any more. */
export function budgetForget(idx: u32): void {
  if (idx >= cap) return;
  if (u32At(charged, idx)) setCharge(idx, 0);
  const f = load<u8>(flags + idx);
  // a waiting entry stays in the FIFO; asking for nothing, it leaves at the head
  if (f & F_WAITING) {
    setU32(need, idx, 0);
    setU32(needPkts, idx, 0);
  }
  store<u8>(flags + idx, f & F_WAITING);
  wake();
}

/** Wakes waiting QPs from the head of the FIFO while what they asked for fits. */
function wake(): void {
  let promised: u64 = 0;
  let promisedPkts: u32 = 0;
  while (head != tail) {
    const idx = load<u32>(fifo + (<usize>(head % fifoCap) << 2));
    const f = load<u8>(flags + idx);
    if (f & F_WAITING) {
      const want = <u64>u32At(need, idx);
      const wantPkts = u32At(needPkts, idx);
      const first = inflight == 0 && promisedPkts == 0 && promised == 0;
      if (!first && !fits(promised + want, promisedPkts + wantPkts)) break;
      promised += want;
      promisedPkts += wantPkts;
      store<u8>(flags + idx, (f & ~F_WAITING) | F_WOKEN);
      waiting--;
      wakes++;
      arbiterSchedule(idx);
    }
    head++;
  }
}

/** Sets the limits, in bytes and in packets (0: none); waiting QPs are woken if they grew. */
export function budgetSetLimit(bytes: u64, packets: u32): void {
  limit = bytes;
  limitPkts = packets;
  wake();
}

export function budgetLimitPackets(): u32 { return limitPkts; }
export function budgetInflightPackets(): u32 { return inflightPkts; }

export function budgetLimit(): u64 { return limit; }
export function budgetInflight(): u64 { return inflight; }
export function budgetWaiting(): u32 { return waiting; }
export function budgetAdmits(): u64 { return admits; }
export function budgetBlocks(): u64 { return blocks; }
export function budgetWakes(): u64 { return wakes; }
export function budgetPeak(): u64 { return peak; }

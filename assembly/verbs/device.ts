// Device open: grows linear memory once (one heap.alloc) and carves every pool,
// arena and ring area out of it. Nothing allocates afterwards.
import { arenaInit, arenaListBytes } from "../mem/arena";
import { EBUSY, EINVAL, ENOMEM } from "../mem/errno";
import { mrArena, mrPoolInit, MR_MAX_INDEX, MR_SLOT } from "../mem/mr";
import { pdPoolInit, PD_SLOT } from "../mem/pd";
import { ahPoolInit, AH_SLOT } from "./ah";
import {
  cfg, CFG_EVENT_CAP, CFG_GID_COUNT, CFG_MAX_AH, CFG_MAX_CQ, CFG_MAX_MR, CFG_MAX_PD, CFG_MAX_QP, CFG_MAX_SRQ,
  CFG_FLAGS, CFG_FLAG_TRACE, CFG_MR_ARENA, CFG_QPN_BASE, CFG_QPN_COUNT, CFG_RING_ARENA, CFG_TRACE_CAP, GID_TABLE_LEN,
} from "./config";
import { entropyBelow } from "../mem/entropy";
import { countersReset } from "./counters";
import { cqPoolInit, CQ_SLOT } from "./cq";
import { eventsAttach, EV_SIZE } from "./events";
import { qpPoolInit, QP_SLOT } from "./qp";
import { nextPow2 } from "../mem/pow2";
import { ringArena, ringBytes, ringInit, RING_EVENT } from "../mem/ring";
import { srqPoolInit, SRQ_SLOT } from "./srq";
import { traceAttach, traceBytes, TRACE_ALL, TRACE_DEFAULT_CAP, TRACE_MAX_CAP } from "../trace/trace";

const ALIGN: u64 = 64;
const MAX_TOTAL: u64 = 0x7fff0000; // keep every address a positive i32 for the host
/** The MR arena starts a random number of ALIGN units (below this) into its span, so MR addresses differ per device. */
const MR_SHIFT_UNITS: u32 = 1024;

let opened = false;
let argsBlock: usize = 0;

@inline function up(n: u64): u64 { return (n + ALIGN - 1) & ~(ALIGN - 1); }

export function devOpened(): bool { return opened; }
export function devArgs(): usize { return argsBlock; }

/** dev_open: 0, -EBUSY when already open, -EINVAL for bad limits, -ENOMEM when memory cannot grow. */
export function devOpen(): i32 {
  if (opened) return -EBUSY;
  const nPd = cfg(CFG_MAX_PD), nMr = cfg(CFG_MAX_MR), nCq = cfg(CFG_MAX_CQ), nQp = cfg(CFG_MAX_QP);
  const nSrq = cfg(CFG_MAX_SRQ), nAh = cfg(CFG_MAX_AH);
  if (nMr > MR_MAX_INDEX || nQp > 0xfffff || nPd > 0xfffff || nCq > 0xfffff || nSrq > 0xfffff || nAh > 0xfffff) return -EINVAL;
  if (cfg(CFG_GID_COUNT) > GID_TABLE_LEN) return -EINVAL;
  if (cfg(CFG_QPN_BASE) < 2 || <u64>cfg(CFG_QPN_BASE) + <u64>max(cfg(CFG_QPN_COUNT), nQp) > 0xffffff) return -EINVAL; // 0xffffff: multicast
  const evCap = nextPow2(max<u32>(cfg(CFG_EVENT_CAP), 16));
  if (cfg(CFG_TRACE_CAP) > TRACE_MAX_CAP) return -EINVAL;
  const traceCap = nextPow2(cfg(CFG_TRACE_CAP) ? cfg(CFG_TRACE_CAP) : TRACE_DEFAULT_CAP);
  const ringBlocks = 2 * nQp + nCq + nSrq;
  // sizes, in carving order
  const sPd = up(<u64>nPd * PD_SLOT), sMr = up(<u64>nMr * MR_SLOT), sCq = up(<u64>nCq * CQ_SLOT);
  const sQp = up(<u64>nQp * QP_SLOT), sSrq = up(<u64>nSrq * SRQ_SLOT), sAh = up(<u64>nAh * AH_SLOT);
  const sMrList = up(arenaListBytes(nMr)), sRingList = up(arenaListBytes(ringBlocks));
  const sEv = up(ringBytes(evCap, EV_SIZE)), sArgs: u64 = 512;
  const mrShift = <u64>entropyBelow(MR_SHIFT_UNITS) * ALIGN;
  const sMrArena = up(cfg(CFG_MR_ARENA)) + mrShift, sRingArena = up(cfg(CFG_RING_ARENA)), sTrace = up(traceBytes(traceCap));
  const total = sPd + sMr + sCq + sQp + sSrq + sAh + sMrList + sRingList + sEv + sArgs + sMrArena + sRingArena + sTrace + ALIGN;
  if (total > MAX_TOTAL) return -ENOMEM;
  const pages = (total + 0xffff) >> 16;
  // One exact growth for everything, so the bump allocator below finds room
  // without growing again (and a refusal is an error code, not a trap).
  if (memory.grow(<i32>pages) < 0) return -ENOMEM;
  const base = heap.alloc(<usize>total);
  let p = <usize>up(<u64>base);
  pdPoolInit(p, nPd); p += <usize>sPd;
  mrPoolInit(p, nMr); p += <usize>sMr;
  cqPoolInit(p, nCq); p += <usize>sCq;
  qpPoolInit(p, nQp); p += <usize>sQp;
  srqPoolInit(p, nSrq); p += <usize>sSrq;
  ahPoolInit(p, nAh); p += <usize>sAh;
  const mrList = p; p += <usize>sMrList;
  const ringList = p; p += <usize>sRingList;
  ringInit(p, evCap, EV_SIZE, RING_EVENT, 0);
  eventsAttach(p); p += <usize>sEv;
  argsBlock = p; memory.fill(p, 0, <usize>sArgs); p += <usize>sArgs;
  arenaInit(mrArena, p + <usize>mrShift, <u32>(sMrArena - mrShift), mrList, nMr); p += <usize>sMrArena;
  arenaInit(ringArena, p, <u32>sRingArena, ringList, ringBlocks); p += <usize>sRingArena;
  traceAttach(p, traceCap, (cfg(CFG_FLAGS) & CFG_FLAG_TRACE) ? TRACE_ALL : 0); p += <usize>sTrace;
  countersReset();
  opened = true;
  return 0;
}

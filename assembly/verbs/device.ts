// Device open: grows linear memory once (one heap.alloc) and carves every pool,
// arena and ring area out of it. Nothing allocates afterwards.
import { arenaInit, arenaListBytes } from "../mem/arena";
import { EBUSY, EINVAL, ENOMEM } from "../mem/errno";
import { mrArena, mrPoolInit, mrZeroFrom, MR_MAX_INDEX, MR_SLOT } from "../mem/mr";
import { mwPoolInit, MW_SLOT } from "../mem/mw";
import { pdPoolInit, PD_SLOT } from "../mem/pd";
import { mcastBytes, mcastInit } from "./mcast";
import { ahPoolInit, AH_SLOT } from "./ah";
import {
  cfg, CFG_EVENT_CAP, CFG_GID_COUNT, CFG_MAX_AH, CFG_MAX_CQ, CFG_MAX_MR, CFG_MAX_PD, CFG_MAX_QP, CFG_MAX_SRQ,
  CFG_FLAGS, CFG_FLAG_TRACE, CFG_MAX_MCAST_GRP, CFG_MAX_MCAST_QP_ATTACH, CFG_MAX_MW, CFG_MR_ARENA, CFG_RING_ARENA, CFG_TRACE_CAP, GID_TABLE_LEN,
} from "./config";
import { countersReset } from "./counters";
import { cqPoolInit, CQ_SLOT } from "./cq";
import { eventsAttach, EV_SIZE } from "./events";
import { qpPoolInit, QP_SLOT } from "./qp";
import { nextPow2 } from "../mem/pow2";
import { ringArena, ringBytes, ringInit, RING_EVENT } from "../mem/ring";
import { srqPoolInit, SRQ_SLOT } from "./srq";
import { traceAttach, traceBytes, TRACE_ALL, TRACE_DEFAULT_CAP, TRACE_MAX_CAP } from "../trace/trace";

const ALIGN: u64 = 64;
// Up to the wasm32 limit: everything carved here stays below 3.75 GiB, leaving
// 256 MiB for what transport_open allocates after it (TX ring, bounce slots,
// timers, responder resources). The MR arena is carved last, so the pools,
// rings and records keep low addresses; only MR bytes (and the TX ring) may lie
// above 2 GiB, where exported addresses read as negative i32 (the host takes
// them >>> 0).
const MAX_TOTAL: u64 = 0xf0000000;

let opened = false;
let argsBlock: usize = 0;

@inline function up(n: u64): u64 { return (n + ALIGN - 1) & ~(ALIGN - 1); }

export function devOpened(): bool { return opened; }
export function devArgs(): usize { return argsBlock; }

/** The stub runtime's heap.alloc takes at most 1 GiB per call. */
const CHUNK: u64 = 512 << 20;

/**
 * `total` contiguous bytes from the bump allocator, in chunks it accepts: each
 * chunk follows the previous one (with its block header between, which nothing
 * reads again: the device never frees), so the span from the first one is contiguous.
 */
function bigAlloc(total: u64): usize {
  const first = min(total, CHUNK);
  const base = heap.alloc(<usize>first);
  let got = first;
  while (got < total) {
    const n = min(total - got, CHUNK);
    heap.alloc(<usize>n);
    got += n;
  }
  return base;
}

/** dev_open: 0, -EBUSY when already open, -EINVAL for bad limits, -ENOMEM when memory cannot grow. */
export function devOpen(): i32 {
  if (opened) return -EBUSY;
  const nPd = cfg(CFG_MAX_PD), nMr = cfg(CFG_MAX_MR), nCq = cfg(CFG_MAX_CQ), nQp = cfg(CFG_MAX_QP);
  const nSrq = cfg(CFG_MAX_SRQ), nAh = cfg(CFG_MAX_AH), nMw = cfg(CFG_MAX_MW);
  const nGrp = cfg(CFG_MAX_MCAST_GRP), nAttach = cfg(CFG_MAX_MCAST_QP_ATTACH);
  if (nMw > 0x7fffff - 0x80001 || nGrp > 0xffff || nAttach > 0xffff) return -EINVAL;
  if (nMr > MR_MAX_INDEX || nQp > 0xfffff || nPd > 0xfffff || nCq > 0xfffff || nSrq > 0xfffff || nAh > 0xfffff) return -EINVAL;
  if (cfg(CFG_GID_COUNT) > GID_TABLE_LEN) return -EINVAL;
  const evCap = nextPow2(max<u32>(cfg(CFG_EVENT_CAP), 16));
  if (cfg(CFG_TRACE_CAP) > TRACE_MAX_CAP) return -EINVAL;
  const traceCap = nextPow2(cfg(CFG_TRACE_CAP) ? cfg(CFG_TRACE_CAP) : TRACE_DEFAULT_CAP);
  const ringBlocks = 2 * nQp + nCq + nSrq;
  // sizes, in carving order
  const sPd = up(<u64>nPd * PD_SLOT), sMr = up(<u64>nMr * MR_SLOT), sCq = up(<u64>nCq * CQ_SLOT);
  const sQp = up(<u64>nQp * QP_SLOT), sSrq = up(<u64>nSrq * SRQ_SLOT), sAh = up(<u64>nAh * AH_SLOT);
  const sMw = up(<u64>nMw * MW_SLOT), sMcast = up(mcastBytes(nGrp, nAttach));
  const sMrList = up(arenaListBytes(nMr)), sRingList = up(arenaListBytes(ringBlocks));
  const sEv = up(ringBytes(evCap, EV_SIZE)), sArgs: u64 = 512;
  const sMrArena = up(cfg(CFG_MR_ARENA)), sRingArena = up(cfg(CFG_RING_ARENA)), sTrace = up(traceBytes(traceCap));
  const total = sPd + sMr + sCq + sQp + sSrq + sAh + sMw + sMcast + sMrList + sRingList + sEv + sArgs + sMrArena + sRingArena + sTrace + ALIGN;
  if (total > MAX_TOTAL) return -ENOMEM;
  const pages = (total + 0xffff) >> 16;
  // One exact growth for everything, so the bump allocator below finds room
  // without growing again (and a refusal is an error code, not a trap).
  if (memory.grow(<i32>pages) < 0) return -ENOMEM;
  const base = bigAlloc(total);
  let p = <usize>up(<u64>base);
  pdPoolInit(p, nPd); p += <usize>sPd;
  mrPoolInit(p, nMr); p += <usize>sMr;
  cqPoolInit(p, nCq); p += <usize>sCq;
  qpPoolInit(p, nQp); p += <usize>sQp;
  srqPoolInit(p, nSrq); p += <usize>sSrq;
  ahPoolInit(p, nAh); p += <usize>sAh;
  mwPoolInit(p, nMw); p += <usize>sMw;
  mcastInit(p, nGrp, nAttach); p += <usize>sMcast;
  const mrList = p; p += <usize>sMrList;
  const ringList = p; p += <usize>sRingList;
  ringInit(p, evCap, EV_SIZE, RING_EVENT, 0);
  eventsAttach(p); p += <usize>sEv;
  argsBlock = p; memory.fill(p, 0, <usize>sArgs); p += <usize>sArgs;
  arenaInit(ringArena, p, <u32>sRingArena, ringList, ringBlocks); p += <usize>sRingArena;
  traceAttach(p, traceCap, (cfg(CFG_FLAGS) & CFG_FLAG_TRACE) ? TRACE_ALL : 0); p += <usize>sTrace;
  arenaInit(mrArena, p, <u32>sMrArena, mrList, nMr); p += <usize>sMrArena;
  mrZeroFrom(p - <usize>sMrArena);
  countersReset();
  opened = true;
  return 0;
}

// The application thread's stand-in for the core's exports when the instance lives in a device
// worker: the same functions, so Device, QueuePair and CompletionQueue run unchanged. A call
// writes the call slot, wakes the worker and waits for its answer (Atomics.wait where the thread
// may block, a bounded spin on a browser's main thread, which may not): the control verbs.
// `doorbell` is the exception: one doorbell queue entry and a wake, no waiting — the WQEs are
// already in the shared ring.
import { CoreAbort, type CoreExports } from "../wasm/index.js";
import { CALL_IDLE, CALL_REQUEST, Control, DB_CAP, MAX_ARGS, RES_BIGINT, RES_ERROR, RES_NUMBER, W } from "./control.js";
import { TraceStage } from "./trace.js";

/** How long a control verb waits for the worker before it gives up (ms). */
export const CALL_TIMEOUT_MS = 10_000;

/** The worker did not answer a control verb, or the device worker is gone. */
export class DeviceWorkerError extends Error {
  override name = "DeviceWorkerError";
}

/** Zero-argument exports that return a fixed address once the device is open: asked once. */
const FIXED = new Set([
  "verbs_abi_version", "dev_config", "dev_config_size", "dev_args", "dev_gids", "dev_events", "dev_counters",
  "dev_counter_count", "dev_counter_names", "entropy_pool", "entropy_cap", "entropy_low", "tx_ring",
]);

/** Exports that are pure functions of their arguments (the opcode table): each answer asked once. */
const PURE = new Set(["wr_class"]);

let blockingAllowed: boolean | undefined;

/** Whether this thread may block in Atomics.wait (not a browser's main thread). */
export function canBlock(): boolean {
  if (blockingAllowed === undefined) {
    try {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
      blockingAllowed = true;
    } catch {
      blockingAllowed = false;
    }
  }
  return blockingAllowed;
}

export interface CoreProxyStats {
  calls: number;
  doorbells: number;
  /** doorbells that found the queue full and went as a call */
  doorbellCalls: number;
}

/**
 * Exports named `names` (the worker's instance's) over `control`, with `memory` the instance's
 * shared memory. Non-function exports are left out.
 */
export function coreProxy(ctl: Control, memory: WebAssembly.Memory, names: string[]): CoreExports & { stats: CoreProxyStats } {
  const stats: CoreProxyStats = { calls: 0, doorbells: 0, doorbellCalls: 0 };
  const i32 = ctl.i32;
  const block = canBlock();
  const trace = ctl.trace;

  function call(index: number, name: string, args: unknown[]): unknown {
    if (ctl.load(W.CLOSED)) throw new DeviceWorkerError(`softroce device worker: ${name} after the device was closed`);
    if (args.length > MAX_ARGS) throw new RangeError(`${name}: at most ${MAX_ARGS} arguments`);
    if (ctl.load(W.CALL) !== CALL_IDLE) throw new DeviceWorkerError(`softroce device worker: ${name} while another call is in progress`);
    let big = 0;
    args.forEach((a, i) => {
      if (typeof a === "bigint") {
        ctl.i64[ctl.argSlot(i)] = a;
        big |= 1 << i;
      } else ctl.f64[ctl.argSlot(i)] = Number(a);
    });
    ctl.store(W.FN, index);
    ctl.store(W.ARGC, args.length);
    ctl.store(W.ARG_BIGINT, big);
    ctl.store(W.CALL, CALL_REQUEST);
    ctl.bump(W.WAKE);
    stats.calls++;
    const deadline = Date.now() + CALL_TIMEOUT_MS;
    while (Atomics.load(i32, W.CALL) === CALL_REQUEST) {
      if (block) Atomics.wait(i32, W.CALL, CALL_REQUEST, 50);
      if (Date.now() > deadline) {
        throw new DeviceWorkerError(`softroce device worker: no answer to ${name} in ${CALL_TIMEOUT_MS} ms (the worker is busy or gone)`);
      }
    }
    const kind = ctl.load(W.RESULT_KIND);
    const value = kind === RES_NUMBER ? ctl.f64[ctl.resultSlot] : kind === RES_BIGINT ? ctl.i64[ctl.resultSlot] : undefined;
    const text = kind === RES_ERROR ? ctl.readError() : "";
    ctl.store(W.CALL, CALL_IDLE);
    if (kind === RES_ERROR) throw new CoreAbort(text);
    return value;
  }

  const out: Record<string, unknown> = { memory, stats };
  names.forEach((name, index) => {
    if (name === "doorbell") {
      out[name] = (h: number, queues: number, now: number): number => {
        const head = ctl.load(W.DB_HEAD);
        if (((head - ctl.load(W.DB_TAIL)) >>> 0) >= DB_CAP) {
          stats.doorbellCalls++;
          return call(index, name, [h, queues, now]) as number;
        }
        if (trace) trace.mark(TraceStage.APP_DOORBELL, queues & 3);
        i32[ctl.dbEntry(head)] = (h << 2) | (queues & 3);
        ctl.store(W.DB_HEAD, (head + 1) | 0);
        Atomics.add(i32, W.WAKE, 1);
        // a spinning or running worker sees the entry itself; a sleeping one is woken, once per
        // sleep (the worker sets WORKER_WAITING, then looks at WAKE again: one of the two sees the other)
        if (Atomics.compareExchange(i32, W.WORKER_WAITING, 1, 0) === 1) {
          // counted when it woke the worker's wait: the worker can see WAKE move between setting
          // WORKER_WAITING and starting its wait, and then nobody is waiting for this notify
          if (Atomics.notify(i32, W.WAKE) > 0) {
            Atomics.add(i32, W.APP_NOTIFIES, 1);
            if (trace) trace.mark(TraceStage.APP_NOTIFY);
          }
        }
        stats.doorbells++;
        return 0;
      };
    } else if (FIXED.has(name)) {
      let cached: unknown;
      out[name] = (): unknown => {
        if (cached) return cached;
        const v = call(index, name, []);
        if (v) cached = v;
        return v;
      };
    } else if (PURE.has(name)) {
      const memo = new Map<string, unknown>();
      out[name] = (...args: unknown[]): unknown => {
        const key = args.join(",");
        if (memo.has(key)) return memo.get(key);
        const v = call(index, name, args);
        if (memo.size < 4096) memo.set(key, v);
        return v;
      };
    } else {
      out[name] = (...args: unknown[]): unknown => call(index, name, args);
    }
  });
  return out as CoreExports & { stats: CoreProxyStats };
}

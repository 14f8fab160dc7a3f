// The device worker's message loop: "init" instantiates the threads build of the core on its
// shared memory and starts serving the control block (DeviceServer); "close" stops it. A platform
// (host/node/worker, host/browser/worker) adds the ops that open its link and attach the port.
import { instantiateCore, type CoreExports } from "../wasm/index.js";
import { DeviceMemory } from "../verbs/memory.js";
import { Control } from "./control.js";
import type { ParentEndpoint } from "./endpoint.js";
import { serializeError, type WorkerReport, type WorkerRequest } from "./messages.js";
import { DeviceServer } from "./serve.js";
import { WorkerTrace } from "./trace.js";

export interface WorkerContext {
  core: CoreExports;
  mem: DeviceMemory;
  server: DeviceServer;
  /** a report to the application thread */
  report(r: WorkerReport): void;
}

export type WorkerOps = Record<string, (msg: WorkerRequest, ctx: WorkerContext) => unknown>;

/**
 * Serves `parent`'s requests with `ops` (and "init", "close"); `now` is the device's clock in µs.
 * `ops.close`, when given, runs before the server stops (the link's close). `endOfTurn(fn)` runs
 * `fn` after the current event-loop turn's callbacks (Node: setImmediate; default a microtask, and
 * a long worker turn yields with setTimeout 0).
 */
export function runDeviceWorker(parent: ParentEndpoint, ops: WorkerOps, now: () => number, endOfTurn?: (fn: () => void) => void): void {
  let ctx: WorkerContext | undefined;
  const report = (r: WorkerReport): void => parent.postMessage(r);
  parent.onMessage(async (raw) => {
    const msg = raw as WorkerRequest;
    try {
      let value: unknown;
      if (msg.op === "init") {
        if (ctx) throw new Error("device worker: init twice");
        const core = await instantiateCore(msg.module as WebAssembly.Module);
        if (!(core.memory.buffer instanceof SharedArrayBuffer)) {
          throw new TypeError("device worker: the core's memory is not shared (the worker needs build/softroce-shared.wasm)");
        }
        const control = new Control(msg.control as SharedArrayBuffer);
        if (msg.trace !== undefined) control.trace = new WorkerTrace(msg.trace as SharedArrayBuffer);
        const server = new DeviceServer(control, core, DeviceServer.functionNames(core), now, Number(msg.spinUs ?? 0), endOfTurn, endOfTurn);
        server.onCapture = (records) => report({ report: "capture", records });
        ctx = { core, mem: new DeviceMemory(core.memory), server, report };
        server.start();
        value = { memory: core.memory, names: server.names };
      } else if (msg.op === "debug") {
        // a stall's diagnosis: the server's loop and the platform's link and port (ops.debug), read only
        value = ctx ? { server: ctx.server.debugState(), ...((await ops.debug?.(msg, ctx)) as object | undefined) } : undefined;
      } else if (msg.op === "captureFlush") {
        // the records captured so far go first (messages keep their order): the answer follows them
        ctx?.server.flushCapture();
        value = undefined;
      } else if (msg.op === "close") {
        if (ctx) {
          await ops.close?.(msg, ctx);
          ctx.server.port?.close();
          ctx.server.stop();
        }
        parent.postMessage({ id: msg.id, ok: true, value: undefined });
        setTimeout(() => parent.exit(), 0);
        return;
      } else {
        const op = ops[msg.op];
        if (!op) throw new Error(`device worker: no op ${msg.op}`);
        if (!ctx) throw new Error(`device worker: ${msg.op} before init`);
        value = await op(msg, ctx);
      }
      parent.postMessage({ id: msg.id, ok: true, value });
    } catch (e) {
      parent.postMessage({ id: msg.id, ok: false, error: serializeError(e) });
    }
  });
}

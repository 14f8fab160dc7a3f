// The browser's device worker (a module Web Worker, bundled as device-worker.js): runs the
// threads build of the core on shared memory, owns the WebSocket to the gateway (tunnelOps) and
// the device's timer. Started by openDevice / openTunnelDevice with `worker: true` (worker.ts).
import { runDeviceWorker, tunnelOps } from "../core/worker/index.js";
import { realClock } from "../core/link/index.js";
import { tunnelSocket } from "./tunnel-socket.js";

const scope = globalThis as unknown as {
  postMessage(m: unknown): void;
  addEventListener(type: "message", fn: (e: { data: unknown }) => void): void;
  close(): void;
};

runDeviceWorker(
  {
    postMessage: (m) => scope.postMessage(m),
    onMessage: (fn) => scope.addEventListener("message", (e) => fn(e.data)),
    exit: () => scope.close(),
  },
  tunnelOps((url) => tunnelSocket(url)), // tunnel version 2, as on the page's thread
  () => realClock.now(),
);

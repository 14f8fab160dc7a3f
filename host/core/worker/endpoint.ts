// One side of the message channel to a device worker, whatever carries it (node:worker_threads,
// a Web Worker): what the session and the runner need and nothing else.

/** The application thread's handle on a worker. */
export interface WorkerEndpoint {
  postMessage(msg: unknown, transfer?: Transferable[]): void;
  onMessage(fn: (msg: unknown) => void): void;
  /** the worker failed (an uncaught error) or exited */
  onFailure(fn: (e: Error) => void): void;
  terminate(): void;
}

/** The worker's handle on its application thread. */
export interface ParentEndpoint {
  postMessage(msg: unknown): void;
  onMessage(fn: (msg: unknown) => void): void;
  /** leaves the worker (after close) */
  exit(): void;
}

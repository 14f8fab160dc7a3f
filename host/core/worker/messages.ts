// The messages between an application thread and its device worker (postMessage): start-up,
// the link, multicast membership and close go this way, and the worker's reports (a send error,
// a drop-log record). Work requests and completions never do: they cross in the shared rings.
import { VerbsError } from "../verbs/index.js";
import { CoreAbiError, CoreAbort } from "../wasm/index.js";

/** A request from the application thread; `op` names it, the rest is its payload. */
export interface WorkerRequest {
  id: number;
  op: string;
  [k: string]: unknown;
}

/** The worker's answer to request `id`. */
export type WorkerReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: SerializedError };

/** A report the worker sends on its own (no id). */
export interface WorkerReport {
  report: string;
  [k: string]: unknown;
}

/** An error as it crosses the thread boundary: its class name, message and own fields. */
export interface SerializedError {
  name: string;
  message: string;
  props: Record<string, unknown>;
}

export function serializeError(e: unknown): SerializedError {
  if (!(e instanceof Error)) return { name: "Error", message: String(e), props: {} };
  const props: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) if (k !== "name" && k !== "message" && k !== "stack" && isPlain(v)) props[k] = v;
  return { name: e.name, message: e.message, props };
}

function isPlain(v: unknown): boolean {
  return v === null || ["string", "number", "boolean", "bigint", "undefined"].includes(typeof v);
}

/**
 * The error again, in its class where this layer knows it (VerbsError, CoreAbort, CoreAbiError;
 * `more` for platform classes), else an Error with the same name, message and fields.
 */
export function reviveError(s: SerializedError, more?: (s: SerializedError) => Error | undefined): Error {
  const p = s.props;
  let e: Error | undefined = more?.(s);
  if (!e) {
    if (s.name === "VerbsError") {
      const v = new VerbsError(String(p.verb), Number(p.errno));
      if (p.badWr !== undefined) v.badWr = Number(p.badWr);
      v.message = s.message;
      return v;
    }
    if (s.name === "CoreAbort") e = new CoreAbort(s.message);
    else if (s.name === "CoreAbiError") e = new CoreAbiError(p.code as "abi_missing", p.coreVersion as number, Number(p.hostVersion));
    else if (s.name === "RangeError") e = new RangeError(s.message);
    else if (s.name === "TypeError") e = new TypeError(s.message);
    else {
      e = new Error(s.message);
      e.name = s.name;
    }
  }
  for (const [k, v] of Object.entries(p)) if (!(k in e)) (e as unknown as Record<string, unknown>)[k] = v;
  return e;
}

// Refused datagrams as log records at a bounded rate: once per interval, one record per drop
// reason that grew, with how many were dropped since the last record. A flood of refused
// packets costs a counter increment each (PacketPort.stats.drops), never a line each.
import type { PacketPort } from "./port.js";

export interface DropLogRecord {
  event: "dropped";
  /** rx result name (bad_icrc, bad_source, unknown_qpn, …) */
  reason: string;
  /** datagrams dropped for this reason since the previous record */
  count: number;
  /** milliseconds the count covers */
  intervalMs: number;
}

/** Starts logging `port`'s drops every `intervalMs` (default 1000); returns the stop function. */
export function logDrops(port: PacketPort, log: (r: DropLogRecord) => void, intervalMs = 1000): () => void {
  if (!(intervalMs > 0)) throw new RangeError(`drop log interval ${intervalMs} ms`);
  const seen: Record<string, number> = { ...port.stats.drops };
  let last = Date.now();
  const flush = () => {
    const now = Date.now();
    for (const [reason, n] of Object.entries(port.stats.drops)) {
      const d = n - (seen[reason] ?? 0);
      if (d > 0) log({ event: "dropped", reason, count: d, intervalMs: now - last });
      seen[reason] = n;
    }
    last = now;
  };
  const timer = setInterval(flush, intervalMs);
  (timer as { unref?: () => void }).unref?.();
  return () => {
    clearInterval(timer);
    flush();
  };
}

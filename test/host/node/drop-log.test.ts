// A flood of refused datagrams to a Node UDP device: the drop log writes one record per reason
// per interval with the count, never one per datagram, and the counts add up to the drops.
import { afterEach, describe, expect, it } from "vitest";
import dgram from "node:dgram";
import { openDevice } from "../../../host/node/index.js";
import type { DropLogRecord } from "../../../host/core/link/drop-log.js";
import type { Device } from "../../../host/core/verbs/device.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

describe("drop log", () => {
  it("logs a flood of 3,000 refused datagrams as a few records whose counts add up", async () => {
    const records: DropLogRecord[] = [];
    const dev: Device = await openDevice({ address: "127.0.12.3", port: 0, logDrops: (r) => records.push(r), logDropsMs: 100 });
    cleanups.push(() => dev.close());
    const port = (dev.limits as { port: number }).port;
    const u = dgram.createSocket("udp4");
    cleanups.push(() => new Promise<void>((r) => u.close(() => r())));
    await new Promise<void>((r) => u.bind(0, "127.0.12.4", r));
    const junk = Buffer.alloc(8); // shorter than a BTH and an ICRC
    const unknown = Buffer.alloc(40); // a well-formed length, no valid ICRC
    const t0 = Date.now();
    for (let i = 0; i < 3000; i++) u.send(i % 2 ? junk : unknown, port, "127.0.12.3");
    const drops = () => Object.values(dev.port!.stats.drops).reduce((a, b) => a + b, 0);
    const end = Date.now() + 5000;
    while (drops() < 3000 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(drops()).toBe(3000);
    await new Promise((r) => setTimeout(r, 250));
    dev.close(); // flushes what is left
    const total = records.reduce((n, r) => n + r.count, 0);
    expect(total).toBe(3000);
    // at most one record per reason per 100 ms interval (and the final flush), not one per datagram
    expect(records.length).toBeLessThanOrEqual(2 * (Math.ceil((Date.now() - t0) / 100) + 1));
    expect(new Set(records.map((r) => r.reason))).toEqual(new Set(Object.keys(dev.port!.stats.drops)));
    for (const r of records) expect(r).toMatchObject({ event: "dropped" });
  });
});

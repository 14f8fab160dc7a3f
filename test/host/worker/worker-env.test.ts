// The SOFTROCE_WORKER_* settings of a Node worker device are read strictly (host/node/env.ts): a value
// out of range or not an integer makes openDevice({ worker: true }) and openTunnelDevice(url,
// { worker: true }) throw a RangeError naming the variable and its range; a good one is used.
import { afterEach, describe, expect, it } from "vitest";
import { envRestorer } from "../support/env-vars.js";
import { openDevice, openTunnelDevice } from "../../../host/node/index.js";
import type { Device } from "../../../host/core/verbs/device.js";
import { DEFAULT_SPIN_US, MAX_APP_SPIN_US, MAX_SPIN_US, TRACE_MAX, workerDebugOf, workerTraceOf } from "../../../host/core/worker/index.js";
import { NODE_APP_SPIN_US } from "../../../host/node/worker/open.js";

const VARS = ["SOFTROCE_WORKER_SPIN_US", "SOFTROCE_WORKER_APP_SPIN_US", "SOFTROCE_WORKER_TRACE"] as const;
const restoreEnv = envRestorer(VARS);
const opened: Device[] = [];
afterEach(() => {
  while (opened.length) opened.pop()!.close();
  restoreEnv();
});

async function open(address?: string): Promise<Device> {
  const d = await openDevice({ worker: true, ...(address ? { address, port: 0 } : {}) });
  opened.push(d);
  if (!d.worker) throw new Error(`no worker device (${d.workerFallback})`);
  return d;
}

describe("SOFTROCE_WORKER_* settings", () => {
  it("a bad value is refused with the variable's name and range", async () => {
    const cases: [string, string, string][] = [
      ["SOFTROCE_WORKER_SPIN_US", String(MAX_SPIN_US + 1), `0 .. ${MAX_SPIN_US} µs`],
      ["SOFTROCE_WORKER_SPIN_US", "fast", `0 .. ${MAX_SPIN_US} µs`],
      ["SOFTROCE_WORKER_APP_SPIN_US", "-5", `0 .. ${MAX_APP_SPIN_US} µs`],
      ["SOFTROCE_WORKER_APP_SPIN_US", "1.5", `0 .. ${MAX_APP_SPIN_US} µs`],
      ["SOFTROCE_WORKER_TRACE", "on", `0 .. ${TRACE_MAX} stamps (1: on)`],
    ];
    for (const [name, value, range] of cases) {
      process.env[name] = value;
      await expect(openDevice({ worker: true, address: "127.0.10.161", port: 0 })).rejects.toThrow(new RangeError(`${name}="${value}": an integer ${range}`));
      delete process.env[name];
    }
    // the tunnel device's worker reads the spin too (before it connects: the URL is never dialled)
    process.env.SOFTROCE_WORKER_SPIN_US = "1001";
    await expect(openTunnelDevice("ws://127.0.10.161:9/", { worker: true })).rejects.toThrow(/^SOFTROCE_WORKER_SPIN_US="1001": an integer 0 \.\. 1000 µs$/);
  });

  it("SOFTROCE_WORKER_SPIN_US is read strictly when the workerSpinUs option is passed too; the option wins over a good value", async () => {
    process.env.SOFTROCE_WORKER_SPIN_US = "fast";
    const bad = new RangeError(`SOFTROCE_WORKER_SPIN_US="fast": an integer 0 .. ${MAX_SPIN_US} µs`);
    // (a device that opened anyway is closed, and fails the test as a word, not as itself)
    const outcome = (p: Promise<{ close(): void } | { device: { close(): void } }>) =>
      p.then((d) => ("device" in d ? d.device.close() : d.close(), "opened"), (e: unknown) => e);
    expect(await outcome(openDevice({ worker: true, address: "127.0.10.164", port: 0, workerSpinUs: 20 }))).toEqual(bad);
    expect(await outcome(openTunnelDevice("ws://127.0.10.164:9/", { worker: true, workerSpinUs: 20 }))).toEqual(bad);
    // a bad option is refused before a thread starts, whatever the environment says
    delete process.env.SOFTROCE_WORKER_SPIN_US;
    await expect(openDevice({ worker: true, address: "127.0.10.164", port: 0, workerSpinUs: MAX_SPIN_US + 1 })).rejects.toThrow(new RangeError(`workerSpinUs ${MAX_SPIN_US + 1}: 0 .. ${MAX_SPIN_US} µs`));
    process.env.SOFTROCE_WORKER_SPIN_US = "50";
    const d = await openDevice({ worker: true, address: "127.0.10.165", port: 0, workerSpinUs: 20 });
    opened.push(d);
    const dbg = (await workerDebugOf(d)) as { worker: { server: { spinUs: number } } };
    expect(dbg.worker.server.spinUs).toBe(20);
  });

  it("good values are used; unset or empty, the defaults", async () => {
    process.env.SOFTROCE_WORKER_SPIN_US = "50";
    process.env.SOFTROCE_WORKER_APP_SPIN_US = "0";
    process.env.SOFTROCE_WORKER_TRACE = "4096";
    const d = await open("127.0.10.162");
    expect(workerTraceOf(d)?.capacity).toBe(4096);
    const dbg = (await workerDebugOf(d)) as { app: { spin: { boundUs: number } }; worker: { server: { spinUs: number } } };
    expect(dbg.app.spin.boundUs).toBe(0);
    expect(dbg.worker.server.spinUs).toBe(50);

    process.env.SOFTROCE_WORKER_SPIN_US = "";
    delete process.env.SOFTROCE_WORKER_APP_SPIN_US;
    process.env.SOFTROCE_WORKER_TRACE = "";
    const e = await open("127.0.10.163");
    expect(workerTraceOf(e)).toBeUndefined();
    const dflt = (await workerDebugOf(e)) as typeof dbg;
    expect(dflt.app.spin.boundUs).toBe(NODE_APP_SPIN_US);
    expect(dflt.worker.server.spinUs).toBe(DEFAULT_SPIN_US);
  });
});

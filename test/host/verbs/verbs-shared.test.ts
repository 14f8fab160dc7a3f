// The ring layout over a SharedArrayBuffer: a worker thread plays the device and
// produces CQEs exactly as docs/ABI.md lays them out; the main thread polls them
// with the real CompletionQueue code. Indices cross threads only through Atomics.
import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { CqRec, Cqe, Ring } from "../../../host/core/verbs/abi.js";
import { CompletionQueue } from "../../../host/core/verbs/cq.js";
import type { Device } from "../../../host/core/verbs/device.js";
import { DeviceMemory } from "../../../host/core/verbs/memory.js";
import { setImmediate as nextTurn } from "node:timers/promises";

const DEVICE = `
const { workerData } = require("node:worker_threads");
const { memory, ring, cap, n } = workerData;
const i32 = new Int32Array(memory.buffer);
const dv = new DataView(memory.buffer);
for (let p = 0; p < n; p++) {
  // wait for room: producer - consumer < capacity (free-running u32 indices)
  while (((p - (Atomics.load(i32, (ring + ${Ring.CONS}) >> 2) >>> 0)) >>> 0) >= cap) Atomics.wait(i32, 0, 0, 1);
  const e = ring + ${Ring.DATA} + (p & (cap - 1)) * ${Cqe.SIZE};
  dv.setBigUint64(e + ${Cqe.WR_ID}, BigInt(p) * 3n, true);
  dv.setUint32(e + ${Cqe.STATUS}, 0, true);
  dv.setUint32(e + ${Cqe.BYTE_LEN}, p & 0xffff, true);
  dv.setUint32(e + ${Cqe.QP_NUM}, 17, true);
  Atomics.store(i32, (ring + ${Ring.PROD}) >> 2, (p + 1) | 0);
}
`;

describe("rings over a SharedArrayBuffer", () => {
  it("a device thread produces 20,000 CQEs into a 64-entry CQ; the host polls them all, in order, none lost", async () => {
    const memory = new WebAssembly.Memory({ initial: 2, maximum: 2, shared: true });
    expect(memory.buffer).toBeInstanceOf(SharedArrayBuffer);
    const mem = new DeviceMemory(memory);
    const rec = 256;
    const ring = 1024;
    const cap = 64;
    const n = 20_000;
    mem.setU32(rec + CqRec.RING, ring);
    mem.setU32(rec + CqRec.CQE, cap);
    mem.setU32(ring + Ring.CAP, cap);
    mem.setU32(ring + Ring.SLOT, Cqe.SIZE);
    mem.setU32(ring + Ring.KIND, 4);
    const fakeDevice = { mem, core: { cq_ptr: () => rec }, watchCq() {} } as unknown as Device;
    const cq = new CompletionQueue(fakeDevice, 1);
    const worker = new Worker(DEVICE, { eval: true, workerData: { memory, ring, cap, n } });
    const exited = new Promise((resolve, reject) => {
      worker.on("exit", resolve);
      worker.on("error", reject);
    });
    let got = 0;
    const deadline = Date.now() + 20_000;
    while (got < n && Date.now() < deadline) {
      const wcs = cq.poll(17);
      for (const wc of wcs) {
        if (wc.wrId !== BigInt(got) * 3n || wc.byteLen !== (got & 0xffff) || wc.qpNum !== 17) {
          throw new Error(`CQE ${got} wrong: ${wc.wrId} ${wc.byteLen} ${wc.qpNum}`);
        }
        got++;
      }
      if (!wcs.length) await nextTurn();
    }
    await exited;
    expect(got).toBe(n);
    expect(cq.poll(1)).toEqual([]);
    expect(mem.loadIndex(ring + Ring.PROD)).toBe(n);
    expect(mem.loadIndex(ring + Ring.CONS)).toBe(n);
  });
});

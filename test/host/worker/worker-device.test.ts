// openDevice({ worker: true }) on Node: the device's instance, socket and timers in a worker
// thread, the verbs on this thread over the shared rings. Two worker devices over loopback UDP:
// the application thread posts while the worker completes, every completion arrives once and in
// order, every byte lands; control verbs keep their error classes; posting sends no message.
// Needs dist/node/device-worker.js and build/softroce-shared.wasm (npm run build).
import { afterEach, describe, expect, it } from "vitest";
import { datapathOf, openDevice, UdpBindError, udpPortOf, type NodeDeviceOptions } from "../../../host/node/index.js";
import { connectRcEnds, openRcEnd } from "../support/rc-end.js";
import { Access, EventType, QpType, SendFlags, WcOpcode, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import { VerbsError } from "../../../host/core/verbs/errors.js";
import type { Device } from "../../../host/core/verbs/device.js";
import type { CompletionQueue, WorkCompletion } from "../../../host/core/verbs/cq.js";
import { DeviceWorkerError, workerSessionOf, workerStatsOf } from "../../../host/core/worker/index.js";
import type { AsyncEvent } from "../../../host/core/verbs/events.js";

const A = "127.0.10.11";
const B = "127.0.10.12";
const ACCESS = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ | Access.REMOTE_ATOMIC;
const opened: Device[] = [];
afterEach(() => {
  while (opened.length) opened.pop()!.close();
});

async function open(address: string, extra: Record<string, unknown> = {}): Promise<Device> {
  const d = await openDevice({ address, port: 0, worker: true, ...extra });
  opened.push(d);
  return d;
}

/** Two worker devices (at A and B), one connected RC QP each with `depth` WRs, a CQ of 4 x depth and an MR of `mrBytes`. */
async function pair(depth = 256, mrBytes = 4 << 20, extra: Omit<NodeDeviceOptions, "address" | "port" | "worker"> = {}) {
  const [a, b] = await Promise.all([A, B].map((address) => openRcEnd(address, { worker: true, ...extra }, ACCESS, { mrBytes, cqe: 4 * depth, depth, opened })));
  connectRcEnds(a!, b!, ACCESS);
  return { a: a!, b: b! };
}

/** Every byte of message i: a function of i and the position, so a misplaced byte shows. */
const pattern = (i: number, k: number): number => (i * 31 + k * 7 + (i >>> 8)) & 0xff;

/** Polls until `n` completions came (waiting with next() when the CQ is empty). */
async function collect(cq: CompletionQueue, n: number, on: (wc: WorkCompletion) => void): Promise<void> {
  let got = 0;
  while (got < n) {
    const batch = cq.poll(64);
    if (batch.length === 0) {
      on(await cq.next());
      got++;
      continue;
    }
    for (const wc of batch) on(wc);
    got += batch.length;
  }
}

describe("the device in a worker thread (Node)", () => {
  it("runs the device in a worker: device.worker, the UDP path, the GID of the address", async () => {
    const d = await open(A);
    expect(d.worker).toBe(true);
    expect(d.workerFallback).toBeUndefined();
    expect(d.memory.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(d.queryGid(0)).toBe(`::ffff:${A}`);
    expect(["native", "dgram"]).toContain(datapathOf(d)!.path);
  });

  it("datapathOf says whether the worker's link offloads the ICRC, as it does for a device on this thread", async () => {
    const env = process.env.SOFTROCE_ICRC_OFFLOAD;
    try {
      for (const value of [undefined, "0"]) {
        if (value === undefined) delete process.env.SOFTROCE_ICRC_OFFLOAD;
        else process.env.SOFTROCE_ICRC_OFFLOAD = value;
        const here = await openDevice({ address: B, port: 0, datapath: "native" });
        opened.push(here);
        const w = await open(A, { datapath: "native" });
        const want = datapathOf(here)!;
        expect(want.path).toBe("native");
        expect(want.icrcOffload).toMatch(value === "0" ? /^off \(SOFTROCE_ICRC_OFFLOAD=0\)$/ : /^(on|off) \(/);
        // the worker's link busy-polls only when asked (WORKER_THREAD_BUSY_POLL)
        expect(datapathOf(w)).toEqual({ path: "native", reason: undefined, icrcOffload: want.icrcOffload, busyPoll: "off" });
      }
      // node:dgram has no offload to report
      const g = await open(A, { datapath: "dgram" });
      expect(datapathOf(g)).toEqual({ path: "dgram", reason: "node:dgram asked for", icrcOffload: undefined, busyPoll: undefined });
    } finally {
      if (env === undefined) delete process.env.SOFTROCE_ICRC_OFFLOAD;
      else process.env.SOFTROCE_ICRC_OFFLOAD = env;
    }
  });

  it("RC WRITE: the application thread posts while the worker completes; each CQE once, in order; every byte lands", async () => {
    const { a, b } = await pair(256);
    const N = 20000;
    const SIZE = 128;
    const SLOTS = (4 << 20) / SIZE;
    const before = workerStatsOf(a.d)!;
    let posted = 0;
    let next = 0;
    const seen = new Uint8Array(N);
    const post = (): void => {
      const wrs = [];
      while (posted < N && posted - next < 200 && wrs.length < 32) {
        const i = posted++;
        const off = (i % SLOTS) * SIZE;
        for (let k = 0; k < SIZE; k++) a.mr.bytes[off + k] = pattern(i, k);
        wrs.push({ wrId: BigInt(i), opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [a.mr.sge(off, SIZE)], rdma: { remoteAddr: b.mr.addr + BigInt(off), rkey: b.mr.rkey } });
      }
      if (wrs.length) a.qp.postSend(wrs);
    };
    post();
    await collect(a.cq, N, (wc) => {
      expect(wc.status).toBe(WcStatus.SUCCESS);
      expect(wc.opcode).toBe(WcOpcode.RDMA_WRITE);
      const i = Number(wc.wrId);
      expect(i).toBe(next);
      seen[i]++;
      next++;
      post();
    });
    expect(seen.every((x) => x === 1)).toBe(true);
    // every byte of the last SLOTS messages (the earlier ones were overwritten by design)
    let bad = 0;
    for (let i = Math.max(0, N - SLOTS); i < N; i++) {
      const off = (i % SLOTS) * SIZE;
      for (let k = 0; k < SIZE; k++) if (b.mr.bytes[off + k] !== pattern(i, k)) bad++;
    }
    expect(bad).toBe(0);
    const after = workerStatsOf(a.d)!;
    // no message and no call per operation: the posts went as doorbell queue entries (the one call
    // is the opcode table's answer for RDMA_WRITE on RC, asked once and remembered)
    expect(after.calls - before.calls).toBeLessThanOrEqual(1);
    expect(after.doorbells - before.doorbells).toBeGreaterThan(N / 32 - 1);
    expect(a.cq.poll(8)).toEqual([]);
  });

  it("a spinning worker (workerSpinUs): a SEND ping-pong, each message once with its bytes; one notify per worker sleep", async () => {
    const { a, b } = await pair(16, 1 << 20, { workerSpinUs: 200 });
    const N = 300;
    const before = workerStatsOf(a.d)!;
    for (let i = 0; i < N; i++) {
      b.qp.postRecv({ wrId: BigInt(i), sgList: [b.mr.sge(4096, 64)] });
      for (let k = 0; k < 64; k++) a.mr.bytes[k] = pattern(i, k);
      a.qp.postSend({ wrId: BigInt(i), opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [a.mr.sge(0, 64)] });
      const r = await b.cq.next();
      expect(r.status).toBe(WcStatus.SUCCESS);
      expect(r.wrId).toBe(BigInt(i));
      for (let k = 0; k < 64; k++) expect(b.mr.bytes[4096 + k]).toBe(pattern(i, k));
      const s = await a.cq.next();
      expect(s.wrId).toBe(BigInt(i));
    }
    expect(a.cq.poll(4)).toEqual([]);
    expect(b.cq.poll(4)).toEqual([]);
    const after = workerStatsOf(a.d)!;
    const doorbells = after.doorbells - before.doorbells;
    expect(doorbells).toBe(N);
    // a doorbell either wakes a sleeping worker (one notify per sleep) or is found by it
    expect(after.appNotifies - before.appNotifies).toBeLessThanOrEqual(after.workerWakeups - before.workerWakeups + 1);
    expect(after.appNotifies - before.appNotifies).toBeLessThanOrEqual(doorbells);
  });

  it("refuses a spin out of range", async () => {
    await expect(openDevice({ address: A, port: 0, worker: true, workerSpinUs: -1 })).rejects.toThrow(RangeError);
    await expect(openDevice({ address: A, port: 0, worker: true, workerSpinUs: 5000 })).rejects.toThrow(/0 \.\. 1000/);
  });

  it("SEND/RECV: receives posted from the application thread, each received once with its bytes", async () => {
    const { a, b } = await pair(128);
    const N = 5000;
    const SIZE = 256;
    const RSLOTS = 128;
    let recvPosted = 0;
    const postRecvs = (upTo: number): void => {
      const wrs = [];
      while (recvPosted < upTo) {
        const j = recvPosted++;
        wrs.push({ wrId: BigInt(j), sgList: [b.mr.sge((j % RSLOTS) * SIZE, SIZE)] });
      }
      if (wrs.length) b.qp.postRecv(wrs);
    };
    postRecvs(RSLOTS);
    let sent = 0;
    let sendDone = 0;
    const postSends = (): void => {
      const wrs = [];
      while (sent < N && sent - sendDone < 64 && sent < recvPosted) {
        const i = sent++;
        const off = (i % 1024) * SIZE;
        for (let k = 0; k < SIZE; k++) a.mr.bytes[off + k] = pattern(i, k);
        wrs.push({ wrId: BigInt(i), opcode: WrOpcode.SEND_WITH_IMM, immData: i, sendFlags: SendFlags.SIGNALED, sgList: [a.mr.sge(off, SIZE)] });
      }
      if (wrs.length) a.qp.postSend(wrs);
    };
    let received = 0;
    let bad = 0;
    const recvDone = collect(b.cq, N, (wc) => {
      expect(wc.status).toBe(WcStatus.SUCCESS);
      expect(wc.opcode).toBe(WcOpcode.RECV);
      const j = Number(wc.wrId);
      expect(j).toBe(received);
      expect(wc.immData).toBe(j);
      expect(wc.byteLen).toBe(SIZE);
      const off = (j % RSLOTS) * SIZE;
      for (let k = 0; k < SIZE; k++) if (b.mr.bytes[off + k] !== pattern(j, k)) bad++;
      received++;
      postRecvs(Math.min(N, received + RSLOTS));
      postSends();
    });
    postSends();
    await collect(a.cq, N, (wc) => {
      expect(wc.status).toBe(WcStatus.SUCCESS);
      expect(Number(wc.wrId)).toBe(sendDone);
      sendDone++;
      postSends();
    });
    await recvDone;
    expect(received).toBe(N);
    expect(bad).toBe(0);
  });

  it("control verbs keep their errors: VerbsError codes, UdpBindError; a closed device's verbs fail clearly", async () => {
    const d = await open(A);
    const pd = d.allocPd();
    expect(() => d.createCq(1 << 30)).toThrow(VerbsError);
    try {
      d.createCq(1 << 30);
    } catch (e) {
      expect((e as VerbsError).code).toBe("EINVAL");
    }
    const cq = d.createCq(8);
    expect(() => pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 1 << 30, maxRecvWr: 1, maxSendSge: 1, maxRecvSge: 1 } })).toThrow(VerbsError);
    const port = udpPortOf(d);
    expect(port).toBeGreaterThan(0);
    const err = await openDevice({ address: A, port, worker: true }).then(
      (x) => (opened.push(x), undefined),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UdpBindError);
    expect((err as UdpBindError).code).toBe("EADDRINUSE");
    d.close();
    expect(() => d.allocPd()).toThrow(DeviceWorkerError);
  });

  it("a worker that dies is IBV_EVENT_DEVICE_FATAL on the device, and its verbs fail with DeviceWorkerError", async () => {
    const d = await open(A);
    const pd = d.allocPd();
    const fatal = new Promise<AsyncEvent>((resolve) => d.on("event", resolve));
    workerSessionOf(d)!.endpoint.terminate();
    const ev = await fatal;
    expect(ev.eventType).toBe(EventType.DEVICE_FATAL);
    expect(() => pd.regMr(4096, ACCESS)).toThrow(DeviceWorkerError);
  });
});

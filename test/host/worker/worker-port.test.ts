// `device.port` of a worker device on the application thread: the clock, the capture tap (a
// PcapRecorder attached here records what the worker's port sent and received, every ICRC
// recomputes), the in-flight budget and the port's counters; and rdma_cm over worker devices with
// no clock passed (the port's). Loopback UDP on 127.0.10.x (this suite's addresses).
import { afterEach, describe, expect, it } from "vitest";
import { openDevice } from "../../../host/node/index.js";
import { PcapRecorder, icrcMatches } from "../../../host/core/capture/recorder.js";
import { readCaptureAll, LINKTYPE_IPV4 } from "../../../host/core/capture/pcap.js";
import { WireCodec } from "../../../host/core/wire/codec.js";
import { coreModule } from "../../../host/node/wasm-source.js";
import { Access, SendFlags, WcOpcode, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import type { Device } from "../../../host/core/verbs/device.js";
import { WorkerPort } from "../../../host/core/worker/index.js";
import { PortSpace, RdmaCmEventType as E } from "../../../host/core/cm/index.js";
import { cmOn, nextCmEvent, resolvedCmClient } from "../support/rdma-cm.js";
import { connectRcEnds, openRcEnd, type RcEnd } from "../support/rc-end.js";

const ACCESS = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ;
const opened: Device[] = [];
afterEach(() => {
  while (opened.length) opened.pop()!.close();
});

async function open(address: string, worker: boolean, port = 0): Promise<Device> {
  const d = await openDevice({ address, port, worker });
  opened.push(d);
  if (worker) expect(d.worker, d.workerFallback).toBe(true);
  return d;
}

/** A worker device (A) and a thread device (B) with one connected RC QP each (connectRcEnds: a long ACK timeout). */
async function pair(a: string, b: string) {
  const A = await openRcEnd(a, { worker: true }, ACCESS, { mrBytes: 16384, opened });
  const B = await openRcEnd(b, { worker: false }, ACCESS, { mrBytes: 16384, opened });
  connectRcEnds(A, B, ACCESS);
  return { A, B };
}

async function sendOnce(A: RcEnd, B: RcEnd, len: number, wrId: bigint) {
  B.qp.postRecv({ wrId, sgList: [B.mr.sge(0, 8192)] });
  A.qp.postSend({ wrId, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [A.mr.sge(0, len)] });
  expect((await A.cq.next()).status).toBe(WcStatus.SUCCESS);
  const wc = await B.cq.next();
  expect(wc.status).toBe(WcStatus.SUCCESS);
  expect(wc.byteLen).toBe(len);
}

describe("device.port of a worker device", () => {
  it("is there with the clock, the worker's counters and a capture that records what the worker sent and received", async () => {
    const { A, B } = await pair("127.0.10.101", "127.0.10.102");
    const port = A.d.port;
    expect(port).toBeInstanceOf(WorkerPort);
    const t = port!.clock.now();
    expect(t).toBeGreaterThan(0);
    expect(A.d.now()).toBeGreaterThanOrEqual(t);

    const rec = new PcapRecorder();
    const detach = rec.attach(port!);
    A.mr.bytes.set(Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff));
    await sendOnce(A, B, 3000, 1n); // MTU 1024: three SEND packets out, one ACK (or more) back
    await (port as WorkerPort).captureFlush();
    const tx = rec.packets.filter((p) => p.dir === "tx");
    const rx = rec.packets.filter((p) => p.dir === "rx");
    expect(tx.length).toBe(3);
    expect(rx.length).toBe(B.d.port!.stats.txDatagrams);
    expect(rx.length).toBeGreaterThan(0);
    expect(rx.every((p) => p.rxResult === 0)).toBe(true);
    // the worker's counters, copied into the control block
    expect(port!.stats.txDatagrams).toBe(3);
    expect(port!.stats.rxDatagrams).toBe(rx.length);
    expect(port!.stats.rxDropped).toBe(0);

    const file = rec.pcap();
    const recs = readCaptureAll(file);
    expect(recs.length).toBe(rec.packets.length);
    expect(recs[0]!.linktype).toBe(LINKTYPE_IPV4);
    const codec = await WireCodec.create(await coreModule());
    expect(recs.map((r) => icrcMatches(codec, r.data!))).toEqual(recs.map(() => true));
    // the first datagram is SEND FIRST (opcode 0) from A's address, carrying A's bytes
    const first = recs[0]!.data!;
    expect(first[28]).toBe(0);
    expect([...first.subarray(12, 16)]).toEqual([127, 0, 10, 101]);
    expect([...first.subarray(28 + 12, 28 + 12 + 16)]).toEqual([...A.mr.bytes.subarray(0, 16)]);

    // detached: the worker stops tapping; later traffic is not recorded
    detach();
    expect(port!.capture).toBeUndefined();
    const before = rec.packets.length;
    await sendOnce(A, B, 100, 2n);
    await (port as WorkerPort).captureFlush();
    expect(rec.packets.length).toBe(before);
    expect(port!.stats.txDatagrams).toBe(4);
  });

  it("budget() and setBudget() are the worker's device's; receive() here is refused", async () => {
    const { A, B } = await pair("127.0.10.103", "127.0.10.104");
    const port = A.d.port!;
    const b0 = port.budget();
    expect(Object.keys(b0)).toEqual(["limit", "inflight", "waiting", "admits", "waits", "wakes", "peak", "limitPackets", "inflightPackets"]);
    port.setBudget(1 << 20, 64);
    const b1 = port.budget();
    expect(b1.limit).toBe(1 << 20);
    expect(b1.limitPackets).toBe(64);
    await sendOnce(A, B, 2000, 3n);
    const b2 = port.budget();
    expect(b2.admits).toBeGreaterThan(b0.admits);
    expect(b2.inflight).toBe(0);
    expect(() => port.setBudget(-1)).toThrow(RangeError);
    expect(() => port.receive({ src: "127.0.10.104", dst: "127.0.10.103", srcPort: 1, dstPort: 2, payload: new Uint8Array(40) })).toThrow(/worker/);
    const s = await (port as WorkerPort).fetchStats();
    expect(s.port?.txDatagrams).toBe(port.stats.txDatagrams);
    if (process.platform === "linux") {
      // the worker thread's own task (not this one) and its CPU so far
      expect(s.thread!.tid).toBeGreaterThan(0);
      expect(s.thread!.tid).not.toBe(process.pid);
      expect(s.thread!.runNs).toBeGreaterThan(0);
      const later = await (port as WorkerPort).fetchStats();
      expect(later.thread!.tid).toBe(s.thread!.tid);
      expect(later.thread!.runNs).toBeGreaterThanOrEqual(s.thread!.runNs);
    }
    // the native datapath's counters come with them (the datagrams it sent)
    if (s.datapath) expect(s.datapath.txDatagrams).toBeGreaterThanOrEqual(1);
  });

  it("a capture record carries the worker's time of capture, not its arrival on this thread", async () => {
    const { A, B } = await pair("127.0.10.106", "127.0.10.107");
    const port = A.d.port!;
    const rec = new PcapRecorder();
    rec.attach(port);
    const epochUs = () => (performance.timeOrigin + performance.now()) * 1000;
    B.qp.postRecv({ wrId: 1n, sgList: [B.mr.sge(0, 8192)] });
    const t0 = epochUs();
    A.qp.postSend({ wrId: 1n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [A.mr.sge(0, 100)] });
    // this thread stays busy for 200 ms: the worker sends meanwhile; its records can only arrive after
    const busyUntil = performance.now() + 200;
    while (performance.now() < busyUntil);
    const t1 = epochUs();
    expect((await A.cq.next()).status).toBe(WcStatus.SUCCESS);
    await (port as WorkerPort).captureFlush();
    const tx = rec.packets.find((p) => p.dir === "tx")!;
    expect(tx).toBeDefined();
    expect(tx.tsMicros).toBeGreaterThanOrEqual(t0 - 1000);
    expect(tx.tsMicros).toBeLessThan(t1);
    // in order of capture: the ACK came after the SEND left
    const times = rec.packets.map((p) => p.tsMicros);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    // a recorder with its own clock keeps it
    const own = new PcapRecorder({ now: () => 42 });
    own.attach(port);
    await sendOnce(A, B, 100, 2n);
    await (port as WorkerPort).captureFlush();
    expect(own.packets.length).toBeGreaterThan(0);
    expect(own.packets.every((p) => p.tsMicros === 42)).toBe(true);
  });

  it("closing the device stops the port: its capture is off", async () => {
    const d = await open("127.0.10.105", true);
    const port = d.port!;
    new PcapRecorder().attach(port);
    expect(port.capture).toBeDefined();
    d.close();
    expect(port.capture).toBeUndefined();
  });
});

describe("rdma_cm over worker devices", () => {
  it("openRdmaCm({ devices }) with no clock: connect, accept, a SEND each way, disconnect", async () => {
    const S = "127.0.10.201";
    const C = "127.0.10.202";
    const server = await open(S, true, 4791);
    const client = await open(C, true, 4791);
    const { ch: sch } = cmOn(server);
    const listener = sch.createId(PortSpace.TCP);
    listener.bindAddr({ address: S, port: 7471 });
    listener.listen(1);

    const cap = { maxSendWr: 4, maxRecvWr: 4, maxSendSge: 1, maxRecvSge: 1 };
    const { ch: cch, id, qp: cqp } = await resolvedCmClient(client, { address: S, port: 7471 }, cap);
    const cmr = id.pd!.regMr(4096, ACCESS);
    cqp.postRecv({ wrId: 1n, sgList: [cmr.sge(2048, 64)] });
    id.connect({ responderResources: 1, initiatorDepth: 1 });

    const req = await nextCmEvent(sch, E.CONNECT_REQUEST);
    const conn = req.id;
    const sqp = conn.createQp(undefined, { cap });
    const smr = conn.pd!.regMr(4096, ACCESS);
    sqp.postRecv({ wrId: 2n, sgList: [smr.sge(0, 64)] });
    conn.accept({ responderResources: 1, initiatorDepth: 1 });
    await nextCmEvent(cch, E.ESTABLISHED);
    await nextCmEvent(sch, E.ESTABLISHED);

    cmr.bytes.set([1, 2, 3, 4, 5], 0);
    cqp.postSend({ wrId: 10n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [cmr.sge(0, 5)] });
    const got = await sqp.recvCq.next();
    expect(got.status).toBe(WcStatus.SUCCESS);
    expect(got.opcode).toBe(WcOpcode.RECV);
    expect([...smr.bytes.subarray(0, 5)]).toEqual([1, 2, 3, 4, 5]);
    smr.bytes.set([9, 8, 7], 100);
    sqp.postSend({ wrId: 11n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [smr.sge(100, 3)] });
    const back = await cqp.recvCq.next();
    expect(back.byteLen).toBe(3);
    expect([...cmr.bytes.subarray(2048, 2051)]).toEqual([9, 8, 7]);

    // the client's DREQ: the server hears it and answers with its own disconnect (the DREP)
    id.disconnect();
    await nextCmEvent(sch, E.DISCONNECTED);
    conn.disconnect();
    await nextCmEvent(cch, E.DISCONNECTED);
  });
});

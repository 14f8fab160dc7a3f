// openTunnelDevice(url, { worker: true }) on Node: the worker opens the WebSocket to the gateway
// (with the token), the device gets the HELLO's identity, and RC WRITE and SEND with a Node UDP
// device run through the tunnel with the bytes checked; a wrong token is refused with the
// gateway's reason; the link view reports the tunnel going down.
import { afterEach, describe, expect, it } from "vitest";
import { openDevice, openTunnelDevice, udpPortOf } from "../../../host/node/index.js";
import { Gateway } from "../../../host/gateway/index.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, QpType, SendFlags, WcOpcode, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import type { Device } from "../../../host/core/verbs/device.js";
import { WorkerPort, type WorkerTunnelLink } from "../../../host/core/worker/index.js";
import { PcapRecorder } from "../../../host/core/capture/recorder.js";
import { rcEnd } from "../support/verbs-helpers.js";

const TOKEN = "worker-tunnel-token";
const U = "127.0.10.30";
const ACCESS = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const rc = (dev: Device) => rcEnd(dev, 65536, ACCESS);

describe("a tunnel device in a worker thread (Node)", () => {
  it("opens through the gateway in the worker; WRITE and SEND with a UDP device, bytes checked; a wrong token is refused", async () => {
    const n = rc(await openDevice({ address: U, port: 0 }));
    cleanups.push(() => n.dev.close());
    const gw = await Gateway.start({ port: 0, udpAddress: U, udpPort: 0, token: TOKEN, allow: [U], dstPorts: [udpPortOf(n.dev)!] });
    cleanups.push(() => gw.close());
    const url = `ws://127.0.0.1:${gw.port}/tunnel`;
    await expect(openTunnelDevice(url, { worker: true, token: "wrong", helloTimeoutMs: 20000 })).rejects.toThrow(/tunnel: /);

    const t = await openTunnelDevice(url, { worker: true, token: TOKEN, helloTimeoutMs: 20000 });
    cleanups.push(() => t.device.close());
    expect(t.device.worker).toBe(true);
    expect([t.link.hello.port, t.device.queryGid(0)]).toEqual([gw.udpPort, `::ffff:${U}`]);
    const a = rc(t.device);
    expect(a.qp.qpNum).toBeGreaterThanOrEqual(t.link.hello.qpnBase);
    const o = { qpAccessFlags: ACCESS, timeout: 14, retryCnt: 7 };
    connectQp(a.qp, { qpNum: n.qp.qpNum, psn: 5, gid: `::ffff:${U}`, port: udpPortOf(n.dev) }, { sqPsn: 9, ...o });
    connectQp(n.qp, { qpNum: a.qp.qpNum, psn: 9, gid: t.device.queryGid(0), port: gw.udpPort }, { sqPsn: 5, ...o });

    // the tunnel device's port here: the clock, and a capture of what its worker sends through the tunnel
    const port = t.device.port as WorkerPort;
    expect(port).toBeInstanceOf(WorkerPort);
    expect(port.clock.now()).toBeGreaterThan(0);
    const rec = new PcapRecorder({ directions: ["tx"] });
    rec.attach(port);
    for (let i = 0; i < 3000; i++) a.mr.bytes[i] = (i * 13 + 1) & 0xff;
    n.qp.postRecv({ wrId: 77n, sgList: [n.mr.sge(40000, 1000)] });
    a.qp.postSend([
      { wrId: 1n, opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [a.mr.sge(0, 3000)], rdma: { remoteAddr: n.mr.addr + 100n, rkey: n.mr.rkey } },
      { wrId: 2n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [a.mr.sge(0, 900)] },
    ]);
    const wcs = [await a.cq.next(), await a.cq.next()];
    expect(wcs.map((w) => [w.wrId, w.status, w.opcode])).toEqual([[1n, WcStatus.SUCCESS, WcOpcode.RDMA_WRITE], [2n, WcStatus.SUCCESS, WcOpcode.SEND]]);
    const r = await n.cq.next();
    expect([r.wrId, r.status, r.byteLen]).toEqual([77n, WcStatus.SUCCESS, 900]);
    expect(n.mr.bytes.subarray(100, 3100)).toEqual(a.mr.bytes.subarray(0, 3000));
    expect(n.mr.bytes.subarray(40000, 40900)).toEqual(a.mr.bytes.subarray(0, 900));
    await port.captureFlush();
    // the WRITE (3000 B at the default MTU 1024: FIRST, MIDDLE, LAST) and the SEND ONLY, from the HELLO's
    // address; a loaded machine may add retransmissions of the same packets, each counted once
    const ops = rec.packets.map((p) => p.packet[28]);
    expect(ops.slice(0, 4)).toEqual([6, 7, 8, 4]);
    expect(ops.every((o) => [6, 7, 8, 4].includes(o!))).toBe(true);
    expect(port.stats.txDatagrams).toBe(rec.packets.length);
    expect([...rec.packets[0]!.packet.subarray(12, 16)]).toEqual(U.split(".").map(Number));
    expect("fetchStats" in t.link).toBe(true);
    const s = await (t.link as WorkerTunnelLink).fetchStats();
    expect(s.link.sent).toBeGreaterThan(0);

    // the gateway goes away: the link view says so
    const down = new Promise<string>((resolve) => (t.link.onDown = resolve));
    await gw.close();
    expect(await down).toMatch(/closed|error/);
    expect(t.link.isDown).toBe(true);
  });
});

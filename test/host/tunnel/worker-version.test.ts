// The tunnel devices in a worker speak tunnel version 2 (docs/TUNNEL.md): openTunnelDevice(url,
// { worker: true }) on Node offers softroce-tunnel.2, gets the version-2 HELLO (max_frame), and a
// multi-packet RC WRITE leaves the worker as fewer WebSocket messages than datagrams (BATCH), in
// both directions, every byte checked. The page's Web Worker is checked by the system suite
// worker-browser (test/system/worker-browser.sys.mjs).
import { afterEach, describe, expect, it } from "vitest";
import { openDevice, openTunnelDevice, udpPortOf } from "../../../host/node/index.js";
import { Gateway } from "../../../host/gateway/index.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, Mtu, QpType, SendFlags, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import type { Device } from "../../../host/core/verbs/device.js";
import type { WorkerTunnelLink } from "../../../host/core/worker/index.js";
import { TUNNEL_VERSION_BATCH } from "../../../host/core/tunnel/frames.js";
import { rcEnd } from "../support/verbs-helpers.js";

const TOKEN = "worker-v2-token";
const U = "127.0.16.21";
const ACCESS = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const rc = (dev: Device) => rcEnd(dev, 1 << 18, ACCESS);

describe("tunnel version 2 from a worker (Node)", () => {
  it("openTunnelDevice({ worker: true }) gets a version-2 HELLO and sends and receives BATCH frames; bytes checked", async () => {
    const n = rc(await openDevice({ address: U, port: 0, activeMtu: Mtu.MTU_1024 }));
    cleanups.push(() => n.dev.close());
    const gw = await Gateway.start({ port: 0, udpAddress: U, udpPort: 0, token: TOKEN, allow: [U], dstPorts: [udpPortOf(n.dev)!] });
    cleanups.push(() => gw.close());
    const t = await openTunnelDevice(`ws://127.0.0.1:${gw.port}/tunnel`, { worker: true, token: TOKEN, helloTimeoutMs: 20000, activeMtu: Mtu.MTU_1024 });
    cleanups.push(() => t.device.close());
    expect(t.device.worker).toBe(true);
    expect([t.link.hello.version, t.link.hello.maxFrame]).toEqual([TUNNEL_VERSION_BATCH, 256 * 1024]);

    const a = rc(t.device);
    const o = { qpAccessFlags: ACCESS, timeout: 14, retryCnt: 7, pathMtu: Mtu.MTU_1024 };
    connectQp(a.qp, { qpNum: n.qp.qpNum, psn: 5, gid: `::ffff:${U}`, port: udpPortOf(n.dev) }, { sqPsn: 9, ...o });
    connectQp(n.qp, { qpNum: a.qp.qpNum, psn: 9, gid: t.device.queryGid(0), port: gw.udpPort }, { sqPsn: 5, ...o });

    // out of the worker: a 64 KiB WRITE is 64 datagrams at MTU 1024
    for (let i = 0; i < 65536; i++) a.mr.bytes[i] = (i * 13 + 1) & 0xff;
    a.qp.postSend({ wrId: 1n, opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [a.mr.sge(0, 65536)], rdma: { remoteAddr: n.mr.addr, rkey: n.mr.rkey } });
    expect((await a.cq.next()).status).toBe(WcStatus.SUCCESS);
    expect(n.mr.bytes.subarray(0, 65536)).toEqual(a.mr.bytes.subarray(0, 65536));
    // into the worker: the Node device WRITEs 64 KiB back
    for (let i = 0; i < 65536; i++) n.mr.bytes[100000 + i] = (i * 7 + 3) & 0xff;
    n.qp.postSend({ wrId: 2n, opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [n.mr.sge(100000, 65536)], rdma: { remoteAddr: a.mr.addr + 100000n, rkey: a.mr.rkey } });
    expect((await n.cq.next()).status).toBe(WcStatus.SUCCESS);
    expect(a.mr.bytes.subarray(100000, 165536)).toEqual(n.mr.bytes.subarray(100000, 165536));

    const s = (await (t.link as WorkerTunnelLink).fetchStats()).link as Record<string, number>;
    expect(s.sent).toBeGreaterThanOrEqual(64);
    expect(s.received).toBeGreaterThanOrEqual(64);
    // BATCH both ways: fewer messages than datagrams
    expect(s.framesSent).toBeLessThan(s.sent);
    expect(s.framesReceived).toBeLessThan(s.received);
    expect(gw.counters.framesIn).toBeLessThan(gw.counters.udpOut);
  });
});

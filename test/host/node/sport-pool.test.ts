// Per-QP UDP source ports on the Node host (host/node/sport-pool.ts), on both UDP paths: each QP's
// datagrams leave from the port Linux rxe would give it (rdma_get_udp_sport at RTR, the create-time
// port for UD), with an ICRC over that port; a port that cannot be bound (taken, or past the pool's
// cap) moves the QP to the device's port, counted; stray datagrams to a pool socket are counted;
// sockets of ports no QP has are closed; udpSourcePorts "device" sends everything from the device's port.
import { afterEach, describe, expect, it } from "vitest";
import dgram from "node:dgram";
import { openDevice, sourcePortsOf, udpLinkOf, type NodeDeviceOptions } from "../../../host/node/index.js";
import { datapathAddon } from "../../../host/node/datapath.js";
import { SourcePortPool } from "../../../host/node/sport-pool.js";
import { sockoptAddon } from "../../../host/node/sockopt.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, QpType, SendFlags, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import type { Device } from "../../../host/core/verbs/device.js";
import type { QueuePair } from "../../../host/core/verbs/qp.js";
import type { CapturedDatagram } from "../../../host/core/link/index.js";
import { createSport, rxeSport } from "../../system/lib/rxe-sport.mjs";
import { until } from "../support/until.js";

const opened: Device[] = [];
const sockets: dgram.Socket[] = [];
afterEach(() => {
  while (opened.length) opened.pop()!.close();
  while (sockets.length) sockets.pop()!.close();
});

const PATHS = datapathAddon() ? (["native", "dgram"] as const) : (["dgram"] as const);
const ACCESS = Access.LOCAL_WRITE | Access.REMOTE_WRITE;

interface Side {
  d: Device;
  qp: QueuePair;
  cq: ReturnType<Device["createCq"]>;
  mr: ReturnType<ReturnType<Device["allocPd"]>["regMr"]>;
  port: number;
  rx: CapturedDatagram[];
}

describe.each(PATHS)("per-QP UDP source ports (%s)", (path) => {
  const open = async (address: string, o: Partial<NodeDeviceOptions> = {}): Promise<Device> => {
    // without QP1 (its port, 0xD872, is readied when the device opens: the test below), the pool holds only these QPs' ports
    const d = await openDevice({ address, port: 0, datapath: path, gsi: false, ...o });
    opened.push(d);
    return d;
  };
  const side = (d: Device, qpType: number = QpType.RC): Side => {
    const pd = d.allocPd();
    const cq = d.createCq(64);
    const qp = pd.createQp({ qpType, sendCq: cq, recvCq: cq, cap: { maxSendWr: 16, maxRecvWr: 16, maxSendSge: 1, maxRecvSge: 1 } });
    const mr = pd.regMr(1 << 16, ACCESS);
    const rx: CapturedDatagram[] = [];
    d.port!.capture = (dir, g) => {
      if (dir === "rx") rx.push({ ...g, payload: g.payload.slice() });
    };
    return { d, qp, cq, mr, port: (d.limits as { port: number }).port, rx };
  };
  const connect = (A: Side, B: Side): void => {
    const common = { qpAccessFlags: ACCESS, timeout: 18 };
    connectQp(A.qp, { qpNum: B.qp.qpNum, psn: 0, gid: B.d.queryGid(0), port: B.port }, { ...common, sqPsn: 0 });
    connectQp(B.qp, { qpNum: A.qp.qpNum, psn: 0, gid: A.d.queryGid(0), port: A.port }, { ...common, sqPsn: 0 });
  };
  /** WRITEs A -> B, then a SEND: all complete, the bytes arrive. */
  const traffic = async (A: Side, B: Side): Promise<void> => {
    const src = new Uint8Array(A.d.memory.buffer, Number(A.mr.addr), 8192);
    for (let i = 0; i < src.length; i++) src[i] = (i * 7 + 3) & 0xff;
    B.qp.postRecv({ wrId: 1n, sgList: [B.mr.sge(16384, 64)] });
    A.qp.postSend({ wrId: 2n, opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [A.mr.sge(0, 8192)], rdma: { remoteAddr: B.mr.addr, rkey: B.mr.rkey } });
    A.qp.postSend({ wrId: 3n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [A.mr.sge(0, 64)] });
    expect((await A.cq.next()).status).toBe(WcStatus.SUCCESS);
    expect((await A.cq.next()).status).toBe(WcStatus.SUCCESS);
    expect((await B.cq.next()).status).toBe(WcStatus.SUCCESS);
    expect(Buffer.compare(new Uint8Array(B.d.memory.buffer, Number(B.mr.addr), 8192), src)).toBe(0);
  };

  it("QP1 (on by default) has rxe's 0xD872, readied with the device; the pool socket is open before any MAD", async () => {
    const d = await openDevice({ address: "127.0.13.16", port: 0, datapath: path });
    opened.push(d);
    expect(udpLinkOf(d)!.pool!.ports).toEqual([0xd872]);
    expect(sourcePortsOf(d)).toMatchObject({ open: 1, fallbacks: 0 });
  });

  it("RC: both QPs send from rxe's port for the QPN pair (readied at RTR), every ICRC over it checks", async () => {
    const A = side(await open("127.0.13.1"));
    const B = side(await open("127.0.13.2"));
    expect(A.qp.udpSourcePort).toBe(createSport(A.qp.qpNum));
    connect(A, B);
    const want = rxeSport(0, A.qp.qpNum, B.qp.qpNum);
    expect(A.qp.udpSourcePort).toBe(want);
    expect(B.qp.udpSourcePort).toBe(want);
    expect(udpLinkOf(A.d)!.pool!.ports).toEqual([want]); // opened at RTR, before the first packet
    await traffic(A, B);
    // B saw A's requests from `want`, A saw B's ACKs from `want`
    expect(B.rx.length).toBeGreaterThan(2);
    expect(new Set(B.rx.map((g) => g.srcPort))).toEqual(new Set([want]));
    expect(new Set(A.rx.map((g) => g.srcPort))).toEqual(new Set([want]));
    for (const g of [...A.rx, ...B.rx]) expect(g.rxResult).toBe(0);
    expect(A.d.queryCounters()).toMatchObject({ bad_icrc: 0 });
    expect(B.d.queryCounters()).toMatchObject({ bad_icrc: 0 });
    expect(sourcePortsOf(A.d)).toMatchObject({ mode: "per-qp", fallbacks: 0, open: 1, opened: 1, bindFailures: 0 });
    expect(udpLinkOf(A.d)!.pool!.ports).toEqual([want]);
  });

  it("an rdma_cm-style flow label in the AV gives the port from the label (0xC1E54 -> 0xDE64)", async () => {
    const A = side(await open("127.0.13.3"));
    const B = side(await open("127.0.13.4"));
    const ah = (gid: string, port: number) => ({ grh: { dgid: gid, sgidIndex: 0, hopLimit: 64, flowLabel: 0xc1e54 }, isGlobal: true, portNum: 1, destPort: port });
    for (const [X, Y] of [[A, B], [B, A]] as const) {
      X.qp.modify({ qpState: 1, pkeyIndex: 0, portNum: 1, qpAccessFlags: ACCESS });
      X.qp.modify({ qpState: 2, pathMtu: 3, destQpNum: Y.qp.qpNum, rqPsn: 0, maxDestRdAtomic: 1, minRnrTimer: 12, ahAttr: ah(Y.d.queryGid(0), Y.port) });
      X.qp.modify({ qpState: 3, sqPsn: 0, timeout: 18, retryCnt: 7, rnrRetry: 7, maxRdAtomic: 1 });
    }
    expect(A.qp.udpSourcePort).toBe(0xde64);
    await traffic(A, B);
    expect(new Set(B.rx.map((g) => g.srcPort))).toEqual(new Set([0xde64]));
  });

  it("UD: datagrams leave from the QP's create-time port", async () => {
    const a = await open("127.0.13.5");
    const b = await open("127.0.13.6");
    const A = side(a, QpType.UD);
    const B = side(b, QpType.UD);
    connectQp(A.qp, undefined, { sqPsn: 0 });
    connectQp(B.qp, undefined, { sqPsn: 0 });
    const ah = A.qp.pd.createAh({ grh: { dgid: b.queryGid(0), sgidIndex: 0, hopLimit: 64 }, isGlobal: true, portNum: 1, destPort: B.port });
    B.qp.postRecv({ wrId: 1n, sgList: [B.mr.sge(0, 1024)] });
    A.qp.postSend({ wrId: 2n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [A.mr.sge(0, 100)], ud: { ah, remoteQpn: B.qp.qpNum, remoteQkey: 0x11111111 } });
    expect((await A.cq.next()).status).toBe(WcStatus.SUCCESS);
    expect((await B.cq.next()).status).toBe(WcStatus.SUCCESS);
    expect(B.rx.map((g) => g.srcPort)).toEqual([createSport(A.qp.qpNum)]);
  });

  it("a port already bound elsewhere: the QP falls back to the device's port, counted; traffic flows", async () => {
    const A = side(await open("127.0.13.7"));
    const B = side(await open("127.0.13.8"));
    // the pair's port, taken on A's address before A sends
    const want = rxeSport(0, A.qp.qpNum, B.qp.qpNum);
    const squat = dgram.createSocket("udp4");
    sockets.push(squat);
    await new Promise<void>((r) => squat.bind(want, "127.0.13.7", r));
    connect(A, B);
    await traffic(A, B);
    expect(A.qp.udpSourcePort).toBe(A.port);
    expect(B.qp.udpSourcePort).toBe(want);
    expect(new Set(B.rx.map((g) => g.srcPort))).toEqual(new Set([A.port]));
    expect(new Set(A.rx.map((g) => g.srcPort))).toEqual(new Set([want]));
    expect(B.d.queryCounters()).toMatchObject({ bad_icrc: 0 });
    const s = sourcePortsOf(A.d)!;
    expect(s.fallbacks).toBeGreaterThanOrEqual(1);
    expect(s.bindFailures).toBeGreaterThanOrEqual(1);
    expect(s.failuresByCode).toMatchObject({ EADDRINUSE: s.bindFailures });
    expect(s.lastFailure).toMatch(new RegExp(`port ${want}.*127\\.0\\.13\\.7`));
  });

  it("the pool's cap: past it a QP takes the device's port (cap 1, two QPs)", async () => {
    const a = await open("127.0.13.9", { sourcePortCap: 1 });
    const b = await open("127.0.13.10");
    const A1 = side(a);
    const B1 = side(b);
    connect(A1, B1);
    await traffic(A1, B1);
    const A2 = { ...side(a), rx: A1.rx };
    const B2 = { ...side(b), rx: B1.rx };
    connect(A2, B2);
    await traffic(A2, B2);
    expect(A1.qp.udpSourcePort).toBe(rxeSport(0, A1.qp.qpNum, B1.qp.qpNum));
    if (A2.qp.udpSourcePort !== A1.qp.udpSourcePort) expect(A2.qp.udpSourcePort).toBe(A2.port);
    expect(sourcePortsOf(a)).toMatchObject({ cap: 1, open: 1, capRefusals: 1, fallbacks: expect.any(Number) });
    expect(sourcePortsOf(a)!.fallbacks).toBeGreaterThanOrEqual(1);
  });

  it("datagrams sent to a pool socket are read and counted; a destroyed QP's socket is closed by the sweep", async () => {
    const A = side(await open("127.0.13.11"));
    const B = side(await open("127.0.13.12"));
    connect(A, B);
    await traffic(A, B);
    const want = A.qp.udpSourcePort;
    const s = dgram.createSocket("udp4");
    sockets.push(s);
    await new Promise<void>((r) => s.bind(0, "127.0.13.11", r));
    await new Promise<void>((r, j) => s.send(new Uint8Array(40), want, "127.0.13.11", (e) => (e ? j(e) : r())));
    await until(() => sourcePortsOf(A.d)!.strayReceived === 1);
    const pool = udpLinkOf(A.d)!.pool!;
    pool.sweep();
    expect(pool.ports).toEqual([want]); // the QP still has it
    A.qp.destroy();
    pool.sweep();
    expect(pool.ports).toEqual([]);
    expect(sourcePortsOf(A.d)).toMatchObject({ open: 0, closed: 1 });
  });

  it('udpSourcePorts "device": every QP sends from the device\'s port', async () => {
    const A = side(await open("127.0.13.13", { udpSourcePorts: "device" }));
    const B = side(await open("127.0.13.14", { udpSourcePorts: "device" }));
    connect(A, B);
    expect(A.qp.udpSourcePort).toBe(A.port);
    await traffic(A, B);
    expect(new Set(B.rx.map((g) => g.srcPort))).toEqual(new Set([A.port]));
    expect(new Set(A.rx.map((g) => g.srcPort))).toEqual(new Set([B.port]));
    expect(sourcePortsOf(A.d)).toEqual({ mode: "device", fallbacks: 0 });
    expect(udpLinkOf(A.d)!.pool).toBeUndefined();
  });
});

it("a bad udpSourcePorts or sourcePortCap is refused with a clear error", async () => {
  await expect(openDevice({ address: "127.0.13.15", port: 0, sourcePortCap: 0 })).rejects.toThrow(/sourcePortCap/);
  await expect(openDevice({ address: "127.0.13.15", port: 0, udpSourcePorts: "some" as "device" })).rejects.toThrow(/udpSourcePorts/);
});

it("the pool tells onClose each descriptor before its socket closes (the native link ends a writable wait on it)", async () => {
  const told: number[] = [];
  let used = new Set<number>([50401, 50402]);
  const pool = new SourcePortPool({ address: "127.0.13.17", family: 4, addon: sockoptAddon()!, inUse: () => used, sweepMs: 600_000, onClose: (fd) => told.push(fd) });
  const a = pool.fd(50401), b = pool.fd(50402);
  expect(a).toBeGreaterThanOrEqual(0);
  expect(b).toBeGreaterThanOrEqual(0);
  pool.sweep();
  expect(told).toEqual([]);
  used = new Set([50402]);
  pool.sweep();
  expect(told).toEqual([a]);
  await pool.close();
  expect(told).toEqual([a, b]);
});

it("a port the sweep closed opens again only for a live QP that has it (a destroyed QP's packets leave from the device's port)", async () => {
  let used = new Set<number>([50411]);
  const pool = new SourcePortPool({ address: "127.0.13.18", family: 4, addon: sockoptAddon()!, inUse: () => used, sweepMs: 600_000 });
  try {
    expect(pool.fd(50411)).toBeGreaterThanOrEqual(0);
    used = new Set();
    pool.sweep(); // the QP was destroyed: its socket closes
    expect(pool.stats()).toMatchObject({ open: 0, closed: 1, opened: 1 });
    // its packets still in the TX ring ask for the port again: refused, counted, nothing bound
    expect(pool.fd(50411)).toBe(-1);
    expect(pool.fd(50411)).toBe(-1);
    expect(pool.stats()).toMatchObject({ open: 0, opened: 1, sweptRefusals: 2 });
    expect(pool.stats().lastFailure).toMatch(/50411: closed by the sweep, no live QP has it/);
    // a new QP that got the same port: it opens again, and stays open
    used = new Set([50411]);
    expect(pool.fd(50411)).toBeGreaterThanOrEqual(0);
    expect(pool.stats()).toMatchObject({ open: 1, opened: 2, sweptRefusals: 2 });
    // a port never swept opens as before, whoever asks
    expect(pool.fd(50412)).toBeGreaterThanOrEqual(0);
  } finally {
    await pool.close();
  }
});

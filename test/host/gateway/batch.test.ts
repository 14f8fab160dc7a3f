// Tunnel version 2 through the gateway (docs/TUNNEL.md): a client that offers the subprotocol
// gets a version-2 HELLO and may send BATCH frames, each datagram checked as if alone; the gateway
// gathers what it sends such a client in one loop turn into BATCH frames; version-1 clients are
// served as before and may not send version-2 frames. Addresses: 127.0.21.0/24.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { openDevice, openTunnelDevice } from "../../../host/node/index.js";
import { coreModule } from "../../../host/node/wasm-source.js";
import { datapathAddon } from "../../../host/node/datapath.js";
import { Gateway, type GatewayOptions, type LogRecord } from "../../../host/gateway/index.js";
import {
  FrameKind, HELLO_LEN, HELLO_V2_LEN, TUNNEL_SUBPROTOCOL_V2, emitBatch, parseFrame, type HelloFrame,
} from "../../../host/core/tunnel/frames.js";
import { WireCodec, type PacketSpec } from "../../../host/core/wire/codec.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, Mtu, QpType, SendFlags, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import type { Device } from "../../../host/core/verbs/device.js";
import { until } from "../support/until.js";

const GW = "127.0.21.5";
const PEER = "127.0.21.6";
const TOKEN = "batch-token";
const cleanups: (() => unknown)[] = [];
/**
 * The paths the gateway has here: node:dgram always; when the addon is built, the native UDP side
 * with packets through the event loop ("native") and through the native relay thread ("relay").
 */
const UDP_SIDES: ("relay" | "native" | "dgram")[] = datapathAddon() ? ["relay", "native", "dgram"] : ["dgram"];
/** The path the running test's gateway uses. */
let side: "relay" | "native" | "dgram" = "dgram";
/** Gateway options for it. */
const sideOptions = (): GatewayOptions => ({ nativeUdp: side !== "dgram", relay: side === "relay" ? "native" : "js" });
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setup() {
  const peer = await openDevice({ address: PEER, port: 0, activeMtu: Mtu.MTU_4096, mrArenaBytes: 4 << 20 });
  cleanups.push(() => peer.close());
  const peerPort = (peer.limits as { port: number }).port;
  const logs: LogRecord[] = [];
  const gw = await Gateway.start({ listen: GW, port: 0, udpAddress: GW, udpPort: 0, token: TOKEN, allow: [PEER], dstPorts: [peerPort], log: (r) => logs.push(r), ...sideOptions() });
  cleanups.push(() => gw.close());
  expect(gw.udpPath).toBe(side === "dgram" ? "dgram" : "native");
  expect(gw.relayPath).toBe(side === "relay" ? "native" : "js");
  return { peer, peerPort, gw, logs };
}

function rawClient(gw: Gateway, protocols: string[]): Promise<{ s: WebSocket; hello: HelloFrame; raw: Buffer; frames: Buffer[] }> {
  const s = new WebSocket(`ws://${GW}:${gw.port}/tunnel`, protocols, { headers: { authorization: `Bearer ${TOKEN}` }, perMessageDeflate: false });
  cleanups.push(() => s.terminate());
  const frames: Buffer[] = [];
  return new Promise((resolve, reject) => {
    s.on("error", reject);
    s.on("message", (d: Buffer) => {
      const f = parseFrame(d);
      if (f.kind === FrameKind.HELLO) resolve({ s, hello: f, raw: d, frames });
      else frames.push(d);
    });
  });
}

let codec: WireCodec | undefined;
async function roce(spec: Partial<PacketSpec> & { opcode: number; destQp: number }): Promise<Uint8Array> {
  codec ??= await WireCodec.create(await coreModule());
  return codec.emit({ src: GW, dst: PEER, ...spec } as PacketSpec).subarray(28).slice();
}

// every test against both UDP sides: the native datapath (when the addon is built) and node:dgram
for (const udp of UDP_SIDES) {
  describe(`${udp} UDP side`, () => {
  beforeEach(() => {
    side = udp;
  });
  describe(`gateway: tunnel version 2 (${udp} UDP side)`, () => {
    it("HELLO by what the client offers: version 2 (40 bytes, max frame) or version 1 (36)", async () => {
      const { gw } = await setup();
      const v2 = await rawClient(gw, [TUNNEL_SUBPROTOCOL_V2]);
      expect(v2.s.protocol).toBe(TUNNEL_SUBPROTOCOL_V2);
      expect(v2.raw.length).toBe(HELLO_V2_LEN);
      expect(v2.hello).toMatchObject({ version: 2, maxFrame: 256 * 1024 });
      const v1 = await rawClient(gw, []);
      expect(v1.s.protocol).toBe("");
      expect(v1.raw.length).toBe(HELLO_LEN);
      expect(v1.hello.version).toBe(1);
    });

    it("each datagram of a client's BATCH is checked alone: the good ones leave, the refused one gets a version-2 ERROR", async () => {
      const { gw, peerPort, logs } = await setup();
      const c = await rawClient(gw, [TUNNEL_SUBPROTOCOL_V2]);
      const good = await roce({ opcode: 0x04, destQp: 0x11, psn: 1, payload: new Uint8Array(8) } as never);
      const batch = emitBatch([
        { address: PEER, port: peerPort, ipId: 0, payload: good },
        { address: PEER, port: 9, ipId: 0, payload: good }, // a port not on the allowlist
        { address: PEER, port: peerPort, ipId: 0, payload: good },
      ]);
      c.s.send(batch);
      await until(() => gw.counters.udpOut === 2 && c.frames.length === 1);
      expect(c.frames[0]![0]).toBe(2);
      expect(parseFrame(c.frames[0]!)).toMatchObject({ kind: FrameKind.ERROR, name: "destination_refused" });
      expect(gw.counters.refused).toEqual({ destination_refused: 1 });
      expect(logs.filter((l) => l.reason === "destination_refused").map((l) => l.detail)).toEqual(["UDP port 9 not allowed"]);
      expect(c.s.readyState).toBe(WebSocket.OPEN);
      // a version-1 client may not send version-2 frames
      const old = await rawClient(gw, []);
      const closed = new Promise<number>((r) => old.s.on("close", (code) => r(code)));
      old.s.send(batch);
      expect(await closed).toBe(1002);
      expect(gw.counters.refused).toMatchObject({ bad_frame: 1 });
    });

    it("a tunnel device on version 2 moves RC WRITEs both ways with a Node UDP device: several datagrams per frame, every byte right", async () => {
      const { gw, peer, peerPort } = await setup();
      const t = await openTunnelDevice(`ws://${GW}:${gw.port}/tunnel`, { token: TOKEN, activeMtu: Mtu.MTU_4096, mrArenaBytes: 4 << 20 });
      cleanups.push(() => t.device.close());
      expect(t.link.hello.version).toBe(2);
      const ACCESS = Access.LOCAL_WRITE | Access.REMOTE_WRITE;
      const side = (d: Device) => {
        const pd = d.allocPd();
        const cq = d.createCq(64);
        const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 32, maxRecvWr: 4, maxSendSge: 1, maxRecvSge: 1 } });
        return { d, cq, qp, mr: pd.regMr(1 << 20, ACCESS) };
      };
      const a = side(t.device);
      const b = side(peer);
      const o = { pathMtu: Mtu.MTU_4096, qpAccessFlags: ACCESS, timeout: 16 };
      connectQp(a.qp, { qpNum: b.qp.qpNum, psn: 0x100, gid: peer.queryGid(0), port: peerPort }, { sqPsn: 0x200, ...o });
      connectQp(b.qp, { qpNum: a.qp.qpNum, psn: 0x200, gid: t.device.queryGid(0), port: gw.udpPort }, { sqPsn: 0x100, ...o });
      for (const [from, to] of [[a, b], [b, a]] as const) {
        from.mr.bytes.set(Uint8Array.from({ length: 1 << 20 }, (_, i) => (i * 7 + (i >>> 12) + (from === a ? 1 : 2)) & 0xff));
        for (let k = 0; k < 8; k++) {
          from.qp.postSend({ wrId: BigInt(k), opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [from.mr.sge(k * 65536, 65536)],
            rdma: { remoteAddr: to.mr.addr + BigInt(k * 65536), rkey: to.mr.rkey } });
        }
        for (let k = 0; k < 8; k++) expect((await from.cq.next()).status).toBe(WcStatus.SUCCESS);
        expect(Buffer.compare(to.mr.bytes.subarray(0, 8 * 65536), from.mr.bytes.subarray(0, 8 * 65536))).toBe(0);
      }
      expect(t.device.port!.stats.drops).toEqual({});
      expect(gw.counters.refused).toEqual({});
      // 128 data packets went out of the tunnel device and 128 came in, in fewer messages each way
      expect(t.link.stats.sent).toBeGreaterThanOrEqual(128);
      expect(t.link.stats.framesSent).toBeLessThan(t.link.stats.sent);
      expect(t.link.stats.received).toBeGreaterThanOrEqual(128);
      expect(t.link.stats.framesReceived).toBeLessThan(t.link.stats.received);
      // received in batches into the device's memory (rx_batch): a core call per message (per 64 datagrams of a larger one)
      expect(t.device.port!.batches).toBeGreaterThanOrEqual(t.link.stats.framesReceived);
      expect(t.device.port!.batches).toBeLessThan(t.link.stats.received);
    });

    it("through a 1-byte high-water mark the tunnel device's ring stops after each datagram and resumes: 16 x 64 KiB WRITEs complete, every byte right", async () => {
      const { gw, peer, peerPort } = await setup();
      const t = await openTunnelDevice(`ws://${GW}:${gw.port}/tunnel`, { token: TOKEN, activeMtu: Mtu.MTU_4096, mrArenaBytes: 4 << 20, highWaterMark: 1 });
      cleanups.push(() => t.device.close());
      const ACCESS = Access.LOCAL_WRITE | Access.REMOTE_WRITE;
      const a = t.device.allocPd();
      const cq = t.device.createCq(64);
      const qp = a.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 32, maxRecvWr: 4, maxSendSge: 1, maxRecvSge: 1 } });
      const mr = a.regMr(1 << 20, ACCESS);
      const ppd = peer.allocPd();
      const pcq = peer.createCq(64);
      const pqp = ppd.createQp({ qpType: QpType.RC, sendCq: pcq, recvCq: pcq, cap: { maxSendWr: 4, maxRecvWr: 4, maxSendSge: 1, maxRecvSge: 1 } });
      const pmr = ppd.regMr(1 << 20, ACCESS);
      const o = { pathMtu: Mtu.MTU_4096, qpAccessFlags: ACCESS, timeout: 16 };
      connectQp(qp, { qpNum: pqp.qpNum, psn: 0x100, gid: peer.queryGid(0), port: peerPort }, { sqPsn: 0x200, ...o });
      connectQp(pqp, { qpNum: qp.qpNum, psn: 0x200, gid: t.device.queryGid(0), port: gw.udpPort }, { sqPsn: 0x100, ...o });
      mr.bytes.set(Uint8Array.from({ length: 1 << 20 }, (_, i) => (i * 11 + (i >>> 10)) & 0xff));
      for (let k = 0; k < 16; k++) {
        qp.postSend({ wrId: BigInt(k), opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [mr.sge(k * 65536, 65536)],
          rdma: { remoteAddr: pmr.addr + BigInt(k * 65536), rkey: pmr.rkey } });
      }
      for (let k = 0; k < 16; k++) {
        const wc = await cq.next();
        expect([wc.wrId, wc.status]).toEqual([BigInt(k), WcStatus.SUCCESS]);
      }
      expect(Buffer.compare(pmr.bytes, mr.bytes)).toBe(0);
      // every datagram met the mark: blocked and resumed, never dropped
      expect(t.link.stats.backpressured).toBeGreaterThanOrEqual(64);
      expect(t.link.stats.droppedDown).toBe(0);
      expect(gw.counters.refused).toEqual({});
    });
  });
  });
}

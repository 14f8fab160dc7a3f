// The gateway end to end on loopback: a Node client's device through a real `ws`
// tunnel and the gateway to a Node UDP device (RC SEND/WRITE/READ, data checked),
// two tunnel clients hairpinned, and the security suite — each hostile case gets
// its exact refusal while the gateway keeps serving others.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import dgram from "node:dgram";
import WebSocket from "ws";
import { openDevice } from "../../../host/node/index.js";
import { coreModule } from "../../../host/node/wasm-source.js";
import { datapathAddon } from "../../../host/node/datapath.js";
import { Gateway, type GatewayOptions, type LogRecord } from "../../../host/gateway/index.js";
import { AddressPolicy } from "../../../host/gateway/address-policy.js";
import { openTunnelDeviceWith } from "../../../host/core/tunnel/device.js";
import { emitData, parseFrame, FrameKind, type HelloFrame } from "../../../host/core/tunnel/frames.js";
import { WireCodec, type PacketSpec } from "../../../host/core/wire/codec.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, QpType, SendFlags, WcFlags, WcOpcode, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import type { Device } from "../../../host/core/verbs/device.js";
import { until } from "../support/until.js";

const TOKEN = "s3cret-token";
const ALL = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ;
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

async function gateway(o: GatewayOptions = {}): Promise<{ gw: Gateway; logs: LogRecord[] }> {
  const logs: LogRecord[] = [];
  const gw = await Gateway.start({
    port: 0, udpPort: 0, token: TOKEN, allow: ["127.0.0.1"], log: (r) => logs.push(r), ...sideOptions(), ...o,
  });
  cleanups.push(() => gw.close());
  expect(gw.udpPath).toBe(side === "dgram" ? "dgram" : "native");
  expect(gw.relayPath).toBe(side === "relay" ? "native" : "js");
  // the startup record says which UDP side is active
  expect(logs.find((l) => l.event === "listening")?.detail).toMatch(new RegExp(` udp \\S+:\\d+ \\(${gw.udpPath}\\)$`));
  return { gw, logs };
}

function url(gw: Gateway): string {
  return `ws://127.0.0.1:${gw.port}/tunnel`;
}

function ws(gw: Gateway, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }): WebSocket {
  const s = new WebSocket(url(gw), { headers, perMessageDeflate: false });
  cleanups.push(() => s.terminate());
  return s;
}

/** A raw client: resolves with its socket and the HELLO, or the HTTP status it was refused with. */
function rawClient(gw: Gateway, headers?: Record<string, string>): Promise<{ s: WebSocket; hello: HelloFrame; frames: Uint8Array[] }> {
  const s = ws(gw, headers);
  const frames: Uint8Array[] = [];
  return new Promise((resolve, reject) => {
    s.on("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    s.on("error", reject);
    s.on("message", (d: Buffer) => {
      const f = parseFrame(d);
      if (f.kind === FrameKind.HELLO) resolve({ s, hello: f, frames });
      else frames.push(new Uint8Array(d));
    });
  });
}

function closed(s: WebSocket): Promise<number> {
  return new Promise((r) => s.on("close", (code) => r(code)));
}

async function tunnelDevice(gw: Gateway): Promise<{ device: Device; link: Awaited<ReturnType<typeof openTunnelDeviceWith>>["link"] }> {
  const t = await openTunnelDeviceWith(await coreModule(), ws(gw));
  cleanups.push(() => t.device.close());
  return t;
}

function rcSide(d: Device) {
  const pd = d.allocPd();
  const mr = pd.regMr(16384, ALL);
  const cq = d.createCq(64);
  const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 16, maxRecvWr: 16, maxSendSge: 1, maxRecvSge: 1 } });
  return { d, mr, cq, qp };
}

type Side = ReturnType<typeof rcSide>;

function connect(a: Side, aPort: number, b: Side, bPort: number): void {
  // through the relay a packet also waits for the relay thread to get a CPU: on a loaded machine
  // that is more than the 4 ms ACK timeout of the single-threaded paths allows (67 ms instead)
  const o = { qpAccessFlags: ALL, timeout: side === "relay" ? 14 : 10, retryCnt: 7 };
  connectQp(a.qp, { qpNum: b.qp.qpNum, psn: 0x100, gid: b.d.queryGid(0), port: bPort }, { sqPsn: 0x200, ...o });
  connectQp(b.qp, { qpNum: a.qp.qpNum, psn: 0x200, gid: a.d.queryGid(0), port: aPort }, { sqPsn: 0x100, ...o });
}

/** SEND, WRITE, READ from a to b, every byte checked. */
async function exercise(a: Side, b: Side): Promise<void> {
  const pattern = Uint8Array.from({ length: 3000 }, (_, i) => (i * 13 + 5) & 0xff);
  a.mr.bytes.set(pattern);
  b.qp.postRecv({ wrId: 1n, sgList: [b.mr.sge(0, 4096)] });
  a.qp.postSend({ wrId: 2n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [a.mr.sge(0, 3000)] });
  const s = await a.cq.next();
  expect(s.status).toBe(WcStatus.SUCCESS);
  const r = await b.cq.next();
  expect([r.status, r.opcode, r.byteLen]).toEqual([WcStatus.SUCCESS, WcOpcode.RECV, 3000]);
  expect(b.mr.bytes.subarray(0, 3000)).toEqual(pattern);
  a.qp.postSend({ wrId: 3n, opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [a.mr.sge(100, 2500)],
    rdma: { remoteAddr: b.mr.addr + 8192n, rkey: b.mr.rkey } });
  expect((await a.cq.next()).status).toBe(WcStatus.SUCCESS);
  expect(b.mr.bytes.subarray(8192, 8192 + 2500)).toEqual(pattern.subarray(100, 2600));
  b.mr.bytes.set(pattern.subarray(0, 2000).map((x) => x ^ 0x5a), 12000);
  a.qp.postSend({ wrId: 4n, opcode: WrOpcode.RDMA_READ, sendFlags: SendFlags.SIGNALED, sgList: [a.mr.sge(4096, 2000)],
    rdma: { remoteAddr: b.mr.addr + 12000n, rkey: b.mr.rkey } });
  const rd = await a.cq.next();
  expect([rd.status, rd.opcode]).toEqual([WcStatus.SUCCESS, WcOpcode.RDMA_READ]);
  expect(a.mr.bytes.subarray(4096, 6096)).toEqual(b.mr.bytes.subarray(12000, 14000));
}

async function nodeEndpoint(address = "127.0.0.1"): Promise<{ dev: Device; port: number }> {
  const dev = await openDevice({ address, port: 0 });
  cleanups.push(() => dev.close());
  return { dev, port: (dev.limits as { port: number }).port };
}

let codec: WireCodec | undefined;
async function roce(spec: Partial<PacketSpec> & { opcode: number; destQp: number }): Promise<Uint8Array> {
  codec ??= await WireCodec.create(await coreModule());
  return codec.emit({ src: "127.0.0.1", dst: "127.0.0.1", ...spec } as PacketSpec).subarray(28).slice();
}

function refusals(logs: LogRecord[], reason: string): LogRecord[] {
  return logs.filter((l) => l.event === "refused" && l.reason === reason);
}

// every test against both UDP sides: the native datapath (when the addon is built) and node:dgram
for (const udp of UDP_SIDES) {
  describe(`${udp} UDP side`, () => {
  beforeEach(() => {
    side = udp;
  });
  describe(`gateway: traffic (${udp} UDP side)`, () => {
    it.each([["127.0.0.1", "::ffff:127.0.0.1"], ["::1", "::1"]])("a tunnel client does RC SEND, WRITE and READ with a Node UDP device, both directions (%s)", async (addr, gid) => {
      const node = await nodeEndpoint(addr);
      const { gw } = await gateway({ dstPorts: [node.port], udpAddress: addr, allow: [addr] });
      const t = await tunnelDevice(gw);
      expect(t.link.hello).toMatchObject({ address: addr, port: gw.udpPort, qpnBase: 1024, qpnCount: 1024, ipIdPolicy: 0 });
      expect(t.device.queryGid(0)).toBe(gid);
      const a = rcSide(t.device);
      const b = rcSide(node.dev);
      expect(a.qp.qpNum).toBeGreaterThanOrEqual(1024);
      expect(a.qp.qpNum).toBeLessThan(2048);
      connect(a, gw.udpPort, b, node.port);
      await exercise(a, b);
      await exercise(b, a);
      // every datagram's ICRC matched at both ends: the gateway's UDP headers are the ones the tunnel device assumed
      expect(t.device.port!.stats.drops).toEqual({});
      expect(node.dev.port!.stats.drops).toEqual({});
      expect(gw.counters.refused).toEqual({});
      expect(gw.counters.udpOut).toBeGreaterThan(0);
      expect(gw.counters.udpIn).toBeGreaterThan(0);
    });

    it("a tunnel client and a Node UDP device exchange UD datagrams both ways (GRH, source QP, immediate)", async () => {
      const node = await nodeEndpoint();
      const { gw } = await gateway({ dstPorts: [node.port] });
      const t = await tunnelDevice(gw);
      const udSide = (d: Device) => {
        const pd = d.allocPd();
        const mr = pd.regMr(8192, Access.LOCAL_WRITE);
        const cq = d.createCq(16);
        const qp = pd.createQp({ qpType: QpType.UD, sendCq: cq, recvCq: cq, cap: { maxSendWr: 4, maxRecvWr: 4, maxSendSge: 1, maxRecvSge: 1 } });
        connectQp(qp, undefined, { sqPsn: 0, qkey: 0x11111111 });
        return { d, pd, mr, cq, qp };
      };
      const a = udSide(t.device);
      const b = udSide(node.dev);
      const pattern = Uint8Array.from({ length: 600 }, (_, i) => (i * 7 + 3) & 0xff);
      const oneWay = async (from: typeof a, to: typeof a, toPort: number, imm: number) => {
        const ah = from.pd.createAh({ grh: { dgid: to.d.queryGid(0), sgidIndex: 0, hopLimit: 64 }, portNum: 1, destPort: toPort });
        to.qp.postRecv({ wrId: 1n, sgList: [to.mr.sge(0, 40 + 1024)] });
        from.mr.bytes.set(pattern, 4096);
        from.qp.postSend({ wrId: 2n, opcode: WrOpcode.SEND_WITH_IMM, immData: imm, sendFlags: SendFlags.SIGNALED,
          sgList: [from.mr.sge(4096, 600)], ud: { ah, remoteQpn: to.qp.qpNum, remoteQkey: 0x11111111 } });
        expect((await from.cq.next()).status).toBe(WcStatus.SUCCESS);
        const r = await to.cq.next();
        expect([r.status, r.opcode, r.byteLen, r.srcQp, r.immData]).toEqual([WcStatus.SUCCESS, WcOpcode.RECV, 640, from.qp.qpNum, imm]);
        expect(r.wcFlags & WcFlags.GRH).toBe(WcFlags.GRH);
        // GRH for IPv4 as rxe fills it: 20 zero bytes, then the IPv4 header (source = the gateway or the Node host: 127.0.0.1)
        expect(to.mr.bytes.subarray(0, 20)).toEqual(new Uint8Array(20));
        expect(to.mr.bytes[20]).toBe(0x45);
        expect([...to.mr.bytes.subarray(32, 36)]).toEqual([127, 0, 0, 1]);
        expect(to.mr.bytes.subarray(40, 640)).toEqual(pattern);
      };
      await oneWay(a, b, node.port, 0x0a0b0c0d);
      await oneWay(b, a, gw.udpPort, 0x01020304);
      expect(t.device.port!.stats.drops).toEqual({});
      expect(node.dev.port!.stats.drops).toEqual({});
      expect(gw.counters.refused).toEqual({});
    });

    it("hairpins two tunnel clients without UDP", async () => {
      const { gw } = await gateway();
      const t1 = await tunnelDevice(gw);
      const t2 = await tunnelDevice(gw);
      expect(t2.link.hello.qpnBase).toBe(2048);
      const a = rcSide(t1.device);
      const b = rcSide(t2.device);
      connect(a, gw.udpPort, b, gw.udpPort);
      await exercise(a, b);
      await exercise(b, a);
      expect(gw.counters.udpOut).toBe(0);
      expect(gw.counters.udpIn).toBe(0);
      expect(gw.counters.hairpinned).toBeGreaterThan(6);
      expect(t1.device.port!.stats.drops).toEqual({});
      expect(t2.device.port!.stats.drops).toEqual({});
    });

    it("a lost tunnel is a link going down: the RC QP's retries run out into an error completion", async () => {
      const node = await nodeEndpoint();
      const { gw } = await gateway({ dstPorts: [node.port] });
      const t = await tunnelDevice(gw);
      const a = rcSide(t.device);
      const b = rcSide(node.dev);
      connectQp(a.qp, { qpNum: b.qp.qpNum, psn: 1, gid: b.d.queryGid(0), port: node.port }, { sqPsn: 1, timeout: 1, retryCnt: 1 });
      let downWhy = "";
      t.link.onDown = (w) => { downWhy = w; };
      await gw.close();
      await until(() => t.link.isDown);
      expect(downWhy).toMatch(/closed/);
      a.qp.postSend({ wrId: 9n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [a.mr.sge(0, 10)] });
      const wc = await a.cq.next();
      expect(wc.status).toBe(WcStatus.RETRY_EXC_ERR);
      expect(t.link.stats.droppedDown).toBeGreaterThanOrEqual(2);
    });
  });

  describe(`gateway: security (${udp} UDP side)`, () => {
    it("refuses an upgrade without a token, with a wrong token, and with a bad Origin; serves a good one", async () => {
      const { gw, logs } = await gateway({ origins: ["https://app.example"] });
      await expect(rawClient(gw, {})).rejects.toThrow("HTTP 401");
      await expect(rawClient(gw, { authorization: "Bearer nope" })).rejects.toThrow("HTTP 401");
      await expect(rawClient(gw, { authorization: `Bearer ${TOKEN}`, origin: "https://evil.example" })).rejects.toThrow("HTTP 403");
      expect(gw.counters.refused).toEqual({ no_token: 1, bad_token: 1, bad_origin: 1 });
      expect(refusals(logs, "bad_origin")[0]!.detail).toMatch(/evil\.example/);
      const ok = await rawClient(gw, { authorization: `Bearer ${TOKEN}`, origin: "https://app.example" });
      expect(ok.hello.qpnBase).toBe(1024);
      const q = await rawClient(gw, { origin: "https://app.example" }, ).catch((e: Error) => e.message);
      expect(q).toBe("HTTP 401");
      expect(gw.clientCount).toBe(1);
    });

    it("refuses destinations off the allowlist and special ranges not named explicitly", async () => {
      const node = await nodeEndpoint();
      const { gw, logs } = await gateway({ dstPorts: [node.port] });
      const c = await rawClient(gw);
      const p = await roce({ opcode: 4, destQp: 17, payload: new Uint8Array(8) } as never);
      c.s.send(emitData("10.1.2.3", node.port, 0, [p]));
      c.s.send(emitData("127.0.0.2", node.port, 0, [p]));
      c.s.send(emitData("127.0.0.1", 53, 0, [p]));
      await until(() => c.frames.length === 3);
      expect(c.frames.map((f) => parseFrame(f))).toMatchObject([
        { kind: FrameKind.ERROR, name: "destination_refused", reason: "destination_refused: 10.1.2.3: not on the allowlist" },
        { kind: FrameKind.ERROR, name: "destination_refused", reason: "destination_refused: 127.0.0.2: not on the allowlist" },
        { kind: FrameKind.ERROR, name: "destination_refused", reason: "destination_refused: UDP port 53 not allowed" },
      ]);
      expect(gw.counters.refused).toEqual({ destination_refused: 3 });
      expect(refusals(logs, "destination_refused")).toHaveLength(3);
      expect(gw.counters.udpOut).toBe(0);
      // the same client still sends to the allowed endpoint (it arrives: its QPN is unknown there)
      c.s.send(emitData("127.0.0.1", node.port, 0, [p]));
      await until(() => node.dev.port!.stats.rxDatagrams === 1);
      expect(c.s.readyState).toBe(WebSocket.OPEN);

      const wide = new AddressPolicy(["0.0.0.0/0", "::/0"]);
      for (const a of ["127.0.0.1", "::ffff:127.0.0.1", "10.0.0.1", "192.168.1.1", "169.254.1.1", "224.0.0.1", "0.0.0.0", "::", "::1", "fe80::1", "fd00::1", "255.255.255.255"]) {
        expect([a, wide.check(a).ok]).toEqual([a, false]);
      }
      expect(wide.check("8.8.8.8")).toEqual({ ok: true });
      expect(wide.check("2606:4700::1111")).toEqual({ ok: true });
      const lo = new AddressPolicy(["127.0.0.1"]);
      expect(lo.check("::ffff:127.0.0.1")).toEqual({ ok: true });
      expect(lo.check("127.0.0.2")).toEqual({ ok: false, why: "not on the allowlist" });
      expect(new AddressPolicy(["0.0.0.0/0"]).check("127.0.0.1")).toEqual({ ok: false, why: "loopback (127.0.0.0/8) not explicitly allowed" });
    });

    it("closes on an oversize frame (1009), a text frame (1003) and a malformed header (1002); others keep working", async () => {
      const { gw, logs } = await gateway();
      const other = await rawClient(gw);
      const big = await rawClient(gw);
      big.s.send(new Uint8Array(24 + 4188 + 1));
      expect(await closed(big.s)).toBe(1009);
      const text = await rawClient(gw);
      text.s.send("hello");
      expect(await closed(text.s)).toBe(1003);
      const bad = await rawClient(gw);
      const p = await roce({ opcode: 4, destQp: 17, payload: new Uint8Array(8) } as never);
      const frame = emitData("127.0.0.1", 4791, 0, [p]);
      frame[0] = 9;
      bad.s.send(frame);
      expect(await closed(bad.s)).toBe(1002);
      await until(() => gw.clientCount === 1);
      expect(gw.counters.refused).toEqual({ oversize_frame: 1, text_frame: 1, bad_frame: 1 });
      expect(refusals(logs, "bad_frame")[0]!.detail).toBe("tunnel frame bad_version: version 9, expected 1");
      expect(refusals(logs, "oversize_frame")[0]!.detail).toBe("Max payload size exceeded");
      expect(other.s.readyState).toBe(WebSocket.OPEN);
      const again = await rawClient(gw);
      expect(again.hello.kind).toBe(FrameKind.HELLO);
    });

    it("drops non-RoCE payloads with not_roce and keeps the client", async () => {
      const node = await nodeEndpoint();
      const { gw } = await gateway({ dstPorts: [node.port] });
      const c = await rawClient(gw);
      const good = await roce({ opcode: 4, destQp: 17, payload: new Uint8Array(8) } as never);
      const dns = new Uint8Array(40); // a DNS query: ID 0xfeed, flags 0x0100, one question
      dns.set([0xfe, 0xed, 0x01, 0x00, 0, 1]);
      const badTver = good.slice();
      badTver[1] |= 1;
      const badOp = good.slice();
      badOp[0] = 0x1f;
      const ackWithPayload = await roce({ opcode: 0x11, destQp: 17, aeth: { syndrome: 0, msn: 1 } } as never);
      const longAck = new Uint8Array(ackWithPayload.length + 4);
      longAck.set(ackWithPayload);
      for (const p of [dns, badTver, badOp, longAck]) c.s.send(emitData("127.0.0.1", node.port, 0, [p]));
      await until(() => c.frames.length === 4);
      expect(c.frames.map((f) => parseFrame(f))).toMatchObject([
        { name: "not_roce", reason: "not_roce: unknown opcode 0xfe" },
        { name: "not_roce", reason: "not_roce: BTH transport version 1" },
        { name: "not_roce", reason: "not_roce: unknown opcode 0x1f" },
        { name: "not_roce", reason: "not_roce: 4 payload bytes on an opcode without payload" },
      ]);
      expect(gw.counters.refused).toEqual({ not_roce: 4 });
      expect(gw.counters.udpOut).toBe(0);
      expect(c.s.readyState).toBe(WebSocket.OPEN);
    });

    it("rate-limits a flood per client", async () => {
      const node = await nodeEndpoint();
      const { gw } = await gateway({ dstPorts: [node.port], packetsPerSecond: 50 });
      const c = await rawClient(gw);
      const calm = await rawClient(gw);
      const p = await roce({ opcode: 4, destQp: 17, payload: new Uint8Array(8) } as never);
      const f = emitData("127.0.0.1", node.port, 0, [p]);
      const t0 = Date.now();
      for (let i = 0; i < 300; i++) c.s.send(f);
      // every datagram decided (the relay counts a frame when it parses it, before JS decides a punted one)
      await until(() => gw.counters.framesIn === 300 && gw.counters.udpOut + (gw.counters.refused.rate_limited ?? 0) === 300);
      const refill = Math.ceil(((Date.now() - t0) / 1000) * 50) + 1; // tokens that came back meanwhile (a loaded machine is slower)
      const sent = gw.counters.udpOut;
      expect(sent).toBeGreaterThanOrEqual(50);
      expect(sent).toBeLessThanOrEqual(50 + refill);
      expect(gw.counters.refused.rate_limited).toBe(300 - sent);
      // ERROR frames are themselves limited (20/s by default)
      await until(() => c.frames.length >= 20);
      expect(c.frames.length).toBeLessThanOrEqual(20 + Math.ceil(((Date.now() - t0) / 1000) * 20) + 1);
      // the other client's bucket is its own (its own remote QP: QP 17 is bound to the first client)
      const p18 = await roce({ opcode: 4, destQp: 18, payload: new Uint8Array(8) } as never);
      calm.s.send(emitData("127.0.0.1", node.port, 0, [p18]));
      await until(() => gw.counters.udpOut === sent + 1);
    });

    it("binds a remote QP's RC/UC conversation to the first client: no other client can inject into it", async () => {
      const node = await nodeEndpoint();
      const { gw } = await gateway({ dstPorts: [node.port] });
      const c1 = await rawClient(gw);
      const c2 = await rawClient(gw);
      const c3 = await rawClient(gw);
      const send = (c: { s: WebSocket }, p: Uint8Array, port = node.port) => c.s.send(emitData("127.0.0.1", port, 0, [p]));
      const toQp17 = await roce({ opcode: 4, destQp: 17, payload: new Uint8Array(8) } as never);
      send(c1, toQp17);
      await until(() => gw.counters.udpOut === 1);
      // another client, same remote QP: refused, nothing forwarded
      send(c2, toQp17);
      await until(() => c2.frames.length === 1);
      expect(parseFrame(c2.frames[0]!)).toMatchObject({ name: "qpn_not_owned" });
      expect(gw.counters.udpOut).toBe(1);
      // another remote QP is free to take; the owner keeps sending
      send(c2, await roce({ opcode: 4, destQp: 18, payload: new Uint8Array(8) } as never));
      send(c1, toQp17);
      await until(() => gw.counters.udpOut === 3);
      // hairpin: c1 talks RC to c3's QP; c2 may not
      const toC3 = await roce({ opcode: 4, destQp: c3.hello.qpnBase, payload: new Uint8Array(4) } as never);
      send(c1, toC3, gw.udpPort);
      await until(() => c3.frames.length === 1);
      send(c2, toC3, gw.udpPort);
      await until(() => c2.frames.length === 2);
      expect(parseFrame(c2.frames[1]!)).toMatchObject({ name: "qpn_not_owned" });
      expect(c3.frames.length).toBe(1);
      // UD names its source, so it needs no binding
      send(c2, await roce({ opcode: 0x64, destQp: 17, deth: { qkey: 1, srcQp: c2.hello.qpnBase } } as never));
      await until(() => gw.counters.udpOut === 4);
      // when the owner leaves, the remote QP is free again
      const gone = closed(c1.s);
      c1.s.close();
      await gone;
      await until(() => gw.counters.clientsClosed === 1);
      send(c2, toQp17);
      await until(() => gw.counters.udpOut === 5);
      expect(gw.counters.refused).toEqual({ peer_owned: 2 });
    });

    // The attack: the real peer shares the gateway's address, so a hairpinned
    // packet carries the real peer's source address. Only the gateway's binding of A's
    // QP to its peer stops B's forged WRITE (valid ICRC, rkey, VA and PSN).
    it("a client cannot inject through the hairpin into an RC conversation whose real peer shares the gateway's address", async () => {
      const node = await nodeEndpoint("127.0.0.1");
      const { gw } = await gateway({ dstPorts: [node.port] });
      const t = await tunnelDevice(gw);
      const a = rcSide(t.device);
      const peer = rcSide(node.dev);
      connect(a, gw.udpPort, peer, node.port);
      await exercise(peer, a); // the peer's SEND, WRITE, READ: A's QP is now bound to the peer
      const b = await rawClient(gw);
      const before = a.mr.bytes.slice();
      // the next PSNs A's responder expects (the peer sent 3 + 2 + 1 packets from 0x200), and a few around them
      for (let psn = 0x200; psn < 0x210; psn++) {
        const forged = await roce({
          opcode: 0x0a, destQp: a.qp.qpNum, psn, src: "127.0.0.1", dst: "127.0.0.1", udpSrcPort: gw.udpPort, udpDstPort: gw.udpPort,
          reth: { va: a.mr.addr, rkey: a.mr.rkey, dmaLength: 16 }, payload: new Uint8Array(16).fill(0xee),
        } as never);
        b.s.send(emitData("127.0.0.1", gw.udpPort, 0, [forged]));
      }
      await until(() => b.frames.length >= 1 && (gw.counters.refused.peer_owned ?? 0) === 16);
      expect(parseFrame(b.frames[0]!)).toMatchObject({ name: "qpn_not_owned" });
      expect(gw.counters.hairpinned).toBe(0);
      expect(a.mr.bytes).toEqual(before);
      // the real peer's next WRITE lands
      peer.mr.bytes.fill(0x42, 0, 64);
      peer.qp.postSend({ wrId: 7n, opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [peer.mr.sge(0, 64)],
        rdma: { remoteAddr: a.mr.addr, rkey: a.mr.rkey } });
      expect((await peer.cq.next()).status).toBe(WcStatus.SUCCESS);
      expect(a.mr.bytes.subarray(0, 64)).toEqual(new Uint8Array(64).fill(0x42));
    });

    it("a client QP talking through the hairpin takes no UDP datagrams, even from the gateway's own address", async () => {
      const { gw } = await gateway({ allow: ["127.0.0.1", "127.0.12.0/24"] });
      const t1 = await tunnelDevice(gw);
      const t2 = await tunnelDevice(gw);
      const a = rcSide(t1.device);
      const b = rcSide(t2.device);
      connect(a, gw.udpPort, b, gw.udpPort);
      await exercise(a, b);
      const drops = gw.counters.refused.udp_source_refused ?? 0;
      const before = b.mr.bytes.slice();
      for (const from of ["127.0.0.1", "127.0.12.7"]) {
        const u = dgram.createSocket("udp4");
        cleanups.push(() => u.close());
        await new Promise<void>((r) => u.bind(0, from, r));
        const forged = await roce({
          opcode: 0x0a, destQp: b.qp.qpNum, psn: 0x100 + 6, src: from, dst: "127.0.0.1", udpSrcPort: u.address().port,
          udpDstPort: gw.udpPort, reth: { va: b.mr.addr, rkey: b.mr.rkey, dmaLength: 8 }, payload: new Uint8Array(8).fill(0xee),
        } as never);
        u.send(forged, gw.udpPort, "127.0.0.1");
      }
      await until(() => gw.counters.refused.udp_source_refused === drops + 2);
      expect(gw.counters.udpIn).toBe(2);
      await new Promise((r) => setTimeout(r, 50));
      expect(b.mr.bytes).toEqual(before);
      await exercise(a, b);
    });

    it("a QP bound to one UDP peer refuses another source address; the binding ends after bindingIdleMs", async () => {
      const { gw, logs } = await gateway({ allow: ["127.0.0.1", "127.0.12.0/24"], bindingIdleMs: 300 });
      const c = await rawClient(gw);
      const q = c.hello.qpnBase + 3;
      const sock = async (addr: string) => {
        const u = dgram.createSocket("udp4");
        cleanups.push(() => u.close());
        await new Promise<void>((r) => u.bind(0, addr, r));
        return u;
      };
      const p1 = await sock("127.0.12.1");
      const p1b = await sock("127.0.12.1");
      const p2 = await sock("127.0.12.2");
      const pkt = await roce({ opcode: 4, destQp: q, payload: new Uint8Array(8) } as never);
      p1.send(pkt, gw.udpPort, "127.0.0.1");
      await until(() => c.frames.length === 1);
      p2.send(pkt, gw.udpPort, "127.0.0.1");
      await until(() => gw.counters.refused.udp_source_refused === 1);
      // the UDP source port is entropy: the same address from another port is the same peer
      p1b.send(pkt, gw.udpPort, "127.0.0.1");
      await until(() => c.frames.length === 2);
      expect(refusals(logs, "udp_source_refused")[0]).toMatchObject({ detail: `QP ${q} talks to another peer` });
      // UD datagrams are not bound
      p2.send(await roce({ opcode: 0x64, destQp: q, deth: { qkey: 1, srcQp: 3 } } as never), gw.udpPort, "127.0.0.1");
      await until(() => c.frames.length === 3);
      await new Promise((r) => setTimeout(r, 350));
      p2.send(pkt, gw.udpPort, "127.0.0.1");
      await until(() => c.frames.length === 4);
      p1.send(pkt, gw.udpPort, "127.0.0.1");
      await until(() => gw.counters.refused.udp_source_refused === 2);
    });

    it("rate-limits refusal log records and reports how many it suppressed", async () => {
      const { gw, logs } = await gateway({ logRate: 5, packetsPerSecond: 1e6, errorFramesPerSecond: 1 });
      const c = await rawClient(gw);
      const dns = new Uint8Array(40);
      dns.set([0xfe, 0xed, 0x01, 0x00, 0, 1]);
      for (let i = 0; i < 300; i++) c.s.send(emitData("127.0.0.1", gw.udpPort, 0, [dns]));
      await until(() => gw.counters.refused.not_roce === 300);
      await until(() => logs.some((l) => l.event === "suppressed"), 3000);
      const written = refusals(logs, "not_roce").length;
      expect(written).toBeGreaterThanOrEqual(5);
      expect(written).toBeLessThan(20);
      const suppressed = logs.reduce((n, l) => n + (l.suppressed ?? 0), 0);
      expect(written + suppressed).toBe(300);
      expect(gw.counters.logSuppressed).toBe(suppressed);
      expect(c.frames.length).toBeLessThan(5); // ERROR frames were capped already
    });

    it("routes by QPN: a client cannot send as, or receive for, another client's QPNs", async () => {
      const { gw } = await gateway();
      const c1 = await rawClient(gw);
      const c2 = await rawClient(gw);
      // UD SEND naming c2's QPN as its source (DETH)
      const spoof = await roce({ opcode: 0x64, destQp: c2.hello.qpnBase, deth: { qkey: 0x11111111, srcQp: c2.hello.qpnBase + 1 } } as never);
      c1.s.send(emitData("127.0.0.1", gw.udpPort, 0, [spoof]));
      await until(() => c1.frames.length === 1);
      expect(parseFrame(c1.frames[0]!)).toMatchObject({ name: "qpn_not_owned", reason: `qpn_not_owned: DETH source QP ${c2.hello.qpnBase + 1} is not in 1024+1024` });
      // its own source QPN: hairpinned to c2 only
      const own = await roce({ opcode: 0x64, destQp: c2.hello.qpnBase, deth: { qkey: 0x11111111, srcQp: c1.hello.qpnBase } } as never);
      c1.s.send(emitData("127.0.0.1", gw.udpPort, 0, [own]));
      await until(() => c2.frames.length === 1);
      const got = parseFrame(c2.frames[0]!);
      expect(got).toMatchObject({ kind: FrameKind.DATA, address: "127.0.0.1", port: gw.udpPort, ipId: 0 });
      expect((got as { payload: Uint8Array }).payload).toEqual(own);
      // a QPN no client owns
      const nobody = await roce({ opcode: 0x64, destQp: 900, deth: { qkey: 1, srcQp: c1.hello.qpnBase } } as never);
      c1.s.send(emitData("127.0.0.1", gw.udpPort, 0, [nobody]));
      await until(() => c1.frames.length === 2);
      expect(parseFrame(c1.frames[1]!)).toMatchObject({ name: "unknown_qpn" });
      // from UDP: delivered by destination QPN to c2, never to c1
      const u = dgram.createSocket("udp4");
      cleanups.push(() => u.close());
      await new Promise<void>((r) => u.bind(0, "127.0.0.1", r));
      const toC2 = await roce({ opcode: 0x64, destQp: c2.hello.qpnBase + 5, deth: { qkey: 1, srcQp: 3 } } as never);
      u.send(toC2, gw.udpPort, "127.0.0.1");
      await until(() => c2.frames.length === 2);
      expect(parseFrame(c2.frames[1]!)).toMatchObject({ kind: FrameKind.DATA, port: u.address().port, ipId: 0xffffffff });
      expect(c1.frames.length).toBe(2);
      expect(gw.counters.refused).toEqual({ qpn_not_owned: 1, unknown_qpn: 1 });
    });

    it("caps connections per address and in total", async () => {
      const { gw, logs } = await gateway({ maxClientsPerAddress: 2, maxClients: 3 });
      await rawClient(gw);
      const second = await rawClient(gw);
      await expect(rawClient(gw)).rejects.toThrow("HTTP 503");
      expect(refusals(logs, "too_many_from_address")).toHaveLength(1);
      second.s.close();
      await until(() => gw.clientCount === 1);
      const third = await rawClient(gw);
      expect(third.hello.qpnBase).toBe(3072); // a fresh range while there is one
      third.s.close();
      await until(() => gw.clientCount === 1);
      const fourth = await rawClient(gw);
      expect(fourth.hello.qpnBase).toBe(2048); // then freed ones are reused
      const { gw: g2 } = await gateway({ maxClients: 1 });
      await rawClient(g2);
      await expect(rawClient(g2)).rejects.toThrow("HTTP 503");
      expect(g2.counters.refused).toEqual({ too_many_clients: 1 });
    });

    it("closes an idle client (1000) and drops one that stops answering pings", async () => {
      const { gw, logs } = await gateway({ idleTimeoutMs: 300, heartbeatMs: 60000 });
      const idle = await rawClient(gw);
      expect(await closed(idle.s)).toBe(1000);
      expect(refusals(logs, "idle")[0]!.detail).toMatch(/^nothing sent for \d+ ms$/);
      const { gw: g2 } = await gateway({ heartbeatMs: 100 });
      const deaf = await rawClient(g2);
      const fine = await rawClient(g2);
      (deaf.s as unknown as { _socket: { pause(): void } })._socket.pause();
      await until(() => g2.clientCount === 1);
      expect(g2.counters.refused).toEqual({ heartbeat: 1 });
      expect(fine.s.readyState).toBe(WebSocket.OPEN);
    });

    it("refuses an unparseable request target and a wrong path without falling over", async () => {
      const { gw, logs } = await gateway();
      const net = await import("node:net");
      for (const target of ["http://[", "/other"]) {
        const reply = await new Promise<string>((resolve) => {
          const sock = net.connect(gw.port, "127.0.0.1", () => {
            sock.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
              `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
          });
          let got = "";
          sock.on("data", (d) => (got += d));
          sock.on("close", () => resolve(got));
          sock.on("error", () => resolve(got));
        });
        expect(reply).toMatch(/^HTTP\/1\.1 (400|404) /);
      }
      expect(refusals(logs, "bad_path").map((l) => l.detail)).toEqual(['unparseable request target "http://["', "/other"]);
      expect((await rawClient(gw)).hello.qpnBase).toBe(1024);
    });

    it("a handshake that ws refuses holds no client slot", async () => {
      const { gw } = await gateway({ maxClients: 1 });
      const net = await import("node:net");
      for (let i = 0; i < 3; i++) {
        const reply = await new Promise<string>((resolve) => {
          const sock = net.connect(gw.port, "127.0.0.1", () => {
            sock.write(`GET /tunnel HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
              `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: bad\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);
          });
          let got = "";
          sock.on("data", (d) => (got += d));
          sock.on("close", () => resolve(got));
          sock.on("error", () => resolve(got));
        });
        expect(reply).toMatch(/^HTTP\/1\.1 400/);
      }
      const ok = await rawClient(gw);
      expect(ok.hello.qpnBase).toBe(1024);
    });

    it("bounds the queue of a client that never reads and drops it", async () => {
      const { gw } = await gateway({ clientQueueBytes: 64 << 10, stallMs: 300 });
      const slow = await rawClient(gw);
      const ok = await rawClient(gw);
      (slow.s as unknown as { _socket: { pause(): void } })._socket.pause();
      const u = dgram.createSocket("udp4");
      cleanups.push(() => u.close());
      await new Promise<void>((r) => u.bind(0, "127.0.0.1", r));
      const pkt = await roce({ opcode: 0x64, destQp: slow.hello.qpnBase, deth: { qkey: 1, srcQp: 3 }, payload: new Uint8Array(4000) } as never);
      const end = Date.now() + 8000;
      while (gw.clientCount === 2 && Date.now() < end) {
        for (let i = 0; i < 50; i++) u.send(pkt, gw.udpPort, "127.0.0.1");
        await new Promise((r) => setTimeout(r, 2));
      }
      expect(gw.clientCount).toBe(1);
      expect(gw.counters.refused.client_backlog).toBeGreaterThan(0);
      expect(gw.counters.refused.slow_consumer).toBe(1);
      expect(ok.s.readyState).toBe(WebSocket.OPEN);
    }, 15000);
  });
  });
}

// QP1 on the device and the MadTransport over it: the GSI's rules (QPN 1, one
// per device, no SMI, the GSI Q_Key, port_cap_flags CM_SUP), MADs as UD
// datagrams between two softroce devices on the simulated wire, Linux's answers
// to unhandled Get MADs byte for byte against a capture of Linux rxe, and
// rdma_cm end to end over QP1 with targeted losses of REQ, REP, RTU and DREQ
// on the wire (ib_cm's retries recover each), a reject and a backlog.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { coreModule } from "../../../host/node/wasm-source.js";
import { SimNetwork } from "../../../host/core/sim/network.js";
import { addressGid } from "../../../host/core/net/index.js";
import { SimLink, simClock } from "../../../host/core/sim/link.js";
import { Prng } from "../../../host/core/sim/prng.js";
import { openDeviceWith, PORT_CM_SUP, type Device } from "../../../host/core/verbs/device.js";
import { VerbsError } from "../../../host/core/verbs/errors.js";
import { QpState, QpType, SendFlags, WcStatus, WrOpcode, Access } from "../../../host/core/verbs/enums.js";
import type { Datagram } from "../../../host/core/net/datagram.js";
import { readCaptureAll } from "../../../host/core/capture/pcap.js";
import { parseGid } from "../../../host/core/net/gid.js";
import {
  cmMsgName, emitMad, GSI_QKEY, madHeader, MgmtClass, MadMethod, openRdmaCm, PortSpace, Qp1Transport, RdmaCmEventType as E,
  type EventChannel, type MadAddress, type RdmaCm, type RdmaCmEvent,
} from "../../../host/core/cm/index.js";
import { errorCode } from "./cm-harness.js";

const CAPTURES = new URL("../../fixtures/captures/cm/", import.meta.url);
const CAP = { maxSendWr: 16, maxRecvWr: 16, maxSendSge: 1, maxRecvSge: 1 };

/** The UDP payload's MAD when it is a datagram to QP1 (BTH 12 + DETH 8, then 256 bytes). */
function madOf(payload: Uint8Array): Uint8Array | undefined {
  const dqp = (payload[5]! << 16) | (payload[6]! << 8) | payload[7]!;
  if (dqp !== 1 || payload.length < 20 + 256) return undefined;
  return payload.subarray(20, 276);
}
function madName(payload: Uint8Array): string | undefined {
  const m = madOf(payload);
  return m ? (cmMsgName((m[16]! << 8) | m[17]!) ?? `attr${(m[16]! << 8) | m[17]!}`) : undefined;
}

interface Host {
  dev: Device;
  addr: string;
}

/** Devices on the simulated wire, each with a receive filter (`drop` returns true to lose a datagram). */
async function world(o: { seed?: number; hosts?: string[]; drop?: (d: Datagram, to: string) => boolean } = {}) {
  const mod = await coreModule();
  const net = new SimNetwork({ seed: o.seed ?? 1 });
  const clock = simClock(net.wire.clock);
  const onWire: string[] = [];
  const hosts: Host[] = [];
  for (const [i, addr] of (o.hosts ?? ["127.0.15.1", "127.0.15.2"]).entries()) {
    const dev = await openDeviceWith(mod, { gids: [addressGid(addr)], nodeGuid: 0x0200_0000_0000_0001n + BigInt(i) });
    const port = dev.attach(new SimLink(net.wire), clock);
    net.wire.attach(addr, 4791, (d) => {
      const name = madName(d.payload);
      if (o.drop?.(d, addr)) {
        if (name) onWire.push(`${name}:lost`);
        return;
      }
      if (name) onWire.push(name);
      port.receive(d);
    });
    hosts.push({ dev, addr });
  }
  return { net, clock, hosts, onWire };
}

describe("QP1 (the GSI) on the device", () => {
  it("port_cap_flags has CM_SUP; the GSI is QP 1 with Q_Key 0x80010000, one per device; the SMI is EOPNOTSUPP", async () => {
    const { hosts } = await world();
    const dev = hosts[0]!.dev;
    expect(dev.queryPort().portCapFlags & PORT_CM_SUP).toBe(PORT_CM_SUP);
    expect(PORT_CM_SUP).toBe(1 << 16);
    const pd = dev.allocPd();
    const cq = dev.createCq(16);
    const attr = { sendCq: cq, recvCq: cq, cap: CAP };
    expect(errorCode(() => pd.createQp({ qpType: QpType.SMI, ...attr }), VerbsError)).toBe("EOPNOTSUPP");
    const gsi = pd.createQp({ qpType: QpType.GSI, ...attr });
    expect(gsi.qpNum).toBe(1);
    expect(gsi.query().attr.qkey).toBe(GSI_QKEY);
    expect(errorCode(() => pd.createQp({ qpType: QpType.GSI, ...attr }), VerbsError)).toBe("EINVAL");
    // ordinary QPs keep their numbers; only the GSI's owner may set the privileged Q_Key
    const ud = pd.createQp({ qpType: QpType.UD, ...attr });
    expect(ud.qpNum).toBeGreaterThanOrEqual(17);
    expect(errorCode(() => ud.modify({ qpState: QpState.INIT, pkeyIndex: 0, portNum: 1, qkey: GSI_QKEY }), VerbsError)).toBe("EPERM");
    gsi.modify({ qpState: QpState.INIT, pkeyIndex: 0, portNum: 1, qkey: GSI_QKEY });
    gsi.destroy();
    // the port has no GSI now: a second one can be made
    const again = pd.createQp({ qpType: QpType.GSI, ...attr });
    expect(again.qpNum).toBe(1);
  });

  it("a MAD sent to a port without a GSI is dropped as unknown_qpn; with one, it arrives with its source GID, QP 1 and the GRH's hop limit", async () => {
    const { net, hosts } = await world();
    const [A, B] = hosts as [Host, Host];
    const ta = Qp1Transport.open(A.dev);
    const mad = emitMad(madHeader({ baseVersion: 1, mgmtClass: MgmtClass.CM, classVersion: 2, method: MadMethod.SEND, transactionId: 0x1234n, attributeId: 0x10 }));
    const to: MadAddress = { gid: parseGid(B.dev.queryGid(0)), qpn: 1, pkeyIndex: 0, qkey: GSI_QKEY };
    ta.send(mad, to);
    net.run(net.now + 1000);
    expect(B.dev.queryCounters().unknown_qpn).toBe(1);

    const tb = Qp1Transport.open(B.dev);
    const got: [Uint8Array, MadAddress][] = [];
    tb.onReceive((m, from) => got.push([m.slice(), from]));
    ta.send(mad, to);
    net.run(net.now + 1000);
    expect(got).toHaveLength(1);
    expect(got[0]![0]).toEqual(mad);
    expect(got[0]![1]).toMatchObject({ qpn: 1, pkeyIndex: 0, qkey: GSI_QKEY, hopLimit: 64, port: 4791 });
    expect([...got[0]![1].gid.subarray(10)]).toEqual([0xff, 0xff, 127, 0, 15, 1]);
    expect(tb.counters.received).toBe(1);
    expect(ta.counters.sent).toBe(2);
    // a MAD with the wrong Q_Key is refused by the device
    ta.send(mad, { ...to, qkey: 0x1234 });
    net.run(net.now + 1000);
    expect(got).toHaveLength(1);
    expect(B.dev.queryCounters().bad_qkey).toBe(1);
    // the receive buffers stay posted: many more MADs than the receive depth all arrive
    for (let i = 0; i < 200; i++) {
      ta.send(mad, to);
      net.run(net.now + 50);
    }
    net.run(net.now + 1000);
    expect(got).toHaveLength(201);
    ta.close();
    tb.close();
  });

  it("Get MADs nobody handles are answered as Linux answered them in cm/mad-probe.pcap (GetResp, status 0x000c), byte for byte; Sends get nothing", async () => {
    const { net, hosts } = await world();
    const [A, B] = hosts as [Host, Host];
    Qp1Transport.open(A.dev); // no receiver: the MAD layer's unmatched answer
    const tb = Qp1Transport.open(B.dev);
    const got: Uint8Array[] = [];
    tb.onReceive((m) => got.push(m.slice()));
    const frames = readCaptureAll(new Uint8Array(readFileSync(new URL("mad-probe.pcap", CAPTURES))));
    // frames: 1 CM Get(ClassPortInfo) → 2 its GetResp, 9 → 10 (PerfMgt), 13 → 14 (vendor class 0x09); 5, 7 are CM Sends without an answer
    const udpPayload = (n: number) => {
      const ip = frames[n - 1]!.data!;
      return ip.subarray(20 + 8, ip.length);
    };
    const to: MadAddress = { gid: parseGid(A.dev.queryGid(0)), qpn: 1, pkeyIndex: 0, qkey: GSI_QKEY };
    for (const [req, resp] of [[1, 2], [9, 10], [13, 14]] as const) {
      got.length = 0;
      tb.send(madOf(udpPayload(req))!.slice(), to);
      net.run(net.now + 1000);
      expect(got, `answer to frame ${req}`).toHaveLength(1);
      expect(got[0]).toEqual(madOf(udpPayload(resp))!.slice());
      expect((got[0]![4]! << 8) | got[0]![5]!).toBe(0x000c);
      expect(got[0]![3]).toBe(MadMethod.GET_RESP);
    }
    got.length = 0;
    for (const req of [5, 7]) tb.send(madOf(udpPayload(req))!.slice(), to);
    net.run(net.now + 1000);
    expect(got).toHaveLength(0);
  });
});

describe("QP1 with no receiver answers CM MADs as Linux's ib_cm does with no listener", () => {
  it("a REQ gets REJ 8 (invalid service ID) at once: the connecting ID sees REJECTED, status 8; Qp1Transport.of returns the open QP1", async () => {
    const w = await world();
    const [A, B] = w.hosts as [Host, Host];
    const qa = Qp1Transport.of(A.dev); // the device's QP1; nobody listens
    expect(Qp1Transport.of(A.dev)).toBe(qa);
    const mad = Qp1Transport.of(B.dev);
    const cm = openRdmaCm({ devices: [{ device: B.dev, mad }], clock: w.clock });
    const ch = cm.createEventChannel();
    const id = ch.createId(PortSpace.TCP);
    id.resolveAddr(undefined, { address: A.addr, port: 7471 }, 2000);
    const step = (want: number) => {
      w.net.runUntil(() => ch.pending > 0, w.net.now + 1_000_000);
      const e = ch.poll()!;
      expect(e.event, `${e.eventName} status ${e.status}`).toBe(want);
      e.ack();
      return e;
    };
    step(E.ADDR_RESOLVED);
    id.resolveRoute(2000);
    step(E.ROUTE_RESOLVED);
    id.createQp(undefined, { cap: CAP });
    const t0 = w.net.now;
    id.connect({ responderResources: 1, initiatorDepth: 1 });
    const rej = step(E.REJECTED);
    expect(rej.status).toBe(8);
    expect(w.net.now - t0).toBeLessThan(100_000); // the first REQ's answer, no retries
    expect(w.onWire).toEqual(["REQ", "REJ"]);
    expect(qa.counters.cmUnclaimed).toBe(1);
  });
});

interface CmHost extends Host {
  cm: RdmaCm;
  ch: EventChannel;
  mad: Qp1Transport;
}

async function cmWorld(o: { seed?: number; drop?: (d: Datagram, to: string) => boolean } = {}) {
  const w = await world(o);
  const prng = new Prng(o.seed ?? 1);
  const hosts: CmHost[] = w.hosts.map((h) => {
    const mad = Qp1Transport.open(h.dev);
    const cm = openRdmaCm({ devices: [{ device: h.dev, mad }], clock: w.clock, random: () => prng.u32() });
    return { ...h, mad, cm, ch: cm.createEventChannel() };
  });
  const next = (ch: EventChannel, want: number, limitUs = 200_000_000): RdmaCmEvent => {
    w.net.runUntil(() => ch.pending > 0, w.net.now + limitUs);
    const e = ch.poll();
    expect(e, `no event; wanted ${want}`).toBeDefined();
    expect(e!.event, `event ${e!.eventName} status ${e!.status}`).toBe(want);
    e!.ack();
    return e!;
  };
  return { ...w, hosts, next };
}

/** Connects A to B's listener on port 7174 through QP1, sends one SEND, and disconnects from A. */
async function connectSendDisconnect(w: Awaited<ReturnType<typeof cmWorld>>) {
  const [A, B] = w.hosts as [CmHost, CmHost];
  const { next } = w;
  const listener = B.ch.createId(PortSpace.TCP);
  listener.bindAddr({ address: B.addr, port: 7174 });
  listener.listen(4);
  const id = A.ch.createId(PortSpace.TCP);
  id.resolveAddr(undefined, { address: B.addr, port: 7174 }, 2000);
  next(A.ch, E.ADDR_RESOLVED);
  id.resolveRoute(2000);
  next(A.ch, E.ROUTE_RESOLVED);
  const qp = id.createQp(undefined, { cap: CAP });
  const mr = id.pd!.regMr(4096, Access.LOCAL_WRITE);
  id.connect({ responderResources: 1, initiatorDepth: 1, retryCount: 7, rnrRetryCount: 7 });
  const conn = next(B.ch, E.CONNECT_REQUEST).id;
  const sqp = conn.createQp(undefined, { cap: CAP });
  const smr = conn.pd!.regMr(4096, Access.LOCAL_WRITE);
  sqp.postRecv({ wrId: 1n, sgList: [smr.sge(0, 64)] });
  conn.accept({ responderResources: 1, initiatorDepth: 1 });
  next(A.ch, E.ESTABLISHED);
  next(B.ch, E.ESTABLISHED);
  expect(qp.state).toBe(QpState.RTS);
  expect(qp.query().attr.destQpNum).toBe(sqp.qpNum);
  mr.bytes.set(new TextEncoder().encode("over QP1"), 0);
  qp.postSend({ wrId: 2n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [mr.sge(0, 8)] });
  let wcs: { status: number }[] = [];
  w.net.runUntil(() => (wcs.push(...conn.recvCq!.poll(4)), wcs.length > 0), w.net.now + 10_000_000);
  expect(wcs[0]).toMatchObject({ status: WcStatus.SUCCESS });
  expect(new TextDecoder().decode(smr.bytes.subarray(0, 8))).toBe("over QP1");
  id.disconnect();
  next(B.ch, E.DISCONNECTED);
  conn.disconnect();
  next(A.ch, E.DISCONNECTED);
  return { A, B };
}

describe("rdma_cm over QP1 on the simulated wire", () => {
  it("connect, SEND, disconnect: REQ, REP, RTU, DREQ, DREP travel as UD datagrams to QP 1", async () => {
    const w = await cmWorld();
    await connectSendDisconnect(w);
    expect(w.onWire).toEqual(["REQ", "REP", "RTU", "DREQ", "DREP"]);
  });

  for (const lose of ["REQ", "REP", "RTU", "DREQ"]) {
    it(`the first ${lose} lost on the wire: ib_cm's retry (or the duplicate handling) completes the exchange`, async () => {
      let dropped = 0;
      const w = await cmWorld({
        drop: (d) => {
          if (dropped === 0 && madName(d.payload) === lose) {
            dropped++;
            return true;
          }
          return false;
        },
      });
      const { A, B } = await connectSendDisconnect(w);
      expect(dropped).toBe(1);
      expect(w.onWire).toContain(`${lose}:lost`);
      const retries = { ...A.cm.cmOf(A.dev)!.counters.txRetries };
      const bRetries = { ...B.cm.cmOf(B.dev)!.counters.txRetries };
      // a lost RTU is recovered by the REP's retry (B resends REP, A answers the duplicate with the RTU)
      const who = lose === "REP" || lose === "RTU" ? bRetries : retries;
      expect(who[lose === "RTU" ? "REP" : (lose as "REQ" | "REP" | "DREQ")]).toBe(1);
    });
  }

  it("a rejected connection: REJECTED with reason 28 and the private data; a listener's backlog holds further REQs until read", async () => {
    const w = await cmWorld();
    const [A, B] = w.hosts as [CmHost, CmHost];
    const listener = B.ch.createId(PortSpace.TCP);
    listener.bindAddr({ address: B.addr, port: 7000 });
    listener.listen(1);
    const ids = [0, 1].map(() => {
      const id = A.ch.createId(PortSpace.TCP);
      id.resolveAddr(undefined, { address: B.addr, port: 7000 }, 2000);
      w.next(A.ch, E.ADDR_RESOLVED);
      id.resolveRoute(2000);
      w.next(A.ch, E.ROUTE_RESOLVED);
      id.createQp(undefined, { cap: CAP });
      return id;
    });
    ids[0]!.connect({ responderResources: 1, initiatorDepth: 1 });
    ids[1]!.connect({ responderResources: 1, initiatorDepth: 1 });
    w.net.run(w.net.now + 100_000);
    // backlog 1: one CONNECT_REQUEST waits, the other REQ was dropped silently
    expect(B.ch.pending).toBe(1);
    const first = w.next(B.ch, E.CONNECT_REQUEST);
    first.id.reject(new TextEncoder().encode("no"));
    const rej = w.next(A.ch, E.REJECTED);
    expect(rej.status).toBe(28);
    expect(new TextDecoder().decode(rej.param.conn!.privateData!.subarray(0, 2))).toBe("no");
    // the second REQ's retry (4.608 s later) is taken now that the backlog has room
    const second = w.next(B.ch, E.CONNECT_REQUEST, 10_000_000);
    second.id.createQp(undefined, { cap: CAP });
    second.id.accept({ responderResources: 1, initiatorDepth: 1 });
    w.next(A.ch, E.ESTABLISHED);
    expect(w.onWire.filter((n) => n === "REQ").length).toBeGreaterThanOrEqual(3);
  });
});

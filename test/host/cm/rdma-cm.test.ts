// The librdmacm-shaped API end to end: two softroce devices on the simulated
// wire (RoCEv2 data), their CMs talking over an in-memory MAD channel. RC:
// resolve, connect, accept, SEND and RDMA WRITE, disconnect; rejects, no
// listener, a backlog, unreachable peers, loss on the MAD channel. UD over
// SIDR. Deterministic (seeded), on virtual time.
import { describe, expect, it } from "vitest";
import { coreModule } from "../../../host/node/wasm-source.js";
import { SimNetwork } from "../../../host/core/sim/network.js";
import { simClock } from "../../../host/core/sim/link.js";
import { Prng } from "../../../host/core/sim/prng.js";
import { Access, Mtu, QpState, QpType, SendFlags, WcOpcode, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import type { Device } from "../../../host/core/verbs/device.js";
import type { CompletionQueue, WorkCompletion } from "../../../host/core/verbs/cq.js";
import {
  CMA_CM_RESPONSE_TIMEOUT, CMA_IBOE_PACKET_LIFETIME, cmConvertToMs, cmMsgName, EventChannel, eventStr, openRdmaCm, parseCmaHdr, parseCmMad, PortSpace,
  McJoinFlag, RdmaCm, RdmaCmError, RdmaCmEventType as E, RdmaCmState, RDMA_OPTION_ID, RDMA_OPTION_ID_ACK_TIMEOUT, RDMA_OPTION_ID_AFONLY, RDMA_OPTION_ID_REUSEADDR, RDMA_OPTION_ID_TOS, RDMA_UDP_QKEY, SimMadFabric, type RdmaCmEvent, type RdmaCmId, type SimMadFaults,
} from "../../../host/core/cm/index.js";
import { errorCode } from "./cm-harness.js";
import { VerbsError } from "../../../host/core/verbs/errors.js";

const REQ_RETRY_US = (2 * cmConvertToMs(CMA_IBOE_PACKET_LIFETIME) + cmConvertToMs(CMA_CM_RESPONSE_TIMEOUT)) * 1000; // 6.144 s
const ALL = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ;
const CAP = { maxSendWr: 16, maxRecvWr: 16, maxSendSge: 1, maxRecvSge: 1 };
const enc = (s: string) => new TextEncoder().encode(s);

interface Host {
  dev: Device;
  cm: RdmaCm;
  ch: EventChannel;
}

async function setup(o: { seed?: number; faults?: SimMadFaults; hosts?: number; gids?: (string[] | undefined)[] } = {}) {
  const mod = await coreModule();
  const seed = o.seed ?? 1;
  const net = new SimNetwork({ seed });
  const clock = simClock(net.wire.clock);
  const fabric = new SimMadFabric(clock, { seed, faults: o.faults });
  const prng = new Prng(seed);
  const hosts: Host[] = [];
  for (let i = 0; i < (o.hosts ?? 2); i++) {
    const dev = await net.addDevice(mod, `127.0.0.${i + 1}`, {
      nodeGuid: 0x0200_0000_0000_0001n + BigInt(i), ...(o.gids?.[i] ? { gids: o.gids[i] } : {}),
    });
    const cm = openRdmaCm({ devices: [{ device: dev, mad: fabric.attach(dev.queryGid(0), undefined, o.gids?.[i]?.slice(1)) }], clock, random: () => prng.u32() });
    hosts.push({ dev, cm, ch: cm.createEventChannel() });
  }
  /** Runs the simulation until the channel has an event; returns it (a test failure when none comes). */
  const next = (ch: EventChannel, want?: number, limitUs = 200_000_000): RdmaCmEvent => {
    net.runUntil(() => ch.pending > 0, net.now + limitUs);
    const e = ch.poll();
    expect(e, `no event; wanted ${want === undefined ? "any" : eventStr(want)}`).toBeDefined();
    if (want !== undefined) expect(eventStr(e!.event), `status ${e!.status}`).toBe(eventStr(want));
    e!.ack();
    return e!;
  };
  const drain = (cq: CompletionQueue, n: number): WorkCompletion[] => {
    const got: WorkCompletion[] = [];
    net.runUntil(() => {
      got.push(...cq.poll(16));
      return got.length >= n;
    }, net.now + 50_000_000);
    return got;
  };
  return { net, fabric, hosts, next, drain, clock };
}

type Next = (ch: EventChannel, want?: number) => RdmaCmEvent;

/** An ID with its address and route resolved towards to:port. */
function resolved(h: Host, next: Next, ps: number, to: string, port: number): RdmaCmId {
  const id = h.ch.createId(ps);
  id.resolveAddr(undefined, { address: to, port }, 2000);
  next(h.ch, E.ADDR_RESOLVED);
  id.resolveRoute(2000);
  next(h.ch, E.ROUTE_RESOLVED);
  return id;
}

/** The client's side of rping: a resolved ID, a QP and an MR. */
function client(h: Host, next: Next, to: string, port: number) {
  const id = resolved(h, next, PortSpace.TCP, to, port);
  const qp = id.createQp(undefined, { cap: CAP });
  const mr = id.pd!.regMr(4096, ALL);
  return { id, qp, mr };
}

/** A listening ID on `h` (rdma_bind_addr, rdma_listen with `backlog`). */
function listening(h: Host, address: string, port: number, backlog = 1, ps: PortSpace = PortSpace.TCP) {
  const l = h.ch.createId(ps);
  l.bindAddr({ address, port });
  l.listen(backlog);
  return l;
}

/** client() whose REQ is on its way (rdma_connect, one responder resource, initiator depth 1). */
function connecting(h: Host, next: Next, to: string, port: number) {
  const c = client(h, next, to, port);
  c.id.connect({ responderResources: 1, initiatorDepth: 1 });
  return c;
}

/**
 * A connection from A to B's listener at 127.0.0.2:port, its IDs given their options on the way
 * (`beforeRoute` the client's, after rdma_resolve_addr; `beforeAccept` the server's); both sides
 * ESTABLISHED. Returns the IDs, their QPs and the REQ that went out.
 */
function connectedWith(A: Host, B: Host, next: Next, fabric: SimMadFabric, port: number, o: { beforeRoute?(id: RdmaCmId): void; beforeAccept?(id: RdmaCmId): void } = {}) {
  const id = A.ch.createId(PortSpace.TCP);
  id.resolveAddr(undefined, { address: "127.0.0.2", port }, 2000);
  next(A.ch, E.ADDR_RESOLVED);
  o.beforeRoute?.(id);
  id.resolveRoute(2000);
  next(A.ch, E.ROUTE_RESOLVED);
  const qp = id.createQp(undefined, { cap: CAP });
  const sent = fabric.trace.length;
  id.connect({ responderResources: 1, initiatorDepth: 1 });
  const conn = next(B.ch, E.CONNECT_REQUEST).id;
  const sqp = conn.createQp(undefined, { cap: CAP });
  o.beforeAccept?.(conn);
  conn.accept({ responderResources: 1, initiatorDepth: 1 });
  next(A.ch, E.ESTABLISHED);
  next(B.ch, E.ESTABLISHED);
  const m = parseCmMad(fabric.trace.slice(sent).find((r) => cmMsgName(r.attrId) === "REQ")!.mad);
  if (m.name !== "REQ") throw new Error("no REQ");
  return { id, qp, conn, sqp, req: m.msg };
}

function rdmaInfo(addr: bigint, rkey: number, size: number): Uint8Array {
  const b = new Uint8Array(16);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(0, addr);
  dv.setUint32(8, rkey);
  dv.setUint32(12, size);
  return b;
}

describe("rdma_cm: RC end to end", () => {
  it("connect, accept, SEND and RDMA WRITE on the connected QPs, disconnect: both sides DISCONNECTED, then TIMEWAIT_EXIT", async () => {
    const { hosts, next, drain, fabric } = await setup();
    const [A, B] = hosts as [Host, Host];
    const listener = B.ch.createId(PortSpace.TCP, "server");
    listener.bindAddr({ address: "127.0.0.2", port: 7174 });
    listener.listen(4);

    const c = client(A, next, "127.0.0.2", 7174);
    c.qp.postRecv({ wrId: 1n, sgList: [c.mr.sge(0, 256)] });
    c.id.connect({ privateData: rdmaInfo(c.mr.addr + 1024n, c.mr.rkey, 512), responderResources: 1, initiatorDepth: 1, retryCount: 7, rnrRetryCount: 7 });

    const req = next(B.ch, E.CONNECT_REQUEST);
    expect(req.listenId).toBe(listener);
    expect(req.id.context).toBe("server");
    expect(req.param.conn!.privateDataLen).toBe(56);
    const info = new DataView(req.param.conn!.privateData!.slice(0, 16).buffer);
    expect(info.getBigUint64(0)).toBe(c.mr.addr + 1024n);
    expect(req.param.conn!).toMatchObject({ responderResources: 1, initiatorDepth: 1, retryCount: 7, rnrRetryCount: 7, qpNum: c.qp.qpNum });
    expect(req.id.getPeerAddr()).toEqual({ address: "127.0.0.1", port: c.id.getLocalAddr().port });
    expect(req.id.getLocalAddr()).toEqual({ address: "127.0.0.2", port: 7174 });
    const conn = req.id;
    const sqp = conn.createQp(undefined, { cap: CAP });
    const smr = conn.pd!.regMr(4096, ALL);
    sqp.postRecv({ wrId: 2n, sgList: [smr.sge(0, 256)] });
    conn.accept({ responderResources: 1, initiatorDepth: 1, rnrRetryCount: 6, privateData: enc("welcome") });

    const est = next(A.ch, E.ESTABLISHED);
    expect(new TextDecoder().decode(est.param.conn!.privateData!.subarray(0, 7))).toBe("welcome");
    expect(est.param.conn!.qpNum).toBe(sqp.qpNum);
    next(B.ch, E.ESTABLISHED);

    // The QPs as the CM set them up: each other's QPN and PSNs, Linux's attributes.
    const ca = c.qp.query().attr;
    const sa = sqp.query().attr;
    expect(c.qp.state).toBe(QpState.RTS);
    expect(sqp.state).toBe(QpState.RTS);
    // The client's RNR retry count is the one the server accepted with (the REP's); the server's, the REQ's.
    expect(ca).toMatchObject({ destQpNum: sqp.qpNum, pathMtu: Mtu.MTU_1024, timeout: 19, retryCnt: 7, rnrRetry: 6, maxRdAtomic: 1, maxDestRdAtomic: 1, minRnrTimer: 0 });
    expect(sa).toMatchObject({ destQpNum: c.qp.qpNum, pathMtu: Mtu.MTU_1024, timeout: 19, retryCnt: 7, rnrRetry: 7, maxRdAtomic: 1, maxDestRdAtomic: 1 });
    expect(ca.sqPsn).toBe(sa.rqPsn);
    expect(sa.sqPsn).toBe(ca.rqPsn);
    expect(sa.qpAccessFlags & Access.REMOTE_WRITE).toBeTruthy();

    // The REQ as Linux's rdma_cm would have sent it.
    const reqMad = parseCmMad(fabric.trace.find((r) => cmMsgName(r.attrId) === "REQ")!.mad);
    if (reqMad.name !== "REQ") throw new Error("no REQ");
    const sport = c.id.getLocalAddr().port;
    expect(reqMad.msg).toMatchObject({
      serviceId: 0x0000000001061c06n, localQpn: c.qp.qpNum, transportServiceType: 0, partitionKey: 0xffff, pathPacketPayloadMtu: 3,
      remoteCmResponseTimeout: 20, localCmResponseTimeout: 20, maxCmRetries: 15, retryCount: 7, rnrRetryCount: 7,
      primaryLocalPortLid: 0xffff, primaryRemotePortLid: 0xffff, primaryHopLimit: 64, primarySubnetLocal: 0, primaryLocalAckTimeout: 19,
      primaryFlowLabel: (sport * 31 + 7174) & 0xfffff, localCaGuid: 0x0200_0000_0000_0001n,
    });
    expect(parseCmaHdr(reqMad.msg.privateData)).toEqual({ ipVersion: 4, port: sport, src: "127.0.0.1", dst: "127.0.0.2" });
    expect(fabric.trace.map((r) => cmMsgName(r.attrId))).toEqual(["REQ", "REP", "RTU"]);

    // SEND from the client; RDMA WRITE from the server into the buffer the client advertised.
    c.mr.bytes.set(enc("ping from client"), 512);
    c.qp.postSend({ wrId: 10n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [c.mr.sge(512, 16)] });
    const srecv = drain(conn.recvCq!, 1);
    expect(srecv[0]).toMatchObject({ wrId: 2n, status: WcStatus.SUCCESS, opcode: WcOpcode.RECV, byteLen: 16 });
    expect(new TextDecoder().decode(smr.bytes.subarray(0, 16))).toBe("ping from client");
    smr.bytes.set(enc("written by server"), 2048);
    sqp.postSend({
      wrId: 11n, opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [smr.sge(2048, 17)],
      rdma: { remoteAddr: info.getBigUint64(0), rkey: info.getUint32(8) },
    });
    expect(drain(conn.sendCq!, 1)[0]).toMatchObject({ wrId: 11n, status: WcStatus.SUCCESS, opcode: WcOpcode.RDMA_WRITE });
    expect(new TextDecoder().decode(c.mr.bytes.subarray(1024, 1041))).toBe("written by server");
    expect(drain(c.id.sendCq!, 1)[0]).toMatchObject({ wrId: 10n, status: WcStatus.SUCCESS });

    // Disconnect from the client: the server hears DREQ, answers with its own disconnect (the DREP).
    c.id.disconnect();
    expect(c.qp.state).toBe(QpState.ERR);
    next(B.ch, E.DISCONNECTED);
    conn.disconnect();
    expect(sqp.state).toBe(QpState.ERR);
    next(A.ch, E.DISCONNECTED);
    next(A.ch, E.TIMEWAIT_EXIT);
    next(B.ch, E.TIMEWAIT_EXIT);
    expect(fabric.trace.map((r) => cmMsgName(r.attrId)).slice(3)).toEqual(["DREQ", "DREP"]);

    c.id.destroyQp();
    c.id.destroy();
    conn.destroyQp();
    conn.destroy();
    listener.destroy();
    expect(c.qp.isDestroyed).toBe(true);
    expect(A.cm.cmOf(A.dev)!.idCount).toBe(0);
    expect(B.cm.cmOf(B.dev)!.idCount).toBe(0);
  });

  it("rdma_set_option TOS: the path's traffic class, the REQ's; both QPs send with it; a value past a byte EINVAL, another option or level ENOSYS", async () => {
    const { hosts, next, fabric } = await setup();
    const [A, B] = hosts as [Host, Host];
    listening(B, "127.0.0.2", 7174);
    const { id, qp, conn, sqp, req } = connectedWith(A, B, next, fabric, 7174, {
      beforeRoute(id) {
        expect(errorCode(() => id.setOption(RDMA_OPTION_ID, RDMA_OPTION_ID_TOS, 256), RdmaCmError)).toBe("EINVAL");
        expect(errorCode(() => id.setOption(RDMA_OPTION_ID, 4, 3), RdmaCmError)).toBe("ENOSYS"); // RDMA_OPTION_ID_CM_RETRIES, newer kernels
        expect(errorCode(() => id.setOption(1, 1, 0), RdmaCmError)).toBe("ENOSYS"); // RDMA_OPTION_IB, RDMA_OPTION_IB_PATH
        expect(errorCode(() => id.setOption(RDMA_OPTION_ID, RDMA_OPTION_ID_TOS, 1.5), RdmaCmError)).toBe("EINVAL");
        id.setOption(RDMA_OPTION_ID, RDMA_OPTION_ID_TOS, 0x68);
      },
    });
    expect(id.route.pathRec!.trafficClass).toBe(0x68);
    expect(req.primaryTrafficClass).toBe(0x68);
    // the passive side takes it from the REQ (cm_format_paths_from_req), as Linux's
    expect(conn.route.pathRec!.trafficClass).toBe(0x68);
    for (const q of [qp, sqp]) expect(q.query().attr.ahAttr!.grh!.trafficClass).toBe(0x68);
    // without the option: 0 (default_roce_tos)
    expect(resolved(A, next, PortSpace.TCP, "127.0.0.2", 7174).route.pathRec!.trafficClass).toBe(0);
  });

  // rdma_set_ack_timeout: the QP's local ACK timeout at RTS over the CM's, and before the route the
  // path's packet life time (timeout - 1), which the REQ's local ACK timeout is made from
  it("rdma_set_option ACK_TIMEOUT: the path's packet life time one less, the REQ's ACK timeout from it; each side's QP its own at RTS; on UD or past 31 EINVAL", async () => {
    const { hosts, next, fabric } = await setup();
    const [A, B] = hosts as [Host, Host];
    listening(B, "127.0.0.2", 7175);
    const code = (fn: () => void) => errorCode(fn, RdmaCmError);
    expect(code(() => A.ch.createId(PortSpace.UDP).setOption(RDMA_OPTION_ID, RDMA_OPTION_ID_ACK_TIMEOUT, 10))).toBe("EINVAL");
    expect(code(() => A.ch.createId(PortSpace.TCP).setOption(RDMA_OPTION_ID, RDMA_OPTION_ID_ACK_TIMEOUT, 32))).toBe("EINVAL");
    const set = (t: number) => (id: RdmaCmId) => id.setOption(RDMA_OPTION_ID, RDMA_OPTION_ID_ACK_TIMEOUT, t);
    // the passive side's own, before rdma_accept: 0, no timer
    const { id, qp, sqp, req } = connectedWith(A, B, next, fabric, 7175, { beforeRoute: set(10), beforeAccept: set(0) });
    expect(id.route.pathRec!.packetLifeTime).toBe(9);
    // cm_ack_timeout(15, 9): the CA's ACK delay (15) is the larger; 19 (from life time 18) without the option
    expect(req.primaryLocalAckTimeout).toBe(15);
    // the CM's would be 15 on the active side (from the REP's target ACK delay), 15 on the passive
    expect(qp.query().attr.timeout).toBe(10);
    expect(sqp.query().attr.timeout).toBe(0);
    // without it: the CM's
    const plain = connectedWith(A, B, next, fabric, 7175);
    expect(plain.id.route.pathRec!.packetLifeTime).toBe(CMA_IBOE_PACKET_LIFETIME);
    expect(plain.req.primaryLocalAckTimeout).toBe(19);
    expect(plain.qp.query().attr.timeout).toBe(19);
    expect(plain.sqp.query().attr.timeout).toBe(19);
  });

  it("a lossy, duplicating MAD channel (seeded): every connection and teardown still completes", async () => {
    for (const seed of [3, 4, 5]) {
      const { hosts, next } = await setup({ seed, faults: { loss: 0.25, duplicate: 0.15, jitterUs: 30 } });
      const [A, B] = hosts as [Host, Host];
      const l = listening(B, "0.0.0.0", 18515, 8);
      const c = client(A, next, "127.0.0.2", 18515);
      c.id.connect({ responderResources: 1, initiatorDepth: 1, retryCount: 7, rnrRetryCount: 7 });
      const conn = next(B.ch, E.CONNECT_REQUEST).id;
      conn.createQp(undefined, { cap: CAP });
      conn.accept({ responderResources: 1, initiatorDepth: 1 });
      next(A.ch, E.ESTABLISHED);
      next(B.ch, E.ESTABLISHED);
      c.id.disconnect();
      next(B.ch, E.DISCONNECTED);
      conn.disconnect();
      next(A.ch, E.DISCONNECTED);
    }
  });

  it("closeChannel (the process's end, ucma_close): every ID on the channel goes as rdma_destroy_id would: a connection's peer DISCONNECTED, a request taken but not answered REJECTED; another channel's IDs stay", async () => {
    const { hosts, next, fabric } = await setup();
    const [A, B] = hosts as [Host, Host];
    const l = listening(B, "127.0.0.2", 5100, 4);
    const { id } = connectedWith(A, B, next, fabric, 5100);
    // a second client whose request B took off its channel and never answered (a tool given up mid-accept)
    const c = connecting(A, next, "127.0.0.2", 5100);
    next(B.ch, E.CONNECT_REQUEST);
    // and a listener on another channel of B's, which stays
    const other = B.cm.createEventChannel();
    const l2 = other.createId(PortSpace.TCP);
    l2.bindAddr({ address: "127.0.0.2", port: 5101 });
    l2.listen(1);
    B.cm.closeChannel(B.ch);
    expect(B.ch.isDestroyed).toBe(true);
    expect(l.isDestroyed).toBe(true);
    const ends = [next(A.ch), next(A.ch)];
    expect(ends.map((e) => [e.id === id ? "connected" : e.id === c.id ? "requesting" : "?", eventStr(e.event)]).sort()).toEqual([
      ["connected", "RDMA_CM_EVENT_DISCONNECTED"], ["requesting", "RDMA_CM_EVENT_REJECTED"],
    ]);
    expect(l2.isDestroyed).toBe(false);
    l2.destroy();
  });

  it("rdma_reject with private data: REJECTED with status 28 and the data; the client's QP goes to ERR", async () => {
    const { hosts, next } = await setup();
    const [A, B] = hosts as [Host, Host];
    const l = listening(B, "127.0.0.2", 5000);
    const c = connecting(A, next, "127.0.0.2", 5000);
    const req = next(B.ch, E.CONNECT_REQUEST);
    req.id.reject(enc("not today"));
    const rej = next(A.ch, E.REJECTED);
    expect(rej.status).toBe(28);
    expect(rej.param.conn!.privateDataLen).toBe(148);
    expect(new TextDecoder().decode(rej.param.conn!.privateData!.subarray(0, 9))).toBe("not today");
    expect(c.qp.state).toBe(QpState.ERR);
  });

  it("nobody listening on the port: REJECTED with status 8 (invalid service ID)", async () => {
    const { hosts, next } = await setup();
    const [A] = hosts as [Host, Host];
    const c = connecting(A, next, "127.0.0.2", 4444);
    expect(next(A.ch, E.REJECTED).status).toBe(8);
  });

  it("a listener bound to another address of the port's device does not take the request: consumer REJ (28)", async () => {
    const { hosts, next } = await setup({ gids: [undefined, ["::ffff:127.0.0.2", "::ffff:127.0.0.3"]] });
    const [A, B] = hosts as [Host, Host];
    const l = listening(B, "127.0.0.3", 6000);
    const c = connecting(A, next, "127.0.0.2", 6000);
    expect(next(A.ch, E.REJECTED).status).toBe(28);
    expect(B.ch.pending).toBe(0);
  });

  it("a listener's backlog (1): extra REQs are dropped without a word and taken on their retries", async () => {
    const { hosts, next, net, fabric } = await setup({ hosts: 4 });
    const [S, ...C] = hosts as [Host, Host, Host, Host];
    const l = listening(S, "127.0.0.1", 7000);
    const clients = C.map((h) => {
      const c = connecting(h, next, "127.0.0.1", 7000);
      return c;
    });
    net.run(net.now + 1000);
    expect(S.ch.pending).toBe(1); // one request queued, two dropped
    expect(fabric.trace.filter((r) => cmMsgName(r.attrId) === "REJ")).toHaveLength(0);
    // The server takes what comes: each CONNECT_REQUEST taken frees the slot for the next retry.
    let accepted = 0;
    let established = 0;
    while (accepted < 3 || established < 3) {
      const e = next(S.ch);
      if (e.event === E.CONNECT_REQUEST) {
        accepted++;
        e.id.createQp(undefined, { cap: CAP });
        e.id.accept({ responderResources: 1, initiatorDepth: 1 });
      } else {
        expect(e.event).toBe(E.ESTABLISHED);
        established++;
      }
    }
    for (const [i, h] of C.entries()) {
      const e = next(h.ch, E.ESTABLISHED);
      expect(e.id).toBe(clients[i]!.id);
    }
    // The late ones came in on REQ retries, 6.144 s after their first REQs.
    const reqs = fabric.trace.filter((r) => cmMsgName(r.attrId) === "REQ");
    expect(reqs.length).toBeGreaterThanOrEqual(5);
    expect(reqs.some((r) => r.at >= REQ_RETRY_US)).toBe(true);
  });

  it("a slow acceptor: the REQ's retry draws the held MRA (service timeout 24) and the client waits for the accept", async () => {
    const { hosts, next, net, fabric } = await setup();
    const [A, B] = hosts as [Host, Host];
    const l = listening(B, "127.0.0.2", 7174);
    const c = connecting(A, next, "127.0.0.2", 7174);
    const req = next(B.ch, E.CONNECT_REQUEST);
    net.run(net.now + 20_000_000); // the consumer thinks for 20 s
    const kinds = fabric.trace.map((r) => cmMsgName(r.attrId));
    expect(kinds).toEqual(["REQ", "REQ", "MRA"]);
    const mra = parseCmMad(fabric.trace[2]!.mad);
    if (mra.name !== "MRA") throw new Error("no MRA");
    expect(mra.msg.serviceTimeout).toBe(24);
    expect(A.ch.pending).toBe(0);
    req.id.createQp(undefined, { cap: CAP });
    req.id.accept({ responderResources: 1, initiatorDepth: 1 });
    next(A.ch, E.ESTABLISHED);
    next(B.ch, E.ESTABLISHED);
  });

  it("IPv6: the rdma_cm header carries the IPv6 addresses; the connection comes up over IPv6 GIDs", async () => {
    const { hosts, next, fabric } = await setup({ gids: [["fd00:4791::1"], ["fd00:4791::2"]] });
    const [A, B] = hosts as [Host, Host];
    const l = listening(B, "::", 7174);
    const c = connecting(A, next, "fd00:4791::2", 7174);
    const req = next(B.ch, E.CONNECT_REQUEST);
    expect(req.id.getPeerAddr().address).toBe("fd00:4791::1");
    req.id.createQp(undefined, { cap: CAP });
    req.id.accept({ responderResources: 1, initiatorDepth: 1 });
    next(A.ch, E.ESTABLISHED);
    const m = parseCmMad(fabric.trace[0]!.mad);
    if (m.name !== "REQ") throw new Error("no REQ");
    expect(parseCmaHdr(m.msg.privateData)).toMatchObject({ ipVersion: 6, src: "fd00:4791::1", dst: "fd00:4791::2" });
    expect(c.qp.state).toBe(QpState.RTS);
  });

  it("a peer that never answers: UNREACHABLE with -ETIMEDOUT once the REQ's 15 retries are spent", async () => {
    const { hosts, next, fabric, net } = await setup();
    const [A] = hosts as [Host, Host];
    fabric.drop = () => true;
    const c = client(A, next, "127.0.0.2", 7174);
    const t0 = net.now;
    c.id.connect({ responderResources: 1, initiatorDepth: 1 });
    const e = next(A.ch, E.UNREACHABLE);
    expect(e.status).toBe(-110);
    expect(net.now - t0).toBe(16 * REQ_RETRY_US);
  });
});

describe("rdma_cm: UD over SIDR", () => {
  it("connect resolves the service to a QPN and Q_Key; ESTABLISHED carries the AH attributes; datagrams flow", async () => {
    const { hosts, next, drain } = await setup();
    const [A, B] = hosts as [Host, Host];
    const l = listening(B, "127.0.0.2", 7174, 4, PortSpace.UDP);

    const id = resolved(A, next, PortSpace.UDP, "127.0.0.2", 7174);
    const qp = id.createQp(undefined, { cap: CAP });
    expect(qp.qpType).toBe(QpType.UD);
    expect(qp.state).toBe(QpState.RTS);
    expect(qp.query().attr.qkey).toBe(RDMA_UDP_QKEY);
    const mr = id.pd!.regMr(4096, ALL);
    id.connect({ privateData: enc("udp hello") });

    const req = next(B.ch, E.CONNECT_REQUEST);
    expect(req.param.ud!.privateDataLen).toBe(180);
    expect(new TextDecoder().decode(req.param.ud!.privateData!.subarray(0, 9))).toBe("udp hello");
    const conn = req.id;
    const sqp = conn.createQp(undefined, { cap: CAP });
    const smr = conn.pd!.regMr(4096, ALL);
    sqp.postRecv({ wrId: 1n, sgList: [smr.sge(0, 1024)] });
    conn.accept({ privateData: enc("udp welcome") });
    expect(B.ch.pending).toBe(0);

    const est = next(A.ch, E.ESTABLISHED);
    const ud = est.param.ud!;
    expect(ud.qpNum).toBe(sqp.qpNum);
    expect(ud.qkey).toBe(RDMA_UDP_QKEY);
    expect(new TextDecoder().decode(ud.privateData!.subarray(0, 11))).toBe("udp welcome");
    expect(ud.ahAttr!.grh).toMatchObject({ hopLimit: 64, sgidIndex: 0 });
    expect(ud.ahAttr!.grh!.dgid).toEqual(Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 2]));

    const ah = id.pd!.createAh(ud.ahAttr!);
    mr.bytes.set(enc("datagram"), 0);
    qp.postSend({ wrId: 5n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [mr.sge(0, 8)], ud: { ah, remoteQpn: ud.qpNum, remoteQkey: ud.qkey } });
    const wc = drain(conn.recvCq!, 1)[0]!;
    expect(wc).toMatchObject({ status: WcStatus.SUCCESS, byteLen: 40 + 8, srcQp: qp.qpNum });
    expect(new TextDecoder().decode(smr.bytes.subarray(40, 48))).toBe("datagram");
  });

  it("UD reject: the client is UNREACHABLE with the SIDR status 2 (rejected)", async () => {
    const { hosts, next } = await setup();
    const [A, B] = hosts as [Host, Host];
    const l = listening(B, "127.0.0.2", 9, 1, PortSpace.UDP);
    const id = resolved(A, next, PortSpace.UDP, "127.0.0.2", 9);
    id.createQp(undefined, { cap: CAP });
    id.connect({});
    next(B.ch, E.CONNECT_REQUEST).id.reject();
    expect(next(A.ch, E.UNREACHABLE).status).toBe(2);
  });
});

describe("rdma_cm: multicast (rdma_join_multicast over RoCEv2)", () => {
  const GROUP = "239.15.1.1";
  /** A UD ID on `h` bound to `addr`, its address resolved toward the group, its QP; receives posted when `recv`. */
  function member(h: Host, next: Next, addr: string, recv: boolean) {
    const id = h.ch.createId(PortSpace.UDP);
    id.resolveAddr({ address: addr, port: 0 }, { address: GROUP, port: 0 }, 2000);
    next(h.ch, E.ADDR_RESOLVED);
    const qp = id.createQp(undefined, { cap: CAP });
    const mr = id.pd!.regMr(4096, ALL);
    if (recv) qp.postRecv({ wrId: 1n, sgList: [mr.sge(0, 1024)] });
    return { id, qp, mr };
  }

  it("MULTICAST_JOIN gives the group's AH (MGID, hop limit 64, no LID), QPN 0xFFFFFF and the UDP Q_Key; members' QPs are attached, a send-only one not; a datagram to the group reaches every member", async () => {
    const { hosts, next, drain } = await setup({ hosts: 3 });
    const [A, B, C] = hosts as [Host, Host, Host];
    const tx = member(A, next, "127.0.0.1", false);
    const rx = [member(B, next, "127.0.0.2", true), member(C, next, "127.0.0.3", true)];
    const context = { node: "sender" };
    tx.id.joinMulticast(GROUP, McJoinFlag.SENDONLY_FULLMEMBER, context);
    for (const r of rx) r.id.joinMulticast(GROUP);
    const join = next(A.ch, E.MULTICAST_JOIN);
    // librdmacm's context pointer comes back with the join's event (none given: undefined)
    expect(join.context).toBe(context);
    const ud = join.param.ud!;
    expect({ qpNum: ud.qpNum, qkey: ud.qkey, dlid: ud.ahAttr!.dlid, sl: ud.ahAttr!.sl }).toEqual({ qpNum: 0xffffff, qkey: RDMA_UDP_QKEY, dlid: 0, sl: 0 });
    expect(ud.ahAttr!.grh).toMatchObject({ dgid: Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 239, 15, 1, 1]), hopLimit: 64, sgidIndex: 0 });
    expect(next(B.ch, E.MULTICAST_JOIN).context).toBeUndefined();
    next(C.ch, E.MULTICAST_JOIN);
    expect([A.dev.multicastGroups, B.dev.multicastGroups, C.dev.multicastGroups]).toEqual([[], [GROUP], [GROUP]]);

    const ah = tx.id.pd!.createAh(ud.ahAttr!);
    tx.mr.bytes.set(enc("to the group"), 0);
    tx.qp.postSend({ wrId: 2n, opcode: WrOpcode.SEND_WITH_IMM, immData: tx.qp.qpNum, sendFlags: SendFlags.SIGNALED, sgList: [tx.mr.sge(0, 12)], ud: { ah, remoteQpn: ud.qpNum, remoteQkey: ud.qkey } });
    for (const r of rx) {
      expect(drain(r.id.recvCq!, 1)[0]).toMatchObject({ status: WcStatus.SUCCESS, byteLen: 40 + 12, immData: tx.qp.qpNum, srcQp: tx.qp.qpNum });
      expect(new TextDecoder().decode(r.mr.bytes.subarray(40, 52))).toBe("to the group");
    }

    // leave: detached (the link leaves the group), a second leave is EADDRNOTAVAIL; the QP can go
    rx[0]!.id.leaveMulticast(GROUP);
    expect(B.dev.multicastGroups).toEqual([]);
    expect(errorCode(() => rx[0]!.id.leaveMulticast(GROUP), RdmaCmError)).toBe("EADDRNOTAVAIL");
    rx[0]!.id.destroyQp();
    // still attached: ibv_destroy_qp is EBUSY, as for a user QP on Linux
    expect(errorCode(() => rx[1]!.id.destroyQp(), VerbsError)).toBe("EBUSY");
  });

  it("a leave before the join completes: no event, nothing attached", async () => {
    const { hosts, next, net } = await setup({ hosts: 1 });
    const [A] = hosts as [Host];
    const m = member(A, next, "127.0.0.1", true);
    m.id.joinMulticast(GROUP);
    m.id.leaveMulticast(GROUP);
    net.run(net.now + 1_000_000);
    expect(A.ch.pending).toBe(0);
    expect(A.dev.multicastGroups).toEqual([]);
  });

  it("bad flows: an RC port space, an ID not bound, a unicast or zero address (EINVAL), an IPv6 group (ENOTSUPP, as Linux 6.1)", async () => {
    const { hosts, next } = await setup({ hosts: 1 });
    const [A] = hosts as [Host];
    const rc = A.ch.createId(PortSpace.TCP);
    rc.bindAddr({ address: "127.0.0.1", port: 0 });
    expect(errorCode(() => rc.joinMulticast(GROUP), RdmaCmError)).toBe("EINVAL");
    expect(errorCode(() => A.ch.createId(PortSpace.UDP).joinMulticast(GROUP), RdmaCmError)).toBe("EINVAL");
    const m = member(A, next, "127.0.0.1", false);
    expect(errorCode(() => m.id.joinMulticast("127.0.0.2"), RdmaCmError)).toBe("EINVAL");
    expect(errorCode(() => m.id.joinMulticast("0.0.0.0"), RdmaCmError)).toBe("EINVAL");
    expect(errorCode(() => m.id.joinMulticast("ff0e::4791:1"), RdmaCmError)).toBe("ENOTSUPP");
    expect(errorCode(() => m.id.leaveMulticast(GROUP), RdmaCmError)).toBe("EADDRNOTAVAIL");
  });
});

describe("rdma_cm: addresses and errors", () => {
  it("bind: our addresses only, ports shared as Linux's cma_check_port allows", async () => {
    const { hosts } = await setup();
    const [A] = hosts as [Host, Host];
    const code = (fn: () => void) => errorCode(fn, RdmaCmError);
    expect(code(() => A.ch.createId(PortSpace.TCP).bindAddr({ address: "10.9.9.9", port: 1 }))).toBe("EADDRNOTAVAIL");
    const a = A.ch.createId(PortSpace.TCP);
    a.bindAddr({ address: "127.0.0.1", port: 3000 });
    expect(code(() => A.ch.createId(PortSpace.TCP).bindAddr({ address: "127.0.0.1", port: 3000 }))).toBe("EADDRINUSE");
    expect(code(() => A.ch.createId(PortSpace.TCP).bindAddr({ address: "0.0.0.0", port: 3000 }))).toBe("EADDRNOTAVAIL");
    expect(code(() => A.ch.createId(PortSpace.UDP).bindAddr({ address: "127.0.0.1", port: 3000 }))).toBe("ok"); // another port space
    expect(code(() => a.bindAddr({ address: "127.0.0.1", port: 3001 }))).toBe("EINVAL");
    a.destroy();
    expect(code(() => A.ch.createId(PortSpace.TCP).bindAddr({ address: "127.0.0.1", port: 3000 }))).toBe("ok");
    const any = A.ch.createId(PortSpace.TCP);
    any.bindAddr({ address: "0.0.0.0", port: 0 });
    expect(any.getLocalAddr().port).toBeGreaterThanOrEqual(32768);
    expect(code(() => any.resolveRoute(1000))).toBe("EINVAL");
    expect(code(() => A.ch.createId(0x9999))).toBe("EINVAL");
  });

  // rdma_set_reuseaddr and cma_check_port's reuse: IDs that all set it share an address and port; a
  // listener has it to itself (cma_bind_listen)
  it("rdma_set_option REUSEADDR: IDs that set it share a bound port, one that did not is refused, a listener keeps its address to itself; the states it is taken in", async () => {
    const { hosts } = await setup();
    const [A] = hosts as [Host, Host];
    const code = (fn: () => void) => errorCode(fn, RdmaCmError);
    const reusing = () => {
      const id = A.ch.createId(PortSpace.TCP);
      id.setOption(RDMA_OPTION_ID, RDMA_OPTION_ID_REUSEADDR, 1);
      return id;
    };
    const at = { address: "127.0.0.1", port: 3100 };
    const a = reusing();
    a.bindAddr(at);
    const b = reusing();
    expect(code(() => b.bindAddr(at))).toBe("ok");
    expect(code(() => A.ch.createId(PortSpace.TCP).bindAddr(at))).toBe("EADDRINUSE");
    expect(code(() => a.listen(1))).toBe("EADDRINUSE");
    expect(a.state).toBe(RdmaCmState.ADDR_BOUND);
    b.destroy();
    a.listen(1);
    expect(a.state).toBe(RdmaCmState.LISTEN);
    expect(code(() => a.setOption(RDMA_OPTION_ID, RDMA_OPTION_ID_REUSEADDR, 1))).toBe("EINVAL");
    // another that sets it still binds beside the listener (Linux's check skips IDs that reuse), but cannot listen
    const d = reusing();
    d.bindAddr(at);
    expect(code(() => d.listen(1))).toBe("EADDRINUSE");
    // off only before the bind; on after it
    const e = A.ch.createId(PortSpace.TCP);
    e.bindAddr({ address: "127.0.0.1", port: 3101 });
    expect(code(() => e.setOption(RDMA_OPTION_ID, RDMA_OPTION_ID_REUSEADDR, 0))).toBe("EINVAL");
    expect(code(() => e.setOption(RDMA_OPTION_ID, RDMA_OPTION_ID_REUSEADDR, 1))).toBe("ok");
  });

  // rdma_set_afonly: an AF_INET6 bind is not family-only unless the option says so (bindv6only 0)
  it("rdma_set_option AFONLY: a :: listener takes IPv4 requests too unless AFONLY; with it an IPv4 wildcard bind shares the port; not once listening", async () => {
    const { hosts, next } = await setup({ gids: [["::ffff:127.0.0.1", "fd00:4791::1"], ["::ffff:127.0.0.2", "fd00:4791::2"]] });
    const [A, B] = hosts as [Host, Host];
    const code = (fn: () => void) => errorCode(fn, RdmaCmError);
    const listenerOf = (to: string, port: number) => {
      connecting(A, next, to, port);
      const e = next(B.ch, E.CONNECT_REQUEST);
      e.id.reject();
      next(A.ch, E.REJECTED);
      return e.listenId;
    };
    // without the option: the IPv6 wildcard holds the port for IPv4 too, and takes its requests
    const both = B.ch.createId(PortSpace.TCP);
    both.bindAddr({ address: "::", port: 7176 });
    both.listen(1);
    expect(code(() => B.ch.createId(PortSpace.TCP).bindAddr({ address: "0.0.0.0", port: 7176 }))).toBe("EADDRNOTAVAIL");
    expect(listenerOf("127.0.0.2", 7176)).toBe(both);
    expect(code(() => both.setOption(RDMA_OPTION_ID, RDMA_OPTION_ID_AFONLY, 1))).toBe("EINVAL");
    // with it: IPv6 only, and an IPv4 listener beside it on the same port
    const v6 = B.ch.createId(PortSpace.TCP);
    v6.setOption(RDMA_OPTION_ID, RDMA_OPTION_ID_AFONLY, 1);
    v6.bindAddr({ address: "::", port: 7177 });
    v6.listen(1);
    const v4 = listening(B, "0.0.0.0", 7177);
    expect(listenerOf("127.0.0.2", 7177)).toBe(v4);
    expect(listenerOf("fd00:4791::2", 7177)).toBe(v6);
  });

  it("an address family no device has: ADDR_ERROR with -ENODEV; connect before the route: EINVAL", async () => {
    const { hosts, next } = await setup();
    const [A] = hosts as [Host, Host];
    const id = A.ch.createId(PortSpace.TCP);
    id.resolveAddr(undefined, { address: "fd00::2", port: 1 }, 1000);
    expect(next(A.ch, E.ADDR_ERROR).status).toBe(-19);
    const id2: RdmaCmId = A.ch.createId(PortSpace.TCP);
    expect(() => id2.connect({})).toThrow(/rdma_connect: EINVAL/);
    expect(() => id2.createQp(undefined, { cap: CAP })).toThrow(/rdma_create_qp: EINVAL/);
  });

  it("a device that closes: DEVICE_REMOVAL for the IDs on it", async () => {
    const { hosts, next } = await setup();
    const [A] = hosts as [Host, Host];
    const id = A.ch.createId(PortSpace.TCP);
    id.bindAddr({ address: "127.0.0.1", port: 1234 });
    A.dev.close();
    expect(next(A.ch, E.DEVICE_REMOVAL).id).toBe(id);
  });

  it("destroying a listener drops the requests it has not handed out, and their IDs", async () => {
    const { hosts, next, net } = await setup();
    const [A, B] = hosts as [Host, Host];
    const l = listening(B, "127.0.0.2", 7001, 4);
    const c = connecting(A, next, "127.0.0.2", 7001);
    net.run(net.now + 1000);
    expect(B.ch.pending).toBe(1);
    l.destroy();
    expect(B.ch.pending).toBe(0);
    // The connection request's ID is gone too: its CM ID rejected the REQ (consumer reject).
    expect(next(A.ch, E.REJECTED).status).toBe(28);
  });
});

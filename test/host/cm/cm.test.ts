// The ib_cm state machine on an in-memory MAD fabric with a virtual clock:
// the three-way handshake, every loss the timers and retries recover from,
// duplicates, rejects, no listener, retries running out, MRA, stale
// connections, SIDR, and what the port answers to MADs it does not handle.
import { describe, expect, it } from "vitest";
import { CmState, IbCmEventType, MRA_FLAG_DELAY, MsgResponse, RejReason, SidrStatus, cmAckTimeout, cmConvertToMs } from "../../../host/core/cm/cm-consts.js";
import { cmMsgName, parseCmMad, emitCmMad, parseClassPortInfo, emitClassPortInfo } from "../../../host/core/cm/cm-msgs.js";
import { MadMethod, MadStatus, MgmtClass, parseMad, MAD_SIZE, madHeader, emitMad } from "../../../host/core/cm/mad.js";
import { RdmaCmError } from "../../../host/core/cm/errno.js";
import { WcStatus } from "../../../host/core/verbs/enums.js";
import { names, path, reqParam, SID, wire, world, type Node } from "./cm-harness.js";

const REQ_TIMEOUT_US = (2 * cmConvertToMs(16) + cmConvertToMs(20)) * 1000; // 4.608 s: Linux's for rdma_cm's REQ
const REP_TIMEOUT_US = cmConvertToMs(20) * 1000; // 4.096 s: the passive side's, from the REQ

/** B listens and accepts every REQ with a REP; A answers the REP with an RTU. */
function handshake(a: Node, b: Node, repQpn = 0x22): void {
  b.cm.createId(b.handler).listen(SID);
  b.react = (id, ev) => {
    if (ev.event === IbCmEventType.REQ_RECEIVED) {
      id.sendRep({ qpNum: repQpn, startingPsn: 0x123456, responderResources: 1, initiatorDepth: 1, rnrRetryCount: 7, privateData: new Uint8Array([9, 8, 7]) });
    }
    if (ev.event === IbCmEventType.DREQ_RECEIVED) id.sendDrep();
  };
  a.react = (id, ev) => {
    if (ev.event === IbCmEventType.REP_RECEIVED) id.sendRtu();
  };
}

describe("ib_cm: connection establishment", () => {
  it("REQ, REP, RTU: both ends ESTABLISHED, with the REQ's TID and each other's comm IDs, QPNs and PSNs", () => {
    const w = world();
    const [a, b] = w.nodes as [Node, Node];
    handshake(a, b);
    const ida = a.cm.createId(a.handler);
    ida.sendReq(reqParam(a, b));
    expect(ida.state).toBe(CmState.REQ_SENT);
    w.run();
    expect(wire(w.fabric.trace)).toEqual(["REQ:delivered", "REP:delivered", "RTU:delivered"]);
    const idb = b.seen[0]!.id;
    expect(ida.state).toBe(CmState.ESTABLISHED);
    expect(idb.state).toBe(CmState.ESTABLISHED);
    expect(names(b)).toEqual(["REQ_RECEIVED", "RTU_RECEIVED"]);
    expect(names(a)).toEqual(["REP_RECEIVED"]);
    expect(ida.remoteId).toBe(idb.localId);
    expect(idb.remoteId).toBe(ida.localId);
    const [req, rep, rtu] = w.fabric.trace.map((r) => parseCmMad(r.mad));
    expect(rep!.hdr.transactionId).toBe(req!.hdr.transactionId);
    expect(rtu!.hdr.transactionId).toBe(req!.hdr.transactionId);
    // Linux's TID: the agent's hi_tid, then the local comm ID as a little-endian host stores it.
    const lid = ida.localId;
    const swapped = ((lid & 0xff) * 2 ** 24 + ((lid >>> 8) & 0xff) * 2 ** 16 + ((lid >>> 16) & 0xff) * 256 + (lid >>> 24)) >>> 0;
    expect(req!.hdr.transactionId).toBe((1n << 32n) | BigInt(swapped));
    const r = b.seen[0]!.ev.reqRcvd!;
    expect(r.remoteQpn).toBe(0x11);
    expect(r.startingPsn).toBe(0xabcdef);
    expect(r.primaryPath.dgid).toEqual(a.gid);
    expect(r.primaryPath.packetLifeTime).toBe(16);
    expect(a.seen[0]!.ev.repRcvd!.remoteQpn).toBe(0x22);
    expect(a.seen[0]!.ev.privateData!.subarray(0, 4)).toEqual(new Uint8Array([9, 8, 7, 0]));
    // RTR/RTS attributes as ib_cm_init_qp_attr gives them.
    const rtrA = ida.initQpAttr(2);
    expect(rtrA).toMatchObject({ destQpNum: 0x22, rqPsn: 0xabcdef, pathMtu: 3, maxDestRdAtomic: 1, minRnrTimer: 0 });
    expect(ida.initQpAttr(3)).toMatchObject({ sqPsn: 0x123456, retryCnt: 7, rnrRetry: 7, maxRdAtomic: 1, timeout: cmAckTimeout(15, 16) });
    expect(idb.initQpAttr(2)).toMatchObject({ destQpNum: 0x11, rqPsn: 0x123456 });
    expect(idb.initQpAttr(3)).toMatchObject({ sqPsn: 0xabcdef, timeout: 17 });
    expect(idb.initQpAttr(1)).toMatchObject({ qpAccessFlags: 2 | 4 | 8, pkeyIndex: 0, portNum: 1 });
  });

  it("a lost REQ is sent again after 2 × packet life + the remote response timeout (4.608 s)", () => {
    const w = world();
    const [a, b] = w.nodes as [Node, Node];
    handshake(a, b);
    let dropped = 0;
    w.fabric.drop = (mad) => cmMsgName((mad[16]! << 8) | mad[17]!) === "REQ" && dropped++ === 0;
    const ida = a.cm.createId(a.handler);
    ida.sendReq(reqParam(a, b));
    w.run();
    expect(wire(w.fabric.trace)).toEqual(["REQ:dropped", "REQ:delivered", "REP:delivered", "RTU:delivered"]);
    expect(w.fabric.trace[1]!.at - w.fabric.trace[0]!.at).toBe(REQ_TIMEOUT_US);
    expect(a.cm.counters.txRetries.REQ).toBe(1);
    expect(ida.state).toBe(CmState.ESTABLISHED);
  });

  it("a lost REP is sent again after the REQ's local response timeout (4.096 s), before the REQ's retry", () => {
    const w = world();
    const [a, b] = w.nodes as [Node, Node];
    handshake(a, b);
    let dropped = 0;
    w.fabric.drop = (mad) => cmMsgName((mad[16]! << 8) | mad[17]!) === "REP" && dropped++ === 0;
    a.cm.createId(a.handler).sendReq(reqParam(a, b));
    w.run();
    expect(wire(w.fabric.trace)).toEqual(["REQ:delivered", "REP:dropped", "REP:delivered", "RTU:delivered"]);
    expect(w.fabric.trace[2]!.at - w.fabric.trace[1]!.at).toBe(REP_TIMEOUT_US);
    expect(b.cm.counters.txRetries.REP).toBe(1);
    expect(a.cm.counters.tx.REQ).toBe(1);
    expect(b.seen[0]!.id.state).toBe(CmState.ESTABLISHED);
  });

  it("a lost RTU: the REP is retried, the active side sees a duplicate REP and sends the RTU again", () => {
    const w = world();
    const [a, b] = w.nodes as [Node, Node];
    handshake(a, b);
    let dropped = 0;
    w.fabric.drop = (mad) => cmMsgName((mad[16]! << 8) | mad[17]!) === "RTU" && dropped++ === 0;
    a.cm.createId(a.handler).sendReq(reqParam(a, b));
    w.run();
    expect(wire(w.fabric.trace)).toEqual(["REQ:delivered", "REP:delivered", "RTU:dropped", "REP:delivered", "RTU:delivered"]);
    expect(a.cm.counters.rxDuplicates.REP).toBe(1);
    expect(names(a)).toEqual(["REP_RECEIVED"]); // the duplicate is answered, not handed up
    expect(b.seen[0]!.id.state).toBe(CmState.ESTABLISHED);
    const rtu2 = parseCmMad(w.fabric.trace[4]!.mad);
    expect(rtu2.hdr.transactionId).toBe(parseCmMad(w.fabric.trace[0]!.mad).hdr.transactionId);
  });

  it("every MAD delivered twice: one connection, the duplicates counted and absorbed", () => {
    const w = world({ faults: { duplicate: 1 } });
    const [a, b] = w.nodes as [Node, Node];
    handshake(a, b);
    const ida = a.cm.createId(a.handler);
    ida.sendReq(reqParam(a, b));
    w.run();
    expect(ida.state).toBe(CmState.ESTABLISHED);
    expect(b.seen.filter((s) => s.ev.event === IbCmEventType.REQ_RECEIVED)).toHaveLength(1);
    expect(b.seen.filter((s) => s.ev.event === IbCmEventType.RTU_RECEIVED)).toHaveLength(1);
    expect(a.seen.filter((s) => s.ev.event === IbCmEventType.REP_RECEIVED)).toHaveLength(1);
    expect(b.cm.counters.rxDuplicates.REQ).toBe(1);
    expect(b.cm.idCount).toBe(2); // the listener and one connection
  });

  it("random loss and duplication (seeded): the handshake and the teardown complete", () => {
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const w = world({ seed, faults: { loss: 0.3, duplicate: 0.2, jitterUs: 50 } });
      const [a, b] = w.nodes as [Node, Node];
      handshake(a, b);
      const ida = a.cm.createId(a.handler);
      ida.sendReq(reqParam(a, b));
      w.run(120_000_000);
      expect(ida.state, `seed ${seed}: ${wire(w.fabric.trace).join(" ")}`).toBe(CmState.ESTABLISHED);
      ida.sendDreq();
      w.run(w.clock.now + 120_000_000);
      expect([CmState.IDLE, CmState.TIMEWAIT], `seed ${seed}`).toContain(ida.state);
      expect(b.seen.some((s) => s.ev.event === IbCmEventType.DREQ_RECEIVED), `seed ${seed}`).toBe(true);
    }
  });
});

describe("ib_cm: rejects and errors", () => {
  it("no listener: REJ with reason 8 (invalid service ID), rejecting the REQ; the active ID goes back to IDLE", () => {
    const w = world();
    const [a] = w.nodes as [Node, Node];
    const ida = a.cm.createId(a.handler);
    ida.sendReq(reqParam(a, w.nodes[1]!));
    w.run();
    expect(wire(w.fabric.trace)).toEqual(["REQ:delivered", "REJ:delivered"]);
    const rej = parseCmMad(w.fabric.trace[1]!.mad);
    expect(rej.name).toBe("REJ");
    if (rej.name !== "REJ") return;
    expect(rej.msg.reason).toBe(RejReason.INVALID_SERVICE_ID);
    expect(rej.msg.messageRejected).toBe(MsgResponse.REQ);
    expect(rej.msg.remoteCommId).toBe(ida.localId);
    expect(rej.msg.localCommId).toBe(0);
    expect(rej.hdr.transactionId).toBe(parseCmMad(w.fabric.trace[0]!.mad).hdr.transactionId);
    expect(names(a)).toEqual(["REJ_RECEIVED"]);
    expect(a.seen[0]!.ev.rejRcvd!.reason).toBe(8);
    expect(ida.state).toBe(CmState.IDLE);
    expect(a.cm.counters.tx.REQ).toBe(1); // no retry after the REJ
  });

  it("a consumer reject carries private data to the active side (reason 28)", () => {
    const w = world();
    const [a, b] = w.nodes as [Node, Node];
    b.cm.createId(b.handler).listen(SID);
    const why = new TextEncoder().encode("go away");
    b.react = (id, ev) => {
      if (ev.event === IbCmEventType.REQ_RECEIVED) id.sendRej(RejReason.CONSUMER_DEFINED, undefined, why);
    };
    const ida = a.cm.createId(a.handler);
    ida.sendReq(reqParam(a, b));
    w.run();
    const ev = a.seen[0]!.ev;
    expect(ev.event).toBe(IbCmEventType.REJ_RECEIVED);
    expect(ev.rejRcvd!.reason).toBe(28);
    expect(ev.privateData!.length).toBe(148);
    expect(ev.privateData!.subarray(0, why.length)).toEqual(why);
    expect(ida.state).toBe(CmState.IDLE);
    expect(b.seen[0]!.id.state).toBe(CmState.IDLE);
  });

  it("retries run out: REQ_ERROR with IB_WC_RESP_TIMEOUT_ERR after 1 + 15 sends, 16 × 4.608 s", () => {
    const w = world();
    const [a, b] = w.nodes as [Node, Node];
    w.fabric.drop = () => true;
    const ida = a.cm.createId(a.handler);
    ida.sendReq(reqParam(a, b));
    w.run();
    expect(a.cm.counters.tx.REQ).toBe(16);
    expect(names(a)).toEqual(["REQ_ERROR"]);
    expect(a.seen[0]!.ev.sendStatus).toBe(WcStatus.RESP_TIMEOUT_ERR);
    expect(a.seen[0]!.at).toBe(16 * REQ_TIMEOUT_US);
    expect(ida.state).toBe(CmState.IDLE);
  });

  it("the passive side's REP runs out of retries: REP_ERROR", () => {
    const w = world();
    const [a, b] = w.nodes as [Node, Node];
    handshake(a, b);
    w.fabric.drop = (mad) => cmMsgName((mad[16]! << 8) | mad[17]!) === "REP";
    a.cm.createId(a.handler).sendReq(reqParam(a, b, { maxCmRetries: 2 }));
    w.run();
    expect(b.cm.counters.tx.REP).toBe(3);
    expect(names(b)).toEqual(["REQ_RECEIVED", "REP_ERROR"]);
    expect(names(a)).toEqual(["REQ_ERROR"]);
  });

  it("destroying an ID that sent a REQ rejects with reason timeout and our CA GUID as ARI; the peer finds its ID by it", () => {
    const w = world();
    const [a, b] = w.nodes as [Node, Node];
    b.cm.createId(b.handler).listen(SID); // b leaves the REQ unanswered
    const ida = a.cm.createId(a.handler);
    ida.sendReq(reqParam(a, b));
    w.run(1000);
    ida.destroy();
    w.run();
    expect(wire(w.fabric.trace)).toEqual(["REQ:delivered", "REJ:delivered"]);
    const rej = parseCmMad(w.fabric.trace[1]!.mad);
    if (rej.name !== "REJ") throw new Error("not a REJ");
    expect(rej.msg.reason).toBe(RejReason.TIMEOUT);
    expect(rej.msg.rejectedInfoLength).toBe(8);
    expect(rej.msg.ari.subarray(0, 8)).toEqual(new Uint8Array([0x00, 0x02, 0xc9, 0x03, 0, 0, 0, 1]));
    expect(names(b)).toEqual(["REQ_RECEIVED", "REJ_RECEIVED"]);
    expect(b.seen[1]!.id.state).toBe(CmState.IDLE);
  });

  it("a consumer that cannot take a REQ (-ENOMEM) stays silent; the REQ's retry is taken", () => {
    const w = world();
    const [a, b] = w.nodes as [Node, Node];
    b.cm.createId(b.handler).listen(SID);
    let refused = 0;
    b.react = (id, ev) => {
      if (ev.event !== IbCmEventType.REQ_RECEIVED) return 0;
      if (refused++ === 0) return -12;
      id.sendRep({ qpNum: 0x22, startingPsn: 1, responderResources: 1, initiatorDepth: 1, rnrRetryCount: 7 });
      return 0;
    };
    a.react = (id, ev) => {
      if (ev.event === IbCmEventType.REP_RECEIVED) id.sendRtu();
    };
    const ida = a.cm.createId(a.handler);
    ida.sendReq(reqParam(a, b));
    w.run();
    expect(wire(w.fabric.trace)).toEqual(["REQ:delivered", "REQ:delivered", "REP:delivered", "RTU:delivered"]);
    expect(ida.state).toBe(CmState.ESTABLISHED);
  });

  it("a REQ for a GID that is not ours: REJ invalid GID (12) with our GID as ARI", () => {
    const w = world();
    const [, b] = w.nodes as [Node, Node];
    b.cm.createId(b.handler).listen(SID);
    const probe = w.fabric.attach("::ffff:10.0.0.9");
    const got: Uint8Array[] = [];
    probe.onReceive((m) => got.push(m.slice()));
    const req = emitCmMad("REQ", { transactionId: 5n }, {
      localCommId: 0x1111, serviceId: SID, localQpn: 0x44, primaryRemotePortGid: new Uint8Array(16).fill(0xaa), primaryLocalAckTimeout: 17,
    });
    probe.send(req, { gid: b.gid, qpn: 1, pkeyIndex: 0, qkey: 0x80010000 });
    w.run();
    expect(got).toHaveLength(1);
    const rej = parseCmMad(got[0]!);
    if (rej.name !== "REJ") throw new Error("not a REJ");
    expect(rej.msg.reason).toBe(RejReason.INVALID_GID);
    expect(rej.msg.rejectedInfoLength).toBe(16);
    expect(rej.msg.ari.subarray(0, 16)).toEqual(b.gid);
    expect(rej.msg.remoteCommId).toBe(0x1111);
    expect(names(b)).toEqual([]);
    expect(b.cm.idCount).toBe(1);
  });
});

describe("ib_cm: MRA", () => {
  it("an MRA stretches the REQ timeout to service timeout + packet life; the REP that follows completes", () => {
    const w = world();
    const [a, b] = w.nodes as [Node, Node];
    b.cm.createId(b.handler).listen(SID);
    b.react = (id, ev) => {
      if (ev.event !== IbCmEventType.REQ_RECEIVED) return;
      id.sendMra(20); // 4.096 µs × 2^20: about 4 s
      w.clock.after(10_000_000, () => id.sendRep({ qpNum: 0x22, startingPsn: 1, responderResources: 1, initiatorDepth: 1, rnrRetryCount: 7 }));
    };
    a.react = (id, ev) => {
      if (ev.event === IbCmEventType.REP_RECEIVED) id.sendRtu();
    };
    const ida = a.cm.createId(a.handler);
    ida.sendReq(reqParam(a, b));
    w.run();
    // cm_convert_to_ms(20) + cm_convert_to_ms(av.timeout 17) = 4096 + 512 ms from the MRA to the REQ's next send;
    // the retry count goes on (15 retries at the new pace), and each duplicate REQ draws the MRA again.
    const reqs = w.fabric.trace.filter((r) => cmMsgName(r.attrId) === "REQ");
    const mras = w.fabric.trace.filter((r) => cmMsgName(r.attrId) === "MRA");
    expect(reqs).toHaveLength(3);
    expect(reqs[1]!.at - mras[0]!.at - 10).toBe((4096 + 512) * 1000);
    expect(mras).toHaveLength(3);
    expect(names(a)).toEqual(["MRA_RECEIVED", "REP_RECEIVED"]);
    expect(ida.state).toBe(CmState.ESTABLISHED);
  });

  it("MRA held back (IB_CM_MRA_FLAG_DELAY, as rdma_cm sends it): only a duplicate REQ draws it, with 5 bits of timeout", () => {
    const w = world();
    const [a, b] = w.nodes as [Node, Node];
    b.cm.createId(b.handler).listen(SID);
    b.react = (id, ev) => {
      if (ev.event === IbCmEventType.REQ_RECEIVED) id.sendMra(MRA_FLAG_DELAY | 24);
    };
    const ida = a.cm.createId(a.handler);
    ida.sendReq(reqParam(a, b));
    w.run(REQ_TIMEOUT_US + 100);
    expect(wire(w.fabric.trace)).toEqual(["REQ:delivered", "REQ:delivered", "MRA:delivered"]);
    const mra = parseCmMad(w.fabric.trace[2]!.mad);
    if (mra.name !== "MRA") throw new Error("not an MRA");
    expect(mra.msg.serviceTimeout).toBe(24);
    expect(mra.msg.messageMraed).toBe(MsgResponse.REQ);
    expect(ida.state).toBe(CmState.MRA_REQ_RCVD);
    expect(b.cm.counters.rxDuplicates.REQ).toBe(1);
  });
});

describe("ib_cm: disconnection", () => {
  function established(w: ReturnType<typeof world>) {
    const [a, b] = w.nodes as [Node, Node];
    handshake(a, b);
    const ida = a.cm.createId(a.handler);
    ida.sendReq(reqParam(a, b));
    w.run();
    w.fabric.trace.length = 0;
    return { a, b, ida, idb: b.seen[0]!.id };
  }

  it("DREQ, DREP: both in TIMEWAIT, then IDLE after cm_convert_to_ms(ACK timeout 17) = 512 ms, with TIMEWAIT_EXIT", () => {
    const w = world();
    const { a, b, ida, idb } = established(w);
    const t0 = w.clock.now;
    ida.sendDreq();
    w.run(t0 + 100);
    expect(ida.state).toBe(CmState.TIMEWAIT);
    expect(idb.state).toBe(CmState.TIMEWAIT);
    w.run();
    expect(wire(w.fabric.trace)).toEqual(["DREQ:delivered", "DREP:delivered"]);
    expect(ida.state).toBe(CmState.IDLE);
    const exit = a.seen.find((s) => s.ev.event === IbCmEventType.TIMEWAIT_EXIT)!;
    expect(exit.at - w.fabric.trace[1]!.at - 10).toBe(512_000);
    expect(names(b).slice(-2)).toEqual(["DREQ_RECEIVED", "TIMEWAIT_EXIT"]);
    const dreq = parseCmMad(w.fabric.trace[0]!.mad);
    if (dreq.name !== "DREQ") throw new Error("not a DREQ");
    expect(dreq.msg.remoteQpnEecn).toBe(0x22);
    expect(dreq.hdr.transactionId).toBe(a.cm.formTid(ida));
  });

  it("a lost DREQ is retried; a lost DREP is answered from the DREQ alone once the peer's ID is gone", () => {
    const w = world();
    const { b, ida, idb } = established(w);
    let dreqs = 0;
    let dreps = 0;
    w.fabric.drop = (mad) => {
      const n = cmMsgName((mad[16]! << 8) | mad[17]!);
      return (n === "DREQ" && dreqs++ === 0) || (n === "DREP" && dreps++ === 0);
    };
    b.react = (id, ev) => {
      if (ev.event === IbCmEventType.DREQ_RECEIVED) {
        id.sendDrep();
        id.destroy(); // as rdma_cm consumers do once DISCONNECTED
      }
    };
    ida.sendDreq();
    w.run();
    expect(wire(w.fabric.trace)).toEqual(["DREQ:dropped", "DREQ:delivered", "DREP:dropped", "DREQ:delivered", "DREP:delivered"]);
    expect(b.cm.counters.rxDuplicates.DREQ).toBe(1);
    expect(ida.state).toBe(CmState.IDLE);
    expect(idb.destroyed).toBe(true);
  });

  it("DREQ retries running out: DREQ_ERROR and TIMEWAIT all the same", () => {
    const w = world();
    const { a, ida } = established(w);
    w.fabric.drop = () => true;
    ida.sendDreq();
    w.run();
    expect(a.cm.counters.tx.DREQ).toBe(16);
    expect(names(a).slice(-2)).toEqual(["DREQ_ERROR", "TIMEWAIT_EXIT"]);
  });

  it("a REQ reusing the QPN of a live connection from the same CA: REJ stale connection, and the old one is torn down", () => {
    const w = world();
    const { a, b, idb } = established(w);
    // The same CA (GUID) comes back with the same QP number: a new ID, as after a crash.
    const again = a.cm.createId(a.handler);
    again.sendReq(reqParam(a, b));
    w.run(w.clock.now + 1000);
    const kinds = wire(w.fabric.trace);
    expect(kinds.slice(0, 3)).toEqual(["REQ:delivered", "REJ:delivered", "DREQ:delivered"]);
    const rej = parseCmMad(w.fabric.trace[1]!.mad);
    if (rej.name !== "REJ") throw new Error("not a REJ");
    expect(rej.msg.reason).toBe(RejReason.STALE_CONN);
    expect(again.state).toBe(CmState.TIMEWAIT);
    expect(idb.state).toBe(CmState.DREQ_SENT);
  });
});

describe("ib_cm: SIDR", () => {
  it("SIDR_REQ answered by SIDR_REP with the QPN and Q_Key", () => {
    const w = world();
    const [a, b] = w.nodes as [Node, Node];
    b.cm.createId(b.handler).listen(0x0000000001110000n + 7174n);
    b.react = (id, ev) => {
      if (ev.event === IbCmEventType.SIDR_REQ_RECEIVED) id.sendSidrRep({ status: SidrStatus.SUCCESS, qpNum: 0x33, qkey: 0x01234567 });
    };
    const ida = a.cm.createId(a.handler);
    ida.sendSidrReq({ path: path(a, b), serviceId: 0x0000000001110000n + 7174n, timeoutMs: 4096, maxCmRetries: 15, privateData: new Uint8Array([1]) });
    w.run();
    expect(wire(w.fabric.trace)).toEqual(["SIDR_REQ:delivered", "SIDR_REP:delivered"]);
    expect(names(a)).toEqual(["SIDR_REP_RECEIVED"]);
    expect(a.seen[0]!.ev.sidrRepRcvd).toMatchObject({ status: 0, qpn: 0x33, qkey: 0x01234567 });
    expect(ida.state).toBe(CmState.IDLE);
    expect(b.seen[0]!.ev.privateData![0]).toBe(1);
  });

  it("SIDR_REQ lost once is retried after its timeout; no listener answers status 1 (unsupported)", () => {
    const w = world();
    const [a, b] = w.nodes as [Node, Node];
    let dropped = 0;
    w.fabric.drop = (mad) => cmMsgName((mad[16]! << 8) | mad[17]!) === "SIDR_REQ" && dropped++ === 0;
    a.cm.createId(a.handler).sendSidrReq({ path: path(a, b), serviceId: 0x11110000n, timeoutMs: 4096, maxCmRetries: 15 });
    w.run();
    expect(wire(w.fabric.trace)).toEqual(["SIDR_REQ:dropped", "SIDR_REQ:delivered", "SIDR_REP:delivered"]);
    expect(w.fabric.trace[1]!.at - w.fabric.trace[0]!.at).toBe(4_096_000);
    expect(a.seen[0]!.ev.sidrRepRcvd!.status).toBe(SidrStatus.UNSUPPORTED);
    expect(b.cm.idCount).toBe(0);
  });

  it("a duplicate SIDR_REQ while the first is being answered is dropped", () => {
    const w = world({ faults: { duplicate: 1 } });
    const [a, b] = w.nodes as [Node, Node];
    b.cm.createId(b.handler).listen(0x11110000n);
    a.cm.createId(a.handler).sendSidrReq({ path: path(a, b), serviceId: 0x11110000n, timeoutMs: 4096, maxCmRetries: 15 });
    w.run(100);
    expect(names(b)).toEqual(["SIDR_REQ_RECEIVED"]);
    expect(b.cm.counters.rxDuplicates.SIDR_REQ).toBe(1);
  });
});

describe("ib_cm: what the port does with other MADs", () => {
  it("a Get(ClassPortInfo) of the CM class is answered GetResp, status 0x000c, as Linux's MAD layer does", () => {
    const w = world();
    const [a] = w.nodes as [Node, Node];
    const probe = w.fabric.attach("::ffff:10.0.0.9");
    const got: Uint8Array[] = [];
    probe.onReceive((m) => got.push(m.slice()));
    probe.send(emitClassPortInfo({ mgmtClass: MgmtClass.CM, classVersion: 2, method: MadMethod.GET, transactionId: 77n }, {}), {
      gid: a.gid, qpn: 1, pkeyIndex: 0, qkey: 0x80010000,
    });
    w.run();
    expect(got).toHaveLength(1);
    const { hdr } = parseClassPortInfo(got[0]!);
    expect(hdr).toMatchObject({ method: MadMethod.GET_RESP, status: MadStatus.UNSUPPORTED_METHOD_ATTRIB, transactionId: 77n, mgmtClass: 7 });
    expect(a.cm.counters.unmatchedAnswered).toBe(1);
  });

  it("malformed and foreign MADs are counted and dropped, never thrown", () => {
    const w = world();
    const [a] = w.nodes as [Node, Node];
    const probe = w.fabric.attach("::ffff:10.0.0.9");
    const to = { gid: a.gid, qpn: 1, pkeyIndex: 0, qkey: 0x80010000 };
    probe.send(new Uint8Array(100), to);
    const bad = emitCmMad("REQ", {}, {});
    bad[0] = 2;
    probe.send(bad, to);
    probe.send(emitMad(madHeader({ mgmtClass: 7, classVersion: 1, method: MadMethod.SEND, attributeId: 0x10 })), to);
    probe.send(emitMad(madHeader({ mgmtClass: 7, classVersion: 2, method: MadMethod.SEND, attributeId: 0x99 })), to);
    probe.send(emitMad(madHeader({ mgmtClass: 7, classVersion: 2, method: MadMethod.GET_RESP, attributeId: 0x10 })), to);
    probe.send(emitCmMad("LAP", {}, {}), to);
    probe.send(emitCmMad("REP", {}, { remoteCommId: 12345 }), to);
    probe.send(emitCmMad("DREP", {}, {}), to);
    expect(() => w.run()).not.toThrow();
    expect(a.cm.counters.drops).toMatchObject({
      bad_length: 1, bad_base_version: 1, bad_class_version: 1, unknown_attribute: 1, bad_method: 1, lap_apr_on_roce: 1,
      rep_unmatched: 1, drep_unmatched: 1,
    });
    expect(parseMad(emitCmMad("RTU", {}, {})).data.length).toBe(MAD_SIZE - 24);
  });

  it("calls in the wrong state fail with EINVAL, as ib_cm returns", () => {
    const w = world();
    const [a, b] = w.nodes as [Node, Node];
    const id = a.cm.createId(a.handler);
    expect(() => id.sendRep({ qpNum: 1, startingPsn: 1, responderResources: 0, initiatorDepth: 0, rnrRetryCount: 0 })).toThrow(RdmaCmError);
    expect(() => id.sendRtu()).toThrow(/ib_send_cm_rtu: EINVAL/);
    expect(() => id.sendDreq()).toThrow(/EINVAL/);
    expect(() => id.sendReq({ ...reqParam(a, b), privateData: new Uint8Array(93) })).toThrow(/EINVAL/);
    expect(() => id.sendReq({ ...reqParam(a, b), retryCount: 8 })).toThrow(/EINVAL/);
    id.listen(SID);
    expect(() => a.cm.createId(a.handler).listen(SID)).toThrow(/ib_cm_listen: EBUSY/);
  });
});

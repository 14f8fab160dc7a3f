// The trace ring, end to end inside the device: two RC QPs on one device talk
// through a loop that copies each TX descriptor back into the RX buffer, and
// the ring must hold what happened — QP state changes, the engines' states (by
// rxe's names), packets sent and received with their verdicts, timers and
// completions — each record numbered and stamped with the device time. Then
// the ring is overrun and must wrap in place.
import { openTestDevice } from "./verbs-device.include";
import { createTestQp } from "./verbs-qp.include";
import { mrFind, mrReg, MR_ADDR } from "../../assembly/mem/mr";
import { pdAlloc } from "../../assembly/mem/pd";
import { ringCons, ringEntry, ringProd, ringSetProd, RING_CAP, RING_KIND, RING_SLOT, RING_TRACE } from "../../assembly/mem/ring";
import { ACCESS_LOCAL_WRITE, ACCESS_REMOTE_WRITE } from "../../assembly/mem/access";
import { AV_DGID, AV_IS_GLOBAL, AV_PORT_NUM } from "../../assembly/verbs/av";
import { gidTable } from "../../assembly/verbs/config";
import { cqCreate, cqFind, CQ_RING, CQE_OPCODE, CQE_STATUS } from "../../assembly/verbs/cq";
import { devArgs } from "../../assembly/verbs/device";
import {
  QpState, QPT_RC, QP_ACCESS_FLAGS, QP_AV, QP_DEST_QPN, QP_MAX_DEST_RD_ATOMIC, QP_MAX_QP_RD_ATOMIC, QP_MIN_RNR_TIMER,
  QP_PATH_MTU, QP_PKEY_INDEX, QP_PORT, QP_RETRY_CNT, QP_RNR_RETRY, QP_RQ_PSN, QP_SQ_PSN, QP_STATE, QP_TIMEOUT,
  SEND_SIGNALED, WC_LOC_PROT_ERR, WC_RECV, WC_SEND, WC_SUCCESS, WR_SEND,
} from "../../assembly/verbs/enums";
import {
  qpFind, qpState, ATTR_AH, ATTR_DEST_QP_NUM, ATTR_MAX_DEST_RD_ATOMIC, ATTR_MAX_RD_ATOMIC, ATTR_MIN_RNR_TIMER,
  ATTR_PATH_MTU, ATTR_PKEY_INDEX, ATTR_PORT_NUM, ATTR_QP_ACCESS_FLAGS, ATTR_QP_STATE, ATTR_RETRY_CNT, ATTR_RNR_RETRY,
  ATTR_RQ_PSN, ATTR_SQ_PSN, ATTR_TIMEOUT, QP_NUM, QP_RQ, QP_SQ,
} from "../../assembly/verbs/qp";
import { qpModify } from "../../assembly/verbs/qp_modify";
import {
  RWQE_LENGTH, RWQE_NUM_SGE, RWQE_SGE, RWQE_WR_ID, SGE_ADDR, SGE_LENGTH, SGE_LKEY, SWQE_HDR, SWQE_LENGTH, SWQE_NUM_SGE,
  SWQE_OPCODE, SWQE_SEND_FLAGS, SWQE_SGE, SWQE_WR_ID,
} from "../../assembly/verbs/wqe";
import { engineDoorbell, engineInit, engineReady, engineRx, engineTick, engineTxRelease } from "../../assembly/transport/engine";
import {
  rxBuf, rxMeta, txRingAddr, RXM_DST, RXM_DST_PORT, RXM_IP_FLAGS, RXM_IP_ID, RXM_IP_VERSION, RXM_SRC, RXM_SRC_PORT,
  TXD_DST, TXD_DST_PORT, TXD_HDR, TXD_HDR_LEN, TXD_IP_ID, TXD_PAYLOAD, TXD_PAYLOAD_LEN, TXD_SRC, TXD_SRC_PORT,
  TXD_TRAILER, TXD_TRAILER_LEN,
} from "../../assembly/transport/net";
import { trace_capacity, trace_kind_names, trace_mask, trace_overwritten, trace_producer, trace_record_size, trace_ring, trace_set_mask, trace_state_counts } from "../../assembly/trace/exports";
import { trace_state_names } from "../../assembly/transport/exports";
import { CompState, COMP_STATE_NAMES } from "../../assembly/transport/completer";
import { ReqState, REQ_STATE_NAMES } from "../../assembly/transport/requester";
import { RespState, RESP_STATE_NAMES } from "../../assembly/transport/responder";
import {
  traceRecord, TraceKind, TRACE_ALL, TRACE_DEFAULT_CAP, TRACE_NONE, TRACE_KIND_NAMES, TRACE_STATES_MAX, TR_A, TR_B, TR_C, TR_KIND, TR_QPN,
  TR_SEQ, TR_SIZE, TR_TIME,
} from "../../assembly/trace/trace";
import { OP_ACK, OP_SEND_ONLY, TR_RC } from "../../assembly/wire/opcode";
import { IP4_FLAG_DF } from "../../assembly/wire/ip";

openTestDevice();
if (!engineReady()) engineInit(16, 4791);

// 127.31.0.1 as an IPv4-mapped GID: both QPs live behind it.
const GID: usize = gidTable;
store<u64>(GID, 0);
store<u32>(GID + 8, 0xffff0000);
store<u32>(GID + 12, 0x01001f7f);

const PSN_A: u32 = 0x100;
const PSN_B: u32 = 0x200;

const pd = <u32>pdAlloc();
const cqA = <u32>cqCreate(16);
const cqB = <u32>cqCreate(16);
const key = <u32>mrReg(pd, 8192, ACCESS_LOCAL_WRITE | ACCESS_REMOTE_WRITE);
const buf = <usize>load<u64>(mrFind(key) + MR_ADDR);

function createQp(cq: u32): usize { return qpFind(createTestQp(pd, cq, QPT_RC, 8)); }

function handle(qp: usize): u32 { return load<u32>(qp); }

/** RESET -> INIT -> RTR -> RTS, talking to `peer`. */
function connect(qp: usize, peer: usize, sqPsn: u32, rqPsn: u32): void {
  const a = devArgs();
  memory.fill(a, 0, 512);
  store<u32>(a + ATTR_QP_STATE, QpState.INIT);
  store<u32>(a + ATTR_PKEY_INDEX, 0);
  store<u32>(a + ATTR_PORT_NUM, 1);
  store<u32>(a + ATTR_QP_ACCESS_FLAGS, ACCESS_REMOTE_WRITE);
  assert(qpModify(handle(qp), QP_STATE | QP_PKEY_INDEX | QP_PORT | QP_ACCESS_FLAGS, a) == 0);
  store<u32>(a + ATTR_QP_STATE, QpState.RTR);
  store<u32>(a + ATTR_PATH_MTU, 3);
  store<u32>(a + ATTR_DEST_QP_NUM, load<u32>(peer + QP_NUM));
  store<u32>(a + ATTR_RQ_PSN, rqPsn);
  store<u32>(a + ATTR_MAX_DEST_RD_ATOMIC, 1);
  store<u32>(a + ATTR_MIN_RNR_TIMER, 1); // 10 µs
  store<u32>(a + ATTR_AH + AV_PORT_NUM, 1);
  store<u32>(a + ATTR_AH + AV_IS_GLOBAL, 1);
  memory.copy(a + ATTR_AH + AV_DGID, GID, 16);
  assert(qpModify(handle(qp), QP_STATE | QP_AV | QP_PATH_MTU | QP_DEST_QPN | QP_RQ_PSN | QP_MAX_DEST_RD_ATOMIC | QP_MIN_RNR_TIMER, a) == 0);
  store<u32>(a + ATTR_QP_STATE, QpState.RTS);
  store<u32>(a + ATTR_SQ_PSN, sqPsn);
  store<u32>(a + ATTR_TIMEOUT, 10); // 4.2 ms
  store<u32>(a + ATTR_RETRY_CNT, 7);
  store<u32>(a + ATTR_RNR_RETRY, 7);
  store<u32>(a + ATTR_MAX_RD_ATOMIC, 1);
  assert(qpModify(handle(qp), QP_STATE | QP_TIMEOUT | QP_RETRY_CNT | QP_RNR_RETRY | QP_SQ_PSN | QP_MAX_QP_RD_ATOMIC, a) == 0);
}

function postRecv(qp: usize, wrId: u64, addr: usize, len: u32): void {
  const rq = <usize>load<u32>(qp + QP_RQ);
  const w = ringEntry(rq, ringProd(rq));
  memory.fill(w, 0, 48);
  store<u64>(w + RWQE_WR_ID, wrId);
  store<u32>(w + RWQE_NUM_SGE, 1);
  store<u32>(w + RWQE_LENGTH, len);
  store<u64>(w + RWQE_SGE + SGE_ADDR, <u64>addr);
  store<u32>(w + RWQE_SGE + SGE_LENGTH, len);
  store<u32>(w + RWQE_SGE + SGE_LKEY, key);
  ringSetProd(rq, ringProd(rq) + 1);
}

function postSend(qp: usize, wrId: u64, addr: usize, len: u32, lkey: u32): void {
  const sq = <usize>load<u32>(qp + QP_SQ);
  const w = ringEntry(sq, ringProd(sq));
  memory.fill(w, 0, SWQE_HDR + 16);
  store<u64>(w + SWQE_WR_ID, wrId);
  store<u32>(w + SWQE_OPCODE, WR_SEND);
  store<u32>(w + SWQE_SEND_FLAGS, SEND_SIGNALED);
  store<u32>(w + SWQE_NUM_SGE, 1);
  store<u32>(w + SWQE_LENGTH, len);
  store<u64>(w + SWQE_SGE + SGE_ADDR, <u64>addr);
  store<u32>(w + SWQE_SGE + SGE_LENGTH, len);
  store<u32>(w + SWQE_SGE + SGE_LKEY, lkey);
  ringSetProd(sq, ringProd(sq) + 1);
}

/**
 * The wire: every descriptor in the TX ring is copied into the RX buffer as the
 * host would (headers, payload from linear memory, trailer), released, and
 * received — unless `lose` says to drop it or `corrupt` to flip a payload bit.
 */
function pump(now: f64, lose: bool = false, corrupt: bool = false): u32 {
  const r = txRingAddr();
  let n: u32 = 0;
  while (ringCons(r) != ringProd(r)) {
    const d = ringEntry(r, ringCons(r));
    const hl = load<u32>(d + TXD_HDR_LEN);
    const pl = load<u32>(d + TXD_PAYLOAD_LEN);
    const tl = load<u32>(d + TXD_TRAILER_LEN);
    memory.copy(rxBuf, d + TXD_HDR, hl);
    if (pl) memory.copy(rxBuf + hl, <usize>load<u32>(d + TXD_PAYLOAD), pl);
    memory.copy(rxBuf + hl + pl, d + TXD_TRAILER, tl);
    if (corrupt) store<u8>(rxBuf + hl, load<u8>(rxBuf + hl) ^ 1);
    store<u32>(rxMeta + RXM_IP_VERSION, 4);
    memory.copy(rxMeta + RXM_SRC, d + TXD_SRC, 16);
    memory.copy(rxMeta + RXM_DST, d + TXD_DST, 16);
    store<u32>(rxMeta + RXM_SRC_PORT, load<u32>(d + TXD_SRC_PORT));
    store<u32>(rxMeta + RXM_DST_PORT, load<u32>(d + TXD_DST_PORT));
    store<u32>(rxMeta + RXM_IP_ID, load<u32>(d + TXD_IP_ID));
    store<u32>(rxMeta + RXM_IP_FLAGS, IP4_FLAG_DF);
    engineTxRelease(1, now);
    if (!lose) engineRx(hl + pl + tl, now);
    n++;
  }
  return n;
}

// ---- reading the ring ----
const ring = trace_ring();
@inline function rec(seq: u32): usize { return ringEntry(ring, seq); }

/** The sequence number of the first record at or after `from` with this kind, QPN and A (TRACE_NONE: any), or -1. */
function find(from: u32, kind: TraceKind, qpn: u32, a: u32): i64 {
  for (let i = from; i != trace_producer(); i++) {
    const e = rec(i);
    if (load<u32>(e + TR_KIND) != <u32>kind) continue;
    if (qpn != TRACE_NONE && load<u32>(e + TR_QPN) != qpn) continue;
    if (a != TRACE_NONE && load<u32>(e + TR_A) != a) continue;
    return <i64>i;
  }
  return -1;
}
function stateName(names: string, s: i32): string { return names.split(",")[s]; }

trace_set_mask(TRACE_ALL);
const t0 = trace_producer();
const qpA = createQp(cqA);
const qpB = createQp(cqB);
const qpnA = load<u32>(qpA + QP_NUM);
const qpnB = load<u32>(qpB + QP_NUM);
connect(qpA, qpB, PSN_A, PSN_B);
connect(qpB, qpA, PSN_B, PSN_A);

describe("trace ring: layout and exports", () => {
  it("is carved at open, off by default in the config, a ring of 32-byte records", () => {
    expect(ring).toBeGreaterThan(0);
    expect(load<u32>(ring + RING_KIND)).toBe(RING_TRACE);
    expect(load<u32>(ring + RING_SLOT)).toBe(TR_SIZE);
    expect(trace_record_size()).toBe(32);
    expect(trace_capacity()).toBe(TRACE_DEFAULT_CAP);
    expect(load<u32>(ring + RING_CAP)).toBe(TRACE_DEFAULT_CAP);
    expect(trace_mask()).toBe(TRACE_ALL);
  });
  it("names every kind and every state of the three engines (rxe's names where rxe has them)", () => {
    expect(changetype<string>(trace_kind_names())).toBe(TRACE_KIND_NAMES);
    expect(TRACE_KIND_NAMES.split(",").length).toBe(<i32>TraceKind.COUNT);
    expect(changetype<string>(trace_state_names(TraceKind.REQ_STATE)).split(",").length).toBe(<i32>ReqState.COUNT);
    expect(changetype<string>(trace_state_names(TraceKind.COMP_STATE)).split(",")[0]).toBe("GET WQE");
    expect(changetype<string>(trace_state_names(TraceKind.RESP_STATE)).split(",")[<i32>RespState.CHK_PSN]).toBe("CHK_PSN");
    expect(changetype<string>(trace_state_names(TraceKind.QP_STATE)).split(",")[<i32>QpState.RTS]).toBe("RTS");
    expect(changetype<string>(trace_state_names(TraceKind.PKT_SENT))).toBe("");
    expect(trace_state_counts(TraceKind.PKT_SENT)).toBe(0);
    expect(trace_state_counts(TraceKind.REQ_STATE)).toBeGreaterThan(0);
  });
  it("has a counter for every state of each state machine", () => {
    expect(<u32>ReqState.COUNT).toBeLessThanOrEqual(TRACE_STATES_MAX);
    expect(<u32>CompState.DONE + 1).toBeLessThanOrEqual(TRACE_STATES_MAX);
    expect(<u32>RespState.COUNT).toBeLessThanOrEqual(TRACE_STATES_MAX);
  });
});

describe("trace ring: a scripted RC exchange", () => {
  it("records each QP's way to RTS as QP_STATE changes (new state in A, old in B)", () => {
    const init = find(t0, TraceKind.QP_STATE, qpnA, QpState.INIT);
    const rtr = find(t0, TraceKind.QP_STATE, qpnA, QpState.RTR);
    const rts = find(t0, TraceKind.QP_STATE, qpnA, QpState.RTS);
    expect(init).toBeGreaterThanOrEqual(0);
    expect(rtr).toBeGreaterThan(init);
    expect(rts).toBeGreaterThan(rtr);
    expect(load<u32>(rec(<u32>init) + TR_B)).toBe(QpState.RESET);
    expect(load<u32>(rec(<u32>rts) + TR_B)).toBe(QpState.RTR);
    expect(find(t0, TraceKind.QP_STATE, qpnB, QpState.RTS)).toBeGreaterThan(rts);
  });

  it("records a SEND: the requester's states, the packet out, its reception, the responder's states, the ACK, both completions", () => {
    postRecv(qpB, 7, buf + 4096, 256);
    postSend(qpA, 9, buf, 100, key);
    const t = trace_producer();
    engineDoorbell(qpA, 1000.0);
    expect(pump(1010.0)).toBe(2); // the SEND and its ACK

    // requester: NEXT_WQE ... FINISH_PACKET, UPDATE_STATE, then EXIT on the empty SQ
    const fin = find(t, TraceKind.REQ_STATE, qpnA, ReqState.FINISH_PACKET);
    expect(fin).toBeGreaterThanOrEqual(0);
    expect(load<u32>(rec(<u32>fin) + TR_B)).toBe(ReqState.NEXT_OPCODE);
    expect(load<u32>(rec(<u32>fin) + TR_C)).toBe(PSN_A);
    expect(find(t, TraceKind.REQ_STATE, qpnA, ReqState.EXIT)).toBeGreaterThan(fin);

    // the packet out, in, and the responder's way through it
    const sent = find(t, TraceKind.PKT_SENT, qpnA, TR_RC | OP_SEND_ONLY);
    expect(sent).toBeGreaterThan(fin);
    expect(load<u32>(rec(<u32>sent) + TR_B)).toBe(PSN_A);
    expect(load<f64>(rec(<u32>sent) + TR_TIME)).toBe(1000.0);
    const recv = find(t, TraceKind.PKT_RECV, qpnB, TR_RC | OP_SEND_ONLY);
    expect(recv).toBeGreaterThan(sent);
    expect(load<u32>(rec(<u32>recv) + TR_C)).toBe(0); // accepted
    expect(load<f64>(rec(<u32>recv) + TR_TIME)).toBe(1010.0);
    const chk = find(<u32>recv, TraceKind.RESP_STATE, qpnB, RespState.CHK_PSN);
    expect(chk).toBe(recv + 1);
    expect(load<u32>(rec(<u32>chk) + TR_B)).toBe(TRACE_NONE);
    expect(load<u32>(rec(<u32>chk) + TR_C)).toBe(PSN_A);
    const exe = find(<u32>chk, TraceKind.RESP_STATE, qpnB, RespState.EXECUTE);
    expect(exe).toBeGreaterThan(chk);
    expect(stateName(RESP_STATE_NAMES, <i32>load<u32>(rec(<u32>exe) + TR_A))).toBe("EXECUTE");

    // B's receive completion, then the ACK (syndrome 0x1f, MSN 1) and A's send completion
    const wcB = find(<u32>exe, TraceKind.COMPLETION, qpnB, WC_SUCCESS);
    expect(wcB).toBeGreaterThan(exe);
    expect(load<u32>(rec(<u32>wcB) + TR_B)).toBe(WC_RECV);
    expect(load<u32>(rec(<u32>wcB) + TR_C)).toBe(100);
    const ack = find(<u32>wcB, TraceKind.PKT_SENT, qpnB, TR_RC | OP_ACK);
    expect(ack).toBeGreaterThan(wcB);
    expect(load<u32>(rec(<u32>ack) + TR_B)).toBe(PSN_A);
    expect(load<u32>(rec(<u32>ack) + TR_C)).toBe((0x1f << 24) | 1);
    const ackIn = find(<u32>ack, TraceKind.PKT_RECV, qpnA, TR_RC | OP_ACK);
    expect(ackIn).toBeGreaterThan(ack);
    const comp = find(<u32>ackIn, TraceKind.COMP_STATE, qpnA, CompState.COMP_ACK);
    expect(comp).toBeGreaterThan(ackIn);
    expect(stateName(COMP_STATE_NAMES, <i32>load<u32>(rec(<u32>comp) + TR_A))).toBe("COMP ACK");
    const wcA = find(<u32>comp, TraceKind.COMPLETION, qpnA, WC_SUCCESS);
    expect(wcA).toBeGreaterThan(comp);
    expect(load<u32>(rec(<u32>wcA) + TR_B)).toBe(WC_SEND);

    // every record in order, numbered by its place
    for (let i = t; i != trace_producer(); i++) expect(load<u32>(rec(i) + TR_SEQ)).toBe(i);
    expect(stateName(REQ_STATE_NAMES, <i32>ReqState.CHECK_INIT_DEPTH)).toBe("CHECK_INIT_DEPTH");
  });

  it("counts the states per state machine whether or not the ring records", () => {
    const resp = trace_state_counts(TraceKind.RESP_STATE);
    const before = load<u64>(resp + (<usize>RespState.CHK_PSN << 3));
    const p = trace_producer();
    trace_set_mask(0);
    postRecv(qpB, 8, buf + 4096, 256);
    postSend(qpA, 10, buf, 64, key);
    engineDoorbell(qpA, 1100.0);
    expect(pump(1110.0)).toBe(2);
    expect(trace_producer()).toBe(p); // nothing recorded
    expect(load<u64>(resp + (<usize>RespState.CHK_PSN << 3))).toBe(before + 1);
    trace_set_mask(TRACE_ALL);
  });

  it("records an RNR NAK, the RNR timer firing and the retry", () => {
    const t = trace_producer();
    postSend(qpA, 11, buf, 32, key); // no receive posted on B
    engineDoorbell(qpA, 1200.0);
    expect(pump(1210.0)).toBe(2); // the SEND and the RNR NAK
    expect(find(t, TraceKind.RESP_STATE, qpnB, RespState.ERR_RNR)).toBeGreaterThan(<i64>t);
    const nak = find(t, TraceKind.PKT_SENT, qpnB, TR_RC | OP_ACK);
    expect(load<u32>(rec(<u32>nak) + TR_C) >> 24).toBe(0x21); // RNR NAK, timer code 1
    expect(find(<u32>nak, TraceKind.COMP_STATE, qpnA, CompState.RNR_RETRY)).toBeGreaterThan(nak);
    postRecv(qpB, 12, buf + 4096, 256);
    engineTick(1300.0);
    const fired = find(<u32>nak, TraceKind.TIMER_RNR, qpnA, TRACE_NONE);
    expect(fired).toBeGreaterThan(nak);
    expect(load<f64>(rec(<u32>fired) + TR_TIME)).toBe(1300.0);
    expect(pump(1310.0)).toBe(2); // the retried SEND and its ACK
    expect(find(<u32>fired, TraceKind.REQ_STATE, qpnA, ReqState.RETRY)).toBeGreaterThan(fired);
    expect(find(<u32>fired, TraceKind.COMPLETION, qpnA, WC_SUCCESS)).toBeGreaterThan(fired);
  });

  it("records a lost packet's retransmit timer and a corrupted one's drop reason", () => {
    const t = trace_producer();
    postRecv(qpB, 13, buf + 4096, 256);
    postSend(qpA, 14, buf, 16, key);
    engineDoorbell(qpA, 1400.0);
    expect(pump(1400.0, true)).toBe(1); // lost
    engineTick(1400.0 + 10000.0);
    expect(find(t, TraceKind.TIMER_RETRANSMIT, qpnA, TRACE_NONE)).toBeGreaterThan(<i64>t);
    expect(pump(11500.0, false, true)).toBe(1); // the retry, corrupted: no ACK
    const bad = find(t, TraceKind.PKT_RECV, qpnB, TR_RC | OP_SEND_ONLY);
    expect(load<u32>(rec(<u32>bad) + TR_C)).toBe(5); // bad_icrc
    engineTick(11500.0 + 10000.0);
    expect(pump(21600.0)).toBe(2);
    expect(find(<u32>bad, TraceKind.COMPLETION, qpnB, WC_SUCCESS)).toBeGreaterThan(bad);
  });

  it("records the transport moving a QP to ERR, with the status that did it, and the flushed completions", () => {
    const t = trace_producer();
    postSend(qpA, 15, buf, 16, key + 1); // no such lkey
    engineDoorbell(qpA, 30000.0);
    expect(qpState(qpA)).toBe(QpState.ERR);
    const err = find(t, TraceKind.QP_STATE, qpnA, QpState.ERR);
    expect(err).toBeGreaterThan(<i64>t);
    expect(load<u32>(rec(<u32>err) + TR_B)).toBe(QpState.RTS);
    expect(load<u32>(rec(<u32>err) + TR_C)).toBe(WC_LOC_PROT_ERR);
    expect(find(t, TraceKind.REQ_STATE, qpnA, ReqState.ERROR)).toBeLessThan(err);
    const wc = find(t, TraceKind.COMPLETION, qpnA, WC_LOC_PROT_ERR);
    expect(wc).toBeGreaterThan(err);
    // the CQE the record describes
    const cq = cqFind(cqA);
    const r = <usize>load<u32>(cq + CQ_RING);
    const e = ringEntry(r, ringProd(r) - 1);
    expect(load<u32>(e + CQE_STATUS)).toBe(WC_LOC_PROT_ERR);
    expect(load<u32>(e + CQE_OPCODE)).toBe(load<u32>(rec(<u32>wc) + TR_B));
  });
});

describe("trace ring: full", () => {
  it("wraps in place: the oldest records are overwritten and counted, memory does not grow", () => {
    const pages = memory.size();
    const cap = trace_capacity();
    const p0 = trace_producer();
    const over0 = trace_overwritten();
    const n: u32 = 3 * cap + 5;
    for (let i: u32 = 0; i < n; i++) traceRecord(TraceKind.TIMER_RNR, 0x4242, i, 0, 0);
    expect(trace_producer()).toBe(p0 + n);
    expect(memory.size()).toBe(pages);
    const written = <u64>(p0 + n);
    expect(trace_overwritten()).toBe(written > <u64>cap ? written - <u64>cap : 0);
    expect(over0).toBeLessThanOrEqual(trace_overwritten());
    // the ring holds exactly the last `cap` records, each in its slot
    for (let k: u32 = 0; k < cap; k++) {
      const seq = p0 + n - cap + k;
      const e = rec(seq);
      expect(load<u32>(e + TR_SEQ)).toBe(seq);
      expect(load<u32>(e + TR_A)).toBe(n - cap + k);
    }
  });
});

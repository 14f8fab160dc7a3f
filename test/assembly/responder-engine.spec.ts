// The responder driven directly (no datagram, no ICRC): a packet-info record in,
// a TX descriptor out, and every state the request passed through counted.
import { openTestDevice } from "./verbs-device.include";
import { createTestQp } from "./verbs-qp.include";
import { pdAlloc } from "../../assembly/mem/pd";
import { cqCreate } from "../../assembly/verbs/cq";
import { devArgs } from "../../assembly/verbs/device";
import {
  qpFind, ATTR_AH, ATTR_DEST_QP_NUM, ATTR_MAX_DEST_RD_ATOMIC, ATTR_MIN_RNR_TIMER, ATTR_PATH_MTU,
  ATTR_PKEY_INDEX, ATTR_PORT_NUM, ATTR_QP_ACCESS_FLAGS, ATTR_QP_STATE, ATTR_RQ_PSN,
} from "../../assembly/verbs/qp";
import { qpModify } from "../../assembly/verbs/qp_modify";
import {
  QPT_RC, QP_ACCESS_FLAGS, QP_AV, QP_DEST_QPN, QP_MAX_DEST_RD_ATOMIC, QP_MIN_RNR_TIMER, QP_PATH_MTU, QP_PKEY_INDEX,
  QP_PORT, QP_RQ_PSN, QP_STATE,
} from "../../assembly/verbs/enums";
import { AV_IS_GLOBAL, AV_PORT_NUM } from "../../assembly/verbs/av";
import { engineInit, engineReady } from "../../assembly/transport/engine";
import { txRingAddr, TXD_HDR, TXD_PAYLOAD_LEN } from "../../assembly/transport/net";
import { pktInfo, PKT_ACKREQ, PKT_BTH, PKT_MASK, PKT_OPCODE, PKT_PAYLOAD, PKT_PAYLOAD_LEN, PKT_PSN, PKT_SE } from "../../assembly/transport/pkt";
import { responderRecv, RespState } from "../../assembly/transport/responder";
import { traceStateCount, TraceKind } from "../../assembly/trace/trace";
import { ackHeldCount, ackHold, responderSend } from "../../assembly/transport/responder_send";
import { ringEntry, ringProd } from "../../assembly/mem/ring";
import { bth_opcode, bth_psn, bth_qpn, bth_build } from "../../assembly/wire/bth";
import { aeth_msn, aeth_syndrome } from "../../assembly/wire/aeth";
import { opcode_mask, OP_ACK, OP_SEND_ONLY, TR_RC } from "../../assembly/wire/opcode";

openTestDevice();
if (!engineReady()) engineInit(16, 4791);

const bth: usize = heap.alloc(64);
let qp: usize = 0;

function connect(): void {
  const pd = <u32>pdAlloc();
  const cq = <u32>cqCreate(16);
  const h = createTestQp(pd, cq, QPT_RC, 4);
  qp = qpFind(h);
  const a = devArgs();
  memory.fill(a, 0, 256);
  store<u32>(a + ATTR_QP_STATE, 1); // INIT
  store<u32>(a + ATTR_PKEY_INDEX, 0);
  store<u32>(a + ATTR_PORT_NUM, 1);
  store<u32>(a + ATTR_QP_ACCESS_FLAGS, 0);
  assert(qpModify(h, QP_STATE | QP_PKEY_INDEX | QP_PORT | QP_ACCESS_FLAGS, a) == 0);
  store<u32>(a + ATTR_QP_STATE, 2); // RTR
  store<u32>(a + ATTR_PATH_MTU, 3);
  store<u32>(a + ATTR_DEST_QP_NUM, 0x99);
  store<u32>(a + ATTR_RQ_PSN, 500);
  store<u32>(a + ATTR_MAX_DEST_RD_ATOMIC, 1);
  store<u32>(a + ATTR_MIN_RNR_TIMER, 12);
  store<u32>(a + ATTR_AH + AV_PORT_NUM, 1);
  store<u32>(a + ATTR_AH + AV_IS_GLOBAL, 1);
  assert(qpModify(h, QP_STATE | QP_AV | QP_PATH_MTU | QP_DEST_QPN | QP_RQ_PSN | QP_MAX_DEST_RD_ATOMIC | QP_MIN_RNR_TIMER, a) == 0);
}

/** Fills the packet-info record as the receive path would for a payload-less request. */
function request(op: u32, psn: u32, ackReq: u32): void {
  bth_build(bth, op, 0, 0, 0, 0xffff, 0, 0, 0, ackReq, psn);
  store<u32>(pktInfo + PKT_OPCODE, op);
  store<u32>(pktInfo + PKT_MASK, opcode_mask(op));
  store<u32>(pktInfo + PKT_PSN, psn);
  store<u32>(pktInfo + PKT_BTH, <u32>bth);
  store<u32>(pktInfo + PKT_PAYLOAD, <u32>(bth + 12));
  store<u32>(pktInfo + PKT_PAYLOAD_LEN, 0);
  store<u32>(pktInfo + PKT_ACKREQ, ackReq);
  store<u32>(pktInfo + PKT_SE, 0);
}

function counts(): StaticArray<u64> {
  const c = new StaticArray<u64>(<i32>RespState.COUNT);
  for (let i = 0; i < <i32>RespState.COUNT; i++) c[i] = traceStateCount(TraceKind.RESP_STATE, <u32>i);
  return c;
}

connect();

describe("responder state machine, driven directly", () => {
  it("counts each state a request passes through: a gap goes CHK_PSN, ERR_PSN_OUT_OF_SEQ, CLEANUP, DONE", () => {
    const before = counts();
    request(TR_RC | OP_SEND_ONLY, 502, 1);
    responderRecv(qp, pktInfo);
    const after = counts();
    for (let i = 0; i < <i32>RespState.COUNT; i++) {
      const want: u64 = i == <i32>RespState.CHK_PSN || i == <i32>RespState.ERR_PSN_OUT_OF_SEQ ||
        i == <i32>RespState.CLEANUP || i == <i32>RespState.DONE ? 1 : 0;
      expect(after[i] - before[i]).toBe(want);
    }
  });

  it("sends nothing on arrival; responderSend puts the NAK in a TX descriptor", () => {
    const r = txRingAddr();
    const p0 = ringProd(r);
    expect(responderSend(qp, 8)).toBe(1);
    expect(ringProd(r)).toBe(p0 + 1);
    const d = ringEntry(r, p0);
    const h = d + TXD_HDR;
    expect(bth_opcode(h)).toBe(TR_RC | OP_ACK);
    expect(bth_qpn(h)).toBe(0x99);
    expect(bth_psn(h)).toBe(500);
    expect(aeth_syndrome(h + 12)).toBe(0x60);
    expect(aeth_msn(h + 12)).toBe(0);
    expect(load<u32>(d + TXD_PAYLOAD_LEN)).toBe(0);
    expect(responderSend(qp, 8)).toBe(0); // nothing left
  });

  it("a request at the expected PSN with no receive WQE: CHK_OP_SEQ ... CHK_RESOURCE, ERR_RNR, RNR NAK 0x2c", () => {
    const before = counts();
    request(TR_RC | OP_SEND_ONLY, 500, 1);
    responderRecv(qp, pktInfo);
    const after = counts();
    expect(after[<i32>RespState.CHK_OP_SEQ] - before[<i32>RespState.CHK_OP_SEQ]).toBe(1);
    expect(after[<i32>RespState.CHK_OP_VALID] - before[<i32>RespState.CHK_OP_VALID]).toBe(1);
    expect(after[<i32>RespState.CHK_RESOURCE] - before[<i32>RespState.CHK_RESOURCE]).toBe(1);
    expect(after[<i32>RespState.ERR_RNR] - before[<i32>RespState.ERR_RNR]).toBe(1);
    expect(after[<i32>RespState.EXECUTE] - before[<i32>RespState.EXECUTE]).toBe(0);
    const r = txRingAddr();
    const p0 = ringProd(r);
    expect(responderSend(qp, 8)).toBe(1);
    const h = ringEntry(r, p0) + TXD_HDR;
    expect(bth_psn(h)).toBe(500);
    expect(aeth_syndrome(h + 12)).toBe(0x2c);
  });

  it("holding (the host's deferred flush): a plain ACK waits on the held list, once per QP; the release sends it", () => {
    const r = txRingAddr();
    ackHold(true);
    request(TR_RC | OP_SEND_ONLY, 499, 1); // a duplicate: ACK again up to the last request executed
    responderRecv(qp, pktInfo);
    const p0 = ringProd(r);
    expect(responderSend(qp, 8)).toBe(0);
    expect(responderSend(qp, 8)).toBe(0);
    expect(ringProd(r)).toBe(p0);
    expect(ackHeldCount()).toBe(1);
    ackHold(false);
    expect(ackHeldCount()).toBe(0);
    expect(responderSend(qp, 8)).toBe(1);
    const h = ringEntry(r, p0) + TXD_HDR;
    expect(bth_opcode(h)).toBe(TR_RC | OP_ACK);
    expect(bth_psn(h)).toBe(499);
    expect(aeth_syndrome(h + 12)).toBe(0x1f);
    expect(responderSend(qp, 8)).toBe(0);
  });

  it("holding never delays a NAK: the RNR NAK goes at once", () => {
    const r = txRingAddr();
    ackHold(true);
    request(TR_RC | OP_SEND_ONLY, 500, 1);
    responderRecv(qp, pktInfo);
    const p0 = ringProd(r);
    expect(responderSend(qp, 8)).toBe(1);
    expect(aeth_syndrome(ringEntry(r, p0) + TXD_HDR + 12)).toBe(0x2c);
    expect(ackHeldCount()).toBe(0);
    ackHold(false);
  });
});

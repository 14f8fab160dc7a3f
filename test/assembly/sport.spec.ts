// The UDP source port of each QP as Linux rxe computes it (verbs/sport.ts), checked against the
// ports rxe used in test/fixtures/captures/perftest (docs/INTEROP.md), and the TX descriptor and
// ICRC that carry it (transport/net.ts).
import { openTestDevice } from "./verbs-device.include";
import { createTestQp } from "./verbs-qp.include";
import { pdAlloc } from "../../assembly/mem/pd";
import { cqCreate } from "../../assembly/verbs/cq";
import { config, CFG_FLAGS, CFG_FLAG_DEVICE_SPORT } from "../../assembly/verbs/config";
import { devArgs } from "../../assembly/verbs/device";
import { gsiCreate } from "../../assembly/verbs/gsi";
import {
  qpFind, ATTR_AH, ATTR_DEST_QP_NUM, ATTR_MAX_DEST_RD_ATOMIC, ATTR_MIN_RNR_TIMER, ATTR_PATH_MTU, ATTR_PKEY_INDEX,
  ATTR_PORT_NUM, ATTR_QKEY, ATTR_QP_STATE, ATTR_RQ_PSN, INIT_QP_TYPE, INIT_RECV_CQ, INIT_SEND_CQ, INIT_MAX_RECV_WR, INIT_MAX_SEND_WR, QP_NUM, QP_RESP, RS_FLAGS, RSF_SENT_PSN_NAK,
} from "../../assembly/verbs/qp";
import { qpModify } from "../../assembly/verbs/qp_modify";
import {
  QPT_GSI, QPT_RC, QPT_UD, QP_ACCESS_FLAGS, QP_AV, QP_DEST_QPN, QP_MAX_DEST_RD_ATOMIC, QP_MIN_RNR_TIMER, QP_PATH_MTU,
  QP_PKEY_INDEX, QP_PORT, QP_QKEY, QP_RQ_PSN, QP_STATE,
} from "../../assembly/verbs/enums";
import { AV_DGID, AV_FLOW_LABEL, AV_IS_GLOBAL, AV_PORT_NUM } from "../../assembly/verbs/av";
import { calcFlowLabel, createSport, hash32, qpSport, qpSportSet, udpSport } from "../../assembly/verbs/sport";
import { engineInit, engineReady } from "../../assembly/transport/engine";
import {
  txRingAddr, TXD_DST, TXD_DST_PORT, TXD_HDR, TXD_HDR_LEN, TXD_PAYLOAD_LEN, TXD_SRC, TXD_SRC_PORT, TXD_TRAILER,
  TXD_TRAILER_LEN,
} from "../../assembly/transport/net";
import { responderSend } from "../../assembly/transport/responder_send";
import { ringEntry, ringProd } from "../../assembly/mem/ring";
import { crc32_raw } from "../../assembly/crc/crc32";
import { pktInfo, PKT_ACKREQ, PKT_BTH, PKT_MASK, PKT_OPCODE, PKT_PAYLOAD, PKT_PAYLOAD_LEN, PKT_PSN, PKT_SE } from "../../assembly/transport/pkt";
import { responderRecv } from "../../assembly/transport/responder";
import { bth_build } from "../../assembly/wire/bth";
import { opcode_mask, OP_SEND_ONLY, TR_RC } from "../../assembly/wire/opcode";

openTestDevice();
if (!engineReady()) engineInit(16, 4791);

/** A second, plain reading of rdma_get_udp_sport (for the QPNs the random map gives). */
function refSport(fl: u32, a: u32, b: u32): u32 {
  if (fl == 0) {
    let v = <u64>a * <u64>b;
    v ^= v >> 20;
    v ^= v >> 40;
    fl = <u32>v & 0xfffff;
  }
  const low = fl & 0x3fff;
  return 0xc000 | (low ^ (fl >> 14));
}

const bth: usize = heap.alloc(64);
const pd = <u32>pdAlloc();
const cq = <u32>cqCreate(16);

let createdSport: u32 = 0;
/** An RC QP taken to RTR toward QPN `dest` at ::ffff:192.0.2.2 with `flowLabel`; its record. */
function rcAtRtr(dest: u32, flowLabel: u32): usize {
  const h = createTestQp(pd, cq, QPT_RC, 4);
  const a = devArgs();
  memory.fill(a, 0, 256);
  store<u32>(a + ATTR_QP_STATE, 1);
  store<u32>(a + ATTR_PORT_NUM, 1);
  assert(qpModify(h, QP_STATE | QP_PKEY_INDEX | QP_PORT | QP_ACCESS_FLAGS, a) == 0);
  memory.fill(a, 0, 256);
  store<u32>(a + ATTR_QP_STATE, 2);
  store<u32>(a + ATTR_PATH_MTU, 3);
  store<u32>(a + ATTR_DEST_QP_NUM, dest);
  store<u32>(a + ATTR_RQ_PSN, 500);
  store<u32>(a + ATTR_MAX_DEST_RD_ATOMIC, 1);
  store<u32>(a + ATTR_MIN_RNR_TIMER, 12);
  store<u32>(a + ATTR_AH + AV_PORT_NUM, 1);
  store<u32>(a + ATTR_AH + AV_IS_GLOBAL, 1);
  store<u32>(a + ATTR_AH + AV_FLOW_LABEL, flowLabel);
  store<u32>(a + ATTR_AH + AV_DGID + 8, 0xffff0000);
  store<u32>(a + ATTR_AH + AV_DGID + 12, 0x020200c0); // 192.0.2.2
  createdSport = qpSport(qpFind(h));
  assert(qpModify(h, QP_STATE | QP_AV | QP_PATH_MTU | QP_DEST_QPN | QP_RQ_PSN | QP_MAX_DEST_RD_ATOMIC | QP_MIN_RNR_TIMER, a) == 0);
  return qpFind(h);
}

/** The ICRC of the descriptor `d` as sent over IPv4 (ID 0, DF), computed from its bytes alone. */
const pkt: usize = heap.alloc(256);
function icrcOfDescriptor(d: usize): u32 {
  const hl = load<u32>(d + TXD_HDR_LEN);
  const tl = load<u32>(d + TXD_TRAILER_LEN);
  assert(load<u32>(d + TXD_PAYLOAD_LEN) == 0);
  const ulen = 8 + hl + tl;
  let p = pkt;
  memory.fill(p, 0xff, 8); // the masked LRH
  p += 8;
  // IPv4 with TOS, TTL and checksum as ones
  store<u8>(p, 0x45); store<u8>(p + 1, 0xff); store<u8>(p + 2, <u8>((20 + ulen) >> 8)); store<u8>(p + 3, <u8>(20 + ulen));
  store<u16>(p + 4, 0); store<u8>(p + 6, 0x40); store<u8>(p + 7, 0); store<u8>(p + 8, 0xff); store<u8>(p + 9, 17);
  store<u16>(p + 10, 0xffff);
  memory.copy(p + 12, d + TXD_SRC + 12, 4);
  memory.copy(p + 16, d + TXD_DST + 12, 4);
  p += 20;
  const sp = load<u32>(d + TXD_SRC_PORT), dp = load<u32>(d + TXD_DST_PORT);
  store<u8>(p, <u8>(sp >> 8)); store<u8>(p + 1, <u8>sp); store<u8>(p + 2, <u8>(dp >> 8)); store<u8>(p + 3, <u8>dp);
  store<u8>(p + 4, <u8>(ulen >> 8)); store<u8>(p + 5, <u8>ulen); store<u16>(p + 6, 0xffff);
  p += 8;
  memory.copy(p, d + TXD_HDR, hl);
  store<u8>(p + 4, 0xff); // BTH byte 4 masked
  p += hl;
  memory.copy(p, d + TXD_TRAILER, tl - 4); // pad
  p += tl - 4;
  return ~crc32_raw(0xffffffff, pkt, <u32>(p - pkt));
}

describe("rxe's UDP source port formulas", () => {
  it("hash_32 and the create-time port: QP1 sends from 0xD872", () => {
    expect(hash32(1, 14)).toBe(0x1872);
    expect(createSport(1)).toBe(0xd872);
    expect(createSport(0)).toBe(0xc000);
  });
  it("flow label 0: the port from the two QPNs, the same both ways (captures/perftest *-tcp)", () => {
    expect(udpSport(0, 0x13, 0x14)).toBe(0xc17c); // atomic_bw-tcp
    expect(udpSport(0, 0x14, 0x13)).toBe(0xc17c);
    expect(udpSport(0, 0x1e, 0x20)).toBe(0xc3c0); // read_bw-tcp
    expect(udpSport(0, 0x20, 0x1e)).toBe(0xc3c0);
    expect(udpSport(0, 0x19, 0x1a)).toBe(0xc28a); // read_lat-tcp
    expect(calcFlowLabel(0x19, 0x1a)).toBe(calcFlowLabel(0x1a, 0x19));
  });
  it("an rdma_cm REQ's flow label gives the port (captures/perftest *-rdmacm)", () => {
    expect(udpSport(0xc1e54, 0x11, 0x12)).toBe(0xde64);
    expect(udpSport(0x1584c, 0x11, 0x12)).toBe(0xd849);
    expect(udpSport(0xb6bb7, 0, 0)).toBe(0xeb9a);
    expect(udpSport(0x7e1ef, 0, 0)).toBe(0xe1f0);
    expect(udpSport(0x7fe07, 0, 0)).toBe(0xfe18);
    expect(udpSport(0x85bff, 0, 0)).toBe(0xdbde);
  });
  it("large QPNs: the 64-bit product folds as rdma_calc_flow_label's", () => {
    expect(udpSport(0, 0xfffffe, 0xabcdef)).toBe(refSport(0, 0xfffffe, 0xabcdef));
    expect(udpSport(0, 0x800001, 0x7fffff)).toBe(refSport(0, 0x800001, 0x7fffff));
  });
});

describe("the port of each QP", () => {
  it("an RC QP: the create-time port, then at RTR the one for its QPN and dest QPN", () => {
    const q = rcAtRtr(0x99, 0);
    expect(createdSport).toBe(createSport(load<u32>(q + QP_NUM)));
    expect(qpSport(q)).toBe(refSport(0, load<u32>(q + QP_NUM), 0x99));
  });
  it("an RC QP with a flow label in its AV (an rdma_cm REQ's): the port from the label", () => {
    const q = rcAtRtr(0x99, 0xc1e54);
    expect(qpSport(q)).toBe(0xde64);
  });
  it("a UD QP keeps its create-time port through INIT, RTR and RTS", () => {
    const h = createTestQp(pd, cq, QPT_UD, 4);
    const q = qpFind(h);
    const want = 0xc000 + <u32>((<u64>load<u32>(q + QP_NUM) * 0x61c88647 & 0xffffffff) >> 18);
    expect(qpSport(q)).toBe(want);
    const a = devArgs();
    memory.fill(a, 0, 256);
    store<u32>(a + ATTR_QP_STATE, 1);
    store<u32>(a + ATTR_PORT_NUM, 1);
    store<u32>(a + ATTR_QKEY, 0x11);
    assert(qpModify(h, QP_STATE | QP_PKEY_INDEX | QP_PORT | QP_QKEY, a) == 0);
    store<u32>(a + ATTR_QP_STATE, 2);
    assert(qpModify(h, QP_STATE, a) == 0);
    expect(qpSport(q)).toBe(want);
  });
  it("QP1 (the GSI) sends from 0xD872 whatever slot it takes", () => {
    const a = devArgs();
    memory.fill(a, 0, 256);
    store<u32>(a + INIT_QP_TYPE, QPT_GSI);
    store<u32>(a + INIT_SEND_CQ, cq);
    store<u32>(a + INIT_RECV_CQ, cq);
    store<u32>(a + INIT_MAX_SEND_WR, 4);
    store<u32>(a + INIT_MAX_RECV_WR, 4);
    const h = gsiCreate(pd, a);
    expect(h).toBeGreaterThan(0);
    expect(qpSport(qpFind(<u32>h))).toBe(0xd872);
  });
  it("CFG_FLAG_DEVICE_SPORT: every QP records 0 (the device's port)", () => {
    const flags = load<u32>(config + CFG_FLAGS);
    store<u32>(config + CFG_FLAGS, flags | CFG_FLAG_DEVICE_SPORT);
    const q = rcAtRtr(0x99, 0);
    store<u32>(config + CFG_FLAGS, flags);
    expect(createdSport).toBe(0);
    expect(qpSport(q)).toBe(0);
  });
});

describe("TX descriptors carry the QP's port, and the ICRC covers it", () => {
  it("a NAK leaves from the QP's port with an ICRC over that port; the host's fallback moves both", () => {
    const q = rcAtRtr(0x99, 0x7e1ef);
    // a request past the expected PSN: one PSN-sequence NAK to send
    const r = txRingAddr();
    const p0 = ringProd(r);
    expect(responderSendNak(q)).toBe(true);
    const d0 = ringEntry(r, p0);
    expect(load<u32>(d0 + TXD_SRC_PORT)).toBe(0xe1f0);
    expect(load<u32>(d0 + TXD_TRAILER + load<u32>(d0 + TXD_TRAILER_LEN) - 4)).toBe(icrcOfDescriptor(d0));
    qpSportSet(q, 0); // the host could not bind 0xE1F0: the device's port
    expect(responderSendNak(q)).toBe(true);
    const d1 = ringEntry(r, p0 + 1);
    expect(load<u32>(d1 + TXD_SRC_PORT)).toBe(4791);
    const icrc1 = load<u32>(d1 + TXD_TRAILER + load<u32>(d1 + TXD_TRAILER_LEN) - 4);
    expect(icrc1).toBe(icrcOfDescriptor(d1));
    expect(icrc1).not.toBe(load<u32>(d0 + TXD_TRAILER + load<u32>(d0 + TXD_TRAILER_LEN) - 4));
  });
});


/** Feeds `q` a SEND past its expected PSN (a PSN-sequence NAK follows) and sends it; true when one descriptor went out. */
function responderSendNak(q: usize): bool {
  const op = TR_RC | OP_SEND_ONLY;
  bth_build(bth, op, 0, 0, 0, 0xffff, 0, 0, load<u32>(q + QP_NUM), 1, 502);
  store<u32>(pktInfo + PKT_OPCODE, op);
  store<u32>(pktInfo + PKT_MASK, opcode_mask(op));
  store<u32>(pktInfo + PKT_PSN, 502);
  store<u32>(pktInfo + PKT_BTH, <u32>bth);
  store<u32>(pktInfo + PKT_PAYLOAD, <u32>(bth + 12));
  store<u32>(pktInfo + PKT_PAYLOAD_LEN, 0);
  store<u32>(pktInfo + PKT_ACKREQ, 1);
  store<u32>(pktInfo + PKT_SE, 0);
  // one NAK per gap (RSF_SENT_PSN_NAK): clear the responder's flag so each call answers
  store<u32>(q + QP_RESP + RS_FLAGS, load<u32>(q + QP_RESP + RS_FLAGS) & ~RSF_SENT_PSN_NAK);
  responderRecv(q, pktInfo);
  return responderSend(q, 8) == 1;
}

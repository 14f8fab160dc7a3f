// The device's packet path (rxe_net.c + rxe_recv.c): the TX descriptor ring the
// host drains (gather, zero copy of payload), and the receive path that
// validates one datagram in rxe's order and hands it to the responder
// (requests) or the completer (responses). Every drop is counted by reason.
import { crc32_raw } from "../crc/crc32";
import { icrc_calc } from "../crc/icrc";
import { ipidAbandon, ipidAccept, ipidCommit, IPID_REFUSE, IPID_WEAK, recover_ipv4_id } from "../crc/ipid";
import { bth_opcode, bth_padcnt, bth_pkey, bth_psn, bth_qpn, bth_se, bth_ackreq, bth_set_padcnt, bth_tver, BTH_SIZE } from "../wire/bth";
import { aeth_msn, aeth_syndrome } from "../wire/aeth";
import { deth_qkey } from "../wire/deth";
import { traceOn, traceRecord, TraceKind, TRACE_NONE } from "../trace/trace";
import { ip4_build, ip6_build, udp_build, IP4_FLAG_DF, IP4_SIZE, IP6_SIZE, ROCE_UDP_PORT, UDP_SIZE } from "../wire/ip";
import { opcode_length, opcode_mask, opcode_offset, opcode_transport, opcode_valid, HDR_AETH, HDR_DETH, M_PAYLOAD, M_REQ, TR_RC, TR_UC, TR_UD } from "../wire/opcode";
import { AV_DEST_PORT, AV_DGID, AV_FLOW_LABEL, AV_HOP_LIMIT, AV_SGID_INDEX, AV_TRAFFIC_CLASS } from "../verbs/av";
import { cfg, CFG_GID_COUNT, gidTable } from "../verbs/config";
import { count, Counter } from "../verbs/counters";
import { QpState, QPT_RC, QPT_UC, QPT_UD } from "../verbs/enums";
import { qpByNum, qpState, ATTR_AH, ATTR_QKEY, QP_ATTR, QP_NUM, QP_TYPE } from "../verbs/qp";
import { mcastFind, MULTICAST_QPN } from "../verbs/mcast";
import { qpSport } from "../verbs/sport";
import { ringCap, ringCons, ringEntry, ringInit, ringProd, ringSetCons, ringSetProd, ringBytes, RING_DATA, RING_TX } from "../mem/ring";
import { allocZeroed, allocZeroedLine } from "../mem/alloc";
import {
  pktInfo, PKT_ACKREQ, PKT_BTH, PKT_IPV6, PKT_LEN, PKT_MASK, PKT_META, PKT_OPCODE, PKT_PAYLOAD, PKT_PAYLOAD_LEN,
  PKT_PSN, PKT_QP, PKT_SE, PKT_SRC, PKT_SRC_PORT,
} from "./pkt";
import {
  TXD_HDR_LEN, TXD_PAYLOAD, TXD_PAYLOAD_LEN, TXD_TRAILER_LEN, TXD_DST, TXD_SRC, TXD_DST_PORT, TXD_SRC_PORT,
  TXD_IP_ID, TXD_FLAGS, TXD_QPN, TXD_TTL, TXD_TOS, TXD_FLOW_LABEL, TXD_HDR, TXD_TRAILER, TXD_SLOT, TXF_IPV6, TXF_DF,
  TXF_ICRC_HOST, RX_BUF_CAP, RXM_IP_VERSION, RXM_SRC, RXM_DST, RXM_SRC_PORT, RXM_DST_PORT, RXM_IP_ID, RXM_IP_FLAGS, RXM_SIZE,
  RxResult, RXR_SIZE, RXR_ICRC,
} from "../abi/net";

// ABI constants: generated from abi/schema.json into assembly/abi/net.ts; re-exported for this file's importers.
export {
  TXD_HDR_LEN, TXD_PAYLOAD, TXD_PAYLOAD_LEN, TXD_TRAILER_LEN, TXD_DST, TXD_SRC, TXD_DST_PORT, TXD_SRC_PORT,
  TXD_IP_ID, TXD_FLAGS, TXD_QPN, TXD_TTL, TXD_TOS, TXD_FLOW_LABEL, TXD_HDR, TXD_TRAILER, TXD_SLOT, TXF_IPV6, TXF_DF,
  RX_BUF_CAP, RXM_IP_VERSION, RXM_SRC, RXM_DST, RXM_SRC_PORT, RXM_DST_PORT, RXM_IP_ID, RXM_IP_FLAGS, RXM_TTL,
  RXM_TOS, RXM_FLOW_LABEL, RXM_SIZE, RxResult, RX_RESULT_NAMES, TXD_RESULT,
  RXR_DATA, RXR_LENGTH, RXR_ID_HINT, RXR_FLAGS, RXR_RESULT, RXR_SIZE, RXR_TRUNCATED, RXR_GRO, RXR_ICRC_HOST,
} from "../abi/net";

const DEFAULT_HOP_LIMIT: u32 = 64;

let txRing: usize = 0;
let localPort: u32 = ROCE_UDP_PORT;
/**
 * ICRC offload (icrc_offload): the host's port computes each sent datagram's ICRC as it sends
 * (the Node datapath, just before sendmmsg, for the IPv4 ID the datagram goes with), so the
 * descriptors are marked TXF_ICRC_HOST instead of carrying one. Off unless the host turns it on.
 */
let icrcOffload = false;

/** Turns the TX ICRC offload on or off (descriptors built from now on); returns the new state. */
export function setIcrcOffload(on: bool): bool {
  icrcOffload = on;
  return on;
}

export const rxBuf: usize = memory.data(RX_BUF_CAP, 16);
export const rxMeta: usize = memory.data(RXM_SIZE, 16);
/** A pseudo IP/UDP header for ICRCs (IPv6 40 + UDP 8), and zero bytes for the pad. */
const pseudo: usize = memory.data(64, 16);
const zeros: usize = memory.data(8, 8);

/** Carves the TX ring (call once, right after the device opens). */
export function netInit(txCap: u32, port: u32): void {
  txRing = heap.alloc(<usize>ringBytes(txCap, TXD_SLOT) + 64);
  txRing = (txRing + 63) & ~63;
  ringInit(txRing, txCap, TXD_SLOT, RING_TX, 0);
  txMarks = allocZeroed(<usize>ringCap(txRing) * MARK_SIZE);
  localPort = port;
}

export function txRingAddr(): usize { return txRing; }

// ---- batched receive: slots and records for a host that receives in place ----
let rxRecs: usize = 0;
let rxSlots: usize = 0;
let rxSlotCount: u32 = 0;
let rxRecCount: u32 = 0;
let rxSlotSize: u32 = 0;

/**
 * Carves `slots` receive slots of `slotSize` bytes and `records` batch records
 * (once: a later call returns the same records if it asks for no more). Call
 * at attach, before the host takes views of the memory. The records' address,
 * or 0 (bad sizes, or a second call asking for more).
 */
export function rxBatchInit(records: u32, slots: u32, slotSize: u32): usize {
  if (records == 0 || records > 4096 || slots == 0 || slots > 1024 || slotSize < 64 || slotSize > 65536) return 0;
  if (rxRecs) return records <= rxRecCount && slots <= rxSlotCount && slotSize <= rxSlotSize ? rxRecs : 0;
  rxRecs = allocZeroedLine(<usize>records * RXR_SIZE);
  rxRecCount = records;
  rxSlotSize = (slotSize + 63) & ~63;
  rxSlots = heap.alloc(<usize>slots * rxSlotSize + 64);
  rxSlots = (rxSlots + 63) & ~63;
  rxSlotCount = slots;
  return rxRecs;
}
export function rxBatchSlots(): usize { return rxSlots; }
export function rxBatchSlotSize(): u32 { return rxSlotSize; }

// UC/UD send completions wait for the host to release the descriptor of a
// message's last packet: per TX slot, the QP record, its QPN and the SQ index
// of the WQE (0 = the slot ends no UC/UD message).
let txMarks: usize = 0;
const MARK_SIZE: usize = 12;

/** Descriptor `desc` carries the last packet of the UC/UD WQE at SQ index `index` of `qp`. */
export function txMarkLast(desc: usize, qp: usize, index: u32): void {
  if (!txMarks) return;
  const m = txMarks + <usize>((desc - txRing - RING_DATA) / TXD_SLOT) * MARK_SIZE;
  store<u32>(m, <u32>qp);
  store<u32>(m + 4, load<u32>(qp + QP_NUM));
  store<u32>(m + 8, index);
}

/** The mark of free-running TX index `i`, cleared as it is read: the QP record or 0; QPN and SQ index in txMarkQpn/txMarkIndex. */
export let txMarkQpn: u32 = 0;
export let txMarkIndex: u32 = 0;
export function txTakeMark(i: u32): usize {
  if (!txMarks) return 0;
  const m = txMarks + <usize>(i & (ringCap(txRing) - 1)) * MARK_SIZE;
  const qp = <usize>load<u32>(m);
  if (!qp) return 0;
  txMarkQpn = load<u32>(m + 4);
  txMarkIndex = load<u32>(m + 8);
  store<u32>(m, 0);
  return qp;
}
export function netLocalPort(): u32 { return localPort; }

/** Free TX descriptors. */
@inline export function txAvailable(): u32 {
  return ringCap(txRing) - (ringProd(txRing) - ringCons(txRing));
}

/** The next free descriptor (headers go at desc + TXD_HDR), or 0 when the ring is full. */
export function txReserve(): usize {
  if (!txRing || txAvailable() == 0) return 0;
  return ringEntry(txRing, ringProd(txRing));
}

/** The host finished sending the `n` oldest descriptors. */
export function txRelease(n: u32): void {
  const inFlight = ringProd(txRing) - ringCons(txRing);
  ringSetCons(txRing, ringCons(txRing) + min(n, inFlight));
}

@inline function isV4Mapped(gid: usize): bool {
  return load<u64>(gid) == 0 && load<u32>(gid + 8) == 0xffff0000;
}

/**
 * Completes the descriptor returned by txReserve, whose headers (opcode_length
 * bytes) are written: sets the pad count, addresses and ports from the AV and
 * the device, computes the ICRC over exactly the IP/UDP header the host will
 * send, and publishes it to the host.
 */
export function txSend(desc: usize, qp: usize, av: usize, opcode: u32, payload: usize, payloadLen: u32): void {
  const hdrLen = opcode_length(opcode);
  const pad = (0 - payloadLen) & 3;
  const hdr = desc + TXD_HDR;
  bth_set_padcnt(hdr, pad);
  store<u32>(desc + TXD_HDR_LEN, hdrLen);
  store<u32>(desc + TXD_PAYLOAD, <u32>payload);
  store<u32>(desc + TXD_PAYLOAD_LEN, payloadLen);
  store<u32>(desc + TXD_TRAILER_LEN, pad + 4);
  memory.copy(desc + TXD_DST, av + AV_DGID, 16);
  let sgid = load<u32>(av + AV_SGID_INDEX);
  if (sgid >= cfg(CFG_GID_COUNT)) sgid = 0;
  memory.copy(desc + TXD_SRC, gidTable + (<usize>sgid << 4), 16);
  const dport = load<u32>(av + AV_DEST_PORT);
  store<u32>(desc + TXD_DST_PORT, dport ? dport : ROCE_UDP_PORT);
  // the QP's own port (rxe's: verbs/sport.ts), or the device's (0); the ICRC covers it
  const qsport = qpSport(qp);
  const sport = qsport ? qsport : localPort;
  store<u32>(desc + TXD_SRC_PORT, sport);
  store<u32>(desc + TXD_IP_ID, 0);
  const v6 = !isV4Mapped(desc + TXD_DST);
  store<u32>(desc + TXD_FLAGS, v6 ? TXF_IPV6 : TXF_DF);
  store<u32>(desc + TXD_QPN, load<u32>(qp + QP_NUM));
  const hops = load<u32>(av + AV_HOP_LIMIT);
  store<u32>(desc + TXD_TTL, hops ? hops : DEFAULT_HOP_LIMIT);
  store<u32>(desc + TXD_TOS, load<u32>(av + AV_TRAFFIC_CLASS));
  store<u32>(desc + TXD_FLOW_LABEL, load<u32>(av + AV_FLOW_LABEL));

  store<u32>(desc + TXD_TRAILER, 0);
  txIcrc(desc);
  ringSetProd(txRing, ringProd(txRing) + 1);
  count(Counter.SENT_PKTS);
  if (traceOn(TraceKind.PKT_SENT)) traceSent(qp, hdr, opcode);
}

/**
 * Writes the ICRC of a filled descriptor into its trailer: pseudo IP + UDP header (IP ID 0, DF,
 * the descriptor's addresses and ports), then the BTH (masked by icrc_calc), the rest of the
 * headers, the payload in place and the pad.
 */
function txIcrc(desc: usize): void {
  if (icrcOffload) {
    // the host fills it as the datagram leaves (and clears the mark); zero until then
    store<u32>(desc + TXD_FLAGS, load<u32>(desc + TXD_FLAGS) | TXF_ICRC_HOST);
    store<u32>(desc + TXD_TRAILER + load<u32>(desc + TXD_TRAILER_LEN) - 4, 0);
    return;
  }
  const hdr = desc + TXD_HDR;
  const hdrLen = load<u32>(desc + TXD_HDR_LEN);
  const payload = <usize>load<u32>(desc + TXD_PAYLOAD);
  const payloadLen = load<u32>(desc + TXD_PAYLOAD_LEN);
  const pad = load<u32>(desc + TXD_TRAILER_LEN) - 4;
  const v6 = (load<u32>(desc + TXD_FLAGS) & TXF_IPV6) != 0;
  const udpLen = UDP_SIZE + hdrLen + payloadLen + pad + 4;
  const udp = writePseudo(v6, desc + TXD_SRC, desc + TXD_DST, 0, IP4_FLAG_DF, udpLen, load<u32>(desc + TXD_SRC_PORT), load<u32>(desc + TXD_DST_PORT));
  let crc = ~icrc_calc(pseudo, v6, udp, hdr, BTH_SIZE);
  crc = crc32_raw(crc, hdr + BTH_SIZE, hdrLen - BTH_SIZE);
  if (payloadLen) crc = crc32_raw(crc, payload, payloadLen);
  if (pad) crc = crc32_raw(crc, zeros, pad);
  store<u32>(desc + TXD_TRAILER + pad, ~crc);
}

/**
 * The host sends TX descriptor `i` (free-running index, not yet released) from UDP port `port`
 * instead (0: the device's port), because it cannot send from the one the QP chose: the
 * descriptor's source port and ICRC are rewritten. 0, or -1 when `i` is not in flight.
 */
export function txSetSport(i: u32, port: u32): i32 {
  if (!txRing || i - ringCons(txRing) >= ringProd(txRing) - ringCons(txRing) || port > 0xffff) return -1;
  const desc = ringEntry(txRing, i);
  store<u32>(desc + TXD_SRC_PORT, port ? port : localPort);
  txIcrc(desc);
  return 0;
}

/** The trace record of a packet sent: opcode, PSN, and an ACK's or response's AETH (syndrome << 24 | MSN). */
function traceSent(qp: usize, hdr: usize, opcode: u32): void {
  const ao = opcode_offset(opcode, HDR_AETH);
  const aeth = ao >= 0 ? (aeth_syndrome(hdr + <usize>ao) << 24) | aeth_msn(hdr + <usize>ao) : 0;
  traceRecord(TraceKind.PKT_SENT, load<u32>(qp + QP_NUM), opcode, bth_psn(hdr), aeth);
}

/** The trace record of a datagram received (at `b`): its QPN, opcode and PSN when it has a BTH, and rx's verdict. */
export function traceReceived(b: usize, len: u32, verdict: RxResult): void {
  const bth = len >= BTH_SIZE;
  traceRecord(TraceKind.PKT_RECV, bth ? bth_qpn(b) : TRACE_NONE, bth ? bth_opcode(b) : TRACE_NONE, bth ? bth_psn(b) : TRACE_NONE, verdict);
}

/** Writes the IP (v4 or v6) and UDP headers the ICRC covers into `pseudo`; returns the UDP header's address. */
function writePseudo(v6: bool, src: usize, dst: usize, ipId: u32, ipFlags: u32, udpLen: u32, sport: u32, dport: u32): usize {
  if (v6) {
    ip6_build(pseudo, 0, 0, udpLen, 0, src, dst);
    udp_build(pseudo + IP6_SIZE, sport, dport, udpLen, 0);
    return pseudo + IP6_SIZE;
  }
  ip4_build(pseudo, 0, IP4_SIZE + udpLen, ipId, ipFlags, 0, 0, src + 12, dst + 12);
  udp_build(pseudo + IP4_SIZE, sport, dport, udpLen, 0);
  return pseudo + IP4_SIZE;
}

/**
 * RC/UC: the packet must travel the QP's path, from its peer's address to the
 * address the QP sends from (rxe's check_addr). The UDP source port is flow
 * entropy in RoCEv2 and is not checked.
 */
function onPath(qp: usize, rxMeta: usize): bool {
  const av = qp + QP_ATTR + ATTR_AH;
  const dgid = av + AV_DGID;
  if (load<u64>(dgid) != load<u64>(rxMeta + RXM_SRC) || load<u64>(dgid + 8) != load<u64>(rxMeta + RXM_SRC + 8)) return false;
  let sgid = load<u32>(av + AV_SGID_INDEX);
  if (sgid >= cfg(CFG_GID_COUNT)) sgid = 0; // as txSend picks the source
  const own = gidTable + (<usize>sgid << 4);
  return load<u64>(own) == load<u64>(rxMeta + RXM_DST) && load<u64>(own + 8) == load<u64>(rxMeta + RXM_DST + 8);
}

@inline function drop(r: RxResult, c: Counter): RxResult {
  count(c);
  return r;
}

/**
 * Validates the datagram of `len` bytes at `b` (IP facts in the RX meta record
 * at `rxMeta`, addresses as 16-byte GIDs) and fills pktInfo. An unseen IPv4 ID
 * is tried as `idHint`, then 0, then solved from the ICRC. With `hostIcrc` (the ICRC offload) the
 * record's RXR_ICRC is the ICRC the host computed for ID `idHint`, used instead of a pass of our own.
 * Returns OK or the drop reason.
 */
export function rxValidate(b: usize, rxMeta: usize, len: u32, idHint: u32, hostIcrc: bool = false): RxResult {
  if (len < BTH_SIZE + 4 || len > RX_BUF_CAP) return drop(RxResult.SHORT, Counter.SHORT);
  if (bth_tver(b) != 0) return drop(RxResult.BAD_VERSION, Counter.BAD_VERSION);
  const op = bth_opcode(b);
  if (!opcode_valid(op)) return drop(RxResult.BAD_OPCODE, Counter.BAD_OPCODE);
  const mask = opcode_mask(op);
  const hdrLen = opcode_length(op);
  if (len < hdrLen + 4) return drop(RxResult.SHORT, Counter.SHORT);
  const pad = bth_padcnt(b);
  const body = len - hdrLen - 4;
  if (body < pad || (!(mask & M_PAYLOAD) && body != 0)) return drop(RxResult.BAD_LENGTH, Counter.SHORT);

  // ICRC over the IP/UDP header the facts describe.
  const v6 = load<u32>(rxMeta + RXM_IP_VERSION) == 6;
  let ipId = load<u32>(rxMeta + RXM_IP_ID);
  const unseenId = ipId == 0xffffffff;
  // first guess: the host's hint (a GRO segment of a softroce GSO send has its index as ID), else
  // 0 (a lone datagram from softroce with the socket addon)
  if (unseenId) ipId = idHint & 0xffff;
  const found = load<u32>(b + len - 4);
  // the host's value covers what this pass would (its IPv4 ID is idHint: only when the ID is unseen)
  const given = hostIcrc && (v6 || unseenId);
  const udp: usize = given ? 0 : writePseudo(v6, rxMeta + RXM_SRC, rxMeta + RXM_DST, ipId, load<u32>(rxMeta + RXM_IP_FLAGS),
    UDP_SIZE + len, load<u32>(rxMeta + RXM_SRC_PORT), load<u32>(rxMeta + RXM_DST_PORT));
  const icrc = given ? load<u32>(rxMeta + RXR_ICRC) : icrc_calc(pseudo, v6, udp, b, len - 4);
  let weak = IPID_REFUSE;
  if (icrc != found) {
    // An unseen IPv4 ID (Linux rxe's are unpredictable) is solved from the ICRC
    // and taken only where the sender's ID sequence predicts it (crc/ipid.ts);
    // what no ID explains, or an ID out of sequence, is a corrupted packet.
    if (v6 || !unseenId) return drop(RxResult.BAD_ICRC, Counter.BAD_ICRC);
    const id = recover_ipv4_id(pseudo, udp, b, len - 4, found, icrc, ipId, true); // icrc was computed with ID ipId (the headers are not read)
    if (id < 0) return drop(RxResult.BAD_ICRC, Counter.BAD_ICRC);
    // a weakly taken ID (no prediction yet, or a long idle) is committed below only if a QP takes the packet
    weak = ipidAccept(rxMeta + RXM_SRC, <u32>id, true);
    if (weak == IPID_REFUSE) return drop(RxResult.BAD_ICRC, Counter.BAD_ICRC);
    ipId = <u32>id;
  } else if (unseenId) {
    ipidAccept(rxMeta + RXM_SRC, ipId, false);
  }
  if (unseenId) store<u32>(rxMeta + RXM_IP_ID, ipId);
  const r = rxValidateQp(b, rxMeta, len, op, mask, hdrLen, body, pad, v6);
  if (weak == IPID_WEAK) {
    if (r == RxResult.OK) ipidCommit();
    else ipidAbandon();
  }
  return r;
}

/** rxValidate after the ICRC: the packet's facts into pktInfo, then the receiving QP's checks. */
function rxValidateQp(b: usize, rxMeta: usize, len: u32, op: u32, mask: u32, hdrLen: u32, body: u32, pad: u32, v6: bool): RxResult {

  const p = pktInfo;
  store<u32>(p + PKT_OPCODE, op);
  store<u32>(p + PKT_MASK, mask);
  store<u32>(p + PKT_PSN, bth_psn(b));
  store<u32>(p + PKT_BTH, <u32>b);
  store<u32>(p + PKT_PAYLOAD, <u32>(b + hdrLen));
  store<u32>(p + PKT_PAYLOAD_LEN, body - pad);
  store<u32>(p + PKT_ACKREQ, bth_ackreq(b));
  store<u32>(p + PKT_SE, bth_se(b));
  store<u32>(p + PKT_SRC, <u32>(rxMeta + RXM_SRC));
  store<u32>(p + PKT_SRC_PORT, load<u32>(rxMeta + RXM_SRC_PORT));
  store<u32>(p + PKT_IPV6, v6 ? 1 : 0);
  store<u32>(p + PKT_META, <u32>rxMeta);
  store<u32>(p + PKT_LEN, len);
  store<u32>(p + PKT_QP, 0);

  if (bth_qpn(b) == MULTICAST_QPN) {
    // to a group (rxe_rcv_mcast_pkt): UD only, at a group's address; each attached QP is checked on its own (rxAcceptQp)
    rxGroup = opcode_transport(op) == TR_UD ? mcastFind(rxMeta + RXM_DST) : 0;
    if (!rxGroup) return drop(RxResult.UNKNOWN_QPN, Counter.UNKNOWN_QPN);
    count(Counter.RCVD_PKTS);
    return RxResult.OK;
  }
  const qp = qpByNum(bth_qpn(b));
  if (!qp) return drop(RxResult.UNKNOWN_QPN, Counter.UNKNOWN_QPN);
  const r = rxAcceptQp(qp);
  if (r == RxResult.OK) count(Counter.RCVD_PKTS);
  return r;
}

/** The multicast group of the datagram rxValidate accepted with PKT_QP 0. */
export let rxGroup: usize = 0;

/**
 * The checks that depend on the receiving QP (rxe check_type_state, check_addr,
 * check_keys) for the datagram rxValidate parsed; sets PKT_QP when it passes.
 */
export function rxAcceptQp(qp: usize): RxResult {
  // the datagram rxValidate parsed, where it lies (rx_buf, or a batch slot) and its facts
  const b = <usize>load<u32>(pktInfo + PKT_BTH);
  const meta = <usize>load<u32>(pktInfo + PKT_META);
  const op = bth_opcode(b);
  const mask = opcode_mask(op);
  const type = load<u32>(qp + QP_TYPE);
  const tr = opcode_transport(op);
  if (!((type == QPT_RC && tr == TR_RC) || (type == QPT_UC && tr == TR_UC) || (type == QPT_UD && tr == TR_UD))) {
    return drop(RxResult.BAD_TRANSPORT, Counter.BAD_OPCODE);
  }
  const st = <i32>qpState(qp);
  if (mask & M_REQ) {
    if (st < QpState.RTR || st > QpState.SQE) return drop(RxResult.BAD_STATE, Counter.BAD_STATE);
  } else if (st < QpState.RTS || st > QpState.SQE) {
    return drop(RxResult.BAD_STATE, Counter.BAD_STATE);
  }
  if (type != QPT_UD && !onPath(qp, meta)) return drop(RxResult.BAD_SOURCE, Counter.BAD_SOURCE);
  if ((bth_pkey(b) & 0x7fff) != 0x7fff) return drop(RxResult.BAD_PKEY, Counter.BAD_PKEY);
  if (type == QPT_UD) {
    const deth = b + <usize>opcode_offset(op, HDR_DETH);
    if (deth_qkey(deth) != load<u32>(qp + QP_ATTR + ATTR_QKEY)) return drop(RxResult.BAD_QKEY, Counter.BAD_QKEY);
  }
  store<u32>(pktInfo + PKT_QP, <u32>qp);
  return RxResult.OK;
}

// The UDP source port of a QP's packets, as Linux rxe chooses it (ECMP entropy; rxe_qp.c
// rxe_qp_init_req, rxe_verbs.c rxe_modify_qp, include/rdma/ib_verbs.h rdma_get_udp_sport):
//  - at create: 0xC000 + hash_32(qpn, 14) (QP1 therefore 0xD872);
//  - at a modify with an address vector (it has a GRH on RoCE): rdma_get_udp_sport(flow_label,
//    qpn, dest_qpn), where a flow label 0 is first made from the two QPNs, so both ends of a
//    connection pick the same port.
// 0 in the record means the device's port: CFG_FLAG_DEVICE_SPORT (udpSourcePorts "device"), or
// the host's fallback when it cannot send from the QP's port (qp_set_udp_sport).
import { cfg, CFG_FLAGS, CFG_FLAG_DEVICE_SPORT } from "./config";
import { ATTR_AH, ATTR_DEST_QP_NUM, ATTR_UDP_SPORT, AV_FLOW_LABEL, AV_IS_GLOBAL, QP_ATTR, QP_NUM } from "../abi/qp";

/** IB_ROCE_UDP_ENCAP_VALID_PORT_MIN: the lowest port rxe takes a source port from. */
export const ROCE_SPORT_MIN: u32 = 0xc000;
/** GOLDEN_RATIO_32 of include/linux/hash.h. */
const GOLDEN_RATIO_32: u32 = 0x61c88647;
const FLOW_LABEL_MASK: u32 = 0xfffff;

/** Linux hash_32(v, bits): the top `bits` bits of v x GOLDEN_RATIO_32 (mod 2^32); bits 1..31. */
@inline export function hash32(v: u32, bits: u32): u32 {
  return (v * GOLDEN_RATIO_32) >>> (32 - bits);
}

/** rdma_calc_flow_label: a 20-bit flow label from the two QPNs (symmetric). */
export function calcFlowLabel(lqpn: u32, rqpn: u32): u32 {
  let v = <u64>lqpn * <u64>rqpn;
  v ^= v >> 20;
  v ^= v >> 40;
  return <u32>(v & FLOW_LABEL_MASK);
}

/** rdma_flow_label_to_udp_sport: folds the label's top 6 bits into its low 14, in 0xC000..0xFFFF. */
@inline export function flowLabelToUdpSport(fl: u32): u32 {
  return ((fl & 0x3fff) ^ ((fl & 0xfc000) >> 14)) | ROCE_SPORT_MIN;
}

/** rdma_get_udp_sport: the port for a flow label, or (label 0) for the pair of QPNs. */
export function udpSport(flowLabel: u32, lqpn: u32, rqpn: u32): u32 {
  return flowLabelToUdpSport(flowLabel ? flowLabel : calcFlowLabel(lqpn, rqpn));
}

/** The create-time port of QP `qpn` (rxe_qp_init_req). */
@inline export function createSport(qpn: u32): u32 {
  return ROCE_SPORT_MIN + hash32(qpn, 14);
}

@inline function deviceSport(): bool {
  return (cfg(CFG_FLAGS) & CFG_FLAG_DEVICE_SPORT) != 0;
}

/** Sets the create-time port of QP record `q` (after its QP number is final). */
export function qpSportInit(q: usize): void {
  store<u32>(q + QP_ATTR + ATTR_UDP_SPORT, deviceSport() ? 0 : createSport(load<u32>(q + QP_NUM)));
}

/** After a modify that set the AV (its attributes copied into the record): the port rxe_modify_qp sets. */
export function qpSportModify(q: usize): void {
  const a = q + QP_ATTR;
  if (!load<u32>(a + ATTR_AH + AV_IS_GLOBAL)) return;
  const port = udpSport(load<u32>(a + ATTR_AH + AV_FLOW_LABEL), load<u32>(q + QP_NUM), load<u32>(a + ATTR_DEST_QP_NUM));
  store<u32>(a + ATTR_UDP_SPORT, deviceSport() ? 0 : port);
}

/** The port recorded for QP `q`: 0 = the device's. */
@inline export function qpSport(q: usize): u32 {
  return load<u32>(q + QP_ATTR + ATTR_UDP_SPORT);
}

/** The host sends QP `q` from `port` instead (0: the device's port). */
export function qpSportSet(q: usize, port: u32): void {
  store<u32>(q + QP_ATTR + ATTR_UDP_SPORT, port);
}

/** One bit per port 0xC000..0xFFFF: the ports live QPs send from (qpSportsInUse). */
const SPORT_BITMAP_BYTES: u32 = 0x4000 / 8;
export const sportBitmap: usize = memory.data(SPORT_BITMAP_BYTES, 16);

/** Empties sportBitmap. */
export function sportsClear(): void {
  memory.fill(sportBitmap, 0, SPORT_BITMAP_BYTES);
}

/** Marks port `p` in sportBitmap (ports outside 0xC000..0xFFFF are not kept). */
export function sportsMark(p: u32): void {
  if (p < ROCE_SPORT_MIN || p > 0xffff) return;
  const b = p - ROCE_SPORT_MIN;
  store<u8>(sportBitmap + (b >> 3), <u8>(<u32>load<u8>(sportBitmap + (b >> 3)) | (<u32>1 << (b & 7))));
}

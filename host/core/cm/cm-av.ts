// Where a connection's MADs and packets go (struct cm_av): from the path
// record on the active side, from the MAD that arrived on the passive side,
// and the ah_attr a QP of the connection gets.
import type { AhAttr } from "../verbs/av.js";
import type { CmReq } from "./cm-msgs.js";
import type { PathRecord } from "./cm-params.js";
import { GSI_QKEY, GSI_QPN } from "./mad.js";
import type { MadAddress } from "./mad-transport.js";

/** The address vector of a connection (struct cm_av). */
export interface CmAv {
  to: MadAddress;
  dgid: Uint8Array;
  sgidIndex: number;
  pkeyIndex: number;
  /** local ACK timeout exponent; TIMEWAIT lasts cm_convert_to_ms(timeout) */
  timeout: number;
  hopLimit: number;
  trafficClass: number;
  flowLabel: number;
  sl: number;
  rate: number;
}

/** A reply goes back to the sender's QP1 (cm_alloc_response_msg: remote QPN 1, the P_Key index it came on). */
export function replyTo(from: MadAddress): MadAddress {
  return { gid: from.gid, port: from.port, qpn: GSI_QPN, pkeyIndex: from.pkeyIndex, qkey: GSI_QKEY };
}

/** cm_init_av_for_response */
export function avForResponse(from: MadAddress): CmAv {
  return {
    to: replyTo(from), dgid: from.gid, sgidIndex: 0, pkeyIndex: from.pkeyIndex, timeout: 0,
    hopLimit: from.hopLimit ?? 64, trafficClass: from.trafficClass ?? 0, flowLabel: from.flowLabel ?? 0, sl: 0, rate: 0,
  };
}

/** cm_init_av_by_path: the path's values; the ACK timeout one step above the packet life time. */
export function avFromPath(path: PathRecord, to: MadAddress): CmAv {
  return {
    to: { ...to, qpn: GSI_QPN, qkey: GSI_QKEY, trafficClass: path.trafficClass, flowLabel: path.flowLabel, sgidIndex: path.sgidIndex },
    dgid: path.dgid, sgidIndex: path.sgidIndex, pkeyIndex: to.pkeyIndex, timeout: path.packetLifeTime + 1,
    hopLimit: path.hopLimit, trafficClass: path.trafficClass, flowLabel: path.flowLabel, sl: path.sl, rate: path.rate,
  };
}

/** The GRH fields a QP's address vector takes, from an av or straight from a path (ib_init_ah_attr_from_path). */
type RouteFields = Pick<CmAv, "dgid" | "flowLabel" | "sgidIndex" | "hopLimit" | "trafficClass" | "sl" | "rate">;

/** The ah_attr for a QP of this connection (or a UD destination); destPort is the peer's UDP port (softroce). */
export function ahAttrOf(r: RouteFields, destPort?: number): AhAttr {
  return {
    grh: { dgid: r.dgid, flowLabel: r.flowLabel, sgidIndex: r.sgidIndex, hopLimit: r.hopLimit, trafficClass: r.trafficClass },
    isGlobal: true, sl: r.sl, staticRate: r.rate, portNum: 1, destPort,
  };
}

/** cm_format_paths_from_req: the path seen from the passive side (local and remote swap). */
export function pathFromReq(req: CmReq, from: MadAddress): PathRecord {
  const plt = req.primaryLocalAckTimeout;
  return {
    dgid: req.primaryLocalPortGid,
    sgid: req.primaryRemotePortGid,
    sgidIndex: 0,
    flowLabel: req.primaryFlowLabel,
    // Linux takes the hop limit of the GRH the REQ arrived with (work->path[0].hop_limit = grh->hop_limit).
    hopLimit: from.hopLimit ?? req.primaryHopLimit,
    trafficClass: req.primaryTrafficClass,
    sl: req.primarySl,
    pkey: req.partitionKey,
    mtu: req.pathPacketPayloadMtu,
    rate: req.primaryPacketRate,
    packetLifeTime: plt - (plt > 0 ? 1 : 0),
    serviceId: req.serviceId,
    dport: from.port,
  };
}

export function sameGid(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

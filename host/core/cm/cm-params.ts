// What ib_cm's consumers hand it and what it hands them back (include/rdma/
// ib_cm.h): the path a connection takes, the parameters of REQ, REP and SIDR,
// and the events with their parameters.
import type { MadAddress } from "./mad-transport.js";
import type { IbCmEventType } from "./cm-consts.js";
import type { CmId } from "./cm.js";

/** The parts of an SA path record a RoCE connection uses (struct sa_path_rec). */
export interface PathRecord {
  /** our GID and the peer's */
  sgid: Uint8Array;
  dgid: Uint8Array;
  /** index of sgid in our GID table */
  sgidIndex: number;
  flowLabel: number;
  hopLimit: number;
  trafficClass: number;
  sl: number;
  pkey: number;
  /** ib_mtu enum (Mtu.MTU_1024 = 3) */
  mtu: number;
  /** ib_rate enum (0 = port current) */
  rate: number;
  /** 4.096 µs × 2^packetLifeTime */
  packetLifeTime: number;
  serviceId?: bigint;
  /** softroce: the peer device's UDP port (RoCE: 4791) */
  dport?: number;
}

/** ib_cm_req_param */
export interface CmReqParam {
  primaryPath: PathRecord;
  serviceId: bigint;
  qpNum: number;
  /** QpType.RC or QpType.UC */
  qpType: number;
  startingPsn: number;
  privateData?: Uint8Array;
  responderResources: number;
  initiatorDepth: number;
  remoteCmResponseTimeout: number;
  flowControl: number;
  localCmResponseTimeout: number;
  retryCount: number;
  rnrRetryCount: number;
  maxCmRetries: number;
  srq: number;
}

/** ib_cm_rep_param */
export interface CmRepParam {
  qpNum: number;
  startingPsn: number;
  privateData?: Uint8Array;
  responderResources: number;
  initiatorDepth: number;
  failoverAccepted?: number;
  flowControl?: number;
  rnrRetryCount: number;
  srq?: number;
}

/** ib_cm_sidr_req_param */
export interface CmSidrReqParam {
  path: PathRecord;
  serviceId: bigint;
  timeoutMs: number;
  maxCmRetries: number;
  privateData?: Uint8Array;
}

/** ib_cm_sidr_rep_param */
export interface CmSidrRepParam {
  status: number;
  qpNum?: number;
  qkey?: number;
  info?: Uint8Array;
  privateData?: Uint8Array;
}

export interface ReqEventParam {
  listenId: CmId;
  primaryPath: PathRecord;
  remoteCaGuid: bigint;
  remoteQkey: number;
  remoteQpn: number;
  /** QpType.RC / UC / XRC_RECV, or 0 for a transport the CM does not know */
  qpType: number;
  startingPsn: number;
  /** from the peer's point of view turned around: our responder resources = its initiator depth */
  responderResources: number;
  initiatorDepth: number;
  localCmResponseTimeout: number;
  flowControl: number;
  remoteCmResponseTimeout: number;
  retryCount: number;
  rnrRetryCount: number;
  srq: number;
  /** where the REQ came from */
  from: MadAddress;
}

export interface RepEventParam {
  remoteCaGuid: bigint;
  remoteQkey: number;
  remoteQpn: number;
  startingPsn: number;
  responderResources: number;
  initiatorDepth: number;
  targetAckDelay: number;
  failoverAccepted: number;
  flowControl: number;
  rnrRetryCount: number;
  srq: number;
}

/** struct ib_cm_event: one of the params is set, by event. */
export interface IbCmEvent {
  event: IbCmEventType;
  name: string;
  /** the message's whole private data field (Linux hands up the full size) */
  privateData?: Uint8Array;
  reqRcvd?: ReqEventParam;
  repRcvd?: RepEventParam;
  rejRcvd?: { reason: number; ari: Uint8Array; ariLength: number };
  mraRcvd?: { serviceTimeout: number };
  sidrReqRcvd?: { listenId: CmId; serviceId: bigint; pkey: number; from: MadAddress };
  sidrRepRcvd?: { status: number; qkey: number; qpn: number; info: Uint8Array; infoLen: number };
  /** *_ERROR events: the completion status of the send that ran out of retries */
  sendStatus?: number;
}

/**
 * ib_cm_handler: returning non-zero (a negative errno) tells the CM to destroy the ID,
 * as Linux's does; -ENOMEM on a new connection leaves the peer to retry its REQ.
 */
export type CmHandler = (id: CmId, event: IbCmEvent) => number | void;

// The CM messages of IBTA chapter 12 (Tables 106-120) as Linux lays them out
// (include/rdma/ibta_vol1_c12.h, drivers/infiniband/core/cm_msgs.h), one table
// per message, offsets from the start of the 232 bytes of CM data. Field names
// are the spec's in camelCase; `wireshark` is the name tshark (4.0) prints,
// where it has one (it dissects REQ, REP, RTU, REJ, DREQ and DREP only; its REQ
// local communication ID is `infiniband.cm.req` and the DREQ remote QPN is
// `infiniband.cm.req.remoteqpneecn`, as the dissector names them). Also the
// ClassPortInfo attribute every class defines.
import { blankRecord, bytes, readRecord, u64, uint, writeRecord, type Layout, type RecordOf } from "./iba-fields.js";
import {
  CLASS_PORT_INFO_ATTR_ID, MAD_DATA_SIZE, MAD_HDR_SIZE, MadError, MadMethod, madHeader, emitMad, MgmtClass, parseMad,
  type MadHeader,
} from "./mad.js";

/** IB_CM_CLASS_VERSION: IBTA 1.2's CM class. */
export const CM_CLASS_VERSION = 2;

const ws = (s: string): string => `infiniband.cm.${s}`;

export const REQ = {
  localCommId: uint(0, 32, 0, ws("req")),
  serviceId: u64(8, ws("req.serviceid")),
  localCaGuid: u64(16, ws("req.localcaguid")),
  localQkey: uint(28, 32, 0, ws("req.localqkey")),
  localQpn: uint(32, 24, 0, ws("req.localqpn")),
  responderResources: uint(35, 8, 0, ws("req.responderres")),
  localEecn: uint(36, 24, 0, ws("req.localeecn")),
  initiatorDepth: uint(39, 8, 0, ws("req.initdepth")),
  remoteEecn: uint(40, 24, 0, ws("req.remoteeecn")),
  remoteCmResponseTimeout: uint(43, 5, 0, ws("req.remoteresptout")),
  transportServiceType: uint(43, 2, 5, ws("req.transpsvctype")),
  endToEndFlowControl: uint(43, 1, 7, ws("req.e2eflowctrl")),
  startingPsn: uint(44, 24, 0, ws("req.startpsn")),
  localCmResponseTimeout: uint(47, 5, 0, ws("req.localresptout")),
  retryCount: uint(47, 3, 5, ws("req.retrcount")),
  partitionKey: uint(48, 16, 0, ws("req.pkey")),
  pathPacketPayloadMtu: uint(50, 4, 0, ws("req.pppmtu")),
  rdcExists: uint(50, 1, 4, ws("req.rdcexist")),
  rnrRetryCount: uint(50, 3, 5, ws("req.rnrretrcount")),
  maxCmRetries: uint(51, 4, 0, ws("req.maxcmretr")),
  srq: uint(51, 1, 4, ws("req.srq")),
  extendedTransportType: uint(51, 3, 5, ws("req.ext_transport")),
  primaryLocalPortLid: uint(52, 16, 0, ws("req.prim_locallid")),
  primaryRemotePortLid: uint(54, 16, 0, ws("req.prim_remotelid")),
  primaryLocalPortGid: bytes(56, 16, ws("req.prim_localgid")),
  primaryRemotePortGid: bytes(72, 16, ws("req.prim_remotegid")),
  primaryFlowLabel: uint(88, 20, 0, ws("req.prim_flowlabel")),
  primaryPacketRate: uint(91, 6, 2, ws("req.prim_pktrate")),
  primaryTrafficClass: uint(92, 8, 0, ws("req.prim_tfcclass")),
  primaryHopLimit: uint(93, 8, 0, ws("req.prim_hoplim")),
  primarySl: uint(94, 4, 0, ws("req.prim_sl")),
  primarySubnetLocal: uint(94, 1, 4, ws("req.prim_subnetlocal")),
  primaryLocalAckTimeout: uint(95, 5, 0, ws("req.prim_localacktout")),
  alternateLocalPortLid: uint(96, 16, 0, ws("req.alt_locallid")),
  alternateRemotePortLid: uint(98, 16, 0, ws("req.alt_remotelid")),
  alternateLocalPortGid: bytes(100, 16, ws("req.alt_localgid")),
  alternateRemotePortGid: bytes(116, 16, ws("req.alt_remotegid")),
  alternateFlowLabel: uint(132, 20, 0, ws("req.alt_flowlabel")),
  alternatePacketRate: uint(135, 6, 2, ws("req.alt_pktrate")),
  alternateTrafficClass: uint(136, 8, 0, ws("req.alt_tfcclass")),
  alternateHopLimit: uint(137, 8, 0, ws("req.alt_hoplim")),
  alternateSl: uint(138, 4, 0, ws("req.alt_sl")),
  alternateSubnetLocal: uint(138, 1, 4, ws("req.alt_subnetlocal")),
  alternateLocalAckTimeout: uint(139, 5, 0, ws("req.alt_localacktout")),
  /** CM_REQ_SAP_SUPPORTED (IBTA 1.3), which tshark 4.0 counts as reserved */
  sapSupported: uint(139, 1, 5),
  privateData: bytes(140, 92, ws("req.private")),
} as const;

export const MRA = {
  localCommId: uint(0, 32),
  remoteCommId: uint(4, 32),
  messageMraed: uint(8, 2),
  serviceTimeout: uint(9, 5),
  privateData: bytes(10, 222),
} as const;

export const REJ = {
  localCommId: uint(0, 32, 0, ws("rej.localcommid")),
  remoteCommId: uint(4, 32, 0, ws("rej.remotecommid")),
  messageRejected: uint(8, 2, 0, ws("rej.msgrej")),
  rejectedInfoLength: uint(9, 7, 0, ws("rej.rejinfolen")),
  reason: uint(10, 16, 0, ws("rej.reason")),
  ari: bytes(12, 72, ws("rej.ari")),
  privateData: bytes(84, 148, ws("rej.private")),
} as const;

export const REP = {
  localCommId: uint(0, 32, 0, ws("rep")),
  remoteCommId: uint(4, 32, 0, ws("rep.remotecommid")),
  localQkey: uint(8, 32, 0, ws("rep.localqkey")),
  localQpn: uint(12, 24, 0, ws("rep.localqpn")),
  localEeContextNumber: uint(16, 24, 0, ws("rep.localeecn")),
  startingPsn: uint(20, 24, 0, ws("rep.startpsn")),
  responderResources: uint(24, 8, 0, ws("rep.respres")),
  initiatorDepth: uint(25, 8, 0, ws("rep.initdepth")),
  targetAckDelay: uint(26, 5, 0, ws("rep.tgtackdelay")),
  failoverAccepted: uint(26, 2, 5, ws("rep.failoveracc")),
  endToEndFlowControl: uint(26, 1, 7, ws("rep.e2eflowctrl")),
  rnrRetryCount: uint(27, 3, 0, ws("rep.rnrretrcount")),
  srq: uint(27, 1, 3, ws("rep.srq")),
  localCaGuid: u64(28, ws("rep.localcaguid")),
  privateData: bytes(36, 196, ws("rep.private")),
} as const;

export const RTU = {
  localCommId: uint(0, 32, 0, ws("rtu.localcommid")),
  remoteCommId: uint(4, 32, 0, ws("rtu.remotecommid")),
  privateData: bytes(8, 224, ws("rtu.private")),
} as const;

export const DREQ = {
  localCommId: uint(0, 32, 0, ws("dreq.localcommid")),
  remoteCommId: uint(4, 32, 0, ws("dreq.remotecommid")),
  remoteQpnEecn: uint(8, 24, 0, ws("req.remoteqpneecn")),
  privateData: bytes(12, 220, ws("dreq.private")),
} as const;

export const DREP = {
  localCommId: uint(0, 32, 0, ws("drsp.localcommid")),
  remoteCommId: uint(4, 32, 0, ws("drsp.remotecommid")),
  privateData: bytes(8, 224, ws("drsp.private")),
} as const;

export const LAP = {
  localCommId: uint(0, 32),
  remoteCommId: uint(4, 32),
  remoteQpnEecn: uint(12, 24),
  remoteCmResponseTimeout: uint(15, 5),
  alternateLocalPortLid: uint(20, 16),
  alternateRemotePortLid: uint(22, 16),
  alternateLocalPortGid: bytes(24, 16),
  alternateRemotePortGid: bytes(40, 16),
  alternateFlowLabel: uint(56, 20),
  alternateTrafficClass: uint(59, 8),
  alternateHopLimit: uint(60, 8),
  alternatePacketRate: uint(61, 6, 2),
  alternateSl: uint(62, 4),
  alternateSubnetLocal: uint(62, 1, 4),
  alternateLocalAckTimeout: uint(63, 5),
  privateData: bytes(64, 168),
} as const;

export const APR = {
  localCommId: uint(0, 32),
  remoteCommId: uint(4, 32),
  additionalInformationLength: uint(8, 8),
  apStatus: uint(9, 8),
  additionalInformation: bytes(12, 72),
  privateData: bytes(84, 148),
} as const;

export const SIDR_REQ = {
  requestId: uint(0, 32),
  partitionKey: uint(4, 16),
  serviceId: u64(8),
  privateData: bytes(16, 216),
} as const;

export const SIDR_REP = {
  requestId: uint(0, 32),
  status: uint(4, 8),
  additionalInformationLength: uint(5, 8),
  qpn: uint(8, 24),
  serviceId: u64(12),
  qkey: uint(20, 32),
  additionalInformation: bytes(24, 72),
  privateData: bytes(96, 136),
} as const;

/** Every CM message by name, with its attribute ID (ib_cm.h CM_*_ATTR_ID). */
export const CM_MESSAGES = {
  REQ: { attrId: 0x0010, layout: REQ },
  MRA: { attrId: 0x0011, layout: MRA },
  REJ: { attrId: 0x0012, layout: REJ },
  REP: { attrId: 0x0013, layout: REP },
  RTU: { attrId: 0x0014, layout: RTU },
  DREQ: { attrId: 0x0015, layout: DREQ },
  DREP: { attrId: 0x0016, layout: DREP },
  SIDR_REQ: { attrId: 0x0017, layout: SIDR_REQ },
  SIDR_REP: { attrId: 0x0018, layout: SIDR_REP },
  LAP: { attrId: 0x0019, layout: LAP },
  APR: { attrId: 0x001a, layout: APR },
} as const satisfies Record<string, { attrId: number; layout: Layout }>;

export type CmMsgName = keyof typeof CM_MESSAGES;
export type CmMsg<K extends CmMsgName> = RecordOf<(typeof CM_MESSAGES)[K]["layout"]>;
export type CmReq = CmMsg<"REQ">;
export type CmMra = CmMsg<"MRA">;
export type CmRej = CmMsg<"REJ">;
export type CmRep = CmMsg<"REP">;
export type CmRtu = CmMsg<"RTU">;
export type CmDreq = CmMsg<"DREQ">;
export type CmDrep = CmMsg<"DREP">;
export type CmSidrReq = CmMsg<"SIDR_REQ">;
export type CmSidrRep = CmMsg<"SIDR_REP">;

/** A parsed CM MAD: its header, which message it is, and the message's fields. */
export type CmMad = { [K in CmMsgName]: { name: K; hdr: MadHeader; msg: CmMsg<K> } }[CmMsgName];

const BY_ATTR = new Map<number, CmMsgName>(
  (Object.keys(CM_MESSAGES) as CmMsgName[]).map((k) => [CM_MESSAGES[k].attrId, k]),
);

export function cmMsgName(attrId: number): CmMsgName | undefined {
  return BY_ATTR.get(attrId);
}

/** The size of a message's private data (IB_CM_*_PRIVATE_DATA_SIZE). */
export function privateDataSize(name: CmMsgName): number {
  return CM_MESSAGES[name].layout.privateData.length;
}

/** A message of this kind with every field zero. */
export function blankCm<K extends CmMsgName>(name: K): CmMsg<K> {
  return blankRecord(CM_MESSAGES[name].layout) as CmMsg<K>;
}

/**
 * Parses a CM MAD: the common header (parseMad's rules), then class 0x07 version 2,
 * method Send, and an attribute this table knows; then every field of the message.
 * Throws MadError only.
 */
export function parseCmMad(b: Uint8Array): CmMad {
  const { hdr } = parseMad(b);
  if (hdr.mgmtClass !== MgmtClass.CM) throw new MadError("bad_class", `class 0x${hdr.mgmtClass.toString(16)}, not CM`);
  if (hdr.classVersion !== CM_CLASS_VERSION) throw new MadError("bad_class_version", `CM class version ${hdr.classVersion}`);
  if (hdr.method !== MadMethod.SEND) throw new MadError("bad_method", `method 0x${hdr.method.toString(16)} for a CM message`);
  const name = BY_ATTR.get(hdr.attributeId);
  if (!name) throw new MadError("unknown_attribute", `CM attribute 0x${hdr.attributeId.toString(16)}`);
  return { name, hdr, msg: readRecord(CM_MESSAGES[name].layout, b, MAD_HDR_SIZE) } as CmMad;
}

/**
 * Builds a CM MAD as Linux's cm_format_mad_hdr does (base version 1, class CM,
 * version 2, method Send, status 0), the message's fields after it. `hdr` may
 * override header fields (the transaction ID at least).
 */
export function emitCmMad<K extends CmMsgName>(name: K, hdr: Partial<MadHeader>, msg: Partial<CmMsg<K>>): Uint8Array {
  const m = CM_MESSAGES[name];
  const data = new Uint8Array(MAD_DATA_SIZE);
  writeRecord(m.layout as Layout, msg as Record<string, never>, data, 0);
  return emitMad(
    madHeader({ mgmtClass: MgmtClass.CM, classVersion: CM_CLASS_VERSION, method: MadMethod.SEND, attributeId: m.attrId, ...hdr }),
    data,
  );
}

/** ClassPortInfo (IBTA 13.4.8.1, Linux struct ib_class_port_info), at the start of the class data. */
export const CLASS_PORT_INFO = {
  baseVersion: uint(0, 8),
  classVersion: uint(1, 8),
  capabilityMask: uint(2, 16),
  capabilityMask2: uint(4, 27),
  respTimeValue: uint(7, 5, 3),
  redirectGid: bytes(8, 16),
  redirectTc: uint(24, 8),
  redirectSl: uint(25, 4),
  redirectFl: uint(25, 20, 4),
  redirectLid: uint(28, 16),
  redirectPkey: uint(30, 16),
  redirectQp: uint(33, 24),
  redirectQkey: uint(36, 32),
  trapGid: bytes(40, 16),
  trapTc: uint(56, 8),
  trapSl: uint(57, 4),
  trapFl: uint(57, 20, 4),
  trapLid: uint(60, 16),
  trapPkey: uint(62, 16),
  trapHl: uint(64, 8),
  trapQp: uint(65, 24),
  trapQkey: uint(68, 32),
} as const;
export const CLASS_PORT_INFO_SIZE = 72;
export type ClassPortInfo = RecordOf<typeof CLASS_PORT_INFO>;

/** Decodes the ClassPortInfo a MAD carries (any class; the caller checked the attribute ID). */
export function parseClassPortInfo(b: Uint8Array): { hdr: MadHeader; info: ClassPortInfo } {
  const { hdr } = parseMad(b);
  if (hdr.attributeId !== CLASS_PORT_INFO_ATTR_ID) throw new MadError("unknown_attribute", `attribute 0x${hdr.attributeId.toString(16)} is not ClassPortInfo`);
  return { hdr, info: readRecord(CLASS_PORT_INFO, b, MAD_HDR_SIZE) };
}

/** Builds a MAD carrying ClassPortInfo (a Get carries it zeroed; a GetResp, the answer). */
export function emitClassPortInfo(hdr: Partial<MadHeader>, info: Partial<ClassPortInfo>): Uint8Array {
  const data = new Uint8Array(MAD_DATA_SIZE);
  writeRecord(CLASS_PORT_INFO, info, data, 0);
  return emitMad(madHeader({ attributeId: CLASS_PORT_INFO_ATTR_ID, ...hdr }), data);
}

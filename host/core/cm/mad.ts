// The common MAD header (IBTA 13.4.2, Linux include/rdma/ib_mad.h struct
// ib_mad_hdr) and the 256-byte MAD that QP1, the GSI, carries. A MAD from the
// network is hostile: parse checks the length and base version once and
// throws only MadError (with a code); emit builds exactly what parse accepts.
// Also here: the answer Linux's MAD layer gives a Get/Set nobody handles.
import { blankRecord, readRecord, u64, uint, writeRecord, type RecordOf } from "./iba-fields.js";

export const MAD_SIZE = 256;
export const MAD_HDR_SIZE = 24;
/** The class data that follows the common header in a CM MAD (IB_MGMT_MAD_DATA). */
export const MAD_DATA_SIZE = MAD_SIZE - MAD_HDR_SIZE;
export const MGMT_BASE_VERSION = 1;

/** Management classes (ib_mad.h IB_MGMT_CLASS_*). */
export const MgmtClass = {
  SUBN_LID_ROUTED: 0x01,
  SUBN_ADM: 0x03,
  PERF_MGMT: 0x04,
  BM: 0x05,
  DEVICE_MGMT: 0x06,
  CM: 0x07,
  SNMP: 0x08,
  SUBN_DIRECTED_ROUTE: 0x81,
} as const;

/** Methods (ib_mad.h IB_MGMT_METHOD_*); a response has bit 7 set. */
export const MadMethod = {
  GET: 0x01,
  SET: 0x02,
  SEND: 0x03,
  TRAP: 0x05,
  REPORT: 0x06,
  TRAP_REPRESS: 0x07,
  RESP: 0x80,
  GET_RESP: 0x81,
  REPORT_RESP: 0x86,
} as const;

/** MAD status values (ib_mad.h IB_MGMT_MAD_STATUS_*). */
export const MadStatus = {
  SUCCESS: 0x0000,
  BUSY: 0x0001,
  REDIRECT_REQD: 0x0002,
  BAD_VERSION: 0x0004,
  UNSUPPORTED_METHOD: 0x0008,
  UNSUPPORTED_METHOD_ATTRIB: 0x000c,
  INVALID_ATTRIB_VALUE: 0x001c,
} as const;
/** Set in the status of a directed-route SMP response (IB_SMP_DIRECTION). */
export const SMP_DIRECTION = 0x8000;

/** The attribute every class defines (IBTA 13.4.8.1). */
export const CLASS_PORT_INFO_ATTR_ID = 0x0001;

/** QP1 and its well-known Q_Key (IB_QP1_QKEY); the P_Key every RoCE port has at index 0. */
export const GSI_QPN = 1;
export const GSI_QKEY = 0x80010000;
export const DEFAULT_PKEY = 0xffff;

/** The 24-byte header, field by field (names from tshark's infiniband.mad.*). */
export const MAD_HEADER = {
  baseVersion: uint(0, 8, 0, "infiniband.mad.baseversion"),
  mgmtClass: uint(1, 8, 0, "infiniband.mad.mgmtclass"),
  classVersion: uint(2, 8, 0, "infiniband.mad.classversion"),
  method: uint(3, 8, 0, "infiniband.mad.method"),
  status: uint(4, 16, 0, "infiniband.mad.status"),
  classSpecific: uint(6, 16, 0, "infiniband.mad.classspecific"),
  transactionId: u64(8, "infiniband.mad.transactionid"),
  attributeId: uint(16, 16, 0, "infiniband.mad.attributeid"),
  /** ib_mad_hdr.resv: Linux writes 0 and ignores it; kept so parse then emit gives the same bytes */
  reserved: uint(18, 16),
  attributeModifier: uint(20, 32, 0, "infiniband.mad.attributemodifier"),
} as const;
export type MadHeader = RecordOf<typeof MAD_HEADER>;

export const MAD_ERRORS = [
  "bad_length", "bad_base_version", "bad_class", "bad_class_version", "bad_method", "unknown_attribute",
] as const;
export type MadErrorCode = (typeof MAD_ERRORS)[number];

/** A MAD that breaks a rule; `code` says which. Parsing throws nothing else. */
export class MadError extends Error {
  override name = "MadError";
  constructor(readonly code: MadErrorCode, detail: string) {
    super(`MAD ${code}: ${detail}`);
  }
}

/** Parses the common header of a 256-byte MAD; `data` is a view of the 232 bytes after it. */
export function parseMad(b: Uint8Array): { hdr: MadHeader; data: Uint8Array } {
  if (!(b instanceof Uint8Array) || b.length !== MAD_SIZE) {
    throw new MadError("bad_length", `${b instanceof Uint8Array ? b.length : typeof b} bytes, a MAD has ${MAD_SIZE}`);
  }
  if (b[0] !== MGMT_BASE_VERSION) throw new MadError("bad_base_version", `base version ${b[0]}, expected ${MGMT_BASE_VERSION}`);
  return { hdr: readRecord(MAD_HEADER, b, 0), data: b.subarray(MAD_HDR_SIZE) };
}

/** A header with Linux's defaults (base version 1, everything else 0) and `fields` over them. */
export function madHeader(fields: Partial<MadHeader>): MadHeader {
  return { ...blankRecord(MAD_HEADER), baseVersion: MGMT_BASE_VERSION, ...fields };
}

/** Builds a 256-byte MAD: the header, then `data` (at most 232 bytes, the rest zero). */
export function emitMad(hdr: MadHeader, data?: Uint8Array): Uint8Array {
  if (hdr.baseVersion !== MGMT_BASE_VERSION) throw new RangeError(`base version ${hdr.baseVersion}`);
  if (data && data.length > MAD_DATA_SIZE) throw new RangeError(`MAD data of ${data.length} bytes, at most ${MAD_DATA_SIZE}`);
  const b = new Uint8Array(MAD_SIZE);
  writeRecord(MAD_HEADER, hdr, b, 0);
  if (data) b.set(data, MAD_HDR_SIZE);
  return b;
}

export function isResponseMethod(method: number): boolean {
  return (method & MadMethod.RESP) !== 0 || method === MadMethod.TRAP_REPRESS;
}

/**
 * What Linux's MAD layer sends back for a Get or Set that no agent registered for
 * (mad.c generate_unmatched_resp): the same MAD as a GetResp with status
 * "unsupported method/attribute combination". Anything else gets no answer
 * (undefined): unmatched Sends and responses are dropped.
 */
export function unmatchedResponse(mad: Uint8Array): Uint8Array | undefined {
  const { hdr, data } = parseMad(mad);
  if (hdr.method !== MadMethod.GET && hdr.method !== MadMethod.SET) return undefined;
  let status: number = MadStatus.UNSUPPORTED_METHOD_ATTRIB;
  if (hdr.mgmtClass === MgmtClass.SUBN_DIRECTED_ROUTE) status |= SMP_DIRECTION;
  return emitMad({ ...hdr, method: MadMethod.GET_RESP, status }, data);
}

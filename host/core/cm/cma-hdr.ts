// What the RDMA CM adds to IB CM for IP addressing (drivers/infiniband/core/
// cma.c; IBTA Annex A11): the port spaces and the service IDs made from them,
// and the 36-byte header at the front of a REQ's or SIDR_REQ's private data
// (struct cma_hdr: version, IP version in the high nibble, the source port,
// then source and destination addresses). GIDs of IP addresses are IPv4-mapped
// for IPv4 (rdma_ip2gid). Parse is strict and throws CmaHdrError only.
import { parseIp } from "../net/addr.js";
import { addressToGid } from "../tunnel/frames.js";
import { gidToAddress } from "../net/gid.js";
import { bytes, readRecord, uint, writeRecord, type RecordOf } from "./iba-fields.js";

/** enum rdma_ucm_port_space (rdma_cma.h): the 16 bits above the port in a service ID. */
export const PortSpace = { IPOIB: 0x0002, IB: 0x013f, TCP: 0x0106, UDP: 0x0111 } as const;
export type PortSpace = (typeof PortSpace)[keyof typeof PortSpace];

/** AF_IB service IDs (rdma_cma.h RDMA_IB_IP_PS_*): the IP port spaces seen as IB service IDs. */
export const RDMA_IB_IP_PS_MASK = 0xffffffffffff0000n;
export const RDMA_IB_IP_PS_TCP = 0x0000000001060000n;
export const RDMA_IB_IP_PS_UDP = 0x0000000001110000n;
export const RDMA_IB_IP_PS_IB = 0x00000000013f0000n;
/** ib_cm.h IB_CMA_SERVICE_ID / _MASK: the range the RDMA CM's service IDs live in. */
export const IB_CMA_SERVICE_ID = 0x0000000001000000n;
export const IB_CMA_SERVICE_ID_MASK = 0xffffffffff000000n;

/** The Q_Key rdma_cm gives UD QPs of RDMA_PS_UDP and RDMA_PS_IB (rdma_cma.h RDMA_UDP_QKEY). */
export const RDMA_UDP_QKEY = 0x01234567;

/** rdma_get_service_id for an IP address: port space << 16 + port. */
export function serviceId(ps: number, port: number): bigint {
  if (!Number.isInteger(ps) || ps < 0 || ps > 0xffff || !Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new RangeError(`port space ${ps} or port ${port} out of range`);
  }
  return (BigInt(ps) << 16n) + BigInt(port);
}

/** rdma_ps_from_service_id and cma_port_from_service_id. */
export function splitServiceId(sid: bigint): { ps: number; port: number } {
  return { ps: Number((sid >> 16n) & 0xffffn), port: Number(sid & 0xffffn) };
}

export const CMA_VERSION = 0x00;
export const CMA_HDR_SIZE = 36;

/** struct cma_hdr; tshark shows it as infiniband.cm.req.ip_cm.* (the version byte as major/minor nibbles). */
export const CMA_HDR = {
  cmaVersion: uint(0, 8),
  ipVersion: uint(1, 4, 0, "infiniband.cm.req.ip_cm.ipv"),
  reserved: uint(1, 4, 4, "infiniband.cm.req.ip_cm.reserved"),
  port: uint(2, 16, 0, "infiniband.cm.req.ip_cm.sport"),
  srcAddr: bytes(4, 16),
  dstAddr: bytes(20, 16),
} as const;
type CmaHdrRecord = RecordOf<typeof CMA_HDR>;

/** The header as the RDMA CM reads it: addresses as text. */
export interface CmaHdr {
  ipVersion: 4 | 6;
  /** the active side's source port (its RDMA CM port, not a UDP port) */
  port: number;
  src: string;
  dst: string;
}

export const CMA_HDR_ERRORS = ["short", "bad_version", "bad_ip_version"] as const;
export type CmaHdrErrorCode = (typeof CMA_HDR_ERRORS)[number];

export class CmaHdrError extends Error {
  override name = "CmaHdrError";
  constructor(readonly code: CmaHdrErrorCode, detail: string) {
    super(`rdma_cm header ${code}: ${detail}`);
  }
}

/**
 * Reads the header at the front of private data. cma_save_ip_info refuses a version
 * other than 0 (EINVAL) and an IP version other than 4 or 6 (EAFNOSUPPORT, AF_IB).
 */
export function parseCmaHdr(pd: Uint8Array): CmaHdr {
  if (pd.length < CMA_HDR_SIZE) throw new CmaHdrError("short", `${pd.length} bytes, the header has ${CMA_HDR_SIZE}`);
  const r = readRecord(CMA_HDR, pd, 0);
  if (r.cmaVersion !== CMA_VERSION) throw new CmaHdrError("bad_version", `version ${r.cmaVersion}`);
  if (r.ipVersion === 4) {
    // struct cma_ip_addr's ip4 variant: three zero words, then the address.
    return { ipVersion: 4, port: r.port, src: v4Text(r.srcAddr), dst: v4Text(r.dstAddr) };
  }
  if (r.ipVersion === 6) return { ipVersion: 6, port: r.port, src: gidToAddress(r.srcAddr), dst: gidToAddress(r.dstAddr) };
  throw new CmaHdrError("bad_ip_version", `IP version ${r.ipVersion}`);
}

function v4Text(b: Uint8Array): string {
  return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
}

/** cma_format_hdr: the header for a connection from src:port to dst (both of one family). */
export function emitCmaHdr(h: { src: string; dst: string; port: number }, out = new Uint8Array(CMA_HDR_SIZE)): Uint8Array {
  const s = parseIp(h.src);
  const d = parseIp(h.dst);
  if (!s || !d || s.version !== d.version) throw new RangeError(`addresses ${h.src} and ${h.dst} are not of one IP family`);
  const rec: Partial<CmaHdrRecord> = { cmaVersion: CMA_VERSION, ipVersion: s.version, port: h.port };
  if (s.version === 4) {
    rec.srcAddr = new Uint8Array(16);
    rec.srcAddr.set(s.bytes, 12);
    rec.dstAddr = new Uint8Array(16);
    rec.dstAddr.set(d.bytes, 12);
  } else {
    rec.srcAddr = s.bytes;
    rec.dstAddr = d.bytes;
  }
  writeRecord(CMA_HDR, rec, out, 0);
  return out;
}

/** rdma_ip2gid: the GID of an IP address (IPv4-mapped for IPv4). Throws RangeError for anything else. */
export function ipToGid(address: string): Uint8Array {
  if (!parseIp(address)) throw new RangeError(`not an IP address: ${JSON.stringify(address)}`);
  return addressToGid(address);
}

/** The IP address a GID stands for (dotted IPv4 for IPv4-mapped GIDs). */
export function gidToIp(gid: Uint8Array): string {
  return gidToAddress(gid);
}

/**
 * True for 0.0.0.0 and :: (cma_zero_addr). Linux also counts loopback addresses as "any"
 * (cma_any_addr); here they are ordinary addresses, because softroce devices on one
 * machine are told apart by 127.0.0.x.
 */
export function isZeroAddress(address: string): boolean {
  const ip = parseIp(address);
  return !!ip && ip.bytes.every((x) => x === 0);
}

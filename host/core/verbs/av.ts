// ibv_ah_attr <-> the 64-byte address vector record.
import { Av } from "./abi.js";
import { formatGid, parseGid } from "../net/gid.js";
import { ROCE_V2_PORT } from "../net/datagram.js";
import type { DeviceMemory } from "./memory.js";

/** ibv_global_route */
export interface GlobalRoute {
  /** destination GID, text ("::ffff:10.0.0.2") or 16 bytes */
  dgid: string | Uint8Array;
  flowLabel?: number;
  sgidIndex?: number;
  hopLimit?: number;
  trafficClass?: number;
}

/** ibv_ah_attr (RoCE needs grh / isGlobal) */
export interface AhAttr {
  grh?: GlobalRoute;
  /** defaults to true when grh is given */
  isGlobal?: boolean | number;
  dlid?: number;
  sl?: number;
  srcPathBits?: number;
  staticRate?: number;
  portNum?: number;
  /** UDP destination port (softroce extension; default 4791) */
  destPort?: number;
}

export interface AhAttrOut {
  grh: { dgid: string; flowLabel: number; sgidIndex: number; hopLimit: number; trafficClass: number };
  isGlobal: number;
  dlid: number;
  sl: number;
  srcPathBits: number;
  staticRate: number;
  portNum: number;
  destPort: number;
}

function u(v: number | undefined, max: number, what: string): number {
  const x = v ?? 0;
  if (!Number.isInteger(x) || x < 0 || x > max) throw new RangeError(`${what} out of range: ${v}`);
  return x;
}

/** Writes `a` at `p`; throws RangeError for malformed fields (callers map it to EINVAL). */
export function writeAv(m: DeviceMemory, p: number, a: AhAttr): void {
  m.fill(p, Av.SIZE);
  if (a.grh) m.u8.set(parseGid(a.grh.dgid), p + Av.DGID);
  m.setU32(p + Av.FLOW_LABEL, u(a.grh?.flowLabel, 0xffffffff, "flowLabel"));
  m.setU32(p + Av.SGID_INDEX, u(a.grh?.sgidIndex, 0xffffffff, "sgidIndex"));
  m.setU32(p + Av.HOP_LIMIT, u(a.grh?.hopLimit, 0xffffffff, "hopLimit"));
  m.setU32(p + Av.TRAFFIC_CLASS, u(a.grh?.trafficClass, 0xffffffff, "trafficClass"));
  m.setU32(p + Av.SL, u(a.sl, 15, "sl"));
  m.setU32(p + Av.PORT_NUM, u(a.portNum ?? 1, 0xff, "portNum"));
  m.setU32(p + Av.IS_GLOBAL, (a.isGlobal ?? a.grh !== undefined) ? 1 : 0);
  m.setU32(p + Av.STATIC_RATE, u(a.staticRate, 0xff, "staticRate"));
  m.setU32(p + Av.DLID, u(a.dlid, 0xffff, "dlid"));
  m.setU32(p + Av.SRC_PATH_BITS, u(a.srcPathBits, 0x7f, "srcPathBits"));
  m.setU32(p + Av.DEST_PORT, u(a.destPort, 0xffff, "destPort"));
}

export function readAv(m: DeviceMemory, p: number): AhAttrOut {
  return {
    grh: {
      dgid: formatGid(m.u8.slice(p + Av.DGID, p + Av.DGID + 16)),
      flowLabel: m.u32(p + Av.FLOW_LABEL),
      sgidIndex: m.u32(p + Av.SGID_INDEX),
      hopLimit: m.u32(p + Av.HOP_LIMIT),
      trafficClass: m.u32(p + Av.TRAFFIC_CLASS),
    },
    isGlobal: m.u32(p + Av.IS_GLOBAL),
    dlid: m.u32(p + Av.DLID),
    sl: m.u32(p + Av.SL),
    srcPathBits: m.u32(p + Av.SRC_PATH_BITS),
    staticRate: m.u32(p + Av.STATIC_RATE),
    portNum: m.u32(p + Av.PORT_NUM),
    destPort: m.u32(p + Av.DEST_PORT) || ROCE_V2_PORT,
  };
}

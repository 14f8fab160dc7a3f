// Address handle (ibv_ah): where UD sends go; and the address a UD receive came
// from, as ibv_init_ah_from_wc reads it from the completion and the GRH area.
import { AhRec } from "./abi.js";
import { readAv, writeAv, type AhAttr, type AhAttrOut } from "./av.js";
import type { WorkCompletion } from "./cq.js";
import type { Device } from "./device.js";
import { WcFlags } from "./enums.js";
import { check, fail } from "./errors.js";
import type { ProtectionDomain } from "./pd.js";
import { formatGid, isMulticastGid, v4MappedGid } from "../net/gid.js";

export type { AhAttr } from "./av.js";

export class AddressHandle {
  private destroyed = false;

  private constructor(readonly pd: ProtectionDomain, readonly handle: number) {}

  static create(pd: ProtectionDomain, attr: AhAttr): AddressHandle {
    const d = pd.device;
    const args = d.core.dev_args();
    try {
      writeAv(d.mem, args, attr);
    } catch (e) {
      fail("ibv_create_ah", "EINVAL", (e as Error).message);
    }
    const h = check("ibv_create_ah", d.call(() => d.core.ah_create(pd.handle)));
    return new AddressHandle(pd, h);
  }

  /** The address vector as stored. */
  query(): AhAttrOut {
    const d = this.pd.device;
    const rec = d.core.ah_ptr(this.handle);
    if (!rec) fail("ibv_query_ah", "EINVAL", "AH destroyed");
    return readAv(d.mem, rec + AhRec.AV);
  }

  /** ibv_destroy_ah. A second call does nothing. */
  destroy(): void {
    if (this.destroyed) return;
    const d = this.pd.device;
    check("ibv_destroy_ah", d.call(() => d.core.ah_destroy(this.handle)));
    this.destroyed = true;
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }
}

/** The 40 bytes a UD receive buffer starts with (struct ibv_grh). */
export const GRH_SIZE = 40;

/** What a UD receive's GRH area says about the datagram (both GIDs as 16 bytes, IPv4 addresses v4-mapped). */
export interface RecvGrh {
  version: 4 | 6;
  sgid: Uint8Array;
  dgid: Uint8Array;
  hopLimit: number;
  trafficClass: number;
  /** IPv6's flow label; 0 for IPv4 (the area's first word, which rxe leaves zero) */
  flowLabel: number;
}

const IPPROTO_UDP = 17;

/**
 * The GRH area as rxe fills it for RoCEv2 (union rdma_network_hdr): the IPv6 header as received, or 20
 * zero bytes then the IPv4 header. undefined when it is neither (too short, another version, or an
 * IPv6 next header other than UDP: RoCEv1, which this device does not speak).
 */
export function parseRecvGrh(grh: Uint8Array): RecvGrh | undefined {
  if (grh.length < GRH_SIZE) return undefined;
  if (grh[0]! >> 4 === 6) {
    if (grh[6] !== IPPROTO_UDP) return undefined;
    return {
      version: 6, sgid: grh.slice(8, 24), dgid: grh.slice(24, 40), hopLimit: grh[7]!,
      trafficClass: ((grh[0]! & 0x0f) << 4) | (grh[1]! >> 4), flowLabel: ((grh[1]! & 0x0f) << 16) | (grh[2]! << 8) | grh[3]!,
    };
  }
  const ip = 20;
  if (grh[ip]! >> 4 !== 4) return undefined;
  return { version: 4, sgid: v4MappedGid(grh, ip + 12), dgid: v4MappedGid(grh, ip + 16), hopLimit: grh[ip + 8]!, trafficClass: grh[ip + 1]!, flowLabel: 0 };
}

/**
 * ibv_init_ah_from_wc: the address to answer a UD receive at — the sender's GID as the destination, the
 * GID the datagram was sent to as the source (its index in the port's table), the GRH's hop limit,
 * traffic class and flow label, the completion's SL and path bits. `grh` is the receive buffer's first
 * 40 bytes. EINVAL for a multicast destination (no table entry to answer from), EPROTONOSUPPORT for a
 * GRH area that is neither IPv4 nor RoCEv2 IPv6, ENOENT when the destination GID is not in the table.
 * RoCE has no LIDs; a completion without WcFlags.GRH gives an attribute without a GRH, as in libibverbs.
 */
export function initAhFromWc(device: Device, portNum: number, wc: WorkCompletion, grh: Uint8Array): AhAttr {
  const verb = "ibv_init_ah_from_wc";
  const attr: AhAttr = { dlid: wc.slid, sl: wc.sl, srcPathBits: wc.dlidPathBits, portNum, isGlobal: false };
  if (!(wc.wcFlags & WcFlags.GRH)) return attr;
  const g = parseRecvGrh(grh);
  if (!g) fail(verb, "EPROTONOSUPPORT", "the GRH area is neither an IPv4 nor a RoCEv2 IPv6 header");
  if (isMulticastGid(g.dgid)) fail(verb, "EINVAL", "a multicast destination has no GID table entry to answer from");
  const dgid = formatGid(g.dgid);
  let sgidIndex = -1;
  for (let i = 0; i < device.gidTableSize && sgidIndex < 0; i++) if (device.queryGid(i, portNum) === dgid) sgidIndex = i;
  if (sgidIndex < 0) fail(verb, "ENOENT", `GID ${dgid} is not in port ${portNum}'s table`);
  return { ...attr, isGlobal: true, grh: { dgid: g.sgid, sgidIndex, hopLimit: g.hopLimit, trafficClass: g.trafficClass, flowLabel: g.flowLabel } };
}

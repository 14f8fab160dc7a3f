// Multicast groups (rxe_mcast.c): ibv_attach_mcast / ibv_detach_mcast tie UD
// QPs to a multicast GID; a datagram sent to QPN 0xFFFFFF at that GID's address
// goes to every QP attached (transport/net.ts). A table of max_mcast_grp groups
// carved at open, each with room for max_mcast_qp_attach QP handles. An attached
// QP is in use (ib_attach_mcast takes qp->usecnt): destroying it is EBUSY.
import { EINVAL, ENOMEM } from "../mem/errno";
import { useDec, useInc } from "../mem/pool";
import { QPT_UD } from "./enums";
import { qpFind, QP_TYPE } from "./qp";

import { MULTICAST_QPN } from "../abi/net";
/** BTH destination QP of a multicast datagram (IB_MULTICAST_QPN), from the ABI schema. */
export { MULTICAST_QPN };

const G_GID: usize = 0; // 16 bytes, network order
const G_COUNT: usize = 16; // u32 QPs attached, 0 = free group
const G_QPS: usize = 32; // u32 QP handles

let groups: usize = 0;
let nGroups: u32 = 0;
let perGroup: u32 = 0;
let groupSize: u32 = 0;

/** Bytes the table takes for `n` groups of `attach` QPs. */
export function mcastBytes(n: u32, attach: u32): u64 { return <u64>n * <u64>((<u32>G_QPS + 4 * attach + 15) & ~15); }

export function mcastInit(base: usize, n: u32, attach: u32): void {
  groups = base;
  nGroups = n;
  perGroup = attach;
  groupSize = (<u32>G_QPS + 4 * attach + 15) & ~15;
  memory.fill(base, 0, <usize>mcastBytes(n, attach));
}

@inline function groupAt(i: u32): usize { return groups + <usize>i * groupSize; }

/** A multicast GID: IPv6 ff00::/8, or IPv4-mapped 224.0.0.0/4 (rdma_is_multicast_addr). */
export function gidIsMulticast(gid: usize): bool {
  if (load<u8>(gid) == 0xff) return true;
  const mapped = load<u64>(gid) == 0 && load<u32>(gid + 8) == 0xffff0000;
  return mapped && (load<u8>(gid + 12) & 0xf0) == 0xe0;
}

@inline function sameGid(a: usize, b: usize): bool { return load<u64>(a) == load<u64>(b) && load<u64>(a + 8) == load<u64>(b + 8); }

/** The group of `gid`, or 0. */
export function mcastFind(gid: usize): usize {
  for (let i: u32 = 0; i < nGroups; i++) {
    const g = groupAt(i);
    if (load<u32>(g + G_COUNT) && sameGid(g + G_GID, gid)) return g;
  }
  return 0;
}

/** QPs attached to group `g`, and the handle of the i-th. */
@inline export function mcastCount(g: usize): u32 { return load<u32>(g + G_COUNT); }
@inline export function mcastQp(g: usize, i: u32): u32 { return load<u32>(g + G_QPS + (<usize>i << 2)); }

/** ibv_attach_mcast: 0, -EINVAL (not UD, not a multicast GID), -ENOMEM (no group or no room left). */
export function mcastAttach(qph: u32, gid: usize): i32 {
  const q = qpFind(qph);
  if (!q || load<u32>(q + QP_TYPE) != QPT_UD || !gidIsMulticast(gid)) return -EINVAL;
  let g = mcastFind(gid);
  if (g) {
    const n = mcastCount(g);
    for (let i: u32 = 0; i < n; i++) if (mcastQp(g, i) == qph) return 0; // attached already (rxe: no error)
    if (n >= perGroup) return -ENOMEM;
  } else {
    for (let i: u32 = 0; i < nGroups && !g; i++) if (!load<u32>(groupAt(i) + G_COUNT)) g = groupAt(i);
    if (!g || perGroup == 0) return -ENOMEM;
    memory.copy(g + G_GID, gid, 16);
  }
  const n = mcastCount(g);
  store<u32>(g + G_QPS + (<usize>n << 2), qph);
  store<u32>(g + G_COUNT, n + 1);
  useInc(q);
  return 0;
}

/** ibv_detach_mcast: 0, or -EINVAL when the QP is not attached to the group. */
export function mcastDetach(qph: u32, gid: usize): i32 {
  const q = qpFind(qph);
  if (!q) return -EINVAL;
  const g = mcastFind(gid);
  if (!g) return -EINVAL;
  const n = mcastCount(g);
  for (let i: u32 = 0; i < n; i++) {
    if (mcastQp(g, i) != qph) continue;
    // the last handle fills the hole
    store<u32>(g + G_QPS + (<usize>i << 2), mcastQp(g, n - 1));
    store<u32>(g + G_COUNT, n - 1);
    useDec(q);
    return 0;
  }
  return -EINVAL;
}

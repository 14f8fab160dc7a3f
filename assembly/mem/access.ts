// ibv_access_flags and the rules ibverbs applies to them (IB core
// ib_check_mr_access, rxe RXE_ACCESS_SUPPORTED_MR).
import { EINVAL, EOPNOTSUPP } from "./errno";
import {
  ACCESS_LOCAL_WRITE, ACCESS_REMOTE_WRITE, ACCESS_REMOTE_READ, ACCESS_REMOTE_ATOMIC, ACCESS_MW_BIND,
  ACCESS_ON_DEMAND, ACCESS_FLUSH_GLOBAL, ACCESS_FLUSH_PERSISTENT,
} from "../abi/enums";

// ABI constants: generated from abi/schema.json into assembly/abi/enums.ts; re-exported for this file's importers.
export {
  ACCESS_LOCAL_WRITE, ACCESS_REMOTE_WRITE, ACCESS_REMOTE_READ, ACCESS_REMOTE_ATOMIC, ACCESS_MW_BIND,
  ACCESS_ZERO_BASED, ACCESS_ON_DEMAND, ACCESS_HUGETLB, ACCESS_FLUSH_GLOBAL, ACCESS_FLUSH_PERSISTENT,
} from "../abi/enums";
/** IBV_ACCESS_OPTIONAL_RANGE: hints (relaxed ordering, 1 << 20) a device may ignore. */
export const ACCESS_OPTIONAL_RANGE: u32 = 0x3ff00000;

/** Every bit the verbs ABI defines. */
export const ACCESS_DEFINED: u32 = ((ACCESS_FLUSH_PERSISTENT << 1) - 1) | ACCESS_OPTIONAL_RANGE;
/** What this device implements for MRs (rxe's set minus on-demand paging). */
export const ACCESS_SUPPORTED_MR: u32 =
  ACCESS_LOCAL_WRITE | ACCESS_REMOTE_WRITE | ACCESS_REMOTE_READ | ACCESS_REMOTE_ATOMIC |
  ACCESS_MW_BIND | ACCESS_FLUSH_GLOBAL | ACCESS_FLUSH_PERSISTENT | ACCESS_OPTIONAL_RANGE;
/** qp_access_flags: only the remote bits mean anything on a QP. */
export const ACCESS_QP_DEFINED: u32 = ACCESS_DEFINED;

/** 0 when `flags` may register an MR, else -errno, in the order the kernel checks. */
export function mrAccessCheck(flags: u32): i32 {
  if (flags & ~ACCESS_DEFINED) return -EINVAL; // unknown bit (ib_check_mr_access)
  if (flags & ACCESS_ON_DEMAND) return -EOPNOTSUPP; // no ODP capability
  // Remote write or atomic needs local write (IBA C10-29.1, ib_check_mr_access).
  if ((flags & (ACCESS_REMOTE_WRITE | ACCESS_REMOTE_ATOMIC)) != 0 && (flags & ACCESS_LOCAL_WRITE) == 0) return -EINVAL;
  if (flags & ~ACCESS_SUPPORTED_MR) return -EOPNOTSUPP; // rxe_reg_user_mr: ZERO_BASED, HUGETLB
  return 0;
}

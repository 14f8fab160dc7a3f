// QP1, the GSI (General Services Interface): the UD QP every port has for MADs
// (the CM, ClassPortInfo queries). As rxe: one per port, created like a UD QP
// but numbered 1 whatever its slot, its Q_Key the well-known 0x80010000 (set at
// create, and settable by its owner without the privilege other QPs need for a
// Q_Key with bit 31), P_Key index 0. Inside the engines it is a UD QP; only the
// QPN lookup and the Q_Key rule look here. RoCE has no QP0 (SMI): EOPNOTSUPP.
import { EINVAL, EOPNOTSUPP } from "../mem/errno";
import { QPT_GSI, QPT_SMI, QPT_UD } from "./enums";
import { qpCreate, qpFind, ATTR_QKEY, INIT_QP_TYPE, QP_ATTR, QP_NUM } from "./qp";
import { gsiSlot, gsiSet, GSI_QKEY, GSI_QPN } from "./gsi_slot";
import { qpSportInit } from "./sport";

export { GSI_QPN, GSI_QKEY, gsiSlot, isGsi } from "./gsi_slot";

/**
 * ibv_create_qp for the SMI and GSI types: the GSI as a UD QP numbered 1 with the GSI Q_Key;
 * a second GSI is EINVAL (rxe_qp_chk_init: "GSI QP exists"); the SMI is EOPNOTSUPP.
 */
export function gsiCreate(pdh: u32, init: usize): i32 {
  const type = load<u32>(init + INIT_QP_TYPE);
  if (type == QPT_SMI) return -EOPNOTSUPP;
  if (type != QPT_GSI) return -EINVAL;
  if (gsiSlot()) return -EINVAL;
  store<u32>(init + INIT_QP_TYPE, QPT_UD);
  const h = qpCreate(pdh, init);
  store<u32>(init + INIT_QP_TYPE, QPT_GSI);
  if (h < 0) return h;
  const q = qpFind(<u32>h);
  store<u32>(q + QP_NUM, GSI_QPN);
  qpSportInit(q); // from QPN 1: 0xD872, as rxe's QP1
  store<u32>(q + QP_ATTR + ATTR_QKEY, GSI_QKEY);
  gsiSet(q);
  return h;
}

/** The QP record is about to be freed: the port has no GSI after it. */
export function gsiForget(q: usize): void {
  if (q == gsiSlot()) gsiSet(0);
}

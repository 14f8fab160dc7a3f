// Which QP record is the port's GSI (QP1): a leaf the QP table (qp.ts, the QPN lookup) and the
// GSI's create/destroy (gsi.ts) both read, so neither imports the other for it.

export const GSI_QPN: u32 = 1;
/** IB_QP1_QKEY */
export const GSI_QKEY: u32 = 0x80010000;

let slot: usize = 0;

/** The GSI's QP record, 0 while the port has none. */
@inline export function gsiSlot(): usize { return slot; }
/** Records the GSI's QP record (0: none). */
export function gsiSet(q: usize): void { slot = q; }

/** True when `q` is the port's GSI. */
@inline export function isGsi(q: usize): bool { return q != 0 && q == slot; }

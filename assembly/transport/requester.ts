// RC/UC/UD requester (rxe_req.c): turns send WQEs into request packets.
// Stub until the requester lands (helper R1).

/** Emits up to `budget` packets for QP `qp`; returns how many it emitted. */
export function requesterSend(qp: usize, budget: i32): i32 {
  return 0;
}

/** The RNR timer of `qp` fired: resume sending from the NAKed PSN. */
export function rnrTimeout(qp: usize): void {}

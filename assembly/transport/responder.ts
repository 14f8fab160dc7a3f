// RC/UC/UD responder (rxe_resp.c): executes requests and answers them.
// Stub until the responder lands (helper R2).

/** A validated request packet for `qp` (pkt: the packet-info record). */
export function responderRecv(qp: usize, pkt: usize): void {}

/** Sends pending ACKs / READ responses of `qp`, up to `budget` packets; returns how many. */
export function responderSend(qp: usize, budget: i32): i32 {
  return 0;
}

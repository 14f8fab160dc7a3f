// RC completer (rxe_comp.c): ACKs, NAKs, READ responses and atomic ACKs.
// Stub until the completer lands (helper R1).

/** A validated response packet for `qp` (pkt: the packet-info record). */
export function completerRecv(qp: usize, pkt: usize): void {}

/** The retransmission timer of `qp` fired. */
export function retransmitTimeout(qp: usize): void {}

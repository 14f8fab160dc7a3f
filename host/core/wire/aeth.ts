// The AETH syndrome on the host side (IBA 9.7.5.1): bits 6..5 say ACK, RNR NAK or NAK, bits 4..0
// the credit count, the RNR timer code or the NAK code. The core's own vocabulary lives in
// assembly/wire/aeth.ts; this is the one home of the host's copy (decoder, tests, tools).

export const AethType = { ACK: 0, RNR_NAK: 1, RESERVED: 2, NAK: 3 } as const;

/** ACK with no credit limit (what rxe sends). */
export const AETH_ACK = 0x1f;
/** NAK codes, as whole syndromes. */
export const AETH_NAK_SEQ = 0x60;
export const AETH_NAK_INV = 0x61;
export const AETH_NAK_ACC = 0x62;
export const AETH_NAK_OP = 0x63;
export const AETH_NAK_INV_RD = 0x64;

/** The syndrome's type (AethType). */
export function aethType(syndrome: number): number {
  return (syndrome >> 5) & 3;
}

/** The syndrome's low five bits: credits, RNR timer code or NAK code. */
export function aethCode(syndrome: number): number {
  return syndrome & 0x1f;
}

/** An RNR NAK syndrome with its timer code. */
export function isRnrNak(syndrome: number): boolean {
  return aethType(syndrome) === AethType.RNR_NAK;
}

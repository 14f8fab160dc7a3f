// Is this UDP payload shaped like RoCEv2? The gateway forwards nothing else, so
// that it cannot be used to emit arbitrary UDP (amplification, probing): BTH
// version 0, an opcode the device knows, headers + pad + ICRC that fit, a
// payload (when the opcode has one) in whole 4-byte words, and no payload when
// it has none. The opcode table comes from the core (host/core/wire/codec.ts).
import { OpMask } from "../core/wire/index.js";

export interface OpcodeShape {
  /** BTH + extension headers, bytes */
  length: number;
  mask: number;
}

export const BTH_LEN = 12;
export const ICRC_LEN = 4;

export type ShapeVerdict = { ok: true; opcode: number; destQp: number; srcQp: number | undefined } | { ok: false; why: string };

/**
 * The per-opcode flags of the relay's shape table (relay.c OPF_*, given back by its `constants()`):
 * what shape_ok needs (PAYLOAD), and what its answer poll needs — a request (REQ; with AckReq set
 * its peer answers at once), one answered at once whatever its AckReq (ANSWERED: READ, atomic), and
 * a bare ACK, after which the answer may still come (ACK_ONLY: a response without payload or
 * AtomicAckETH).
 */
export const RelayOp = { PAYLOAD: 1, REQ: 2, ANSWERED: 4, ACK_ONLY: 8 } as const;

export function relayOpFlags(mask: number): number {
  let f = 0;
  if (mask & OpMask.PAYLOAD) f |= RelayOp.PAYLOAD;
  if (mask & OpMask.REQ) f |= RelayOp.REQ;
  if (mask & OpMask.REQ && mask & (OpMask.READ | OpMask.ATMETH)) f |= RelayOp.ANSWERED;
  if (mask & OpMask.RESP && !(mask & (OpMask.PAYLOAD | OpMask.ATMACK))) f |= RelayOp.ACK_ONLY;
  return f;
}

/** `table[op]` is undefined for unknown opcodes. `dethOffset[op]` is where DETH starts, when present. */
export class RoceShape {
  constructor(
    private readonly table: readonly (OpcodeShape | undefined)[],
    private readonly dethOffset: readonly (number | undefined)[],
    readonly maxPayload: number,
  ) {}

  /** The destination QP of the last payload `inspect` accepted. */
  destQp = 0;
  /** Its DETH source QP (UD), or -1 when the opcode has no DETH. */
  srcQp = -1;
  /**
   * The last payload `inspect` accepted is a request its peer answers at once: AckReq set in the
   * BTH, an RDMA READ or an atomic (what a gateway's busy poll waits for).
   */
  asksReply = false;
  /** Why the last payload `inspect` refused was refused. */
  why = "";

  check(p: Uint8Array): ShapeVerdict {
    if (!this.inspect(p, 0, p.length)) return { ok: false, why: this.why };
    return { ok: true, opcode: p[0]!, destQp: this.destQp, srcQp: this.srcQp < 0 ? undefined : this.srcQp };
  }

  /**
   * `check` of the payload `b[at, at + len)` without a verdict object (the gateway's per-datagram
   * path): true with `destQp` and `srcQp` set, or false with `why`.
   */
  inspect(b: Uint8Array, at: number, len: number): boolean {
    if (len < BTH_LEN + ICRC_LEN) return this.no(`${len} bytes, shorter than BTH + ICRC`);
    if (len > this.maxPayload) return this.no(`${len} bytes, more than ${this.maxPayload}`);
    const op = b[at]!;
    const shape = this.table[op];
    if (!shape) return this.no(`unknown opcode 0x${op.toString(16).padStart(2, "0")}`);
    const tver = b[at + 1]! & 0x0f;
    if (tver !== 0) return this.no(`BTH transport version ${tver}`);
    const pad = (b[at + 1]! >> 4) & 3;
    const rest = len - shape.length - ICRC_LEN;
    if (rest < pad) return this.no(`${len} bytes do not hold the opcode's headers, pad and ICRC`);
    if ((shape.mask & OpMask.PAYLOAD) === 0) {
      if (rest !== 0) return this.no(`${rest} payload bytes on an opcode without payload`);
    } else if (rest % 4 !== 0) {
      return this.no(`payload + pad of ${rest} bytes is not whole 4-byte words`);
    }
    const f = relayOpFlags(shape.mask);
    this.asksReply = (f & RelayOp.REQ) !== 0 && ((b[at + 8]! & 0x80) !== 0 || (f & RelayOp.ANSWERED) !== 0);
    this.destQp = ((b[at + 5]! << 16) | (b[at + 6]! << 8) | b[at + 7]!) >>> 0;
    const d = this.dethOffset[op];
    this.srcQp = d === undefined ? -1 : ((b[at + d + 5]! << 16) | (b[at + d + 6]! << 8) | b[at + d + 7]!) >>> 0;
    return true;
  }

  /**
   * The same rules as data for the native relay (relay.c's shape_ok): per opcode its headers'
   * length (-1: unknown), its RelayOp flags, and where its DETH starts (-1: none).
   */
  relayTable(): Int16Array {
    const t = new Int16Array(768);
    for (let op = 0; op < 256; op++) {
      const s = this.table[op];
      t[op] = s ? s.length : -1;
      t[256 + op] = s ? relayOpFlags(s.mask) : 0;
      t[512 + op] = this.dethOffset[op] ?? -1;
    }
    return t;
  }

  private no(why: string): false {
    this.why = why;
    return false;
  }
}

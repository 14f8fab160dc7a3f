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

/** `table[op]` is undefined for unknown opcodes. `dethOffset[op]` is where DETH starts, when present. */
export class RoceShape {
  constructor(
    private readonly table: readonly (OpcodeShape | undefined)[],
    private readonly dethOffset: readonly (number | undefined)[],
    readonly maxPayload: number,
  ) {}

  check(p: Uint8Array): ShapeVerdict {
    if (p.length < BTH_LEN + ICRC_LEN) return { ok: false, why: `${p.length} bytes, shorter than BTH + ICRC` };
    if (p.length > this.maxPayload) return { ok: false, why: `${p.length} bytes, more than ${this.maxPayload}` };
    const op = p[0]!;
    const shape = this.table[op];
    if (!shape) return { ok: false, why: `unknown opcode 0x${op.toString(16).padStart(2, "0")}` };
    const tver = p[1]! & 0x0f;
    if (tver !== 0) return { ok: false, why: `BTH transport version ${tver}` };
    const pad = (p[1]! >> 4) & 3;
    const rest = p.length - shape.length - ICRC_LEN;
    if (rest < pad) return { ok: false, why: `${p.length} bytes do not hold the opcode's headers, pad and ICRC` };
    if ((shape.mask & OpMask.PAYLOAD) === 0) {
      if (rest !== 0) return { ok: false, why: `${rest} payload bytes on an opcode without payload` };
    } else if (rest % 4 !== 0) {
      return { ok: false, why: `payload + pad of ${rest} bytes is not whole 4-byte words` };
    }
    const destQp = ((p[5]! << 16) | (p[6]! << 8) | p[7]!) >>> 0;
    const d = this.dethOffset[op];
    const srcQp = d === undefined ? undefined : ((p[d + 5]! << 16) | (p[d + 6]! << 8) | p[d + 7]!) >>> 0;
    return { ok: true, opcode: op, destQp, srcQp };
  }
}

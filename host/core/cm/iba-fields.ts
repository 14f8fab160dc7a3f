// IBTA record layouts as tables. A field is written the way the spec's tables
// (and Linux's include/rdma/ibta_vol1_c12.h) write it: Byte[Bit] and a width,
// bit 0 being the most significant bit of the byte, fields running towards the
// least significant bits and on into the next bytes (big-endian). A layout is an
// object of such fields; the reader and writer below are the only code that
// shifts or masks, so a message file is nothing but its tables.

/** An unsigned field of 1..32 bits. */
export interface UintField {
  readonly kind: "uint";
  /** byte offset of the field's first bit, from the start of the record */
  readonly byte: number;
  /** bit offset within that byte, 0 = most significant */
  readonly bit: number;
  readonly bits: number;
  /** the name tshark gives the field, where it has one */
  readonly wireshark?: string;
}

/** A 64-bit field on a byte boundary (GUIDs, service IDs). */
export interface U64Field {
  readonly kind: "u64";
  readonly byte: number;
  readonly wireshark?: string;
}

/** A run of whole bytes (GIDs, private data, additional information). */
export interface BytesField {
  readonly kind: "bytes";
  readonly byte: number;
  readonly length: number;
  readonly wireshark?: string;
}

export type Field = UintField | U64Field | BytesField;
export type Layout = Readonly<Record<string, Field>>;

type ValueOf<F> = F extends UintField ? number : F extends U64Field ? bigint : Uint8Array;
/** The decoded form of a layout: numbers, bigints and byte arrays by field name. */
export type RecordOf<L extends Layout> = { -readonly [K in keyof L]: ValueOf<L[K]> };

export function uint(byte: number, bits: number, bit = 0, wireshark?: string): UintField {
  return { kind: "uint", byte, bit, bits, wireshark };
}
export function u64(byte: number, wireshark?: string): U64Field {
  return { kind: "u64", byte, wireshark };
}
export function bytes(byte: number, length: number, wireshark?: string): BytesField {
  return { kind: "bytes", byte, length, wireshark };
}

/** First bit after the field (for layout checks). */
export function fieldEnd(f: Field): number {
  switch (f.kind) {
    case "uint": return f.byte * 8 + f.bit + f.bits;
    case "u64": return (f.byte + 8) * 8;
    case "bytes": return (f.byte + f.length) * 8;
  }
}
export function fieldStart(f: Field): number {
  return f.byte * 8 + (f.kind === "uint" ? f.bit : 0);
}

export function readUint(b: Uint8Array, at: number, f: UintField): number {
  let v = 0;
  const p = f.byte * 8 + f.bit;
  // Bit by bit: fields are few and short, and one loop serves every alignment.
  for (let i = 0; i < f.bits; i++) {
    const q = p + i;
    v = v * 2 + ((b[at + (q >> 3)]! >> (7 - (q & 7))) & 1);
  }
  return v;
}

export function writeUint(b: Uint8Array, at: number, f: UintField, value: number): void {
  const p = f.byte * 8 + f.bit;
  for (let i = f.bits - 1, v = value; i >= 0; i--, v = Math.floor(v / 2)) {
    const q = p + i;
    const mask = 1 << (7 - (q & 7));
    const o = at + (q >> 3);
    b[o] = v % 2 ? b[o]! | mask : b[o]! & ~mask;
  }
}

export function readU64(b: Uint8Array, at: number, f: U64Field): bigint {
  let v = 0n;
  for (let i = 0; i < 8; i++) v = (v << 8n) | BigInt(b[at + f.byte + i]!);
  return v;
}

export function writeU64(b: Uint8Array, at: number, f: U64Field, value: bigint): void {
  for (let i = 7, v = value; i >= 0; i--, v >>= 8n) b[at + f.byte + i] = Number(v & 0xffn);
}

/** Decodes every field of `layout` from the record at b[at…]; the caller checked the length. */
export function readRecord<L extends Layout>(layout: L, b: Uint8Array, at: number): RecordOf<L> {
  const out: Record<string, number | bigint | Uint8Array> = {};
  for (const name in layout) {
    const f = layout[name]!;
    out[name] = f.kind === "uint" ? readUint(b, at, f) : f.kind === "u64" ? readU64(b, at, f) : b.slice(at + f.byte, at + f.byte + f.length);
  }
  return out as RecordOf<L>;
}

/**
 * Encodes `rec` into b[at…] (which the caller zeroed: reserved bits stay 0). A value
 * that does not fit its field is a programming error: RangeError, nothing half-written
 * matters because the caller discards the buffer.
 */
export function writeRecord<L extends Layout>(layout: L, rec: Partial<RecordOf<L>>, b: Uint8Array, at: number): void {
  for (const name in layout) {
    const f = layout[name]!;
    const v = (rec as Record<string, unknown>)[name];
    if (v === undefined) continue;
    if (f.kind === "uint") {
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v >= 2 ** f.bits) {
        throw new RangeError(`${name}: ${String(v)} does not fit ${f.bits} bits`);
      }
      writeUint(b, at, f, v);
    } else if (f.kind === "u64") {
      if (typeof v !== "bigint" || v < 0n || v >= 1n << 64n) throw new RangeError(`${name}: ${String(v)} is not a u64`);
      writeU64(b, at, f, v);
    } else {
      if (!(v instanceof Uint8Array) || v.length > f.length) {
        throw new RangeError(`${name}: at most ${f.length} bytes, got ${v instanceof Uint8Array ? v.length : typeof v}`);
      }
      b.set(v, at + f.byte);
    }
  }
}

/** A record of the layout with every field zero (what Linux's zeroed MAD buffers start as). */
export function blankRecord<L extends Layout>(layout: L): RecordOf<L> {
  const out: Record<string, number | bigint | Uint8Array> = {};
  for (const name in layout) {
    const f = layout[name]!;
    out[name] = f.kind === "uint" ? 0 : f.kind === "u64" ? 0n : new Uint8Array(f.length);
  }
  return out as RecordOf<L>;
}

/** Layout sanity: fields inside `sizeBytes`, none overlapping. Returns the problems found. */
export function checkLayout(layout: Layout, sizeBytes: number): string[] {
  const problems: string[] = [];
  const spans = Object.entries(layout).map(([n, f]) => ({ n, s: fieldStart(f), e: fieldEnd(f), f }));
  for (const x of spans) {
    if (x.f.kind === "uint" && (x.f.bits < 1 || x.f.bits > 32 || x.f.bit > 7)) problems.push(`${x.n}: bad width or bit`);
    if (x.s < 0 || x.e > sizeBytes * 8) problems.push(`${x.n}: outside the ${sizeBytes}-byte record`);
  }
  spans.sort((a, b) => a.s - b.s);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i]!.s < spans[i - 1]!.e) problems.push(`${spans[i - 1]!.n} overlaps ${spans[i]!.n}`);
  }
  return problems;
}

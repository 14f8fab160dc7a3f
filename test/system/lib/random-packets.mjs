// Seeded random RoCEv2 packet specs for the cross-check suites: every opcode
// of the core's table (op_valid), IPv4 and IPv6, random header fields and
// payload sizes (0, sizes that need pad, up to 4 KiB) within what each opcode
// allows (no payload without the PAYLOAD bit, exactly 8 bytes for ATOMIC_WRITE).
// Specs use WireCodec.emit's field names.

export const M = {
  RETH: 1 << 0,
  AETH: 1 << 1,
  ATMETH: 1 << 2,
  ATMACK: 1 << 3,
  DETH: 1 << 4,
  IMMDT: 1 << 5,
  IETH: 1 << 6,
  FETH: 1 << 7,
  ATOMIC_WRITE: 1 << 15,
  PAYLOAD: 1 << 16,
};

/** xorshift32 with a fixed seed: the same packets on every run unless SOFTROCE_SEED says otherwise. */
export class Rng {
  constructor(seed) {
    this.s = seed >>> 0 || 1;
  }
  u32() {
    let x = this.s;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  below(n) {
    return this.u32() % n;
  }
  bits(n) {
    return n >= 32 ? this.u32() : this.u32() & ((1 << n) - 1) >>> 0;
  }
  u64() {
    return (BigInt(this.u32()) << 32n) | BigInt(this.u32());
  }
  bytes(n) {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
  pick(list) {
    return list[this.below(list.length)];
  }
}

/** The opcodes the core's table knows, with their masks (raw core exports op_valid/op_mask). */
export function opcodeTable(core) {
  const ops = [];
  for (let op = 0; op < 256; op++) if (core.op_valid(op)) ops.push({ op, mask: core.op_mask(op) >>> 0 });
  return ops;
}

function ipv4(rng) {
  return Array.from(rng.bytes(4)).join(".");
}

function ipv6(rng) {
  const b = rng.bytes(16);
  const groups = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] << 8) | b[i + 1]).toString(16));
  return groups.join(":");
}

function payloadLength(rng, mask) {
  if (mask & M.ATOMIC_WRITE) return 8;
  if (!(mask & M.PAYLOAD)) return 0;
  switch (rng.below(6)) {
    case 0:
      return 0;
    case 1:
      return 1 + rng.below(3); // 1..3: pad 3..1
    case 2:
      return 4 * (1 + rng.below(16)) + rng.below(4);
    case 3:
      return 256 + rng.below(1024);
    case 4:
      return rng.pick([1024, 1023, 1025, 2048, 4093, 4096]);
    default:
      return rng.below(200);
  }
}

/** One random, valid packet spec for opcode `op` and IP version `v`. */
export function randomSpec(rng, { op, mask }, v) {
  const spec = {
    ipVersion: v,
    src: v === 4 ? ipv4(rng) : ipv6(rng),
    dst: v === 4 ? ipv4(rng) : ipv6(rng),
    ttl: 1 + rng.below(255),
    tos: rng.bits(8),
    udpSrcPort: rng.bits(16),
    udpChecksum: 0,
    opcode: op,
    se: rng.bits(1),
    migReq: rng.bits(1),
    tver: 0,
    pkey: rng.bits(16),
    fecn: rng.bits(1),
    becn: rng.bits(1),
    resv6: 0,
    destQp: rng.bits(24),
    ackReq: rng.bits(1),
    resv7: 0,
    psn: rng.bits(24),
    payload: rng.bytes(payloadLength(rng, mask)),
  };
  if (v === 4) {
    spec.ipId = rng.bits(16);
    spec.ipFlags = rng.pick([0, 2]); // never MF: a fragment is not a RoCE packet
    spec.fragOffset = 0;
  } else {
    spec.flowLabel = rng.bits(20);
  }
  if (mask & M.RETH) spec.reth = { va: rng.u64(), rkey: rng.u32(), dmaLength: rng.u32() };
  if (mask & M.AETH) spec.aeth = { syndrome: rng.bits(8), msn: rng.bits(24) };
  if (mask & M.ATMETH) spec.atomicEth = { va: rng.u64(), rkey: rng.u32(), swapAdd: rng.u64(), compare: rng.u64() };
  if (mask & M.ATMACK) spec.atomicAckEth = { origRemoteData: rng.u64() };
  if (mask & M.DETH) spec.deth = { qkey: rng.u32(), srcQp: rng.bits(24) };
  if (mask & M.IMMDT) spec.immDt = rng.u32();
  if (mask & M.IETH) spec.ieth = { rkey: rng.u32() };
  if (mask & M.FETH) spec.feth = rng.u32();
  return spec;
}

/**
 * At least `perPair` specs for every (opcode, IP version), then random ones up
 * to `total`, shuffled deterministically.
 */
export function randomSpecs(rng, table, total, perPair = 3) {
  const specs = [];
  for (const entry of table) for (const v of [4, 6]) for (let i = 0; i < perPair; i++) specs.push(randomSpec(rng, entry, v));
  while (specs.length < total) specs.push(randomSpec(rng, rng.pick(table), rng.pick([4, 6])));
  for (let i = specs.length - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    [specs[i], specs[j]] = [specs[j], specs[i]];
  }
  return specs;
}

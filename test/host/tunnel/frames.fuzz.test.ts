// Seeded fuzzing of the tunnel frame parser (host/core/tunnel/frames.ts), versions 1 and 2:
// valid frames of every kind (DATA, HELLO, ERROR, BATCH of 1..6 datagrams) mutated — bytes
// flipped, cut short, extended, the BATCH count or a record length nudged, spliced with another
// frame. Invariants: parse throws nothing but TunnelFrameError; the gateway's allocation-free reader
// (visitDatagrams) gives the same verdict (error code) and the same datagrams as parseFrame, at either version bound; a frame it accepts re-emits to
// exactly its bytes (emit == what parse accepts); every payload it returns is a view inside the
// frame. FUZZ_PACKETS / 10 frames (2,000 in npm test; `npm run fuzz` runs 100,000); a failure
// names its seed and iteration.
import { describe, expect, it } from "vitest";
import {
  FrameKind, RECORD_ADDRESS_OFF, TunnelFrameError, emitBatch, emitData, emitError, emitHello, parseFrame, recordIpId, recordPort, visitDatagrams,
  TUNNEL_ERRORS, type TunnelFrame,
} from "../../../host/core/tunnel/frames.js";
import { Prng } from "../../../host/core/sim/prng.js";
import { gidToAddress } from "../../../host/core/net/gid.js";

const FRAMES = Math.ceil(Number(process.env.FUZZ_PACKETS ?? 20_000) / 10);
const SEED = Number(process.env.FUZZ_SEED ?? 0x7b47);
const ADDRS = ["10.0.0.1", "192.0.2.7", "2001:db8::1", "::1", "127.0.21.9"];

function payload(rng: Prng): Uint8Array {
  const p = new Uint8Array(16 + 4 * rng.below(20));
  for (let i = 0; i < p.length; i++) p[i] = rng.below(256);
  return p;
}

function validFrame(rng: Prng): Uint8Array {
  const v = 1 + rng.below(2);
  switch (rng.below(5)) {
    case 0:
      return emitData(ADDRS[rng.below(ADDRS.length)]!, 1 + rng.below(65535), rng.below(2) ? 0 : 0xffffffff, [payload(rng)], v);
    case 1: {
      const maxPayload = 16 + rng.below(9000);
      return emitHello({
        version: v, address: ADDRS[rng.below(ADDRS.length)]!, port: 1 + rng.below(65535), ipIdPolicy: 0, dontFragment: rng.below(2) === 1,
        maxPayload, qpnBase: 2 + rng.below(1000), qpnCount: 1 + rng.below(1000), clientId: rng.below(1 << 30),
        ...(v === 2 ? { maxFrame: 24 + maxPayload + rng.below(1 << 20) } : {}),
      });
    }
    case 2:
      return emitError(TUNNEL_ERRORS[rng.below(TUNNEL_ERRORS.length)]!, "x".repeat(rng.below(140)), v);
    default:
      return emitBatch(Array.from({ length: 1 + rng.below(6) }, () => ({
        address: ADDRS[rng.below(ADDRS.length)]!, port: 1 + rng.below(65535), ipId: rng.below(2) ? 0 : 0xffffffff, payload: payload(rng),
      })));
  }
}

function mutate(rng: Prng, b: Uint8Array, other: Uint8Array): Uint8Array {
  let c = b.slice();
  switch (rng.below(6)) {
    case 0: // flip a few bytes
      for (let k = 0, n = 1 + rng.below(4); k < n; k++) c[rng.below(c.length)] = rng.below(256);
      break;
    case 1: // cut short
      c = c.subarray(0, rng.below(c.length + 1));
      break;
    case 2: { // extend
      const e = new Uint8Array(c.length + 1 + rng.below(40));
      e.set(c);
      for (let i = c.length; i < e.length; i++) e[i] = rng.below(256);
      c = e;
      break;
    }
    case 3: // the BATCH count, or DATA's port
      if (c.length >= 4) c[2 + rng.below(2)] ^= 1 << rng.below(8);
      break;
    case 4: // a record's length field somewhere inside
      if (c.length > 8) {
        const at = 4 + rng.below(c.length - 5);
        c[at] = rng.below(2) ? 0 : c[at]! + 1;
        c[at + 1] = rng.below(256);
      }
      break;
    default: { // splice two frames
      const cut = rng.below(c.length + 1);
      const s = new Uint8Array(cut + other.length);
      s.set(c.subarray(0, cut));
      s.set(other, cut);
      c = s;
    }
  }
  return c;
}

function reemit(f: TunnelFrame): Uint8Array {
  switch (f.kind) {
    case FrameKind.DATA:
      return emitData(f.address, f.port, f.ipId, [f.payload], 1); // version patched below
    case FrameKind.HELLO:
      return emitHello(f);
    case FrameKind.ERROR:
      return emitError(TUNNEL_ERRORS[f.code] ?? "none", f.reason);
    case FrameKind.BATCH:
      return emitBatch(f.datagrams);
  }
}

describe("tunnel frame parser fuzz", () => {
  it(`${FRAMES} mutated frames: only TunnelFrameError, and what parses re-emits to the same bytes (seed ${SEED})`, () => {
    const rng = new Prng(SEED);
    const seen = new Map<string, number>();
    let prev = validFrame(rng);
    for (let i = 0; i < FRAMES; i++) {
      const base = validFrame(rng);
      const b = i % 8 === 0 ? base : mutate(rng, base, prev);
      prev = base;
      // the gateway's allocation-free reader: the same verdict, the same datagrams
      const maxVersion = 1 + (i & 1);
      const visited: string[] = [];
      let visitCode = "ok";
      try {
        visitDatagrams(b, maxVersion, (fb, at, payloadAt, len) => {
          // the payload as where it lies in the frame (parseFrame's payloads are views of it too)
          visited.push(`${recordPort(fb, at)} ${gidToAddress(fb, at + RECORD_ADDRESS_OFF)} ${recordIpId(fb, at)} ${fb.byteOffset + payloadAt} ${len}`);
          return true;
        });
      } catch (e) {
        if (!(e instanceof TunnelFrameError)) throw new Error(`seed ${SEED} frame ${i}: visitDatagrams ${String(e)} on ${Buffer.from(b).toString("hex")}`);
        visitCode = e.code;
      }
      let parseCode = "ok";
      let parsed: TunnelFrame | undefined;
      try {
        parsed = parseFrame(b, maxVersion);
      } catch (e) {
        if (e instanceof TunnelFrameError) parseCode = e.code;
      }
      const parsedDatagrams = parsed?.kind === FrameKind.DATA ? [parsed] : parsed?.kind === FrameKind.BATCH ? parsed.datagrams : [];
      const want = parsedDatagrams.map((d) => `${d.port} ${d.address} ${d.ipId} ${d.payload.byteOffset} ${d.payload.length}`);
      if (visitCode !== parseCode || visited.join("|") !== want.join("|")) {
        throw new Error(`seed ${SEED} frame ${i}: visitDatagrams (${visitCode}, ${visited.length}) and parseFrame (${parseCode}, ${want.length}) disagree on ${Buffer.from(b).toString("hex")}`);
      }
      let f: TunnelFrame;
      try {
        f = parseFrame(b);
      } catch (e) {
        if (!(e instanceof TunnelFrameError)) throw new Error(`seed ${SEED} frame ${i}: ${String(e)} on ${Buffer.from(b).toString("hex")}`);
        seen.set(e.code, (seen.get(e.code) ?? 0) + 1);
        continue;
      }
      seen.set(`ok ${f.kind}`, (seen.get(`ok ${f.kind}`) ?? 0) + 1);
      const again = reemit(f);
      if (f.kind === FrameKind.DATA || f.kind === FrameKind.ERROR) again[0] = b[0]!; // both versions share these layouts
      // an ERROR's code outside the table cannot be re-emitted by name: compare all but it
      if (f.kind === FrameKind.ERROR && TUNNEL_ERRORS[f.code] === undefined) again.set(b.subarray(2, 4), 2);
      const same = Buffer.from(again).equals(Buffer.from(b));
      if (!same) throw new Error(`seed ${SEED} frame ${i}: accepted ${Buffer.from(b).toString("hex")} re-emits as ${Buffer.from(again).toString("hex")}`);
      const views = f.kind === FrameKind.DATA ? [f.payload] : f.kind === FrameKind.BATCH ? f.datagrams.map((d) => d.payload) : [];
      for (const p of views) expect(p.buffer === b.buffer && p.byteOffset >= b.byteOffset && p.byteOffset + p.length <= b.byteOffset + b.length).toBe(true);
    }
    // the run reached both sides of the parser
    for (const k of ["ok 1", "ok 2", "ok 4", "short", "bad_length"]) expect(seen.get(k) ?? 0, `${k} in ${JSON.stringify([...seen])}`).toBeGreaterThan(0);
  }, Math.max(30_000, FRAMES)); // `npm run fuzz`'s 100,000 frames take ~45 s on a loaded machine
});

// Seeded fuzzing of the Node tunnel's own WebSocket client (host/node/ws-frames.ts, ws-client.ts)
// with hostile server bytes: streams of valid server frames (binary, UTF-8 text, fragmented
// messages, ping, pong, close) mutated — bytes flipped, cut, random bytes inserted, spliced — and
// fed in random pieces. Invariants: the reader throws nothing but WsError; what it delivers (the
// messages, then the error's code or nothing) does not depend on how the bytes were cut; an
// unmutated stream gives exactly its messages. The upgrade response's parser, mutated the same
// way, throws nothing but WsError. Through a real socket: a client fed hostile bytes after a right
// upgrade always ends with a "close" event (after an "error" with a WsError when the bytes were
// bad), never an exception. FUZZ_PACKETS / 10 streams; a failure names its seed and iteration.
import { describe, expect, it } from "vitest";
import { Prng } from "../../../host/core/sim/prng.js";
import { WsError, WsFrameReader, parseUpgradeResponse, wsAccept, type WsFrameSink } from "../../../host/node/ws-frames.js";
import { WsClient } from "../../../host/node/ws-client.js";
import { until } from "../support/until.js";
import { rawServer, serverFrame } from "./ws-support.js";

const STREAMS = Math.ceil(Number(process.env.FUZZ_PACKETS ?? 20_000) / 10);
const SEED = Number(process.env.FUZZ_SEED ?? 0x3e55);
const MAX = 4096;
const HOST = "127.0.16.41";

function bytes(rng: Prng, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = rng.below(256);
  return b;
}

/** A stream of valid server frames and the messages it carries ("b:hex" / "t:text" / "close:code"). */
function validStream(rng: Prng): { stream: Buffer; expect: string[] } {
  const parts: Buffer[] = [];
  const expect: string[] = [];
  const n = 1 + rng.below(6);
  for (let i = 0; i < n; i++) {
    switch (rng.below(5)) {
      case 0: {
        const p = bytes(rng, rng.below(3) === 0 ? 126 + rng.below(600) : rng.below(126));
        parts.push(serverFrame(2, p));
        expect.push(`b:${p.toString("hex")}`);
        break;
      }
      case 1: {
        const t = ["", "a", "héllo", "日本", "x".repeat(rng.below(200))][rng.below(5)]!;
        parts.push(serverFrame(1, t));
        expect.push(`t:${t}`);
        break;
      }
      case 2: {
        const p = bytes(rng, 1 + rng.below(300));
        const cuts = [0, ...Array.from({ length: rng.below(3) }, () => rng.below(p.length)).sort((a, b) => a - b), p.length];
        for (let k = 0; k + 1 < cuts.length; k++) {
          parts.push(serverFrame(k === 0 ? 2 : 0, p.subarray(cuts[k]!, cuts[k + 1]!), k + 2 === cuts.length));
          if (k === 0 && rng.below(2)) parts.push(serverFrame(9, bytes(rng, rng.below(20)))); // a control frame between fragments
        }
        expect.push(`b:${p.toString("hex")}`);
        break;
      }
      case 3:
        parts.push(serverFrame(rng.below(2) ? 9 : 10, bytes(rng, rng.below(126))));
        break;
      default:
        break;
    }
  }
  if (rng.below(3) === 0) {
    const code = [1000, 1001, 3000, 4999][rng.below(4)]!;
    parts.push(serverFrame(8, Buffer.concat([Buffer.from([code >> 8, code & 0xff]), Buffer.from("bye")])));
    expect.push(`close:${code}`);
  }
  return { stream: Buffer.concat(parts), expect };
}

function mutate(rng: Prng, b: Buffer, other: Buffer): Buffer {
  const m = Buffer.from(b);
  switch (rng.below(5)) {
    case 0:
      for (let k = 1 + rng.below(4); k > 0 && m.length; k--) m[rng.below(m.length)] ^= 1 << rng.below(8);
      return m;
    case 1:
      return m.subarray(0, rng.below(m.length + 1));
    case 2: {
      const at = rng.below(m.length + 1);
      return Buffer.concat([m.subarray(0, at), bytes(rng, 1 + rng.below(12)), m.subarray(at)]);
    }
    case 3:
      return Buffer.concat([m.subarray(0, rng.below(m.length + 1)), other.subarray(rng.below(other.length + 1))]);
    default:
      if (m.length) m[rng.below(m.length)] = [0x7f, 0x7e, 0xff, 0x80, 0x00][rng.below(5)]!;
      return m;
  }
}

/** Feeds `b` in pieces cut at `cuts`; returns what the reader delivered, then "error:code" if it threw. */
function read(b: Buffer, cuts: number[]): string[] {
  const out: string[] = [];
  const sink: WsFrameSink = {
    message: (binary, d) => out.push(binary ? `b:${Buffer.from(d).toString("hex")}` : `t:${new TextDecoder().decode(d)}`),
    ping: () => {},
    pong: () => {},
    closed: (code) => out.push(`close:${code}`),
  };
  const r = new WsFrameReader(sink, MAX);
  let at = 0;
  try {
    for (const c of [...cuts, b.length]) {
      if (c < at) continue;
      r.push(b.subarray(at, c));
      at = c;
    }
  } catch (e) {
    if (!(e instanceof WsError)) throw e;
    out.push(`error:${e.code}`);
  }
  return out;
}

describe("WsFrameReader, seeded hostile streams", () => {
  it(`${STREAMS} valid streams in random pieces give exactly their messages; mutated ones the same verdict however cut`, () => {
    const rng = new Prng(SEED);
    let prev = validStream(rng).stream;
    const verdicts = new Map<string, number>();
    for (let i = 0; i < STREAMS; i++) {
      const { stream, expect: want } = validStream(rng);
      const cuts = Array.from({ length: rng.below(8) }, () => rng.below(stream.length + 1)).sort((a, b) => a - b);
      const where = `seed ${SEED} stream ${i}`;
      expect(read(stream, []), where).toEqual(want);
      expect(read(stream, cuts), where).toEqual(want);
      const bad = mutate(rng, stream, prev);
      const whole = read(bad, []);
      const oneByOne = read(bad, Array.from({ length: bad.length }, (_, k) => k));
      const badCuts = Array.from({ length: rng.below(8) }, () => rng.below(bad.length + 1)).sort((a, b) => a - b);
      expect(oneByOne, where).toEqual(whole);
      expect(read(bad, badCuts), where).toEqual(whole);
      const last = whole[whole.length - 1] ?? "";
      const v = last.startsWith("error:") ? last : "no error";
      verdicts.set(v, (verdicts.get(v) ?? 0) + 1);
      prev = stream;
    }
    // the mutations reach the reader's rules, not just its happy path
    for (const code of ["bad_rsv", "bad_opcode", "masked_frame", "unexpected_continuation", "expected_continuation"]) {
      expect(verdicts.get(`error:${code}`) ?? 0, `${code} never found: ${JSON.stringify([...verdicts])}`).toBeGreaterThan(0);
    }
  });

  it("the upgrade response's parser: mutated answers throw WsError or parse, nothing else", () => {
    const rng = new Prng(SEED + 1);
    const key = "dGhlIHNhbXBsZSBub25jZQ==";
    const good = Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${wsAccept(key)}\r\nSec-WebSocket-Protocol: softroce-tunnel.2\r\n\r\n`);
    expect(parseUpgradeResponse(good, key, ["softroce-tunnel.2"])).toEqual({ headerLen: good.length, protocol: "softroce-tunnel.2" });
    expect(wsAccept(key)).toBe("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="); // RFC 6455 §1.3's example
    const seen = new Set<string>();
    for (let i = 0; i < STREAMS; i++) {
      const m = mutate(rng, good, Buffer.from("HTTP/1.1 200 OK\r\n\r\n"));
      try {
        const r = parseUpgradeResponse(m, key, ["softroce-tunnel.2"]);
        seen.add(r ? "ok" : "incomplete");
      } catch (e) {
        if (!(e instanceof WsError)) throw new Error(`seed ${SEED + 1} case ${i}: ${String(e)}`);
        seen.add(e.code);
      }
    }
    expect(seen.has("bad_accept") || seen.has("bad_handshake")).toBe(true);
  });
});

describe("WsClient, hostile bytes through a socket", () => {
  it("60 seeded streams after a right upgrade: a close event each time, an error event exactly when the bytes were bad", async () => {
    const rng = new Prng(SEED + 2);
    for (let i = 0; i < 60; i++) {
      const { stream } = validStream(rng);
      const bad = i % 4 === 3 ? stream : mutate(rng, stream, bytes(rng, 40));
      // what the reader says about these bytes, the reference for the client
      const verdict = read(bad, []);
      const srv = await rawServer(HOST, { after: bad });
      try {
        const c = new WsClient(srv.url, { maxPayload: MAX, closeTimeoutMs: 100 });
        const errors: unknown[] = [];
        let closed = false;
        c.addEventListener("error", (ev: { error: unknown }) => errors.push(ev.error));
        c.addEventListener("close", () => (closed = true));
        await until(() => srv.conns.length === 1, 3000, `seed ${SEED + 2} case ${i}: connection`);
        const last = verdict[verdict.length - 1] ?? "";
        if (!last.startsWith("error:") && !last.startsWith("close:")) {
          // a stream that ends cleanly or cut short: the client stays open until the server goes
          await new Promise((r) => setTimeout(r, 10));
          srv.conns[0]!.sock.end();
        }
        await until(() => closed, 3000, `seed ${SEED + 2} case ${i}: close`);
        if (last.startsWith("error:")) {
          expect(errors.length, `case ${i}`).toBe(1);
          expect((errors[0] as WsError).code, `case ${i}`).toBe(last.slice(6));
        } else expect(errors, `case ${i}`).toEqual([]);
      } finally {
        await srv.close();
      }
    }
  });
});

// The gateway's native relay (host/node/native/relay.c) against the JS path, over raw TCP so that
// the client can send what a WebSocket library never would: every hostile WebSocket or tunnel
// frame gets the same close code, the same counted refusal and the same datagrams out from both;
// a seeded fuzz of mutated frames compares the two end to end; the relay's tunnel constants are
// frames.ts's; sessions opened and closed many times leave no descriptor, thread or session behind.
import { afterEach, describe, expect, it } from "vitest";
import dgram from "node:dgram";
import net from "node:net";
import fs from "node:fs";
import { randomBytes } from "node:crypto";
import { datapathAddon } from "../../../host/node/datapath.js";
import { Gateway, type GatewayOptions } from "../../../host/gateway/index.js";
import { RELAY_CONSTANTS } from "../../../host/gateway/relay.js";
import { RelayOp, type RoceShape } from "../../../host/gateway/roce-shape.js";
import { gatewayOptionsFromArgs } from "../../../host/cli/gateway.js";
import { emitData, emitBatch, parseFrame, FrameKind, HELLO_LEN, TUNNEL_SUBPROTOCOL_V2 } from "../../../host/core/tunnel/frames.js";
import { Prng } from "../../../host/core/sim/prng.js";
import { until as untilShared } from "../support/until.js";

const HAVE = datapathAddon() !== undefined;
const ADDR = "127.0.16.3";
const SINK = "127.0.16.4";
const OFF = "127.0.16.5";
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** The shared until() with this file's longer default (the relay thread may wait for a CPU). */
const until = (cond: () => boolean, ms = 5000): Promise<void> => untilShared(cond, ms);

async function sink(): Promise<{ port: number; got: Buffer[] }> {
  const s = dgram.createSocket("udp4");
  const got: Buffer[] = [];
  s.on("message", (m) => got.push(m));
  await new Promise<void>((r) => s.bind(0, SINK, r));
  cleanups.push(() => new Promise<void>((r) => s.close(() => r())));
  return { port: s.address().port, got };
}

async function gateway(relay: "native" | "js", o: GatewayOptions = {}): Promise<Gateway> {
  const gw = await Gateway.start({
    listen: ADDR, port: 0, udpAddress: ADDR, udpPort: 0, allow: [SINK], log: () => {}, relay, maxFrameBytes: 8192, ...o,
  });
  cleanups.push(() => gw.close());
  expect(gw.relayPath).toBe(relay);
  return gw;
}

/** A client WebSocket frame: FIN/RSV/opcode byte, masked (or not) with a random key, the shortest length form unless `len64`. */
function wsFrame(op: number, payload: Uint8Array, o: { fin?: boolean; rsv?: number; mask?: boolean; len64?: boolean; lenOverride?: bigint } = {}): Buffer {
  const fin = o.fin ?? true, mask = o.mask ?? true;
  const n = payload.length;
  const head: number[] = [(fin ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | op];
  const m = mask ? 0x80 : 0;
  if (o.lenOverride !== undefined) {
    head.push(m | 127);
    for (let i = 7; i >= 0; i--) head.push(Number((o.lenOverride >> BigInt(8 * i)) & 0xffn));
  } else if (n < 126 && !o.len64) head.push(m | n);
  else if (n < 65536 && !o.len64) head.push(m | 126, n >> 8, n & 0xff);
  else {
    head.push(m | 127, 0, 0, 0, 0);
    head.push((n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  }
  const key = mask ? randomBytes(4) : Buffer.alloc(0);
  const body = Buffer.from(payload);
  if (mask) for (let i = 0; i < n; i++) body[i]! ^= key[i & 3]!;
  return Buffer.concat([Buffer.from(head), key, body]);
}

interface Raw {
  sock: net.Socket;
  /** server frames after the handshake: opcode and payload */
  frames: { op: number; payload: Buffer }[];
  ended: boolean;
  hello: Buffer;
}

/** A hand-made WebSocket client over TCP: the upgrade, then whatever bytes the test writes. */
async function raw(gw: Gateway, v2 = false): Promise<Raw> {
  const sock = net.connect(gw.port, ADDR);
  cleanups.push(() => sock.destroy());
  const r: Raw = { sock, frames: [], ended: false, hello: Buffer.alloc(0) };
  let buf = Buffer.alloc(0);
  let upgraded = false;
  sock.on("data", (d) => {
    buf = Buffer.concat([buf, d]);
    if (!upgraded) {
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      if (!buf.subarray(0, 12).toString().includes("101")) throw new Error(`upgrade refused: ${buf.subarray(0, 40)}`);
      upgraded = true;
      buf = buf.subarray(end + 4);
    }
    for (;;) {
      if (buf.length < 2) return;
      let len = buf[1]! & 0x7f, at = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(buf.readBigUInt64BE(2));
        at = 10;
      }
      if (buf.length < at + len) return;
      r.frames.push({ op: buf[0]! & 0x0f, payload: Buffer.from(buf.subarray(at, at + len)) });
      buf = buf.subarray(at + len);
    }
  });
  sock.on("end", () => (r.ended = true));
  sock.on("close", () => (r.ended = true));
  sock.on("error", () => {});
  await new Promise<void>((res) => sock.once("connect", () => res()));
  sock.write(
    `GET /tunnel HTTP/1.1\r\nHost: ${ADDR}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n` +
      (v2 ? `Sec-WebSocket-Protocol: ${TUNNEL_SUBPROTOCOL_V2}\r\n` : "") + "\r\n",
  );
  await until(() => r.frames.length > 0);
  r.hello = r.frames.shift()!.payload;
  expect(parseFrame(r.hello).kind).toBe(FrameKind.HELLO);
  return r;
}

/** What one hostile input came to: the close code the client got (0: none), ERROR frames, pongs, refusals, datagrams out. */
interface Outcome {
  close: number;
  closeReason: string;
  errors: string[];
  pongs: string[];
  refused: Record<string, number>;
  out: number;
}

async function outcome(gw: Gateway, r: Raw, s: { got: Buffer[] }, before: number): Promise<Outcome> {
  // A ping after the test's frames: its pong (or the session's close) says every frame before it was
  // taken (both paths parse in order); then the relay's punts are handled in JS, and the datagrams
  // out stop coming.
  r.sock.write(wsFrame(9, Buffer.from("end")));
  const endHex = Buffer.from("end").toString("hex");
  let n = -1, since = 0;
  await until(() => {
    if (!(r.ended || r.frames.some((f) => f.op === 8 || (f.op === 10 && f.payload.toString("hex") === endHex)))) return false;
    const st = gw.relayStats();
    if (s.got.length !== n) (n = s.got.length), (since = Date.now());
    return (!st || st.events === st.eventsHandled) && Date.now() - since >= 40;
  });
  const close = r.frames.find((f) => f.op === 8);
  return {
    close: close ? (close.payload.length >= 2 ? close.payload.readUInt16BE(0) : 1005) : 0,
    closeReason: close && close.payload.length > 2 ? close.payload.subarray(2).toString() : "",
    errors: r.frames.filter((f) => f.op === 2 && parseFrame(f.payload).kind === FrameKind.ERROR).map((f) => (parseFrame(f.payload) as { name: string }).name),
    pongs: r.frames.filter((f) => f.op === 10).map((f) => f.payload.toString("hex")),
    refused: { ...gw.counters.refused },
    out: s.got.length - before,
  };
}

const ROCE = (() => {
  // RC SEND_ONLY to QP 0x11, PSN 1, 8 bytes of payload, an ICRC-sized tail (the gateway does not check ICRCs)
  const p = new Uint8Array(12 + 8 + 4);
  p[0] = 0x04;
  p[7] = 0x11;
  p[11] = 1;
  return p;
})();

type Case = [name: string, make: (ctx: { port: number }) => Buffer[], v2?: boolean];
const big = (n: number) => new Uint8Array(n);
const CASES: Case[] = [
  ["an unmasked frame", (c) => [wsFrame(2, emitData(SINK, c.port, 0, [ROCE]), { mask: false })]],
  ["RSV1 set", (c) => [wsFrame(2, emitData(SINK, c.port, 0, [ROCE]), { rsv: 4 })]],
  ["RSV2 and RSV1 set", (c) => [wsFrame(2, emitData(SINK, c.port, 0, [ROCE]), { rsv: 6 })]],
  ["opcode 3", () => [wsFrame(3, big(4))]],
  ["opcode 11", () => [wsFrame(11, big(4))]],
  ["a ping without FIN", () => [wsFrame(9, big(4), { fin: false })]],
  ["a ping of 126 bytes", () => [wsFrame(9, big(126))]],
  ["a continuation with no message", () => [wsFrame(0, big(40))]],
  ["a new message inside a fragmented one", (c) => [wsFrame(2, emitData(SINK, c.port, 0, [ROCE]).subarray(0, 10), { fin: false }), wsFrame(2, big(4))]],
  ["a message over the gateway's bound", () => [wsFrame(2, big(9000))]],
  ["fragments adding up over the bound", () => [wsFrame(2, big(5000), { fin: false }), wsFrame(0, big(5000))]],
  ["a 64-bit length of 2^60", () => [wsFrame(2, big(0), { lenOverride: 1n << 60n })]],
  ["an unmasked frame over the bound", () => [wsFrame(2, big(9000), { mask: false })]],
  ["text that is not UTF-8", () => [wsFrame(1, Uint8Array.of(0xc3, 0x28))]],
  ["fragmented text that is not UTF-8", () => [wsFrame(1, Uint8Array.of(0xe2, 0x82), { fin: false }), wsFrame(0, Uint8Array.of(0x28))]],
  ["text", () => [wsFrame(1, Buffer.from("hello"))]],
  ["close 1000 with a reason", () => [wsFrame(8, Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from("bye")]))]],
  ["close with no code", () => [wsFrame(8, big(0))]],
  ["close with one byte", () => [wsFrame(8, big(1))]],
  ["close with code 999", () => [wsFrame(8, Uint8Array.of(0x03, 0xe7))]],
  ["close with code 1005", () => [wsFrame(8, Uint8Array.of(0x03, 0xed))]],
  ["close with a reason that is not UTF-8", () => [wsFrame(8, Uint8Array.of(0x03, 0xe8, 0xff))]],
  ["a ping", () => [wsFrame(9, Buffer.from("abc"))]],
  ["a ping, then DATA", (c) => [wsFrame(9, Buffer.from("p")), wsFrame(2, emitData(SINK, c.port, 0, [ROCE]))]],
  ["DATA", (c) => [wsFrame(2, emitData(SINK, c.port, 0, [ROCE]))]],
  ["DATA in three fragments around a ping", (c) => {
    const d = emitData(SINK, c.port, 0, [ROCE]);
    return [wsFrame(2, d.subarray(0, 5), { fin: false }), wsFrame(9, Buffer.from("x")), wsFrame(0, d.subarray(5, 30), { fin: false }), wsFrame(0, d.subarray(30))];
  }],
  ["DATA with a 64-bit length form", (c) => [wsFrame(2, emitData(SINK, c.port, 0, [ROCE]), { len64: true })]],
  ["DATA split across TCP writes", (c) => { const f = wsFrame(2, emitData(SINK, c.port, 0, [ROCE])); return [f.subarray(0, 1), f.subarray(1, 7), f.subarray(7)]; }],
  ["DATA of version 3", (c) => { const d = emitData(SINK, c.port, 0, [ROCE]); d[0] = 3; return [wsFrame(2, d)]; }],
  ["HELLO from a client", () => [wsFrame(2, Uint8Array.of(1, FrameKind.HELLO, ...big(HELLO_LEN - 2)))]],
  ["a kind nobody knows", () => [wsFrame(2, Uint8Array.of(1, 9, 0, 0))]],
  ["one byte", () => [wsFrame(2, Uint8Array.of(1))]],
  ["DATA with IPv4 ID 1", (c) => [wsFrame(2, emitData(SINK, c.port, 1, [ROCE]))]],
  ["DATA to port 0", (c) => { const d = emitData(SINK, c.port, 0, [ROCE]); d[2] = d[3] = 0; return [wsFrame(2, d)]; }],
  ["DATA to an address off the allowlist", (c) => [wsFrame(2, emitData(OFF, c.port, 0, [ROCE]))]],
  ["DATA to a port off the port allowlist", (c) => [wsFrame(2, emitData(SINK, c.port + 1, 0, [ROCE]))]],
  ["DATA that is not RoCE", (c) => [wsFrame(2, emitData(SINK, c.port, 0, [Uint8Array.of(0xff, ...big(23))]))]],
  ["DATA longer than max payload", (c) => [wsFrame(2, emitData(SINK, c.port, 0, [big(5000).fill(0, 0, 0)]))]],
  ["DATA to the sink, then the same to an address off the allowlist", (c) => [wsFrame(2, emitData(SINK, c.port, 0, [ROCE])), wsFrame(2, emitData(OFF, c.port, 0, [ROCE]))]],
  ["DATA then garbage", (c) => [wsFrame(2, emitData(SINK, c.port, 0, [ROCE])), wsFrame(2, Uint8Array.of(7, 7, 7))]],
  // in one TCP write: the relay reads the protocol error while JS still decides the refusals before it;
  // ws answers those (two ERROR frames) before its close, so the relay's close waits for JS (seed 32283's fuzz case)
  ["two DATA frames off the allowlist and opcode 15, in one write", (c) => [Buffer.concat([
    wsFrame(2, emitData(OFF, c.port, 0, [ROCE])), wsFrame(2, emitData(OFF, c.port, 0, [ROCE])), wsFrame(15, big(4))])]],
  ["DATA off the allowlist and an unmasked frame, in one write, version 2", (c) => [Buffer.concat([
    wsFrame(2, emitData(OFF, c.port, 0, [ROCE])), wsFrame(2, emitData(SINK, c.port, 0, [ROCE]), { mask: false })])], true],
  ["a BATCH of three", (c) => [wsFrame(2, emitBatch([0, 1, 2].map(() => ({ address: SINK, port: c.port, ipId: 0, payload: ROCE }))))], true],
  ["a BATCH on a version-1 session", (c) => [wsFrame(2, emitBatch([{ address: SINK, port: c.port, ipId: 0, payload: ROCE }]))]],
  ["a BATCH whose second datagram is refused", (c) => [wsFrame(2, emitBatch([
    { address: SINK, port: c.port, ipId: 0, payload: ROCE }, { address: OFF, port: c.port, ipId: 0, payload: ROCE },
    { address: SINK, port: c.port, ipId: 0, payload: ROCE }]))], true],
  ["a BATCH whose second datagram has IPv4 ID 5", (c) => [wsFrame(2, emitBatch([
    { address: SINK, port: c.port, ipId: 0, payload: ROCE }, { address: SINK, port: c.port, ipId: 5, payload: ROCE },
    { address: SINK, port: c.port, ipId: 0, payload: ROCE }]))], true],
  ["a BATCH with a byte too many", (c) => { const b = emitBatch([{ address: SINK, port: c.port, ipId: 0, payload: ROCE }]); return [wsFrame(2, Uint8Array.of(...b, 0))]; }, true],
  ["a BATCH of count 0", () => [wsFrame(2, Uint8Array.of(2, FrameKind.BATCH, 0, 0))], true],
];

describe.skipIf(!HAVE)("gateway: the native relay against the JS path", () => {
  it("the relay's tunnel constants are frames.ts's (one home: passed in, given back)", async () => {
    const gw = await gateway("native");
    const k = (gw as unknown as { relay: { constants(): Record<string, number> } }).relay.constants();
    for (const [name, v] of Object.entries(RELAY_CONSTANTS)) expect([name, k[name]]).toEqual([name, v]);
    expect(k.maxMessage).toBe(Math.max(24 + 4096 + 88, 8192));
    // the shape table's flag bits (roce-shape.ts RelayOp) are the ones relay.c reads
    expect((k as unknown as { opFlags: unknown }).opFlags).toEqual(RelayOp);
    const t = (gw as unknown as { shape: RoceShape }).shape.relayTable();
    const { PAYLOAD, REQ, ANSWERED, ACK_ONLY } = RelayOp;
    // RC SEND_ONLY, RDMA_READ_REQUEST, RDMA_READ_RESPONSE_ONLY, ACKNOWLEDGE, ATOMIC_ACKNOWLEDGE, COMPARE_SWAP; UD SEND_ONLY
    expect([0x04, 0x0c, 0x10, 0x11, 0x12, 0x13, 0x64].map((op) => t[256 + op])).toEqual([PAYLOAD | REQ, REQ | ANSWERED, PAYLOAD, ACK_ONLY, 0, REQ | ANSWERED, PAYLOAD | REQ]);
  });

  it("refuses a relay option it does not know", async () => {
    await expect(Gateway.start({ port: 0, udpPort: 0, relay: "c" as never })).rejects.toThrow(/relay "c"/);
  });

  it("is the default when the addon is built; `softroce gateway --relay js|native` picks, anything else is a usage error", async () => {
    const gw = await Gateway.start({ listen: ADDR, port: 0, udpAddress: ADDR, udpPort: 0, allow: [SINK] });
    cleanups.push(() => gw.close());
    expect([gw.relayPath, gw.limitations]).toEqual(["native", []]);
    expect(gatewayOptionsFromArgs(["--relay", "js"])!.relay).toBe("js");
    expect(gatewayOptionsFromArgs(["--relay=native"])!.relay).toBe("native");
    expect(gatewayOptionsFromArgs([])!.relay).toBeUndefined();
    expect(() => gatewayOptionsFromArgs(["--relay", "c"])).toThrow("--relay must be one of native, js, got 'c'");
    // asked for but impossible (node:dgram UDP side): said, and the JS path runs
    const d = await Gateway.start({ listen: ADDR, port: 0, udpAddress: ADDR, udpPort: 0, allow: [SINK], nativeUdp: false, relay: "native" });
    cleanups.push(() => d.close());
    expect(d.relayPath).toBe("js");
    expect(d.limitations.join("; ")).toContain("relay: native asked, but the UDP side is node:dgram");
  });

  it.each(CASES)("%s: the same close code, refusal and datagrams on both paths", async (_name, make, v2) => {
    const results: Outcome[] = [];
    for (const relay of ["js", "native"] as const) {
      const s = await sink();
      const gw = await gateway(relay, { dstPorts: [s.port] });
      const r = await raw(gw, v2);
      for (const b of make({ port: s.port })) {
        r.sock.write(b);
        await new Promise((res) => setTimeout(res, 5));
      }
      results.push(await outcome(gw, r, s, 0));
      if (process.env.RELAY_DEBUG) console.log(relay, JSON.stringify(results.at(-1)), JSON.stringify(gw.counters));
    }
    expect(JSON.stringify(results[1])).toBe(JSON.stringify(results[0]));
  });

  it("a client that closes cleanly is dropped with its code; the relay holds no session", async () => {
    const gw = await gateway("native");
    const r = await raw(gw);
    r.sock.write(wsFrame(8, Uint8Array.of(0x0f, 0xa0))); // 4000
    await until(() => gw.clientCount === 0 && r.ended);
    expect(r.frames.find((f) => f.op === 8)?.payload.readUInt16BE(0)).toBe(4000);
    expect(gw.relayStats()!.sessions).toBe(0);
    expect(gw.counters.clientsClosed).toBe(1);
  });

  it("opening and closing 60 sessions (clean close, reset, eviction) leaves no descriptor, session or thread behind", async () => {
    const fds = () => fs.readdirSync("/proc/self/fd").length;
    // the relay's own thread, by the name it gives itself (Node may start pool threads meanwhile)
    const threads = () =>
      fs.readdirSync("/proc/self/task").filter((t) => {
        try {
          return fs.readFileSync(`/proc/self/task/${t}/comm`, "utf8").trim() === "softroce-relay";
        } catch {
          return false; // a thread that ended while we looked
        }
      }).length;
    const fd0 = fds(), th0 = threads();
    const s = await sink();
    const gw = await gateway("native", { dstPorts: [s.port], maxClientsPerAddress: 64 });
    await until(() => threads() === th0 + 1); // the thread names itself once it runs
    for (let i = 0; i < 60; i++) {
      const r = await raw(gw);
      r.sock.write(wsFrame(2, emitData(SINK, s.port, 0, [ROCE])));
      await until(() => s.got.length === i + 1);
      if (i % 3 === 0) r.sock.write(wsFrame(8, Uint8Array.of(0x03, 0xe8)));
      else if (i % 3 === 1) r.sock.resetAndDestroy();
      else {
        // evicted: the client sees the close frame and goes without answering it
        r.sock.write(wsFrame(1, Buffer.from("text: evicted")));
        await until(() => r.frames.some((f) => f.op === 8));
        r.sock.destroy();
      }
      await until(() => gw.clientCount === 0);
      r.sock.destroy();
    }
    expect(gw.counters.clientsClosed).toBe(60);
    expect(gw.relayStats()!.sessions).toBe(0);
    await gw.close();
    await until(() => fds() <= fd0 + 2); // the sink's socket (closed by the cleanup) and slack for Node's own
    await until(() => threads() === th0); // joined by close()
  });

  it("seeded fuzz: mutated frames get the same outcome through the relay's parser as through ws and the JS path", async () => {
    const N = Math.max(40, Math.ceil(Number(process.env.FUZZ_PACKETS ?? 20_000) / 500));
    const seed = Number(process.env.FUZZ_SEED ?? 0x7e1a);
    const rng = new Prng(seed);
    const below = (n: number) => rng.u32() % n;
    for (let i = 0; i < N; i++) {
      // a plausible stream: a few frames of any kind, one of them mutated at the WebSocket or tunnel level
      const plan: { op: number; payload: Uint8Array; o: Parameters<typeof wsFrame>[2] }[] = [];
      const v2 = below(2) === 0;
      for (let k = 1 + below(3); k > 0; k--) {
        const d = emitData(below(4) ? SINK : OFF, 1, 0, [ROCE]);
        plan.push({ op: 2, payload: d, o: {} });
      }
      const m = plan[below(plan.length)]!;
      switch (below(8)) {
        case 0: m.op = [0, 1, 3, 8, 9, 10, 15][below(7)]!; break;
        case 1: m.o = { rsv: below(8) }; break;
        case 2: m.o = { fin: false }; break;
        case 3: m.o = { mask: below(4) !== 0 }; break;
        case 4: m.payload = m.payload.slice(0, below(m.payload.length + 1)); break;
        case 5: { const p = m.payload.slice(); p[below(24)] ^= 1 << below(8); m.payload = p; break; }
        case 6: m.payload = Uint8Array.from({ length: below(40) }, () => below(256)); break;
        default: m.o = { len64: true };
      }
      const results: Outcome[] = [];
      const streams: Buffer[][] = [];
      for (const relay of ["js", "native"] as const) {
        const s = await sink();
        const gw = await gateway(relay, { dstPorts: [s.port] });
        const r = await raw(gw, v2);
        // the same bytes both times but for the masking keys
        const frames = plan.map((f) => {
          const p = f.payload.slice();
          // (made with port 1: the sink's port is known only now)
          if (f.op === 2 && p.length >= 4 && p[1] === FrameKind.DATA) { p[2] = s.port >> 8; p[3] = s.port & 0xff; }
          return wsFrame(f.op, p, f.o);
        });
        streams.push(frames);
        for (const b of frames) r.sock.write(b);
        results.push(await outcome(gw, r, s, 0));
        if (process.env.RELAY_DEBUG) console.log(i, relay, v2, JSON.stringify(results.at(-1)), JSON.stringify(gw.counters));
        await gw.close();
      }
      if (JSON.stringify(results[1]) !== JSON.stringify(results[0])) {
        throw new Error(`relay fuzz, seed ${seed}, case ${i}: js ${JSON.stringify(results[0])} native ${JSON.stringify(results[1])}\n` +
          `frames ${streams[0]!.map((b) => b.toString("hex")).join(" ")}\nrepeat: FUZZ_SEED=${seed} npx vitest run test/host/gateway/relay.test.ts -t fuzz`);
      }
    }
  }, 300_000);
});

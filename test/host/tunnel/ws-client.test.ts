// The Node tunnel's own WebSocket client (host/node/ws-client.ts) against the `ws` package's server
// (what the JS gateway runs) and against a raw server that answers the upgrade wrongly or sends
// bad frames: messages both ways (masked with a fresh key each), large and fragmented messages,
// ping, close both ways, and every malformed input a coded WsError, an "error" event, our close
// frame with the right code and a "close" event.
import { afterEach, describe, expect, it } from "vitest";
import { once } from "node:events";
import { WebSocketServer, type WebSocket as WsSocket } from "ws";
import { WsClient } from "../../../host/node/ws-client.js";
import { WsError } from "../../../host/node/ws-frames.js";
import { tunnelSocket } from "../../../host/node/tunnel-socket.js";
import { until } from "../support/until.js";
import { clientFrames, rawServer, serverFrame, type RawServer } from "./ws-support.js";
import { setImmediate as nextTurn } from "node:timers/promises";

const HOST = "127.0.16.40";

interface Seen {
  messages: unknown[];
  errors: WsError[];
  closes: { code: number; reason: string }[];
  opened: boolean;
}
function watch(c: WsClient): Seen {
  const s: Seen = { messages: [], errors: [], closes: [], opened: false };
  c.addEventListener("open", () => (s.opened = true));
  // views are valid during the event only: copy
  c.addEventListener("message", (ev: { data: unknown }) => s.messages.push(typeof ev.data === "string" ? ev.data : Buffer.from(ev.data as Uint8Array)));
  c.addEventListener("error", (ev: { error: unknown }) => s.errors.push(ev.error as WsError));
  c.addEventListener("close", (ev: { code: number; reason: string }) => s.closes.push({ code: ev.code, reason: ev.reason }));
  return s;
}

describe("WsClient against ws's server", () => {
  let wss: WebSocketServer | undefined;
  afterEach(async () => {
    for (const c of wss?.clients ?? []) c.terminate();
    await new Promise<void>((r) => (wss ? wss.close(() => r()) : r()));
    wss = undefined;
  });
  async function server(): Promise<{ url: string; conn: Promise<{ ws: WsSocket; headers: Record<string, unknown> }> }> {
    wss = new WebSocketServer({ host: HOST, port: 0, handleProtocols: (p) => (p.has("softroce-tunnel.2") ? "softroce-tunnel.2" : false) });
    await once(wss, "listening");
    const conn = new Promise<{ ws: WsSocket; headers: Record<string, unknown> }>((r) => wss!.once("connection", (ws, req) => r({ ws, headers: req.headers })));
    return { url: `ws://${HOST}:${(wss.address() as { port: number }).port}/tunnel?x=1`, conn };
  }

  it("upgrades with the offered protocol and headers; binary and text both ways, small to 1 MiB, every byte right", async () => {
    const { url, conn } = await server();
    const c = new WsClient(url, { protocols: ["softroce-tunnel.2"], headers: { authorization: "Bearer t0k" } });
    const s = watch(c);
    const { ws, headers } = await conn;
    await until(() => s.opened, 3000, "open");
    expect(c.protocol).toBe("softroce-tunnel.2");
    expect(c.readyState).toBe(WsClient.OPEN);
    expect(headers.authorization).toBe("Bearer t0k");
    const got: Buffer[] = [];
    ws.on("message", (d: Buffer) => got.push(Buffer.from(d)));
    const sizes = [0, 1, 125, 126, 65535, 65536, 300_000, 1 << 20];
    const body = (n: number, salt: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + salt) & 0xff));
    const done: number[] = [];
    sizes.forEach((n, i) => c.send(body(n, i), () => done.push(i)));
    // done at once, in order: the client copied the bytes
    expect(done).toEqual(sizes.map((_, i) => i));
    await until(() => got.length === sizes.length, 5000, "the server's messages");
    sizes.forEach((n, i) => expect(got[i]!.equals(body(n, i))).toBe(true));
    sizes.forEach((n, i) => ws.send(body(n, i + 7)));
    ws.send("héllo");
    await until(() => s.messages.length === sizes.length + 1, 5000, "the client's messages");
    sizes.forEach((n, i) => expect((s.messages[i] as Buffer).equals(body(n, i + 7))).toBe(true));
    expect(s.messages[sizes.length]).toBe("héllo");
    expect(s.errors).toEqual([]);
    // the server's close: answered with the same code, "close" with it
    ws.close(4001, "bye now");
    await until(() => s.closes.length === 1, 3000, "close");
    expect(s.closes[0]).toEqual({ code: 4001, reason: "bye now" });
    expect(c.readyState).toBe(WsClient.CLOSED);
  });

  it("a fragmented message from the server is assembled; a ping is answered with its payload", async () => {
    const { url, conn } = await server();
    const c = new WsClient(url, { protocols: ["softroce-tunnel.2"] });
    const s = watch(c);
    const { ws } = await conn;
    await until(() => s.opened, 3000, "open");
    const pongs: Buffer[] = [];
    ws.on("pong", (d: Buffer) => pongs.push(Buffer.from(d)));
    ws.send(Buffer.from("abc"), { fin: false, binary: true });
    ws.ping(Buffer.from("p1"));
    ws.send(Buffer.from("def"), { fin: false });
    ws.send(Buffer.from("g"), { fin: true });
    await until(() => s.messages.length === 1 && pongs.length === 1, 3000, "message and pong");
    expect((s.messages[0] as Buffer).toString()).toBe("abcdefg");
    expect(pongs[0]!.toString()).toBe("p1");
    // our close: the server sees 1000 and its reason
    const closed = new Promise<[number, string]>((r) => ws.once("close", (code: number, why: Buffer) => r([code, why.toString()])));
    c.close(1000, "done");
    expect(await closed).toEqual([1000, "done"]);
    await until(() => s.closes.length === 1, 3000, "close");
    expect(s.closes[0]!.code).toBe(1000);
  });

  it("tunnelSocket makes this client for ws:// (the default) and ws's for webSocket \"ws\"; a bad choice is a TypeError", async () => {
    const { url } = await server();
    const a = tunnelSocket(url);
    const b = tunnelSocket(url, { webSocket: "ws" });
    expect(a).toBeInstanceOf(WsClient);
    expect(b).not.toBeInstanceOf(WsClient);
    expect(() => tunnelSocket(url, { webSocket: "nope" as "ws" })).toThrow(TypeError);
    await until(() => a.readyState === 1 && b.readyState === 1, 3000, "both open");
    a.close();
    b.close();
  });
});

describe("WsClient against a hostile server", () => {
  let srv: RawServer | undefined;
  afterEach(async () => {
    await srv?.close();
    srv = undefined;
  });

  const refused: [string, (req: string, accept: string) => string, string][] = [
    ["a 401", () => "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n", "bad_status"],
    ["a wrong Sec-WebSocket-Accept", () => "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n", "bad_accept"],
    ["no Upgrade header", (_r, a) => `HTTP/1.1 101 OK\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${a}\r\n\r\n`, "bad_handshake"],
    ["a protocol not offered", (_r, a) => `HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${a}\r\nSec-WebSocket-Protocol: other\r\n\r\n`, "bad_protocol"],
    ["an extension", (_r, a) => `HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${a}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n`, "bad_extension"],
    ["an endless header", () => `HTTP/1.1 101 OK\r\nX: ${"a".repeat(20000)}`, "header_too_long"],
  ];
  for (const [what, answer, code] of refused) {
    it(`an upgrade answered with ${what}: error ${code}, close 1006, never open`, async () => {
      srv = await rawServer(HOST, { answer });
      const c = new WsClient(srv.url, { protocols: ["softroce-tunnel.2"] });
      const s = watch(c);
      await until(() => s.closes.length === 1, 3000, "close");
      expect(s.opened).toBe(false);
      expect(s.errors.map((e) => e.code)).toEqual([code]);
      expect(s.closes[0]!.code).toBe(1006);
    });
  }

  const bad: [string, Buffer, string, number][] = [
    ["a masked frame", Buffer.from([0x82, 0x81, 1, 2, 3, 4, 5]), "masked_frame", 1002],
    ["RSV1 set", Buffer.from([0xc2, 0x01, 0]), "bad_rsv", 1002],
    ["opcode 3", Buffer.from([0x83, 0x00]), "bad_opcode", 1002],
    ["a fragmented ping", Buffer.from([0x09, 0x00]), "control_fragmented", 1002],
    ["a 126-byte ping", Buffer.concat([Buffer.from([0x89, 126, 0, 126]), Buffer.alloc(126)]), "control_too_long", 1002],
    ["a continuation first", Buffer.from([0x80, 0x01, 0]), "unexpected_continuation", 1002],
    ["a new message inside a fragmented one", Buffer.concat([serverFrame(2, "ab", false), serverFrame(2, "cd")]), "expected_continuation", 1002],
    ["a 64-bit length with the top bit set", Buffer.from([0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1]), "bad_length", 1002],
    ["a 2^32-byte frame", Buffer.from([0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0]), "too_big", 1009],
    ["a frame over maxPayload", Buffer.from([0x82, 127, 0, 0, 0, 0, 0x10, 0, 0, 0]), "too_big", 1009],
    ["text that is not UTF-8", serverFrame(1, Buffer.from([0xc3, 0x28])), "bad_utf8", 1007],
    ["a close with a 1-byte body", Buffer.from([0x88, 0x01, 0]), "bad_close", 1002],
    ["a close with code 1005", serverFrame(8, Buffer.from([0x03, 0xed])), "bad_close", 1002],
  ];
  for (const [what, after, code, closeCode] of bad) {
    it(`${what}: error ${code}, our close frame with ${closeCode}, the socket ended`, async () => {
      // a good message first: it arrives; nothing after the bad frame does
      srv = await rawServer(HOST, { after: Buffer.concat([serverFrame(2, "ok"), after, serverFrame(2, "never")]) });
      const c = new WsClient(srv.url, { protocols: ["softroce-tunnel.2"], maxPayload: 1 << 20 });
      const s = watch(c);
      await until(() => s.closes.length === 1, 3000, "close");
      expect(s.messages.map((m) => String(m))).toEqual(["ok"]);
      expect(s.errors.map((e) => e.code)).toEqual([code]);
      expect(s.errors[0]).toBeInstanceOf(WsError);
      expect(s.closes[0]!.code).toBe(closeCode);
      const conn = srv.conns[0]!;
      await until(() => conn.ended, 3000, "the client's FIN");
      const close = conn.frames.find((f) => f.op === 8);
      expect(close?.masked).toBe(true);
      expect(close?.payload.readUInt16BE(0)).toBe(closeCode);
    });
  }

  it("every client frame is masked with a fresh key; bytes split one at a time still make the same messages", async () => {
    const msgs = [serverFrame(2, Buffer.alloc(300, 7)), serverFrame(2, "x"), serverFrame(1, "ü"), serverFrame(9, "pp")];
    srv = await rawServer(HOST);
    const c = new WsClient(srv.url);
    const s = watch(c);
    await until(() => s.opened, 3000, "open");
    const conn = srv.conns[0]!;
    // the server's bytes one per write (TCP may merge some; the reader holds what is cut)
    const all = Buffer.concat(msgs);
    for (let i = 0; i < all.length; i++) {
      conn.sock.write(all.subarray(i, i + 1));
      if (i % 50 === 0) await nextTurn();
    }
    await until(() => s.messages.length === 3, 3000, "messages");
    expect((s.messages[0] as Buffer).equals(Buffer.alloc(300, 7))).toBe(true);
    expect(String(s.messages[1])).toBe("x");
    expect(s.messages[2]).toBe("ü");
    for (let i = 0; i < 20; i++) c.send(new Uint8Array(8).fill(0xaa));
    await until(() => conn.frames.filter((f) => f.op === 2).length === 20 && conn.frames.some((f) => f.op === 10), 3000, "frames");
    const data = conn.frames.filter((f) => f.op === 2);
    expect(data.every((f) => f.masked && f.fin && f.payload.equals(Buffer.alloc(8, 0xaa)))).toBe(true);
    expect(conn.frames.find((f) => f.op === 10)?.payload.toString()).toBe("pp");
    c.close();
  });

  it("the server goes away without a close frame: close 1006; send after close neither throws nor writes", async () => {
    srv = await rawServer(HOST);
    const c = new WsClient(srv.url);
    const s = watch(c);
    await until(() => s.opened, 3000, "open");
    srv.conns[0]!.sock.destroy();
    await until(() => s.closes.length === 1, 3000, "close");
    expect(s.closes[0]!.code).toBe(1006);
    let called = false;
    c.send(new Uint8Array(4), () => (called = true));
    await until(() => called, 1000, "the send callback");
    expect(c.stats.framesOut).toBe(0);
  });

  it("nobody listening: an error event with the socket's error (ECONNREFUSED), then close 1006, never open", async () => {
    srv = await rawServer(HOST);
    const url = srv.url;
    await srv.close();
    srv = undefined;
    const c = new WsClient(url);
    const s = watch(c);
    const raw: { code?: string }[] = [];
    c.addEventListener("error", (ev: { error: { code?: string } }) => raw.push(ev.error));
    await until(() => s.closes.length === 1, 3000, "close");
    expect(raw.map((e) => e.code)).toEqual(["ECONNREFUSED"]);
    expect(s.closes[0]!.code).toBe(1006);
    expect(s.opened).toBe(false);
    expect(c.readyState).toBe(WsClient.CLOSED);
  });

  it("close while connecting drops the connection: close 1006, no error from the client", async () => {
    srv = await rawServer(HOST, { answer: () => "" }); // never answers
    const c = new WsClient(srv.url);
    const s = watch(c);
    await until(() => srv!.conns.length === 1, 3000, "connection");
    c.close();
    await until(() => s.closes.length === 1, 3000, "close");
    expect(s.closes[0]!.code).toBe(1006);
    expect(s.opened).toBe(false);
  });

  it("bad arguments: a wss:// or http:// URL, a header with a line break, a close code out of range", async () => {
    expect(() => new WsClient("wss://127.0.0.1:1/")).toThrow(TypeError);
    expect(() => new WsClient("http://127.0.0.1:1/")).toThrow(TypeError);
    srv = await rawServer(HOST);
    const c = new WsClient(srv.url, { headers: { x: "a\r\nEvil: 1" } });
    const s = watch(c);
    await until(() => s.closes.length === 1, 3000, "close");
    expect(s.errors.map((e) => e.code)).toEqual(["bad_handshake"]);
    expect(srv.conns[0]?.request ?? "").not.toContain("Evil");
    const d = new WsClient(srv.url, { closeTimeoutMs: 200 });
    const t = watch(d);
    await until(() => t.opened, 3000, "open");
    expect(() => d.close(1005)).toThrow(RangeError);
    expect(() => d.close(1000, "x".repeat(124))).toThrow(RangeError);
    d.close();
    await until(() => t.closes.length === 1, 3000, "close");
  });
});

// clientFrames is the reference the tests read the client's bytes with: check it on a known frame
describe("test support", () => {
  it("clientFrames unmasks a known masked frame (RFC 6455 §5.7's example)", () => {
    const { frames, used } = clientFrames(Buffer.from([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]));
    expect(used).toBe(11);
    expect(frames[0]!.payload.toString()).toBe("Hello");
  });
});

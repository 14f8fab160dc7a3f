// Test helpers for the Node tunnel's own WebSocket client (host/node/ws-client.ts): a raw TCP
// server that answers the upgrade (rightly, or as told) and then sends whatever bytes a test gives
// it, server frames built by hand, and a reader of the client's masked frames.
import net from "node:net";
import { wsAccept } from "../../../host/node/ws-frames.js";

/** An unmasked server frame. */
export function serverFrame(op: number, payload: Uint8Array | string, fin = true): Buffer {
  const p = typeof payload === "string" ? Buffer.from(payload) : Buffer.from(payload);
  const len = p.length;
  const h = len < 126 ? Buffer.from([(fin ? 0x80 : 0) | op, len]) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  if (len >= 126) {
    h[0] = (fin ? 0x80 : 0) | op;
    if (len < 65536) {
      h[1] = 126;
      h.writeUInt16BE(len, 2);
    } else {
      h[1] = 127;
      h.writeUInt32BE(0, 2);
      h.writeUInt32BE(len, 6);
    }
  }
  return Buffer.concat([h, p]);
}

export interface ClientFrame {
  fin: boolean;
  op: number;
  masked: boolean;
  payload: Buffer;
}

/** The client's frames in `b` (masked, as a client must), and how many bytes they took. */
export function clientFrames(b: Buffer): { frames: ClientFrame[]; used: number } {
  const frames: ClientFrame[] = [];
  let at = 0;
  for (;;) {
    if (b.length - at < 2) break;
    const fin = (b[at]! & 0x80) !== 0, op = b[at]! & 0x0f, masked = (b[at + 1]! & 0x80) !== 0;
    let len = b[at + 1]! & 0x7f;
    let h = 2;
    if (len === 126) {
      if (b.length - at < 4) break;
      len = b.readUInt16BE(at + 2);
      h = 4;
    } else if (len === 127) {
      if (b.length - at < 10) break;
      len = b.readUInt32BE(at + 6);
      h = 10;
    }
    const k = masked ? 4 : 0;
    if (b.length - at < h + k + len) break;
    const key = b.subarray(at + h, at + h + k);
    const payload = Buffer.from(b.subarray(at + h + k, at + h + k + len));
    if (masked) for (let i = 0; i < len; i++) payload[i]! ^= key[i & 3]!;
    frames.push({ fin, op, masked, payload });
    at += h + k + len;
  }
  return { frames, used: at };
}

export interface RawServer {
  url: string;
  /** each connection's bytes from the client after the upgrade, as frames */
  conns: { sock: net.Socket; frames: ClientFrame[]; request: string; ended: boolean }[];
  close(): Promise<void>;
}

/**
 * A server on `host` that answers each upgrade with `answer(request, accept)` (default: a right
 * 101 picking the first offered protocol) and then `after` (bytes written at once after the answer).
 */
export async function rawServer(
  host: string,
  opts: { answer?: (request: string, accept: string) => string | Buffer; after?: Buffer } = {},
): Promise<RawServer> {
  const conns: RawServer["conns"] = [];
  const server = net.createServer((sock) => {
    const c = { sock, frames: [] as ClientFrame[], request: "", ended: false };
    conns.push(c);
    let buf = Buffer.alloc(0);
    let upgraded = false;
    sock.on("error", () => {});
    sock.on("end", () => {
      c.ended = true;
      sock.end();
    });
    sock.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        c.request = buf.subarray(0, end).toString("latin1");
        buf = buf.subarray(end + 4);
        upgraded = true;
        const key = /sec-websocket-key: *(\S+)/i.exec(c.request)?.[1] ?? "";
        const proto = /sec-websocket-protocol: *([^,\r\n]+)/i.exec(c.request)?.[1]?.trim();
        const accept = wsAccept(key);
        const answer = opts.answer?.(c.request, accept) ??
          `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${proto ? `Sec-WebSocket-Protocol: ${proto}\r\n` : ""}\r\n`;
        sock.write(answer);
        if (opts.after) sock.write(opts.after);
      }
      const { frames, used } = clientFrames(buf);
      c.frames.push(...frames);
      buf = buf.subarray(used);
    });
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `ws://${host}:${port}/tunnel`,
    conns,
    close: () => {
      for (const c of conns) c.sock.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

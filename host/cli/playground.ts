// softroce playground: serves the playground page (dist/playground, a static folder) with
// the cross-origin isolation headers, and starts a gateway plus a Node device on real UDP
// for the page's live mode. Runs until SIGINT/SIGTERM (or --duration), then stops everything.
import http from "node:http";
import { readFile, stat } from "node:fs/promises";
import { extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { Gateway } from "../gateway/index.js";
import { openDevice, udpLinkOf } from "../node/index.js";
import { Access, QpType, connectQp, type Device, type QueuePair, type MemoryRegion } from "../core/index.js";
import { type FlagSpec, formatFlags, parseArgs, UsageError } from "./args.js";
import { type Command, type Io, untilSignal } from "./command.js";

const FLAGS: FlagSpec[] = [
  { name: "port", short: "p", type: "int", min: 0, max: 65535, default: 8790, valueName: "n", help: "HTTP port of the page (0: any free port)" },
  { name: "host", type: "string", default: "127.0.0.1", valueName: "addr", help: "HTTP listen address" },
  { name: "dir", type: "string", valueName: "path", help: "the static folder to serve (default: dist/playground beside this command)" },
  { name: "no-live", type: "boolean", help: "no gateway and no live peer (the simulated wire only)" },
  { name: "gateway-port", type: "int", min: 0, max: 65535, default: 0, valueName: "n", help: "WebSocket port of the gateway (0: any free port)" },
  { name: "udp-address", type: "string", default: "127.0.0.1", valueName: "addr", help: "UDP address of the gateway (the page's device in live mode)" },
  { name: "peer-address", type: "string", default: "127.0.0.2", valueName: "addr", help: "UDP address of the live peer device" },
  { name: "udp-port", type: "int", min: 0, max: 65535, default: 4791, valueName: "n", help: "UDP port of both (0: free ports; RoCEv2 and decoders expect 4791)" },
  { name: "duration", type: "int", min: 1, max: 86400 * 365, valueName: "s", help: "stop after this many seconds" },
  { name: "help", short: "h", type: "boolean", help: "show this help" },
];

const HELP = `usage: softroce playground [--port <n>] [--host <addr>] [--no-live]

Serves the playground — two RoCEv2 devices in the page on a simulated wire — at
http://<host>:<port>/ (Cross-Origin-Opener-Policy: same-origin, Cross-Origin-Embedder-Policy:
require-corp). Unless --no-live, it also starts a gateway (WebSocket tunnel to UDP) and a device
on real UDP that the page's live mode talks to. Ctrl-C stops it.

${formatFlags(FLAGS)}
`;

const MIME: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".wasm": "application/wasm",
  ".map": "application/json",
  ".json": "application/json",
  ".png": "image/png",
  ".svg": "image/svg+xml",
};

/** Headers every response carries: cross-origin isolation, and no sniffing. */
export const ISOLATION_HEADERS = {
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-embedder-policy": "require-corp",
  "cross-origin-resource-policy": "same-origin",
  "x-content-type-options": "nosniff",
} as const;

const MAX_LIVE_QPS = 16;
/** Rendezvous rooms (examples/browser-chat): at most this many, two endpoints each, forgotten after ROOM_TTL_MS. */
const MAX_ROOMS = 64;
const ROOM_TTL_MS = 10 * 60_000;

interface Endpoint {
  qpn: number;
  psn: number;
  gid: string;
  port: number;
  name: string;
}

/** Reads a small JSON body (at most 2 KiB); undefined when it is too large or not JSON. */
async function jsonBody(req: http.IncomingMessage): Promise<Record<string, unknown> | undefined> {
  let raw = "";
  for await (const chunk of req) {
    raw += chunk;
    if (raw.length > 2048) return undefined;
  }
  try {
    const v = JSON.parse(raw);
    return v && typeof v === "object" && !Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** An RC endpoint as pages announce it: QPN, PSN (24 bits), GID text, UDP port, a short name. */
function endpointOf(v: unknown): Endpoint | undefined {
  if (!v || typeof v !== "object") return undefined;
  const e = v as Record<string, unknown>;
  const u24 = (x: unknown) => typeof x === "number" && Number.isInteger(x) && x >= 0 && x <= 0xffffff;
  const name = e.name === undefined ? "" : e.name;
  if (!u24(e.qpn) || !u24(e.psn) || typeof e.gid !== "string" || e.gid.length > 64 || !/^[0-9a-fA-F:.]+$/.test(e.gid)) return undefined;
  if (!(typeof e.port === "number" && Number.isInteger(e.port) && e.port > 0 && e.port < 65536)) return undefined;
  if (typeof name !== "string" || name.length > 32) return undefined;
  return { qpn: e.qpn as number, psn: e.psn as number, gid: e.gid, port: e.port, name };
}
const LIVE_MR_BYTES = 1 << 16;
/** The live peer's receive buffers (a SEND from the page is at most this long). */
export const LIVE_RECV_BYTES = 4096;

interface LivePeer {
  device: Device;
  qps: { qp: QueuePair; mr: MemoryRegion }[];
  address: string;
  port: number;
}

export interface PlaygroundServer {
  url: string;
  port: number;
  gatewayUrl?: string;
  close(): Promise<void>;
}

/** Starts the page server (and the gateway and live peer unless `live` is false). */
export async function startPlayground(o: {
  dir: string;
  host: string;
  port: number;
  live: boolean;
  gatewayPort: number;
  udpAddress: string;
  peerAddress?: string;
  udpPort?: number;
}): Promise<PlaygroundServer> {
  const root = resolve(o.dir);
  const st = await stat(join(root, "index.html")).catch(() => undefined);
  if (!st?.isFile()) throw new Error(`no playground in ${root} (run npm run build first)`);

  let peer: LivePeer | undefined;
  let gw: Gateway | undefined;
  const server = http.createServer((req, res) => void handle(req, res));
  const hostPart = o.host.includes(":") ? `[${o.host}]` : o.host;

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const send = (code: number, type: string, body: string | Uint8Array, extra: Record<string, string> = {}) => {
      res.writeHead(code, { ...ISOLATION_HEADERS, "content-type": type, "cache-control": "no-store", ...extra });
      res.end(req.method === "HEAD" ? undefined : body);
    };
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "http://x");
    } catch {
      return send(400, "text/plain", "bad request\n");
    }
    if (url.pathname === "/live.json" && (req.method === "GET" || req.method === "HEAD")) {
      const body = gw && peer ? { gateway: `ws://${hostPart}:${gw.port}/tunnel`, peer: { address: peer.address, port: peer.port } } : { gateway: null };
      return send(200, MIME[".json"], JSON.stringify(body));
    }
    if (url.pathname === "/live/connect" && req.method === "POST") return liveConnect(req, send);
    if (url.pathname === "/rendezvous" && req.method === "POST") return rendezvous(req, send);
    if (req.method !== "GET" && req.method !== "HEAD") return send(405, "text/plain", "method not allowed\n", { allow: "GET, HEAD" });
    let rel: string;
    try {
      rel = decodeURIComponent(url.pathname);
    } catch {
      return send(400, "text/plain", "bad path\n");
    }
    if (rel.includes("\0")) return send(400, "text/plain", "bad path\n");
    if (rel.endsWith("/")) rel += "index.html";
    const file = normalize(join(root, rel));
    if (!file.startsWith(root + sep)) return send(403, "text/plain", "forbidden\n");
    const type = MIME[extname(file)];
    try {
      const body = await readFile(file);
      send(200, type ?? "application/octet-stream", body);
    } catch {
      send(404, "text/plain", "not found\n");
    }
  }

  // Two pages meet in a room: each POSTs its endpoint and gets the other's once it is there.
  const rooms = new Map<string, { at: number; members: Endpoint[] }>();
  async function rendezvous(req: http.IncomingMessage, send: (code: number, type: string, body: string) => void): Promise<void> {
    const body = await jsonBody(req);
    const room = body?.room;
    const me = endpointOf(body?.me);
    if (typeof room !== "string" || !/^[\w-]{1,32}$/.test(room) || !me) return send(400, "text/plain", "want {room, me: {qpn, psn, gid, port, name}}\n");
    const now = Date.now();
    for (const [k, r] of rooms) if (now - r.at > ROOM_TTL_MS) rooms.delete(k);
    let r = rooms.get(room);
    if (!r) {
      if (rooms.size >= MAX_ROOMS) return send(503, "text/plain", "too many rooms\n");
      r = { at: now, members: [] };
      rooms.set(room, r);
    }
    const same = (e: Endpoint) => e.qpn === me.qpn && e.gid === me.gid && e.port === me.port;
    if (!r.members.some(same)) {
      if (r.members.length >= 2) return send(409, "text/plain", "the room is full\n");
      r.members.push(me);
    }
    const peer = r.members.find((e) => !same(e)) ?? null;
    send(200, MIME[".json"], JSON.stringify({ peer }));
  }

  /** The page's live-mode QP: {qpn, psn, gid, port} in, the peer's QP and memory region out. */
  async function liveConnect(req: http.IncomingMessage, send: (code: number, type: string, body: string) => void): Promise<void> {
    if (!peer) return send(404, "text/plain", "live mode is off\n");
    const body = endpointOf(await jsonBody(req));
    if (!body) return send(400, "text/plain", "want {qpn, psn, gid, port}\n");
    if (peer.qps.length >= MAX_LIVE_QPS) {
      const old = peer.qps.shift()!;
      old.qp.destroy();
      old.mr.destroy();
    }
    try {
      const pd = peer.device.allocPd();
      const cq = peer.device.createCq(256);
      const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 64, maxRecvWr: 64, maxSendSge: 1, maxRecvSge: 1 } });
      const all = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ | Access.REMOTE_ATOMIC;
      const mr = pd.regMr(LIVE_MR_BYTES, all);
      for (let i = 0; i < mr.length; i++) mr.bytes[i] = (i * 13 + 5) & 0xff;
      const psn = 0x800;
      connectQp(qp, { qpNum: body.qpn, psn: body.psn, gid: body.gid, port: body.port }, { sqPsn: psn, qpAccessFlags: all, timeout: 14, retryCnt: 7, rnrRetry: 7, minRnrTimer: 12, maxRdAtomic: 4, maxDestRdAtomic: 4 });
      // 8 receives of LIVE_RECV_BYTES in the upper half of the region (the lower half is for WRITE/READ/atomics)
      qp.postRecv(Array.from({ length: 8 }, (_, i) => ({ wrId: BigInt(i), sgList: [mr.sge(LIVE_MR_BYTES / 2 + i * LIVE_RECV_BYTES, LIVE_RECV_BYTES)] })));
      peer.qps.push({ qp, mr });
      const gid = `::ffff:${peer.address}`;
      send(200, MIME[".json"], JSON.stringify({ qpn: qp.qpNum, psn, gid, port: peer.port, addr: mr.addr.toString(), rkey: mr.rkey, length: mr.length }));
    } catch (e) {
      send(500, "text/plain", `${(e as Error).message}\n`);
    }
  }

  try {
    if (o.live) {
      const address = o.peerAddress ?? o.udpAddress;
      const device = await openDevice({ address, port: o.udpPort ?? 0, maxQp: 64 });
      const port = udpLinkOf(device)?.localPort ?? 0;
      peer = { device, qps: [], address, port };
    }
    await new Promise<void>((ok, fail) => {
      server.once("error", fail);
      server.listen(o.port, o.host, () => ok());
    });
    const port = (server.address() as { port: number }).port;
    if (peer) {
      gw = await Gateway.start({
        listen: o.host,
        port: o.gatewayPort,
        udpAddress: o.udpAddress,
        udpPort: o.udpPort ?? 0,
        allow: [peer.address],
        dstPorts: [peer.port],
        origins: [`http://${hostPart}:${port}`],
        maxClients: 16,
      });
    }
    return {
      url: `http://${hostPart}:${port}/`,
      port,
      gatewayUrl: gw ? `ws://${hostPart}:${gw.port}/tunnel` : undefined,
      async close() {
        server.closeAllConnections();
        await new Promise<void>((r) => server.close(() => r()));
        await gw?.close();
        peer?.device.close();
      },
    };
  } catch (e) {
    server.close();
    await gw?.close();
    peer?.device.close();
    throw e;
  }
}

function defaultDir(): string {
  // dist/cli/softroce.js -> dist/playground
  return fileURLToPath(new URL("../playground/", import.meta.url));
}

/** Runs the playground server from argv until `stop` resolves. */
export async function runPlayground(argv: readonly string[], io: Io, stop: Promise<unknown>): Promise<number> {
  const { flags } = parseArgs(argv, FLAGS);
  if (flags.help) {
    io.out(HELP);
    return 0;
  }
  const host = flags.host as string;
  if (!/^[\w.:-]+$/.test(host)) throw new UsageError(`--host: bad address ${JSON.stringify(host)}`);
  let srv: PlaygroundServer;
  try {
    srv = await startPlayground({
      dir: (flags.dir as string | undefined) ?? defaultDir(),
      host,
      port: flags.port as number,
      live: flags["no-live"] !== true,
      gatewayPort: flags["gateway-port"] as number,
      udpAddress: flags["udp-address"] as string,
      peerAddress: flags["peer-address"] as string,
      udpPort: flags["udp-port"] as number,
    });
  } catch (e) {
    const msg = (e as Error).message;
    const hint = /in use|EADDRINUSE/i.test(msg) ? " (is UDP port 4791 taken, e.g. by Linux rxe? try --udp-port 0, other addresses, or --no-live)" : "";
    io.err(`softroce playground: ${msg}${hint}\n`);
    return 1;
  }
  io.out(`softroce playground: open ${srv.url}${srv.gatewayUrl ? ` (live mode: gateway ${srv.gatewayUrl})` : ""}\n`);
  const duration = flags.duration as number | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([stop, duration ? new Promise((r) => (timer = setTimeout(r, duration * 1000))) : new Promise(() => {})]);
  clearTimeout(timer);
  await srv.close();
  io.out("softroce playground: stopped\n");
  return 0;
}

export const playgroundCommand: Command = {
  name: "playground",
  summary: "serve the playground page (and a gateway for its live mode)",
  run(argv, io) {
    return runPlayground(argv, io, untilSignal());
  },
};

// connectQpOverTcp: what every two-process RDMA program does before its first work request —
// tell the peer our QP number, first PSN, GID and UDP port over TCP, learn the peer's, and move
// the QP from RESET to RTS (connectQp). The server accepts one client; the client sends first;
// the server connects its QP before answering and the client says "done" once its QP is
// connected, so both sides return with the QP in RTS (rdma-core's pingpong order). Each side may
// also send one JSON value (`info`: typically an MR's address and rkey); bigints travel as
// decimal strings (`jsonReplacer`).
import net from "node:net";
import { connectQp, type ConnectOptions, type Device, type MemoryRegion, type QpEndpoint, type QueuePair } from "../core/index.js";
import { workerLinkOf } from "./worker/open.js";
import { udpLinkOf } from "./index.js";

/** The UDP port a device opened with an address is bound to (what the peer must send to). */
export function udpPortOf(device: Device): number | undefined {
  return udpLinkOf(device)?.localPort ?? workerLinkOf(device)?.localPort;
}

/** rdma-core's default TCP port for the out-of-band exchange (ibv_rc_pingpong -p). */
export const EXCHANGE_TCP_PORT = 18515;

/** The one-line protocol's name and version: a peer speaking anything else is refused. */
const PROTOCOL = "softroce-exchange/1";
/** A line longer than this is not from a softroce peer. */
const MAX_LINE = 64 * 1024;

/** Why an exchange failed; `code` says which step, the message names the address and port. */
export class ExchangeError extends Error {
  override name = "ExchangeError";
  constructor(
    readonly code: "ELISTEN" | "ECONNECT" | "ETIMEDOUT" | "EPROTO" | "ECLOSED",
    message: string,
  ) {
    super(message);
  }
}

export interface TcpExchangeOptions extends Partial<ConnectOptions> {
  /** client: the server's host name or address; absent: this side is the server */
  host?: string;
  /** TCP port (default 18515, as rdma-core) */
  port?: number;
  /** server: the address to listen on (default every IPv4 address, as rdma-core) */
  listenAddress?: string;
  /** any JSON value for the peer (bigints become decimal strings); the peer's arrives as `info` */
  info?: unknown;
  /** give up after this many ms (0 or absent: wait forever) */
  timeoutMs?: number;
  /** server: called once the socket listens (a client may connect from then on) */
  onListening?: (port: number) => void;
}

export interface TcpExchangeResult {
  /** what the peer sent: its QPN, first PSN, GID and UDP port */
  remote: QpEndpoint;
  /** the peer's `info` (undefined when it sent none) */
  info: unknown;
}

/** JSON.stringify's replacer for bigint fields (mr.addr, wrId): a decimal string. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}

/** What a peer needs to reach an MR with RDMA: its address (decimal string), rkey and length. */
export interface RemoteMr {
  addr: string;
  rkey: number;
  length: number;
}

/** An MR as a JSON-ready RemoteMr; `remoteAddr(info.addr)` turns the address back into a bigint. */
export function remoteMr(mr: MemoryRegion): RemoteMr {
  return { addr: mr.addr.toString(), rkey: mr.rkey, length: mr.length };
}

/** A decimal (or 0x hex) address string from the peer as a bigint; throws ExchangeError otherwise. */
export function remoteAddr(text: unknown): bigint {
  if (typeof text !== "string" || !/^(0x[0-9a-fA-F]{1,16}|\d{1,20})$/.test(text)) {
    throw new ExchangeError("EPROTO", `not an address: ${JSON.stringify(text)}`);
  }
  const v = BigInt(text);
  if (v >= 1n << 64n) throw new ExchangeError("EPROTO", `address ${text} is wider than 64 bits`);
  return v;
}

/** This QP's endpoint as the peer needs it: QPN, PSN, GID `gidIndex` of its device, UDP port. */
export function localEndpoint(qp: QueuePair, device: Device, psn: number, gidIndex = 0): QpEndpoint {
  const port = udpPortOf(device) ?? 4791;
  return { qpNum: qp.qpNum, psn, gid: device.queryGid(gidIndex), port };
}

/**
 * Exchanges endpoints with the peer over TCP and connects `qp` (RESET → RTS) to it. The QP must
 * be in RESET; `device` is the one it was created on. Options are connectQp's (the access flags,
 * MTU, timeouts) plus where to meet. Resolves once both QPs are connected.
 */
export async function connectQpOverTcp(qp: QueuePair, device: Device, o: TcpExchangeOptions = {}): Promise<TcpExchangeResult> {
  const port = o.port ?? EXCHANGE_TCP_PORT;
  const sqPsn = o.sqPsn ?? Math.floor(Math.random() * 0x1000000);
  const mine = localEndpoint(qp, device, sqPsn, o.sgidIndex ?? 0);
  const line = JSON.stringify({ protocol: PROTOCOL, qpn: mine.qpNum, psn: mine.psn, gid: mine.gid, udpPort: mine.port, info: o.info }, jsonReplacer) + "\n";
  const connect = (remote: QpEndpoint) => connectQp(qp, remote, { ...o, sqPsn });
  const deadline = o.timeoutMs ? Date.now() + o.timeoutMs : Infinity;
  if (o.host === undefined) {
    const sock = await acceptOne(port, o.listenAddress ?? "0.0.0.0", deadline, o.onListening);
    const lines = new LineReader(sock, `the client ${sock.remoteAddress}:${sock.remotePort}`);
    try {
      const peer = parsePeer(await lines.next(deadline));
      connect(peer.remote);
      sock.write(line);
      const done = await lines.next(deadline);
      if (done !== "done") throw new ExchangeError("EPROTO", `the client sent '${done.slice(0, 40)}' where 'done' belongs`);
      return peer;
    } finally {
      sock.destroy();
    }
  }
  const sock = await connectTo(o.host, port, deadline);
  const lines = new LineReader(sock, `the server ${o.host}:${port}`);
  try {
    sock.write(line);
    const peer = parsePeer(await lines.next(deadline));
    connect(peer.remote);
    await new Promise<void>((resolve) => sock.end("done\n", () => resolve()));
    return peer;
  } finally {
    sock.destroy();
  }
}

function parsePeer(text: string): TcpExchangeResult {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new ExchangeError("EPROTO", `the peer sent no JSON line: '${text.slice(0, 40)}'`);
  }
  const m = v as { protocol?: unknown; qpn?: unknown; psn?: unknown; gid?: unknown; udpPort?: unknown; info?: unknown };
  if (typeof m !== "object" || m === null || m.protocol !== PROTOCOL) {
    throw new ExchangeError("EPROTO", `the peer does not speak ${PROTOCOL}`);
  }
  const int = (name: string, x: unknown, max: number): number => {
    if (typeof x !== "number" || !Number.isInteger(x) || x < 0 || x > max) throw new ExchangeError("EPROTO", `the peer's ${name} is not an integer 0..${max}: ${JSON.stringify(x)}`);
    return x;
  };
  if (typeof m.gid !== "string" || m.gid.length > 64) throw new ExchangeError("EPROTO", "the peer's gid is not a GID text");
  return {
    remote: { qpNum: int("qpn", m.qpn, 0xffffff), psn: int("psn", m.psn, 0xffffff), gid: m.gid, port: int("udpPort", m.udpPort, 65535) },
    info: m.info,
  };
}

function remaining(deadline: number): number {
  return deadline === Infinity ? 0 : Math.max(1, deadline - Date.now());
}

function acceptOne(port: number, host: string, deadline: number, onListening?: (port: number) => void): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finish = (e: Error | undefined, s?: net.Socket) => {
      if (timer) clearTimeout(timer);
      server.close();
      if (e) reject(e);
      else resolve(s!);
    };
    server.once("error", (e: NodeJS.ErrnoException) =>
      finish(new ExchangeError("ELISTEN", `cannot listen on TCP ${host}:${port}: ${e.code ?? e.message} (choose another port)`)),
    );
    server.once("connection", (s) => finish(undefined, s));
    server.listen({ port, host, exclusive: true }, () => {
      if (deadline !== Infinity) {
        timer = setTimeout(() => finish(new ExchangeError("ETIMEDOUT", `no client on TCP port ${port} within ${Math.round(remaining(deadline) / 1000)} s`)), remaining(deadline));
      }
      onListening?.((server.address() as net.AddressInfo).port);
    });
  });
}

function connectTo(host: string, port: number, deadline: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection({ host, port });
    let timer: ReturnType<typeof setTimeout> | undefined;
    if (deadline !== Infinity) {
      timer = setTimeout(() => {
        sock.destroy();
        reject(new ExchangeError("ETIMEDOUT", `connecting to TCP ${host}:${port} timed out`));
      }, remaining(deadline));
    }
    sock.once("connect", () => {
      clearTimeout(timer);
      resolve(sock);
    });
    sock.once("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new ExchangeError("ECONNECT", `cannot connect to TCP ${host}:${port}: ${e.code ?? e.message} (is the server running, with the same port?)`));
    });
  });
}

/** Lines from a socket, bounded in length; an early close is an ExchangeError naming the peer. */
class LineReader {
  private buf = "";
  private wake: (() => void) | undefined;
  private closed = false;

  constructor(
    sock: net.Socket,
    private readonly who: string,
  ) {
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => {
      this.buf += d;
      this.wake?.();
    });
    const end = () => {
      this.closed = true;
      this.wake?.();
    };
    sock.on("end", end);
    sock.on("close", end);
    sock.on("error", end);
  }

  async next(deadline: number): Promise<string> {
    for (;;) {
      const nl = this.buf.indexOf("\n");
      if (nl >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        return line;
      }
      if (this.buf.length > MAX_LINE) throw new ExchangeError("EPROTO", `${this.who} sent a line over ${MAX_LINE} bytes`);
      if (this.closed) throw new ExchangeError("ECLOSED", `${this.who} closed the connection during the exchange`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve, reject) => {
        this.wake = resolve;
        if (deadline !== Infinity) timer = setTimeout(() => reject(new ExchangeError("ETIMEDOUT", `timed out waiting for ${this.who}`)), remaining(deadline));
      }).finally(() => clearTimeout(timer));
      this.wake = undefined;
    }
  }
}

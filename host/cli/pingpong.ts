// What rdma-core's ibv_{rc,uc,ud}_pingpong share (libibverbs/examples/pingpong.c and the
// examples' common main): the flags and defaults, the out-of-band exchange over TCP (the 52-byte
// "LID:QPN:PSN:wire-GID" message, then "done"), the address lines and the summary lines. Each
// transport's file (rc_pingpong.ts) adds its context and its loop.
import net from "node:net";
import { isIPv4, isIPv6 } from "node:net";
import { formatGid, parseGid, Mtu } from "../core/verbs/index.js";
import { concat } from "../core/net/index.js";
import { type FlagSpec, type FlagValue, UsageError } from "./args.js";

/** The device name the tools answer to (-d), as `ibv_devices` would list it. */
export const DEVICE_NAME = "softroce0";

/** rdma-core's default TCP port for the exchange. */
export const OOB_PORT = 18515;

/** sizeof "0000:000000:000000:00000000000000000000000000000000" (the NUL included). */
export const OOB_MSG_LEN = 52;
/** sizeof "done" */
export const DONE_LEN = 5;

/** The flags every pingpong takes: rdma-core's (same letters, names and defaults) and ours. */
export const PINGPONG_FLAGS: FlagSpec[] = [
  { name: "port", short: "p", type: "int", min: 1, max: 65535, default: OOB_PORT, valueName: "port", help: "listen on/connect to TCP port <port>" },
  { name: "ib-dev", short: "d", type: "string", valueName: "dev", help: `use IB device <dev> (default first device found: ${DEVICE_NAME})` },
  { name: "ib-port", short: "i", type: "int", min: 1, max: 255, default: 1, valueName: "port", help: "use port <port> of IB device" },
  { name: "size", short: "s", type: "int", min: 1, max: 1 << 24, default: 4096, valueName: "size", help: "size of message to exchange" },
  { name: "mtu", short: "m", type: "int", default: 1024, valueName: "size", help: "path MTU: 256, 512, 1024, 2048 or 4096" },
  { name: "rx-depth", short: "r", type: "int", min: 1, max: 16384, default: 500, valueName: "dep", help: "number of receives to post at a time" },
  { name: "iters", short: "n", type: "int", min: 1, max: 1_000_000_000, default: 1000, valueName: "iters", help: "number of exchanges" },
  { name: "sl", short: "l", type: "int", min: 0, max: 15, default: 0, valueName: "sl", help: "service level value" },
  { name: "events", short: "e", type: "boolean", help: "sleep on CQ events (default poll)" },
  { name: "gid-idx", short: "g", type: "int", min: 0, max: 255, valueName: "gid index", help: "local port gid index (default 0, the bound address: RoCE needs a GID)" },
  { name: "chk", short: "c", type: "boolean", help: "validate received buffer" },
  { name: "address", type: "string", valueName: "addr", default: "127.0.0.1", help: "softroce: local IPv4 or IPv6 address the device binds (its GID 0)" },
  { name: "udp-port", type: "int", min: 1, max: 65535, default: 4791, valueName: "n", help: "softroce: UDP port of the device; the peer must use the same one (RoCE: 4791)" },
  { name: "pcap", type: "string", valueName: "file", help: "softroce: write every datagram this side sends and receives to a pcap" },
  { name: "timeout", type: "int", min: 0, max: 86400, default: 0, valueName: "sec", help: "softroce: give up after <sec> seconds without progress (0: wait forever, as rdma-core)" },
  { name: "help", short: "h", type: "boolean", help: "show this help" },
];

/** Names a user may try that mean something else here: the usage error says what to use. */
export const PINGPONG_RENAMED: Record<string, string> = {
  "--tcp-port": "the TCP port is -p/--port, as in rdma-core",
  "--qp-timeout": "--timeout <sec> gives up when nothing progresses; the QP's ACK timeout is rdma-core's 14",
};

/** rdma-core flags softroce accepts but cannot honour: the message rdma-core prints when the device lacks the feature. */
export const UNSUPPORTED_FLAGS: { spec: FlagSpec; message: string }[] = [
  { spec: { name: "odp", short: "o", type: "boolean", help: "use on demand paging (not supported)" },
    message: "The device isn't ODP capable or does not support RC send and receive with ODP" },
  { spec: { name: "iodp", short: "O", type: "boolean", help: "use implicit on demand paging (not supported)" },
    message: "The device isn't ODP capable or does not support RC send and receive with ODP" },
  { spec: { name: "prefetch", short: "P", type: "boolean", help: "prefetch an ODP MR (not supported)" },
    message: "prefetch is valid only with on-demand memory region" },
  { spec: { name: "ts", short: "t", type: "boolean", help: "get CQE with timestamp (not supported)" },
    message: "The device isn't completion timestamp capable" },
  { spec: { name: "dm", short: "j", type: "boolean", help: "use device memory (not supported)" },
    message: "Device doesn't support dm allocation" },
];

const MTUS: Record<number, number> = { 256: Mtu.MTU_256, 512: Mtu.MTU_512, 1024: Mtu.MTU_1024, 2048: Mtu.MTU_2048, 4096: Mtu.MTU_4096 };

export interface PingpongOptions {
  servername?: string;
  tcpPort: number;
  ibDev?: string;
  ibPort: number;
  size: number;
  mtu: number;
  /** the verbs enum value of mtu */
  mtuEnum: number;
  rxDepth: number;
  iters: number;
  sl: number;
  events: boolean;
  gidIdx?: number;
  chk: boolean;
  address: string;
  udpPort: number;
  /** ms; 0 = none */
  timeoutMs: number;
  /** where to write this side's capture */
  pcap?: string;
  /** srq_pingpong's -q (1 for the others) */
  numQp: number;
}

/** Turns parsed flags into options (UsageError on values rdma-core would refuse with its usage text). */
export function pingpongOptions(flags: Record<string, FlagValue | undefined>, positionals: string[]): PingpongOptions {
  const mtu = (flags.mtu as number | undefined) ?? 1024;
  if (MTUS[mtu] === undefined) throw new UsageError(`-m/--mtu must be 256, 512, 1024, 2048 or 4096, got ${mtu}`);
  const address = flags.address as string;
  if (!isIPv4(address) && !isIPv6(address)) throw new UsageError(`--address wants a local IPv4 or IPv6 address, got '${address}'`);
  const servername = positionals[0];
  if (servername !== undefined && servername.trim() === "") throw new UsageError("empty server name");
  return {
    servername,
    tcpPort: flags.port as number,
    ibDev: flags["ib-dev"] as string | undefined,
    ibPort: flags["ib-port"] as number,
    size: flags.size as number,
    mtu,
    mtuEnum: MTUS[mtu],
    rxDepth: flags["rx-depth"] as number,
    iters: flags.iters as number,
    sl: flags.sl as number,
    events: flags.events === true,
    gidIdx: flags["gid-idx"] as number | undefined,
    chk: flags.chk === true,
    address,
    udpPort: flags["udp-port"] as number,
    timeoutMs: (flags.timeout as number) * 1000,
    pcap: flags.pcap as string | undefined,
    numQp: (flags["num-qp"] as number | undefined) ?? 1,
  };
}

/** One side's address as rc_pingpong exchanges it. */
export interface PingpongDest {
  lid: number;
  qpn: number;
  psn: number;
  /** 16 bytes */
  gid: Uint8Array;
}

/** pingpong.c gid_to_wire_gid: the 16 GID bytes in order as 32 lowercase hex digits. */
export function gidToWire(gid: Uint8Array): string {
  return Array.from(gid, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** wire_gid_to_gid */
export function wireToGid(wire: string): Uint8Array {
  if (!/^[0-9a-fA-F]{32}$/.test(wire)) throw new PingpongError(`bad wire GID '${wire}'`);
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = parseInt(wire.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const hex = (n: number, w: number) => (n >>> 0).toString(16).padStart(w, "0");

/** The 52-byte message: "%04x:%06x:%06x:%s" and its NUL. */
export function formatDestMsg(d: PingpongDest): Uint8Array {
  const text = `${hex(d.lid, 4)}:${hex(d.qpn, 6)}:${hex(d.psn, 6)}:${gidToWire(d.gid)}`;
  const out = new Uint8Array(OOB_MSG_LEN);
  out.set(new TextEncoder().encode(text).subarray(0, OOB_MSG_LEN - 1));
  return out;
}

/** sscanf(msg, "%x:%x:%x:%s"), strictly: anything else is an error naming what came. */
export function parseDestMsg(msg: Uint8Array): PingpongDest {
  const nul = msg.indexOf(0);
  const text = new TextDecoder().decode(nul < 0 ? msg : msg.subarray(0, nul));
  const m = /^([0-9a-fA-F]{1,8}):([0-9a-fA-F]{1,8}):([0-9a-fA-F]{1,8}):([0-9a-fA-F]{32})$/.exec(text);
  if (!m) throw new PingpongError(`bad address message from the peer: '${text.slice(0, 60)}'`);
  return { lid: parseInt(m[1], 16), qpn: parseInt(m[2], 16), psn: parseInt(m[3], 16), gid: wireToGid(m[4]) };
}

/** "  local address:  LID 0x%04x, QPN 0x%06x, PSN 0x%06x, GID %s" (inet_ntop AF_INET6 of the GID). */
export function addressLine(which: "local" | "remote", d: PingpongDest): string {
  const label = which === "local" ? "  local address: " : "  remote address:";
  return `${label} LID 0x${hex(d.lid, 4)}, QPN 0x${hex(d.qpn, 6)}, PSN 0x${hex(d.psn, 6)}, GID ${formatGid(d.gid)}\n`;
}

/** The two summary lines (times from gettimeofday: whole µs). */
export function summaryLines(size: number, iters: number, usec: number): string {
  const bytes = size * iters * 2;
  return (
    `${bytes} bytes in ${(usec / 1e6).toFixed(2)} seconds = ${((bytes * 8) / usec).toFixed(2)} Mbit/sec\n` +
    `${iters} iters in ${(usec / 1e6).toFixed(2)} seconds = ${(usec / iters).toFixed(2)} usec/iter\n`
  );
}

/** The GID bytes of a GID text. */
export function gidBytes(text: string): Uint8Array {
  return parseGid(text);
}

/** Whether the interface-id half of a GID is nonzero (rc_pingpong then uses a GRH). */
export function gidHasInterfaceId(gid: Uint8Array): boolean {
  for (let i = 8; i < 16; i++) if (gid[i] !== 0) return true;
  return false;
}

/** A failure the tool reports as rdma-core would (one stderr line) and exits 1. */
export class PingpongError extends Error {
  override name = "PingpongError";
}

/** Reads exactly n bytes from a socket (fewer when the peer closes: the caller checks). */
class Reader {
  private buf = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  private ended = false;
  private error: Error | undefined;

  constructor(private readonly sock: net.Socket) {
    sock.on("data", (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.waiting?.();
    });
    sock.on("end", () => {
      this.ended = true;
      this.waiting?.();
    });
    sock.on("error", (e) => {
      this.error = e;
      this.waiting?.();
    });
  }

  async read(n: number, deadline: Deadline): Promise<Uint8Array> {
    while (this.buf.length < n && !this.ended && !this.error) {
      await deadline.race(new Promise<void>((r) => (this.waiting = r)), "waiting for the peer's message");
      this.waiting = undefined;
    }
    if (this.error && this.buf.length < n) throw new PingpongError(`${this.error.message}`);
    const out = this.buf.subarray(0, Math.min(n, this.buf.length));
    this.buf = this.buf.subarray(out.length);
    return new Uint8Array(out);
  }
}

/** A timeout shared by the waits of one phase (0 ms: none). */
export class Deadline {
  constructor(private readonly ms: number) {}

  race<T>(p: Promise<T>, what: string): Promise<T> {
    if (!this.ms) return p;
    let timer: ReturnType<typeof setTimeout>;
    const t = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new PingpongError(`timed out after ${this.ms / 1000} s ${what}`)), this.ms);
    });
    return Promise.race([p, t]).finally(() => clearTimeout(timer));
  }
}

function writeAll(sock: net.Socket, data: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => sock.write(data, (e) => (e ? reject(e) : resolve())));
}

/**
 * The server's side of the exchange, in rdma-core's order: listen on every IPv4 address, accept
 * one client, stop listening, read its 52 bytes, `connect` our QP to it, send ours, read "done".
 * `listening` runs once the socket listens (before anything waits for the client).
 */
/**
 * The server's side of the exchange: listens, reads the client's `my.length` messages, connects
 * (`connect`), writes ours, reads "done". srq_pingpong sends MAX_QP messages each way, the others one.
 */
export async function serverExchange(
  tcpPort: number,
  my: PingpongDest[],
  connect: (remote: PingpongDest[]) => void,
  opts: { timeoutMs: number; listening?: () => void },
): Promise<PingpongDest[]> {
  const server = net.createServer({ pauseOnConnect: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) => reject(new PingpongError(`Couldn't listen to port ${tcpPort} (${e.code ?? e.message})`)));
    server.listen({ port: tcpPort, host: "0.0.0.0", exclusive: true }, () => resolve());
  });
  opts.listening?.();
  const deadline = new Deadline(opts.timeoutMs);
  let sock: net.Socket;
  try {
    sock = await deadline.race(new Promise<net.Socket>((resolve) => server.once("connection", resolve)), `waiting for a client on TCP port ${tcpPort}`);
  } finally {
    server.close();
  }
  const reader = new Reader(sock);
  sock.resume();
  try {
    const rem: PingpongDest[] = [];
    for (let i = 0; i < my.length; i++) {
      const msg = await reader.read(OOB_MSG_LEN, deadline);
      if (msg.length !== OOB_MSG_LEN) throw new PingpongError(`${msg.length}/${OOB_MSG_LEN}: Couldn't read remote address`);
      rem.push(parseDestMsg(msg));
    }
    connect(rem);
    await writeAll(sock, concat(my.map(formatDestMsg)));
    const done = await reader.read(DONE_LEN, deadline);
    if (done.length !== DONE_LEN) throw new PingpongError("Couldn't send/recv local address");
    return rem;
  } finally {
    sock.destroy();
  }
}

/** The client's side: connects, writes our `my.length` messages, reads as many, writes "done". */
export async function clientExchange(host: string, tcpPort: number, my: PingpongDest[], opts: { timeoutMs: number }): Promise<PingpongDest[]> {
  const deadline = new Deadline(opts.timeoutMs);
  const sock = net.createConnection({ host, port: tcpPort });
  const reader = new Reader(sock);
  try {
    await deadline.race(
      new Promise<void>((resolve, reject) => {
        sock.once("connect", resolve);
        sock.once("error", (e: NodeJS.ErrnoException) => reject(new PingpongError(`Couldn't connect to ${host}:${tcpPort} (${e.code ?? e.message})`)));
      }),
      `connecting to ${host}:${tcpPort}`,
    );
    await writeAll(sock, concat(my.map(formatDestMsg)));
    const rem: PingpongDest[] = [];
    for (let i = 0; i < my.length; i++) {
      const msg = await reader.read(OOB_MSG_LEN, deadline);
      if (msg.length !== OOB_MSG_LEN) throw new PingpongError("Couldn't read/write remote address");
      rem.push(parseDestMsg(msg));
    }
    await writeAll(sock, new Uint8Array([0x64, 0x6f, 0x6e, 0x65, 0])); // "done"
    return rem;
  } finally {
    sock.end();
  }
}

export { randomPsn } from "../core/verbs/index.js";

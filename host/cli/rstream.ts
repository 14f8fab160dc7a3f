// softroce rstream and riostream: rdma-core's librdmacm/examples/rstream.c and riostream.c over
// softroce's rsockets (host/core/rsocket/stream.ts), so that Linux's rstream and riostream are the peer. A ping-pong of transfers: the
// client sends -C transfers of -S bytes, the server sends them back, -I times, after a 16-byte sync
// each way; both sides print rstream's table row (name, bytes, xfers, iters, total, time, Gb/sec,
// usec/xfer). Without -S, -C or -I, rstream's own run: a connection for latency tests (one transfer
// each way, many iterations) over its sizes, then another for bandwidth tests (many transfers, one
// iteration). -T v checks every byte as rstream's verify_buf does. rstream's socket options (the
// send and receive buffers, inline data, non-blocking calls) change nothing on the wire. -T s (or f)
// runs the same test over standard TCP sockets, as rstream's use_rs = 0, and opens no device.
// riostream is the same run over rsockets' iomaps: each side maps its transfer buffer (riomap, offset
// 0; RDMA_IOMAPSIZE 1), the 16-byte syncs go by rsend and rrecv, and the transfers by riowrite straight
// into the peer's buffer; a receiver spins on the buffer's last byte until the peer's marker lands
// there (the last transfer of each turn carries it), and -T v checks the bytes before it.
import type { Device } from "../core/verbs/index.js";
import { CmEventRouter, PortSpace, RdmaCmEventType as E, type EventChannel, type RdmaCmId } from "../core/cm/index.js";
import { RStream, RsocketError, type RsocketOptions } from "../core/rsocket/index.js";
import { formatFlags, parseArgs, UsageError, type FlagSpec } from "./args.js";
import { optionsCommand, type Io } from "./command.js";
import { giveUpAfter, rsocketToolOptions, runCmatoseTest, testOptionWord, type CmatoseTest, type RsocketToolOptions } from "./cm-tool.js";
import { perrorText, TcpListener, TcpXfer, tcpConnect } from "./rstream-tcp.js";

type Tool = "rstream" | "riostream";

const RSTREAM_FLAGS: FlagSpec[] = [
  { name: "server-address", short: "s", type: "string", valueName: "addr", help: "the server's address (the client's flag; without it this side is the server)" },
  { name: "bind-address", short: "b", type: "string", valueName: "addr", help: "the address to bind (the server listens there; default 0.0.0.0)" },
  { name: "address-format", short: "f", type: "string", valueName: "fmt", help: "name, ip or ipv6 (numeric addresses either way); gid is refused (AF_IB)" },
  { name: "buffer-size", short: "B", type: "int", min: 1, max: 1 << 26, valueName: "n", help: "SO_SNDBUF and SO_RCVBUF: rsockets' send and receive buffers are twice it [default: 2^19]" },
  { name: "inline-size", short: "i", type: "int", min: 0, max: 65535, valueName: "n", help: "RDMA_INLINE of the latency tests (softroce sends the same packets either way) [default: 64]" },
  { name: "iterations", short: "I", type: "int", min: 1, max: 1 << 30, valueName: "n", help: "iterations of the custom test (any of -I, -C, -S makes the run one custom test)" },
  { name: "transfer-count", short: "C", type: "int", min: 1, max: 1 << 30, valueName: "n", help: "transfers each way per iteration" },
  { name: "transfer-size", short: "S", type: "string", valueName: "n|all", help: "bytes per transfer; 'all' runs every size of rstream's table" },
  { name: "port", short: "p", type: "int", min: 0, max: 65535, default: 7471, valueName: "port", help: "port number" },
  { name: "keepalive", short: "k", type: "int", min: 0, max: 86400, valueName: "sec", help: "SO_KEEPALIVE with TCP_KEEPIDLE <sec>: a keepalive message to the peer every <sec> seconds (0: none, as rstream)" },
  { name: "test-option", short: "T", type: "string", repeatable: true, valueName: "opt", help: "one of a|async, b|blocking, n|nonblocking, r|resolve (the same packets here), v|verify (every byte checked), s|sockets (standard TCP sockets instead of rsockets: no device; -B is not set on them), f|fork (rstream's forking server: over TCP sockets too, one connection at a time, as -T s); may be given more than once" },
  { name: "address", type: "string", valueName: "addr", help: "softroce: local IPv4/IPv6 address of the device (default: -b unless a wildcard, else 127.0.0.1 / ::1)" },
  { name: "udp-port", type: "int", min: 1, max: 65535, default: 4791, valueName: "n", help: "softroce: UDP port of the device and of its peers" },
  { name: "timeout", type: "int", min: 0, max: 86400, default: 0, valueName: "sec", help: "softroce: give up after <sec> seconds (0: never, as rstream)" },
  { name: "help", short: "h", type: "boolean", help: "show this help" },
];

/** riostream's: rstream's without -k, and -T without r, s and f. */
const RIOSTREAM_FLAGS: FlagSpec[] = RSTREAM_FLAGS.filter((f) => f.name !== "keepalive").map((f) =>
  f.name === "test-option" ? { ...f, help: "one of a|async, b|blocking, n|nonblocking (the same packets here), v|verify (every byte checked); may be given more than once" } : f);
const FLAGS: Record<Tool, FlagSpec[]> = { rstream: RSTREAM_FLAGS, riostream: RIOSTREAM_FLAGS };

/** rstream's test_size table: [size, option] (option 1: only with -S all). */
const TEST_SIZES: readonly (readonly [number, number])[] = [
  [1 << 6, 0],
  [1 << 7, 1], [(1 << 7) + (1 << 6), 1], [1 << 8, 1], [(1 << 8) + (1 << 7), 1], [1 << 9, 1], [(1 << 9) + (1 << 8), 1],
  [1 << 10, 1], [(1 << 10) + (1 << 9), 1], [1 << 11, 1], [(1 << 11) + (1 << 10), 1],
  [1 << 12, 0], [(1 << 12) + (1 << 11), 1], [1 << 13, 1], [(1 << 13) + (1 << 12), 1], [1 << 14, 1], [(1 << 14) + (1 << 13), 1],
  [1 << 15, 1], [(1 << 15) + (1 << 14), 1],
  [1 << 16, 0], [(1 << 16) + (1 << 15), 1], [1 << 17, 1], [(1 << 17) + (1 << 16), 1], [1 << 18, 1], [(1 << 18) + (1 << 17), 1],
  [1 << 19, 1], [(1 << 19) + (1 << 18), 1],
  [1 << 20, 0], [(1 << 20) + (1 << 19), 1], [1 << 21, 1], [(1 << 21) + (1 << 20), 1], [1 << 22, 1], [(1 << 22) + (1 << 21), 1],
];
const SYNC = 16;

export interface RstreamOptions extends RsocketToolOptions {
  /** -I, -C or -S n given: one test of these */
  custom: boolean;
  iterations: number;
  transferCount: number;
  transferSize: number;
  /** -S all */
  allSizes: boolean;
  bufferSize: number;
  inlineSize: number;
  verify: boolean;
  /** -k: SO_KEEPALIVE with TCP_KEEPIDLE, seconds (0: off) */
  keepalive: number;
  /** -T s or -T f: standard TCP sockets instead of rsockets (rstream's use_rs = 0; rstream-tcp.ts) */
  sockets: boolean;
}

function options(tool: Tool, argv: string[]): RstreamOptions | "help" {
  const { flags: f, lists } = parseArgs(argv, FLAGS[tool]);
  if (f.help) return "help";
  const fmt = f["address-format"] as string | undefined;
  if (fmt !== undefined && /^gid/i.test(fmt)) throw new UsageError("-f gid: AF_IB addresses are InfiniBand's; softroce's rdma_cm speaks IP (RoCE)");
  let verify = false;
  let sockets = false;
  for (const t of (lists["test-option"] ?? []) as string[]) {
    const { o, mode } = testOptionWord(t);
    if (tool === "riostream") {
      if (o === "v" || o.startsWith("verify")) verify = true;
      else if (!mode) {
        throw new UsageError(`-T ${t}: a test option is one of a|async, b|blocking, n|nonblocking, v|verify`);
      }
      continue;
    }
    // -T f: rstream's server forks a child for each connection and waits for it before the next, over
    // standard sockets (it sets use_rs = 0 too): one connection at a time, as -T s here
    if (o === "s" || o.startsWith("socket") || o === "f" || o.startsWith("fork")) sockets = true;
    else if (o === "v" || o.startsWith("verify")) verify = true;
    else if (!(mode || o === "r" || o.startsWith("resolve"))) {
      throw new UsageError(`-T ${t}: a test option is one of a|async, b|blocking, n|nonblocking, r|resolve, v|verify`);
    }
  }
  const size = f["transfer-size"] as string | undefined;
  const allSizes = size !== undefined && /^all/i.test(size);
  let transferSize = 1000;
  if (size !== undefined && !allSizes) {
    transferSize = /^\d+$/.test(size) ? Number(size) : NaN;
    if (!(transferSize >= 1 && transferSize <= 1 << 30)) throw new UsageError(`-S wants a transfer size in bytes (1 .. 2^30) or 'all', got '${size}'`);
  }
  const custom = f.iterations !== undefined || f["transfer-count"] !== undefined || (size !== undefined && !allSizes);
  return {
    ...rsocketToolOptions(f),
    custom, iterations: (f.iterations as number | undefined) ?? 1, transferCount: (f["transfer-count"] as number | undefined) ?? 1000, transferSize, allSizes,
    bufferSize: (f["buffer-size"] as number | undefined) ?? 1 << 19, inlineSize: (f["inline-size"] as number | undefined) ?? 64, verify,
    keepalive: (f.keepalive as number | undefined) ?? 0, sockets,
  };
}

/** common.c's size_str: 1.5k, 64k, 1m … */
export function sizeStr(size: number): string {
  const [base, mag] = size >= 2 ** 30 ? [2 ** 30, "g"] : size >= 2 ** 20 ? [2 ** 20, "m"] : size >= 2 ** 10 ? [2 ** 10, "k"] : [1, ""];
  const whole = Math.floor(size / base);
  const fraction = whole < 10 ? Math.floor(((size % base) * 10) / base) : 0;
  return fraction ? `${whole}.${fraction}${mag}` : `${whole}${mag}`;
}

/** common.c's cnt_str: 100k, 1m … */
export function cntStr(cnt: number): string {
  if (cnt >= 1e9) return `${Math.floor(cnt / 1e9)}b`;
  if (cnt >= 1e6) return `${Math.floor(cnt / 1e6)}m`;
  if (cnt >= 1e3) return `${Math.floor(cnt / 1e3)}k`;
  return `${cnt}`;
}

/** common.c's size_to_count: the iterations (latency) or transfers (bandwidth) of a size. */
export const sizeToCount = (size: number): number => (size >= 1 << 20 ? 100 : size >= 1 << 16 ? 1000 : size >= 1 << 10 ? 10000 : 100000);

export const RSTREAM_HEADER = `${"name".padEnd(10)}${"bytes".padEnd(8)}${"xfers".padEnd(8)}${"iters".padEnd(8)}${"total".padEnd(8)}${"time".padStart(8)} ${"Gb/sec".padStart(10)}${"usec/xfer".padStart(13)}\n`;

/** show_perf's row: `usec` the run's gettimeofday difference in whole microseconds. */
export function perfRow(name: string, size: number, count: number, iterations: number, usec: number): string {
  const bytes = iterations * count * size * 2;
  const f2 = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : v > 0 ? "inf" : "nan");
  return `${name.padEnd(10)}${sizeStr(size).padEnd(8)}${cntStr(count).padEnd(8)}${cntStr(iterations).padEnd(8)}${sizeStr(bytes).padEnd(8)}` +
    `${`${f2(usec / 1e6)}s`.padStart(9)}${f2((bytes * 8) / (1000 * usec)).padStart(10)}${f2(usec / iterations / (count * 2)).padStart(11)}\n`;
}

/** rstream's test name: size_str into 5 bytes (4 characters), then "_lat" / "_bw" into 10 (9). */
export const testName = (size: number, kind: "lat" | "bw"): string => `${sizeStr(size).slice(0, 4)}_${kind}`.slice(0, 9);

/** How rstream's connections are made and carry its transfers: rsockets, or (-T s) standard TCP sockets. */
interface StreamLink {
  /** server_listen */
  listen(): Promise<void>;
  /** client_connect, or server_connect's accept */
  connect(client: boolean): Promise<void>;
  /** send_xfer's sends, every byte */
  send(b: Uint8Array): Promise<void>;
  /** recv_xfer's receives until `b` is full; false when the peer closed first */
  recvAll(b: Uint8Array): Promise<boolean>;
  /** rshutdown and rclose */
  close(): Promise<void>;
  destroy(): void;
}

/** set_options as rsockets take them: the buffers (twice -B, as rsockets double SO_SNDBUF and SO_RCVBUF), inline data, keepalive. */
function rsocketOptions(tool: Tool, o: RstreamOptions): RsocketOptions {
  // riostream's set_options: RDMA_IOMAPSIZE 1, so the peer may map one buffer into this side's iomap
  return { sbufSize: o.bufferSize * 2, rbufSize: o.bufferSize * 2, sqInline: o.inlineSize, iomapSize: tool === "riostream" ? 1 : 0, keepalive: o.keepalive };
}

/** rsockets: an rdma_cm connection in RDMA_PS_TCP (host/core/rsocket), on the tool's device. */
class RsocketLink implements StreamLink {
  private listenId: RdmaCmId | undefined;
  rs: RStream | undefined;
  readonly wait: CmEventRouter;

  constructor(private readonly ch: EventChannel, private readonly o: RstreamOptions, private readonly options: RsocketOptions) {
    this.wait = new CmEventRouter(ch);
  }

  /** an rsocket bound to -b (or 0.0.0.0) and -p, backlog 1 */
  async listen(): Promise<void> {
    const id = this.ch.createId(PortSpace.TCP, undefined);
    this.listenId = id;
    try {
      id.bindAddr({ address: this.o.bind ?? "0.0.0.0", port: this.o.port });
    } catch (e) {
      throw new RsocketError("EADDRINUSE", `rbind: ${(e as Error).message}`);
    }
    id.listen(1);
  }

  async connect(client: boolean): Promise<void> {
    if (client) {
      this.rs = await RStream.connect(this.ch, { address: this.o.server!, port: this.o.port }, this.o.bind ? { address: this.o.bind } : undefined, this.options, this.wait);
      return;
    }
    const ev = await this.wait.next((e) => e.event === E.CONNECT_REQUEST && e.listenId === this.listenId, 0);
    this.rs = await RStream.accept(ev!, this.options, this.wait);
  }

  send(b: Uint8Array): Promise<void> {
    return this.rs!.send(b, this.wait);
  }

  recvAll(b: Uint8Array): Promise<boolean> {
    return this.rs!.recvAll(b, this.wait);
  }

  async close(): Promise<void> {
    const rs = this.rs;
    this.rs = undefined;
    await rs?.close(this.wait);
  }

  /** as the process's end: a connection still open goes (its peer sees the DREQ), and the listen */
  destroy(): void {
    this.wait.stop();
    this.rs?.abort();
    this.rs = undefined;
    try {
      this.listenId?.destroy();
    } catch {
      /* going away */
    }
  }
}

/** -T s: standard TCP sockets (rstream-tcp.ts); no device. */
class TcpLink implements StreamLink {
  private listener: TcpListener | undefined;
  private conn: TcpXfer | undefined;

  constructor(private readonly o: RstreamOptions) {}

  async listen(): Promise<void> {
    try {
      this.listener = await TcpListener.listen(this.o.bind ?? "0.0.0.0", this.o.port);
    } catch (e) {
      throw new Error(`rbind: ${perrorText(e)}`);
    }
  }

  async connect(client: boolean): Promise<void> {
    let sock;
    try {
      sock = client ? await tcpConnect(this.o.server!, this.o.port, this.o.bind) : await this.listener!.accept();
    } catch (e) {
      throw new Error(`${client ? "rconnect" : "raccept"}: ${perrorText(e)}`);
    }
    this.conn = new TcpXfer(sock, this.o.keepalive);
  }

  send(b: Uint8Array): Promise<void> {
    return this.conn!.send(b);
  }

  recvAll(b: Uint8Array): Promise<boolean> {
    return this.conn!.recvAll(b);
  }

  async close(): Promise<void> {
    const c = this.conn;
    this.conn = undefined;
    await c?.close();
  }

  destroy(): void {
    this.listener?.close();
    this.conn?.destroy();
  }
}

class Rstream implements CmatoseTest {
  private buf: Uint8Array;
  /** format_buf's and verify_buf's counters (static in common.c: they run on across transfers) */
  private formatByte = 0;
  private verifyByte = 0;
  private verifiedBytes = 0;

  constructor(readonly tool: Tool, readonly o: RstreamOptions, readonly io: Io, private readonly link: StreamLink) {
    this.buf = new Uint8Array(o.custom ? o.transferSize : TEST_SIZES[TEST_SIZES.length - 1]![0]);
  }

  private get client(): boolean {
    return this.o.server !== undefined;
  }

  /** set_keepalive's lines, for each socket set_options is called on (-k 0: none, as rstream's `if (keepalive)`). */
  private sayKeepalive(): void {
    if (this.o.keepalive) this.io.out(`Keepalive: ON\n  time: ${this.o.keepalive}\n`);
  }

  async run(): Promise<number> {
    try {
      if (!this.client) await this.link.listen();
      this.io.out(RSTREAM_HEADER);
      if (!this.o.custom) {
        await this.connect();
        for (const [size, option] of TEST_SIZES) {
          if (option > (this.o.allSizes ? 1 : 0)) continue;
          if (!(await this.runTest(testName(size, "lat"), size, 1, sizeToCount(size)))) break;
        }
        await this.link.close();
        await this.connect();
        for (const [size, option] of TEST_SIZES) {
          if (option > (this.o.allSizes ? 1 : 0)) continue;
          if (!(await this.runTest(testName(size, "bw"), size, sizeToCount(size), 1))) break;
        }
        await this.link.close();
        return 0;
      }
      await this.connect();
      const ok = await this.runTest("custom", this.o.transferSize, this.o.transferCount, this.o.iterations);
      await this.link.close();
      return ok ? 0 : -1;
    } catch (e) {
      this.io.err(`${(e as Error).message}\n`);
      return -1;
    }
  }

  private async connect(): Promise<void> {
    // set_options: the client's socket before it connects; the server's listening socket, then the one accepted
    this.sayKeepalive();
    await this.link.connect(this.client);
    if (!this.client) this.sayKeepalive();
  }

  /** common.c's format_buf: the bytes counting on from where the last transfer left off. */
  private format(b: Uint8Array): void {
    for (let i = 0; i < b.length; i++) b[i] = this.formatByte++ & 0xff;
  }

  /** common.c's verify_buf: false (and rstream's line) at the first byte that is not the count's. */
  private verify(b: Uint8Array): boolean {
    for (let i = 0; i < b.length; i++, this.verifiedBytes++) {
      if (b[i] !== (this.verifyByte++ & 0xff)) {
        this.io.out(`data verification failed byte ${this.verifiedBytes}\n`);
        return false;
      }
    }
    return true;
  }

  /** rstream's send_xfer (riostream's send_msg: `check` false, the bytes as they are). */
  private async sendXfer(size: number, check = this.o.verify): Promise<boolean> {
    const b = this.buf.subarray(0, size);
    if (check) this.format(b);
    try {
      await this.link.send(b);
      return true;
    } catch (e) {
      this.io.err(`rsend: ${(e as Error).message.replace(/^rsend: /, "")}\n`);
      return false;
    }
  }

  /** rstream's recv_xfer (riostream's recv_msg: `check` false, nothing verified). */
  private async recvXfer(size: number, check = this.o.verify): Promise<boolean> {
    const b = this.buf.subarray(0, size);
    if (!(await this.link.recvAll(b))) {
      // rrecv returns 0 at the peer's close; rstream's loop would spin on it: say so and stop
      this.io.err("rrecv: Connection reset by peer (the peer closed)\n");
      return false;
    }
    return !check || this.verify(b);
  }

  /** sync_test: 16 bytes from the client, then 16 back (rstream's transfers; riostream's send_msg and recv_msg). */
  private async sync(check: boolean): Promise<boolean> {
    return this.client
      ? (await this.sendXfer(SYNC, check)) && (await this.recvXfer(SYNC, check))
      : (await this.recvXfer(SYNC, check)) && (await this.sendXfer(SYNC, check));
  }

  /** sync_test then run_test: the ping-pong, timed, and show_perf's row. */
  private async runTest(name: string, size: number, count: number, iterations: number): Promise<boolean> {
    if (this.tool === "riostream") return this.runIoTest(name, size, count, iterations);
    const c = this.client;
    if (!(await this.sync(this.o.verify))) return false;
    return this.timed(name, size, count, iterations, async () => {
      for (let t = 0; t < count; t++) if (!(c ? await this.sendXfer(size) : await this.recvXfer(size))) return false;
      for (let t = 0; t < count; t++) if (!(c ? await this.recvXfer(size) : await this.sendXfer(size))) return false;
      return true;
    });
  }

  /** run_test's clock around `iterations` turns of `turn`, and show_perf's row if every one went through. */
  private async timed(name: string, size: number, count: number, iterations: number, turn: () => Promise<boolean>): Promise<boolean> {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) if (!(await turn())) return false;
    const usec = Number((process.hrtime.bigint() - t0) / 1000n);
    this.io.out(perfRow(name, size, count, iterations, usec));
    return true;
  }

  /**
   * riostream's run_test: the buffer mapped at offset 0 (its last byte the poll byte, 0xff to start),
   * sync_test by rsend and rrecv, then each turn's transfers riowritten into the peer's buffer, the
   * last with this side's marker in its last byte, and the peer's turn awaited as that byte changing.
   */
  private async runIoTest(name: string, size: number, count: number, iterations: number): Promise<boolean> {
    const { rs: open, wait } = this.link as RsocketLink; // riostream takes no -T s
    const rs = open!;
    const c = this.client;
    let buf: Uint8Array;
    try {
      buf = rs.iomap(size, 0);
    } catch (e) {
      this.io.err(`${(e as Error).message}\n`);
      return false;
    }
    buf[size - 1] = 0xff;
    let marker = 0;
    const send = async (): Promise<boolean> => {
      try {
        await rs.iowrite(buf, 0, wait);
        return true;
      } catch (e) {
        this.io.err(`riowrite: ${(e as Error).message.replace(/^riowrite: /, "")}\n`);
        return false;
      }
    };
    const turn = async (): Promise<boolean> => {
      for (let t = 0; t < count - 1; t++) if (!(await send())) return false;
      buf[size - 1] = marker++ & 0xff;
      if (this.o.verify) this.format(buf.subarray(0, size - 1));
      return send();
    };
    const awaitTurn = async (): Promise<boolean> => {
      const want = marker++ & 0xff;
      if (!(await rs.until(() => buf[size - 1] === want, wait))) {
        this.io.err("riostream: the peer closed before its transfer came\n");
        return false;
      }
      return !this.o.verify || this.verify(buf.subarray(0, size - 1));
    };
    if (!(await this.sync(false))) return false;
    const ok = await this.timed(name, size, count, iterations, async () => (c ? (await turn()) && (await awaitTurn()) : (await awaitTurn()) && (await turn())));
    if (ok) rs.iounmap(buf);
    return ok;
  }

  destroyNodes(): void {
    this.link.destroy();
  }
}

const HELP: Record<Tool, string> = {
  rstream: `usage: softroce rstream [-s server_address] [-b bind_address] [-f address_format] [-B buffer_size]
       [-i inline_size] [-I iterations] [-C transfer_count] [-S transfer_size or all] [-p port_number] [-T test_option]

rdma-core's rstream over softroce's rsockets (rdma_cm connections in RDMA_PS_TCP; data as RDMA WRITE
WITH IMMEDIATE into the buffers each side gives the other): a server (no -s) and a client ping-pong
transfers and each prints rstream's table. Without -I, -C or -S n: rstream's latency and bandwidth
runs over its sizes (-S all: every size of its table), each on a connection of its own. -T s runs
the same test over standard TCP sockets (rstream's baseline; Linux's rstream -T s or -T f is the peer).

${formatFlags(RSTREAM_FLAGS)}
`,
  riostream: `usage: softroce riostream [-s server_address] [-b bind_address] [-f address_format] [-B buffer_size]
       [-i inline_size] [-I iterations] [-C transfer_count] [-S transfer_size or all] [-p port_number] [-T test_option]

rdma-core's riostream over softroce's rsockets: rstream's run, its transfers written by riowrite
straight into the buffer the peer mapped with riomap (RDMA WRITE, no immediate); each side waits for
the peer's turn by watching its buffer's last byte. The syncs go by rsend and rrecv.

${formatFlags(RIOSTREAM_FLAGS)}
`,
};

/** -T s: the test on TCP sockets, no device; given up after --timeout as the rsocket run is. */
async function runOverTcp(tool: Tool, o: RstreamOptions, io: Io): Promise<number> {
  const giveUp = giveUpAfter(o.timeoutMs, tool, io, -110);
  const t = new Rstream(tool, o, giveUp.run, new TcpLink(o));
  const ret = await Promise.race([t.run(), giveUp.expired]);
  // once the run is over its sockets' pending receives are not news, given up or not
  giveUp.silence();
  giveUp.cancel();
  t.destroyNodes();
  return ret === 0 ? 0 : 1;
}

const command = (tool: Tool, summary: string) =>
  optionsCommand(tool, summary, HELP[tool], (argv: string[]) => options(tool, argv), (o: RstreamOptions, io: Io) => {
    if (o.sockets) return runOverTcp(tool, o, io);
    // rsockets' buffers, and riostream's mapped transfer buffer (at most its table's largest size)
    const mapped = tool === "riostream" ? (o.custom ? o.transferSize : TEST_SIZES[TEST_SIZES.length - 1]![0]) : 0;
    const mrBytes = 4 * o.bufferSize * 2 + mapped + (1 << 20);
    return runCmatoseTest(tool, { ...o, mrBytes, lines: false }, io, (_dev: Device, ch, run) => new Rstream(tool, o, run, new RsocketLink(ch, o, rsocketOptions(tool, o))));
  });

export const rstreamCommand = command("rstream", "rdma-core's rstream over rsockets (rdma_cm, RDMA WRITE WITH IMMEDIATE): ping-pong transfers timed; interoperable with Linux's");
export const riostreamCommand = command("riostream", "rdma-core's riostream over rsockets' iomaps (riomap, riowrite: RDMA WRITEs into the peer's mapped buffer); interoperable with Linux's");

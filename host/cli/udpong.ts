// softroce udpong: rdma-core's librdmacm/examples/udpong.c over softroce's datagram rsockets
// (host/core/rsocket/dgram.ts), so that Linux's udpong is the peer. The client logs in, then runs
// tests of -C datagrams of -S bytes each: a latency test (-T e, and udpong's own latency runs) has the
// server echo every datagram and the client wait for each echo, sending it again when none came within
// a millisecond; a bandwidth test sends them back to back and asks the server how many it got. Each
// test starts and ends with a 16-byte control message the client repeats until it is answered; the
// client prints udpong's table row for each (name, bytes, xfers, total, time, Gb/sec, usec/xfer). The
// server answers whoever writes to it and prints a line for each login; udpong's runs until killed,
// this one also when --idle seconds pass without a datagram. Without -C or -S, udpong's own run:
// latency tests over its nine sizes, then bandwidth tests over them.
import { isIPv6 } from "node:net";
import type { Device } from "../core/verbs/index.js";
import { CmEventRouter, type EventChannel, type SockAddr } from "../core/cm/index.js";
import { DS_IPV4_HDR_LEN, DS_IPV6_HDR_LEN, RDgram, RS_SNDLOWAT, RsocketError, type RsocketOptions } from "../core/rsocket/index.js";
import { wildcardFor } from "../core/net/index.js";
import { bindDsUdp } from "../node/rsocket.js";
import { formatFlags, parseArgs, UsageError, type FlagSpec } from "./args.js";
import { optionsCommand, type Io } from "./command.js";
import { rsocketToolOptions, runCmatoseTest, testOptionWord, type CmatoseTest, type RsocketToolOptions } from "./cm-tool.js";
import { cntStr, sizeStr, sizeToCount, testName } from "./rstream.js";

const FLAGS: FlagSpec[] = [
  { name: "server-address", short: "s", type: "string", valueName: "addr", help: "the server's address (the client's flag; without it this side is the server)" },
  { name: "bind-address", short: "b", type: "string", valueName: "addr", help: "the address to bind (the server's default: 127.0.0.1 — udpong's getaddrinfo of no name; the client's: any)" },
  { name: "buffer-size", short: "B", type: "int", min: 1, max: 1 << 26, valueName: "n", help: "SO_SNDBUF and SO_RCVBUF: the send slots and receive buffers are twice it, 2048 bytes each [default: 2^19]" },
  { name: "transfer-count", short: "C", type: "int", min: 1, max: 1 << 30, valueName: "n", help: "datagrams of the custom test (-C or -S makes the run one custom test) [default: 1000]" },
  { name: "transfer-size", short: "S", type: "int", min: 0, max: 1 << 30, valueName: "n", help: `bytes per datagram, at least 16 and at most ${RS_SNDLOWAT - DS_IPV4_HDR_LEN} (${RS_SNDLOWAT - DS_IPV6_HDR_LEN} over IPv6) [default: 1000]` },
  { name: "port", short: "p", type: "int", min: 0, max: 65535, default: 7174, valueName: "port", help: "port number" },
  { name: "test-option", short: "T", type: "string", repeatable: true, valueName: "opt", help: "a|async, b|blocking, n|nonblocking (the same packets here), e|echo (the custom test's server echoes every datagram); s|sockets is refused; may be given more than once" },
  { name: "address", type: "string", valueName: "addr", help: "softroce: local IPv4/IPv6 address of the device (default: -b unless a wildcard, else 127.0.0.1 / ::1)" },
  { name: "udp-port", type: "int", min: 1, max: 65535, default: 4791, valueName: "n", help: "softroce: UDP port of the device and of its peers (RoCEv2's; the rsocket's own UDP socket is at -p)" },
  { name: "idle", type: "int", min: 0, max: 86400, default: 0, valueName: "sec", help: "softroce: the server ends (exit 0) after <sec> seconds without a datagram (0: never, as udpong)" },
  { name: "timeout", type: "int", min: 0, max: 86400, default: 0, valueName: "sec", help: "softroce: give up after <sec> seconds (0: never, as udpong)" },
  { name: "stats", type: "boolean", help: "softroce: at the end, the rsocket's counts on stderr (datagrams by UDP and by the QP, what it dropped)" },
  { name: "help", short: "h", type: "boolean", help: "show this help" },
];

/** udpong's test_size table */
const TEST_SIZES = [1 << 6, 1 << 7, (1 << 7) + (1 << 6), 1 << 8, (1 << 8) + (1 << 7), 1 << 9, (1 << 9) + (1 << 8), 1 << 10, (1 << 10) + (1 << 9)];
/** struct message's ops */
const Op = { LOGIN: 0, START: 1, DATA: 2, ECHO: 3, END: 4 } as const;
/** struct message: op, id, seqno, reserved, data (big-endian), buf[2048] */
const MESSAGE_SIZE = 8 + 2048;
const CTRL_MSG_SIZE = 16;

export interface UdpongOptions extends RsocketToolOptions {
  idleMs: number;
  /** -C or -S given: one test of these */
  custom: boolean;
  transferCount: number;
  transferSize: number;
  echo: boolean;
  bufferSize: number;
  /** --stats */
  stats: boolean;
}

function options(argv: string[]): UdpongOptions | "help" {
  const { flags: f, lists } = parseArgs(argv, FLAGS);
  if (f.help) return "help";
  let echo = false;
  for (const t of (lists["test-option"] ?? []) as string[]) {
    const { o, mode } = testOptionWord(t);
    if (o === "s" || o.startsWith("socket")) throw new UsageError("-T s: standard UDP sockets are not rsockets; softroce udpong speaks rsockets only");
    if (o === "e" || o.startsWith("echo")) echo = true;
    else if (!mode) {
      throw new UsageError(`-T ${t}: a test option is one of a|async, b|blocking, n|nonblocking, e|echo`);
    }
  }
  const peer = rsocketToolOptions(f);
  const { server, bind, address } = peer;
  const size = f["transfer-size"] as number | undefined;
  const most = RS_SNDLOWAT - (isIPv6(server ?? bind ?? address) ? DS_IPV6_HDR_LEN : DS_IPV4_HDR_LEN);
  if (size !== undefined && size < CTRL_MSG_SIZE) throw new UsageError(`-S ${size}: size must be at least ${CTRL_MSG_SIZE} bytes (udpong's control message)`);
  if (size !== undefined && size > most) {
    throw new UsageError(`-S ${size}: a datagram rsocket's datagram holds at most ${most} bytes (a 2048-byte receive buffer less the ds_header)`);
  }
  return {
    ...peer, idleMs: (f.idle as number) * 1000,
    custom: size !== undefined || f["transfer-count"] !== undefined, transferCount: (f["transfer-count"] as number | undefined) ?? 1000,
    transferSize: size ?? 1000, echo, bufferSize: (f["buffer-size"] as number | undefined) ?? 1 << 19, stats: f.stats === true,
  };
}

export const UDPONG_HEADER = `${"name".padEnd(10)}${"bytes".padEnd(8)}${"xfers".padEnd(8)}${"total".padEnd(8)}${"time".padStart(8)} ${"Gb/sec".padStart(10)}${"usec/xfer".padStart(13)}\n`;

/** udpong's show_perf row: `transfers` datagrams of `size` bytes in `usec` microseconds. */
export function udpongRow(name: string, size: number, transfers: number, usec: number): string {
  const bytes = transfers * size;
  const f2 = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : Number.isNaN(v) ? "nan" : v > 0 ? "inf" : "-inf");
  return `${name.padEnd(10)}${sizeStr(size).padEnd(8)}${cntStr(transfers).padEnd(8)}${sizeStr(bytes).padEnd(8)}` +
    `${f2(usec / 1e6).padStart(8)}s${f2((bytes * 8) / (1000 * usec)).padStart(10)}${f2(usec / transfers).padStart(11)}\n`;
}

/** --stats: what the datagram rsocket counted. */
export function statsLine(rs: RDgram): string {
  const c = rs.counters;
  return `udpong: sent ${c.udpSent} by UDP, ${c.qpSent} by the QP; received ${c.udpTaken} by UDP, ${c.qpTaken} by the QP; ` +
    `dropped ${c.noRoom} without room, ${c.badRecv} bad receives, ${c.badUdp} bad UDP datagrams; ${c.ahFailed} routes unresolved, ${c.sendErrors} send errors\n`;
}

export class Udpong implements CmatoseTest {
  private rs: RDgram | undefined;
  private readonly wait: CmEventRouter;
  /** g_msg: every datagram received lands here, every one sent goes from here (as udpong's) */
  private readonly msg = new Uint8Array(MESSAGE_SIZE);
  private readonly view = new DataView(this.msg.buffer);
  private seqno = 0;
  private ended = false;
  /** the server's: the next login's id, and each id's count of datagrams */
  private nextId = 0;
  private readonly recvcnt = new Array<number>(256).fill(0);

  constructor(readonly o: UdpongOptions, readonly io: Io, readonly ch: EventChannel) {
    this.wait = new CmEventRouter(ch);
  }

  private get rsOptions(): RsocketOptions {
    // set_options: SO_SNDBUF and SO_RCVBUF (rsocket doubles them)
    return { sbufSize: this.o.bufferSize * 2, rbufSize: this.o.bufferSize * 2 };
  }

  async run(): Promise<number> {
    try {
      return this.o.server !== undefined ? await this.clientRun() : await this.svrRun();
    } catch (e) {
      if (!this.ended) this.io.err(`${(e as Error).message}\n`); // else the run was given up and its socket closed under it
      return -1;
    } finally {
      if (this.o.stats && this.rs) this.io.err(statsLine(this.rs));
    }
  }

  private async open(at: SockAddr): Promise<RDgram> {
    this.rs = new RDgram(this.ch, this.wait, await bindDsUdp(at), this.rsOptions);
    return this.rs;
  }

  // ------------------------------------------------------------------ server

  /** svr_run: bound at -b (udpong's getaddrinfo without a name: loopback) and -p, answering each datagram as it comes. */
  private async svrRun(): Promise<number> {
    const rs = await this.open({ address: this.o.bind ?? (isIPv6(this.o.address) ? "::1" : "127.0.0.1"), port: this.o.port });
    for (;;) {
      const m = await rs.recvFrom(MESSAGE_SIZE, this.o.idleMs || undefined);
      if (!m) return 0; // --idle passed
      this.msg.set(m.data);
      const ret = await this.svrProcess(m.data.length, m.from);
      if (ret) return ret;
    }
  }

  /** svr_process: a login gets an id and a line; start clears the id's count; echo counts and echoes; end answers with the count; data counts. */
  private async svrProcess(size: number, from: SockAddr): Promise<number> {
    const op = this.msg[0];
    if (op === Op.LOGIN) {
      this.io.out(`client login from ${from.address}\n`);
      this.msg[1] = this.nextId++ & 0xff;
    }
    switch (op) {
      case Op.LOGIN:
      case Op.START:
        this.recvcnt[this.msg[1]!] = 0;
        break;
      case Op.ECHO:
        this.recvcnt[this.msg[1]!]!++;
        break;
      case Op.END:
        this.view.setUint32(4, this.recvcnt[this.msg[1]!]!);
        break;
      default:
        this.recvcnt[this.msg[1]!]!++;
        return 0;
    }
    try {
      await this.rs!.sendTo(this.msg.subarray(0, size), from);
      return 0;
    } catch (e) {
      this.io.err(`rsend: ${(e as Error).message.replace(/^rsendto: /, "")}\n`);
      // a client's datagram (its first, by UDP) longer than a UD message on this port's MTU holds: its
      // answer cannot go, and is lost as a datagram is. udpong's server ends at any failed send (on rxe,
      // which sends an oversize UD message as if it went, it would not); one client's datagram ending
      // the server for every client is not ours
      return e instanceof RsocketError && e.errno === "EMSGSIZE" ? 0 : -1;
    }
  }

  // ------------------------------------------------------------------ client

  /** client_run: the header, the login, then the tests. */
  private async clientRun(): Promise<number> {
    this.io.out(UDPONG_HEADER);
    const rs = await this.open({ address: this.o.bind ?? wildcardFor(this.o.server!), port: 0 });
    await rs.connect({ address: this.o.server!, port: this.o.port });
    this.msg[0] = Op.LOGIN;
    const login = await this.sendRecv(CTRL_MSG_SIZE, 1000);
    if (login !== CTRL_MSG_SIZE) return login;
    if (!this.o.custom) {
      for (const size of TEST_SIZES) await this.runTest(testName(size, "lat"), size, sizeToCount(size) / 10, true);
      for (const size of TEST_SIZES) await this.runTest(testName(size, "bw"), size, sizeToCount(size), false);
    } else {
      await this.runTest("custom", this.o.transferSize, this.o.transferCount, this.o.echo);
    }
    return 0;
  }

  /** client_send: the message's first `size` bytes; their count, or -1 after rsend's line. */
  private async send(size: number): Promise<number> {
    try {
      return await this.rs!.send(this.msg.subarray(0, size));
    } catch (e) {
      this.io.err(`rsend: ${(e as Error).message.replace(/^rsend(to)?: /, "")}\n`);
      return -1;
    }
  }

  /**
   * client_recv: the answer to `seqno` (at most `size` bytes of it) within `timeoutMs` into the message
   * (the server's id and count in it, as udpong's); its length, 0 if none came. Late answers to a message
   * sent again are dropped on the way.
   */
  private async recv(size: number, timeoutMs: number, seqno: number): Promise<number> {
    for (;;) {
      const m = await this.rs!.recvFrom(size, timeoutMs);
      if (!m) return 0;
      if (m.data.length <= 2 || m.data[2] !== seqno) continue;
      this.msg.set(m.data);
      return m.data.length;
    }
  }

  /**
   * client_send_recv: send and wait `timeoutMs` for the answer, again and again until it comes. udpong
   * reads a late answer into the message and sends that again, so that the late one's seqno goes out
   * again and its answer comes late again, for the rest of the run: each 1 ms timeout of a latency test
   * adds one such message going round (here 50 timeouts made 52,753 sends of a 2000-echo run). This side
   * keeps its message and drops late answers; what goes on the wire is otherwise udpong's.
   */
  private async sendRecv(size: number, timeoutMs: number): Promise<number> {
    const seqno = this.seqno;
    this.msg[2] = seqno;
    let ret: number;
    do {
      ret = await this.send(size);
      if (ret !== size) return ret;
      ret = await this.recv(size, timeoutMs, seqno);
    } while (ret <= 0);
    this.seqno = (seqno + 1) & 0xff;
    return ret;
  }

  /** run_test: start, the datagrams (each echoed, or back to back), end with the server's count; show_perf's row. */
  private async runTest(name: string, size: number, count: number, echo: boolean): Promise<void> {
    this.msg[0] = Op.START;
    if ((await this.sendRecv(CTRL_MSG_SIZE, 1000)) !== CTRL_MSG_SIZE) return;
    this.msg[0] = echo ? Op.ECHO : Op.DATA;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < count; i++) {
      const ret = echo ? await this.sendRecv(size, 1) : await this.send(size);
      if (ret !== size) return;
    }
    this.msg[0] = Op.END;
    if ((await this.sendRecv(CTRL_MSG_SIZE, 1)) !== CTRL_MSG_SIZE) return;
    const usec = Number((process.hrtime.bigint() - t0) / 1000n);
    this.io.out(udpongRow(name, size, echo ? count * 2 : this.view.getInt32(4), usec));
  }

  destroyNodes(): void {
    this.ended = true;
    this.rs?.close();
    this.wait.stop();
  }
}

const HELP = `usage: softroce udpong [-s server_address] [-b bind_address] [-B buffer_size] [-C transfer_count]
       [-S transfer_size] [-p port_number] [-T test_option]

rdma-core's udpong over softroce's datagram rsockets (UD QPs in RDMA_PS_UDP; the first datagram to a
peer by UDP at -p, the rest by UD SENDs once its QPN came back): a server (no -s) answers, a client
runs latency tests (each datagram echoed) and bandwidth tests (back to back, the server's count
asked at the end) and prints udpong's table. Without -C or -S: udpong's runs over its nine sizes.

${formatFlags(FLAGS)}
`;

export const udpongCommand = optionsCommand(
  "udpong",
  "rdma-core's udpong over datagram rsockets (UD QPs, UDP for the first datagram): latency and bandwidth timed; interoperable with Linux's",
  HELP,
  options,
  (o: UdpongOptions, io: Io) => {
    const mrBytes = 4 * o.bufferSize * 2 + (1 << 20);
    return runCmatoseTest("udpong", { ...o, mrBytes, lines: false }, io, (_dev: Device, ch, run) => new Udpong(o, run, ch));
  },
);

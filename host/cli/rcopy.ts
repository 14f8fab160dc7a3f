// softroce rcopy: rdma-core's librdmacm/examples/rcopy.c over softroce's rsockets
// (host/core/rsocket/stream.ts), so that Linux's rcopy is the peer. A client copies one file to a
// server: an open request naming the destination (its mode in `data`), a write request with the
// size, the file's bytes as one stream, a close; each request answered by a 16-byte response whose
// `data` is 0 or an errno. rcopy's messages are in the sender's host order ("TODO: handle byte
// swapping" in rcopy.c): little-endian, as on every host Linux's rsockets run on here.
//
// One deliberate difference: Linux's rcopy server opens whatever path the client names. Ours writes
// only under --dir (default: the current directory): an absolute path or one that climbs out with
// ".." is answered EACCES and nothing is written.
import { isIPv4 } from "node:net";
import { closeSync, constants as fsConstants, fstatSync, ftruncateSync, openSync, readSync, realpathSync, statfsSync, writeSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { dirname, isAbsolute, join, normalize, sep } from "node:path";
import type { Device } from "../core/verbs/index.js";
import { CmEventRouter, PortSpace, RdmaCmEventType as E, type EventChannel, type RdmaCmId } from "../core/cm/index.js";
import { RStream, RsocketError } from "../core/rsocket/index.js";
import { formatFlags, parseArgs, UsageError, type FlagSpec } from "./args.js";
import { optionsCommand, type Io } from "./command.js";
import { isIp, runCmatoseTest, type CmatoseTest } from "./cm-tool.js";

const FLAGS: FlagSpec[] = [
  { name: "port", short: "p", type: "int", min: 0, max: 65535, default: 7427, valueName: "port", help: "port number" },
  { name: "dir", type: "string", valueName: "path", help: "softroce, the server: the directory files are written under (default: the current one); paths outside it are refused" },
  { name: "serve", type: "int", min: 0, max: 1 << 30, default: 0, valueName: "n", help: "softroce, the server: end after <n> clients (0: serve until killed, as rcopy)" },
  { name: "address", type: "string", valueName: "addr", help: "softroce: local IPv4/IPv6 address of the device (default 127.0.0.1, or ::1 for an IPv6 server)" },
  { name: "udp-port", type: "int", min: 1, max: 65535, default: 4791, valueName: "n", help: "softroce: UDP port of the device and of its peers" },
  { name: "timeout", type: "int", min: 0, max: 86400, default: 0, valueName: "sec", help: "softroce: give up after <sec> seconds (0: never, as rcopy)" },
  { name: "help", short: "h", type: "boolean", help: "show this help" },
];

/** rcopy's commands (msg_hdr.command); a response has CMD_RESP set. */
export const RcopyCmd = { NOOP: 0, OPEN: 1, CLOSE: 2, WRITE: 3, RESP: 0x80 } as const;
/** struct msg_hdr: version, command, len (u16), data (u32), id (u64) */
export const RCOPY_HDR_LEN = 16;
/** struct msg_write: the header, then the file's size (u64) */
const RCOPY_WRITE_LEN = RCOPY_HDR_LEN + 8;

export interface RcopyHdr {
  version: number;
  command: number;
  len: number;
  data: number;
  id: bigint;
}

export function formatHdr(h: RcopyHdr, into = new Uint8Array(RCOPY_HDR_LEN)): Uint8Array {
  const v = new DataView(into.buffer, into.byteOffset, RCOPY_HDR_LEN);
  into[0] = h.version;
  into[1] = h.command;
  v.setUint16(2, h.len, true);
  v.setUint32(4, h.data >>> 0, true);
  v.setBigUint64(8, h.id, true);
  return into;
}

export function parseHdr(b: Uint8Array): RcopyHdr {
  const v = new DataView(b.buffer, b.byteOffset, RCOPY_HDR_LEN);
  return { version: b[0]!, command: b[1]!, len: v.getUint16(2, true), data: v.getUint32(4, true), id: v.getBigUint64(8, true) };
}

/** client_open's message: the header, then the destination NUL-terminated and padded to 8 ((strlen + 8) & ~7). */
export function openMsg(dst: string, mode: number): Uint8Array {
  const path = new TextEncoder().encode(dst);
  const len = (path.length + 8) & ~7;
  const b = new Uint8Array(RCOPY_HDR_LEN + len);
  formatHdr({ version: 0, command: RcopyCmd.OPEN, len: b.length, data: mode, id: 0n }, b);
  b.set(path, RCOPY_HDR_LEN);
  return b;
}

/** The errno a failed fs call set (Linux's numbers), EIO when it says none. */
const errnoOf = (e: unknown): number => {
  const code = (e as NodeJS.ErrnoException).code;
  return (code && (osConstants.errno as Record<string, number>)[code]) || osConstants.errno.EIO;
};

export interface RcopyOptions {
  /** the client's: the file to send, the server, the destination path (rcopy: the source's when not given) */
  src?: string;
  server?: string;
  dst?: string;
  port: number;
  dir: string;
  serve: number;
  address: string;
  udpPort: number;
  timeoutMs: number;
}

function options(argv: string[]): RcopyOptions | "help" {
  const { flags: f, positionals } = parseArgs(argv, FLAGS, 2);
  if (f.help) return "help";
  if (positionals.length === 1) throw new UsageError("a client names a source file and server[:destination]; a server names neither");
  const port = f.port as number;
  const base = { port, dir: (f.dir as string | undefined) ?? ".", serve: f.serve as number, udpPort: f["udp-port"] as number, timeoutMs: (f.timeout as number) * 1000 };
  const address = f.address as string | undefined;
  if (address !== undefined && !isIp(address)) throw new UsageError(`--address wants a local IPv4 or IPv6 address, got '${address}'`);
  if (positionals.length === 0) return { ...base, address: address ?? "127.0.0.1" };
  if (f.dir !== undefined || f.serve !== 0) throw new UsageError("--dir and --serve are the server's");
  const [src, target] = positionals as [string, string];
  // rcopy splits at the first ':' (so an IPv6 server cannot be named, as with rcopy)
  const colon = target.indexOf(":");
  const server = colon < 0 ? target : target.slice(0, colon);
  const dst = colon < 0 || colon === target.length - 1 ? src : target.slice(colon + 1);
  if (!isIPv4(server)) throw new UsageError(`the server must be a numeric IPv4 address, got '${server}'`);
  if (openMsg(dst, 0).length > 0xffff) throw new UsageError("the destination path is longer than rcopy's 16-bit message length allows");
  return { ...base, src, server, dst, address: address ?? "127.0.0.1" };
}

/** rcopy's client or server on one device. */
class Rcopy implements CmatoseTest {
  private readonly wait: CmEventRouter;
  private listenId: RdmaCmId | undefined;
  private rs: RStream | undefined;
  /** the server's open destination */
  private fd: number | undefined;
  /** the open file's path (the server's) */
  private fdPath: string | undefined;
  /** --dir's real path, taken once as the server starts (every destination's directory must be under it) */
  private root: string | undefined;

  constructor(readonly o: RcopyOptions, readonly io: Io, readonly ch: EventChannel) {
    this.wait = new CmEventRouter(ch);
  }

  run(): Promise<number> {
    return this.o.server !== undefined ? this.client() : this.server();
  }

  // ------------------------------------------------------------------ messages

  /** _recv: exactly `n` bytes, or undefined if the peer closed first. */
  private async recvExactly(n: number): Promise<Uint8Array | undefined> {
    const b = new Uint8Array(n);
    return (await this.rs!.recvAll(b, this.wait)) ? b : undefined;
  }

  /** msg_recv_hdr: a header of version 0 and a length of at least its own, else undefined (said, if one came). */
  private async recvHdr(): Promise<RcopyHdr | undefined> {
    const b = await this.recvExactly(RCOPY_HDR_LEN);
    if (!b) return undefined;
    const h = parseHdr(b);
    if (h.version || h.len < RCOPY_HDR_LEN) {
      this.io.out(`invalid version ${h.version} or length ${h.len}\n`);
      return undefined;
    }
    return h;
  }

  /** msg_get_resp: the response to `cmd`'s data (0 or an errno); -1 for a bad or missing response. */
  private async getResp(cmd: number): Promise<number> {
    const h = await this.recvHdr();
    if (!h) return -1;
    if (h.len !== RCOPY_HDR_LEN || h.command !== (cmd | RcopyCmd.RESP)) {
      this.io.out(`invalid length ${h.len} or bad command response ${h.command.toString(16)}:${(cmd | RcopyCmd.RESP).toString(16)}\n`);
      return -1;
    }
    return h.data;
  }

  /** msg_send_resp */
  private sendResp(req: RcopyHdr, status: number): Promise<void> {
    return this.rs!.send(formatHdr({ version: 0, command: req.command | RcopyCmd.RESP, len: RCOPY_HDR_LEN, data: status, id: req.id }), this.wait);
  }

  // ------------------------------------------------------------------ server

  /** server_run: listen on 0.0.0.0, then each client in turn (until killed, or --serve clients). */
  private async server(): Promise<number> {
    try {
      this.root = realpathSync(this.o.dir);
    } catch (e) {
      this.io.err(`rcopy: --dir ${this.o.dir}: ${(e as Error).message}\n`);
      return -1;
    }
    const id = this.ch.createId(PortSpace.TCP, undefined);
    this.listenId = id;
    try {
      id.bindAddr({ address: "0.0.0.0", port: this.o.port });
    } catch (e) {
      this.io.out(`rbind failed: ${(e as Error).message}\n`);
      return -1;
    }
    id.listen(1);
    for (let served = 0; this.o.serve === 0 || served < this.o.serve; served++) {
      this.io.out("waiting for connection...");
      const ev = await this.wait.next((e) => e.event === E.CONNECT_REQUEST && e.listenId === id, 0);
      if (!ev) return -1;
      try {
        this.rs = await RStream.accept(ev, {}, this.wait);
      } catch (e) {
        this.io.out(`raccept: ${(e as Error).message}\n`);
        continue;
      }
      this.io.out(`client: ${this.rs.id.getPeerAddr().address}\n`);
      await this.serverProcess();
      this.closeFile();
      const rs = this.rs;
      this.rs = undefined;
      await rs.close(this.wait);
    }
    return 0;
  }

  /** server_process: requests until one fails or the client goes. */
  private async serverProcess(): Promise<void> {
    for (;;) {
      const h = await this.recvHdr();
      if (!h) return;
      let ret: number;
      switch (h.command) {
        case RcopyCmd.OPEN:
          ret = await this.serverOpen(h);
          break;
        case RcopyCmd.CLOSE:
          this.io.out("closing...");
          await this.sendResp(h, 0);
          this.closeFile();
          this.io.out("done\n");
          ret = 0;
          break;
        case RcopyCmd.WRITE:
          ret = await this.serverWrite(h);
          break;
        default:
          await this.sendResp(h, osConstants.errno.EINVAL);
          ret = -1;
      }
      if (ret) return;
    }
  }

  /**
   * Where `path` lands under --dir; undefined if it is absolute, climbs out, or its directory is
   * reached through a symlink that leads out of --dir (the file itself is opened O_NOFOLLOW: a symlink
   * there is ELOOP). A directory that does not exist is left to open() (ENOENT).
   */
  private confined(path: string): string | undefined {
    if (path === "" || isAbsolute(path)) return undefined;
    const rel = normalize(path);
    if (rel === ".." || rel.startsWith(`..${sep}`)) return undefined;
    const where = join(this.o.dir, rel);
    const root = this.root!;
    try {
      const parent = realpathSync(dirname(where));
      if (parent !== root && !parent.startsWith(root.endsWith(sep) ? root : root + sep)) return undefined;
    } catch {
      /* no such directory: open() says so */
    }
    return where;
  }

  /** server_open: the destination named after the header, opened (created, truncated) with the client's mode. */
  private async serverOpen(h: RcopyHdr): Promise<number> {
    this.io.out("opening: ");
    const raw = await this.recvExactly(h.len - RCOPY_HDR_LEN);
    let ret: number;
    if (!raw) {
      this.io.out("error receiving path\n");
      return -1;
    }
    const nul = raw.indexOf(0);
    const path = new TextDecoder().decode(nul < 0 ? raw : raw.subarray(0, nul));
    const where = this.confined(path);
    if (this.fd !== undefined) {
      this.io.out("cannot open another file\n");
      ret = osConstants.errno.EBUSY;
    } else if (where === undefined) {
      this.io.out(`${path}, refused: not under ${this.o.dir} (--dir)\n`);
      ret = osConstants.errno.EACCES;
    } else {
      this.io.out(`${path}, `);
      try {
        // the permission bits only: no setuid/setgid/sticky from a client; a symlink is not followed
        this.fd = openSync(where, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC | fsConstants.O_NOFOLLOW, h.data & 0o777);
        this.fdPath = where;
        ret = 0;
      } catch (e) {
        this.io.out("unable to open destination file\n");
        ret = errnoOf(e);
      }
    }
    await this.sendResp(h, ret);
    return ret;
  }

  /** server_write: the size, then that many bytes into the open file. */
  private async serverWrite(h: RcopyHdr): Promise<number> {
    this.io.out("transferring");
    let ret = 0;
    if (this.fd === undefined) {
      this.io.out("...file not opened\n");
      ret = osConstants.errno.EINVAL;
    } else if (h.len !== RCOPY_WRITE_LEN) {
      this.io.out(`...invalid message length ${h.len}\n`);
      ret = osConstants.errno.EINVAL;
    } else {
      const sz = await this.recvExactly(8);
      if (!sz) return -1;
      const bytes = new DataView(sz.buffer).getBigUint64(0, true);
      if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) {
        this.io.out("...error mapping file\n");
        ret = osConstants.errno.EFBIG;
      } else {
        this.io.out(`...${bytes} bytes...`);
        ret = await this.receiveFile(Number(bytes));
      }
    }
    await this.sendResp(h, ret);
    return ret;
  }

  /** The file's bytes from the stream into the open file, a chunk at a time. */
  private async receiveFile(bytes: number): Promise<number> {
    const fd = this.fd!;
    // rcopy's server makes the file its size at once (ftruncate, then mmap): a size beyond the
    // space its file system has left is refused, not made as a sparse file that writes would fill
    const fs = statfsSync(dirname(this.fdPath!));
    if (bytes > fs.bavail * fs.bsize) {
      this.io.out(`...more than the ${fs.bavail * fs.bsize} bytes free\n`);
      return osConstants.errno.ENOSPC;
    }
    try {
      ftruncateSync(fd, bytes);
    } catch (e) {
      return errnoOf(e);
    }
    const chunk = new Uint8Array(Math.min(bytes, 1 << 20) || 1);
    for (let at = 0; at < bytes; ) {
      const n = await this.rs!.recv(chunk.subarray(0, Math.min(chunk.length, bytes - at)), this.wait);
      if (n === 0) {
        this.io.out("...error receiving data\n");
        return -1;
      }
      try {
        writeSync(fd, chunk, 0, n, at);
      } catch (e) {
        return errnoOf(e);
      }
      at += n;
    }
    return 0;
  }

  private closeFile(): void {
    if (this.fd === undefined) return;
    try {
      closeSync(this.fd);
    } catch {
      /* already */
    }
    this.fd = undefined;
    this.fdPath = undefined;
  }

  // ------------------------------------------------------------------ client

  /** client_run: connect, open, write, close; rcopy's timing line when all went well. */
  private async client(): Promise<number> {
    try {
      this.rs = await RStream.connect(this.ch, { address: this.o.server!, port: this.o.port }, undefined, {}, this.wait);
    } catch (e) {
      this.io.out(`rconnect failed: ${(e as Error).message.replace(/^rconnect: /, "")}\n`);
      return -1;
    }
    let ret = 0;
    let fd: number | undefined;
    let size = 0;
    let usec = 0;
    try {
      this.io.out("opening...");
      try {
        fd = openSync(this.o.src!, "r");
      } catch (e) {
        this.io.err(`rcopy: ${this.o.src}: ${(e as Error).message}\n`);
        return -1;
      }
      const st = fstatSync(fd);
      size = st.size;
      await this.rs.send(openMsg(this.o.dst!, st.mode), this.wait);
      ret = await this.getResp(RcopyCmd.OPEN);
      if (ret) {
        if (ret > 0) this.io.err(`rcopy: the server could not open ${this.o.dst}: errno ${ret}\n`);
        return ret;
      }
      this.io.out("transferring");
      const w = new Uint8Array(RCOPY_WRITE_LEN);
      formatHdr({ version: 0, command: RcopyCmd.WRITE, len: RCOPY_WRITE_LEN, data: 0, id: 0n }, w);
      new DataView(w.buffer).setBigUint64(RCOPY_HDR_LEN, BigInt(size), true);
      await this.rs.send(w, this.wait);
      this.io.out("...");
      const t0 = process.hrtime.bigint();
      const chunk = new Uint8Array(Math.min(size, 1 << 20) || 1);
      for (let at = 0; at < size; ) {
        const n = readSync(fd, chunk, 0, Math.min(chunk.length, size - at), at);
        if (n === 0) throw new RsocketError("EIO", `${this.o.src} ended early`);
        await this.rs.send(chunk.subarray(0, n), this.wait);
        at += n;
      }
      ret = await this.getResp(RcopyCmd.WRITE);
      usec = Number((process.hrtime.bigint() - t0) / 1000n);
      // client_close, whatever the write's answer
      this.io.out("closing...");
      await this.rs.send(formatHdr({ version: 0, command: RcopyCmd.CLOSE, len: RCOPY_HDR_LEN, data: 0, id: 0n }), this.wait);
      if ((await this.getResp(RcopyCmd.CLOSE)) === 0) this.io.out("done\n");
    } catch (e) {
      this.io.err(`${(e as Error).message}\n`);
      ret = -1;
    } finally {
      if (fd !== undefined) closeSync(fd);
      const rs = this.rs;
      this.rs = undefined;
      await rs.close(this.wait).catch(() => {});
    }
    if (ret === 0) this.io.out(rcopyPerf(size, usec));
    return ret;
  }

  destroyNodes(): void {
    this.closeFile();
    this.wait.stop();
    try {
      this.listenId?.destroy();
    } catch {
      /* going away */
    }
  }
}

/** show_perf: "%lld bytes in %.2f seconds = %.2f Gb/sec" (usec a float, as rcopy's). */
export function rcopyPerf(bytes: number, usec: number): string {
  const u = Math.fround(usec);
  return `${bytes} bytes in ${(u / 1e6).toFixed(2)} seconds = ${((bytes * 8) / (1000 * u)).toFixed(2)} Gb/sec\n`;
}

const HELP = `usage 1: softroce rcopy [options]
	     starts the server application
usage 2: softroce rcopy source server[:destination] [options]
	     source - file name and path
	     server - numeric IPv4 address
	     destination - file name and path (default: source)

rdma-core's rcopy over softroce's rsockets: the client sends one file to the server, which writes it
(under --dir only; rcopy's own server writes wherever the client says) and answers each request.

${formatFlags(FLAGS)}
`;

export const rcopyCommand = optionsCommand(
  "rcopy", "rdma-core's rcopy over rsockets: one file copied to a server; interoperable with Linux's",
  HELP, options,
  (o: RcopyOptions, io: Io) => runCmatoseTest("rcopy", { ...o, mrBytes: 4 << 20, lines: false }, io, (_dev: Device, ch, run) => new Rcopy(o, run, ch)),
);

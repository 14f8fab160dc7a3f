// rstream's -T s (and -T f): its test over standard TCP sockets instead of rsockets (rstream.c's
// use_rs = 0, its rs_* calls then the socket calls), so that its figures can be set beside the
// rsocket's. The same sync and transfers on a TCP connection; no device is opened. rstream's
// set_options gives every socket TCP_NODELAY, and with -k SO_KEEPALIVE and TCP_KEEPIDLE, as here;
// its SO_SNDBUF and SO_RCVBUF (-B) a Node socket does not take: the kernel sizes the buffers.

import net from "node:net";

/** strerror's text for the errors a TCP connection meets, as rstream's perror prints them. */
const STRERROR: Record<string, string> = {
  ECONNREFUSED: "Connection refused",
  ECONNRESET: "Connection reset by peer",
  EPIPE: "Broken pipe",
  EADDRINUSE: "Address already in use",
  EADDRNOTAVAIL: "Cannot assign requested address",
  EACCES: "Permission denied",
  ETIMEDOUT: "Connection timed out",
  EHOSTUNREACH: "No route to host",
  ENETUNREACH: "Network is unreachable",
};

/** An error of node:net as perror says it after its label (Node's own message for a code not above). */
export function perrorText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return (code !== undefined && STRERROR[code]) || (e as Error).message;
}

/** The most bytes a connection holds unread before it stops reading its socket (until they are taken). */
const HIGH_WATER = 4 << 20;

/** One TCP connection as rstream's transfers use it: whole sends, and receives that fill their buffer. */
export class TcpXfer {
  private readonly chunks: Buffer[] = [];
  private queued = 0;
  private ended = false;
  private error: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly sock: net.Socket, keepaliveS: number) {
    sock.setNoDelay(true);
    if (keepaliveS) sock.setKeepAlive(true, keepaliveS * 1000);
    sock.on("data", (b: Buffer) => {
      this.chunks.push(b);
      this.queued += b.length;
      if (this.queued >= HIGH_WATER) sock.pause();
      this.kick();
    });
    const over = () => {
      this.ended = true;
      this.kick();
    };
    sock.on("end", over);
    sock.on("close", over);
    sock.on("error", (e) => {
      this.error = e;
      over();
    });
    // a connection that went before it was taken (its error, if any, went to the listener's stand-in)
    if (sock.destroyed) this.ended = true;
  }

  private kick(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** send()'s loop until every byte went: resolves once the kernel has them all (so `b` may be reused). */
  send(b: Uint8Array): Promise<void> {
    if (this.ended) return Promise.reject(new Error(perrorText(this.error ?? { code: "EPIPE" })));
    return new Promise((resolve, reject) => this.sock.write(b, (e) => (e ? reject(new Error(perrorText(e))) : resolve())));
  }

  /** recv()'s loop until `b` is full; false when the peer closed (or the connection failed) first. */
  async recvAll(b: Uint8Array): Promise<boolean> {
    let at = 0;
    while (at < b.length) {
      const c = this.chunks[0];
      if (!c) {
        if (this.ended) return false;
        await new Promise<void>((r) => (this.wake = r));
        continue;
      }
      const n = Math.min(c.length, b.length - at);
      b.set(c.subarray(0, n), at);
      at += n;
      if (n === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(n);
      this.queued -= n;
      if (this.queued < HIGH_WATER && this.sock.isPaused()) this.sock.resume();
    }
    return true;
  }

  /** The connection dropped at once (a run given up while it was open: nothing may hold the process). */
  destroy(): void {
    this.sock.destroy();
  }

  /** shutdown(SHUT_RDWR), then close: the FIN sent, the peer's awaited (at most 1 s). */
  async close(): Promise<void> {
    if (!this.sock.destroyed) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        this.sock.once("close", () => {
          clearTimeout(timer);
          resolve();
        });
        this.sock.end();
      });
    }
    this.sock.destroy();
  }
}

/** rstream's listening socket (-T s): bound to `host`:`port` with a backlog of 1, each accept the next connection. */
export class TcpListener {
  private readonly server = net.createServer({ noDelay: true });
  private readonly accepted: net.Socket[] = [];
  private wake: (() => void) | undefined;
  /** the listening socket's failure after it listened (accept's): the next accept rejects with it */
  private failed: Error | undefined;

  private constructor() {
    this.server.on("connection", (s) => {
      // until TcpXfer takes it: an error then must not go unheard (the connection's close says it went)
      s.on("error", () => {});
      this.accepted.push(s);
      this.kick();
    });
  }

  private kick(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** bind and listen; rejects with the bind's error (EADDRINUSE …). */
  static async listen(host: string, port: number): Promise<TcpListener> {
    const l = new TcpListener();
    await new Promise<void>((resolve, reject) => {
      l.server.once("error", reject);
      l.server.listen({ host, port, backlog: 1 }, () => {
        l.server.off("error", reject);
        l.server.on("error", (e) => {
          l.failed = e;
          l.kick();
        });
        resolve();
      });
    });
    return l;
  }

  /** accept(): the next connection; rejects with the listening socket's failure. */
  async accept(): Promise<net.Socket> {
    for (;;) {
      const s = this.accepted.shift();
      if (s) return s;
      if (this.failed) throw this.failed;
      await new Promise<void>((r) => (this.wake = r));
    }
  }

  close(): void {
    this.server.close();
    for (const s of this.accepted.splice(0)) s.destroy();
  }
}

/** connect() to `host`:`port` (from `bind` when given); rejects with the connect's error (ECONNREFUSED …). */
export function tcpConnect(host: string, port: number, bind: string | undefined): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port, ...(bind !== undefined ? { localAddress: bind } : {}) });
    s.once("error", reject);
    s.once("connect", () => {
      s.off("error", reject);
      resolve(s);
    });
  });
}

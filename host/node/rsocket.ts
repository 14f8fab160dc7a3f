// rsockets as Node streams: a connected rsocket (host/core/rsocket's RStream, librdmacm's rsocket.c
// stream protocol) is a Duplex, so that a Node service reads and writes it as it would a TCP socket
// and the peer may be any rsocket program on Linux (rstream, rcopy, an LD_PRELOAD'ed application).
// rsListen and rsConnect are rlisten/raccept and rconnect over an RdmaCm the application opened;
// rsDgram is a datagram rsocket (host/core/rsocket's RDgram) over a node:dgram socket.
//
// Each listener or client socket has an event channel of its own; the sockets a listener accepts
// share its channel (a CM event names its ID, the router hands it on), which is closed when the
// listener and the last of them are.
import { createSocket, type Socket as DgramSocket } from "node:dgram";
import { isIPv6 } from "node:net";
import { Duplex } from "node:stream";
import { CmEventRouter, PortSpace, RdmaCmEventType as E, type RdmaCm, type RdmaCmId, type SockAddr } from "../core/cm/index.js";
import { RDgram, RStream, RsocketError, type DsUdpSocket, type RDgramOptions, type RsocketOptions } from "../core/rsocket/index.js";

/** One event channel's router, kept until its last user lets go. */
class SharedRouter {
  private users = 1;
  constructor(readonly router: CmEventRouter) {}

  hold(): this {
    this.users++;
    return this;
  }

  release(): void {
    if (--this.users > 0) return;
    this.router.stop();
    this.router.ch.destroy();
  }
}

/** The most a read takes from the receive buffer at once (a chunk pushed to the stream). */
const READ_CHUNK = 1 << 16;

/**
 * A connected rsocket as a Duplex: writes are rsend (every byte into the peer's receive buffer by RDMA
 * WRITE WITH IMMEDIATE), reads rrecv; end() is rshutdown(SHUT_WR) (RS_CTRL_SHUTDOWN: the peer reads
 * to its end and may still write), destroy() rclose. Errors are RsocketErrors with rsocket's errno.
 */
export class RsocketSocket extends Duplex {
  private reading = false;

  /** @internal made by rsConnect and RsocketServer.accept */
  constructor(readonly rstream: RStream, private readonly shared: SharedRouter) {
    super({ allowHalfOpen: true });
  }

  /** this side's address and port (rgetsockname) */
  get localAddress(): SockAddr {
    return this.rstream.id.getLocalAddr();
  }

  /** the peer's address and port (rgetpeername) */
  get remoteAddress(): SockAddr {
    return this.rstream.id.getPeerAddr();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.rstream.send(chunk, this.shared.router).then(() => cb(), cb);
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.rstream.shutdown(this.shared.router, "wr").then(() => cb(), cb);
  }

  override _read(): void {
    if (this.reading) return;
    this.reading = true;
    void (async () => {
      try {
        for (;;) {
          const b = await this.rstream.recvSome(READ_CHUNK, this.shared.router);
          if (this.destroyed) return;
          if (!b) {
            this.push(null);
            return;
          }
          if (!this.push(b)) return;
        }
      } catch (e) {
        this.destroy(e as Error);
      } finally {
        this.reading = false;
      }
    })();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.rstream
      .close(this.shared.router)
      .catch(() => {})
      .then(() => {
        this.shared.release();
        cb(err);
      });
  }
}

export interface RsConnectOptions extends RsocketOptions {
  /** the local address to connect from (rbind before rconnect); default: the route's */
  from?: string;
}

/** rconnect: an rsocket connected to `to` (an RsocketError on failure: ECONNREFUSED, ETIMEDOUT, …). */
export async function rsConnect(rcm: RdmaCm, to: SockAddr, o: RsConnectOptions = {}): Promise<RsocketSocket> {
  const shared = new SharedRouter(new CmEventRouter(rcm.createEventChannel()));
  try {
    const rs = await RStream.connect(shared.router.ch, to, o.from ? { address: o.from } : undefined, o, shared.router);
    return new RsocketSocket(rs, shared);
  } catch (e) {
    shared.release();
    throw e;
  }
}

/** A listening rsocket (rbind, rlisten): accept() takes the next connection. */
export class RsocketServer {
  private closed = false;

  /** @internal made by rsListen */
  constructor(private readonly id: RdmaCmId, private readonly shared: SharedRouter, private readonly o: RsocketOptions) {}

  /** the address and port listened on (port 0 asked: the one given) */
  get address(): SockAddr {
    return this.id.getLocalAddr();
  }

  /** raccept: the next connection request, accepted (a request that is not an rsocket's is rejected and the next awaited). */
  async accept(): Promise<RsocketSocket> {
    for (;;) {
      if (this.closed) throw new RsocketError("EBADF", "raccept: the listener is closed");
      const ev = await this.shared.router.next((e) => e.event === E.CONNECT_REQUEST && e.listenId === this.id);
      if (!ev) throw new RsocketError("EBADF", "raccept: the listener is closed");
      try {
        const rs = await RStream.accept(ev, this.o, this.shared.router);
        return new RsocketSocket(rs, this.shared.hold());
      } catch (e) {
        if (!(e instanceof RsocketError) || e.errno !== "EINVAL") throw e;
      }
    }
  }

  /** rclose of the listener: no more connections; those accepted go on. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.id.destroy();
    } catch {
      /* already */
    }
    this.shared.release();
  }
}

/** rsocket, rbind, rlisten: a listener at `at` (an address of one of the RdmaCm's devices, or 0.0.0.0 / ::). */
export function rsListen(rcm: RdmaCm, at: SockAddr, o: RsocketOptions & { backlog?: number } = {}): RsocketServer {
  const shared = new SharedRouter(new CmEventRouter(rcm.createEventChannel()));
  const id = shared.router.ch.createId(PortSpace.TCP, undefined);
  try {
    id.bindAddr(at);
    id.listen(o.backlog ?? 0);
  } catch (e) {
    try {
      id.destroy();
    } catch {
      /* not made */
    }
    shared.release();
    throw e;
  }
  return new RsocketServer(id, shared, o);
}

/** A datagram rsocket's UDP socket (rsocket's udp_sock) as a node:dgram socket. */
class NodeDsUdp implements DsUdpSocket {
  private cb: ((b: Uint8Array, from: SockAddr) => void) | undefined;

  constructor(private readonly s: DgramSocket) {
    s.on("message", (msg, r) => this.cb?.(msg, { address: r.address, port: r.port }));
    s.on("error", () => {}); // a send the kernel refused (ICMP unreachable): UDP's loss, as rsocket's
  }

  local(): SockAddr {
    const a = this.s.address();
    return { address: a.address, port: a.port };
  }

  async sourceFor(to: SockAddr): Promise<string> {
    const probe = createSocket(isIPv6(to.address) ? "udp6" : "udp4");
    try {
      await new Promise<void>((resolve, reject) => {
        probe.once("error", reject);
        probe.connect(to.port, to.address, resolve);
      });
      return probe.address().address;
    } finally {
      probe.close();
    }
  }

  send(to: SockAddr, b: Uint8Array): void {
    this.s.send(b, to.port, to.address);
  }

  onMessage(cb: ((b: Uint8Array, from: SockAddr) => void) | undefined): void {
    this.cb = cb;
  }

  close(): void {
    try {
      this.s.close();
    } catch {
      /* closed */
    }
  }
}

/** A datagram rsocket's UDP socket bound at `at` (rbind; port 0: any); RsocketError EADDRINUSE, EADDRNOTAVAIL … when it cannot be. */
export async function bindDsUdp(at: SockAddr): Promise<DsUdpSocket> {
  const s = createSocket({ type: isIPv6(at.address) ? "udp6" : "udp4" });
  try {
    await new Promise<void>((resolve, reject) => {
      s.once("error", reject);
      s.bind(at.port, at.address, () => {
        s.off("error", reject);
        resolve();
      });
    });
  } catch (e) {
    s.close();
    throw new RsocketError((e as NodeJS.ErrnoException).code ?? "EINVAL", `rbind: ${(e as Error).message}`);
  }
  return new NodeDsUdp(s);
}

/**
 * rsocket(SOCK_DGRAM) and rbind: a datagram rsocket whose UDP socket is bound at `at` (port 0: any;
 * address 0.0.0.0 or ::: any, each peer's datagrams then leave from the address the route gives).
 */
export async function rsDgram(rcm: RdmaCm, at: SockAddr, o: RDgramOptions = {}): Promise<RDgram> {
  const udp = await bindDsUdp(at);
  const ch = rcm.createEventChannel();
  const router = new CmEventRouter(ch);
  return new RDgram(ch, router, udp, o, () => {
    router.stop();
    ch.destroy();
  });
}

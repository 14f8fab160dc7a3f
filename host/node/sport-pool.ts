// Per-QP UDP source ports on Node: Linux picks a UDP datagram's source port from the socket
// it is sent on, never per datagram (sendmsg takes the destination and, with IP_PKTINFO, the
// source address, not the port). So each port a QP sends from (rxe's: assembly/verbs/sport.ts)
// gets its own socket bound to (device address, port), opened when a modify to RTR gives a QP the
// port (PacketPort.prepareSourcePort; a worker device's at the first datagram from it) and closed
// once no live QP has that port (a sweep asks the device every few seconds).
// The sockets only send: the device receives on its own port (4791) alone. Anything that does
// arrive on one is read and counted (strayReceived), never left to fill a buffer unseen.
// A port that cannot be bound (EADDRINUSE: 0xC000..0xFFFF overlaps Linux's ephemeral range;
// EMFILE: out of descriptors) or that would pass the cap is refused: the link's port then moves
// the descriptor and its QP to the device's port (PacketPort.checkedPort, as it cuts the TX ring into runs of one port), counted here.
// So is a port a sweep closed that no live QP has: the TX ring can still hold a destroyed QP's
// packets (built before the destroy, held while the link waited), and reopening its socket for them
// would bind a port nobody has until the next sweep, and wait on it again if they fill it.
import dgram from "node:dgram";
import { kernelText } from "./kernel-text.js";
import type { SockoptAddon } from "./sockopt.js";

/** How the Node host sends each QP's datagrams: from the QP's own UDP port (rxe's, default) or all from the device's. */
export type UdpSourcePorts = "per-qp" | "device";

/** SourcePortPool's default cap: sockets open at once (each one descriptor). */
export const DEFAULT_SOURCE_PORT_CAP = 1024;

/** The default cap: 1024, or a quarter of the process's descriptor limit when that is less (at least 16); 1024 without /proc. */
export function defaultSourcePortCap(): number {
  const line = kernelText("/proc/self/limits")?.split("\n").find((l) => l.startsWith("Max open files"));
  const soft = Number(line?.split(/\s+/)[3]);
  return Number.isInteger(soft) && soft > 0 ? Math.min(DEFAULT_SOURCE_PORT_CAP, Math.max(16, Math.floor(soft / 4))) : DEFAULT_SOURCE_PORT_CAP;
}
/** How often the pool closes the sockets of ports no live QP has (ms). */
export const SOURCE_PORT_SWEEP_MS = 5000;

export interface SourcePortPoolOptions {
  address: string;
  family: 4 | 6;
  /** sockets open at once, at most (default defaultSourcePortCap(): 1024, less under a low descriptor limit; 1 .. 16384) */
  cap?: number;
  addon: SockoptAddon;
  /** the ports live QPs send from, or undefined when unknown (then nothing is closed) */
  inUse?: () => Set<number> | undefined;
  sweepMs?: number;
  /** told each descriptor just before its socket closes (the link ends a writable wait on it) */
  onClose?: (fd: number) => void;
}

export interface SourcePortStats {
  /** sockets open now */
  open: number;
  /** sockets opened / closed since the link opened */
  opened: number;
  closed: number;
  /** ports refused: bind failed (by errno), or the cap was reached */
  bindFailures: number;
  capRefusals: number;
  /** ports a sweep closed, asked for again while no live QP has them (a destroyed QP's packets in the TX ring) */
  sweptRefusals: number;
  failuresByCode: Record<string, number>;
  /** the last refusal, in words */
  lastFailure?: string;
  /** datagrams that arrived on a send-only socket (read and dropped) */
  strayReceived: number;
  cap: number;
}

interface Entry {
  fd: number;
  socket: dgram.Socket;
}

export class SourcePortPool {
  private readonly sockets = new Map<number, Entry>();
  /** Ports a sweep closed and no live QP has had since: reopened only for one that has it. */
  private readonly swept = new Set<number>();
  private lastFullSweep = 0;
  private readonly timer: NodeJS.Timeout;
  readonly cap: number;
  private readonly st = { opened: 0, closed: 0, bindFailures: 0, capRefusals: 0, sweptRefusals: 0, strayReceived: 0, failuresByCode: {} as Record<string, number>, lastFailure: undefined as string | undefined };

  constructor(private readonly opts: SourcePortPoolOptions) {
    const cap = opts.cap ?? defaultSourcePortCap();
    if (!Number.isInteger(cap) || cap < 1 || cap > 0x4000) throw new RangeError(`bad sourcePortCap ${cap} (1 .. 16384)`);
    this.cap = cap;
    this.timer = setInterval(() => this.sweep(), opts.sweepMs ?? SOURCE_PORT_SWEEP_MS);
    this.timer.unref();
  }

  /** The descriptor of the socket bound to `port`, opening it if needed; -1 when it cannot be had. */
  fd(port: number): number {
    const e = this.sockets.get(port) ?? this.open(port);
    return e ? e.fd : -1;
  }

  /** The dgram socket bound to `port` (opening it), or undefined. */
  socket(port: number): dgram.Socket | undefined {
    return (this.sockets.get(port) ?? this.open(port))?.socket;
  }

  has(port: number): boolean {
    return this.sockets.has(port);
  }

  get ports(): number[] {
    return [...this.sockets.keys()].sort((a, b) => a - b);
  }

  private open(port: number): Entry | undefined {
    if (!Number.isInteger(port) || port < 1 || port > 0xffff) return this.refuse("EINVAL", `bad UDP source port ${port}`);
    if (this.swept.has(port)) {
      // asked for again after a sweep closed it: by a QP that has it now, or by a destroyed QP's
      // packets still in the TX ring (they leave from the device's port)
      const used = this.opts.inUse?.();
      if (used && !used.has(port)) {
        this.st.sweptRefusals++;
        this.st.lastFailure = `source port ${port}: closed by the sweep, no live QP has it (a destroyed QP's packets left in the TX ring)`;
        return undefined;
      }
      this.swept.delete(port);
    }
    if (this.sockets.size >= this.cap) {
      // at the cap: close what no QP has any more first (at most once a second: every refused QP asks)
      const now = Date.now();
      if (now - this.lastFullSweep >= 1000) {
        this.lastFullSweep = now;
        this.sweep();
      }
      if (this.sockets.size >= this.cap) {
        this.st.capRefusals++;
        this.st.lastFailure = `source port ${port}: the pool holds its cap of ${this.cap} sockets (sourcePortCap)`;
        return undefined;
      }
    }
    let fd: number;
    try {
      fd = this.opts.addon.openUdpSocket(this.opts.family, this.opts.address, port, false);
    } catch (e) {
      const text = (e as Error).message;
      const code = /in use/i.test(text) ? "EADDRINUSE" : /too many open files/i.test(text) ? "EMFILE" : /not available|assign/i.test(text) ? "EADDRNOTAVAIL" : "EBIND";
      return this.refuse(code, `cannot bind UDP source port ${port} at ${this.opts.address}: ${text}`);
    }
    const socket = dgram.createSocket({ type: this.opts.family === 4 ? "udp4" : "udp6" });
    socket.on("message", () => this.st.strayReceived++);
    socket.on("error", () => {}); // a send-only socket: errors of sends are reported per datagram
    socket.bind({ fd });
    socket.unref();
    const e = { fd, socket };
    this.sockets.set(port, e);
    this.st.opened++;
    return e;
  }

  private refuse(code: string, text: string): undefined {
    this.st.bindFailures++;
    this.st.failuresByCode[code] = (this.st.failuresByCode[code] ?? 0) + 1;
    this.st.lastFailure = text;
    return undefined;
  }

  /** Closes the sockets of ports no live QP sends from. */
  sweep(): void {
    if (this.sockets.size === 0) return;
    const used = this.opts.inUse?.();
    if (!used) return;
    for (const [port, e] of this.sockets) {
      if (used.has(port)) continue;
      this.sockets.delete(port);
      this.swept.add(port);
      this.opts.onClose?.(e.fd);
      e.socket.close();
      this.st.closed++;
    }
  }

  stats(): SourcePortStats {
    const { lastFailure, ...rest } = this.st;
    return { open: this.sockets.size, ...rest, failuresByCode: { ...rest.failuresByCode }, cap: this.cap, ...(lastFailure ? { lastFailure } : {}) };
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    const all = [...this.sockets.values()];
    this.sockets.clear();
    for (const e of all) this.opts.onClose?.(e.fd);
    await Promise.all(all.map((e) => new Promise<void>((resolve) => e.socket.close(() => resolve()))));
  }
}

// The Node UDP link: one dgram socket per device, bound to its address and
// port (4791 by default). Transmit is one gather send() of the descriptor's
// three views over linear memory; the descriptor is released in the send
// callback. Receive hands each datagram to the port (one copy into linear
// memory). When the kernel's send queue passes a high-water mark the link asks
// the port to hold further datagrams in the device and resumes on drain.
import dgram from "node:dgram";
import { isIPv4, isIPv6 } from "node:net";
import { IP_ID_UNKNOWN, type Link, type OutgoingDatagram, type PacketPort } from "../core/link/index.js";
import { sockoptAddon, sockoptUnavailableReason } from "./sockopt.js";
import { ipv6InterfaceOf } from "./mcast-groups.js";
import { SourcePortPool, type UdpSourcePorts } from "./sport-pool.js";
import { UdpLinkBase } from "./udp-link-base.js";

export interface UdpLinkOptions {
  address: string;
  port: number;
  /** bytes queued in the kernel before the link applies backpressure (default 4 MiB) */
  highWaterMark?: number;
  /**
   * SO_RCVBUF to ask for (default 4 MiB; Linux caps it at net.core.rmem_max). The kernel's
   * 208 KiB default holds ~50 MTU-4096 datagrams, far less than one RC window, and every
   * overflow costs the sender a go-back-N retry.
   */
  recvBufferSize?: number;
  /**
   * Unacknowledged RC request packets the device may have out (default 128): the peer's
   * queueing delay is about this many times its per-packet cost, and must stay well below the
   * ACK timeout (67 ms at the default timeout 14) on a busy machine. 0: no packet limit.
   */
  inFlightPackets?: number;
  /** use the socket addon when it is built (default true) */
  useAddon?: boolean;
  /** called for every datagram the kernel refused (EMSGSIZE: larger than the path MTU with DF set) */
  onSendError?: (e: UdpSendError) => void;
  /** "per-qp" (default): each QP's datagrams leave from its own UDP port (sport-pool.ts); "device": all from `port` */
  udpSourcePorts?: UdpSourcePorts;
  /** sockets the per-QP port pool may hold (default 1024) */
  sourcePortCap?: number;
}

/** A datagram the kernel would not send. The device is not told: to it the datagram was lost. */
export interface UdpSendError {
  /** errno name (EMSGSIZE, ENOBUFS, EHOSTUNREACH, ...) */
  code: string;
  /** UDP payload bytes */
  length: number;
  dst: string;
  dstPort: number;
  message: string;
}

/** Why a send failed, in words a tool can print once. */
export function explainSendError(e: UdpSendError): string {
  if (e.code === "EMSGSIZE") {
    return `the kernel refused a ${e.length}-byte datagram to ${e.dst}:${e.dstPort} (EMSGSIZE): it does not fit the interface MTU with DF set; use a smaller path MTU (-m)`;
  }
  return `the kernel refused a ${e.length}-byte datagram to ${e.dst}:${e.dstPort}: ${e.message}`;
}

/**
 * The TTL / hop limit of multicast datagrams on this path: rxe's (the address handle's hop limit as
 * rdma_cm gives it, 64; the native datapath passes the AH's per datagram). The per-QP source port
 * sockets the addon opens get the same from udpsock.c's MULTICAST_TTL.
 */
const MULTICAST_TTL = 64;

/** How long close() waits for datagrams already handed to the socket to leave. */
const CLOSE_DRAIN_MS = 1000;

/** UdpLinkOptions.inFlightPackets's default: 128 packets queue ~4–8 ms at a busy receiver (30–60 µs each). */
export const DEFAULT_IN_FLIGHT_PACKETS = 128;

export class UdpLink extends UdpLinkBase implements Link {
  port: PacketPort | undefined;
  readonly path = "dgram" as const;
  /** Why kernel interop features are missing, when they are. */
  readonly limitations: string[] = [];
  private blocked = false;
  private readonly highWater: number;
  /** backpressured: times the send queue passed the high-water mark; resumed: times it drained */
  readonly stats = { sent: 0, sendErrors: 0, received: 0, backpressured: 0, resumed: 0, sendErrorsByCode: {} as Record<string, number> };
  private readonly onSendError: ((e: UdpSendError) => void) | undefined;

  private constructor(
    readonly socket: dgram.Socket,
    readonly address: string,
    readonly localPort: number,
    opts: UdpLinkOptions,
  ) {
    super();
    this.highWater = opts.highWaterMark ?? 4 << 20;
    this.inFlightPackets = opts.inFlightPackets ?? DEFAULT_IN_FLIGHT_PACKETS;
    this.onSendError = opts.onSendError;
    socket.on("message", (msg, rinfo) => {
      this.stats.received++;
      this.port?.receive({
        src: rinfo.address,
        dst: this.address,
        srcPort: rinfo.port,
        dstPort: this.localPort,
        // dgram does not show the IP header: the ID is unseen (docs/TRANSPORT.md).
        ipId: IP_ID_UNKNOWN,
        payload: msg,
      });
    });
  }

  /** Binds a UDP socket (IPv4 or IPv6, by the address) and resolves when it listens. */
  static async open(opts: UdpLinkOptions): Promise<UdpLink> {
    const family = isIPv4(opts.address) ? 4 : isIPv6(opts.address) ? 6 : 0;
    if (!family) throw new TypeError(`not an IPv4 or IPv6 address: ${opts.address}`);
    if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new RangeError(`bad UDP port ${opts.port}`);
    const pk = opts.inFlightPackets;
    if (pk !== undefined && (!Number.isInteger(pk) || pk < 0 || pk > 0xffffffff)) throw new RangeError(`bad inFlightPackets ${pk}`);
    const socket = dgram.createSocket({ type: family === 4 ? "udp4" : "udp6", ipv6Only: family === 6 });
    const limitations: string[] = [];
    const addon = opts.useAddon === false ? undefined : sockoptAddon();
    const listening = new Promise<void>((resolve, reject) => {
      socket.once("listening", resolve);
      socket.once("error", reject);
    });
    if (addon) {
      socket.bind({ fd: addon.openUdpSocket(family, opts.address, opts.port, false) });
    } else {
      limitations.push(
        family === 4
          ? "IPv4 datagrams leave with a kernel-chosen IP ID, so Linux rxe drops them (ICRC)"
          : "IPv6 datagrams with UDP checksum 0 (what Linux rxe sends) are dropped by the kernel",
      );
      if (opts.useAddon !== false) limitations.push(sockoptUnavailableReason() ?? "socket addon unavailable");
      socket.bind(opts.port, opts.address);
    }
    await listening;
    try {
      socket.setRecvBufferSize(opts.recvBufferSize ?? 4 << 20);
    } catch (e) {
      limitations.push(`receive buffer left at the default: ${(e as Error).message}`);
    }
    // multicast leaves through this address's interface (loopback too), and loops back to members here
    const mcastIf = family === 4 ? opts.address : ipv6InterfaceOf(opts.address);
    if (mcastIf !== undefined) {
      try {
        socket.setMulticastInterface(mcastIf);
        socket.setMulticastLoopback(true);
        // node:dgram sets no TTL per datagram: multicast leaves with rxe's hop limit, not the socket's default 1
        socket.setMulticastTTL(MULTICAST_TTL);
      } catch (e) {
        // IPv6 on an interface without multicast (loopback): unicast is all it can do, as for rxe on lo
        if (family === 4) limitations.push(`multicast interface not set: ${(e as Error).message}`);
      }
    }
    const link = new UdpLink(socket, opts.address, socket.address().port, opts);
    link.limitations.push(...limitations);
    if ((opts.udpSourcePorts ?? "per-qp") === "per-qp") {
      if (addon) link.pool = new SourcePortPool({ address: opts.address, family, cap: opts.sourcePortCap, addon, inUse: () => link.port?.sourcePortsInUse() });
      else link.limitations.push("every QP sends from the device's UDP port (per-QP source ports need the socket addon)");
    }
    return link;
  }

  /**
   * The peer's receive buffer is taken to be ours (both ends ask for the same SO_RCVBUF; Linux
   * reports twice what was asked, bookkeeping included, and charges each datagram its skb
   * truesize against it): half of it is what the device may have unacknowledged toward it.
   */
  get inFlightBudget(): number {
    try {
      return Math.floor(this.socket.getRecvBufferSize() / 2);
    } catch {
      return 0;
    }
  }

  /** Unacknowledged RC request packets the device may have out toward its peers (UdpLinkOptions.inFlightPackets). */
  readonly inFlightPackets: number;

  /**
   * Bytes handed to the socket whose send callback has not come yet. This, not the socket's
   * getSendQueueSize(), is the backpressure measure: dgram reaches libuv only after an address
   * lookup tick, so right after send() the libuv queue does not show the datagram yet.
   */
  private pendingBytes = 0;
  /** close()'s wait for the last send callback */
  private drained: (() => void) | undefined;

  send(d: OutgoingDatagram, done: () => void): boolean {
    const len = d.length;
    this.pendingBytes += len;
    const from = d.srcPort === this.localPort || !this.pool ? this.socket : (this.pool.socket(d.srcPort) ?? this.socket);
    from.send(d.pieces, d.dstPort, d.dst, (err) => {
      this.pendingBytes -= len;
      if (this.pendingBytes === 0) this.drained?.();
      if (err) this.sendFailed(err, d);
      else this.stats.sent++;
      done();
      if (this.blocked && this.pendingBytes <= this.highWater / 2) {
        this.blocked = false;
        this.stats.resumed++;
        this.port?.resume();
      }
    });
    if (this.pendingBytes >= this.highWater) {
      this.blocked = true;
      this.stats.backpressured++;
      return false;
    }
    return true;
  }

  /** Bytes sent to the socket and not yet confirmed by it. */
  get queuedBytes(): number {
    return this.pendingBytes;
  }

  private sendFailed(err: Error, d: OutgoingDatagram): void {
    const code = (err as NodeJS.ErrnoException).code ?? "unknown";
    this.stats.sendErrors++;
    this.stats.sendErrorsByCode[code] = (this.stats.sendErrorsByCode[code] ?? 0) + 1;
    this.onSendError?.({ code, length: d.length, dst: d.dst, dstPort: d.dstPort, message: err.message });
  }

  async close(): Promise<void> {
    // Datagrams handed to the socket leave before it closes: libuv cancels the sends still queued at
    // close, so a device closed right after its last post (mckey's sender: unsignaled sends, then
    // exit) lost them. At most CLOSE_DRAIN_MS.
    if (this.pendingBytes > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, CLOSE_DRAIN_MS);
        this.drained = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    await this.closePoolAndGroups();
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }
}

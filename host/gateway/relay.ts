// The gateway's native relay (host/node/native/relay.c, docs/TUNNEL.md "The native relay"),
// typed: after the upgrade and HELLO a session's TCP socket is handed to one thread of the addon,
// which parses its WebSocket and tunnel frames and forwards datagrams both ways with no JS call
// per packet. What the thread cannot decide comes back here as events, in order (RelayEvent), and
// the gateway runs the code it runs for its own sessions. A RelaySocket stands in for the `ws`
// object of a handed-off session: the gateway's sends, closes and pings go through the relay.
import type { Socket } from "node:net";
import {
  BATCH_HEADER_LEN, BATCH_MAX_COUNT, BATCH_RECORD_LEN, DATA_HEADER_LEN, FrameKind, MIN_ROCE_PAYLOAD, RECORD_ADDRESS_OFF,
  RECORD_IP_ID_OFF, RECORD_PORT_OFF, TUNNEL_IP_ID_UNKNOWN, TUNNEL_VERSION, TUNNEL_VERSION_BATCH,
} from "../core/tunnel/index.js";
import { sockoptAddon, sockoptUnavailableReason } from "../node/sockopt.js";

/** Events from the relay thread (relay.c's EV_*). */
export const RelayEvent = { END: 0, FRAME: 1, DATAGRAM: 2, UDP: 3, CLOSED: 4, PONG: 5, WS_ERROR: 6, PING: 7 } as const;
/** RelayEvent.DATAGRAM's `a`: the thread took the client's tokens and they ran out. */
export const PUNT_RATE = 1;

/**
 * The tunnel's constants as the relay is given them: frames.ts is their one home, the relay
 * reads them at construction and gives them back from `constants()` (tests compare).
 */
export const RELAY_CONSTANTS = {
  TUNNEL_VERSION, TUNNEL_VERSION_BATCH, KIND_DATA: FrameKind.DATA, KIND_BATCH: FrameKind.BATCH, DATA_HEADER_LEN, BATCH_HEADER_LEN,
  BATCH_RECORD_LEN, BATCH_MAX_COUNT, MIN_ROCE_PAYLOAD, RECORD_PORT_OFF, RECORD_ADDRESS_OFF, RECORD_IP_ID_OFF, TUNNEL_IP_ID_UNKNOWN,
} as const;

export interface RelayOptions {
  /** the gateway's UDP socket (the native datapath's descriptor) and its family */
  udpFd: number;
  family: 4 | 6;
  qpnStart: number;
  qpnCount: number;
  maxClients: number;
  maxRocePayload: number;
  /** the largest WebSocket message taken (ws's maxPayload) */
  maxMessage: number;
  clientQueueBytes: number;
  packetsPerSecond: number;
  bytesPerSecond: number;
  /** the gateway's own GID and UDP port (a datagram to them is hairpinned: JS's) */
  gatewayGid: Uint8Array;
  gatewayPort: number;
  /** how long an approval lets a conversation through without JS seeing it */
  approvalMs: number;
  /**
   * the answer poll: after a turn that sent a client's request its peer answers at once, poll for the
   * answer up to this many µs before blocking, yielding the CPU between polls, while most of that
   * session's windows see their answer (relay.c relay_main; 0..10000; 0 or absent: off)
   */
  busyPollUs?: number;
  /**
   * the request poll: after a turn that sent an answer (not a bare ACK) to a client, poll for that
   * client's next datagram that is not a bare ACK up to this many µs, while most of its request windows
   * see one (0..10000; 0 or absent: off)
   */
  requestPollUs?: number;
  /**
   * bare ACKs toward a client whose answer poll waits for the answer hold in its open frame until
   * the answer comes (one frame, one write, one read at the client) or the window ends (0 or 1;
   * absent: 0)
   */
  joinAcks?: 0 | 1;
}

/**
 * The relay's two polls' windows (a relay's in all, or one session's): answer-poll windows
 * (relayBusyPollUs) opened or joined, those that saw their answer after a look in vain (hits), those
 * that found it at their first look (ready: it came while the thread was still in the turn that opened
 * the window, so a blocking wait would not have slept either; neither a hit nor a miss for the gate),
 * those the gate held back; the same for request-poll windows (relayRequestPollUs), which wait for the
 * client's next request.
 */
export interface RelayPollCounters {
  busyPolls: number;
  busyPollHits: number;
  busyPollReady: number;
  busyPollGated: number;
  requestPolls: number;
  requestPollHits: number;
  requestPollReady: number;
  requestPollGated: number;
}

export interface RelaySessionInfo extends RelayPollCounters {
  buffered: number;
  lastActive: number;
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
  dropped: number;
}

export interface RelayStats extends RelayPollCounters {
  udpOut: number;
  udpIn: number;
  udpSendErrors: number;
  udpSendCalls: number;
  udpReceiveCalls: number;
  puntedDatagrams: number;
  puntedUdp: number;
  puntedFrames: number;
  /** events dropped: the queue toward JS was full */
  queueDrops: number;
  /** datagrams dropped: a client's queue was full */
  clientBacklog: number;
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
  wakeups: number;
  /** events queued toward JS (punts, closes, pongs, errors) */
  events: number;
  /** windows (of either poll) ended because a yield between polls came back after a whole window: the CPU was wanted elsewhere */
  pollsLate: number;
  /** bare ACKs held for their answer (joinAcks) that left with it, and that left without it (the window ended, or something else was written first) */
  ackJoins: number;
  ackJoinMisses: number;
  sessions: number;
}

export type RelayEventHandler = (kind: number, id: number, a: number, bytes: Buffer | undefined) => void;

/** The addon's Relay class (relay.c). */
export interface RelayHandle {
  adopt(fd: number, slot: number, id: number, version: number, initial?: Uint8Array): void;
  send(slot: number, id: number, bytes: Uint8Array, opcode?: number): number;
  closeSession(slot: number, id: number, code: number, reason: string): void;
  terminate(slot: number, id: number): void;
  approve(slot: number, id: number, dir: 0 | 1, gid: Uint8Array, gidAt: number, port: number, qpn: number): void;
  revoke(slot: number, id: number, qpn: number): void;
  resume(slot: number, id: number, tx: number, rx: number): void;
  /** the answer-poll window from now on (µs, 0..10000; 0: off) */
  busyPoll(us: number): void;
  /** the request-poll window from now on (µs, 0..10000; 0: off) */
  requestPoll(us: number): void;
  /** bare ACKs held for the answer the answer poll waits for (1) or not (0), from now on */
  joinAcks(on: 0 | 1): void;
  /** fault injection (tests): each yield between polls also sleeps this long (µs, 0..1000000; 0: off), as when CPU hogs take the CPU */
  slowYield(us: number): void;
  /** fault injection (tests): after a turn that began a wait, the thread sleeps this long before the window's first look (µs, 0..1000000; 0: off), as when the CPU went to the thread its turn woke */
  slowLook(us: number): void;
  /** record up to `cap` forwarding turns from now on (0: stop): for a bench's per-hop breakdown */
  trace(cap: number): void;
  /** the turns recorded, 5 fields each: wake and end (CLOCK_MONOTONIC ns, process.hrtime's), what woke it (1 TCP, 2 UDP), datagrams out, frames out */
  traceTake(): BigUint64Array;
  session(slot: number, id: number): RelaySessionInfo | undefined;
  stats(): RelayStats;
  constants(): Record<string, number>;
  close(): void;
}

interface RelayAddon {
  Relay: new (o: RelayOptions, k: typeof RELAY_CONSTANTS, shape: Int16Array, onEvent: RelayEventHandler) => RelayHandle;
}

/** The relay, or why there is none (no addon, or an addon built before the relay). */
export function openRelay(
  o: RelayOptions, shape: Int16Array, onEvent: RelayEventHandler,
): { relay: RelayHandle; reason?: undefined } | { relay?: undefined; reason: string } {
  const addon = sockoptAddon() as unknown as Partial<RelayAddon> | undefined;
  if (!addon) return { reason: sockoptUnavailableReason() ?? "socket addon unavailable" };
  if (typeof addon.Relay !== "function") return { reason: "the socket addon has no relay (rebuild it: node host/node/native/build.mjs)" };
  return { relay: new addon.Relay(o, RELAY_CONSTANTS, shape, onEvent) };
}

/** The TCP socket under a `ws` server-side WebSocket and its descriptor (undefined: not a plain TCP socket). */
export function tcpOf(ws: unknown): { socket: Socket; fd: number } | undefined {
  const socket = (ws as { _socket?: Socket })._socket;
  const fd = (socket as unknown as { _handle?: { fd?: number } } | undefined)?._handle?.fd;
  return socket && typeof fd === "number" && fd >= 0 ? { socket, fd } : undefined;
}

const CONNECTING = 0, OPEN = 1, CLOSING = 2, CLOSED = 3;

/** A handed-off session as the gateway uses its `ws` (send, close, terminate, ping, readyState, bufferedAmount). */
export class RelaySocket {
  readonly CONNECTING = CONNECTING;
  readonly OPEN = OPEN;
  readonly CLOSING = CLOSING;
  readonly CLOSED = CLOSED;
  readyState: number = OPEN;
  constructor(private readonly relay: RelayHandle, readonly slot: number, readonly id: number, readonly protocol: string) {}

  get bufferedAmount(): number {
    return this.relay.session(this.slot, this.id)?.buffered ?? 0;
  }

  /** Copies the message into the session's queue toward the client (`cb` runs at once: the bytes are the caller's again). */
  send(data: Uint8Array, cb?: (err?: Error) => void): void {
    const n = this.readyState === OPEN ? this.relay.send(this.slot, this.id, data, 2) : -1;
    cb?.(n < 0 ? new Error("relay: the session is closed or its queue is full") : undefined);
  }

  ping(): void {
    if (this.readyState === OPEN) this.relay.send(this.slot, this.id, new Uint8Array(0), 9);
  }

  /** As ws answers a ping: only while open. */
  pong(data: Uint8Array): void {
    if (this.readyState === OPEN) this.relay.send(this.slot, this.id, data, 10);
  }

  close(code = 1000, reason = ""): void {
    if (this.readyState !== OPEN) return;
    this.readyState = CLOSING;
    this.relay.closeSession(this.slot, this.id, code, reason);
  }

  terminate(): void {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSING;
    this.relay.terminate(this.slot, this.id);
  }
}

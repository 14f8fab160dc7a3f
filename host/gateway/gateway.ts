// The softroce gateway: WebSocket clients (browsers) on one side, RoCEv2 over UDP
// on the other (docs/TUNNEL.md). It is no open relay: clients authenticate in the
// HTTP upgrade (token, Origin allowlist), send only RoCEv2-shaped payloads, only to
// allowlisted destinations, at a bounded rate; each owns a QPN range and receives
// only datagrams for its QPNs. Client-to-client traffic is hairpinned without UDP.
// RC/UC conversations are bound in both directions (remote QP → the client that
// opened it; a client's QP → the one peer it talks to), so no client reaches
// another's conversation. Every refusal is counted and logged as one structured
// line, at a bounded rate (the rest are counted as suppressed).
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { isIPv4, isIPv6 } from "node:net";
import { WebSocketServer, type WebSocket, type RawData } from "ws";
import {
  BatchWriter, DATA_HEADER_LEN, FrameKind, RECORD_ADDRESS_OFF, TUNNEL_IP_ID_UNKNOWN, TUNNEL_SUBPROTOCOL_V2, TUNNEL_VERSION, TUNNEL_VERSION_BATCH,
  TunnelFrameError, emitError, emitHello, recordIpId, recordPort, visitDatagrams, writeDataHeader, addressToGid, type TunnelErrorName,
} from "../core/tunnel/index.js";
import { gidToAddress } from "../core/net/index.js";
import { WireCodec } from "../core/wire/index.js";
import { coreModule } from "../node/wasm-source.js";
import { envChoice, envInteger } from "../node/env.js";
import { openGatewayUdp, type GatewayUdp } from "./udp-side.js";
import { AddressCheckCache, AddressPolicy } from "./address-policy.js";
import { RoceShape, type OpcodeShape } from "./roce-shape.js";
import { TokenBucket } from "./token-bucket.js";
import { LogLimiter } from "./log-limiter.js";
import { openRelay, PUNT_RATE, RelayEvent, RelaySocket, tcpOf, type RelayHandle, type RelayStats } from "./relay.js";

export interface GatewayOptions {
  /** HTTP/WebSocket listen address (default 127.0.0.1) */
  listen?: string;
  /** HTTP/WebSocket port (default 8791; 0: a free one) */
  port?: number;
  /** the UDP address the gateway sends from: every client's GID (default 127.0.0.1) */
  udpAddress?: string;
  /** the UDP port (default 4791; 0: a free one) */
  udpPort?: number;
  /** required bearer token (Authorization: Bearer, or ?token= in the URL); none: no authentication */
  token?: string;
  /** allowed Origin values; requests with an Origin header not listed are refused */
  origins?: string[];
  /** destinations (addresses or CIDR blocks) clients may send to and receive from */
  allow?: string[];
  /** destination UDP ports clients may send to (default [4791]) */
  dstPorts?: number[];
  maxClients?: number;
  maxClientsPerAddress?: number;
  /** QPNs per client (default 1024) and the first range's base (default 1024) */
  qpnCount?: number;
  qpnStart?: number;
  /** largest RoCEv2 payload forwarded, BTH … ICRC (default 4096 + 80 + 4 + 4) */
  maxRocePayload?: number;
  /** per-client limits on what it sends (defaults 20000 packets/s, 64 MB/s; bursts of one second) */
  packetsPerSecond?: number;
  bytesPerSecond?: number;
  /** bytes queued towards a client before datagrams for it are dropped (default 1 MiB) */
  clientQueueBytes?: number;
  /** a client whose queue stays full this long is disconnected (default 5000 ms) */
  stallMs?: number;
  /** a client that sends nothing this long is disconnected (default 120000 ms) */
  idleTimeoutMs?: number;
  /** WebSocket ping interval; a client that missed the previous pong is dropped (default 30000 ms) */
  heartbeatMs?: number;
  /** ERROR frames sent to one client per second at most (default 20) */
  errorFramesPerSecond?: number;
  /** one structured log record per refusal and per client event (default: none) */
  log?: (record: LogRecord) => void;
  /** refusal records logged per second at most (default 20); the rest are counted and reported as suppressed */
  logRate?: number;
  /**
   * A client QP's RC/UC conversation stays bound to its peer until the client leaves
   * or no packet reached that QP for this long (default 300000 ms)
   */
  bindingIdleMs?: number;
  /** use the socket addon for IPv4 ID 0 and UDP_NO_CHECK6_RX (default true when built) */
  useAddon?: boolean;
  /**
   * UDP through the addon's native datapath (sendmmsg/GSO, recvmmsg/GRO; default true when built);
   * false, or no addon: node:dgram. `udpPath` says which is active.
   */
  nativeUdp?: boolean;
  /**
   * Version 2 (clients that offer the subprotocol softroce-tunnel.2): the largest message either
   * side sends, a BATCH of datagrams up to this size (default 256 KiB; at least one DATA frame)
   */
  maxFrameBytes?: number;
  /**
   * Native UDP side: after a turn that forwarded a request its peer answers at once (AckReq, READ,
   * atomic), keep polling the UDP socket this many µs for the answer instead of sleeping until the
   * next wake-up (0..2000; 0, the default: off). It holds a CPU while it waits (docs/PERFORMANCE.md).
   */
  udpBusyPollUs?: number;
  /**
   * Native relay, the answer poll: after its thread sent a client's request that the peer answers at
   * once (AckReq, READ, atomic), it polls its sockets up to this many µs for the answer instead of
   * sleeping, yielding the CPU between polls, until a datagram that is not a bare ACK went to that
   * client; only while most of that client's windows see their answer (0..10000; default 300; 0: off; docs/TUNNEL.md, "The
   * native relay", and docs/PERFORMANCE.md, gateway section).
   */
  relayBusyPollUs?: number;
  /**
   * Native relay, the request poll: after its thread sent an answer to a client (a datagram that is not
   * a bare ACK: the client reacts to it at once), it polls its sockets up to this many µs for that
   * client's next datagram that is not a bare ACK instead of sleeping, yielding the CPU between polls;
   * only while most of that client's request windows see it (0..10000; default 0: off; env
   * SOFTROCE_RELAY_REQUEST_POLL_US where this option is absent; docs/TUNNEL.md, "The native relay").
   * With the answer poll it keeps the thread awake across a ping-pong's whole round trip.
   */
  relayRequestPollUs?: number;
  /**
   * Native relay: while the answer poll waits for a client's answer, the bare ACKs that come first
   * (a SEND's ACK, the echo behind it) wait in that client's open frame and leave with the answer: one
   * frame, one TCP write and one read at the client for both, instead of two. Bounded by the window
   * (the ACKs leave when it ends) and only while most of that client's windows see their answer
   * (default true; env SOFTROCE_RELAY_JOIN_ACKS=0|1 where this option is absent; docs/TUNNEL.md,
   * "The native relay").
   */
  relayJoinAcks?: boolean;
  /**
   * Who forwards an established session's packets: "native", the addon's relay thread (the
   * session's TCP socket and the UDP socket's receive handed to it; JS keeps the handshake,
   * policy decisions, refusals, close); "js", the event loop through `ws`. Default "native" when
   * the addon is built and the UDP side is native, else "js"; asked for explicitly and not
   * available, the gateway says why in `limitations` and runs "js". `relayPath` says which.
   */
  relay?: "native" | "js";
}

export interface LogRecord {
  event: "refused" | "connected" | "disconnected" | "listening" | "suppressed";
  /** refusal records not logged (rate limit) since the previous record written */
  suppressed?: number;
  reason?: string;
  client?: number;
  remote?: string;
  detail?: string;
  [k: string]: unknown;
}

const DEFAULTS = {
  listen: "127.0.0.1", port: 8791, udpAddress: "127.0.0.1", udpPort: 4791, maxClients: 64, maxClientsPerAddress: 8,
  qpnCount: 1024, qpnStart: 1024, maxRocePayload: 4096 + 80 + 4 + 4, packetsPerSecond: 20000, bytesPerSecond: 64 << 20,
  clientQueueBytes: 1 << 20, stallMs: 5000, idleTimeoutMs: 120000, heartbeatMs: 30000, errorFramesPerSecond: 20,
  logRate: 20, bindingIdleMs: 300000, maxFrameBytes: 256 * 1024, udpBusyPollUs: 0, relayBusyPollUs: 300,
  relayRequestPollUs: 0, relayJoinAcks: true,
} as const;

/** The longest window of the native relay's polls (µs; relay.c POLL_MAX_US, which refuses more). */
const RELAY_POLL_MAX_US = 10000;

/** The native relay's settings from the environment: its poll windows and ACK joining (SOFTROCE_RELAY_POLL_US, SOFTROCE_RELAY_REQUEST_POLL_US, SOFTROCE_RELAY_JOIN_ACKS), those set. */
function relayFromEnv(): Partial<GatewayOptions> {
  const answer = envInteger("SOFTROCE_RELAY_POLL_US", 0, RELAY_POLL_MAX_US, "µs");
  const request = envInteger("SOFTROCE_RELAY_REQUEST_POLL_US", 0, RELAY_POLL_MAX_US, "µs");
  const join = envChoice("SOFTROCE_RELAY_JOIN_ACKS", ["0", "1"] as const);
  return {
    ...(answer === undefined ? {} : { relayBusyPollUs: answer }), ...(request === undefined ? {} : { relayRequestPollUs: request }),
    ...(join === undefined ? {} : { relayJoinAcks: join === "1" }),
  };
}

/** A gateway's settings: its options over the environment's relay settings (relayFromEnv) over DEFAULTS. */
type GatewayConfig = Required<Omit<GatewayOptions, "token" | "origins" | "log" | "allow" | "dstPorts" | "useAddon" | "nativeUdp" | "relay">> & GatewayOptions;

/** The one place a gateway's settings merge (Gateway.start passes them to the constructor), checked: a RangeError or TypeError names the first bad one. */
function gatewayConfig(options: GatewayOptions): GatewayConfig {
  const o: GatewayConfig = { ...DEFAULTS, ...relayFromEnv(), ...options };
  if (!isIPv4(o.udpAddress) && !isIPv6(o.udpAddress)) throw new TypeError(`not an IPv4 or IPv6 address: ${o.udpAddress}`);
  if (o.qpnStart < 2 || o.qpnCount < 1 || o.qpnStart + o.qpnCount * o.maxClients > 0x1000000) {
    throw new RangeError(`QPN ranges ${o.qpnStart} + ${o.maxClients} × ${o.qpnCount} do not fit in 24 bits`);
  }
  if (o.maxRocePayload > 0xffff) throw new RangeError(`maxRocePayload ${o.maxRocePayload} > 65535`);
  if (!(o.logRate >= 0) || !Number.isFinite(o.logRate)) throw new RangeError(`logRate ${o.logRate} is not a rate`);
  if (!(o.bindingIdleMs > 0)) throw new RangeError(`bindingIdleMs ${o.bindingIdleMs} must be positive`);
  if (!Number.isInteger(o.udpBusyPollUs) || o.udpBusyPollUs < 0 || o.udpBusyPollUs > 2000) {
    throw new RangeError(`udpBusyPollUs ${o.udpBusyPollUs}: whole µs, 0..2000`);
  }
  for (const k of ["relayBusyPollUs", "relayRequestPollUs"] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 0 || o[k] > RELAY_POLL_MAX_US) throw new RangeError(`${k} ${o[k]}: whole µs, 0..${RELAY_POLL_MAX_US}`);
  }
  if (typeof o.relayJoinAcks !== "boolean") throw new TypeError(`relayJoinAcks ${String(o.relayJoinAcks)}: true or false`);
  if (!Number.isInteger(o.maxFrameBytes) || o.maxFrameBytes < DATA_HEADER_LEN + o.maxRocePayload || o.maxFrameBytes > 64 << 20) {
    throw new RangeError(`maxFrameBytes ${o.maxFrameBytes}: at least one DATA frame (${DATA_HEADER_LEN + o.maxRocePayload}), at most 64 MiB`);
  }
  if (options.relay !== undefined && options.relay !== "native" && options.relay !== "js") {
    throw new RangeError(`relay ${JSON.stringify(options.relay)}: "native" or "js"`);
  }
  return o;
}

/** Why the gateway refused something; these names are the counters' and the log lines'. */
export type RefusalReason =
  | "no_token" | "bad_token" | "bad_origin" | "too_many_clients" | "too_many_from_address" | "bad_path"
  | "text_frame" | "bad_frame" | "bad_kind" | "not_roce" | "destination_refused" | "rate_limited" | "qpn_not_owned"
  | "unknown_qpn" | "udp_source_refused" | "udp_not_roce" | "client_backlog" | "slow_consumer" | "idle" | "heartbeat"
  | "udp_backlog" | "oversize_frame" | "ws_error" | "internal" | "peer_owned" | "too_many_peers" | "relay_backlog";

/** What a session's `ws` is to the gateway: a `ws` WebSocket, or a RelaySocket once handed to the native relay. */
interface ClientSocket {
  readonly readyState: number;
  readonly OPEN: number;
  readonly bufferedAmount: number;
  send(data: Uint8Array, cb?: (err?: Error) => void): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  ping(): void;
}

interface Client {
  id: number;
  ws: ClientSocket;
  /** the session's packets go through the native relay (ws is its RelaySocket) */
  relayed: boolean;
  remote: string;
  qpnBase: number;
  slot: number;
  packets: TokenBucket;
  bytes: TokenBucket;
  errors: TokenBucket;
  lastActive: number;
  alive: boolean;
  stalledSince: number | undefined;
  stats: { framesIn: number; framesOut: number; bytesIn: number; bytesOut: number; dropped: number };
  /** remote QPs (peerKey) this client's RC/UC conversations are bound to */
  peers: Set<string>;
  /** this client's QPs → the one peer their RC/UC conversation is bound to (see bindLocal) */
  bound: Map<number, { peer: string; last: number }>;
  /** the tunnel version this client speaks (2: it offered TUNNEL_SUBPROTOCOL_V2) */
  version: number;
  /** version 2: datagrams for the client gathered in this turn of the event loop, sent as one BATCH */
  out: BatchWriter | undefined;
  /** this client as the peer of a hairpinned conversation (clientPeer) */
  peerName: string;
  /** ws is done with the oldest frame `out` lent it */
  frameSent: () => void;
}

/** The peer of a conversation as bindLocal records it: another client (hairpin), or a UDP source address. */
function clientPeer(id: number): string {
  return `c${id}`;
}
function udpPeer(gid: Uint8Array, at = 0): string {
  return `u${Array.from(gid.subarray(at, at + 16)).join(".")}`;
}

/**
 * The string a key function makes of (GID, port, QPN), remembered for the last one asked: a
 * conversation's datagrams then find their map entries without building the string again.
 */
class KeyCache {
  private readonly gid = new Uint8Array(16);
  private port = -1;
  private qpn = -1;
  private key = "";
  constructor(private readonly make: (gid: Uint8Array, port: number, qpn: number) => string) {}
  get(b: Uint8Array, at: number, port: number, qpn: number): string {
    const g = this.gid;
    let same = this.port === port && this.qpn === qpn;
    for (let i = 0; i < 16 && same; i++) same = g[i] === b[at + i];
    if (same) return this.key;
    for (let i = 0; i < 16; i++) g[i] = b[at + i]!;
    this.port = port;
    this.qpn = qpn;
    return (this.key = this.make(g, port, qpn));
  }
}

/** Most remote QPs one client may hold RC/UC conversations with. */
export const MAX_PEERS_PER_CLIENT = 4096;

/** A remote QP: its address (GID bytes), UDP port and QPN. */
function peerKey(gid: Uint8Array, port: number, qpn: number): string {
  return `${gid.join(".")}|${port}|${qpn}`;
}

export interface GatewayCounters {
  clientsAccepted: number;
  clientsClosed: number;
  framesIn: number;
  framesOut: number;
  udpIn: number;
  udpOut: number;
  hairpinned: number;
  udpSendErrors: number;
  /** refusal log records suppressed by the log rate limit */
  logSuppressed: number;
  refused: Record<string, number>;
}

export class Gateway {
  private readonly ctr: GatewayCounters = {
    clientsAccepted: 0, clientsClosed: 0, framesIn: 0, framesOut: 0, udpIn: 0, udpOut: 0, hairpinned: 0, udpSendErrors: 0,
    logSuppressed: 0, refused: {},
  };
  /** The counters, with what the native relay forwarded and dropped on its own merged in. */
  get counters(): GatewayCounters {
    this.syncRelay();
    return this.ctr;
  }
  /** The native relay when it forwards established sessions (relay: "native"), else undefined. */
  private relay: RelayHandle | undefined;
  /** The relay's stats already merged into ctr. */
  private relaySeen: RelayStats | undefined;
  /** Punts of each session handled in this batch of relay events: given back (resume) at its end. */
  private readonly relayHandled = new Map<number, { slot: number; tx: number; rx: number }>();
  /** Why IPv4 IDs or IPv6 checksums will not match Linux rxe, when the addon is missing. */
  readonly limitations: string[] = [];
  private readonly o: GatewayConfig;
  private readonly refusalLog: LogLimiter<LogRecord> | undefined;
  private readonly clients = new Map<number, Client>();
  /**
   * RC and UC packets name no source QP, and every client sends from the
   * gateway's one address and port, so a remote QP cannot tell clients apart.
   * The first client to talk to a remote QP owns that conversation until it
   * leaves; another client's RC/UC packets to it are refused (UD names its
   * source QP in the DETH, which is checked against the client's range).
   */
  private readonly peerOwner = new Map<string, number>();
  /** client slot → client; QPN range of slot i is qpnStart + i × qpnCount */
  private readonly slots: (Client | undefined)[] = [];
  private readonly perAddress = new Map<string, number>();
  private nextId = 1;
  private timer: ReturnType<typeof setInterval> | undefined;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private readonly wss: WebSocketServer;
  private readonly policy: AddressPolicy;
  private readonly dstPorts: Set<number>;
  private readonly gatewayGid: Uint8Array;
  private closed = false;
  /** per-datagram caches: the last destination and source allowed, the last remote QP's and UDP peer's keys */
  private readonly dstCheck: AddressCheckCache;
  private readonly srcCheck: AddressCheckCache;
  private readonly peerKeys = new KeyCache(peerKey);
  private readonly udpPeers = new KeyCache((gid) => udpPeer(gid));

  private constructor(
    o: GatewayConfig,
    readonly http: http.Server,
    readonly udp: GatewayUdp,
    private readonly shape: RoceShape,
    readonly udpPort: number,
  ) {
    this.o = o;
    this.policy = new AddressPolicy(o.allow ?? []);
    this.dstCheck = new AddressCheckCache(this.policy);
    this.srcCheck = new AddressCheckCache(this.policy);
    this.dstPorts = new Set(o.dstPorts ?? [4791]);
    this.gatewayGid = addressToGid(this.o.udpAddress);
    const log = o.log;
    this.refusalLog = log && new LogLimiter<LogRecord>(log, this.o.logRate, Date.now());
    this.wss = new WebSocketServer({
      noServer: true, maxPayload: Math.max(DATA_HEADER_LEN + this.o.maxRocePayload, this.o.maxFrameBytes), perMessageDeflate: false, clientTracking: false,
      // version 2 when the client offers it; otherwise no subprotocol and version 1
      handleProtocols: (protocols: Set<string>) => (protocols.has(TUNNEL_SUBPROTOCOL_V2) ? TUNNEL_SUBPROTOCOL_V2 : false),
    });
    // A throw in these handlers would end the process: contain it, count it, drop the one request or datagram.
    http.on("upgrade", (req, socket, head) => {
      try {
        this.upgrade(req, socket, head);
      } catch (e) {
        this.refuse("internal", undefined, (e as Error).message, req.socket.remoteAddress);
        socket.destroy();
      }
    });
    http.on("request", (_req, res) => {
      res.writeHead(426, { "content-type": "text/plain" }).end("softroce gateway: WebSocket only\n");
    });
    if ((o.relay ?? "native") === "native") this.startRelay(o.relay === "native");
    // relayed: the relay thread is the UDP socket's one reader, and gives JS what it does not forward
    if (!this.relay) udp.receive(
      (buf, at, len, gid, gidAt, port) => {
        try {
          this.fromUdp(buf, at, len, gid, gidAt, port);
        } catch (e) {
          this.refuse("internal", undefined, (e as Error).message, endpoint(gidToAddress(gid, gidAt), port));
        }
      },
      // a native batch ends: what it gathered for clients leaves now
      this.flushAll,
      (why) => this.refuse("internal", undefined, why),
    );
    this.timer = setInterval(() => this.sweep(), Math.min(1000, this.o.stallMs, this.o.idleTimeoutMs) / 2);
    this.heartbeat = setInterval(() => this.ping(), this.o.heartbeatMs);
  }

  /** Starts the HTTP and UDP listeners; resolves when both listen. */
  static async start(options: GatewayOptions = {}): Promise<Gateway> {
    const o = gatewayConfig(options);
    const codec = await WireCodec.create(await coreModule());
    const table: (OpcodeShape | undefined)[] = [];
    const deth: (number | undefined)[] = [];
    for (let op = 0; op < 256; op++) {
      const info = codec.opcode(op);
      table.push(info && { length: info.length, mask: info.mask });
      deth.push(info?.offsets.DETH);
    }
    const shape = new RoceShape(table, deth, o.maxRocePayload);
    const udp = await openGatewayUdp({
      address: o.udpAddress, port: o.udpPort, useAddon: options.useAddon !== false, native: options.nativeUdp, maxDatagram: o.maxRocePayload,
      // the relay reads the socket itself, datagram by datagram (no GRO super-datagrams)
      gro: (options.relay ?? "native") !== "native",
    });
    const server = http.createServer();
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(o.port, o.listen, () => resolve());
      });
    } catch (e) {
      await udp.close();
      throw e;
    }
    const gw = new Gateway(o, server, udp, shape, udp.port);
    gw.limitations.push(...udp.limitations, ...gw.relayLimitations);
    gw.log({ event: "listening", detail: `ws://${endpoint(o.listen, gw.port)} udp ${endpoint(o.udpAddress, gw.udpPort)} (${udp.path})` });
    return gw;
  }

  /** Who forwards established sessions' packets: the addon's relay thread, or the event loop through `ws`. */
  get relayPath(): "native" | "js" {
    return this.relay ? "native" : "js";
  }

  private readonly relayLimitations: string[] = [];

  /** Opens the native relay on the UDP side's socket; when it cannot, says why and stays "js". */
  private startRelay(asked: boolean): void {
    const fd = this.udp.fd;
    if (fd === undefined) {
      if (asked) this.relayLimitations.push("relay: native asked, but the UDP side is node:dgram; packets go through the event loop (js)");
      return;
    }
    const o = this.o;
    const r = openRelay(
      {
        udpFd: fd, family: this.gatewayGid[10] === 0xff && this.gatewayGid.subarray(0, 10).every((x) => x === 0) ? 4 : 6,
        qpnStart: o.qpnStart, qpnCount: o.qpnCount, maxClients: o.maxClients, maxRocePayload: o.maxRocePayload,
        maxMessage: Math.max(DATA_HEADER_LEN + o.maxRocePayload, o.maxFrameBytes), clientQueueBytes: o.clientQueueBytes,
        packetsPerSecond: o.packetsPerSecond, bytesPerSecond: o.bytesPerSecond, gatewayGid: this.gatewayGid, gatewayPort: this.udpPort,
        // JS sees every conversation at least this often, so its bindings' clocks run as on its own path
        approvalMs: Math.max(1, Math.min(5000, Math.floor(o.bindingIdleMs / 4))),
        busyPollUs: o.relayBusyPollUs,
        requestPollUs: o.relayRequestPollUs,
        joinAcks: o.relayJoinAcks ? 1 : 0,
      },
      this.shape.relayTable(),
      this.onRelayEvent,
    );
    if (!r.relay) {
      if (asked) this.relayLimitations.push(`relay: native asked, but ${r.reason}; packets go through the event loop (js)`);
      return;
    }
    this.relay = r.relay;
    this.relaySeen = r.relay.stats();
  }

  /** Adds what the relay counted since the last call to the gateway's counters. */
  private syncRelay(): void {
    const r = this.relay;
    const was = this.relaySeen;
    if (!r || !was) return;
    const now = r.stats();
    const c = this.ctr;
    c.framesIn += now.framesIn - was.framesIn;
    c.framesOut += now.framesOut - was.framesOut;
    c.udpIn += now.udpIn - was.udpIn;
    c.udpOut += now.udpOut - was.udpOut;
    c.udpSendErrors += now.udpSendErrors - was.udpSendErrors;
    const backlog = now.clientBacklog - was.clientBacklog;
    if (backlog) c.refused.client_backlog = (c.refused.client_backlog ?? 0) + backlog;
    const queue = now.queueDrops - was.queueDrops;
    if (queue) c.refused.relay_backlog = (c.refused.relay_backlog ?? 0) + queue;
    this.relaySeen = now;
  }

  /** Relay events JS has handled (RelayStats.events is how many the thread queued). */
  private relayEvents = 0;

  /**
   * The relay's statistics (system calls, punts), or undefined when the relay is not on;
   * `eventsHandled` of its `events` have run in JS (equal: nothing the thread passed up is pending).
   */
  relayStats(): (RelayStats & { eventsHandled: number }) | undefined {
    const s = this.relay?.stats();
    return s && { ...s, eventsHandled: this.relayEvents };
  }

  private handled(id: number, slot: number): { slot: number; tx: number; rx: number } {
    let h = this.relayHandled.get(id);
    if (!h) this.relayHandled.set(id, (h = { slot, tx: 0, rx: 0 }));
    return h;
  }

  /** What the relay thread did not decide itself, in order (relay.c's events). */
  private readonly onRelayEvent = (kind: number, id: number, a: number, bytes: Buffer | undefined): void => {
    if (this.closed) return;
    if (kind !== RelayEvent.END) this.relayEvents++;
    const c = this.clients.get(id);
    try {
      switch (kind) {
        case RelayEvent.END:
          // what the punts produced leaves, then the sessions go back to the fast path
          this.flushAll();
          for (const [hid, h] of this.relayHandled) this.relay?.resume(h.slot, hid, h.tx, h.rx);
          this.relayHandled.clear();
          return;
        case RelayEvent.FRAME:
          // (a session JS no longer knows is gone in the relay too: nothing to give back)
          if (!c) return;
          this.handled(id, c.slot).tx++;
          this.fromClient(c, bytes!, a === 1);
          return;
        case RelayEvent.DATAGRAM: {
          if (!c) return;
          this.handled(id, c.slot).tx++;
          if (!this.clients.has(c.id) || c.ws.readyState !== c.ws.OPEN) return;
          c.lastActive = Date.now();
          if (a === PUNT_RATE) return this.refuseFrame(c, "rate_limited", "rate_limited", "over the packet or byte rate");
          this.forward(c, bytes!, 0, DATA_HEADER_LEN, bytes!.length - DATA_HEADER_LEN);
          return;
        }
        case RelayEvent.UDP:
          if (c) this.handled(id, c.slot).rx++;
          try {
            this.fromUdp(bytes!, 16, bytes!.length - 16, bytes!, 0, a);
          } catch (e) {
            this.refuse("internal", undefined, (e as Error).message, endpoint(gidToAddress(bytes!, 0), a));
          }
          return;
        case RelayEvent.CLOSED:
          if (c) {
            (c.ws as RelaySocket).readyState = 3;
            this.drop(c, a);
          }
          return;
        case RelayEvent.PONG:
          if (c) c.alive = true;
          return;
        case RelayEvent.PING:
          // a ping that came while JS held the session's earlier datagrams: answered now, as ws would have
          if (!c) return;
          this.handled(id, c.slot).tx++;
          this.flushClient(c);
          (c.ws as RelaySocket).pong(bytes!);
          return;
        case RelayEvent.WS_ERROR:
          if (c) {
            this.refuse((a & 0x10000) !== 0 ? "oversize_frame" : "ws_error", c, bytes!.toString("utf8"));
            // the relay left the close to JS (it held frames from before the error): after their ERROR frames, as ws
            if ((a & 0x20000) !== 0) this.relay?.closeSession(c.slot, c.id, a & 0xffff, "");
            (c.ws as RelaySocket).readyState = 2;
            // as ws after a protocol error: the close frame is out; a client that does not finish the close is cut
            setTimeout(() => c.ws.terminate(), 1000).unref();
          }
          return;
      }
    } catch (e) {
      if (c) this.evict(c, "internal", 1011, (e as Error).message);
      else this.refuse("internal", undefined, (e as Error).message);
    }
  };

  /** How the UDP side moves datagrams: the addon's native datapath, or node:dgram. */
  get udpPath(): "native" | "dgram" {
    return this.udp.path;
  }

  /** The HTTP/WebSocket port. */
  get port(): number {
    return (this.http.address() as AddressInfo).port;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** Per-client statistics by client id. */
  clientStats(): Record<number, Client["stats"] & { qpnBase: number; remote: string }> {
    const out: Record<number, Client["stats"] & { qpnBase: number; remote: string }> = {};
    for (const c of this.clients.values()) {
      const r = c.relayed ? this.relay?.session(c.slot, c.id) : undefined;
      const s = c.stats;
      out[c.id] = {
        framesIn: s.framesIn + (r?.framesIn ?? 0), framesOut: s.framesOut + (r?.framesOut ?? 0), bytesIn: s.bytesIn + (r?.bytesIn ?? 0),
        bytesOut: s.bytesOut + (r?.bytesOut ?? 0), dropped: s.dropped + (r?.dropped ?? 0), qpnBase: c.qpnBase, remote: c.remote,
      };
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    clearInterval(this.heartbeat);
    for (const c of [...this.clients.values()]) c.ws.terminate();
    this.http.closeAllConnections();
    await new Promise<void>((r) => this.http.close(() => r()));
    this.flushAll();
    if (this.relay) {
      this.syncRelay();
      // the relay's thread stops and its sockets close; its sessions end here (their events are not delivered)
      this.relay.close();
      this.relay = undefined;
      for (const c of [...this.clients.values()]) if (c.relayed) this.drop(c, 1006);
    }
    await this.udp.close();
  }

  private log(r: LogRecord): void {
    this.o.log?.(r);
  }

  private refuse(reason: RefusalReason, c: Client | undefined, detail: string, remote?: string): void {
    this.ctr.refused[reason] = (this.ctr.refused[reason] ?? 0) + 1;
    if (c) c.stats.dropped++;
    const l = this.refusalLog;
    if (!l) return;
    l.log({ event: "refused", reason, client: c?.id, remote: remote ?? c?.remote, detail }, Date.now());
    this.ctr.logSuppressed = l.suppressed;
  }

  /** Says how many refusal records the rate limit held back since the last one written (from the sweep timer). */
  private flushSuppressed(): void {
    const n = this.refusalLog?.takePending() ?? 0;
    if (n) this.log({ event: "suppressed", suppressed: n, detail: `${n} refusal records not logged (log rate ${this.o.logRate}/s)` });
  }

  /** A per-frame refusal the client hears about (ERROR frame, rate-limited), connection kept. */
  private refuseFrame(c: Client, reason: RefusalReason, name: TunnelErrorName, detail: string): void {
    this.refuse(reason, c, detail);
    if (c.errors.take(1, Date.now()) && c.ws.readyState === c.ws.OPEN) {
      this.flushClient(c); // after the datagrams that came before it
      c.ws.send(emitError(name, `${reason}: ${detail}`, c.version));
    }
  }

  private upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const remote = req.socket.remoteAddress ?? "?";
    const deny = (status: string, reason: RefusalReason, detail: string) => {
      this.refuse(reason, undefined, detail, remote);
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n${reason}\n`);
      socket.destroy();
    };
    socket.on("error", () => {});
    if (this.closed) return deny("503 Service Unavailable", "too_many_clients", "gateway closing");
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "http://gateway");
    } catch {
      return deny("400 Bad Request", "bad_path", `unparseable request target ${JSON.stringify(req.url).slice(0, 100)}`);
    }
    if (url.pathname !== "/" && url.pathname !== "/tunnel") return deny("404 Not Found", "bad_path", url.pathname);
    if (this.o.token !== undefined) {
      const auth = req.headers.authorization;
      const given = auth?.startsWith("Bearer ") ? auth.slice(7) : url.searchParams.get("token") ?? undefined;
      if (given === undefined) return deny("401 Unauthorized", "no_token", "no token");
      if (!sameSecret(given, this.o.token)) return deny("401 Unauthorized", "bad_token", "token mismatch");
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !(this.o.origins ?? []).includes(origin)) {
      return deny("403 Forbidden", "bad_origin", `Origin ${JSON.stringify(origin).slice(0, 100)} not allowed`);
    }
    if (this.clients.size >= this.o.maxClients) return deny("503 Service Unavailable", "too_many_clients", `${this.clients.size} clients`);
    if ((this.perAddress.get(remote) ?? 0) >= this.o.maxClientsPerAddress) {
      return deny("503 Service Unavailable", "too_many_from_address", `${this.perAddress.get(remote)} clients from ${remote}`);
    }
    // Nothing is reserved until the handshake completes: a request that ws refuses (bad key,
    // version) must not hold a slot.
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, remote));
  }

  private lastSlot = -1;

  /** The next free QPN range after the last one handed out, so a reconnecting client gets a fresh one when there is room. */
  private freeSlot(): number {
    const n = this.o.maxClients;
    for (let k = 1; k <= n; k++) {
      const i = (this.lastSlot + k) % n;
      if (this.slots[i] === undefined) return (this.lastSlot = i);
    }
    return -1;
  }

  private accept(ws: WebSocket, remote: string): void {
    const now = Date.now();
    const o = this.o;
    const slot = this.freeSlot();
    // (two upgrades that passed the caps together can race here)
    if (slot < 0 || this.clients.size >= o.maxClients || (this.perAddress.get(remote) ?? 0) >= o.maxClientsPerAddress) {
      this.refuse("too_many_clients", undefined, "limit reached during the handshake", remote);
      ws.close(1013, "too_many_clients");
      return;
    }
    this.perAddress.set(remote, (this.perAddress.get(remote) ?? 0) + 1);
    const c: Client = {
      id: this.nextId++, ws, relayed: false, remote, slot, qpnBase: o.qpnStart + slot * o.qpnCount,
      packets: new TokenBucket(o.packetsPerSecond, o.packetsPerSecond, now),
      bytes: new TokenBucket(o.bytesPerSecond, o.bytesPerSecond, now),
      errors: new TokenBucket(o.errorFramesPerSecond, o.errorFramesPerSecond, now),
      lastActive: now, alive: true, stalledSince: undefined,
      stats: { framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0, dropped: 0 },
      peers: new Set(), bound: new Map(),
      version: ws.protocol === TUNNEL_SUBPROTOCOL_V2 ? TUNNEL_VERSION_BATCH : TUNNEL_VERSION, out: undefined, peerName: "",
      frameSent: () => c.out?.returned(),
    };
    c.peerName = clientPeer(c.id);
    if (c.version === TUNNEL_VERSION_BATCH) c.out = new BatchWriter(o.maxFrameBytes);
    this.slots[slot] = c;
    this.clients.set(c.id, c);
    this.ctr.clientsAccepted++;
    this.log({ event: "connected", client: c.id, remote, detail: `QPNs ${c.qpnBase}..${c.qpnBase + o.qpnCount - 1}` });
    const hello = emitHello({
      address: o.udpAddress, port: this.udpPort, ipIdPolicy: 0, dontFragment: true, maxPayload: o.maxRocePayload,
      qpnBase: c.qpnBase, qpnCount: o.qpnCount, clientId: c.id,
      ...(c.version === TUNNEL_VERSION_BATCH ? { version: c.version, maxFrame: o.maxFrameBytes } : {}),
    });
    if (this.relay && this.handOff(c, ws)) {
      c.ws.send(hello);
      return;
    }
    ws.on("message", (data: RawData, isBinary: boolean) => {
      try {
        this.fromClient(c, data, isBinary);
      } catch (e) {
        this.evict(c, "internal", 1011, (e as Error).message);
      }
    });
    ws.on("pong", () => { c.alive = true; });
    ws.on("error", (e: Error & { code?: string }) =>
      this.refuse(e.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH" ? "oversize_frame" : "ws_error", c, e.message));
    ws.on("close", (code) => this.drop(c, code));
    ws.send(hello);
  }

  /**
   * Gives the session's TCP socket to the native relay, right after the upgrade (nothing has been
   * read from it as WebSocket frames yet; bytes the HTTP parser read past the request go with it):
   * the relay gets its own descriptor (dup), and Node's socket is closed without a shutdown, so
   * every byte from here on goes through the relay. false: not a plain TCP socket, the session
   * stays on the JS path.
   */
  private handOff(c: Client, ws: WebSocket): boolean {
    const relay = this.relay!;
    const tcp = tcpOf(ws);
    if (!tcp || tcp.socket.writableLength !== 0) return false;
    const { socket, fd } = tcp;
    socket.pause();
    const initial: Buffer | null = socket.readableLength > 0 ? socket.read(socket.readableLength) : null;
    try {
      relay.adopt(fd, c.slot, c.id, c.version, initial ?? undefined);
    } catch (e) {
      if (initial) socket.unshift(initial);
      socket.resume();
      this.refuse("internal", c, `relay: ${(e as Error).message}; this session stays on the JS path`);
      return false;
    }
    ws.removeAllListeners();
    ws.on("error", () => {});
    socket.removeAllListeners("data");
    socket.on("error", () => {});
    socket.destroy();
    c.ws = new RelaySocket(relay, c.slot, c.id, ws.protocol);
    c.relayed = true;
    return true;
  }

  private drop(c: Client, code: number): void {
    if (!this.clients.delete(c.id)) return;
    for (const k of c.peers) if (this.peerOwner.get(k) === c.id) this.peerOwner.delete(k);
    c.peers.clear();
    c.bound.clear();
    this.slots[c.slot] = undefined;
    const n = (this.perAddress.get(c.remote) ?? 1) - 1;
    if (n <= 0) this.perAddress.delete(c.remote);
    else this.perAddress.set(c.remote, n);
    this.ctr.clientsClosed++;
    this.log({ event: "disconnected", client: c.id, remote: c.remote, detail: `close code ${code}` });
  }

  /** Disconnects a client for a reason that ends the session. */
  private evict(c: Client, reason: RefusalReason, code: number, detail: string): void {
    this.refuse(reason, c, detail);
    if (c.ws.readyState === c.ws.OPEN) {
      c.ws.close(code, reason);
      // a client that does not read will not complete the closing handshake
      setTimeout(() => c.ws.terminate(), 1000).unref();
    } else c.ws.terminate();
  }

  private owner(qpn: number): Client | undefined {
    const i = Math.floor((qpn - this.o.qpnStart) / this.o.qpnCount);
    return qpn >= this.o.qpnStart && i < this.o.maxClients ? this.slots[i] ?? undefined : undefined;
  }

  private owns(c: Client, qpn: number): boolean {
    return qpn >= c.qpnBase && qpn < c.qpnBase + this.o.qpnCount;
  }

  private fromClient(c: Client, data: RawData, isBinary: boolean): void {
    // after an eviction the socket may still deliver what was already read: ignore it
    if (!this.clients.has(c.id) || c.ws.readyState !== c.ws.OPEN) return;
    c.lastActive = Date.now();
    c.stats.framesIn++;
    this.ctr.framesIn++;
    if (!isBinary) return this.evict(c, "text_frame", 1003, "text message on a binary tunnel");
    const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    c.stats.bytesIn += bytes.length;
    // a version-1 client's frames are bounded by one DATA frame (ws's own bound is version 2's)
    if (c.version === TUNNEL_VERSION && bytes.length > DATA_HEADER_LEN + this.o.maxRocePayload) {
      return this.evict(c, "oversize_frame", 1009, "Max payload size exceeded"); // as ws says it for frames over its own bound
    }
    let kind;
    this.sender = c;
    try {
      // a version-2 client may send version-1 frames too; a version-1 client only those. The whole
      // frame is checked before the first datagram is forwarded; each datagram then as if it came
      // in its own DATA frame, and an eviction stops the rest.
      kind = visitDatagrams(bytes, c.version, this.visit);
    } catch (e) {
      if (!(e instanceof TunnelFrameError)) throw e;
      return this.evict(c, "bad_frame", 1002, e.message);
    } finally {
      this.sender = undefined;
    }
    if (kind !== FrameKind.DATA && kind !== FrameKind.BATCH) return this.evict(c, "bad_kind", 1002, `kind ${kind} is not sent by clients`);
  }

  /** The client whose frame visitDatagrams is walking. */
  private sender: Client | undefined;
  private readonly visit = (b: Uint8Array, at: number, payloadAt: number, len: number): boolean => {
    const c = this.sender!;
    this.forward(c, b, at, payloadAt, len);
    return this.clients.has(c.id) && c.ws.readyState === c.ws.OPEN;
  };

  /**
   * One datagram from a client (a DATA frame or one of a BATCH; its header at `b[at]`, payload
   * `b[payloadAt, payloadAt + len)`): checked, then to UDP or hairpinned. Nothing is allocated on
   * the way of a datagram that is forwarded (the address checks and map keys of a conversation are
   * remembered), only for refusals.
   */
  private forward(c: Client, b: Uint8Array, at: number, payloadAt: number, len: number): void {
    const ipId = recordIpId(b, at);
    if (ipId !== 0) return this.evict(c, "bad_frame", 1002, `client DATA with IPv4 ID ${ipId} (must be 0)`);
    const now = Date.now();
    // a relayed session's tokens were taken by the relay thread (one bucket per client)
    if (!c.relayed && (!c.packets.take(1, now) || !c.bytes.take(len, now))) {
      return this.refuseFrame(c, "rate_limited", "rate_limited", "over the packet or byte rate");
    }
    const shape = this.shape;
    if (!shape.inspect(b, payloadAt, len)) return this.refuseFrame(c, "not_roce", "not_roce", shape.why);
    const destQp = shape.destQp;
    const srcQp = shape.srcQp;
    // Only UD names its source QP (DETH); it must be one of this client's.
    if (srcQp >= 0 && !this.owns(c, srcQp)) {
      return this.refuseFrame(c, "qpn_not_owned", "qpn_not_owned", `DETH source QP ${srcQp} is not in ${c.qpnBase}+${this.o.qpnCount}`);
    }
    const port = recordPort(b, at);
    const gidAt = at + RECORD_ADDRESS_OFF;
    const hairpin = port === this.udpPort && sameGid(b, gidAt, this.gatewayGid);
    const to = hairpin ? this.owner(destQp) : undefined;
    if (hairpin && !to) return this.refuseFrame(c, "unknown_qpn", "unknown_qpn", `no client owns QPN ${destQp}`);
    if (srcQp < 0) {
      // RC/UC: bind the remote QP to this client (see peerOwner) ...
      const key = this.peerKeys.get(b, gidAt, port, destQp);
      const owner = this.peerOwner.get(key);
      if (owner !== undefined && owner !== c.id && this.clients.has(owner)) {
        return this.refuseFrame(c, "peer_owned", "qpn_not_owned", `QP ${destQp} at ${endpoint(gidToAddress(b, gidAt), port)} talks to another client`);
      }
      // ... and, hairpinned, the receiving client's QP to this client: the same binding UDP delivery applies.
      if (to && !this.bindLocal(to, destQp, c.peerName, now, false)) {
        return this.refuseFrame(c, "peer_owned", "qpn_not_owned", `QP ${destQp} of client ${to.id} talks to another peer`);
      }
      if (owner !== c.id) {
        if (c.peers.size >= MAX_PEERS_PER_CLIENT) {
          return this.refuseFrame(c, "too_many_peers", "destination_refused", `more than ${MAX_PEERS_PER_CLIENT} remote QPs`);
        }
        this.peerOwner.set(key, c.id);
        c.peers.add(key);
      }
      if (to) this.bindLocal(to, destQp, c.peerName, now, true);
    }
    if (to) {
      // Hairpin: to another client of this gateway, by destination QPN, without UDP.
      this.ctr.hairpinned++;
      this.toClient(to, this.gatewayGid, 0, this.udpPort, 0, b, payloadAt, len);
      return;
    }
    if (!this.dstCheck.allows(b, gidAt)) {
      return this.refuseFrame(c, "destination_refused", "destination_refused", `${gidToAddress(b, gidAt)}: ${this.dstCheck.why}`);
    }
    if (!this.dstPorts.has(port)) {
      return this.refuseFrame(c, "destination_refused", "destination_refused", `UDP port ${port} not allowed`);
    }
    // one copy into the UDP side's queue (the ws receive buffer is not ours once this handler returns); it leaves at the end of the turn
    if (!this.udp.send(b, gidAt, port, b, payloadAt, len)) return this.refuseFrame(c, "udp_backlog", "backlog", "UDP send queue full");
    this.ctr.udpOut++;
    // this conversation may pass the relay on its own now (the checks above hold for it until approvalMs)
    if (c.relayed) this.relay?.approve(c.slot, c.id, 0, b, gidAt, port, destQp);
    if (shape.asksReply) this.replyExpected = true;
    this.udpSoon();
  }

  /** One datagram from UDP, `buf[at, at + len)` from the GID at `gid[gidAt]` and `port`. */
  private fromUdp(buf: Uint8Array, at: number, len: number, gid: Uint8Array, gidAt: number, port: number): void {
    this.ctr.udpIn++;
    if (port === 0) return this.refuse("udp_source_refused", undefined, "UDP source port 0", gidToAddress(gid, gidAt));
    if (!this.srcCheck.allows(gid, gidAt)) {
      return this.refuse("udp_source_refused", undefined, `${gidToAddress(gid, gidAt)}: ${this.srcCheck.why}`, endpoint(gidToAddress(gid, gidAt), port));
    }
    const shape = this.shape;
    if (!shape.inspect(buf, at, len)) return this.refuse("udp_not_roce", undefined, shape.why, endpoint(gidToAddress(gid, gidAt), port));
    const destQp = shape.destQp;
    const to = this.owner(destQp);
    if (!to) return this.refuse("unknown_qpn", undefined, `no client owns QPN ${destQp}`, endpoint(gidToAddress(gid, gidAt), port));
    if (shape.srcQp < 0 && !this.bindLocal(to, destQp, this.udpPeers.get(gid, gidAt, 0, 0), Date.now(), true)) {
      return this.refuse("udp_source_refused", to, `QP ${destQp} talks to another peer`, endpoint(gidToAddress(gid, gidAt), port));
    }
    // a UDP socket does not show the IP header: the client's device solves the ID from the ICRC.
    this.toClient(to, gid, gidAt, port, TUNNEL_IP_ID_UNKNOWN, buf, at, len);
    // datagrams from this source to this QP may pass the relay on their own now
    if (to.relayed && port !== 0) this.relay?.approve(to.slot, to.id, 1, gid, gidAt, 0, destQp);
  }

  /**
   * A client QP's RC/UC conversation belongs to one peer: the first that reaches it
   * (another client through the hairpin, or a UDP source address) holds it until the
   * client leaves, a hairpin peer leaves, or nothing reached the QP for bindingIdleMs.
   * The client's device checks the source address too (as rxe's check_addr), but every
   * hairpinned packet comes from the gateway's own address: when a real peer shares
   * that address, only this binding tells a client's packets from the peer's. Returns
   * whether `peer` may talk to the QP; `commit` records (or refreshes) the binding.
   */
  private bindLocal(c: Client, qpn: number, peer: string, now: number, commit: boolean): boolean {
    const b = c.bound.get(qpn);
    if (b && b.peer !== peer && now - b.last < this.o.bindingIdleMs && this.peerAlive(b.peer)) return false;
    if (!commit) return true;
    if (b) {
      // the QP changes hands: what the relay let through for the old peer is JS's to decide again
      if (b.peer !== peer && c.relayed) this.relay?.revoke(c.slot, c.id, qpn);
      b.peer = peer;
      b.last = now;
    } else c.bound.set(qpn, { peer, last: now });
    return true;
  }

  private peerAlive(peer: string): boolean {
    return peer[0] !== "c" || this.clients.has(Number(peer.slice(1)));
  }

  /** A datagram `src[at, at + len)` for a client, from the GID at `gid[gidAt]` and `port`. */
  private toClient(c: Client, gid: Uint8Array, gidAt: number, port: number, ipId: number, src: Uint8Array, at: number, len: number): void {
    if (c.ws.readyState !== c.ws.OPEN) return;
    const queued = c.ws.bufferedAmount + (c.out?.bytes ?? 0);
    if (queued > this.o.clientQueueBytes) {
      c.stalledSince ??= Date.now();
      return this.refuse("client_backlog", c, `${queued} bytes queued`);
    }
    c.stalledSince = undefined;
    if (c.out) {
      // version 2: gathered until the end of this turn (or of this native receive batch), then one message
      if (!c.out.addFrom(gid, gidAt, port, ipId, src, at, len)) {
        this.flushClient(c);
        c.out.addFrom(gid, gidAt, port, ipId, src, at, len);
      }
      this.pendingOut.add(c);
      this.endTurnSoon();
      return;
    }
    const frame = new Uint8Array(DATA_HEADER_LEN + len);
    writeDataHeader(frame, gid.subarray(gidAt, gidAt + 16), port, ipId);
    frame.set(src.subarray(at, at + len), DATA_HEADER_LEN);
    c.ws.send(frame);
    c.stats.framesOut++;
    c.stats.bytesOut += frame.length;
    this.ctr.framesOut++;
  }

  private udpFlushQueued = false;
  /**
   * What clients forward to UDP leaves once the socket read that brought it is done (a microtask:
   * ws emits every message of one read synchronously, so they still leave in one sendmmsg), not
   * after the loop's other I/O (setImmediate, as toward clients: there a dgram receive emits one
   * event per datagram, and the turn gathers them).
   */
  private udpSoon(): void {
    if (this.udpFlushQueued) return;
    this.udpFlushQueued = true;
    queueMicrotask(this.flushUdp);
  }
  private readonly flushUdp = (): void => {
    this.udpFlushQueued = false;
    this.flushAll();
  };

  /** Version-2 clients with datagrams gathered in this turn. */
  private readonly pendingOut = new Set<Client>();
  private turnEndQueued = false;
  /** Runs flushAll once this turn's I/O callbacks are done (setImmediate). */
  private endTurnSoon(): void {
    if (this.turnEndQueued) return;
    this.turnEndQueued = true;
    setImmediate(this.flushAll);
  }
  /** The end of a turn: what was gathered for UDP and for each version-2 client leaves. */
  private readonly flushAll = (): void => {
    this.turnEndQueued = false;
    this.udp.flush();
    this.ctr.udpSendErrors = this.udp.stats.sendErrors;
    if (this.pendingOut.size !== 0) {
      for (const c of this.pendingOut) this.flushClient(c);
      this.pendingOut.clear();
    }
    // a request left whose answer comes at once: wait for it here rather than sleep (the answer's
    // batch runs flushAll again inside the poll, which sends it on to its client)
    if (this.replyExpected) {
      this.replyExpected = false;
      if (this.o.udpBusyPollUs > 0 && !this.closed) this.udp.pollReceive(this.o.udpBusyPollUs);
    }
  };
  /** This turn forwarded a request whose peer answers at once (RoceShape.asksReply). */
  private replyExpected = false;

  /** Sends what is gathered for a version-2 client: a DATA frame for one datagram, a BATCH for more. */
  private flushClient(c: Client): void {
    const out = c.out;
    if (!out || out.count === 0) return;
    if (c.ws.readyState !== c.ws.OPEN) {
      out.take(); // dropped
      return;
    }
    // the writer's own buffer, no copy: ws calls back, in order, once it is written (BatchWriter.lend)
    const frame = out.lend()!;
    c.ws.send(frame, c.frameSent);
    c.stats.framesOut++;
    c.stats.bytesOut += frame.length;
    this.ctr.framesOut++;
  }

  private sweep(): void {
    const now = Date.now();
    this.flushSuppressed();
    for (const c of [...this.clients.values()]) {
      if (c.relayed) {
        // what the relay forwarded on its own: the session's last frame, and datagrams it dropped for a full queue
        const r = this.relay?.session(c.slot, c.id);
        if (r) {
          c.lastActive = Math.max(c.lastActive, r.lastActive);
          if (r.buffered > this.o.clientQueueBytes) c.stalledSince ??= now;
        }
      }
      if (c.stalledSince !== undefined) {
        if (c.ws.bufferedAmount <= this.o.clientQueueBytes) c.stalledSince = undefined;
        else if (now - c.stalledSince > this.o.stallMs) {
          this.refuse("slow_consumer", c, `queue full for ${now - c.stalledSince} ms`);
          c.ws.terminate();
          continue;
        }
      }
      if (now - c.lastActive > this.o.idleTimeoutMs) this.evict(c, "idle", 1000, `nothing sent for ${now - c.lastActive} ms`);
    }
  }

  private ping(): void {
    for (const c of [...this.clients.values()]) {
      if (!c.alive) {
        this.refuse("heartbeat", c, "no pong");
        c.ws.terminate();
        continue;
      }
      c.alive = false;
      c.ws.ping();
    }
  }
}

function endpoint(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

/** The 16 bytes at `a[at]` are the GID `b`. */
function sameGid(a: Uint8Array, at: number, b: Uint8Array): boolean {
  for (let i = 0; i < 16; i++) if (a[at + i] !== b[i]) return false;
  return true;
}

/** Constant-time comparison of two secrets (length leaks, content does not). */
function sameSecret(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let d = x.length ^ y.length;
  for (let i = 0; i < y.length; i++) d |= (x[i % Math.max(1, x.length)] ?? 0) ^ y[i]!;
  return d === 0;
}

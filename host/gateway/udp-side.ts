// The gateway's UDP side: one socket at the gateway's UDP address and port, two ways to drive it.
//  - native (host/node/datapath.ts, when the socket addon is built): datagrams from clients are
//    copied once into a TX area of the gateway's own buffer and leave at the end of the turn in
//    one sendmmsg (UDP GSO for runs of equal size to one peer, each segment's ICRC moved to the
//    IPv4 ID Linux gives it, as the device's fast path does); datagrams arrive by recvmmsg (UDP
//    GRO) straight into RX slots of that buffer, one JS callback per batch.
//  - dgram (fallback, or `useAddon: false`): one dgram.send per datagram (a copy: the caller's
//    bytes are not the socket's), one 'message' event per datagram.
// Either way the gateway sees the same calls: `send` (one datagram, GID and port of the peer,
// nothing allocated on the native path) and a receive handler called per datagram with offsets.
import dgram from "node:dgram";
import { isIPv4, isIPv6 } from "node:net";
import { addressGidBytes, gidToAddress } from "../core/net/index.js";
import { openDatapath, RX_RECORD, TX_GSO, TX_ICRC, TX_RECORD, type NativeDatapath } from "../node/datapath.js";
import { sockoptAddon } from "../node/sockopt.js";

/** One received datagram: its bytes are `buf[at, at + len)`, its source the GID at `srcGid[srcGidAt]` and `srcPort`; valid during the call. */
export type UdpDatagramHandler = (buf: Uint8Array, at: number, len: number, srcGid: Uint8Array, srcGidAt: number, srcPort: number) => void;

export interface GatewayUdpStats {
  sent: number;
  sendErrors: number;
  received: number;
  /** sendmmsg/recvmmsg (native) or send/'message' (dgram) calls */
  sendCalls: number;
  receiveCalls: number;
  /** busy polls (pollReceive), and those that found datagrams in their window */
  polls: number;
  pollHits: number;
}

export interface GatewayUdp {
  readonly path: "native" | "dgram";
  readonly port: number;
  /** native: the socket's descriptor (the gateway's relay sends and receives on it too); dgram: undefined */
  readonly fd: number | undefined;
  readonly limitations: readonly string[];
  readonly stats: GatewayUdpStats;
  /**
   * Queues one datagram `src[at, at + len)` to the peer whose 16-byte GID is at `gid[gidAt]`
   * (copied now: `src` is the caller's again on return). false: the send queue is full (dropped).
   */
  send(gid: Uint8Array, gidAt: number, port: number, src: Uint8Array, at: number, len: number): boolean;
  /** Sends what is queued (the gateway calls it at the end of its turn). */
  flush(): void;
  /**
   * Native: waits up to `us` µs without sleeping for datagrams and receives them (the receive
   * handler and batchEnd run inside this call); how many arrived. dgram: 0 (no busy poll).
   */
  pollReceive(us: number): number;
  /** Starts delivering datagrams; `batchEnd` runs after each batch (native; dgram: never). */
  receive(onDatagram: UdpDatagramHandler, batchEnd: () => void, onError: (why: string) => void): void;
  close(): Promise<void>;
}

export interface GatewayUdpOptions {
  address: string;
  port: number;
  /** try the socket addon (IPv4 ID 0 and DF, UDP_NO_CHECK6_RX) and its datapath (default true) */
  useAddon: boolean;
  /** the native datapath when the addon has it (default true); false: the addon's socket under node:dgram */
  native?: boolean;
  /** the largest datagram forwarded (the gateway's maxRocePayload) */
  maxDatagram: number;
  /** native: UDP_GRO on the socket (default true; off when the relay reads it) */
  gro?: boolean;
}

/** Opens the UDP side: native datapath when it can, else node:dgram (on the addon's socket when built). */
export async function openGatewayUdp(o: GatewayUdpOptions): Promise<GatewayUdp> {
  if (!isIPv4(o.address) && !isIPv6(o.address)) throw new TypeError(`not an IPv4 or IPv6 address: ${o.address}`);
  const why: string[] = [];
  if (o.useAddon && o.native !== false) {
    const n = NativeGatewayUdp.open(o);
    if (n.udp) return n.udp;
    why.push(`UDP through node:dgram, one system call per datagram (${n.reason})`);
  }
  const d = await DgramGatewayUdp.open(o);
  d.limitations.push(...why);
  return d;
}

/** Datagrams per TX area before a flush is forced; records and bytes. */
const TX_RECORDS = 1024;
const TX_AREA = 4 << 20;
const RX_SLOTS = 16;
const RX_SLOT = 65536; // with GRO a slot holds a whole GSO send
const RX_RECORDS = 1024;

class NativeGatewayUdp implements GatewayUdp {
  readonly path = "native" as const;
  readonly limitations: string[] = [];
  readonly fd: number;
  readonly stats: GatewayUdpStats = { sent: 0, sendErrors: 0, received: 0, sendCalls: 0, receiveCalls: 0, polls: 0, pollHits: 0 };
  readonly port: number;
  private readonly u8: Uint8Array;
  private readonly dv: DataView;
  /** layout of the buffer: TX records, TX data, RX records, RX slots */
  private readonly txRecords = 0;
  private readonly txData = TX_RECORDS * TX_RECORD.stride;
  private readonly rxRecords = this.txData + TX_AREA;
  private readonly rxSlots = this.rxRecords + RX_RECORDS * RX_RECORD.stride;
  /** queued records [sentUpTo, queued), data used up to txUsed; reset when all are sent */
  private queued = 0;
  private sentUpTo = 0;
  private txUsed = 0;
  private waiting = false;
  private readonly flagsOr: number;
  private readonly writable = (): void => {
    this.waiting = false;
    this.flush();
  };

  private constructor(private readonly dp: NativeDatapath, buffer: ArrayBuffer, address: string) {
    this.u8 = new Uint8Array(buffer);
    this.dv = new DataView(buffer);
    this.port = dp.port;
    const info = dp.info();
    this.fd = info.fd;
    // as the device's fast path: GSO where each segment's IPv4 ID is known (IPv6; IPv4 on loopback, segmented in software)
    const gso = info.gso && (dp.family === 6 || address.startsWith("127."));
    // every datagram from a client carries an ICRC computed for IPv4 ID 0 (HELLO policy 0)
    this.flagsOr = TX_ICRC | (gso ? TX_GSO : 0);
  }

  static open(o: GatewayUdpOptions): { udp: NativeGatewayUdp; reason?: undefined } | { udp?: undefined; reason: string } {
    if (o.maxDatagram > RX_SLOT) return { reason: `datagrams of ${o.maxDatagram} bytes do not fit a receive slot` };
    const bytes = TX_RECORDS * TX_RECORD.stride + TX_AREA + RX_RECORDS * RX_RECORD.stride + RX_SLOTS * RX_SLOT;
    const buffer = new ArrayBuffer(bytes);
    const r = openDatapath({ memory: buffer, address: o.address, port: o.port, gro: o.gro ?? true, gso: true });
    if (!r.datapath) return { reason: r.reason };
    return { udp: new NativeGatewayUdp(r.datapath, buffer, o.address) };
  }

  send(gid: Uint8Array, gidAt: number, port: number, src: Uint8Array, at: number, len: number): boolean {
    if (this.queued === TX_RECORDS || this.txUsed + len > TX_AREA) {
      this.flush();
      if (this.queued === TX_RECORDS || this.txUsed + len > TX_AREA) return false;
    }
    const data = this.txData + this.txUsed;
    this.u8.set(src.subarray(at, at + len), data);
    const r = this.txRecords + this.queued * TX_RECORD.stride;
    const u8 = this.u8;
    for (let i = 0; i < 16; i++) u8[r + TX_RECORD.dstAddr + i] = gid[gidAt + i]!;
    const dv = this.dv;
    dv.setUint32(r + TX_RECORD.dstPort, port, true);
    dv.setUint32(r + TX_RECORD.flags, 0, true);
    dv.setUint32(r + TX_RECORD.ipId, 0, true);
    dv.setInt32(r + TX_RECORD.result, 0, true);
    dv.setUint32(r + TX_RECORD.pieces[0].data, data, true);
    dv.setUint32(r + TX_RECORD.pieces[0].len, len, true);
    for (let p = 1; p < TX_RECORD.pieces.length; p++) dv.setUint32(r + TX_RECORD.pieces[p]!.len, 0, true);
    this.txUsed += (len + 7) & ~7;
    this.queued++;
    return true;
  }

  flush(): void {
    if (this.waiting || this.sentUpTo === this.queued) return;
    const first = this.sentUpTo;
    const n = this.dp.sendBatch(this.txRecords, first, this.queued - first, this.flagsOr);
    this.stats.sendCalls++;
    for (let i = first; i < first + n; i++) {
      if (this.dv.getInt32(this.txRecords + i * TX_RECORD.stride + TX_RECORD.result, true) >= 0) this.stats.sent++;
      else this.stats.sendErrors++;
    }
    this.sentUpTo += n;
    if (this.sentUpTo === this.queued) {
      this.queued = this.sentUpTo = this.txUsed = 0;
      return;
    }
    // the socket is full: the rest waits (later datagrams queue behind it until the area is full)
    this.waiting = true;
    this.dp.onWritable(this.writable);
  }

  pollReceive(us: number): number {
    this.stats.polls++;
    const n = this.dp.pollReceive(us);
    if (n) this.stats.pollHits++;
    return n;
  }

  receive(onDatagram: UdpDatagramHandler, batchEnd: () => void, onError: (why: string) => void): void {
    const u8 = this.u8;
    const dv = this.dv;
    const recs = this.rxRecords;
    this.dp.receive(
      { area: this.rxSlots, slotSize: RX_SLOT, slots: RX_SLOTS, meta: recs, metaCap: RX_RECORDS },
      (count, error) => {
        if (error) return onError(`receiving stopped (errno ${-error})`);
        this.stats.receiveCalls++;
        this.stats.received += count;
        for (let i = 0; i < count; i++) {
          const r = recs + i * RX_RECORD.stride;
          // a cut datagram is longer than anything forwarded: the shape check refuses it by its length
          const len = dv.getUint32(r + RX_RECORD.length, true);
          onDatagram(u8, dv.getUint32(r + RX_RECORD.data, true), len, u8, r + RX_RECORD.src, dv.getUint32(r + RX_RECORD.srcPort, true));
        }
        batchEnd();
      },
    );
  }

  async close(): Promise<void> {
    this.dp.close();
  }
}

class DgramGatewayUdp implements GatewayUdp {
  readonly path = "dgram" as const;
  readonly fd = undefined;
  readonly limitations: string[] = [];
  readonly stats: GatewayUdpStats = { sent: 0, sendErrors: 0, received: 0, sendCalls: 0, receiveCalls: 0, polls: 0, pollHits: 0 };
  /** the last destination's text (dgram.send takes one), kept while the peer stays the same */
  private lastGid = new Uint8Array(16);
  private lastAddress = "";
  private readonly sent = (err: Error | null): void => {
    if (err) this.stats.sendErrors++;
    else this.stats.sent++;
  };

  private constructor(private readonly socket: dgram.Socket) {}

  get port(): number {
    return this.socket.address().port;
  }

  static async open(o: GatewayUdpOptions): Promise<DgramGatewayUdp> {
    const family = isIPv4(o.address) ? 4 : 6;
    const socket = dgram.createSocket({ type: family === 4 ? "udp4" : "udp6", ipv6Only: family === 6 });
    const listening = new Promise<void>((resolve, reject) => {
      socket.once("listening", resolve);
      socket.once("error", reject);
    });
    const addon = o.useAddon ? sockoptAddon() : undefined;
    if (addon) socket.bind({ fd: addon.openUdpSocket(family, o.address, o.port, false) });
    else socket.bind(o.port, o.address);
    await listening;
    const u = new DgramGatewayUdp(socket);
    if (!addon) {
      u.limitations.push(family === 4 ? "IPv4 datagrams leave with kernel-chosen IP IDs (ICRC mismatch at Linux rxe)" : "IPv6 zero-checksum datagrams are dropped by the kernel");
    }
    return u;
  }

  send(gid: Uint8Array, gidAt: number, port: number, src: Uint8Array, at: number, len: number): boolean {
    if (this.socket.getSendQueueSize() > 4 << 20) return false;
    let same = this.lastAddress !== "";
    for (let i = 0; i < 16 && same; i++) same = this.lastGid[i] === gid[gidAt + i];
    if (!same) {
      this.lastGid = gid.slice(gidAt, gidAt + 16);
      this.lastAddress = gidToAddress(this.lastGid);
    }
    // a copy: dgram sends later, and the caller's bytes are not ours once it returns
    this.socket.send(Buffer.from(src.subarray(at, at + len)), port, this.lastAddress, this.sent);
    this.stats.sendCalls++;
    return true;
  }

  flush(): void {
    // dgram sends each datagram as it is given
  }

  pollReceive(_us: number): number {
    return 0; // dgram has no way to look at the socket now
  }

  receive(onDatagram: UdpDatagramHandler, _batchEnd: () => void, onError: (why: string) => void): void {
    this.socket.on("message", (msg, rinfo) => {
      this.stats.receiveCalls++;
      this.stats.received++;
      const gid = addressGidBytes(rinfo.address);
      if (!gid) return onError(`UDP source ${rinfo.address} is not an address`);
      onDatagram(msg, 0, msg.length, gid, 0, rinfo.port);
    });
    this.socket.on("error", (e) => onError(`UDP socket: ${e.message}`));
  }

  close(): Promise<void> {
    return new Promise<void>((r) => this.socket.close(() => r()));
  }
}

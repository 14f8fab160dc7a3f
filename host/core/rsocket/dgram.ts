// rsockets' datagram protocol (librdmacm's rsocket.c, SOCK_DGRAM) over softroce's rdma_cm, so that
// rdma-core's udpong and other datagram rsocket programs on Linux are the peer. What goes on the wire:
//
// - a datagram rsocket has an ordinary UDP socket (rsocket's udp_sock), bound where the rsocket is
//   bound: its address is the rsocket's. For each local address it sends from, it has a UD QP in
//   RDMA_PS_UDP (Q_Key RDMA_UDP_QKEY) whose rdma_cm ID is bound to that address and the UDP port.
// - data for a peer whose QPN this side does not know yet goes over the UDP socket, behind a
//   ds_udp_header (16 bytes for IPv4, 28 for IPv6; big-endian): the tag 0x55555555, the version (4 or 6),
//   the op (RS_OP_DATA), the header's length, a reserved byte, the sending QP's number, the QP's
//   address. The peer answers every RS_OP_DATA header with an RS_OP_CTRL one of its own, no data after
//   it: its QPN. A side that gets a header from an address makes an address handle to that address
//   (rdma_resolve_addr, rdma_resolve_route) for the QPN the header names, unless it has one for it; the
//   data that came by UDP goes to the application as if it had come by the QP.
// - data for a peer with an address handle: a UD SEND to its QPN, the payload a ds_header then the data.
//   The ds_header is 8 bytes for IPv4 (version 4, length 8, the sender's UDP port, its IPv4 address) and
//   24 for IPv6 (version 6, length 24, port, flow info, address): where the datagram is from, for
//   recvfrom. Receive buffers are RS_SNDLOWAT (2048) bytes each behind the 40-byte GRH.
// - nothing is acknowledged or sent again: a datagram the receiver has no room for is dropped, as UDP's.
//
// Where this side differs from rsocket.c, on nothing the peer sees:
// - rsocket hands data that came by UDP to its application by sending it to itself through its own QP
//   (udp_svc_forward); here it is queued for recvFrom at once, with the same source.
// - rsocket's service thread resolves the peer's route while it blocks; here the UDP socket's datagrams
//   are taken one at a time, in order, each after the last one's route is resolved.
// - a datagram larger than a receive buffer holds (2048 bytes with the ds_header) is refused with
//   EMSGSIZE; rsocket copies it past the end of its send slot. So is one longer than a UD message on
//   the port's active MTU (1024 on a 1500-byte link): rxe drops it as if sent, this device fails it,
//   and a failed send stops the QP's send queue.
// - the UDP header's length must fit the datagram (rsocket reads what its buffer holds after it).
// - send() keeps to connect()'s peer; rsocket's rsend goes wherever the last rsendto went (conn_dest is both).
// - at most maxDests peers are kept (default 4096), the least recently used let go; rsocket keeps every
//   one, so that datagrams from ever new ports grow its map without end. An AH replaced or let go is
//   destroyed once its QP has no send in flight that may name it.
import { Access, GRH_SIZE, mtuBytes, WcStatus, WrOpcode, type AddressHandle, type CompletionQueue, type MemoryRegion, type ProtectionDomain, type QueuePair, type WorkCompletion } from "../verbs/index.js";
import { ahAttrOf, isZeroAddress, PortSpace, RDMA_UDP_QKEY, RdmaCmEventType as E, type CmEventRouter, type EventChannel, type RdmaCmId, type SockAddr } from "../cm/index.js";
import { endpointKey, ipv4ToString, ipv6ToString, parseIp } from "../net/index.js";
import { cmEvent, RS_DEFAULTS, RS_SNDLOWAT, RsocketError, RsOp, type RsocketOptions } from "./stream.js";

/** struct ds_udp_header's tag, and its length for each version */
export const DS_UDP_TAG = 0x55555555;
export const DS_UDP_IPV4_HDR_LEN = 16;
export const DS_UDP_IPV6_HDR_LEN = 28;
/** struct ds_header's length for each version */
export const DS_IPV4_HDR_LEN = 8;
export const DS_IPV6_HDR_LEN = 24;
const RS_QP_MAX_SIZE = 0xfffe;
const RECV_FLAG = 1n << 63n;

/**
 * The UDP socket under a datagram rsocket (rsocket's udp_sock): where the first datagrams to a peer go
 * and the QPN answers come. The host gives one (host/node/rsocket.ts: a node:dgram socket).
 */
export interface DsUdpSocket {
  /** getsockname: the address and port it is bound to */
  local(): SockAddr;
  /** the local address a datagram to `to` leaves from (rsocket asks a socket it connect()s there) */
  sourceFor(to: SockAddr): Promise<string>;
  send(to: SockAddr, datagram: Uint8Array): void;
  /** `cb` is told each datagram that arrives (undefined: no one is) */
  onMessage(cb: ((datagram: Uint8Array, from: SockAddr) => void) | undefined): void;
  close(): void;
}

interface DsQp {
  id: RdmaCmId;
  pd: ProtectionDomain;
  cq: CompletionQueue;
  qp: QueuePair;
  /** sq_size send slots of RS_SNDLOWAT bytes */
  smr: MemoryRegion;
  /** rq_size receive buffers of RS_SNDLOWAT bytes, then the GRH every receive lands its 40 bytes in */
  rmr: MemoryRegion;
  /** the ds_header every datagram from this QP starts with */
  hdr: Uint8Array;
  local: SockAddr;
  free: number[];
  armed: boolean;
  /** AHs replaced or let go while sends may still name them: destroyed once the QP has none in flight */
  retired: AddressHandle[];
  /** the most data a datagram from this QP carries: a receive buffer's, or a UD message's on the port's active MTU if less */
  most: number;
}

interface DsDest {
  addr: SockAddr;
  qp: DsQp;
  ah: AddressHandle | undefined;
  qpn: number;
}

/** A datagram taken and not yet read: in a QP's receive buffer, or (it came by UDP) a copy. */
interface DsRmsg {
  qp?: DsQp;
  offset: number;
  data: Uint8Array;
  from: SockAddr;
}

/** A datagram rsocket's options: rsocket's, and how many peers it keeps an address handle for. */
export interface RDgramOptions extends RsocketOptions {
  /** peers kept (their address, QPN and AH); past it the least recently used goes (rsocket keeps every one) [default 4096] */
  maxDests?: number;
}

/** What a datagram rsocket counted of what it would not take. */
export interface RDgramCounters {
  /** datagrams that came with no room for them (the receive queue full): dropped, as UDP's */
  noRoom: number;
  /** UD receives without a valid ds_header, or failed */
  badRecv: number;
  /** UDP datagrams without a valid ds_udp_header, or longer than a receive buffer holds */
  badUdp: number;
  /** address handles that could not be made (the peer's route did not resolve) */
  ahFailed: number;
  /** sends that completed in error */
  sendErrors: number;
  /** datagrams sent over the UDP socket (a peer's QPN not known yet) and taken from it */
  udpSent: number;
  udpTaken: number;
  /** datagrams sent by UD SENDs and taken from the QPs' receives */
  qpSent: number;
  qpTaken: number;
  /** peers let go to keep maxDests (a later datagram to or from one makes it again) */
  destsEvicted: number;
}

/** ds_format_hdr: the ds_header for datagrams from `a`. */
export function formatDsHeader(a: SockAddr): Uint8Array {
  const ip = parseIp(a.address);
  if (!ip) throw new RsocketError("EINVAL", `not an IP address: ${a.address}`);
  const h = new Uint8Array(ip.version === 4 ? DS_IPV4_HDR_LEN : DS_IPV6_HDR_LEN);
  h[0] = ip.version;
  h[1] = h.length;
  new DataView(h.buffer).setUint16(2, a.port);
  h.set(ip.bytes, ip.version === 4 ? 4 : 8);
  return h;
}

/** ds_valid_recv and ds_set_src: the ds_header at `b[0..]` (`len` bytes there) says where from; undefined if it is not one. */
export function parseDsHeader(b: Uint8Array, len: number): { hdrLen: number; from: SockAddr } | undefined {
  if (len < DS_IPV4_HDR_LEN) return undefined;
  const port = (b[2]! << 8) | b[3]!;
  if (b[0] === 4 && b[1] === DS_IPV4_HDR_LEN) return { hdrLen: DS_IPV4_HDR_LEN, from: { address: ipv4ToString(b, 4), port } };
  if (b[0] === 6 && b[1] === DS_IPV6_HDR_LEN && len >= DS_IPV6_HDR_LEN) return { hdrLen: DS_IPV6_HDR_LEN, from: { address: ipv6ToString(b, 8), port } };
  return undefined;
}

/** A ds_udp_header as udp_svc_valid_udp_hdr takes it (the version the sender's family); undefined if it is not one. */
export function parseDsUdpHeader(b: Uint8Array, fromV6: boolean): { op: number; qpn: number; hdrLen: number } | undefined {
  if (b.length < DS_UDP_IPV4_HDR_LEN) return undefined;
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  if (v.getUint32(0) !== DS_UDP_TAG) return undefined;
  const hdrLen = b[6]!;
  const ok = (b[4] === 4 && !fromV6 && hdrLen === DS_UDP_IPV4_HDR_LEN) || (b[4] === 6 && fromV6 && hdrLen === DS_UDP_IPV6_HDR_LEN);
  if (!ok || b.length < hdrLen) return undefined;
  return { op: b[5]!, qpn: v.getUint32(8) & 0xffffff, hdrLen };
}

/** ds_sendv_udp's header: this QP's number and address, `op`. */
export function formatDsUdpHeader(op: number, qpn: number, dsHdr: Uint8Array): Uint8Array {
  const v4 = dsHdr[0] === 4;
  const h = new Uint8Array(v4 ? DS_UDP_IPV4_HDR_LEN : DS_UDP_IPV6_HDR_LEN);
  const v = new DataView(h.buffer);
  v.setUint32(0, DS_UDP_TAG);
  h[4] = dsHdr[0]!;
  h[5] = op;
  h[6] = h.length;
  v.setUint32(8, qpn & 0xffffff);
  h.set(v4 ? dsHdr.subarray(4, 8) : dsHdr.subarray(8, 24), 12);
  return h;
}

/** The address as a UDP socket of its family names it (an IPv4-mapped IPv6 one as IPv4). */
const plain = (a: SockAddr): SockAddr => (a.address.toLowerCase().startsWith("::ffff:") && a.address.includes(".") ? { address: a.address.slice(7), port: a.port } : a);
const sameAddr = (a: SockAddr, b: SockAddr): boolean => endpointKey(plain(a).address, a.port) === endpointKey(plain(b).address, b.port);

/**
 * A datagram rsocket (rsocket(AF_INET, SOCK_DGRAM)): sendTo and recvFrom datagrams of up to 2040 bytes
 * (2024 over IPv6) with any rsocket peer; connect() names the peer send() goes to (recv() takes from anyone).
 */
export class RDgram {
  private readonly qps: DsQp[] = [];
  private readonly dests = new Map<string, DsDest>();
  /** connect()'s peer, where send() goes */
  private peer: DsDest | undefined;
  /** the last sendTo's destination (rsocket's conn_dest: the map is not searched again for the same peer) */
  private last: DsDest | undefined;
  private readonly rmsg: DsRmsg[] = [];
  private readonly sqSize: number;
  private readonly rqSize: number;
  private readonly maxDests: number;
  private readonly waiters = new Set<() => void>();
  /** the UDP socket's datagrams and the destinations made, one at a time (rsocket's service thread and map_lock) */
  private serial: Promise<unknown> = Promise.resolve();
  private closed = false;
  readonly counters: RDgramCounters = { noRoom: 0, badRecv: 0, badUdp: 0, ahFailed: 0, sendErrors: 0, udpSent: 0, udpTaken: 0, qpSent: 0, qpTaken: 0, destsEvicted: 0 };

  /** rsocket(SOCK_DGRAM) over `udp`, bound where the rsocket is (rbind is the UDP socket's bind). */
  constructor(
    private readonly ch: EventChannel, private readonly wait: CmEventRouter, private readonly udp: DsUdpSocket, o: RDgramOptions = {},
    /** called once close() has let everything go (the host's event channel, say) */
    private readonly onClose?: () => void,
  ) {
    // ds_set_qp_size: the queues no larger than the buffers' RS_SNDLOWAT slots
    const sq = Math.min(o.sqSize ?? RS_DEFAULTS.sqSize, RS_QP_MAX_SIZE);
    const rq = Math.min(o.rqSize ?? RS_DEFAULTS.rqSize, RS_QP_MAX_SIZE);
    this.sqSize = Math.max(1, Math.min(sq, Math.floor((o.sbufSize ?? RS_DEFAULTS.sbufSize) / RS_SNDLOWAT)));
    this.rqSize = Math.max(1, Math.min(rq, Math.floor((o.rbufSize ?? RS_DEFAULTS.rbufSize) / RS_SNDLOWAT)));
    this.maxDests = Math.max(1, o.maxDests ?? 4096);
    udp.onMessage((b, from) => {
      // a copy: the host may reuse its buffer; a UDP datagram is the rare first one to a peer
      const copy = b.slice();
      this.serial = this.serial.then(() => this.udpMessage(copy, from)).catch(() => this.counters.badUdp++);
    });
  }

  /** the send and receive queues' sizes (ds_set_qp_size's) */
  get queues(): { sq: number; rq: number } {
    return { sq: this.sqSize, rq: this.rqSize };
  }

  /** rgetsockname */
  get localAddress(): SockAddr {
    return this.udp.local();
  }

  /** rconnect: send() goes to `to` from now on. */
  async connect(to: SockAddr): Promise<void> {
    this.open("rconnect");
    this.peer = await this.dest(to);
  }

  /**
   * rsend: to the connected peer. (rsocket's rsend goes wherever the last rsendto went, its conn_dest
   * being both; here send() keeps to connect()'s peer, as a connected UDP socket's does.)
   */
  send(data: Uint8Array): Promise<number> {
    if (!this.peer) return Promise.reject(new RsocketError("EDESTADDRREQ", "rsend: Destination address required (not connected)"));
    return this.sendTo(data, this.peer.addr);
  }

  /**
   * rsendto: the datagram to `to`, by UDP until its QPN is known, then by a UD SEND; resolves with its
   * length once posted (waiting for a send slot if every one is in flight).
   */
  async sendTo(data: Uint8Array, to: SockAddr): Promise<number> {
    this.open("rsendto");
    if (!this.last || !sameAddr(this.last.addr, to)) this.last = await this.dest(to);
    const d = this.last;
    if (data.length > d.qp.most) {
      throw new RsocketError("EMSGSIZE", `rsendto: Message too long (${data.length} bytes; a datagram holds ${d.qp.most} here: ${d.qp.most + d.qp.hdr.length < RS_SNDLOWAT ? "a UD message on the port's active MTU" : "a 2048-byte receive buffer"} less the ${d.qp.hdr.length}-byte ds_header)`);
    }
    if (!d.ah) return this.byUdp(d, data);
    const q = d.qp;
    while (!q.free.length) {
      this.open("rsendto");
      await this.changed();
    }
    const ah = d.ah;
    // the peer's QPN changed while this waited, its AH being made again: by UDP meanwhile, as rsocket's
    if (!ah) return this.byUdp(d, data);
    const slot = q.free.pop()!;
    const at = slot * RS_SNDLOWAT;
    const b = q.smr.bytes;
    b.set(q.hdr, at);
    b.set(data, at + q.hdr.length);
    try {
      q.qp.postSend({
        wrId: BigInt(slot), opcode: WrOpcode.SEND, sgList: [q.smr.sge(at, q.hdr.length + data.length)],
        ud: { ah, remoteQpn: d.qpn, remoteQkey: RDMA_UDP_QKEY },
      });
    } catch (e) {
      q.free.push(slot);
      throw new RsocketError("EIO", `rsendto: ${(e as Error).message}`);
    }
    this.counters.qpSent++;
    return data.length;
  }

  /**
   * rrecvfrom: the next datagram (at most `max` bytes of it, the rest dropped as recvfrom drops it) and
   * where it is from; undefined when none came within `timeoutMs` (undefined: wait as long as it takes).
   */
  async recvFrom(max: number, timeoutMs?: number): Promise<{ data: Uint8Array; from: SockAddr } | undefined> {
    const until = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    while (!this.rmsg.length) {
      this.open("rrecvfrom");
      const left = until === undefined ? undefined : until - Date.now();
      if (left !== undefined && left <= 0) return undefined;
      await this.changed(left);
    }
    const m = this.rmsg.shift()!;
    const data = m.data.slice(0, Math.min(max, m.data.length));
    if (m.qp) this.postRecv(m.qp, m.offset);
    return { data, from: m.from };
  }

  /** rrecv: the next datagram's bytes (from anyone, as rsocket's). */
  async recv(max: number, timeoutMs?: number): Promise<Uint8Array | undefined> {
    return (await this.recvFrom(max, timeoutMs))?.data;
  }

  /** datagrams taken and not yet read */
  get pending(): number {
    return this.rmsg.length;
  }

  /** rclose: the UDP socket, every QP and what it had. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.udp.onMessage(undefined);
    this.udp.close();
    this.wake();
    for (const d of this.dests.values()) d.ah?.destroy();
    this.dests.clear();
    for (const q of this.qps.splice(0)) {
      for (const f of [() => this.destroyRetired(q), () => q.id.destroyQp(), () => q.smr.destroy(), () => q.rmr.destroy(), () => q.cq.destroy(), () => q.pd.destroy(), () => q.id.destroy()]) {
        try {
          f();
        } catch {
          /* going away */
        }
      }
    }
    this.rmsg.length = 0;
    this.onClose?.();
  }

  private open(verb: string): void {
    if (this.closed) throw new RsocketError("EBADF", `${verb}: Bad file descriptor (closed)`);
  }

  // ------------------------------------------------------------------ waiting

  /** Resolves at the next change (a completion, a UDP datagram, close), or after `ms`. */
  private changed(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const w = (): void => {
        if (timer) clearTimeout(timer);
        resolve();
      };
      this.waiters.add(w);
      if (ms !== undefined) {
        timer = setTimeout(() => {
          this.waiters.delete(w);
          resolve();
        }, Math.max(0, ms));
      }
    });
  }

  private wake(): void {
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }

  // ------------------------------------------------------------------ destinations and QPs

  /** ds_get_dest, in turn with the UDP socket's datagrams (rsocket's map_lock). */
  private dest(to: SockAddr): Promise<DsDest> {
    const made = this.serial.then(() => this.destNow(plain(to)));
    this.serial = made.catch(() => undefined);
    return made;
  }

  /** ds_get_src_addr: the UDP socket's address, or for a wildcard the one datagrams to `to` leave from. */
  private async srcAddr(to: SockAddr): Promise<SockAddr> {
    const l = this.udp.local();
    return isZeroAddress(l.address) ? { address: plain({ address: await this.udp.sourceFor(to), port: 0 }).address, port: l.port } : plain(l);
  }

  /** ds_create_qp: a UD QP in RDMA_PS_UDP at `src`, its buffers registered and every receive posted. */
  private createQp(src: SockAddr): DsQp {
    const id = this.ch.createId(PortSpace.UDP, undefined);
    let pd: ProtectionDomain | undefined;
    let cq: CompletionQueue | undefined;
    const mrs: MemoryRegion[] = [];
    try {
      try {
        id.bindAddr(src);
      } catch (e) {
        throw new RsocketError("EADDRNOTAVAIL", `rsendto: no RDMA device at ${endpointKey(src.address, src.port)} (${(e as Error).message})`);
      }
      pd = id.verbs!.allocPd();
      cq = id.verbs!.createCq(this.sqSize + this.rqSize);
      const qp = id.createQp(pd, { sendCq: cq, recvCq: cq, sqSigAll: true, cap: { maxSendWr: this.sqSize, maxRecvWr: this.rqSize, maxSendSge: 1, maxRecvSge: 2 } });
      const smr = pd.regMr(this.sqSize * RS_SNDLOWAT, Access.LOCAL_WRITE);
      mrs.push(smr);
      const rmr = pd.regMr(this.rqSize * RS_SNDLOWAT + GRH_SIZE, Access.LOCAL_WRITE);
      mrs.push(rmr);
      const hdr = formatDsHeader(src);
      // a UD message longer than the port's MTU fails (and stops the QP's sends): refused at sendTo instead
      const most = Math.min(RS_SNDLOWAT, mtuBytes(id.verbs!.queryPort().activeMtu)) - hdr.length;
      const q: DsQp = {
        id, pd, cq, qp, smr, rmr, hdr, local: src, free: Array.from({ length: this.sqSize }, (_, i) => this.sqSize - 1 - i), armed: false, retired: [], most,
      };
      for (let i = 0; i < this.rqSize; i++) this.postRecv(q, i * RS_SNDLOWAT);
      this.qps.push(q);
      this.arm(q);
      return q;
    } catch (e) {
      for (const f of [...mrs.map((m) => () => m.destroy()), () => id.destroyQp(), () => cq?.destroy(), () => pd?.destroy(), () => id.destroy()]) {
        try {
          f();
        } catch {
          /* not made */
        }
      }
      throw e instanceof RsocketError ? e : new RsocketError("ENOMEM", `rsendto: ${(e as Error).message}`);
    }
  }

  /** ds_post_recv: the GRH into the buffer's tail, the datagram into its slot. */
  private postRecv(q: DsQp, offset: number): void {
    if (this.closed) return;
    q.qp.postRecv({ wrId: RECV_FLAG | BigInt(offset), sgList: [q.rmr.sge(this.rqSize * RS_SNDLOWAT, GRH_SIZE), q.rmr.sge(offset, RS_SNDLOWAT)] });
  }

  /** The QP's completions taken as they come (ds_poll_cqs), whoever waits. */
  private arm(q: DsQp): void {
    if (q.armed || this.closed) return;
    q.armed = true;
    q.cq.next().then(
      (wc) => {
        q.armed = false;
        if (this.closed) return;
        this.completion(q, wc);
        for (let wcs = q.cq.poll(32); wcs.length; wcs = q.cq.poll(32)) for (const w of wcs) this.completion(q, w);
        this.arm(q);
        this.wake();
      },
      () => {
        q.armed = false; // the CQ went with close()
      },
    );
  }

  private completion(q: DsQp, wc: WorkCompletion): void {
    if (!(wc.wrId & RECV_FLAG)) {
      q.free.push(Number(wc.wrId));
      if (wc.status !== WcStatus.SUCCESS) this.counters.sendErrors++;
      if (q.retired.length && q.free.length === this.sqSize) this.destroyRetired(q);
      return;
    }
    const offset = Number(wc.wrId & 0xffffffffn);
    const len = wc.byteLen - GRH_SIZE;
    const b = q.rmr.bytes;
    const h = wc.status === WcStatus.SUCCESS ? parseDsHeader(b.subarray(offset, offset + Math.max(0, len)), len) : undefined;
    if (!h) {
      this.counters.badRecv++;
      this.postRecv(q, offset);
      return;
    }
    if (this.rmsg.length >= this.rqSize) {
      this.counters.noRoom++;
      this.postRecv(q, offset);
      return;
    }
    this.rmsg.push({ qp: q, offset, data: b.subarray(offset + h.hdrLen, offset + len), from: h.from });
    this.counters.qpTaken++;
  }

  // ------------------------------------------------------------------ the UDP socket (rsocket's udp_svc)

  /** dsend's way to a peer with no AH yet: the datagram by UDP. */
  private byUdp(d: DsDest, data: Uint8Array): number {
    this.sendUdp(d, RsOp.DATA, data);
    this.counters.udpSent++;
    return data.length;
  }

  /** ds_sendv_udp: `data` to `d` over the UDP socket behind a ds_udp_header naming d's QP. */
  private sendUdp(d: DsDest, op: number, data: Uint8Array): void {
    const h = formatDsUdpHeader(op, d.qp.qp.qpNum, d.qp.hdr);
    const b = new Uint8Array(h.length + data.length);
    b.set(h);
    b.set(data, h.length);
    this.udp.send(d.addr, b);
  }

  /** udp_svc_process_rs: answer a DATA header with this side's QPN, make the AH it names, hand its data on. */
  private async udpMessage(b: Uint8Array, from: SockAddr): Promise<void> {
    if (this.closed) return;
    const src = plain(from);
    const h = parseDsUdpHeader(b, src.address.includes(":"));
    const dsLen = src.address.includes(":") ? DS_IPV6_HDR_LEN : DS_IPV4_HDR_LEN;
    if (!h || (h.op !== RsOp.DATA && h.op !== RsOp.CTRL) || b.length - h.hdrLen > RS_SNDLOWAT - dsLen) {
      this.counters.badUdp++;
      return;
    }
    const d = await this.destNow(src);
    if (h.op === RsOp.DATA) this.sendUdp(d, RsOp.CTRL, new Uint8Array(0));
    if (!d.ah || d.qpn !== h.qpn) await this.createAh(d, h.qpn);
    if (h.op !== RsOp.DATA || this.closed) return;
    if (this.rmsg.length >= this.rqSize) {
      this.counters.noRoom++;
      return;
    }
    this.rmsg.push({ offset: 0, data: b.subarray(h.hdrLen), from: src });
    this.counters.udpTaken++;
    this.wake();
  }

  /** ds_get_dest: the destination `to`, with the QP of the local address datagrams to it leave from (one made if none is). */
  private async destNow(to: SockAddr): Promise<DsDest> {
    const key = endpointKey(to.address, to.port);
    const have = this.dests.get(key);
    if (have) {
      // the map in the order of last use: the first is the one to let go
      this.dests.delete(key);
      this.dests.set(key, have);
      return have;
    }
    const src = await this.srcAddr(to);
    const q = this.qps.find((x) => sameAddr(x.local, src)) ?? this.createQp(src);
    const d: DsDest = { addr: to, qp: q, ah: undefined, qpn: 0 };
    if (this.dests.size >= this.maxDests) this.evictOne();
    this.dests.set(key, d);
    return d;
  }

  /** Lets the least recently used peer go (never connect()'s, nor the last sendTo's). */
  private evictOne(): void {
    for (const [key, d] of this.dests) {
      if (d === this.peer || d === this.last) continue;
      this.dests.delete(key);
      this.retire(d);
      this.counters.destsEvicted++;
      return;
    }
  }

  /** `d`'s AH off it, destroyed now if its QP has no send in flight (one may name it), else when it has none. */
  private retire(d: DsDest): void {
    const ah = d.ah;
    d.ah = undefined;
    if (!ah) return;
    d.qp.retired.push(ah);
    if (d.qp.free.length === this.sqSize) this.destroyRetired(d.qp);
  }

  private destroyRetired(q: DsQp): void {
    for (const ah of q.retired.splice(0)) {
      try {
        ah.destroy();
      } catch {
        /* going away */
      }
    }
  }

  /** peers kept (an address handle, or one being made, for each) */
  get destinations(): number {
    return this.dests.size;
  }

  /** udp_svc_create_ah: the route from the QP's address to the peer's, resolved, and an AH to `qpn` there. */
  private async createAh(d: DsDest, qpn: number): Promise<void> {
    this.retire(d);
    const id = this.ch.createId(d.qp.id.ps, undefined);
    try {
      id.resolveAddr({ address: d.qp.local.address, port: 0 }, d.addr, 2000);
      await cmEvent(this.wait, id, E.ADDR_RESOLVED, "rsocket's UDP service");
      id.resolveRoute(2000);
      await cmEvent(this.wait, id, E.ROUTE_RESOLVED, "rsocket's UDP service");
      const p = id.route.pathRec!;
      if (this.closed) return;
      d.ah = d.qp.pd.createAh(ahAttrOf(p, p.dport));
      d.qpn = qpn;
    } catch {
      this.counters.ahFailed++;
    } finally {
      try {
        id.destroy();
      } catch {
        /* already */
      }
    }
  }
}

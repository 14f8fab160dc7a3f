// perftest's -R (rdma_cm mode, perftest 4.5+0.17): the out-of-band exchange
// travels as SENDs on an RC connection made with rdma_cm to the server's port
// -p (perftest_communication.c: create_comm_struct, rdma_client_connect,
// rdma_server_connect, rdma_write_data / rdma_read_data), one message per SEND
// with one receive posted at a time on perftest's side; the key messages are
// struct pingpong_dest in binary, each field big-endian (rdma_write_keys). The
// test's QP is connected by rdma_cm too, on the same port (the server listens
// again after the handshake before it: create_rdma_cm_connection), so the
// client retries a rejected connect as perftest does. IPv4 only, as perftest's
// rdma_cm mode (AF_INET). With -c UD the test QPs are rdma_cm's UDP port space
// (SIDR_REQ/SIDR_REP): the client takes the server's QPN, Q_Key and an address
// handle from ESTABLISHED; where the server sends too (the latency tests) the
// client first sends it a SEND WITH IMMEDIATE of its QPN, from which the server
// makes its address handle (rdma_cm_send_ud_connection_parameters,
// rdma_cm_initialize_ud_connection_parameters). Facts: docs/reference/perftest-exchange.md.
import type { AddressHandle, Device, CompletionQueue, MemoryRegion, QueuePair, ProtectionDomain } from "../core/verbs/index.js";
import { Access, SendFlags, WcOpcode, WcStatus, WrOpcode } from "../core/verbs/index.js";
import {
  CmEventRouter, PortSpace, RDMA_OPTION_ID, RDMA_OPTION_ID_TOS, RdmaCmEventType as E, eventStr, type EventChannel, type Qp1Transport, type RdmaCmEvent, type RdmaCmId, type CmQpInitAttr, type ConnParam,
} from "../core/cm/index.js";
import { openToolCm } from "./cm-tool.js";
import type { PerftestConnection, PerftestDest } from "./perftest-exchange.js";
import { type ReadStall, unstalled } from "./perftest-stall.js";
import { GRH_SIZE } from "../core/verbs/index.js";

/** sizeof(struct pingpong_dest): lid, out_reads, qpn, psn, rkey, (pad), vaddr, gid[16], srqn, gid_index. */
export const CM_KEY_MSG_LEN = 56;
/** perftest's comm QP takes one message of at most sizeof(struct pingpong_dest) a receive. */
const SLOT = 64;
const COMM_RECVS = 4;
/** perftest retries a rejected rdma_cm connect 10 times, 100 ms apart (rdma_cm_client_connection). */
const CONNECT_RETRY_MS = 100;
/** How long teardown waits for the peer's DREQ or DREP. */
const DISCONNECT_WAIT_MS = 3000;

/** rdma_write_keys: struct pingpong_dest with every field big-endian (gid_index 0). */
export function formatCmKeyMsg(d: PerftestDest): Uint8Array {
  const b = new Uint8Array(CM_KEY_MSG_LEN);
  const v = new DataView(b.buffer);
  v.setUint32(0, d.lid >>> 0);
  v.setUint32(4, d.outReads >>> 0);
  v.setUint32(8, d.qpn >>> 0);
  v.setUint32(12, d.psn >>> 0);
  v.setUint32(16, d.rkey >>> 0);
  v.setBigUint64(24, BigInt.asUintN(64, d.vaddr));
  b.set(d.gid.subarray(0, 16), 32);
  v.setUint32(48, d.srqn >>> 0);
  return b;
}

export class PerftestCmError extends Error {
  override name = "PerftestCmError";
}

/** rdma_read_keys: the peer's struct pingpong_dest (srqn and gid_index are not read, as perftest). */
export function parseCmKeyMsg(b: Uint8Array): PerftestDest {
  if (b.length < 48) throw new PerftestCmError(`a key message is ${CM_KEY_MSG_LEN} bytes (struct pingpong_dest); ${b.length} came`);
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  return {
    lid: v.getUint32(0), outReads: v.getUint32(4), qpn: v.getUint32(8) & 0xffffff, psn: v.getUint32(12) & 0xffffff, rkey: v.getUint32(16),
    vaddr: v.getBigUint64(24), gid: b.slice(32, 48), srqn: 0,
  };
}

const FAILS = [E.ADDR_ERROR, E.ROUTE_ERROR, E.CONNECT_ERROR, E.UNREACHABLE, E.REJECTED, E.DEVICE_REMOVAL];

/** The test QP's part the rdma_cm mode needs from perftest-exchange.ts: how to make it on an ID. */
export interface CmTestQp {
  pd: ProtectionDomain;
  init: CmQpInitAttr;
  /** responder resources and initiator depth (perftest: out_reads for READ and atomics, else 0) */
  depth: number;
  /** UD: the server sends too (a latency test), so it needs the client's address */
  serverSends?: boolean;
}

/** Where a UD test QP's SENDs go. */
export interface UdTarget {
  ah: AddressHandle;
  remoteQpn: number;
  remoteQkey: number;
}

/** What rdma_cm_send_ud_connection_parameters sends: 4 bytes (the client's QPN rides in the immediate), into a receive with room for the GRH. */
const UD_PARAMS_LEN = 4;

/** The rdma_cm side of a perftest run: the comm connection (the exchange), then the test QP's. */
export class PerftestCm {
  private readonly ch: EventChannel;
  private readonly events: CmEventRouter;
  private readonly mad: Qp1Transport;
  private commId: RdmaCmId | undefined;
  /** the test QPs' connections, one per QP (-q) */
  private readonly testIds: RdmaCmId[] = [];
  /** the listeners: the comm connection's (TCP port space) and, with -c UD, the test QPs' (UDP) */
  private readonly listenIds = new Map<number, RdmaCmId>();
  private commCq: CompletionQueue | undefined;
  private commMr: MemoryRegion | undefined;
  private readonly got: Uint8Array[] = [];
  /** the comm CQ's wait still outstanding (one at a time: a receive's wait a stall check looked past) */
  private waiting: Promise<"send" | "recv"> | undefined;

  /** `stall`: how long a receive waits with no packet on the device before the peer counts as gone */
  constructor(
    private readonly dev: Device,
    private readonly o: { server?: string; address: string; tcpPort: number; udpPort: number; timeoutMs: number; qps?: number; connection?: PerftestConnection; tos?: number; retryCnt?: number },
    private readonly stall?: ReadStall,
  ) {
    ({ mad: this.mad, ch: this.ch } = openToolCm(dev, o.udpPort));
    this.events = new CmEventRouter(this.ch);
  }

  private get client(): boolean {
    return this.o.server !== undefined;
  }

  /**
   * rdma_connect's and rdma_accept's parameters: --retry_count the retry count of both connections, and
   * the test connections' RNR retry count too (perftest's create_rdma_cm_connection); the exchange's is 7
   */
  private conn(depth: number, test: boolean): ConnParam {
    const retry = this.o.retryCnt ?? 7;
    return { responderResources: depth, initiatorDepth: depth, retryCount: retry, rnrRetryCount: test ? retry : 7 };
  }

  /** The port space of the test QPs' connections: UDP for -c UD (SIDR), else TCP. */
  private get testPs(): number {
    return this.o.connection === "UD" ? PortSpace.UDP : PortSpace.TCP;
  }

  /**
   * rdma_resolve_addr and rdma_resolve_route towards the server's port, then a QP and rdma_connect;
   * retried while rejected (UD: while unreachable, a SIDR_REP that finds no listener). The ESTABLISHED event.
   */
  private async connect(make: (id: RdmaCmId) => void, depth: number, test: boolean, ps: number = PortSpace.TCP): Promise<RdmaCmEvent> {
    const end = Date.now() + this.o.timeoutMs;
    for (let attempt = 1; ; attempt++) {
      const id = this.ch.createId(ps);
      id.resolveAddr({ address: this.o.address, port: 0 }, { address: this.o.server!, port: this.o.tcpPort }, 2000);
      await this.expect(id, E.ADDR_RESOLVED, "rdma_resolve_addr");
      // -T: the type of service of every connection, the exchange's and the test's (before the route, as perftest)
      if (this.o.tos !== undefined) id.setOption(RDMA_OPTION_ID, RDMA_OPTION_ID_TOS, this.o.tos);
      id.resolveRoute(2000);
      await this.expect(id, E.ROUTE_RESOLVED, "rdma_resolve_route");
      make(id);
      id.connect(this.conn(depth, test));
      const ev = await this.events.wait(id, [E.ESTABLISHED, ...FAILS], Math.max(1, end - Date.now()));
      if (ev?.event === E.ESTABLISHED) return ev;
      id.destroyQp();
      id.destroy();
      if (!ev) throw new PerftestCmError(`Unexpected CM event: none in ${this.o.timeoutMs / 1000} s (rdma_connect to ${this.o.server}:${this.o.tcpPort})`);
      if ((ev.event !== E.REJECTED && ev.event !== E.UNREACHABLE) || Date.now() + CONNECT_RETRY_MS >= end) {
        throw new PerftestCmError(`RDMA CM event error:\nEvent: ${eventStr(ev.event)}; error: ${ev.status}. (after ${attempt} connects)`);
      }
      await new Promise((r) => setTimeout(r, CONNECT_RETRY_MS));
    }
  }

  private async expect(id: RdmaCmId | undefined, kind: number, what: string): Promise<RdmaCmEvent> {
    const ev = await this.events.wait(id, [kind, ...FAILS], this.o.timeoutMs);
    if (!ev) throw new PerftestCmError(`${what}: no ${eventStr(kind)} in ${this.o.timeoutMs / 1000} s`);
    if (ev.event !== kind) throw new PerftestCmError(`${what}: ${eventStr(ev.event)}, error ${ev.status}`);
    return ev;
  }

  /** The next CONNECT_REQUEST on our listener of that port space (made on first use: bind to our address and the port, backlog -q as perftest's). */
  private async accepted(make: (id: RdmaCmId) => void, depth: number, test: boolean, ps: number = PortSpace.TCP): Promise<RdmaCmId> {
    let listener = this.listenIds.get(ps);
    if (!listener) {
      listener = this.ch.createId(ps);
      listener.bindAddr({ address: this.o.address, port: this.o.tcpPort });
      listener.listen(this.o.qps ?? 1);
      this.listenIds.set(ps, listener);
    }
    const ev = await this.expect(undefined, E.CONNECT_REQUEST, "waiting for client to connect");
    make(ev.id);
    ev.id.accept(ps === PortSpace.UDP ? { qpNum: ev.id.qp!.qpNum } : this.conn(depth, test));
    return ev.id;
  }

  /** establish_connection: the comm connection with its QP (one SEND in flight, receives of sizeof(struct pingpong_dest)). */
  async open(): Promise<void> {
    const cq = this.dev.createCq(2 * COMM_RECVS + 2);
    const pd = this.dev.allocPd();
    this.commCq = cq;
    this.commMr = pd.regMr(SLOT * (COMM_RECVS + 1), Access.LOCAL_WRITE);
    const make = (id: RdmaCmId) => {
      this.commId = id;
      id.createQp(pd, { sendCq: cq, recvCq: cq, cap: { maxSendWr: 2, maxRecvWr: COMM_RECVS, maxSendSge: 1, maxRecvSge: 1 } });
      for (let i = 0; i < COMM_RECVS; i++) this.postRecv(i);
    };
    this.commId = this.client ? (await this.connect(make, 0, false)).id : await this.accepted(make, 0, false);
  }

  private postRecv(i: number): void {
    this.commId!.qp!.postRecv({ wrId: BigInt(i), sgList: [this.commMr!.sge(i * SLOT, SLOT)] });
  }

  /** rdma_write_data: one SEND of `msg`, waited for. */
  private async send(msg: Uint8Array): Promise<void> {
    if (msg.length > SLOT) throw new PerftestCmError(`a message of ${msg.length} bytes does not fit the peer's receive`);
    const off = COMM_RECVS * SLOT;
    this.commMr!.bytes.set(msg, off);
    this.commId!.qp!.postSend({ wrId: 1000n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [this.commMr!.sge(off, msg.length)] });
    for (;;) {
      const wc = await this.commWc();
      if (wc === "recv") continue;
      return;
    }
  }

  /**
   * rdma_read_data: the next message the peer sent. It may come after a whole test (a bandwidth
   * server's wait for the client's report), so the wait is bounded as a test's is: it fails once
   * stall.ms pass with no packet on the device (a client stopped mid-test says nothing on rdma_cm).
   */
  private async receive(): Promise<Uint8Array> {
    const stall = this.stall;
    while (this.got.length === 0) {
      await unstalled(this.commWc(), stall, () => new PerftestCmError(
        `Failed to read from the rdma_cm connection: nothing from the peer for ${stall!.ms / 1000} s, on it or the device (the peer gone?)`,
      ));
    }
    return this.got.shift()!;
  }

  /** The comm CQ's next completion, through the one outstanding wait. */
  private commWc(): Promise<"send" | "recv"> {
    if (!this.waiting) {
      const w = this.nextWc().finally(() => (this.waiting = undefined));
      w.catch(() => {}); // a wait left behind when the run fails fails unheard; an awaited one throws
      this.waiting = w;
    }
    return this.waiting;
  }

  private async nextWc(): Promise<"send" | "recv"> {
    const wc = await this.commCq!.next();
    if (wc.status !== WcStatus.SUCCESS) throw new PerftestCmError(` Bad wc status ${wc.status}`);
    if (wc.opcode === WcOpcode.SEND) return "send";
    const i = Number(wc.wrId);
    this.got.push(this.commMr!.bytes.slice(i * SLOT, i * SLOT + wc.byteLen));
    this.postRecv(i);
    return "recv";
  }

  /** ctx_xchg_data_rdma: the client writes then reads, the server reads then writes. */
  async swap(mine: Uint8Array, client: boolean): Promise<Uint8Array> {
    if (client) {
      await this.send(mine);
      return this.receive();
    }
    const theirs = await this.receive();
    await this.send(mine);
    return theirs;
  }

  /**
   * create_rdma_cm_connection's middle: the test QP made on its ID and connected or accepted; with -c UD
   * also where its SENDs go (the client: the server's, from ESTABLISHED; the server of a latency test:
   * the client's, from its first message).
   */
  async connectTest(q: CmTestQp): Promise<{ qp: QueuePair; ud?: UdTarget }> {
    const ud = this.o.connection === "UD";
    // UD: the 4 bytes of rdma_cm_send_ud_connection_parameters, and (server) a receive for them with room for the GRH
    const mr = ud && q.serverSends ? q.pd.regMr(GRH_SIZE + UD_PARAMS_LEN, Access.LOCAL_WRITE) : undefined;
    const make = (id: RdmaCmId) => {
      id.createQp(q.pd, q.init);
      if (mr && !this.client) id.qp!.postRecv({ wrId: 0n, sgList: [mr.sge(0, GRH_SIZE + UD_PARAMS_LEN)] });
    };
    let id: RdmaCmId;
    let target: UdTarget | undefined;
    if (this.client) {
      const ev = await this.connect(make, q.depth, true, this.testPs);
      id = ev.id;
      const p = ev.param.ud;
      if (ud) {
        if (!p?.ahAttr) throw new PerftestCmError("Failed to create AH for RDMA CM connection.");
        target = { ah: q.pd.createAh(p.ahAttr), remoteQpn: p.qpNum, remoteQkey: p.qkey };
        if (mr) await this.sendUdParams(id.qp!, target, mr, q.init.sendCq!);
      }
    } else {
      id = await this.accepted(make, q.depth, true, this.testPs);
      if (mr) target = await this.udParamsFrom(id, q.pd, mr, q.init.recvCq!);
    }
    this.testIds.push(id);
    if (!this.client && this.testIds.length === (this.o.qps ?? 1)) {
      // rdma_cm_server_connection: the listener goes once its QPs are connected
      this.listenIds.get(this.testPs)?.destroy();
      this.listenIds.delete(this.testPs);
    }
    return { qp: id.qp!, ...(target ? { ud: target } : {}) };
  }

  /** rdma_cm_send_ud_connection_parameters: a SEND WITH IMMEDIATE of our QPN to the server, its completion waited for. */
  private async sendUdParams(qp: QueuePair, to: UdTarget, mr: MemoryRegion, cq: CompletionQueue): Promise<void> {
    qp.postSend({ wrId: 0n, opcode: WrOpcode.SEND_WITH_IMM, sendFlags: SendFlags.SIGNALED, immData: qp.qpNum, ud: to, sgList: [mr.sge(0, UD_PARAMS_LEN)] });
    const wc = await this.within(cq.next(), "the UD connection parameters' send");
    if (wc.status !== WcStatus.SUCCESS || wc.opcode !== WcOpcode.SEND) {
      throw new PerftestCmError(`Failed to poll CQ.\nBad WQE status when trying to send UD connection parameters in RDMA CM:\n Status: ${wc.status} ; ID: ${wc.wrId}.`);
    }
  }

  /** rdma_cm_initialize_ud_connection_parameters: the client's first message; an AH from its completion and GRH, its QPN from the immediate, our Q_Key. */
  private async udParamsFrom(id: RdmaCmId, pd: ProtectionDomain, mr: MemoryRegion, cq: CompletionQueue): Promise<UdTarget> {
    const wc = await this.within(cq.next(), "the client's UD connection parameters");
    if (wc.status !== WcStatus.SUCCESS || wc.opcode !== WcOpcode.RECV || wc.wrId !== 0n) {
      throw new PerftestCmError(`Failed to poll CQ.\nBad WQE status when trying to create AH for UD connection in RDMA CM:\n Status: ${wc.status} ; ID: ${wc.wrId}.`);
    }
    const ah = pd.createAhFromWc(wc, mr.bytes.subarray(0, GRH_SIZE), id.portNum || 1, this.o.udpPort);
    return { ah, remoteQpn: wc.immData, remoteQkey: id.qp!.query().attr.qkey };
  }

  /** A wait that gives up after the run's --wait. */
  private async within<T>(p: Promise<T>, what: string): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new PerftestCmError(`${what}: nothing in ${this.o.timeoutMs / 1000} s`)), this.o.timeoutMs);
    });
    try {
      return await Promise.race([p, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * destroy_ctx with rdma_cm: the client disconnects the test QP and waits for DISCONNECTED (the server's
   * DREP); the server waits for the client's DREQ and answers it; then the comm connection goes the same way.
   */
  async close(): Promise<void> {
    // UD test QPs have no connection to end (rdma_cm_disconnect_nodes skips UD)
    for (const id of [...(this.o.connection === "UD" ? [] : this.testIds), this.commId]) {
      if (!id) continue;
      try {
        if (this.client) {
          id.disconnect();
          await this.events.wait(id, [E.DISCONNECTED], DISCONNECT_WAIT_MS);
        } else {
          const ev = await this.events.wait(id, [E.DISCONNECTED], id !== this.commId ? DISCONNECT_WAIT_MS : 200);
          id.disconnect(); // the DREP (or our DREQ when the client has not sent one)
          if (!ev) await this.events.wait(id, [E.DISCONNECTED], 500);
        }
      } catch {
        // already disconnected
      }
    }
    await this.mad.drain();
  }

  /** Frees the IDs, the channel and its pump (the device is the caller's). */
  destroy(): void {
    this.events.stop();
    for (const id of [...this.testIds, this.commId, ...this.listenIds.values()]) {
      try {
        id?.destroy();
      } catch {
        // gone with the device
      }
    }
    this.ch.destroy();
  }
}

// Live mode: A is a device in this page whose packets go through the gateway (WebSocket
// tunnel) to B, a Node device on real UDP that `softroce playground` runs. Real time instead
// of the virtual clock, real sockets instead of the simulated wire; the same views.
import { openTunnelDevice } from "../../../host/browser/index.js";
import {
  Access, QpType, SendFlags, WrOpcode, TraceReader, WireCodec, aethMeaning, connectQp, decodePacket, ipPacket, simTracePcapng,
  type CompletionQueue, type DecodedPacket, type Device, type MemoryRegion, type QueuePair, type SendWr, type TraceEvent, type TraceRecord, type Fate,
} from "./api.js";
import { messageSize, wcObject, type Completion, type Side, type SideState, type TimerEvent, type TraceRow } from "./session.js";
import type { Run } from "./run.js";
import type { Op, Settings } from "./settings.js";

/** What /live.json says. */
export interface LiveInfo {
  gateway: string | null;
  peer?: { address: string; port: number };
}

/** RC operations the live peer serves (its QP is RC; it has receives posted for SENDs). */
export const LIVE_OPS: readonly Op[] = ["send", "send-imm", "write", "write-imm", "read", "cmp-swap", "fetch-add"];
const LIVE_MR = 1 << 16;

interface PeerReply {
  qpn: number;
  psn: number;
  gid: string;
  port: number;
  addr: string;
  rkey: number;
  length: number;
}

export class LiveSession implements Run {
  readonly live = true;
  readonly packets: TraceRecord[] = [];
  private readonly droppedRx: boolean[] = [];
  private readonly dirs: boolean[] = [];
  readonly timers: TimerEvent[] = [];
  readonly completions: Completion[] = [];
  readonly events: (TraceEvent & { side: Side })[] = [];
  readonly before: Partial<Record<Side, Uint8Array>>;
  private readonly t0 = performance.now();
  private stopped = false;
  private posted = 0;
  private decoded: (DecodedPacket | undefined)[] = [];
  private qpState = "RTS";
  private lastState: Partial<SideState> = {};
  private readonly reader: TraceReader;
  /** worker device: the trace ring's PKT_SENT / PKT_RECV record of each packet (the bytes stay in the worker) */
  private readonly fromRing: (TraceEvent | undefined)[] = [];
  /** how the page's device runs, for the footer */
  readonly threadText: string;

  private constructor(
    private readonly dev: Device,
    private readonly qp: QueuePair,
    private readonly cq: CompletionQueue,
    private readonly mr: MemoryRegion,
    private readonly codec: WireCodec,
    private readonly peer: PeerReply,
    private readonly info: LiveInfo,
  ) {
    this.before = { A: mr.bytes.slice() };
    this.reader = new TraceReader(dev);
    this.reader.enable();
    this.threadText = dev.worker
      ? "live mode: the page's device runs in a Web Worker (it owns the WebSocket and the timers; this page posts and polls through shared memory)"
      : dev.workerFallback !== undefined
        ? `live mode: the page's device runs single-threaded on the page's thread (no worker: ${dev.workerFallback})`
        : "live mode: the page's device runs single-threaded on the page's thread";
    const port = dev.port;
    if (!port) return; // in a worker: packets come from the trace ring (collect)
    port.capture = (dir, d) => {
      const rx = dir === "rx";
      const dropped = rx && d.rxResult !== undefined && d.rxResult !== 0;
      // "dropped": the page's device refused it (the ladder says so); not one of the wire's fates
      const fate = (dropped ? "dropped" : "delivered") as Fate;
      this.droppedRx.push(dropped);
      this.packets.push({ sentAt: this.elapsed(), fate: fate as Fate, datagram: { src: d.src, dst: d.dst, srcPort: d.srcPort, dstPort: d.dstPort, ipId: d.ipId, payload: d.payload.slice() } });
      this.dirs.push(!rx);
    };
  }

  /** Opens the page's device through the gateway, asks the server for a peer QP, connects, posts the work. */
  static async create(mod: WebAssembly.Module, info: LiveInfo, settings: Settings, opts: { worker?: boolean } = {}): Promise<LiveSession> {
    if (!info.gateway) throw new Error("live mode needs `softroce playground` (it runs the gateway)");
    if (!LIVE_OPS.includes(settings.op)) throw new Error(`live mode runs ${LIVE_OPS.join(", ")}; not ${settings.op}`);
    const size = messageSize(settings);
    if (size * settings.depth > LIVE_MR / 2) throw new Error(`live mode moves at most ${LIVE_MR / 2} bytes per run (size × depth)`);
    if ((settings.op === "send" || settings.op === "send-imm") && (size > 4096 || settings.depth > 8)) {
      throw new Error("live mode: the peer has 8 receives of 4096 bytes for SENDs (size at most 4096, depth at most 8)");
    }
    const codec = await WireCodec.create(mod);
    // with worker: true the device runs in a Web Worker where the page is cross-origin isolated, else here (workerFallback says why)
    const { device } = await openTunnelDevice(info.gateway, { helloTimeoutMs: 20_000, worker: opts.worker ?? false });
    try {
      const pd = device.allocPd();
      const cq = device.createCq(256);
      const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: Math.max(16, settings.depth), maxRecvWr: 16, maxSendSge: 1, maxRecvSge: 1 } });
      const all = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ | Access.REMOTE_ATOMIC;
      const mr = pd.regMr(LIVE_MR, all);
      for (let i = 0; i < mr.length; i++) mr.bytes[i] = (i * 7 + 1) & 0xff;
      const psn = 0x100;
      const r = await fetch("/live/connect", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ qpn: qp.qpNum, psn, gid: device.queryGid(0), port: device.limits.port, name: "playground" }),
      });
      if (!r.ok) throw new Error(`/live/connect: HTTP ${r.status} ${(await r.text()).trim()}`);
      const peer = (await r.json()) as PeerReply;
      connectQp(qp, { qpNum: peer.qpn, psn: peer.psn, gid: peer.gid, port: peer.port }, { sqPsn: psn, qpAccessFlags: all, timeout: 16, retryCnt: 7, rnrRetry: 7, minRnrTimer: 1, maxRdAtomic: 4, maxDestRdAtomic: 4 });
      const s = new LiveSession(device, qp, cq, mr, codec, peer, info);
      s.post(settings, size);
      return s;
    } catch (e) {
      device.close();
      throw e;
    }
  }

  private elapsed(): number {
    return Math.round((performance.now() - this.t0) * 1000) / 1000;
  }

  private post(s: Settings, size: number): void {
    const remote = (off: number) => ({ remoteAddr: BigInt(this.peer.addr) + BigInt(off), rkey: this.peer.rkey });
    const wrs: SendWr[] = [];
    for (let i = 0; i < s.depth; i++) {
      const off = i * size;
      const wr: SendWr = { wrId: BigInt(i + 1), opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [this.mr.sge(off, size)] };
      if (s.op === "send-imm") (wr.opcode = WrOpcode.SEND_WITH_IMM), (wr.immData = 0x1000 + i);
      else if (s.op === "write") (wr.opcode = WrOpcode.RDMA_WRITE), (wr.rdma = remote(off));
      else if (s.op === "write-imm") (wr.opcode = WrOpcode.RDMA_WRITE_WITH_IMM), (wr.rdma = remote(off)), (wr.immData = 0x2000 + i);
      else if (s.op === "read") (wr.opcode = WrOpcode.RDMA_READ), (wr.rdma = remote(off));
      else if (s.op === "cmp-swap") (wr.opcode = WrOpcode.ATOMIC_CMP_AND_SWP), (wr.atomic = { ...remote(off), compareAdd: 0n, swap: 1n });
      else if (s.op === "fetch-add") (wr.opcode = WrOpcode.ATOMIC_FETCH_AND_ADD), (wr.atomic = { ...remote(off), compareAdd: 1n });
      wrs.push(wr);
    }
    this.qp.postSend(wrs);
    this.posted = wrs.length;
  }

  get now(): number {
    return this.elapsed();
  }

  get done(): boolean {
    return this.stopped || (this.completions.length >= this.posted && this.captured);
  }

  /**
   * With the device in a worker its port streams captured datagrams back by message, so the last
   * ACK can reach this page after the CQE that it completed (shared memory): the run is done once
   * the worker says every datagram captured so far has arrived (captureFlush).
   */
  private captured = false;
  private flushing = false;

  private flushCapture(): void {
    const port = this.dev.port as { captureFlush?: () => Promise<void> } | undefined;
    if (!port?.captureFlush) {
      this.captured = true;
      return;
    }
    if (this.flushing) return;
    this.flushing = true;
    port.captureFlush().then(
      () => { this.captured = true; },
      () => { this.captured = true; },
    );
  }

  /** Live time cannot be stepped: each call only collects what has happened. */
  step(): boolean {
    this.collect();
    return !this.done;
  }

  run(): number {
    this.collect();
    return 0;
  }

  stop(): void {
    this.stopped = true;
    this.dev.close();
  }

  private collect(): void {
    // the CQ first, then the trace ring: a packet that completed a work request is in the ring by
    // then (with the device in a worker both move while this runs), so the last ACK is not missed
    const wcs = this.cq.poll(64);
    for (const ev of this.reader.read()) {
      this.events.push({ ...ev, side: "A" });
      if (!this.dev.port && (ev.kind === "PKT_SENT" || ev.kind === "PKT_RECV")) this.ringPacket(ev);
      if (ev.kind === "TIMER_RETRANSMIT" || ev.kind === "TIMER_RNR") this.timers.push({ side: "A", tUs: this.elapsed(), kind: ev.kind === "TIMER_RNR" ? "rnr" : "retransmit" });
      else if (ev.kind === "REQ_STATE") this.lastState.req = ev.state;
      else if (ev.kind === "COMP_STATE") this.lastState.comp = ev.state;
      else if (ev.kind === "QP_STATE" && ev.state) this.qpState = ev.state;
    }
    for (const wc of wcs) this.completions.push({ side: "A", tUs: this.elapsed(), wc });
    if (this.completions.length >= this.posted) this.flushCapture();
    if (this.done && !this.stopped) {
      this.stopped = true;
      // the last ACKs have been counted; the tunnel closes with the device
      setTimeout(() => this.dev.close(), 200);
    }
  }

  /** A packet the worker device sent or received, from its trace ring record. */
  private ringPacket(ev: TraceEvent): void {
    const tx = ev.kind === "PKT_SENT";
    const dropped = !tx && ev.verdict !== "ok";
    const me = this.dev.queryGid(0).replace(/^::ffff:/, "");
    const peer = this.info.peer?.address ?? "peer";
    this.fromRing[this.packets.length] = ev;
    this.droppedRx.push(dropped);
    this.dirs.push(tx);
    this.packets.push({
      sentAt: this.elapsed(),
      fate: (dropped ? "dropped" : "delivered") as Fate,
      datagram: { src: tx ? me : peer, dst: tx ? peer : me, srcPort: 0, dstPort: this.info.peer?.port ?? 4791, payload: new Uint8Array(0) },
    });
  }

  /** True when the device has no port on this thread: packets are trace ring records, without bytes. */
  get bytesHidden(): boolean {
    return !this.dev.port;
  }

  fromA(i: number): boolean {
    return this.dirs[i];
  }

  address(side: Side): string {
    return side === "A" ? `this page via ${new URL(this.info.gateway!).host}` : `${this.info.peer?.address}:${this.info.peer?.port} (Node, UDP)`;
  }

  statusText(): string {
    return `live · t = ${this.elapsed().toFixed(0)} µs (real time) · ${this.packets.length} packets through the gateway · ${this.completions.length} completions`;
  }

  decode(i: number): DecodedPacket {
    let d = this.decoded[i];
    const ev = this.fromRing[i];
    if (!d && ev) {
      const record: DecodedPacket["record"] = { "frame.number": i + 1 };
      const op = ev.opcode !== undefined ? this.codec.opcode(ev.opcode) : undefined;
      record.opcode_name = op?.name ?? `Unknown (${ev.opcode})`;
      record["infiniband.bth.opcode"] = ev.opcode ?? -1;
      record["infiniband.bth.psn"] = ev.psn ?? -1;
      if (ev.syndrome !== undefined) {
        record["infiniband.aeth.syndrome"] = ev.syndrome;
        record.aeth_meaning = aethMeaning(ev.syndrome);
        record["infiniband.aeth.msn"] = ev.msn ?? 0;
      }
      if (ev.verdict !== undefined) record.verdict = ev.verdict;
      d = { record, ok: true, error: "the device runs in a Web Worker: this is its trace ring's record of the packet; the bytes stay in the worker (untick “worker” to see them)" };
      this.decoded[i] = d;
    }
    if (!d) {
      const bytes = this.packetBytes(i);
      d = decodePacket(this.codec, bytes, { frame: i + 1, tsNanos: BigInt(Math.round(this.packets[i].sentAt)) * 1000n, frameLen: bytes.length });
      this.decoded[i] = d;
    }
    return d;
  }

  /** Only A's trace ring is visible here; what A's completer did is in the QP table. */
  note(): string | undefined {
    return undefined;
  }

  packetBytes(i: number): Uint8Array {
    const d = this.packets[i].datagram;
    return ipPacket({ src: d.src, dst: d.dst, srcPort: d.srcPort, dstPort: d.dstPort, ipId: d.ipId ?? 0, payload: d.payload });
  }

  sideState(side: Side): SideState {
    if (side === "B") return { qpn: this.peer.qpn, qpState: "(the peer's)", sent: 0, received: 0, dropped: 0, retransmitTimers: 0, rnrTimers: 0, completions: 0 };
    return {
      qpn: this.qp.qpNum,
      qpState: this.qpState,
      req: this.lastState.req,
      comp: this.lastState.comp,
      sent: this.dirs.filter((x) => x).length,
      received: this.dirs.filter((tx, i) => !tx && !this.droppedRx[i]).length,
      dropped: this.droppedRx.filter((x) => x).length,
      retransmitTimers: this.timers.filter((t) => t.kind === "retransmit").length,
      rnrTimers: this.timers.filter((t) => t.kind === "rnr").length,
      completions: this.completions.length,
    };
  }

  after(side: Side): Uint8Array | undefined {
    return side === "A" ? this.mr.bytes : undefined;
  }

  trace(): TraceRow[] {
    return this.packets.map((r, i) => ({ ...this.decode(i).record, fate: r.fate, t_us: r.sentAt }));
  }

  completionObjects(): Record<string, unknown>[] {
    return this.completions.map((c) => wcObject(c.wc));
  }

  pcapng(): Uint8Array {
    if (this.bytesHidden) throw new Error("no pcapng: the device runs in a Web Worker and its packets' bytes stay there (untick “worker”)");
    return simTracePcapng(this.packets);
  }
}

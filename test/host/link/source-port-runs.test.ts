// Per-QP UDP source ports on a batching link (PacketPort.drainRing): the port reads each TX
// descriptor's source port once, checks it with the link (Link.sourcePortReady), and hands the
// ring over in runs of one port, saying which (sendRing's `srcPort`), so the link never reads the
// descriptors' ports again. A port the link refuses moves to the device's (the descriptor's port
// and ICRC rewritten, the QP with it, counted), and its run says so. The one-datagram path (send)
// takes the same checked port.
import { describe, expect, it } from "vitest";
import { coreModule } from "../../../host/node/wasm-source.js";
import { openDeviceWith, type Device } from "../../../host/core/verbs/device.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, QpType, WrOpcode } from "../../../host/core/verbs/enums.js";
import type { QueuePair } from "../../../host/core/verbs/qp.js";
import type { MemoryRegion } from "../../../host/core/verbs/mr.js";
import { Txd, type Link, type OutgoingDatagram, type PacketPort } from "../../../host/core/link/index.js";
import { SimClock, simClock } from "../../../host/core/sim/index.js";
import { addressGid } from "../../../host/core/net/index.js";

const DEVICE_PORT = 4791;

/** A link that records what the port hands it; refuses everything until `open`. */
class RecordingLink implements Link {
  port!: PacketPort;
  open = false;
  /** ports the link cannot send from (sourcePortReady false) */
  readonly refuse = new Set<number>();
  readonly asked: number[] = [];
  /** each sendRing call taken: its run, the port it said, and the ports its descriptors carry */
  readonly runs: { first: number; count: number; srcPort: number | undefined; ports: number[] }[] = [];
  /** the one-datagram path: each datagram's source port */
  readonly sent: number[] = [];

  constructor(private readonly batching: boolean) {
    if (!batching) (this as { sendRing?: unknown }).sendRing = undefined;
  }

  attachPort(p: PacketPort): void {
    this.port = p;
  }

  sourcePortReady(port: number): boolean {
    this.asked.push(port);
    return !this.refuse.has(port);
  }

  private descriptorPort(i: number): number {
    const ring = this.port.ringLayout();
    return new DataView(this.port.memory.buffer).getUint32(ring.data + (i & (ring.cap - 1)) * ring.slot + Txd.SRC_PORT, true);
  }

  sendRing(first: number, count: number, srcPort?: number): number {
    if (!this.open) return 0;
    const ports: number[] = [];
    for (let i = 0; i < count; i++) ports.push(this.descriptorPort((first + i) >>> 0));
    this.runs.push({ first, count, srcPort, ports });
    return count;
  }

  send(d: OutgoingDatagram, done: () => void): boolean {
    this.sent.push(d.srcPort);
    done();
    return this.open;
  }
}

interface Rig {
  dev: Device;
  link: RecordingLink;
  qps: QueuePair[];
  mr: MemoryRegion;
}

async function rig(batching: boolean): Promise<Rig> {
  const dev = await openDeviceWith(await coreModule(), { gids: [addressGid("127.0.18.1")], port: DEVICE_PORT });
  const link = new RecordingLink(batching);
  dev.attach(link, simClock(new SimClock()));
  const pd = dev.allocPd();
  const cq = dev.createCq(64);
  const mr = pd.regMr(1 << 16, Access.LOCAL_WRITE);
  const qps: QueuePair[] = [];
  for (let k = 0; k < 3; k++) {
    const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 16, maxRecvWr: 16, maxSendSge: 1, maxRecvSge: 1 } });
    connectQp(qp, { qpNum: 0x100 + k, psn: 0, gid: "::ffff:127.0.18.2" }, { sqPsn: 0 });
    qps.push(qp);
  }
  return { dev, link, qps, mr };
}

/** Posts, while the link is blocked, messages on the three QPs in an interleaved order; returns packets per QP. */
function postInterleaved(r: Rig): number[] {
  const write = (qp: QueuePair, bytes: number): void =>
    qp.postSend({ wrId: 1n, opcode: WrOpcode.RDMA_WRITE, sgList: [r.mr.sge(0, bytes)], rdma: { remoteAddr: 0x1000n, rkey: 0x1234 } });
  const [a, b, c] = r.qps as [QueuePair, QueuePair, QueuePair];
  write(a, 3072); // 3 packets at MTU 1024
  write(b, 2048); // 2
  write(c, 64); // 1
  write(a, 64); // 1
  write(b, 1024); // 1
  return [4, 3, 1];
}

describe("per-QP source ports: the port cuts the TX ring into runs of one port", () => {
  it("each sendRing run carries one port, said in srcPort; runs are maximal; one readiness check per run", async () => {
    const r = await rig(true);
    const ports = r.qps.map((q) => q.udpSourcePort);
    expect(new Set(ports).size).toBe(3);
    for (const p of ports) expect(p).toBeGreaterThanOrEqual(0xc000);
    const perQp = postInterleaved(r);
    expect(r.link.runs).toHaveLength(0);
    r.link.asked.length = 0;
    r.link.open = true;
    r.dev.port!.resume();
    const runs = r.link.runs;
    expect(runs.reduce((s, x) => s + x.count, 0)).toBe(perQp.reduce((s, n) => s + n, 0));
    for (const run of runs) {
      expect(run.srcPort).toBeDefined();
      expect(run.ports).toEqual(new Array(run.count).fill(run.srcPort));
    }
    for (let i = 1; i < runs.length; i++) {
      expect(runs[i]!.first).toBe((runs[i - 1]!.first + runs[i - 1]!.count) >>> 0);
      expect(runs[i]!.srcPort).not.toBe(runs[i - 1]!.srcPort);
    }
    // every QP's packets left from its own port
    ports.forEach((p, k) => expect(runs.filter((x) => x.srcPort === p).reduce((s, x) => s + x.count, 0)).toBe(perQp[k]));
    expect(runs.length).toBeGreaterThanOrEqual(3);
    expect(r.link.asked).toHaveLength(runs.length);
    expect(r.dev.port!.stats.sportFallbacks).toBe(0);
    r.dev.close();
  });

  it("a port the link refuses: its descriptors go in runs from the device's port, rewritten, counted; the QP stays moved", async () => {
    const r = await rig(true);
    const [a, b] = r.qps as [QueuePair, QueuePair, QueuePair];
    const refused = b.udpSourcePort;
    r.link.refuse.add(refused);
    const perQp = postInterleaved(r);
    r.link.open = true;
    r.dev.port!.resume();
    const runs = r.link.runs;
    for (const run of runs) expect(run.ports).toEqual(new Array(run.count).fill(run.srcPort));
    expect(runs.some((x) => x.srcPort === refused)).toBe(false);
    expect(runs.filter((x) => x.srcPort === DEVICE_PORT).reduce((s, x) => s + x.count, 0)).toBe(perQp[1]);
    expect(runs.filter((x) => x.srcPort === a.udpSourcePort).reduce((s, x) => s + x.count, 0)).toBe(perQp[0]);
    expect(r.dev.port!.stats.sportFallbacks).toBe(perQp[1]);
    expect(b.udpSourcePort).toBe(DEVICE_PORT);
    r.dev.close();
  });

  it("the one-datagram path (send) takes the same checked port", async () => {
    const r = await rig(false);
    const [a, b, c] = r.qps as [QueuePair, QueuePair, QueuePair];
    const refused = c.udpSourcePort;
    r.link.refuse.add(refused);
    r.link.open = true;
    const perQp = postInterleaved(r);
    const sent = r.link.sent;
    expect(sent).toHaveLength(perQp.reduce((s, n) => s + n, 0));
    expect(sent.filter((p) => p === a.udpSourcePort)).toHaveLength(perQp[0]!);
    expect(sent.filter((p) => p === b.udpSourcePort)).toHaveLength(perQp[1]!);
    expect(sent.filter((p) => p === DEVICE_PORT)).toHaveLength(perQp[2]!);
    expect(r.dev.port!.stats.sportFallbacks).toBe(perQp[2]);
    r.dev.close();
  });
});

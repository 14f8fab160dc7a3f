// Requester memory behaviour: a packet whose payload lies in one SGE goes out
// straight from the MR (zero copy), a packet spanning SGEs from a bounce slot;
// linear memory never grows under traffic (host views stay valid); SQD drains.
import { describe, expect, it } from "vitest";
import { coreModule } from "../../../host/node/wasm-source.js";
import { openDeviceWith } from "../../../host/core/verbs/device.js";
import { SimClock } from "../../../host/core/sim/clock.js";
import { simClock } from "../../../host/core/sim/link.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import type { Link, OutgoingDatagram } from "../../../host/core/link/port.js";
import { Access, EventType, Mtu, QpState, QpType, SendFlags, WrOpcode } from "../../../host/core/verbs/enums.js";
import { ReqBench, OP, brief } from "../support/rc-req-harness.js";

class PieceLink implements Link {
  readonly sent: { payload?: Uint8Array; bytes: Uint8Array }[] = [];
  send(d: OutgoingDatagram, done: () => void): boolean {
    const payload = d.pieces.length === 3 ? d.pieces[1] : undefined;
    const bytes = new Uint8Array(d.length);
    let o = 0;
    for (const p of d.pieces) {
      bytes.set(p, o);
      o += p.length;
    }
    this.sent.push({ payload, bytes });
    done();
    return true;
  }
}

async function bench() {
  const dev = await openDeviceWith(await coreModule(), { gids: ["::ffff:127.0.0.1"] });
  const link = new PieceLink();
  const clock = new SimClock();
  dev.attach(link, simClock(clock));
  const pd = dev.allocPd();
  const cq = dev.createCq(64);
  const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 64, maxRecvWr: 1, maxSendSge: 4, maxRecvSge: 1 } });
  connectQp(qp, { qpNum: 0x99, psn: 0, gid: "::ffff:127.0.0.2" }, { sqPsn: 0, pathMtu: Mtu.MTU_1024 });
  const mr = pd.regMr(1 << 16, Access.LOCAL_WRITE);
  return { dev, link, qp, mr, cq };
}

describe("RC requester: zero copy and memory", () => {
  it("sends single-SGE payloads straight from the MR and SGE-spanning packets from a bounce slot", async () => {
    const { dev, link, qp, mr } = await bench();
    qp.postSend([
      { opcode: WrOpcode.SEND, sgList: [mr.sge(100, 2500)] },
      { opcode: WrOpcode.SEND, sgList: [mr.sge(10000, 600), mr.sge(20000, 600)] },
    ]);
    expect(link.sent).toHaveLength(5);
    const buf = dev.memory.buffer;
    const mrAddr = Number(mr.addr);
    for (const [k, off] of [[0, 100], [1, 1124], [2, 2148]] as const) {
      const p = link.sent[k]!.payload!;
      expect(p.buffer).toBe(buf);
      expect(p.byteOffset).toBe(mrAddr + off); // the MR itself: zero copy
    }
    const spanning = link.sent[3]!.payload!;
    expect(spanning.length).toBe(1024);
    expect(spanning.byteOffset < mrAddr || spanning.byteOffset >= mrAddr + mr.length).toBe(true); // a bounce slot
    expect(Array.from(spanning)).toEqual([...mr.bytes.slice(10000, 10600), ...mr.bytes.slice(20000, 20424)]);
    expect(link.sent[4]!.payload!.byteOffset).toBe(mrAddr + 20424); // the rest lies in one SGE again
  });

  it("linear memory does not grow under traffic, bounce slots included", async () => {
    const { dev, qp, mr } = await bench();
    const before = dev.memory.buffer.byteLength;
    const view = mr.bytes;
    for (let i = 0; i < 20; i++) {
      qp.postSend({ opcode: WrOpcode.SEND, sgList: [mr.sge(0, 700), mr.sge(4096, 700), mr.sge(8192, 700)] });
      qp.postSend({ opcode: WrOpcode.RDMA_WRITE, rdma: { remoteAddr: 0n, rkey: 1 }, sgList: [mr.sge(0, 3000)] });
    }
    expect(dev.memory.buffer.byteLength).toBe(before);
    expect(view.byteLength).toBe(mr.length); // still attached
  });
});

/** Holds every datagram (its descriptor stays in flight) until release(); checks the bytes are still intact then. */
class HoldingLink implements Link {
  readonly atSend: Uint8Array[] = [];
  readonly atRelease: Uint8Array[] = [];
  private held: { d: OutgoingDatagram; done: () => void }[] = [];
  send(d: OutgoingDatagram, done: () => void): boolean {
    this.atSend.push(join(d));
    this.held.push({ d, done });
    return true;
  }
  release(): void {
    for (const h of this.held.splice(0)) {
      this.atRelease.push(join(h.d)); // the pieces still hold what was sent
      h.done();
    }
  }
  get holding(): number {
    return this.held.length;
  }
}

function join(d: OutgoingDatagram): Uint8Array {
  const out = new Uint8Array(d.length);
  let o = 0;
  for (const p of d.pieces) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

describe("RC requester: a full TX ring", () => {
  it("stops when the ring is full, resumes as descriptors come back, and in-flight bounce slots stay intact", async () => {
    const dev = await openDeviceWith(await coreModule(), { gids: ["::ffff:127.0.0.1"], txRingSize: 4 });
    const link = new HoldingLink();
    const port = dev.attach(link, simClock(new SimClock()));
    const pd = dev.allocPd();
    const cq = dev.createCq(16);
    const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 8, maxRecvWr: 1, maxSendSge: 4, maxRecvSge: 1 } });
    connectQp(qp, { qpNum: 0x99, psn: 0, gid: "::ffff:127.0.0.2" }, { sqPsn: 0xfffffc, pathMtu: Mtu.MTU_256 });
    const mr = pd.regMr(1 << 14, Access.LOCAL_WRITE);
    for (let i = 0; i < mr.length; i++) mr.bytes[i] = (i * 7) & 0xff;
    // 2100 bytes from three SGEs of 700: nine packets at MTU 256, three of them spanning two SGEs
    qp.postSend({ opcode: WrOpcode.SEND, sgList: [mr.sge(0, 700), mr.sge(4000, 700), mr.sge(8000, 700)] });
    const rounds: number[] = [];
    for (let n = 0; n < 10 && link.atSend.length < 9; n++) {
      rounds.push(link.holding);
      link.release();
      port.resume();
    }
    expect(rounds).toEqual([4, 4]); // four descriptors each time, then the last packet
    expect(link.holding).toBe(1);
    expect(link.atSend).toHaveLength(9);
    link.release();
    expect(link.atRelease.map((b) => Array.from(b))).toEqual(link.atSend.map((b) => Array.from(b)));
    const psns = link.atSend.map((b) => (b[9]! << 16) | (b[10]! << 8) | b[11]!);
    expect(psns).toEqual([0xfffffc, 0xfffffd, 0xfffffe, 0xffffff, 0, 1, 2, 3, 4]);
    const data = link.atSend.flatMap((b) => Array.from(b.subarray(12, b.length - 4 - ((b[1]! >> 4) & 3))));
    expect(data).toEqual([...mr.bytes.slice(0, 700), ...mr.bytes.slice(4000, 4700), ...mr.bytes.slice(8000, 8700)]);
  });
});

describe("RC requester: SQD", () => {
  it("raises SQ_DRAINED once everything sent before SQD is acknowledged, and sends nothing new meanwhile", async () => {
    const b = await ReqBench.create();
    const events: number[] = [];
    b.dev.on("event", (ev) => events.push(ev.eventType));
    b.post([{ wrId: 1n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED }]);
    b.qp.modify({ qpState: QpState.SQD });
    b.post([{ wrId: 2n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED }]);
    expect(b.sent().map(brief)).toEqual([[OP.SEND_ONLY, 0x10, 1, 0]]);
    const settle = () => new Promise((r) => setTimeout(r, 0)); // events are dispatched from a microtask
    await settle();
    expect(events).not.toContain(EventType.SQ_DRAINED);
    // the ACK is lost: the retransmission still goes out in SQD (it was sent before SQD)
    b.advance(4.096 * 2 ** 14 + 1);
    expect(b.sent().map(brief)).toEqual([[OP.SEND_ONLY, 0x10, 1, 0]]);
    b.ack(0x10);
    await settle();
    expect(events.filter((e) => e === EventType.SQ_DRAINED)).toHaveLength(1);
    expect(b.sent()).toEqual([]);
    expect(b.poll().map((w) => w.wrId)).toEqual([1n]);
    // back in RTS, the next doorbell sends what waited
    b.qp.modify({ qpState: QpState.RTS });
    b.post({ wrId: 3n, opcode: WrOpcode.SEND });
    expect(b.sent().map(brief)).toEqual([[OP.SEND_ONLY, 0x11, 1, 0], [OP.SEND_ONLY, 0x12, 1, 0]]);
  });
});

// A READ request and the requests behind it in ONE received batch (the Node datapath's rx_batch:
// one recvmmsg, one core call). rxe sends all of a READ's responses before it looks at the next
// request, so a WRITE or SEND right behind a READ executes at once and its ACK follows the READ's
// responses. The responder here reads a READ's data from the MR when the TX descriptor leaves, so
// a request that writes memory waits while the READ's responses are unsent (mustWaitForRead): in
// a batch the host has not drained the ring yet, and that wait must not become an RNR NAK.
// Addresses: 127.0.12.0/24.
import { afterEach, describe, expect, it } from "vitest";
import { coreModule } from "../../../host/node/wasm-source.js";
import { WireCodec, type PacketSpec } from "../../../host/core/wire/codec.js";
import { openDeviceWith, type Device } from "../../../host/core/verbs/device.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, Mtu, QpType, SendFlags, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import { datapathAddon } from "../../../host/node/datapath.js";
import { nativePair } from "../support/native-pair.js";
import { Rxm, Rxr, type Link, type OutgoingDatagram, type PacketPort, type RxBatchArea } from "../../../host/core/link/index.js";
import { concat } from "../../../host/core/net/bytes.js";
import { parseGid } from "../../../host/core/net/gid.js";
import { ACK, Op, pattern } from "../support/rc-resp-harness.js";

const LOCAL = "127.0.12.31";
const PEER = "127.0.12.32";
const PEER_QPN = 0x99;
const RNR = 0x20;

/** A link that receives in batches written into the device's batch area, as the native datapath does. */
class BatchLink implements Link {
  port!: PacketPort;
  area!: RxBatchArea;
  readonly sent: Uint8Array[] = [];
  attachPort(port: PacketPort): void {
    this.port = port;
    this.area = port.rxBatchArea(16, 16, 4608)!;
  }
  send(d: OutgoingDatagram, done: () => void): boolean {
    this.sent.push(concat(d.pieces));
    done();
    return true;
  }
  /** Hands `payloads` (UDP payloads from PEER) to the port as one batch. */
  batch(payloads: Uint8Array[], more = true): void {
    const mem = new Uint8Array(this.port.memory.buffer);
    const dv = new DataView(this.port.memory.buffer);
    payloads.forEach((p, i) => {
      const slot = this.area.slots + i * this.area.slotSize;
      mem.set(p, slot);
      const rec = this.area.records + i * Rxr.SIZE;
      dv.setUint32(rec + Rxm.IP_VERSION, 4, true);
      mem.set(parseGid(`::ffff:${PEER}`), rec + Rxm.SRC);
      mem.set(parseGid(`::ffff:${LOCAL}`), rec + Rxm.DST);
      dv.setUint32(rec + Rxm.SRC_PORT, 4791, true);
      dv.setUint32(rec + Rxm.DST_PORT, 4791, true);
      dv.setUint32(rec + Rxm.IP_ID, 0, true);
      dv.setUint32(rec + Rxr.DATA, slot, true);
      dv.setUint32(rec + Rxr.LENGTH, p.length, true);
      dv.setUint32(rec + Rxr.ID_HINT, 0, true);
      dv.setUint32(rec + Rxr.FLAGS, 0, true);
    });
    this.port.receiveBatch(this.area.records, payloads.length, more);
  }
}

async function bench(txRingSize = 64) {
  const mod = await coreModule();
  const codec = await WireCodec.create(mod);
  const dev: Device = await openDeviceWith(mod, { gids: [`::ffff:${LOCAL}`], txRingSize });
  const link = new BatchLink();
  dev.attach(link, { now: () => 0, setTimer: () => 0, clearTimer: () => {} });
  const pd = dev.allocPd();
  const cq = dev.createCq(64);
  const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 4, maxRecvWr: 16, maxSendSge: 1, maxRecvSge: 1 } });
  const ALL = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ;
  connectQp(qp, { qpNum: PEER_QPN, psn: 100, gid: `::ffff:${PEER}` }, { sqPsn: 7, pathMtu: Mtu.MTU_256, qpAccessFlags: ALL, maxDestRdAtomic: 4, minRnrTimer: 12 });
  const mr = pd.regMr(8192, ALL);
  const req = (spec: Partial<PacketSpec> & { opcode: number; psn: number }) =>
    codec.emit({ ipVersion: 4, src: PEER, dst: LOCAL, ipId: 0, ipFlags: 2, udpSrcPort: 4791, udpDstPort: 4791, destQp: qp.qpNum, ackReq: 1, ...spec } as PacketSpec).subarray(28);
  const sent = () =>
    link.sent.splice(0).map((p) => {
      const r = codec.parseDatagram({ src: LOCAL, dst: PEER, srcPort: 4791, dstPort: 4791, ipId: 0, payload: p });
      if (!r.ok) throw new Error(r.error);
      return { opcode: r.repr.opcode, psn: r.repr.psn, syndrome: r.repr.aeth?.syndrome, payload: r.repr.payload.slice() };
    });
  return { dev, qp, cq, mr, link, req, sent, counters: () => dev.queryCounters() };
}

describe("RC responder: a READ request and the requests behind it in one received batch", () => {
  for (const more of [true, false]) {
    it(`READ then WRITE then SEND (more ${more}): the READ's responses first, the WRITE and SEND execute, no RNR NAK`, async () => {
      const b = await bench();
      const before = pattern(1024, 5);
      b.mr.bytes.set(before);
      b.qp.postRecv({ wrId: 1n, sgList: [b.mr.sge(4096, 64)] }); // the SEND lands in the MR too
      b.link.batch([
        b.req({ opcode: Op.READ_REQUEST, psn: 100, reth: { va: b.mr.addr, rkey: b.mr.rkey, dmaLength: 512 } }),
        b.req({ opcode: Op.WRITE_ONLY, psn: 102, reth: { va: b.mr.addr + 64n, rkey: b.mr.rkey, dmaLength: 8 }, payload: new Uint8Array(8).fill(0xee) }),
        b.req({ opcode: Op.SEND_ONLY, psn: 103, payload: pattern(16, 1) }),
      ], more);
      b.dev.port!.close(); // a deferred flush (none here: the link cannot defer) would run now
      const out = b.sent();
      expect(b.counters()).toMatchObject({ send_rnr_err: 0 });
      expect(out.map((p) => [p.opcode, p.psn, p.syndrome])).toEqual([
        [Op.READ_RESP_FIRST, 100, ACK], [Op.READ_RESP_LAST, 101, ACK], [Op.ACK, 103, ACK],
      ]);
      // the READ returned the memory as it was before the WRITE behind it
      expect(Array.from(concat([out[0]!.payload, out[1]!.payload]))).toEqual(Array.from(before.subarray(0, 512)));
      expect(Array.from(b.mr.bytes.subarray(64, 72))).toEqual(new Array(8).fill(0xee));
      expect(b.cq.poll(4).map((w) => [w.wrId, w.status, w.byteLen])).toEqual([[1n, 0, 16]]);
      expect(b.dev.port!.readStops).toBe(1); // cut once, behind the READ
    });
  }

  it("READs behind READs (read_bw) keep the batch whole; every response in order", async () => {
    const b = await bench();
    const before = pattern(1024, 2);
    b.mr.bytes.set(before);
    b.link.batch([0, 1, 2].map((k) => b.req({ opcode: Op.READ_REQUEST, psn: 100 + 2 * k, reth: { va: b.mr.addr + BigInt(256 * k), rkey: b.mr.rkey, dmaLength: 512 } })));
    b.dev.port!.close();
    const out = b.sent();
    expect(out.map((p) => [p.opcode, p.psn])).toEqual([
      [Op.READ_RESP_FIRST, 100], [Op.READ_RESP_LAST, 101], [Op.READ_RESP_FIRST, 102], [Op.READ_RESP_LAST, 103],
      [Op.READ_RESP_FIRST, 104], [Op.READ_RESP_LAST, 105],
    ]);
    expect(Array.from(concat(out.slice(4).map((p) => p.payload)))).toEqual(Array.from(before.subarray(512, 1024)));
    expect(b.dev.port!.readStops).toBe(0);
  });

  it("a READ longer than the TX ring has room for, then a WRITE: still no RNR NAK, responses in order", async () => {
    const b = await bench(8);
    const before = pattern(4096, 7);
    b.mr.bytes.set(before);
    b.link.batch([
      b.req({ opcode: Op.READ_REQUEST, psn: 100, reth: { va: b.mr.addr, rkey: b.mr.rkey, dmaLength: 4096 } }), // 16 responses
      b.req({ opcode: Op.WRITE_ONLY, psn: 116, reth: { va: b.mr.addr + 3000n, rkey: b.mr.rkey, dmaLength: 8 }, payload: new Uint8Array(8).fill(0xee) }),
    ]);
    b.dev.port!.close();
    const out = b.sent();
    expect(b.counters()).toMatchObject({ send_rnr_err: 0 });
    expect(out.map((p) => p.psn)).toEqual([...Array.from({ length: 16 }, (_, i) => 100 + i), 116]);
    expect(out[16]).toMatchObject({ opcode: Op.ACK, syndrome: ACK });
    expect(Array.from(concat(out.slice(0, 16).map((p) => p.payload)))).toEqual(Array.from(before));
    expect(b.mr.bytes[3000]).toBe(0xee);
  });
});

let close = () => {};
afterEach(() => close());

describe.skipIf(!datapathAddon())("native datapath: a READ and a WRITE posted together", () => {
  it("reach the peer in one receive batch: the WRITE is not refused (no RNR NAK), both complete", async () => {
    // rnr_retry 0: an RNR NAK would fail the WRITE at once
    const p = await nativePair(["127.0.12.41", "127.0.12.42"], {
      access: Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ, mrBytes: 65536,
      qp: { timeout: 14, retryCnt: 3, rnrRetry: 0, maxRdAtomic: 4, maxDestRdAtomic: 4 },
    });
    close = p.close;
    const { A, B } = p;
    const [a, b] = [A.d, B.d];
    B.mr.bytes.set(pattern(16384, 4));
    for (let round = 0; round < 4; round++) {
      A.qp.postSend([
        { wrId: 1n, opcode: WrOpcode.RDMA_READ, sendFlags: SendFlags.SIGNALED, sgList: [A.mr.sge(0, 16384)], rdma: { remoteAddr: B.mr.addr, rkey: B.mr.rkey } },
        { wrId: 2n, opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [A.mr.sge(32768, 64)], rdma: { remoteAddr: B.mr.addr + 32768n, rkey: B.mr.rkey } },
      ]);
      const wcs = [await A.cq.next(), await A.cq.next()];
      expect(wcs.map((w) => [w.wrId, w.status])).toEqual([[1n, WcStatus.SUCCESS], [2n, WcStatus.SUCCESS]]);
    }
    expect(Array.from(A.mr.bytes.subarray(0, 16384))).toEqual(Array.from(pattern(16384, 4)));
    expect(a.queryCounters().rcvd_rnr_err).toBe(0);
    expect(b.queryCounters().send_rnr_err).toBe(0);
    expect(b.port!.readStops).toBeGreaterThanOrEqual(1); // at least one batch held both
  });
});

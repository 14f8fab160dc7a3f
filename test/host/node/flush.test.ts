// When a received batch's ACKs leave on the native link (NativeUdpLink.flush): deferred, they wait
// for the end of the turn (only while more datagrams are arriving); an application that closes its device in the continuation of the completion
// that batch produced (perftest's write_lat does: the last WRITE arrives, the test ends) must not
// take the ACK with it, or the peer retries into a closed port and fails the WR (RETRY_EXC_ERR).
// Addresses: 127.0.21.0/24.
import { afterEach, describe, expect, it } from "vitest";
import { openDevice, udpLinkOf } from "../../../host/node/index.js";
import { NativeUdpLink } from "../../../host/node/native-link.js";
import { TX_RECORD, datapathAddon, openDatapath } from "../../../host/node/datapath.js";
import { addressGid, parseGid } from "../../../host/core/index.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, Mtu, QpType, SendFlags, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import type { Device } from "../../../host/core/verbs/device.js";
import { setImmediate as nextTurn } from "node:timers/promises";

const opened: Device[] = [];
afterEach(() => {
  while (opened.length) opened.pop()!.close();
});

async function pair(a1: string, a2: string, flush: "now" | "defer", timeout = 12, ackHold: "more" | "every" = "more") {
  const devOpts = { port: 0, activeMtu: Mtu.MTU_1024, datapath: "native" as const };
  const a = await openDevice({ ...devOpts, address: a1 });
  const b = await openDevice({ ...devOpts, address: a2 });
  opened.push(a, b);
  for (const d of [a, b]) {
    const l = udpLinkOf(d);
    expect(l).toBeInstanceOf(NativeUdpLink);
    (l as NativeUdpLink).flush = flush;
    (l as NativeUdpLink).holdEveryBatch = ackHold === "every";
  }
  const ACCESS = Access.LOCAL_WRITE | Access.REMOTE_WRITE;
  const side = (d: Device) => {
    const pd = d.allocPd();
    const cq = d.createCq(16);
    const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 8, maxRecvWr: 8, maxSendSge: 1, maxRecvSge: 1 } });
    const mr = pd.regMr(4096, ACCESS);
    return { d, cq, qp, mr, port: (d.limits as { port: number }).port };
  };
  const A = side(a);
  const B = side(b);
  // ACK timeout 12 (~16 ms), two retries: an ACK that never comes fails A's WR within ~50 ms
  const common = { pathMtu: Mtu.MTU_1024, qpAccessFlags: ACCESS, timeout, retryCnt: 2 };
  connectQp(A.qp, { qpNum: B.qp.qpNum, psn: 100, gid: b.queryGid(0), port: B.port }, { ...common, sqPsn: 200 });
  connectQp(B.qp, { qpNum: A.qp.qpNum, psn: 200, gid: a.queryGid(0), port: A.port }, { ...common, sqPsn: 100 });
  return { A, B };
}

type End = Awaited<ReturnType<typeof pair>>["A"];
const send = (s: End, wrId: bigint) => s.qp.postSend({ wrId, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [s.mr.sge(0, 64)] });

/**
 * Three lone ping-pongs, B answering A's SEND in the continuation of its receive completion: what B
 * had sent when the continuation ran (BTH opcodes), what it sent in all, and its sendmmsg calls.
 */
async function lonePingPongs(A: End, B: End, atAnswer: number[], sent: number[], syscalls: number): Promise<void> {
  const lb = udpLinkOf(B.d) as NativeUdpLink;
  const ops: number[] = [];
  lb.port!.capture = (dir, d) => {
    if (dir === "tx") ops.push(d.payload[0]!);
  };
  for (let round = 0; round < 3; round++) {
    A.qp.postRecv({ wrId: 1n, sgList: [A.mr.sge(0, 64)] });
    B.qp.postRecv({ wrId: 2n, sgList: [B.mr.sge(0, 64)] });
    ops.length = 0;
    const tb = lb.datapathStats();
    const answered = B.cq.next().then((wc) => {
      expect(wc.status).toBe(WcStatus.SUCCESS);
      expect(ops).toEqual(atAnswer);
      send(B, 20n);
    });
    send(A, 10n);
    await answered;
    const got = [await A.cq.next(), await A.cq.next()].map((w) => [w.status, w.wrId]).sort();
    expect(got).toEqual([[WcStatus.SUCCESS, 1n], [WcStatus.SUCCESS, 10n]].sort());
    const tb2 = lb.datapathStats();
    expect(ops).toEqual(sent);
    // a lone request: its batch emptied B's socket
    expect([tb2.txSyscalls - tb.txSyscalls, tb2.rxBatchesMore - tb.rxBatchesMore]).toEqual([syscalls, 0]);
    expect((await B.cq.next()).wrId).toBe(20n); // B's SEND, acknowledged by A
  }
}

describe.skipIf(!datapathAddon())("native link: the last ACK of a batch", () => {
  for (const flush of ["now", "defer"] as const) {
    it(`leaves even when the receiver closes its device in the completion's continuation (flush ${flush})`, async () => {
      const { A, B } = await pair("127.0.21.11", "127.0.21.12", flush);
      for (let round = 0; round < 3; round++) {
        B.qp.postRecv({ wrId: 7n, sgList: [B.mr.sge(0, 64)] });
        A.qp.postSend({ wrId: BigInt(round), opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [A.mr.sge(0, 64)] });
        const [wa, wb] = await Promise.all([A.cq.next(), B.cq.next()]);
        expect([wa.status, wb.status]).toEqual([WcStatus.SUCCESS, WcStatus.SUCCESS]);
      }
      // the last message: B closes in the continuation of its receive completion, before any setImmediate
      B.qp.postRecv({ wrId: 8n, sgList: [B.mr.sge(0, 64)] });
      const closed = B.cq.next().then((wc) => {
        B.d.close();
        return wc.status;
      });
      A.qp.postSend({ wrId: 9n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [A.mr.sge(0, 64)] });
      expect(await closed).toBe(WcStatus.SUCCESS);
      const wa = await A.cq.next();
      expect({ wrId: wa.wrId, status: wa.status }).toEqual({ wrId: 9n, status: WcStatus.SUCCESS });
    });
  }
});

describe.skipIf(!datapathAddon())("native link, flush defer: a batch's ACK and the application's answer", () => {
  it("a lone request (its receive emptied the socket): the ACK leaves at once, the answer at its post, so the peer wakes early", async () => {
    const { A, B } = await pair("127.0.21.13", "127.0.21.14", "defer", 18);
    // the ACK of A's SEND left before B's continuation ran; then RC SEND_ONLY, two sendmmsg calls
    await lonePingPongs(A, B, [0x11], [0x11, 0x04], 2);
    expect((udpLinkOf(A.d) as NativeUdpLink).datapathStats().rxBatchesMore).toBe(0);
  });

  it("a batch with more datagrams behind it holds its ACK: the answer leaves first, the ACK behind it, in one GSO send", async () => {
    // ACK timeout 18 (~1 s): a loaded machine's stall must not resend a SEND (its ACK would be counted)
    const { A, B } = await pair("127.0.21.18", "127.0.21.19", "defer", 18);
    const lb = udpLinkOf(B.d) as NativeUdpLink;
    expect([lb.gso, lb.gro]).toEqual([true, true]); // loopback: GSO on by default, GRO on receive
    // a third sender queues 40 stray datagrams at B right behind A's SEND (one sendmmsg, no GSO: 40
    // datagrams in B's socket), so B's first receive fills its slots; B drops them (bad ICRC)
    const mem = new Uint8Array(8192);
    const junk = openDatapath({ memory: mem, address: "127.0.21.20", port: 0 }).datapath!;
    const dv = new DataView(mem.buffer);
    const N = 40;
    for (let i = 0; i < N; i++) {
      const at = 4096 + i * TX_RECORD.stride;
      mem.set(parseGid(addressGid("127.0.21.19")), at + TX_RECORD.dstAddr);
      dv.setUint32(at + TX_RECORD.dstPort, B.port, true);
      dv.setUint32(at + TX_RECORD.pieces[0].data, 0, true);
      dv.setUint32(at + TX_RECORD.pieces[0].len, 80, true);
    }
    try {
      const ops: number[] = [];
      lb.port!.capture = (dir, d) => {
        if (dir === "tx") ops.push(d.payload[0]!);
      };
      A.qp.postRecv({ wrId: 1n, sgList: [A.mr.sge(0, 64)] });
      B.qp.postRecv({ wrId: 2n, sgList: [B.mr.sge(0, 64)] });
      const tb = lb.datapathStats();
      const answered = B.cq.next().then((wc) => {
        expect(wc.status).toBe(WcStatus.SUCCESS);
        expect(ops).toEqual([]); // the ACK is held
        send(B, 20n);
      });
      send(A, 10n);
      expect(junk.sendBatch(4096, 0, N)).toBe(N);
      await answered;
      const got = [await A.cq.next(), await A.cq.next()].map((w) => [w.status, w.wrId]).sort();
      expect(got).toEqual([[WcStatus.SUCCESS, 1n], [WcStatus.SUCCESS, 10n]].sort());
      const tb2 = lb.datapathStats();
      expect(ops).toEqual([0x04, 0x11]); // RC SEND_ONLY, then the ACK
      expect([tb2.txSyscalls - tb.txSyscalls, tb2.txGsoSends - tb.txGsoSends, tb2.txGsoSegments - tb.txGsoSegments]).toEqual([1, 1, 2]);
      expect(tb2.rxBatchesMore - tb.rxBatchesMore).toBeGreaterThanOrEqual(1);
      expect(tb2.rxDatagrams - tb.rxDatagrams).toBe(N + 1);
      expect((await B.cq.next()).wrId).toBe(20n);
    } finally {
      junk.close();
    }
  });
});

describe.skipIf(!datapathAddon())("native link, flush defer: nothing waits without a held ACK", () => {
  it("a request posted after a batch that held no ACK (the batch was A's ACK) leaves at the post, not at the flush", async () => {
    const { A, B } = await pair("127.0.21.15", "127.0.21.16", "defer", 18);
    const la = udpLinkOf(A.d) as NativeUdpLink;
    const send = (wrId: bigint) => A.qp.postSend({ wrId, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [A.mr.sge(0, 64)] });
    for (let i = 0; i < 4; i++) B.qp.postRecv({ wrId: 2n, sgList: [B.mr.sge(0, 64)] });
    send(1n);
    const leftAtPost = await A.cq.next().then((wc) => {
      // the continuation of the completion B's ACK produced: A's deferred flush is due, nothing is held
      expect(wc.status).toBe(WcStatus.SUCCESS);
      const before = la.datapathStats().txDatagrams;
      send(2n);
      return la.datapathStats().txDatagrams - before;
    });
    expect(leftAtPost).toBe(1);
    expect((await A.cq.next()).status).toBe(WcStatus.SUCCESS);
    expect([(await B.cq.next()).status, (await B.cq.next()).status]).toEqual([WcStatus.SUCCESS, WcStatus.SUCCESS]);
  });
});

describe.skipIf(!datapathAddon())("native link, ackHold every: a lone request's ACK waits for the answer, in the same turn", () => {
  it("an answer posted in the completion's continuation leaves with the ACK in one send (the answer first)", async () => {
    const { A, B } = await pair("127.0.21.21", "127.0.21.22", "defer", 18, "every");
    // nothing sent before B's continuation ran; then RC SEND_ONLY and the ACK, one sendmmsg call
    await lonePingPongs(A, B, [], [0x04, 0x11], 1);
  });

  it("nobody reacts: the ACK still leaves in the receive's turn, before any setImmediate", async () => {
    const { A, B } = await pair("127.0.21.23", "127.0.21.24", "defer", 18, "every");
    const lb = udpLinkOf(B.d) as NativeUdpLink;
    const ops: number[] = [];
    let atReceive = -1;
    lb.port!.capture = (dir, d) => {
      if (dir === "tx") ops.push(d.payload[0]!);
      // the turn of B's receive: what B has sent by the first setImmediate after it
      else if (atReceive < 0) setImmediate(() => (atReceive = ops.length));
    };
    B.qp.postRecv({ wrId: 2n, sgList: [B.mr.sge(0, 64)] });
    send(A, 10n);
    // nobody awaits B's CQ: A's SEND completes only through B's ACK
    const wa = await A.cq.next();
    expect([wa.status, wa.wrId]).toEqual([WcStatus.SUCCESS, 10n]);
    await nextTurn();
    expect(ops).toEqual([0x11]);
    expect(atReceive).toBe(1);
    expect(lb.port!.holding()).toMatchObject({ flushPending: false, acksHeld: false, txUnsent: 0 });
    expect((await B.cq.next()).wrId).toBe(2n);
  });

  it("a SEND lost once is still retransmitted and acknowledged, in order", async () => {
    // ACK timeout 8 (~1 ms): B drops A's first SEND, A resends it; later SENDs keep their order
    const { A, B } = await pair("127.0.21.25", "127.0.21.26", "defer", 8, "every");
    const lb = udpLinkOf(B.d) as NativeUdpLink;
    const la = udpLinkOf(A.d) as NativeUdpLink;
    let dropped = 0;
    const port = lb.port!;
    const receiveBatch = port.receiveBatch.bind(port);
    port.receiveBatch = (recs: number, count: number, more?: boolean) => {
      if (dropped === 0) {
        dropped = count; // the first batch never reaches the device
        return;
      }
      receiveBatch(recs, count, more);
    };
    for (let i = 0; i < 4; i++) B.qp.postRecv({ wrId: BigInt(100 + i), sgList: [B.mr.sge(i * 64, 64)] });
    for (let i = 0; i < 4; i++) {
      A.mr.bytes[i * 64] = i + 1;
      A.qp.postSend({ wrId: BigInt(i), opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [A.mr.sge(i * 64, 64)] });
    }
    const wb: { status: number; wrId: bigint }[] = [];
    for (let i = 0; i < 4; i++) wb.push(await B.cq.next());
    expect(wb.map((w) => [w.status, w.wrId])).toEqual([0, 1, 2, 3].map((i) => [WcStatus.SUCCESS, BigInt(100 + i)]));
    expect([0, 1, 2, 3].map((i) => B.mr.bytes[i * 64])).toEqual([1, 2, 3, 4]);
    const wa: { status: number; wrId: bigint }[] = [];
    for (let i = 0; i < 4; i++) wa.push(await A.cq.next());
    expect(wa.map((w) => [w.status, w.wrId])).toEqual([0, 1, 2, 3].map((i) => [WcStatus.SUCCESS, BigInt(i)]));
    expect(dropped).toBeGreaterThanOrEqual(1);
    expect(A.d.queryCounters().completer_retry_err ?? 0).toBeGreaterThanOrEqual(1);
    expect(la.stats.sendErrors).toBe(0);
  });
});

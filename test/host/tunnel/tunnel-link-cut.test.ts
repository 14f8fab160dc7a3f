// TunnelLink's receive into the device's batch slots (host/core/tunnel/link.ts, toRecord): a
// datagram longer than a slot (the HELLO's max payload, which the gateway never exceeds) is cut at
// the slot, flagged TRUNCATED, and dropped by the device as too long; nothing lands past its slot,
// and the datagrams around it in the same frame are delivered. Two tunnel devices, the test playing
// the gateway between their scripted WebSockets: A (max payload 4188) sends UD SENDs to B, whose
// HELLO says 128 — B's slots are 128 bytes, so a SEND of 104 B (BTH 12 + DETH 8 + 104 + ICRC 4)
// fills one exactly and a SEND of 108 B is 4 bytes too long.
import { afterEach, describe, expect, it } from "vitest";
import { coreModule } from "../../../host/node/wasm-source.js";
import {
  emitBatch, emitData, emitHello, FrameKind, openTunnelDeviceWith, parseFrame, TUNNEL_VERSION_BATCH, type DataFrame, type TunnelDevice,
} from "../../../host/core/tunnel/index.js";
import { Access, QpType, SendFlags, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import type { QueuePair } from "../../../host/core/verbs/qp.js";
import type { CompletionQueue } from "../../../host/core/verbs/cq.js";
import type { MemoryRegion } from "../../../host/core/verbs/mr.js";
import { FakeWs } from "../support/fake-ws.js";

const A_ADDR = "192.0.2.1";
const B_ADDR = "192.0.2.2";
const SLOT = 128;
const FITS = SLOT - 24; // one datagram of exactly SLOT bytes
const TOO_LONG = FITS + 4;
const QKEY = 0x11111111;
const GRH = 40;

interface End {
  t: TunnelDevice;
  ws: FakeWs;
  qp: QueuePair;
  cq: CompletionQueue;
  mr: MemoryRegion;
}

const open: TunnelDevice[] = [];
afterEach(() => {
  while (open.length) open.pop()!.device.close();
});

async function end(address: string, maxPayload: number, qpnBase: number, version = 1): Promise<End> {
  const ws = new FakeWs();
  const hello = { address, port: 4791, ipIdPolicy: 0, dontFragment: true, maxPayload, qpnBase, qpnCount: 64, clientId: 1 };
  const p = openTunnelDeviceWith(await coreModule(), ws, {});
  ws.message(emitHello(version === TUNNEL_VERSION_BATCH ? { ...hello, version, maxFrame: 1 << 16 } : hello));
  const t = await p;
  open.push(t);
  const pd = t.device.allocPd();
  const cq = t.device.createCq(64);
  const qp = pd.createQp({ qpType: QpType.UD, sendCq: cq, recvCq: cq, cap: { maxSendWr: 16, maxRecvWr: 16, maxSendSge: 1, maxRecvSge: 1 } });
  connectQp(qp, undefined, { sqPsn: 0, qkey: QKEY });
  const mr = pd.regMr(1 << 16, Access.LOCAL_WRITE);
  return { t, ws, qp, cq, mr };
}

/** A UD SEND of `len` bytes (each byte `fill`) from A to B; returns the datagram A's link sent (BTH … ICRC). */
async function sendFromA(a: End, b: End, len: number, fill: number): Promise<Uint8Array> {
  new Uint8Array(a.t.device.memory.buffer, Number(a.mr.addr), len).fill(fill);
  const ah = a.qp.pd.createAh({ grh: { dgid: b.t.device.queryGid(0), sgidIndex: 0, hopLimit: 64 }, isGlobal: true, portNum: 1 });
  const before = a.ws.sent.length;
  a.qp.postSend({ wrId: BigInt(fill), opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [a.mr.sge(0, len)], ud: { ah, remoteQpn: b.qp.qpNum, remoteQkey: QKEY } });
  expect((await a.cq.next()).status).toBe(WcStatus.SUCCESS);
  await new Promise((r) => setTimeout(r, 0)); // a version-2 link sends its BATCH after the turn
  const frames = a.ws.sent.slice(before).map((f) => parseFrame(f));
  const data = frames.flatMap((f) => (f.kind === FrameKind.BATCH ? f.datagrams : f.kind === FrameKind.DATA ? [f] : [])) as DataFrame[];
  expect(data).toHaveLength(1);
  expect(data[0]!.address).toBe(B_ADDR);
  return data[0]!.payload.slice();
}

/** B's receive slots: where each datagram of a frame lands (record i in slot i). */
function slotsOf(b: End): { at: (i: number) => Uint8Array } {
  const area = b.t.device.port!.rxBatchArea(1, 1, 64)!; // the area the link carved (rx_batch_init hands back the same)
  expect(area.slotSize).toBe(SLOT);
  return { at: (i) => new Uint8Array(b.t.device.memory.buffer, area.slots + i * area.slotSize, area.slotSize) };
}

describe("TunnelLink: a datagram longer than a receive slot", () => {
  it("in a DATA frame: cut at the slot, dropped as too_long, nothing written past its slot; one that fills the slot is delivered", async () => {
    const a = await end(A_ADDR, 4188, 0x1000);
    const b = await end(B_ADDR, SLOT, 0x2000);
    const slots = slotsOf(b);
    const fits = await sendFromA(a, b, FITS, 0x11);
    const long = await sendFromA(a, b, TOO_LONG, 0x22);
    expect([fits.length, long.length]).toEqual([SLOT, SLOT + 4]);
    for (let i = 0; i < 4; i++) b.qp.postRecv({ wrId: BigInt(i), sgList: [b.mr.sge(i * 256, 256)] });

    slots.at(1).fill(0x5a);
    b.ws.message(emitData(A_ADDR, 4791, 0, [long]));
    expect(b.t.device.port!.stats.drops).toEqual({ too_long: 1 });
    expect(slots.at(0)).toEqual(long.subarray(0, SLOT));
    expect(slots.at(1).every((x) => x === 0x5a)).toBe(true);
    expect(b.cq.poll(4)).toEqual([]);

    b.ws.message(emitData(A_ADDR, 4791, 0, [fits]));
    const wc = await b.cq.next();
    expect([wc.status, wc.byteLen]).toEqual([WcStatus.SUCCESS, GRH + FITS]);
    expect(new Uint8Array(b.t.device.memory.buffer, Number(b.mr.addr) + GRH, FITS).every((x) => x === 0x11)).toBe(true);
    expect(b.t.link.stats.received).toBe(2);
    expect(b.t.device.port!.stats).toMatchObject({ rxDatagrams: 2, rxDropped: 1, drops: { too_long: 1 } });
  });

  it("in a BATCH: the long one between two good ones is dropped alone; its neighbours' slots hold their own bytes and complete", async () => {
    const a = await end(A_ADDR, 4188, 0x1000, TUNNEL_VERSION_BATCH);
    const b = await end(B_ADDR, SLOT, 0x2000, TUNNEL_VERSION_BATCH);
    const slots = slotsOf(b);
    const first = await sendFromA(a, b, FITS, 0x31);
    const long = await sendFromA(a, b, TOO_LONG, 0x32);
    const last = await sendFromA(a, b, 16, 0x33);
    for (let i = 0; i < 4; i++) b.qp.postRecv({ wrId: BigInt(i), sgList: [b.mr.sge(i * 256, 256)] });

    b.ws.message(emitBatch([first, long, last].map((payload) => ({ address: A_ADDR, port: 4791, ipId: 0, payload }))));
    expect(b.t.device.port!.stats.drops).toEqual({ too_long: 1 });
    expect(slots.at(0)).toEqual(first);
    expect(slots.at(1)).toEqual(long.subarray(0, SLOT));
    expect(slots.at(2).subarray(0, last.length)).toEqual(last);
    const wcs = [await b.cq.next(), await b.cq.next()];
    expect(wcs.map((w) => [w.wrId, w.status, w.byteLen])).toEqual([
      [0n, WcStatus.SUCCESS, GRH + FITS],
      [1n, WcStatus.SUCCESS, GRH + 16],
    ]);
    const got = (i: number, n: number) => new Uint8Array(b.t.device.memory.buffer, Number(b.mr.addr) + i * 256 + GRH, n);
    expect(got(0, FITS).every((x) => x === 0x31)).toBe(true);
    expect(got(1, 16).every((x) => x === 0x33)).toBe(true);
    expect(b.cq.poll(4)).toEqual([]);
  });
});

// The order of a turn's datagrams in a version-2 BATCH (TunnelLink.holdAcks): a tunnel device that
// receives a request and answers it in the continuation of its completion sends the answer first
// and the ACK of the request after it, in one frame. The gateway forwards a frame's datagrams in
// order, and a peer polling its socket can take the first alone: the request first saves it a turn
// on the ACK before it sees the request. Two RC tunnel devices, the test playing the gateway; the
// control (ackAfterRequests false) shows the order the device makes them in: the ACK first.
import { afterEach, describe, expect, it } from "vitest";
import { coreModule } from "../../../host/node/wasm-source.js";
import {
  emitBatch, emitHello, FrameKind, openTunnelDeviceWith, parseFrame, TUNNEL_VERSION_BATCH, type BatchFrame, type DataFrame, type TunnelDevice,
} from "../../../host/core/tunnel/index.js";
import { Access, Mtu, QpType, SendFlags, WcOpcode, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import type { QueuePair } from "../../../host/core/verbs/qp.js";
import type { CompletionQueue } from "../../../host/core/verbs/cq.js";
import type { MemoryRegion } from "../../../host/core/verbs/mr.js";
import { FakeWs } from "../support/fake-ws.js";
import { setImmediate as turnEnd } from "node:timers/promises";

const RC_SEND_ONLY = 0x04;
const RC_ACKNOWLEDGE = 0x11;
const ACCESS = Access.LOCAL_WRITE;
/** After this turn's microtasks and nextTicks (the port's deferred flush, then the link's BATCH). */

interface End { t: TunnelDevice; ws: FakeWs; qp: QueuePair; cq: CompletionQueue; mr: MemoryRegion; address: string; gid: string }

const open: TunnelDevice[] = [];
afterEach(() => {
  while (open.length) open.pop()!.device.close();
});

async function end(address: string, qpnBase: number): Promise<End> {
  const ws = new FakeWs();
  const p = openTunnelDeviceWith(await coreModule(), ws, {});
  ws.message(emitHello({ address, port: 4791, ipIdPolicy: 0, dontFragment: true, maxPayload: 4188, qpnBase, qpnCount: 64, clientId: 1, version: TUNNEL_VERSION_BATCH, maxFrame: 1 << 16 }));
  const t = await p;
  open.push(t);
  const pd = t.device.allocPd();
  const cq = t.device.createCq(64);
  const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 16, maxRecvWr: 16, maxSendSge: 1, maxRecvSge: 1 } });
  const mr = pd.regMr(1 << 16, ACCESS);
  return { t, ws, qp, cq, mr, address, gid: `::ffff:${address}` };
}

/** The datagrams of one frame a link sent (a BATCH, or a lone datagram's DATA). */
function datagramsOf(f: Uint8Array): DataFrame[] {
  const frame = parseFrame(f);
  if (frame.kind === FrameKind.BATCH) return (frame as BatchFrame).datagrams;
  expect(frame.kind).toBe(FrameKind.DATA);
  return [frame as DataFrame];
}

/** The BTH opcodes of every datagram in the frames `e` sent from index `from` on, frame by frame. */
function opcodesSent(e: End, from: number): number[][] {
  return e.ws.sent.slice(from).map((f) => datagramsOf(f).map((d) => d.payload[0]!));
}

/** Hands every frame `from` sent since `since` to `to` as the gateway would: one BATCH each, from `from`'s address. */
function forward(from: End, to: End, since: number): number {
  for (const f of from.ws.sent.slice(since)) {
    to.ws.message(emitBatch(datagramsOf(f).map((d) => ({ address: from.address, port: 4791, ipId: d.ipId, payload: d.payload }))));
  }
  return from.ws.sent.length;
}

describe("TunnelLink: a turn's answer and the ACK it owes, in one BATCH", () => {
  it("the answer posted from the completion's continuation leaves before the ACK of the request; without the hold the ACK is first", async () => {
    const a = await end("192.0.2.1", 0x1000);
    const b = await end("192.0.2.2", 0x2000);
    connectQp(a.qp, { qpNum: b.qp.qpNum, psn: 100, gid: b.gid, port: 4791 }, { sqPsn: 500, pathMtu: Mtu.MTU_1024, qpAccessFlags: ACCESS });
    connectQp(b.qp, { qpNum: a.qp.qpNum, psn: 500, gid: a.gid, port: 4791 }, { sqPsn: 100, pathMtu: Mtu.MTU_1024, qpAccessFlags: ACCESS });
    for (let i = 0; i < 8; i++) {
      a.qp.postRecv({ wrId: BigInt(i), sgList: [a.mr.sge(4096, 64)] });
      b.qp.postRecv({ wrId: BigInt(i), sgList: [b.mr.sge(4096, 64)] });
    }
    // B's application: each SEND it receives (two), it answers with a SEND from the completion's continuation
    const answers = (async () => {
      for (let n = 0; n < 2; ) {
        const wc = await b.cq.next();
        expect(wc.status).toBe(WcStatus.SUCCESS);
        if (wc.opcode !== WcOpcode.RECV) continue;
        n++;
        b.qp.postSend({ wrId: 9n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [b.mr.sge(0, 16)] });
      }
    })();

    const pingPong = async (): Promise<number[][]> => {
      const aFrom = a.ws.sent.length;
      a.qp.postSend({ wrId: 1n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [a.mr.sge(0, 16)] });
      await turnEnd();
      const bFrom = b.ws.sent.length;
      const aNext = forward(a, b, aFrom); // B receives the request; its application answers in the same turn
      await turnEnd();
      const got = opcodesSent(b, bFrom);
      forward(b, a, bFrom);
      await turnEnd();
      // A: its SEND acknowledged, B's answer received; A's ACK of the answer goes back to B
      const wcs = a.cq.poll(4);
      expect(wcs.map((w) => `${w.opcode}:${w.status}`).sort()).toEqual([`${WcOpcode.SEND}:${WcStatus.SUCCESS}`, `${WcOpcode.RECV}:${WcStatus.SUCCESS}`].sort());
      forward(a, b, aNext);
      await turnEnd();
      return got;
    };

    expect(b.t.link.holdAcks).toBe(true);
    expect(await pingPong()).toEqual([[RC_SEND_ONLY, RC_ACKNOWLEDGE]]);
    b.t.link.ackAfterRequests = false;
    expect(b.t.link.holdAcks).toBe(false);
    expect(await pingPong()).toEqual([[RC_ACKNOWLEDGE, RC_SEND_ONLY]]);
    await answers;
  });
});

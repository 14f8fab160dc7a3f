import { describe, expect, it } from "vitest";
import { QpState, type CompletionQueue } from "../../../host/core/verbs/index.js";
import { Cqe, CqRec, Ring } from "../../../host/core/verbs/abi.js";
import { expectVerbsError, rcQp, smallDevice, tick } from "../support/verbs-helpers.js";

async function fixture() {
  const dev = await smallDevice();
  const pd = dev.allocPd();
  const ch = dev.createCompChannel();
  const cq = dev.createCq(16, { channel: ch });
  const qp = rcQp(pd, cq);
  qp.modify({ qpState: QpState.ERR }); // every post completes at once (WR_FLUSH_ERR)
  return { dev, pd, ch, cq, qp };
}

/** Plays the device: appends a CQE with the given status and solicited mark. */
function deviceCqe(cq: CompletionQueue, status: number, solicited: number): void {
  const m = cq.device.mem;
  const p = m.loadIndex(cq.ring + Ring.PROD);
  const e = cq.ring + Ring.DATA + (p & (cq.cqe - 1)) * Cqe.SIZE;
  m.fill(e, Cqe.SIZE);
  m.setU32(e + Cqe.STATUS, status);
  m.u8[e + Cqe.SOLICITED] = solicited;
  m.storeIndex(cq.ring + Ring.PROD, p + 1);
  cq.device.pump();
}

describe("completion channel (ibv_create_comp_channel, ibv_req_notify_cq, ibv_get_cq_event, ibv_ack_cq_events)", () => {
  it("an armed CQ sends one event for the next completion; re-arming is needed for another", async () => {
    const { ch, cq, qp } = await fixture();
    cq.reqNotify();
    expect(cq.device.mem.u32(cq.rec + CqRec.NOTIFY)).toBe(1);
    const ev = ch.getCqEvent();
    qp.postRecv({ wrId: 1n });
    expect(await ev).toBe(cq);
    expect(cq.unackedEvents).toBe(1);
    cq.ackEvents(1);
    expect(cq.unackedEvents).toBe(0);
    expect(cq.device.mem.u32(cq.rec + CqRec.NOTIFY)).toBe(0);
    qp.postRecv({ wrId: 2n }); // not armed: no event
    await tick();
    expect(ch.pending).toBe(0);
    cq.reqNotify();
    qp.postRecv({ wrId: 3n });
    expect(ch.pending).toBe(1);
    expect(await ch.getCqEvent()).toBe(cq);
    expect(cq.poll(8).map((w) => w.wrId)).toEqual([1n, 2n, 3n]);
  });

  it("completions already in the CQ when it is armed do not fire", async () => {
    const { ch, cq, qp } = await fixture();
    qp.postRecv({ wrId: 1n });
    cq.reqNotify();
    cq.device.pump();
    expect(ch.pending).toBe(0);
    qp.postRecv({ wrId: 2n });
    expect(ch.pending).toBe(1);
  });

  it("solicited-only: fires for a solicited or an error completion, not for a plain success", async () => {
    const { ch, cq } = await fixture();
    cq.reqNotify(true);
    deviceCqe(cq, 0, 0);
    expect(ch.pending).toBe(0);
    deviceCqe(cq, 0, 1);
    expect(ch.pending).toBe(1);
    cq.reqNotify(true);
    deviceCqe(cq, 0, 0);
    deviceCqe(cq, 12, 0); // RETRY_EXC_ERR
    expect(ch.pending).toBe(2);
  });

  it("bad flow: destroying a channel CQs use is EBUSY; comp_vector other than 0, a dead channel (EINVAL)", async () => {
    const { dev, ch, cq, qp } = await fixture();
    expectVerbsError(() => ch.destroy(), "EBUSY", "ibv_destroy_comp_channel");
    expectVerbsError(() => dev.createCq(4, { compVector: 1 }), "EINVAL", "ibv_create_cq");
    const other = (await smallDevice()).createCompChannel();
    expectVerbsError(() => dev.createCq(4, { channel: other }), "EINVAL", "ibv_create_cq");
    qp.destroy();
    cq.destroy();
    expectVerbsError(() => cq.reqNotify(), "EINVAL", "ibv_req_notify_cq");
    ch.destroy();
    expect(() => ch.destroy()).not.toThrow();
    expectVerbsError(() => dev.createCq(4, { channel: ch }), "EINVAL", "ibv_create_cq");
    expectVerbsError(() => void ch.getCqEvent(), "EINVAL", "ibv_get_cq_event");
  });
});

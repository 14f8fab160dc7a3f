import { describe, expect, it } from "vitest";
import { AsyncEvent, Device, EventType, QpState, QpType, WcStatus } from "../../../host/core/verbs/index.js";
import type { VerbsCore } from "../../../host/core/verbs/abi.js";
import { instantiateCore } from "../../../host/core/wasm/instance.js";
import { coreModule } from "../../../host/node/wasm-source.js";
import { expectVerbsError, rcQp, smallDevice, SMALL, tick } from "../support/verbs-helpers.js";

describe("completion queue (ibv_create_cq, ibv_poll_cq, ibv_destroy_cq)", () => {
  it("creates CQs holding at least the cqe asked for", async () => {
    const dev = await smallDevice();
    for (const n of [1, 3, 100, 4096]) {
      const cq = dev.createCq(n);
      expect(cq.cqe).toBeGreaterThanOrEqual(n);
      expect(cq.cqe & (cq.cqe - 1)).toBe(0);
      expect(cq.poll(16)).toEqual([]);
      cq.destroy();
    }
  });

  it("bad flow: cqe outside 1..max_cqe is EINVAL (rxe_cq_chk_attr)", async () => {
    const dev = await smallDevice();
    const max = dev.query().maxCqe;
    expectVerbsError(() => dev.createCq(0), "EINVAL", "ibv_create_cq");
    expectVerbsError(() => dev.createCq(-1), "EINVAL", "ibv_create_cq");
    expectVerbsError(() => dev.createCq(max + 1), "EINVAL", "ibv_create_cq");
    expectVerbsError(() => dev.createCq(2.5), "EINVAL", "ibv_create_cq");
    dev.createCq(max).destroy();
  });

  it("bad flow: too many CQs (EINVAL, rxe_pool) and rings that do not fit (ENOMEM)", async () => {
    const dev = await smallDevice({ maxCq: 2, ringArenaBytes: 1 << 20, maxCqe: 32767 });
    const a = dev.createCq(4);
    expectVerbsError(() => dev.createCq(4096 * 4), "ENOMEM", "ibv_create_cq"); // 16384 x 64 B > 1 MiB
    const b = dev.createCq(4);
    expectVerbsError(() => dev.createCq(4), "EINVAL", "ibv_create_cq");
    a.destroy();
    b.destroy();
  });

  it("bad flow: destroying a CQ a QP uses is EBUSY; after the QP it works; twice is a no-op", async () => {
    const dev = await smallDevice();
    const pd = dev.allocPd();
    const scq = dev.createCq(8);
    const rcq = dev.createCq(8);
    const qp = pd.createQp({ qpType: QpType.RC, sendCq: scq, recvCq: rcq });
    expectVerbsError(() => scq.destroy(), "EBUSY", "ibv_destroy_cq");
    expectVerbsError(() => rcq.destroy(), "EBUSY", "ibv_destroy_cq");
    qp.destroy();
    scq.destroy();
    rcq.destroy();
    expect(() => scq.destroy()).not.toThrow();
    expectVerbsError(() => scq.poll(), "EINVAL", "ibv_poll_cq");
  });

  it("polls without calling into the device", async () => {
    const calls: string[] = [];
    const raw = (await instantiateCore(await coreModule())) as VerbsCore;
    const core = Object.fromEntries(
      Object.entries(raw).map(([k, v]) => [
        k,
        typeof v === "function" ? (...a: number[]) => (calls.push(k), (v as (...x: number[]) => number)(...a)) : v,
      ]),
    ) as VerbsCore;
    const dev = new Device(core, SMALL);
    const pd = dev.allocPd();
    const cq = dev.createCq(16);
    const qp = rcQp(pd, cq);
    qp.modify({ qpState: QpState.ERR });
    qp.postRecv([{ wrId: 1n }, { wrId: 2n }]);
    calls.length = 0;
    const wcs = cq.poll(8);
    expect(wcs.map((w) => w.wrId)).toEqual([1n, 2n]);
    expect(calls).toEqual([]);
  });

  it("overflow: never overwrites unread CQEs, raises CQ_ERR once, counts it", async () => {
    const dev = await smallDevice();
    const pd = dev.allocPd();
    const cq = dev.createCq(4);
    const qp = rcQp(pd, cq);
    const events: AsyncEvent[] = [];
    dev.addEventListener("event", (e) => events.push(e as AsyncEvent));
    qp.modify({ qpState: QpState.INIT, pkeyIndex: 0, portNum: 1, qpAccessFlags: 0 });
    qp.postRecv(Array.from({ length: 8 }, (_, i) => ({ wrId: BigInt(i) })));
    qp.modify({ qpState: QpState.ERR });
    await tick();
    expect(cq.overflowed).toBe(true);
    expect(events.map((e) => e.eventName)).toEqual(["CQ_ERR"]);
    expect(events[0]!.eventType).toBe(EventType.CQ_ERR);
    expect(events[0]!.cq).toBe(cq);
    const wcs = cq.poll(16);
    expect(wcs.map((w) => w.wrId)).toEqual([0n, 1n, 2n, 3n]);
    expect(wcs.every((w) => w.status === WcStatus.WR_FLUSH_ERR && w.qpNum === qp.qpNum)).toBe(true);
    const c = dev.queryCounters();
    expect(c.cq_overflow).toBe(1);
    expect(c.flushed_wqes).toBe(8);
  });

  it("next() resolves when the device produces a completion", async () => {
    const dev = await smallDevice();
    const pd = dev.allocPd();
    const cq = dev.createCq(16);
    const qp = rcQp(pd, cq);
    qp.modify({ qpState: QpState.ERR });
    const waiting = cq.next();
    let done = false;
    void waiting.then(() => (done = true));
    await tick();
    expect(done).toBe(false);
    qp.postSend({ wrId: 77n, opcode: 2 });
    const wc = await waiting;
    expect(wc.wrId).toBe(77n);
    expect(wc.status).toBe(WcStatus.WR_FLUSH_ERR);
    qp.postRecv({ wrId: 78n });
    expect((await cq.next()).wrId).toBe(78n); // already there: resolves from a poll
  });

  it("a next() still waiting when the CQ is destroyed rejects with EINVAL", async () => {
    const dev = await smallDevice();
    const cq = dev.createCq(4);
    const waiting = cq.next();
    cq.destroy();
    await expect(waiting).rejects.toMatchObject({ code: "EINVAL", verb: "ibv_get_cq_event" });
  });

  it("resizes (ibv_resize_cq) keeping unpolled completions in order; bad sizes are EINVAL", async () => {
    const dev = await smallDevice();
    const pd = dev.allocPd();
    const cq = dev.createCq(4);
    const qp = rcQp(pd, cq);
    qp.modify({ qpState: QpState.ERR });
    qp.postRecv([{ wrId: 1n }, { wrId: 2n }, { wrId: 3n }]);
    expect(cq.poll(1).map((w) => w.wrId)).toEqual([1n]);
    qp.postRecv([{ wrId: 4n }, { wrId: 5n }]); // 4 waiting, the ring has wrapped
    expectVerbsError(() => cq.resize(2), "EINVAL", "ibv_resize_cq");
    expectVerbsError(() => cq.resize(0), "EINVAL", "ibv_resize_cq");
    expectVerbsError(() => cq.resize(dev.query().maxCqe + 1), "EINVAL", "ibv_resize_cq");
    const before = cq.ring;
    cq.resize(100);
    expect(cq.cqe).toBe(128);
    expect(cq.ring).not.toBe(before);
    qp.postRecv(Array.from({ length: 10 }, (_, i) => ({ wrId: BigInt(6 + i) })));
    expect(cq.poll(64).map((w) => w.wrId)).toEqual(Array.from({ length: 14 }, (_, i) => BigInt(2 + i)));
    cq.resize(4);
    expect(cq.cqe).toBe(4);
    qp.destroy();
    cq.destroy();
    expectVerbsError(() => cq.resize(8), "EINVAL", "ibv_resize_cq");
  });
});

import { openTestDevice } from "./verbs-device.include";
import { EBUSY, EINVAL } from "../../assembly/mem/errno";
import { pdAlloc, pdDealloc } from "../../assembly/mem/pd";
import { counterValue, Counter } from "../../assembly/verbs/counters";
import { cqCommit, cqCreate, cqDestroy, cqFind, cqReserve, CQ_RING, CQE_WR_ID } from "../../assembly/verbs/cq";
import { eventsRing, raiseEvent, EVENT_CQ_ERR, EVENT_SQ_DRAINED } from "../../assembly/verbs/events";
import { qpCreate, qpDestroy, qpFind, qpState, INIT_QP_TYPE, INIT_RECV_CQ, INIT_SEND_CQ, INIT_MAX_SEND_WR, INIT_MAX_RECV_WR, INIT_MAX_SEND_SGE, QP_NUM, QP_SQ, ATTR_QP_STATE } from "../../assembly/verbs/qp";
import { qpModify } from "../../assembly/verbs/qp_modify";
import { QP_STATE } from "../../assembly/verbs/enums";
import { nextPow2 } from "../../assembly/mem/pow2";
import { ringCap, ringCons, ringCount, ringEntry, ringProd, ringSetCons, RING_CONS, RING_PROD, RING_DATA } from "../../assembly/mem/ring";
import { devArgs } from "../../assembly/verbs/device";

openTestDevice();

describe("rings", () => {
  it("rounds capacities to powers of two", () => {
    expect(nextPow2(0)).toBe(1);
    expect(nextPow2(1)).toBe(1);
    expect(nextPow2(3)).toBe(4);
    expect(nextPow2(32767)).toBe(32768);
    expect(nextPow2(32768)).toBe(32768);
  });
  it("keeps producer and consumer on separate 64-byte lines, entries after them", () => {
    expect(RING_PROD / 64).not.toBe(RING_CONS / 64);
    expect(RING_PROD % 4).toBe(0);
    expect(RING_DATA).toBeGreaterThanOrEqual(RING_CONS + 64);
  });
});

describe("CQ ring", () => {
  it("never overwrites unread entries: reserve fails when full, counts and raises CQ_ERR", () => {
    const h = <u32>cqCreate(2);
    const cq = cqFind(h);
    const r = <usize>load<u32>(cq + CQ_RING);
    expect(ringCap(r)).toBe(2);
    for (let i: u64 = 0; i < 2; i++) {
      const e = cqReserve(cq);
      expect(e).not.toBe(0);
      store<u64>(e + CQE_WR_ID, i + 100);
      cqCommit(cq);
    }
    const evBefore = ringProd(eventsRing());
    const before = counterValue(Counter.CQ_OVERFLOW);
    expect(cqReserve(cq)).toBe(0);
    expect(counterValue(Counter.CQ_OVERFLOW)).toBe(before + 1);
    expect(ringProd(eventsRing())).toBe(evBefore + 1);
    expect(load<u32>(ringEntry(eventsRing(), evBefore))).toBe(EVENT_CQ_ERR);
    expect(load<u64>(ringEntry(r, 0) + CQE_WR_ID)).toBe(100);
    expect(load<u64>(ringEntry(r, 1) + CQE_WR_ID)).toBe(101);
    ringSetCons(r, ringCons(r) + 1); // the host polled one
    expect(cqReserve(cq)).not.toBe(0);
    ringSetCons(eventsRing(), ringProd(eventsRing()));
    expect(cqDestroy(h)).toBe(0);
    expect(cqDestroy(h)).toBe(-EINVAL);
  });
});

describe("event ring", () => {
  it("drops and counts events when full instead of overwriting", () => {
    const r = eventsRing();
    ringSetCons(r, ringProd(r));
    const lost = counterValue(Counter.EVENTS_LOST);
    for (let i: u32 = 0; i < ringCap(r) + 3; i++) raiseEvent(EVENT_SQ_DRAINED, i, 0);
    expect(ringCount(r)).toBe(ringCap(r));
    expect(counterValue(Counter.EVENTS_LOST)).toBe(lost + 3);
    expect(load<u32>(ringEntry(r, ringCons(r)) + 4)).toBe(0); // the oldest is still there
    ringSetCons(r, ringProd(r));
  });
});

describe("QP records", () => {
  it("creates in RESET, holds PD and CQs busy, and frees its rings on destroy", () => {
    const pd = <u32>pdAlloc();
    const cq = <u32>cqCreate(8);
    const a = devArgs();
    memory.fill(a, 0, 64);
    store<u32>(a + INIT_QP_TYPE, 2);
    store<u32>(a + INIT_SEND_CQ, cq);
    store<u32>(a + INIT_RECV_CQ, cq);
    store<u32>(a + INIT_MAX_SEND_WR, 5);
    store<u32>(a + INIT_MAX_RECV_WR, 5);
    store<u32>(a + INIT_MAX_SEND_SGE, 1);
    const h = qpCreate(pd, a);
    expect(h).toBeGreaterThan(0);
    const q = qpFind(<u32>h);
    expect(qpState(q)).toBe(0);
    expect(load<u32>(q + QP_NUM)).toBeGreaterThanOrEqual(17);
    expect(ringCap(<usize>load<u32>(q + QP_SQ))).toBe(8);
    expect(pdDealloc(pd)).toBe(-EBUSY);
    expect(cqDestroy(cq)).toBe(-EBUSY);
    // RESET -> RTS is not a transition
    store<u32>(a + ATTR_QP_STATE, 3);
    expect(qpModify(<u32>h, QP_STATE, a)).toBe(-EINVAL);
    expect(qpDestroy(<u32>h)).toBe(0);
    expect(qpFind(<u32>h)).toBe(0);
    expect(cqDestroy(cq)).toBe(0);
    expect(pdDealloc(pd)).toBe(0);
  });
});

import { describe, expect, it } from "vitest";
import { AsyncEvent, EventType, QpState } from "../../../host/core/verbs/index.js";
import { rcQp, smallDevice, tick, toRts } from "../support/verbs-helpers.js";

describe("async events", () => {
  it("arrive on a microtask after the verb returns, through on() and addEventListener alike; off() unsubscribes", async () => {
    const dev = await smallDevice();
    const pd = dev.allocPd();
    const cq = dev.createCq(8);
    const a: string[] = [];
    const b: string[] = [];
    const fa = (e: AsyncEvent) => a.push(e.eventName);
    dev.on("event", fa);
    dev.addEventListener("event", (e) => b.push((e as AsyncEvent).eventName));
    const qp = rcQp(pd, cq);
    toRts(qp);
    qp.modify({ qpState: QpState.SQD });
    expect(a).toEqual([]); // not synchronously inside the verb
    await tick();
    expect(a).toEqual(["SQ_DRAINED"]);
    expect(b).toEqual(["SQ_DRAINED"]);
    dev.off("event", fa);
    qp.modify({ qpState: QpState.RTS });
    qp.modify({ qpState: QpState.SQD });
    await tick();
    expect(a).toEqual(["SQ_DRAINED"]);
    expect(b).toEqual(["SQ_DRAINED", "SQ_DRAINED"]);
  });

  it("are Event objects of type 'event' with the element resolved to its object", async () => {
    const dev = await smallDevice();
    const pd = dev.allocPd();
    const cq = dev.createCq(1);
    const qp = rcQp(pd, cq);
    const got: AsyncEvent[] = [];
    dev.on("event", (e) => got.push(e));
    qp.modify({ qpState: QpState.ERR });
    qp.postRecv([{ wrId: 1n }, { wrId: 2n }]);
    await tick();
    expect(got.length).toBe(1);
    expect(got[0]).toBeInstanceOf(Event);
    expect(got[0]!.type).toBe("event");
    expect(got[0]!.eventType).toBe(EventType.CQ_ERR);
    expect(got[0]!.cq === cq).toBe(true);
    expect(got[0]!.element).toBe(cq.handle);
  });
});

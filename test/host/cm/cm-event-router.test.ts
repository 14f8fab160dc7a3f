// CmEventRouter: one channel's events handed to the waits that match them, the rest held in order.
import { describe, expect, it } from "vitest";
import { CmEventRouter, EventChannel, RdmaCmEvent, RdmaCmEventType as E, type RdmaCmId } from "../../../host/core/cm/index.js";

const idA = { name: "a" } as unknown as RdmaCmId;
const idB = { name: "b" } as unknown as RdmaCmId;
const channel = (): EventChannel => new EventChannel(() => { throw new Error("no IDs here"); }, () => {});
const ev = (id: RdmaCmId, event: number): RdmaCmEvent => new RdmaCmEvent({ id, event: event as never });
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("CmEventRouter", () => {
  it("hands each event to the wait for its ID and kind, holds the rest in order and acks every one", async () => {
    const ch = channel();
    const r = new CmEventRouter(ch);
    const forB = r.wait(idB, [E.ESTABLISHED], 5000);
    const a1 = ev(idA, E.ADDR_RESOLVED), a2 = ev(idA, E.ROUTE_RESOLVED), b = ev(idB, E.ESTABLISHED);
    ch.push(a1);
    ch.push(a2);
    ch.push(b);
    expect(await forB).toBe(b);
    expect(await r.next((e) => e.id === idA, 100)).toBe(a1);
    expect(await r.next((e) => e.id === idA, 100)).toBe(a2);
    expect([a1, a2, b].every((e) => e.isAcked)).toBe(true);
    r.stop();
  });

  it("ends a wait with undefined after its time, and every wait under way once stopped", async () => {
    const ch = channel();
    const r = new CmEventRouter(ch);
    expect(await r.wait(idA, [E.ESTABLISHED], 20)).toBeUndefined();
    ch.push(ev(idA, E.DISCONNECTED));
    await tick();
    // an event of another kind stays held
    expect(await r.wait(idA, [E.ESTABLISHED], 20)).toBeUndefined();
    const pending = r.next((e) => e.id === idB);
    r.stop();
    expect(await pending).toBeUndefined();
    expect((await r.next((e) => e.event === E.DISCONNECTED))?.id).toBe(idA);
  });

  it("races another wait: the event wins if first, else it is held for the next wait", async () => {
    const ch = channel();
    const r = new CmEventRouter(ch);
    const isDis = (e: RdmaCmEvent): boolean => e.id === idA && e.event === E.DISCONNECTED;
    let done!: (v: string) => void;
    const other = new Promise<string>((res) => (done = res));
    const racing = r.race(other, isDis);
    const d1 = ev(idA, E.DISCONNECTED);
    ch.push(d1);
    expect(await racing).toBe(d1);
    // the other wait is still there to be taken
    done("wc");
    expect(await r.race(other, isDis)).toBe("wc");
    const d2 = ev(idA, E.DISCONNECTED);
    ch.push(d2);
    await tick();
    expect(await r.race(new Promise(() => {}), isDis)).toBe(d2);
    r.stop();
  });

  it("an event that comes as the other wait wins (the pump takes it before the race has dropped its wait) is held, not lost with that race", async () => {
    const ch = channel();
    const r = new CmEventRouter(ch);
    const isDis = (e: RdmaCmEvent): boolean => e.id === idA && e.event === E.DISCONNECTED;
    let done!: (v: string) => void;
    const racing = r.race(new Promise<string>((res) => (done = res)), isDis);
    // in one turn: the completion, then the disconnect
    done("wc");
    const d = ev(idA, E.DISCONNECTED);
    ch.push(d);
    expect(await racing).toBe("wc");
    // an rsocket's next wait must see it (else it waits on a connection gone until its retries end)
    expect(await r.next(isDis, 2000)).toBe(d);
    r.stop();
  });

  it("an event that comes as the other wait fails (its CQ destroyed under it) is held, and the failure thrown", async () => {
    const ch = channel();
    const r = new CmEventRouter(ch);
    const isDis = (e: RdmaCmEvent): boolean => e.id === idA && e.event === E.DISCONNECTED;
    let fail!: (e: Error) => void;
    const racing = r.race(new Promise<string>((_res, rej) => (fail = rej)), isDis);
    fail(new Error("CQ destroyed"));
    const d = ev(idA, E.DISCONNECTED);
    ch.push(d);
    await expect(racing).rejects.toThrow("CQ destroyed");
    expect(await r.next(isDis, 2000)).toBe(d);
    r.stop();
  });
});

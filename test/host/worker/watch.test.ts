// The application thread's watch list (host/core/worker/watch.ts): the worker notifies a sleeping
// application only when a ring it waits on moved past the index it published; a list being
// rewritten, too long, or naming an address outside the memory counts as moved.
import { describe, expect, it } from "vitest";
import { Control, WATCH_MAX, WatchList, watchMoved } from "../../../host/core/worker/index.js";
import { DeviceMemory } from "../../../host/core/verbs/memory.js";
import { Ring } from "../../../host/core/abi/index.js";

function setup() {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 4, shared: true });
  const mem = new DeviceMemory(memory);
  const ctl = Control.create();
  // an event ring at 1024 and CQ rings every 1024 bytes after it
  const ring = (i: number) => 1024 * (i + 1);
  const set = (r: number, prod: number, cons: number) => {
    mem.storeIndex(r + Ring.PROD, prod);
    mem.storeIndex(r + Ring.CONS, cons);
  };
  return { mem, ctl, ring, set, list: new WatchList(ctl, mem, () => ring(0)) };
}

describe("watch list", () => {
  it("nothing moved: no notify; a watched CQ's producer passing what was consumed: notify", () => {
    const { mem, ctl, ring, set, list } = setup();
    set(ring(0), 3, 3);
    set(ring(1), 10, 10);
    const cq = { ring: ring(1) };
    list.watch(cq, true);
    expect(list.publish()).toBe(false);
    expect(watchMoved(ctl, mem)).toBe(false);
    mem.storeIndex(ring(1) + Ring.PROD, 11);
    expect(watchMoved(ctl, mem)).toBe(true);
    // consumed and published again: quiet
    mem.storeIndex(ring(1) + Ring.CONS, 11);
    expect(list.publish()).toBe(false);
    expect(watchMoved(ctl, mem)).toBe(false);
  });

  it("a CQ nobody waits on does not wake; the event ring always does", () => {
    const { mem, ctl, ring, set, list } = setup();
    set(ring(0), 0, 0);
    set(ring(2), 5, 5);
    list.publish();
    mem.storeIndex(ring(2) + Ring.PROD, 6);
    expect(watchMoved(ctl, mem)).toBe(false);
    mem.storeIndex(ring(0) + Ring.PROD, 1);
    expect(watchMoved(ctl, mem)).toBe(true);
  });

  it("publish says so when a watched ring already holds what the application has not consumed", () => {
    const { ring, set, list } = setup();
    set(ring(0), 0, 0);
    set(ring(1), 7, 6);
    list.watch({ ring: ring(1) }, true);
    expect(list.publish()).toBe(true);
  });

  it("an unwatched CQ leaves the list", () => {
    const { mem, ctl, ring, set, list } = setup();
    set(ring(0), 0, 0);
    set(ring(1), 1, 1);
    const cq = { ring: ring(1) };
    list.watch(cq, true);
    list.watch(cq, false);
    list.publish();
    mem.storeIndex(ring(1) + Ring.PROD, 2);
    expect(watchMoved(ctl, mem)).toBe(false);
  });

  it("a list being rewritten, too long, or pointing outside the memory: notify", () => {
    const { mem, ctl, ring, set, list } = setup();
    set(ring(0), 0, 0);
    list.publish();
    expect(watchMoved(ctl, mem)).toBe(false);
    const b = ctl.watchBase;
    Atomics.add(ctl.i32, b, 1); // odd sequence: mid-rewrite
    expect(watchMoved(ctl, mem)).toBe(true);
    Atomics.add(ctl.i32, b, 1);
    expect(watchMoved(ctl, mem)).toBe(false);
    for (let i = 1; i <= WATCH_MAX; i++) {
      set(ring(i), 0, 0);
      list.watch({ ring: ring(i) }, true);
    }
    list.publish(); // event ring + WATCH_MAX CQs: one too many
    expect(Atomics.load(ctl.i32, b + 1)).toBe(-1);
    expect(watchMoved(ctl, mem)).toBe(true);
    const far = setup();
    far.set(far.ring(0), 0, 0);
    far.list.watch({ ring: 1 << 30 }, true);
    Atomics.store(far.ctl.i32, far.ctl.watchBase + 1, 0);
    // write the bad address by hand (publish itself would fault reading it)
    Atomics.store(far.ctl.i32, far.ctl.watchBase + 2, 1 << 30);
    Atomics.store(far.ctl.i32, far.ctl.watchBase + 1, 1);
    expect(watchMoved(far.ctl, far.mem)).toBe(true);
  });
});

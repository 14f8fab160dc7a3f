// The control block's layout (host/core/worker/control.ts): every Int32 word has its own place inside
// the block, none inside the call slot's arguments and result, a Float64 counter, the doorbell queue,
// the error text or the watch list.
import { describe, expect, it } from "vitest";
import { Control, CONTROL_BYTES, DB_CAP, ERROR_MAX, F, MAX_ARGS, W, WATCH_MAX } from "../../../host/core/worker/index.js";

describe("the control block's layout", () => {
  it("gives every word its own place in the block, clear of the arguments, the result, the F slots, the doorbell queue, the error text and the watch list", () => {
    const c = Control.create();
    const taken = new Map<number, string>();
    const take = (i32: number, what: string): void => {
      expect(taken.get(i32), `${what} on word ${i32}, taken by ${taken.get(i32)}`).toBeUndefined();
      taken.set(i32, what);
    };
    for (let i = 0; i < MAX_ARGS; i++) take(2 * c.argSlot(i), `arg ${i}`), take(2 * c.argSlot(i) + 1, `arg ${i}`);
    take(2 * c.resultSlot, "result"), take(2 * c.resultSlot + 1, "result");
    for (const [k, f] of Object.entries(F)) take(2 * f, `F.${k}`), take(2 * f + 1, `F.${k}`);
    for (let i = 0; i < DB_CAP; i++) take(c.dbEntry(0) + i, "doorbell queue");
    // the error text: ERROR_MAX UTF-16 units where writeError puts them
    c.writeError("\u{ffff}".repeat(ERROR_MAX + 5));
    expect(c.readError().length).toBe(ERROR_MAX);
    const text = new Uint16Array(c.sab).indexOf(0xffff);
    for (let i = text >> 1; i < (text + ERROR_MAX) >> 1; i++) take(i, "error text");
    for (let i = 0; i < 2 + 2 * WATCH_MAX; i++) take(c.watchBase + i, "watch list");
    for (const [k, w] of Object.entries(W)) {
      expect(w * 4 + 4, `W.${k}`).toBeLessThanOrEqual(CONTROL_BYTES);
      take(w, `W.${k}`);
    }
  });
});

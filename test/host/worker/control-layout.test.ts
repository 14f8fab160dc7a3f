// The control block's layout (host/core/worker/control.ts): every Int32 word has its own place, none
// inside the call slot's arguments and result, a Float64 counter, or the doorbell queue.
import { describe, expect, it } from "vitest";
import { Control, F, MAX_ARGS, W } from "../../../host/core/worker/index.js";

describe("the control block's layout", () => {
  it("gives every word its own place, clear of the arguments, the result, the F slots and the doorbell queue", () => {
    const c = Control.create();
    const taken = new Map<number, string>();
    const take = (i32: number, what: string): void => {
      expect(taken.get(i32), `${what} on word ${i32}, taken by ${taken.get(i32)}`).toBeUndefined();
      taken.set(i32, what);
    };
    for (let i = 0; i < MAX_ARGS; i++) take(2 * c.argSlot(i), `arg ${i}`), take(2 * c.argSlot(i) + 1, `arg ${i}`);
    take(2 * c.resultSlot, "result"), take(2 * c.resultSlot + 1, "result");
    for (const [k, f] of Object.entries(F)) take(2 * f, `F.${k}`), take(2 * f + 1, `F.${k}`);
    for (const [k, w] of Object.entries(W)) {
      expect(w).toBeLessThan(c.dbEntry(0));
      take(w, `W.${k}`);
    }
  });
});

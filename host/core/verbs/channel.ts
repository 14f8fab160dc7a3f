// Completion channel (ibv_comp_channel): where armed CQs (cq.reqNotify) report
// that a completion arrived; getCqEvent() is ibv_get_cq_event as a promise.
import type { CompletionQueue } from "./cq.js";
import type { Device } from "./device.js";
import { fail } from "./errors.js";

export class CompletionChannel {
  private events: CompletionQueue[] = [];
  private waiters: ((cq: CompletionQueue) => void)[] = [];
  private destroyed = false;
  /** @internal CQs created on this channel and not destroyed */
  refs = 0;

  constructor(readonly device: Device) {}

  /** ibv_get_cq_event: resolves with the CQ whose notification fired (re-arm with cq.reqNotify). */
  getCqEvent(): Promise<CompletionQueue> {
    if (this.destroyed) fail("ibv_get_cq_event", "EINVAL", "channel destroyed");
    const cq = this.events.shift();
    if (cq) return Promise.resolve(cq);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Events delivered and not yet taken by getCqEvent(). */
  get pending(): number {
    return this.events.length;
  }

  /** @internal */
  notify(cq: CompletionQueue): void {
    const w = this.waiters.shift();
    if (w) w(cq);
    else this.events.push(cq);
  }

  /** ibv_destroy_comp_channel: EBUSY while CQs use it. A second call does nothing. */
  destroy(): void {
    if (this.destroyed) return;
    if (this.refs > 0) fail("ibv_destroy_comp_channel", "EBUSY", "CQs still use this channel");
    this.destroyed = true;
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }
}

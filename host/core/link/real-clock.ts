// The real clock for devices on real links (UDP, WebSocket): microseconds from
// performance.now(), one platform timer per armed deadline (PacketPort keeps an armed one while the
// deadline moves later, unref'd while nothing is due: holdTimer).
import type { Clock } from "./port.js";

export const realClock: Clock = {
  now: () => performance.now() * 1000,
  setTimer(atUs: number, fn: () => void) {
    const delayMs = Math.max(0, (atUs - performance.now() * 1000) / 1000);
    return setTimeout(fn, delayMs);
  },
  clearTimer(t: unknown) {
    clearTimeout(t as ReturnType<typeof setTimeout>);
  },
  holdTimer(t: unknown, hold: boolean) {
    // Node's Timeout; a browser's timer is a number, which keeps nothing alive
    const n = t as { ref?: () => void; unref?: () => void };
    if (hold) n.ref?.();
    else n.unref?.();
  },
};

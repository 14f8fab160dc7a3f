// Binds a device's packet port to the simulated wire: the wire's virtual clock
// is the device's clock, and a sent datagram is copied onto the wire at once
// (so its TX descriptor is released at once).
import type { Clock, Link, OutgoingDatagram } from "../link/port.js";
import type { SimClock } from "./clock.js";
import type { SimWire } from "./wire.js";

/** A Clock over a SimClock (which cannot cancel events: cancelled timers are skipped). */
export function simClock(clock: SimClock): Clock {
  return {
    now: () => clock.now,
    setTimer(atUs: number, fn: () => void) {
      const t = { live: true };
      clock.schedule(atUs, () => {
        if (t.live) fn();
      });
      return t;
    },
    clearTimer(t: unknown) {
      (t as { live: boolean }).live = false;
    },
  };
}

export class SimLink implements Link {
  constructor(private readonly wire: SimWire) {}

  send(d: OutgoingDatagram, done: () => void): boolean {
    this.wire.sendPieces(d, d.pieces, d.length); // the wire's one copy of the descriptor's pieces
    done();
    return true;
  }
}

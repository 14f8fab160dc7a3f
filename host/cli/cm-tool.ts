// What the rdma_cm tools (rping, ucmatose, perf -R) set up alike: the device's QP1,
// an rdma_cm on it whose timers do not keep the process alive once the tool is done,
// one event channel; and the --timeout that gives up on a run that does not end.
import type { Device } from "../core/verbs/index.js";
import { realClock, type Clock } from "../core/link/index.js";
import { Qp1Transport, openRdmaCm, type EventChannel, type RdmaCm } from "../core/cm/index.js";
import type { Io } from "./command.js";

/** realClock whose timers are unref'd: a CM's retry or timewait timer never holds the process. */
export const cliClock: Clock = {
  ...realClock,
  setTimer(atUs: number, fn: () => void) {
    const t = realClock.setTimer(atUs, fn) as { unref?: () => void };
    t.unref?.();
    return t;
  },
};

export interface ToolCm {
  mad: Qp1Transport;
  rcm: RdmaCm;
  ch: EventChannel;
}

/** The device's QP1, an rdma_cm over it (peers' devices on `udpPort`) and an event channel. */
export function openToolCm(dev: Device, udpPort: number): ToolCm {
  const mad = Qp1Transport.of(dev);
  const rcm = openRdmaCm({ devices: [{ device: dev, mad }], clock: cliClock, peerUdpPort: () => udpPort });
  return { mad, rcm, ch: rcm.createEventChannel() };
}

/**
 * A promise that resolves to `code` after `timeoutMs` (never when 0), saying on stderr that `tool` gave up;
 * `cancel` stops it. Race it against the run.
 */
export function giveUpAfter<T>(timeoutMs: number, tool: string, io: Io, code: T): { expired: Promise<T>; cancel: () => void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<T>((resolve) => {
    if (timeoutMs > 0) {
      timer = setTimeout(() => {
        io.err(`softroce ${tool}: no end after ${timeoutMs / 1000} s, giving up\n`);
        resolve(code);
      }, timeoutMs);
    }
  });
  return { expired, cancel: () => timer !== undefined && clearTimeout(timer) };
}

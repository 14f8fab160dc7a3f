// rdma_cm in tests over real devices: the next event on a channel (acknowledged, and checked to be
// the one expected, within a bound), and the active side's set-up up to connect(): an rdma_cm on the
// device's QP1, an event channel, an id whose address and route resolve toward the server, its QP.
import { expect } from "vitest";
import {
  Qp1Transport, openRdmaCm, PortSpace, RdmaCmEventType as E, type CmQpInitAttr, type EventChannel, type RdmaCm, type RdmaCmEvent, type RdmaCmId,
} from "../../../host/core/cm/index.js";
import type { Clock } from "../../../host/core/link/index.js";
import type { Device, QueuePair } from "../../../host/core/verbs/index.js";
import { openDevice } from "../../../host/node/index.js";

/** The next event on `ch`, acknowledged; the test fails unless it is `want` and comes within `ms`. */
export async function nextCmEvent(ch: EventChannel, want: E, ms = 10_000): Promise<RdmaCmEvent> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, no) => (timer = setTimeout(() => no(new Error(`no event ${want} within ${ms} ms`)), ms)));
  try {
    const e = await Promise.race([ch.getCmEvent(), timeout]);
    e.ack();
    expect(e.event, `${e.eventName} status ${e.status}`).toBe(want);
    return e;
  } finally {
    clearTimeout(timer);
  }
}

/** An rdma_cm on `device` (its QP1) and an event channel of it; `clock` as openRdmaCm's (none: the device's timers). */
export function cmOn(device: Device, clock?: Clock): { cm: RdmaCm; ch: EventChannel } {
  const cm = openRdmaCm({ devices: [{ device, mad: Qp1Transport.of(device) }], ...(clock ? { clock } : {}) });
  return { cm, ch: cm.createEventChannel() };
}

/** A device on `a` and one on `b` (added to `devs`: the caller closes them), an rdma_cm on each over its QP1. */
export async function cmPair(a: string, b: string, devs: Device[]): Promise<{ rcmA: RdmaCm; rcmB: RdmaCm }> {
  const cm = async (address: string) => {
    const d = await openDevice({ address });
    devs.push(d);
    return openRdmaCm({ devices: [{ device: d, mad: Qp1Transport.of(d) }] });
  };
  return { rcmA: await cm(a), rcmB: await cm(b) };
}

/**
 * The active side up to connect(): an RC id on a new rdma_cm of `device` with its address and
 * route resolved toward `to` (2 s each) and its QP created with `cap` (rdma_cm's PD and CQs).
 */
export async function resolvedCmClient(
  device: Device, to: { address: string; port: number }, cap: CmQpInitAttr["cap"], clock?: Clock,
): Promise<{ cm: RdmaCm; ch: EventChannel; id: RdmaCmId; qp: QueuePair }> {
  const { cm, ch } = cmOn(device, clock);
  const id = ch.createId(PortSpace.TCP);
  id.resolveAddr(undefined, to, 2000);
  await nextCmEvent(ch, E.ADDR_RESOLVED);
  id.resolveRoute(2000);
  await nextCmEvent(ch, E.ROUTE_RESOLVED);
  const qp = id.createQp(undefined, { cap });
  return { cm, ch, id, qp };
}

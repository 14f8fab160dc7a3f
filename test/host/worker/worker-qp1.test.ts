// A worker device opens QP1 as a thread device does (openDevice's `gsi`, default true): a CM REQ for a
// port nobody listens on is answered REJ 8 (invalid service ID) at once, as by Linux's ib_cm.
import { afterEach, describe, expect, it } from "vitest";
import { openDevice } from "../../../host/node/index.js";
import { Qp1Transport, RdmaCmEventType as E } from "../../../host/core/cm/index.js";
import { nextCmEvent, resolvedCmClient } from "../support/rdma-cm.js";
import { realClock } from "../../../host/core/link/index.js";
import type { Device } from "../../../host/core/verbs/index.js";

// both on the RoCE port, each on an address of its own: a CM with no listener answers to 4791, as rxe does
const A = "127.0.10.71";
const B = "127.0.10.72";
const opened: Device[] = [];
afterEach(() => {
  for (const d of opened.splice(0)) d.close();
});

async function connectTo(server: Device) {
  const client = await openDevice({ address: A, port: 4791 });
  opened.push(client);
  const { cm, ch, id } = await resolvedCmClient(client, { address: B, port: 7471 }, { maxSendWr: 2, maxRecvWr: 2, maxSendSge: 1, maxRecvSge: 1 }, realClock);
  id.connect({ responderResources: 1, initiatorDepth: 1 });
  return { ch, reqRetries: () => cm.cmOf(client)!.counters.txRetries.REQ };
}

describe("QP1 on a worker device", () => {
  it("is open by default: a REQ from another device gets REJ 8 at once", async () => {
    const server = await openDevice({ address: B, port: 4791, worker: true });
    opened.push(server);
    expect(server.worker).toBe(true);
    const qp1 = Qp1Transport.of(server);
    const { ch, reqRetries } = await connectTo(server);
    const rej = await nextCmEvent(ch, E.REJECTED, 5000);
    expect(rej.status).toBe(8);
    expect(reqRetries()).toBe(0); // the first REQ's answer, not a retry's
    expect(qp1.counters.cmUnclaimed).toBe(1);
  });
});

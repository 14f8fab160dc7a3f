// A simulated Linux sender's IPv4 Identification, and the traffic shapes that test a receiver's
// prediction of it (assembly/crc/ipid.ts; bench/icrc-accept.mjs, test/host/e2e/icrc-strength.test.ts).
//
// Linux 6.1 (net/ipv4/route.c ip_idents_reserve, reached from rxe's prepare_ipv4_hdr through
// __ip_select_ident for every packet rxe builds): one counter and one jiffies stamp per hash
// bucket of (destination, source, protocol). A reservation of `segs` IDs returns the counter
// plus a random delta, and advances the counter by segs + delta; delta is 0 when the bucket was
// last used in the same jiffy, else uniform in [0, jiffies elapsed) (prandom_u32_max). The ID is
// drawn when the packet is built: a packet that then waits in the sender (a stalled transmit
// queue) leaves later with an old ID, and the next one built after the wait carries a fresh delta.

import { Prng } from "./prng.js";

/** One bucket of Linux's IP ID generator, on a simulated jiffies clock. */
export class LinuxIpIdBucket {
  private readonly rng: Prng;
  private readonly hz: number;
  private readonly j0: number;
  private counter: number;
  private stamp = 0; // the bucket's jiffies stamp; 0 until first used, as in the kernel's zeroed table

  /** `hz`: the sender's CONFIG_HZ (Debian: 250); the first ID is random, as a fresh bucket's is. */
  constructor(seed: number, hz = 250) {
    this.rng = new Prng(seed);
    this.hz = hz;
    this.j0 = this.rng.u32(); // jiffies start anywhere (the kernel starts them 5 minutes before wrapping)
    this.counter = this.rng.u32();
  }

  /** jiffies at `ms` on the sender's clock */
  jiffies(ms: number): number {
    return (this.j0 + Math.floor((ms * this.hz) / 1000)) >>> 0;
  }

  /** The 16-bit ID of a packet of `segs` segments built at `ms` (sender's clock). */
  reserve(ms: number, segs = 1): number {
    const now = this.jiffies(ms);
    let delta = 0;
    if (now !== this.stamp) {
      const elapsed = (now - this.stamp) >>> 0;
      delta = Math.floor((this.rng.u32() * elapsed) / 4294967296); // prandom_u32_max(elapsed)
      this.stamp = now;
    }
    this.counter = (this.counter + segs + delta) >>> 0;
    return (this.counter - segs) & 0xffff;
  }
}

/** One datagram of a simulated Linux sender: when it was built (its ID drawn) and when it arrives. */
export interface LinuxDatagram {
  id: number;
  builtMs: number;
  arriveMs: number;
}

/**
 * Shapes of traffic from one Linux sender to one receiver:
 * - busy: back-to-back datagrams (1-200 µs apart);
 * - pingpong: messages of 1-10 datagrams, a round trip of 0.2-30 ms between them;
 * - idle: single datagrams 0.5-20 s apart;
 * - sender-stall: busy, but the sender's transmit queue stalls now and then for up to 300 ms: what
 *   was built before leaves in a burst at the end, the next datagram is built after it (a qemu TCG
 *   guest, as the interop captures show);
 * - receiver-stall: datagrams 0.5-20 ms apart (jiffies pass between them), but the receiver does
 *   not read for up to 100 ms now and then, then reads everything queued at once;
 * - mixed: each of these in turn, 200 datagrams at a time.
 */
export type LinuxTrafficShape = "busy" | "pingpong" | "idle" | "sender-stall" | "receiver-stall" | "mixed";
export const LINUX_TRAFFIC_SHAPES: readonly LinuxTrafficShape[] = ["busy", "pingpong", "idle", "sender-stall", "receiver-stall", "mixed"];

/** `n` datagrams of `shape` from a sender at `hz`, seeded; arrival times never decrease (one path, in order). */
export function linuxTraffic(shape: LinuxTrafficShape, n: number, seed: number, hz = 250): LinuxDatagram[] {
  const rng = new Prng(seed ^ 0x5eed);
  const bucket = new LinuxIpIdBucket(seed, hz);
  const out: LinuxDatagram[] = [];
  const latency = 0.05; // one-way ms
  let t = 1000 + rng.next() * 1000; // the sender's clock (ms)
  let lastArrive = 0;
  const uniform = (lo: number, hi: number) => lo + rng.next() * (hi - lo);
  const shapes: LinuxTrafficShape[] = ["busy", "pingpong", "idle", "sender-stall", "receiver-stall"];
  let inMessage = 0; // pingpong: datagrams left in the current message
  let releaseAt = -1; // sender-stall: the stalled queue lets go of everything at this time
  let pauseFrom = -1; // sender-stall: from then on the sender builds nothing until the release
  let readAt = -1; // receiver-stall: the receiver reads next at this time
  for (let i = 0; i < n; i++) {
    const s = shape === "mixed" ? shapes[Math.floor(i / 200) % shapes.length] : shape;
    switch (s) {
      case "busy":
      case "sender-stall":
        t += uniform(0.001, 0.2);
        break;
      case "receiver-stall":
        t += uniform(0.5, 20);
        break;
      case "pingpong":
        if (inMessage === 0) {
          t += uniform(0.2, 30);
          inMessage = 1 + Math.floor(rng.next() * 10);
        } else t += uniform(0.001, 0.05);
        inMessage--;
        break;
      case "idle":
        t += uniform(500, 20_000);
        break;
    }
    let leave = t;
    if (releaseAt >= 0 && t >= pauseFrom && t < releaseAt) t = leave = releaseAt + uniform(0.001, 0.2); // resumes after it
    if (t < releaseAt) leave = releaseAt;
    else if (s === "sender-stall" && rng.next() < 0.01) {
      releaseAt = leave = t + uniform(1, 300); // this one, and what is built in the next 0-2 ms, wait
      pauseFrom = t + uniform(0, 2);
    }
    const id = bucket.reserve(t);
    let arrive = Math.max(leave + latency, lastArrive);
    if (arrive < readAt) arrive = readAt;
    else if (s === "receiver-stall" && rng.next() < 0.05) readAt = arrive = arrive + uniform(1, 100);
    lastArrive = arrive;
    out.push({ id, builtMs: t, arriveMs: arrive });
  }
  return out;
}

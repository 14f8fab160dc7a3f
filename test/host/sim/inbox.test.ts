// The simulated wire's receive slots (SimInbox): the wire's one copy of a datagram lands in the
// receiving device's memory and the port validates it there (rx_at). Runs with and without the
// inbox must be indistinguishable: fates, counters, completions, bytes placed.
import { describe, expect, it } from "vitest";
import { coreModule } from "../../../host/node/wasm-source.js";
import { SimNetwork } from "../../../host/core/sim/network.js";
import { SimLink } from "../../../host/core/sim/link.js";
import { SimInbox } from "../../../host/core/sim/inbox.js";
import type { SimWireOptions } from "../../../host/core/sim/wire.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, QpType, SendFlags, WrOpcode } from "../../../host/core/verbs/enums.js";
import type { PacketPort } from "../../../host/core/link/port.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** Runs `fn` with SimLink carving no inbox (the wire then copies into its own buffers, the port into rx_buf). */
async function withoutInbox<T>(fn: () => Promise<T>): Promise<T> {
  const proto = SimLink.prototype;
  const saved = proto.attachPort;
  proto.attachPort = function (this: SimLink, port: PacketPort) {
    saved.call(this, port);
    this.inbox = undefined;
  };
  try {
    return await fn();
  } finally {
    proto.attachPort = saved;
  }
}

/**
 * Two devices, RC WRITEs and READs and SENDs over the wire; what completed, what landed, what the
 * wire and ports counted. `apart`: no work request's range overlaps another's (else a READ's
 * destination is a later WRITE's source, and what lands depends on when the WRITE is sent).
 */
async function run(opts: SimWireOptions, apart = false) {
  const mod = await coreModule();
  const net = new SimNetwork({ seed: 33, ...opts });
  const ALL = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ;
  const links: SimLink[] = [];
  // which receive entry the ports call: rx (after the copy into rx_buf), rx_at (in place) or
  // rx_batch_upto (in place, several at once: `batched` counts its datagrams)
  const calls = { rx: 0, rx_at: 0, rx_batch_upto: 0, batched: 0 };
  const proto = SimLink.prototype;
  const attach = proto.attachPort;
  proto.attachPort = function (this: SimLink, port: PacketPort) {
    attach.call(this, port);
    links.push(this);
    const p = port as unknown as { core: Record<string, unknown> };
    const core = p.core;
    const counted = Object.create(core) as Record<string, unknown>;
    for (const k of ["rx", "rx_at", "rx_batch_upto"] as const) {
      const f = core[k] as (...a: number[]) => number;
      Object.defineProperty(counted, k, {
        value: (...a: number[]) => {
          calls[k]++;
          const r = f(...a);
          if (k === "rx_batch_upto") calls.batched += r; // the records it dealt with
          return r;
        },
      });
    }
    p.core = counted;
  };
  const mk = async (addr: string) => {
    const dev = await net.addDevice(mod, addr, { activeMtu: 5 });
    const pd = dev.allocPd();
    const cq = dev.createCq(512);
    const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 128, maxRecvWr: 64, maxSendSge: 1, maxRecvSge: 1 } });
    const mr = pd.regMr(1 << 20, ALL);
    return { dev, cq, qp, mr };
  };
  let a, b;
  try {
    a = await mk("127.0.0.1");
    b = await mk("127.0.0.2");
  } finally {
    proto.attachPort = attach;
  }
  new Uint8Array(a.dev.memory.buffer, Number(a.mr.addr), 1 << 20).forEach((_, i, v) => (v[i] = (i * 13 + (i >> 11)) & 0xff));
  connectQp(a.qp, { qpNum: b.qp.qpNum, psn: 100, gid: "::ffff:127.0.0.2" }, { sqPsn: 7, qpAccessFlags: ALL, timeout: 6, pathMtu: 5 });
  connectQp(b.qp, { qpNum: a.qp.qpNum, psn: 7, gid: "::ffff:127.0.0.1" }, { sqPsn: 100, qpAccessFlags: ALL, timeout: 6, pathMtu: 5 });
  for (let i = 0; i < 16; i++) b.qp.postRecv({ wrId: BigInt(1000 + i), sgList: [{ addr: b.mr.addr + BigInt(800_000 + i * 9000), length: 9000, lkey: b.mr.lkey }] });
  for (let i = 0; i < 96; i++) {
    const op = i % 6 === 5 ? WrOpcode.RDMA_READ : i % 6 === 4 ? WrOpcode.SEND : WrOpcode.RDMA_WRITE;
    const len = apart ? 3000 + ((i * 1237) % 5192) : 3000 + ((i * 1237) % 9000);
    a.qp.postSend({
      wrId: BigInt(i), opcode: op, sendFlags: SendFlags.SIGNALED,
      sgList: [{ addr: a.mr.addr + BigInt(i * 8192), length: op === WrOpcode.SEND ? Math.min(len, 9000) : len, lkey: a.mr.lkey }],
      ...(op === WrOpcode.SEND ? {} : { rdma: { remoteAddr: b.mr.addr + BigInt(i * 8192), rkey: b.mr.rkey } }),
    });
  }
  net.run();
  const wcs = [...a.cq.poll(512), ...b.cq.poll(512)].map((w) => [Number(w.wrId), w.status, w.byteLen]);
  return {
    wcs,
    stats: { ...net.wire.stats },
    ports: [a.dev.port!.stats, b.dev.port!.stats].map((s) => ({ ...s, drops: { ...s.drops } })),
    landedB: hex(new Uint8Array(b.dev.memory.buffer, Number(b.mr.addr), 1 << 20)),
    landedA: hex(new Uint8Array(a.dev.memory.buffer, Number(a.mr.addr), 1 << 20)),
    calls,
    // the devices' nonzero counters
    counters: [a.dev.queryCounters(), b.dev.queryCounters()].map((c) => Object.fromEntries(Object.entries(c).filter(([, v]) => v)) as Record<string, number>),
    inboxes: links.map((l) => l.inbox && { used: l.inbox.used, fallbacks: l.inbox.fallbacks, available: l.inbox.available }),
  };
}

describe("SimInbox: the wire writes into the receiver's memory", () => {
  for (const [name, faults] of [
    ["a clean wire", {}],
    ["loss, duplicates, reordering, corruption and delay", { loss: 0.04, dup: 0.04, reorder: 0.05, corrupt: 0.03, delayUs: 4 }],
  ] as const) {
    it(`${name}: the same fates, counts, completions and bytes as the wire's own buffers; every slot comes back`, async () => {
      // one delivery per datagram on both sides (a clean wire's batches are compared below)
      const slots = await run({ faults, batching: false });
      const copies = await withoutInbox(() => run({ faults }));
      // the inbox was used, every slot came back (none held by a lost, corrupted or duplicated datagram)
      expect(slots.inboxes.every((i) => i !== undefined && i.used > 0)).toBe(true);
      expect(slots.inboxes.every((i) => i!.available === 256)).toBe(true);
      expect(copies.inboxes).toEqual([undefined, undefined]);
      // every datagram validated in place when it had a slot; none without the inbox
      expect(slots.calls.rx_at).toBe(slots.inboxes.reduce((n, i) => n + i!.used, 0) - slots.stats.lost);
      expect(slots.calls.rx_batch_upto).toBe(0);
      expect(copies.calls.rx_at + copies.calls.rx_batch_upto).toBe(0);
      expect(copies.calls.rx).toBeGreaterThan(0);
      expect(slots.wcs.length).toBe(96 + 16);
      expect(slots.wcs.every(([, s]) => s === 0)).toBe(true);
      if (faults !== undefined && "loss" in faults) {
        expect(slots.stats.lost).toBeGreaterThan(0);
        expect(slots.stats.corrupted).toBeGreaterThan(0);
        expect(slots.ports[1]!.drops.bad_icrc).toBeGreaterThan(0);
      }
      expect(slots.stats).toEqual(copies.stats);
      expect(slots.ports).toEqual(copies.ports);
      expect(slots.wcs).toEqual(copies.wcs);
      expect(slots.landedB).toBe(copies.landedB);
      expect(slots.landedA).toBe(copies.landedA);
    });
  }

  it("a clean wire delivers in batches: the same completions and bytes as one delivery per datagram; a batch's ACKs coalesce", async () => {
    const batched = await run({}, true);
    const single = await run({ batching: false }, true);
    expect(batched.calls.rx_batch_upto).toBeGreaterThan(0);
    expect(batched.calls.batched).toBeGreaterThan(2 * batched.calls.rx_batch_upto); // several datagrams a call
    expect(single.calls.rx_batch_upto).toBe(0);
    // every datagram in a slot validated in place, in a batch or alone
    expect(batched.calls.rx_at + batched.calls.batched).toBe(batched.inboxes.reduce((n, i) => n + i!.used, 0));
    // a request behind a READ in the same batch waits for the READ's responses to leave, not for an
    // RNR timer: no RNR NAK, no retry, no request sent twice
    for (const r of [batched, single]) {
      expect(r.counters[1]!.send_rnr_err).toBeUndefined();
      expect(r.counters[0]!.completer_retry_err).toBeUndefined();
      expect(r.counters[1]!.out_of_seq_request).toBeUndefined();
    }
    expect(batched.counters[0]!.sent_pkts).toBe(single.counters[0]!.sent_pkts);
    expect(batched.wcs).toEqual(single.wcs);
    expect(batched.landedB).toBe(single.landedB);
    expect(batched.landedA).toBe(single.landedA);
    // nothing lost or dropped; every slot back
    for (const r of [batched, single]) {
      expect(r.stats.delivered).toBe(r.stats.sent);
      expect(r.ports.map((p) => p.rxDropped)).toEqual([0, 0]);
      expect(r.inboxes.every((i) => i!.available === 256)).toBe(true);
    }
    // the device acknowledges once per batch where it acknowledged once per datagram (as on the
    // Node datapath's rx_batch): fewer ACKs, the same requests and responses
    expect(batched.stats.sent).toBeLessThan(single.stats.sent);
    expect(batched.ports[0]!.txDatagrams).toBe(single.ports[0]!.txDatagrams); // A: WRITE, SEND, READ requests (and no ACKs)
    expect(batched.ports[1]!.txDatagrams).toBeLessThan(single.ports[1]!.txDatagrams); // B: READ responses and ACKs
  });

  it("with a trace the wire keeps its own buffers (the records keep their bytes)", async () => {
    const r = await run({ trace: true });
    expect(r.inboxes.map((i) => i!.used)).toEqual([0, 0]);
    expect(r.wcs.length).toBe(96 + 16);
  });
});

describe("SimInbox slots", () => {
  it("hands out free slots of the asked length, refuses when none is free or the datagram is too long, takes them back", () => {
    const memory = new WebAssembly.Memory({ initial: 1 });
    const inbox = new SimInbox(memory, 1024, 2, 256);
    const a = inbox.take(100)!;
    const b = inbox.take(256)!;
    expect(a.payload.length).toBe(100);
    expect(b.payload.length).toBe(256);
    expect(a.payload.buffer).toBe(memory.buffer);
    const offsets = [a.payload.byteOffset, b.payload.byteOffset].sort((x, y) => x - y);
    expect(offsets).toEqual([1024, 1280]);
    expect(inbox.owns(a)).toBe(true);
    expect(inbox.owns({ ...a })).toBe(false);
    expect(inbox.take(10)).toBeUndefined(); // none free
    inbox.release(a);
    expect(inbox.take(257)).toBeUndefined(); // longer than a slot
    expect(inbox.available).toBe(1);
    const again = inbox.take(50)!;
    expect(again).toBe(a);
    expect(again.payload.length).toBe(50);
    expect(again.payload.byteOffset).toBe(a.payload.byteOffset);
    expect(inbox.used).toBe(3);
    expect(inbox.fallbacks).toBe(2);
  });

  it("a slot taken at two lengths in turn swaps its two views back and forth (no view made per take)", () => {
    const memory = new WebAssembly.Memory({ initial: 1 });
    const inbox = new SimInbox(memory, 512, 1, 256);
    const take = (len: number) => {
      const d = inbox.take(len)!;
      inbox.release(d);
      return d.payload;
    };
    const first = take(200); // a message's first packet (with its RETH)
    const rest = take(184); // the ones after it
    expect(first).not.toBe(rest);
    expect(take(200)).toBe(first);
    expect(take(184)).toBe(rest);
    expect(take(184)).toBe(rest);
    const third = take(100); // a third length: a view of its own, the same bytes
    expect(third.length).toBe(100);
    expect(third.byteOffset).toBe(512);
    expect(take(184)).toBe(rest);
    expect(take(256).byteOffset).toBe(512);
  });

  it("stale views (memory grown after the slots were taken) make it refuse, and keep the slot", () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 4 });
    const inbox = new SimInbox(memory, 0, 1, 128);
    memory.grow(1); // detaches the old buffer
    expect(inbox.take(64)).toBeUndefined();
    expect(inbox.available).toBe(1);
  });
});

describe("rx_at", () => {
  it("bad flow: a range outside linear memory is refused as short before anything is read", async () => {
    const net = new SimNetwork();
    const dev = await net.addDevice(await coreModule(), "127.0.0.9");
    const core = dev.core as unknown as { rx_at(data: number, len: number, now: number): number; memory: WebAssembly.Memory };
    const end = core.memory.buffer.byteLength;
    const before = dev.queryCounters();
    expect(core.rx_at(end - 8, 64, 0)).toBe(1); // RxResult.SHORT
    expect(core.rx_at(0xfffffff0 | 0, 64, 0)).toBe(1);
    expect(dev.queryCounters()).toEqual(before); // refused before validation: nothing read, nothing counted
  });
});

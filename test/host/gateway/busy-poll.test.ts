// The gateway's busy poll (GatewayOptions.udpBusyPollUs) and what it stands on, the datapath's
// pollReceive: a datagram already in the socket is received inside the call; nothing there, a
// stopped receive or a call from inside a batch handler returns 0; bad windows throw. The gateway
// polls only after a turn that forwarded a request whose peer answers at once (AckReq), not after
// ACKs, and the conversation is unchanged. The relay thread's answer poll: a window per request that
// asks for an answer, closed by a gate of each client's own. Addresses: 127.0.16.0/24.
import { afterEach, describe, expect, it } from "vitest";
import dgram from "node:dgram";
import { datapathAddon, openDatapath, RX_RECORD } from "../../../host/node/datapath.js";
import { openDevice, openTunnelDevice } from "../../../host/node/index.js";
import { Gateway, type GatewayOptions } from "../../../host/gateway/index.js";
import type { RelayHandle } from "../../../host/gateway/relay.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, WcOpcode, WcStatus, WrOpcode, SendFlags } from "../../../host/core/verbs/enums.js";
import { rcEnd } from "../support/verbs-helpers.js";
import { holdTimingLock } from "../support/timing-lock.js";
import { firstGoodRun } from "../support/timing-tries.js";

const DP = "127.0.16.20";
const GW = "127.0.16.21";
const PEER = "127.0.16.22";
const TOKEN = "poll-token";
// the windows' hits are timing: no other busy-poll suite runs beside this file (support/timing-lock.ts)
holdTimingLock();

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const addon = datapathAddon();

/** A device on UDP at PEER and a gateway at GW that lets tunnels reach the peer's port (`gwOptions` on top). */
async function gatewayAndPeer(gwOptions: Partial<GatewayOptions>) {
  const peer = await openDevice({ address: PEER, port: 0, mrArenaBytes: 1 << 20 });
  cleanups.push(() => peer.close());
  const peerPort = (peer.limits as { port: number }).port;
  const gw = await Gateway.start({
    listen: GW, port: 0, udpAddress: GW, udpPort: 0, token: TOKEN, allow: [PEER], dstPorts: [peerPort], ...gwOptions,
  });
  cleanups.push(() => gw.close());
  if (gwOptions.relay === "native" && gw.relayPath !== "native") throw new Error(`no native relay: ${gw.limitations.join("; ")}`);
  return { gw, peer, peerPort };
}

/**
 * A tunnel device through `gw` and an RC end on it and on the peer (4 KiB MRs), connected both ways:
 * the client `a` sends from PSN 0x200, the peer `b` from 0x100, with a long ACK timeout (4.3 s: no
 * retransmission under load, so only the datagrams a test counts cross the gateway).
 */
async function tunnelClient({ gw, peer, peerPort }: Awaited<ReturnType<typeof gatewayAndPeer>>) {
  const t = await openTunnelDevice(`ws://${GW}:${gw.port}/tunnel`, { token: TOKEN, mrArenaBytes: 1 << 20 });
  cleanups.push(() => t.device.close());
  const access = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ;
  const a = rcEnd(t.device, 4096, access);
  const b = rcEnd(peer, 4096, access);
  const o = { qpAccessFlags: access, timeout: 20, retryCnt: 7 };
  connectQp(a.qp, { qpNum: b.qp.qpNum, psn: 0x100, gid: peer.queryGid(0), port: peerPort }, { sqPsn: 0x200, ...o });
  connectQp(b.qp, { qpNum: a.qp.qpNum, psn: 0x200, gid: t.device.queryGid(0), port: gw.udpPort }, { sqPsn: 0x100, ...o });
  return { a, b };
}

/** The gateway of `gatewayAndPeer` with one tunnel client `a` and its peer's end `b`. */
async function tunnelAndPeer(gwOptions: Partial<GatewayOptions>) {
  const g = await gatewayAndPeer(gwOptions);
  return { gw: g.gw, ...(await tunnelClient(g)) };
}

type End = ReturnType<typeof rcEnd>;

/** A relay gateway with two tunnel clients `x` and `y` (each with its peer's end), their relay sessions `sx`, `sy` and `session()` to read one. */
async function twoClients(gwOptions: Partial<GatewayOptions>) {
  const g = await gatewayAndPeer(gwOptions);
  const x = await tunnelClient(g);
  const y = await tunnelClient(g);
  const relay = (g.gw as unknown as { relay: RelayHandle }).relay;
  const [sx, sy] = [...(g.gw as unknown as { clients: Map<unknown, { slot: number; id: number }> }).clients.values()].sort((p, q) => p.id - q.id);
  const session = (c: { slot: number; id: number }) => relay.session(c.slot, c.id)!;
  return { gw: g.gw, x, y, sx: sx!, sy: sy!, session };
}

/**
 * The answer-poll window of the gate tests: the longest there is (10 ms), so that an echo the test's
 * own event loop makes late under load is still an answer in time (8 late ones in a row close a gate).
 */
const GATE_WINDOW_US = 10000;

/** RDMA WRITEs from `a`, answered by a bare ACK only, spaced past the window: each window runs out. Each WRITE's post → completion, ms. */
async function writesAnsweredByAcks(a: End, b: End, count: number): Promise<number[]> {
  const took: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    a.qp.postSend({ wrId: 4n, opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [a.mr.sge(0, 64)], rdma: { remoteAddr: b.mr.addr, rkey: b.mr.rkey } });
    expect(await a.cq.next()).toMatchObject({ status: WcStatus.SUCCESS, opcode: WcOpcode.RDMA_WRITE });
    took.push(performance.now() - t);
    await new Promise((r) => setTimeout(r, GATE_WINDOW_US / 1000 + 2));
  }
  return took;
}

/**
 * SENDs from `a` that `b` echoes, every byte checked: at once (each answer window sees its answer, and
 * each of `b`'s request windows its request), or `echoAfterMs` after `b` took each (its ACK leaves at
 * once, its echo well after it).
 */
async function echoedSends(a: End, b: End, count: number, echoAfterMs?: number) {
  for (let i = 0; i < count; i++) {
    b.qp.postRecv({ wrId: 1n, sgList: [b.mr.sge(0, 64)] });
    a.qp.postRecv({ wrId: 1n, sgList: [a.mr.sge(0, 64)] });
    a.mr.bytes.fill(i, 0, 64);
    a.qp.postSend({ wrId: 2n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [a.mr.sge(0, 64)] });
    expect(await b.cq.next()).toMatchObject({ status: WcStatus.SUCCESS, opcode: WcOpcode.RECV, byteLen: 64 });
    expect(b.mr.bytes.subarray(0, 64)).toEqual(new Uint8Array(64).fill(i));
    if (echoAfterMs !== undefined) await new Promise((r) => setTimeout(r, echoAfterMs));
    b.mr.bytes.fill(0x80 + i, 64, 128);
    b.qp.postSend({ wrId: 3n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [b.mr.sge(64, 64)] });
    const got = new Set<number>();
    while (got.size < 2) got.add((await a.cq.next()).opcode);
    expect(a.mr.bytes.subarray(0, 64)).toEqual(new Uint8Array(64).fill(0x80 + i));
    expect((await b.cq.next()).status).toBe(WcStatus.SUCCESS);
  }
}

describe.skipIf(!addon)("datapath pollReceive (needs the socket addon)", () => {
  it("receives what is in the socket inside the call; 0 when nothing is, when stopped, or nested", async () => {
    const memory = new ArrayBuffer(1 << 20);
    const r = openDatapath({ memory, address: DP, port: 0 });
    const dp = r.datapath!;
    cleanups.push(() => dp.close());
    const meta = 512 << 10;
    let inPoll = false;
    const seen: { len: number; byte: number; inPoll: boolean; nested: number }[] = [];
    const dv = new DataView(memory);
    const u8 = new Uint8Array(memory);
    dp.receive({ area: 0, slotSize: 2048, slots: 8, meta, metaCap: 8 }, (count) => {
      for (let i = 0; i < count; i++) {
        const rec = meta + i * RX_RECORD.stride;
        seen.push({
          len: dv.getUint32(rec + RX_RECORD.length, true), byte: u8[dv.getUint32(rec + RX_RECORD.data, true)]!, inPoll,
          nested: dp.pollReceive(100), // no nesting: 0, at once
        });
      }
    });
    const s = dgram.createSocket("udp4");
    cleanups.push(() => new Promise<void>((res) => s.close(() => res())));
    await new Promise<void>((res) => s.bind(0, DP, res));

    expect(dp.pollReceive(0)).toBe(0); // nothing there
    await new Promise<void>((res, rej) => s.send(Buffer.alloc(40, 0x5a), dp.port, DP, (e) => (e ? rej(e) : res())));
    inPoll = true;
    const n = dp.pollReceive(2000);
    inPoll = false;
    expect(n).toBe(1);
    expect(seen).toEqual([{ len: 40, byte: 0x5a, inPoll: true, nested: 0 }]);
    const st = dp.stats();
    expect(st.rxPollCalls).toBe(2);
    expect(st.rxPollHits).toBe(1);

    expect(() => dp.pollReceive(2001)).toThrow(RangeError);
    expect(() => dp.pollReceive(-1)).toThrow(TypeError);
    expect(() => dp.pollReceive("5" as unknown as number)).toThrow(TypeError);

    // stopped: nothing is taken, the datagram stays in the socket
    dp.stopReceive();
    await new Promise<void>((res, rej) => s.send(Buffer.alloc(40, 0x5b), dp.port, DP, (e) => (e ? rej(e) : res())));
    expect(dp.pollReceive(500)).toBe(0);
    expect(seen).toHaveLength(1);
    expect(dp.stats().rxPollCalls).toBe(2);
  });
});

describe("gateway udpBusyPollUs", () => {
  it("rejects windows outside 0..2000 whole µs", async () => {
    for (const us of [-1, 2001, 1.5, Number.NaN]) {
      await expect(Gateway.start({ listen: GW, port: 0, udpAddress: GW, udpPort: 0, udpBusyPollUs: us })).rejects.toThrow(RangeError);
    }
  });

  it.skipIf(!addon)("polls after a request that asks for an ACK, not after ACKs; the conversation is unchanged", async () => {
    // exactly one SEND and one ACK cross the gateway
    const { gw, a, b } = await tunnelAndPeer({ udpBusyPollUs: 300 });
    expect(gw.udpPath).toBe("native");
    b.qp.postRecv({ wrId: 1n, sgList: [b.mr.sge(0, 64)] });
    a.qp.postRecv({ wrId: 1n, sgList: [a.mr.sge(0, 64)] });

    // the client's SEND asks for an ACK: the gateway polls once after forwarding it
    a.mr.bytes.fill(0xa1, 0, 64);
    a.qp.postSend({ wrId: 2n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [a.mr.sge(0, 64)] });
    expect(await a.cq.next()).toMatchObject({ status: WcStatus.SUCCESS, opcode: WcOpcode.SEND });
    expect(await b.cq.next()).toMatchObject({ status: WcStatus.SUCCESS, opcode: WcOpcode.RECV, byteLen: 64 });
    expect(b.mr.bytes.subarray(0, 64)).toEqual(new Uint8Array(64).fill(0xa1));
    expect(gw.udp.stats.polls).toBe(1);

    // the peer's SEND to the client: the client's ACK goes out through the gateway without a poll
    b.mr.bytes.fill(0xb2, 64, 128);
    b.qp.postSend({ wrId: 3n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [b.mr.sge(64, 64)] });
    expect(await a.cq.next()).toMatchObject({ status: WcStatus.SUCCESS, opcode: WcOpcode.RECV, byteLen: 64 });
    expect(await b.cq.next()).toMatchObject({ status: WcStatus.SUCCESS, opcode: WcOpcode.SEND });
    expect(a.mr.bytes.subarray(0, 64)).toEqual(new Uint8Array(64).fill(0xb2));
    expect(gw.counters.udpOut).toBe(2); // the SEND and the ACK
    expect(gw.udp.stats.polls).toBe(1);
  });
});

describe("gateway relayBusyPollUs (the native relay thread's answer poll)", () => {
  it("rejects windows outside 0..10000 whole µs", async () => {
    for (const us of [-1, 10001, 2.5, Number.NaN]) {
      await expect(Gateway.start({ listen: GW, port: 0, udpAddress: GW, udpPort: 0, relayBusyPollUs: us })).rejects.toThrow(RangeError);
    }
  });

  it.skipIf(!addon)("the relay thread polls for the answer after a request that asks for one; SENDs both ways arrive as without it", async () => {
    const { gw, a, b } = await tunnelAndPeer({ relay: "native", relayBusyPollUs: 5000 });
    // the relay's own timestamps (a bench's per-hop breakdown), on for these round trips
    const relay = (gw as unknown as { relay: RelayHandle }).relay;
    expect(() => relay.trace(1 << 21)).toThrow(RangeError);
    relay.trace(1000);
    const t0 = process.hrtime.bigint();
    await echoedSends(a, b, 20);
    const t1 = process.hrtime.bigint();
    const tr = relay.traceTake();
    relay.trace(0);
    // 5 fields a turn: wake, end (process.hrtime's clock), woken by TCP (1) / UDP (2), datagrams out, frames out
    expect(tr.length % 5).toBe(0);
    const turns = Array.from({ length: tr.length / 5 }, (_, i) => Array.from(tr.subarray(i * 5, i * 5 + 5)));
    // the client's 20 SENDs (and its ACKs, the last perhaps after the trace was taken) out to UDP, the
    // peer's 20 echoes toward the client (its ACKs too, or in one frame with the echo); an echo may go
    // out in the turn a client's SEND woke (caught by its answer poll), so wake-up kinds are not counted.
    // The conversation's first answer is JS's to approve: when the peer's ACK and echo come in one
    // receive batch, both go through JS (the relay's send, not a thread's turn), so 19 frames at least
    const sum = (k: number) => turns.reduce((n, x) => n + x[k]!, 0n);
    expect(sum(3)).toBeGreaterThanOrEqual(20n);
    expect(sum(4)).toBeGreaterThanOrEqual(19n);
    expect(turns.some((x) => (x[2]! & 1n) !== 0n && x[3]! > 0n)).toBe(true);
    expect(turns.some((x) => (x[2]! & 2n) !== 0n && x[4]! > 0n)).toBe(true);
    // on process.hrtime's clock: every turn well formed and near the loop; a turn that was in its poll
    // window (up to 5 ms, longer when the thread waits for a CPU) as the loop began or ended may
    // straddle t0 or t1, so only the turns inside count toward the 20s above being on this clock
    const SLACK = 1_000_000_000n;
    for (const [wake, end] of turns) {
      expect(wake! <= end! && wake! >= t0 - SLACK && end! <= t1 + SLACK).toBe(true);
    }
    expect(turns.filter(([wake, end]) => wake! >= t0 && end! <= t1).length).toBeGreaterThanOrEqual(turns.length - 2);
    expect(relay.traceTake().length).toBe(0);
    // the client's SENDs ask for an answer (AckReq) and open windows; the peer's echo (not its bare ACK) ends one
    // as a hit; the client's ACKs open none. A window still open when the next SEND leaves is not reopened.
    // That the windows catch 5 answers of 20 is timing: the round trips above, then (a busy machine) 20 more at a time
    const pick = () => {
      const st = gw.relayStats()!;
      return { polls: st.busyPolls, gated: st.busyPollGated, hits: st.busyPollHits };
    };
    let before = { polls: 0, gated: 0, hits: 0 };
    let first = true;
    await firstGoodRun(
      "20 round trips through the relay's answer poll",
      1,
      async () => {
        if (!first) await echoedSends(a, b, 20);
        first = false;
        const now = pick();
        const run = { polls: now.polls - before.polls, gated: now.gated - before.gated, hits: now.hits - before.hits };
        before = now;
        expect(run.polls, JSON.stringify(run)).toBeGreaterThanOrEqual(1);
        expect(run.polls + run.gated, JSON.stringify(run)).toBeLessThanOrEqual(20);
        expect(run.hits, JSON.stringify(run)).toBeLessThanOrEqual(run.polls);
        return run;
      },
      (run) => run.hits >= 5,
    );
    expect(gw.counters.refused).toEqual({});
  });

  it.skipIf(!addon)("a window that sees only a bare ACK ends without its answer; misses close the gate, an answered probe opens it", async () => {
    const { gw, a, b } = await tunnelAndPeer({ relay: "native", relayBusyPollUs: GATE_WINDOW_US });
    const stats = () => gw.relayStats()!;
    // RDMA WRITEs: answered by a bare ACK only, so each window runs out (spaced past the window: one window each)
    await writesAnsweredByAcks(a, b, 16);
    const w = stats();
    expect(w.busyPollHits).toBe(0);
    expect(w.busyPolls).toBeGreaterThanOrEqual(8); // 8 misses bring the hit rate under the gate
    expect(w.busyPollGated).toBeGreaterThanOrEqual(1);
    // the conversation's first WRITE goes through JS (approval), the relay forwards the other 15
    expect(w.busyPolls + w.busyPollGated).toBeLessThanOrEqual(15);
    expect(w.busyPolls + w.busyPollGated).toBeGreaterThanOrEqual(12);
    // SENDs echoed at once: the probes' answers come in their windows, and the gate opens again
    await echoedSends(a, b, 40);
    const s = stats();
    expect(s.busyPollHits).toBeGreaterThanOrEqual(10);
    expect(s.busyPolls - w.busyPolls).toBeGreaterThan(s.busyPollGated - w.busyPollGated);
    expect(gw.counters.refused).toEqual({});
  });

  it.skipIf(!addon)("the gate is each client's own: misses close one client's gate and hold back no other's windows", async () => {
    const { gw, x, y, sx, sy, session } = await twoClients({ relay: "native", relayBusyPollUs: GATE_WINDOW_US });
    // x's peer answers with bare ACKs only: x's windows run out and close its gate
    await writesAnsweredByAcks(x.a, x.b, 16);
    const w = gw.relayStats()!;
    expect(w.busyPollHits).toBe(0);
    expect(w.busyPollGated).toBeGreaterThanOrEqual(1);
    // y's SENDs, echoed at once, poll from the first: x's misses are not y's (one gate for all held y's windows back)
    await echoedSends(y.a, y.b, 20);
    const e = gw.relayStats()!;
    expect(e.busyPollGated - w.busyPollGated).toBe(0);
    expect(session(sx!).busyPollGated).toBe(w.busyPollGated);
    expect(session(sy!)).toMatchObject({ busyPollGated: 0 });
    expect(session(sy!).busyPolls).toBeGreaterThanOrEqual(19); // the conversation's first SEND went through JS
    // its windows see their answers: after a look in vain (hits) or at the first look (ready: an echo quick
    // enough to be there before the relay looked); which of the two depends on the machine's speed
    expect(session(sy!).busyPollHits + session(sy!).busyPollReady).toBeGreaterThanOrEqual(12);
    // and y's hits do not open x's gate again (they did with one gate): at most one probe in 8 WRITEs
    await writesAnsweredByAcks(x.a, x.b, 8);
    const z = gw.relayStats()!;
    expect(z.busyPolls - e.busyPolls).toBeLessThanOrEqual(1);
    expect(z.busyPollGated - e.busyPollGated).toBeGreaterThanOrEqual(7);
    expect(session(sx!).busyPollHits).toBe(0);
    expect(gw.counters.refused).toEqual({});
  });
});

/** The peer's SENDs to `a`, which takes each (its device ACKs it) and sends nothing more: each request window runs out. */
async function peerSendsUnanswered(a: End, b: End, count: number) {
  for (let i = 0; i < count; i++) {
    a.qp.postRecv({ wrId: 1n, sgList: [a.mr.sge(0, 64)] });
    b.qp.postSend({ wrId: 3n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [b.mr.sge(64, 64)] });
    expect(await a.cq.next()).toMatchObject({ status: WcStatus.SUCCESS, opcode: WcOpcode.RECV });
    expect(await b.cq.next()).toMatchObject({ status: WcStatus.SUCCESS, opcode: WcOpcode.SEND });
    await new Promise((r) => setTimeout(r, GATE_WINDOW_US / 1000 + 2));
  }
}

describe("gateway relayRequestPollUs (the native relay thread's request poll)", () => {
  const ENV = "SOFTROCE_RELAY_REQUEST_POLL_US";
  afterEach(() => {
    delete process.env[ENV];
    delete process.env.SOFTROCE_RELAY_POLL_US;
  });

  it("rejects windows outside 0..10000 whole µs, as an option and from the environment", async () => {
    for (const us of [-1, 10001, 2.5, Number.NaN]) {
      await expect(Gateway.start({ listen: GW, port: 0, udpAddress: GW, udpPort: 0, relayRequestPollUs: us })).rejects.toThrow(RangeError);
    }
    for (const v of ["-1", "10001", "2.5", "x"]) {
      process.env[ENV] = v;
      await expect(Gateway.start({ listen: GW, port: 0, udpAddress: GW, udpPort: 0 })).rejects.toThrow(`${ENV}=${JSON.stringify(v)}`);
    }
    delete process.env[ENV];
    process.env.SOFTROCE_RELAY_POLL_US = "10001"; // the answer poll's window, the same way
    await expect(Gateway.start({ listen: GW, port: 0, udpAddress: GW, udpPort: 0 })).rejects.toThrow("SOFTROCE_RELAY_POLL_US=\"10001\"");
  });

  it.skipIf(!addon)("the relay's poll windows are whole µs 0..10000, at construction and after (nothing truncated)", async () => {
    const { gw } = await gatewayAndPeer({ relay: "native" });
    const relay = (gw as unknown as { relay: RelayHandle }).relay;
    for (const bad of [2.5, -1, 10001, Number.NaN, "5" as unknown as number]) {
      expect(() => relay.requestPoll(bad)).toThrow(RangeError);
      expect(() => relay.busyPoll(bad)).toThrow(RangeError);
    }
    relay.requestPoll(10000);
    relay.requestPoll(0);
    // the constructor too (Gateway.start checks its options first, so the relay is built here directly)
    const { openRelay } = await import("../../../host/gateway/relay.js");
    const shape = (gw as unknown as { shape: { relayTable(): Int16Array } }).shape.relayTable();
    const base = {
      udpFd: 1 << 20, family: 4 as const, qpnStart: 1024, qpnCount: 16, maxClients: 2, maxRocePayload: 4096, maxMessage: 8192,
      clientQueueBytes: 1 << 16, packetsPerSecond: 1, bytesPerSecond: 1, gatewayGid: new Uint8Array(16), gatewayPort: 1, approvalMs: 1,
    };
    for (const [o, msg] of [
      [{ requestPollUs: 2.5 }, "requestPollUs is 0..10000"],
      [{ requestPollUs: 10001 }, "requestPollUs is 0..10000"],
      [{ busyPollUs: 0.5 }, "busyPollUs is 0..10000"],
      [{ maxClients: 1.5 }, "a field is missing or not a number"],
      [{ qpnCount: -16 }, "a field is missing or not a number"],
    ] as const) {
      expect(() => openRelay({ ...base, ...o }, shape, () => {})).toThrow(msg);
    }
    // whole numbers pass the checks and reach the socket (no such descriptor here)
    expect(() => openRelay({ ...base, requestPollUs: 300 }, shape, () => {})).toThrow(/could not start/);
  });

  it.skipIf(!addon)("a ping-pong's round trip is polled whole: the answer, then the client's next request (counters move)", async () => {
    process.env[ENV] = String(GATE_WINDOW_US); // the environment sets it where the option does not
    const { gw, a, b } = await tunnelAndPeer({ relay: "native", relayBusyPollUs: GATE_WINDOW_US });
    // each echo ends an answer window and opens a request window, which the client's next SEND ends
    // (the last one's runs out). Timing: on a quiet machine both windows catch nearly all 20; beside a
    // CPU hog and a half-time one, runs of 20 caught 7-14 answers and 12-18 requests. A run is good
    // when both windows caught at least half of what they waited for (up to 4 runs of 20; with the
    // polls off, none would)
    await firstGoodRun(
      "20 echoed SENDs through the relay",
      4,
      async () => {
        const was = gw.relayStats()!;
        await echoedSends(a, b, 20);
        const now = gw.relayStats()!;
        const d = (k: "requestPolls" | "requestPollHits" | "requestPollGated" | "busyPollHits") => now[k] - was[k];
        return { requestPolls: d("requestPolls"), requestPollHits: d("requestPollHits"), requestPollGated: d("requestPollGated"), busyPollHits: d("busyPollHits") };
      },
      (r) => r.requestPolls >= 15 && r.requestPolls <= 20 && r.requestPollHits >= 10 && r.requestPollGated === 0 && r.busyPollHits >= 10,
    );
    const st = gw.relayStats()!;
    // off: no more request windows, the answer poll as before
    (gw as unknown as { relay: RelayHandle }).relay.requestPoll(0);
    await echoedSends(a, b, 5);
    const off = gw.relayStats()!;
    expect(off.requestPolls).toBe(st.requestPolls);
    expect(off.busyPollHits).toBeGreaterThan(st.busyPollHits);
    expect(gw.counters.refused).toEqual({});
  });

  it.skipIf(!addon)("the gate closes for a client that does not send again, holds back no other client, and reopens", async () => {
    const { gw, x, y, sx, sy, session } = await twoClients({ relay: "native", relayBusyPollUs: 0, relayRequestPollUs: GATE_WINDOW_US });
    // x takes its peer's SENDs and only ACKs them: its request windows run out and close its gate
    await peerSendsUnanswered(x.a, x.b, 16);
    const w = session(sx!);
    expect(w.requestPollHits).toBe(0);
    expect(w.requestPolls).toBeGreaterThanOrEqual(8); // 8 misses bring the hit rate under the gate
    expect(w.requestPollGated).toBeGreaterThanOrEqual(1);
    expect(w.requestPolls + w.requestPollGated).toBeLessThanOrEqual(16);
    expect(w.requestPolls + w.requestPollGated).toBeGreaterThanOrEqual(12); // the conversation's first went through JS
    // y answers its peer at once: its windows open from the first and see its requests (x's gate is not y's);
    // they see them, after a look in vain (hits) or at the first look (ready), as the machine's speed has
    // it: timing, so (a busy machine) 20 more at a time until a run shows it
    const delta = (was: ReturnType<typeof session>, now: ReturnType<typeof session>) => ({
      polls: now.requestPolls - was.requestPolls,
      gated: now.requestPollGated - was.requestPollGated,
      hits: now.requestPollHits - was.requestPollHits,
      ready: now.requestPollReady - was.requestPollReady,
    });
    await firstGoodRun(
      "y answering its peer at once",
      1,
      async () => {
        const was = session(sy!);
        await echoedSends(y.b, y.a, 20); // y's peer sends, y answers each at once
        return delta(was, session(sy!));
      },
      (e) => e.gated === 0 && e.polls >= 19 && e.hits + e.ready >= 12,
    );
    expect(session(sx!).requestPollGated).toBe(w.requestPollGated);
    // the answer poll is off: none of its windows
    expect(gw.relayStats()!.busyPolls).toBe(0);
    // x answers again: the probes (every 16th window) see its requests, and its gate opens (timing: 40 at a time)
    await firstGoodRun(
      "x answering again",
      1,
      async () => {
        const was = session(sx!);
        await echoedSends(x.b, x.a, 40);
        return delta(was, session(sx!));
      },
      (z) => z.hits >= 10 && z.polls > z.gated,
    );
    expect(gw.counters.refused).toEqual({});
  });
});

/** The peer's SENDs to `a`, each answered by `a` with a SEND `delayMs` after it completes. */
async function peerSendsAnsweredAfter(a: End, b: End, count: number, delayMs: number) {
  for (let i = 0; i < count; i++) {
    a.qp.postRecv({ wrId: 1n, sgList: [a.mr.sge(0, 64)] });
    b.qp.postRecv({ wrId: 1n, sgList: [b.mr.sge(0, 64)] });
    b.qp.postSend({ wrId: 3n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [b.mr.sge(64, 64)] });
    expect(await a.cq.next()).toMatchObject({ status: WcStatus.SUCCESS, opcode: WcOpcode.RECV });
    await new Promise((r) => setTimeout(r, delayMs));
    a.qp.postSend({ wrId: 2n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [a.mr.sge(0, 64)] });
    const got = new Set<number>();
    while (got.size < 2) got.add((await b.cq.next()).opcode);
    expect((await a.cq.next()).status).toBe(WcStatus.SUCCESS);
  }
}

/** RDMA READs of 64 bytes from `from` of `to`'s memory, every byte checked: the answer is `to`'s device's own (no application between). */
async function reads(from: End, to: End, count: number) {
  for (let i = 0; i < count; i++) {
    to.mr.bytes.fill(i & 0xff, 128, 192);
    from.qp.postSend({ wrId: 5n, opcode: WrOpcode.RDMA_READ, sendFlags: SendFlags.SIGNALED, sgList: [from.mr.sge(192, 64)], rdma: { remoteAddr: to.mr.addr + 128n, rkey: to.mr.rkey } });
    expect(await from.cq.next()).toMatchObject({ status: WcStatus.SUCCESS, opcode: WcOpcode.RDMA_READ });
    expect(from.mr.bytes.subarray(192, 256)).toEqual(new Uint8Array(64).fill(i & 0xff));
  }
}

describe("the relay's polls when the CPU is wanted elsewhere", () => {
  // each kind: windows that run out close its gate; then what it waits for comes while the thread is away after the turn
  // that began the wait (slowLook: as when the CPU went to the thread that turn woke), so it is there at the first look
  for (const kind of ["answer", "request"] as const) {
    it.skipIf(!addon)(`what a window waits for, already there at its first look, is no hit: the gate is not told (the ${kind} poll)`, async () => {
      const answer = kind === "answer";
      const { gw, a, b } = await tunnelAndPeer({ relay: "native", relayBusyPollUs: answer ? GATE_WINDOW_US : 0, relayRequestPollUs: answer ? 0 : GATE_WINDOW_US });
      const relay = (gw as unknown as { relay: RelayHandle }).relay;
      expect(() => relay.slowLook(1000001)).toThrow(RangeError);
      expect(() => relay.slowLook(0.5)).toThrow(RangeError);
      const pick = () => {
        const st = gw.relayStats()!;
        return answer
          ? { polls: st.busyPolls, hits: st.busyPollHits, ready: st.busyPollReady, gated: st.busyPollGated }
          : { polls: st.requestPolls, hits: st.requestPollHits, ready: st.requestPollReady, gated: st.requestPollGated };
      };
      const delta = (x: ReturnType<typeof pick>, y: ReturnType<typeof pick>) => ({ polls: x.polls - y.polls, hits: x.hits - y.hits, ready: x.ready - y.ready, gated: x.gated - y.gated });
      // up to 3 runs (a busy machine can delay a response past half the window: a true hit, which opens the gate)
      const tries: ReturnType<typeof delta>[] = [];
      for (let run = 0; run < 3 && !(tries.length && tries.at(-1)!.polls === tries.at(-1)!.ready); run++) {
        // the client's WRITEs, answered by bare ACKs only; or the peer's SENDs, which the client only ACKs
        const before = pick();
        if (answer) await writesAnsweredByAcks(a, b, 16);
        else await peerSendsUnanswered(a, b, 16);
        const closed = pick();
        expect(closed.hits - before.hits).toBe(0);
        expect(closed.gated - before.gated).toBeGreaterThanOrEqual(1);
        // READs, answered by the other end's device at once (the client's of the peer: the answer poll waits for
        // the response; the peer's of the client: the request poll waits for the client's response). After a turn
        // that began a wait (a probe's, the gate being closed) the thread is away half the window.
        relay.slowLook(GATE_WINDOW_US / 2);
        if (answer) await reads(a, b, 120);
        else await reads(b, a, 120);
        relay.slowLook(0);
        tries.push(delta(pick(), closed));
      }
      const d = tries.at(-1)!;
      // a run whose probes (1 in 16) all found their response at their first look: ready, none a hit (with the old
      // rule every one was a hit, so no run ever was), and the gate stayed closed (the old rule's first hit opened it:
      // every window after it opened)
      expect(d.polls, `no run whose windows all found their response at the first look in 3: ${JSON.stringify(tries)}`).toBe(d.ready);
      expect(d.ready, JSON.stringify(tries)).toBeGreaterThanOrEqual(4);
      expect(d.gated, JSON.stringify(tries)).toBeGreaterThanOrEqual(100);
      expect(gw.counters.refused).toEqual({});
    });
  }

  it.skipIf(!addon)("a yield that comes back after a whole window ends it as a miss: the gate closes, and opens again once yields are quick", async () => {
    // the client answers each of its peer's SENDs 2 ms later: inside the 10 ms request window, after its first look
    const { gw, a, b } = await tunnelAndPeer({ relay: "native", relayBusyPollUs: 0, relayRequestPollUs: GATE_WINDOW_US });
    const relay = (gw as unknown as { relay: RelayHandle }).relay;
    expect(() => relay.slowYield(1000001)).toThrow(RangeError);
    expect(() => relay.slowYield(0.5)).toThrow(RangeError);
    await peerSendsAnsweredAfter(a, b, 3, 2); // the conversation approved both ways
    const s0 = gw.relayStats()!;
    // each yield between polls now takes 20 ms, twice the window (as beside CPU hogs, where a yield can last a
    // scheduler tick): the client's answer comes meanwhile, and the thread, back after the window, must not
    // count it as in time (it did: the gate stayed open while every hop waited for the scheduler)
    relay.slowYield(2 * GATE_WINDOW_US);
    // (16 SENDs: 8 late windows close the gate; beside a CPU hog an answer now and then is there at a
    // window's first look, neither hit nor miss, and a run of 12 closed it with 7 late)
    await peerSendsAnsweredAfter(a, b, 16, 2);
    const s1 = gw.relayStats()!;
    expect(s1.requestPollHits - s0.requestPollHits).toBe(0);
    expect(s1.pollsLate - s0.pollsLate).toBeGreaterThanOrEqual(8);
    expect(s1.requestPolls - s0.requestPolls).toBeGreaterThanOrEqual(8); // 8 misses close the gate
    expect(s1.requestPollGated - s0.requestPollGated).toBeGreaterThanOrEqual(1);
    // quick yields again: the probes see the answers in time, and the gate opens
    relay.slowYield(0);
    await firstGoodRun(
      "40 answered SENDs with quick yields",
      3,
      async () => {
        const was = gw.relayStats()!;
        await peerSendsAnsweredAfter(a, b, 40, 2);
        const now = gw.relayStats()!;
        return { hits: now.requestPollHits - was.requestPollHits, polls: now.requestPolls - was.requestPolls, gated: now.requestPollGated - was.requestPollGated };
      },
      (r) => r.hits >= 10 && r.polls > r.gated,
    );
    expect(gw.counters.refused).toEqual({});
  });
});

describe("gateway relayJoinAcks (bare ACKs wait in the answer poll for their answer)", () => {
  it("refuses a value that is not a boolean", async () => {
    for (const v of [1, "on", null]) {
      await expect(Gateway.start({ listen: GW, port: 0, udpAddress: GW, udpPort: 0, relayJoinAcks: v as unknown as boolean })).rejects.toThrow(TypeError);
    }
  });

  for (const join of [true, false]) {
    it.skipIf(!addon)(`a SEND's ACK and the echo behind it reach the client in ${join ? "one frame" : "two frames"} (relayJoinAcks ${join})`, async () => {
      const { gw, a, b } = await tunnelAndPeer({ relay: "native", relayBusyPollUs: GATE_WINDOW_US, relayJoinAcks: join });
      await echoedSends(a, b, 3); // the conversation approved both ways (its first datagrams are JS's)
      // each: the client's SEND; the peer's ACK at once, its echo 1 ms later (inside the 10 ms window); the
      // client's ACK. Joining: the ACK waits in the window and leaves in the echo's frame — a late echo, under
      // load, misses some (beside two CPU hogs runs of 20 joined 7-13), so up to 3 runs of 20, one of which
      // joins at least half; not joining: never, in every run
      await firstGoodRun(
        `20 echoed SENDs, relayJoinAcks ${join}`,
        3,
        async () => {
          const s0 = gw.relayStats()!;
          await echoedSends(a, b, 20, 1);
          const s1 = gw.relayStats()!;
          expect(s1.udpIn - s0.udpIn).toBe(40); // the peer's ACK and echo of each, all through the thread
          if (!join) {
            expect(s1.ackJoins - s0.ackJoins).toBe(0);
            expect(s1.ackJoinMisses - s0.ackJoinMisses).toBe(0);
          }
          return { frames: s1.framesOut - s0.framesOut, joins: s1.ackJoins - s0.ackJoins };
        },
        // not joining: the ACK's frame, then the echo's (now and then the peer's device holds an ACK for its echo itself)
        (r) => (join ? r.joins >= 10 && r.frames <= 30 : r.frames >= 30),
      );
      expect(gw.counters.refused).toEqual({});
    });
  }

  it.skipIf(!addon)("ACKs whose answer never comes leave when the window ends, and are not held once the client's gate closes", async () => {
    const { gw, a, b } = await tunnelAndPeer({ relay: "native", relayBusyPollUs: GATE_WINDOW_US, relayJoinAcks: true });
    // RDMA WRITEs, answered by a bare ACK only: each held ACK waits out the (10 ms) window, then leaves
    const held = await writesAnsweredByAcks(a, b, 16);
    const w = gw.relayStats()!;
    expect(w.ackJoins).toBe(0);
    expect(w.ackJoinMisses).toBeGreaterThanOrEqual(1);
    expect(w.ackJoinMisses).toBeLessThanOrEqual(8); // 8 misses close the gate: no hold after that
    expect(w.busyPollGated).toBeGreaterThanOrEqual(1);
    // a held ACK's WRITE completed once its window was over, not before and not never
    expect(Math.max(...held)).toBeGreaterThanOrEqual(0.9 * GATE_WINDOW_US / 1000);
    // the gate closed: more WRITEs complete without a hold (a probe's window holds nothing either)
    const after = await writesAnsweredByAcks(a, b, 8);
    expect(gw.relayStats()!.ackJoinMisses).toBe(w.ackJoinMisses);
    expect(after.sort((x, y) => x - y)[4]!).toBeLessThan(0.9 * GATE_WINDOW_US / 1000);
    expect(gw.counters.refused).toEqual({});
  });
});

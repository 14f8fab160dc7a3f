// A flood of hostile datagrams at a Node UDP device while a real RC flow runs through it (issue
// 12): garbage shorter than a BTH, well-formed datagrams with random ICRCs (many lengths, so the
// ID solver's cache and budget are exercised), valid ICRCs to a QPN nobody has, and valid RC
// requests to the live QP from an address off its path. The flow completes (every WR SUCCESS
// once, bytes right), every flood datagram is dropped and counted by its reason, and the drop log
// writes a bounded number of records whose counts add up.
import { afterEach, describe, expect, it } from "vitest";
import dgram from "node:dgram";
import { openDevice } from "../../../host/node/index.js";
import { coreModule } from "../../../host/node/wasm-source.js";
import { WireCodec } from "../../../host/core/wire/codec.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, QpType, SendFlags, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import { Prng } from "../../../host/core/sim/prng.js";
import type { DropLogRecord } from "../../../host/core/link/drop-log.js";
import type { Device } from "../../../host/core/verbs/device.js";
import { instantiateCore } from "../../../host/core/wasm/instance.js";

interface IdSolver {
  memory: WebAssembly.Memory;
  wire_buf(): number;
  icrc_recover_ipv4_id(ptr: number, len: number): number;
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const A_ADDR = "127.0.12.20"; // the writer
const B_ADDR = "127.0.12.21"; // the target, flooded
// the attackers, one address per kind of datagram
const X_ADDR: Record<string, string> = { short: "127.0.12.22", bad_icrc: "127.0.12.23", unknown_qpn: "127.0.12.24", bad_source: "127.0.12.25" };
const X_PORT = 0xc0de; // the ICRC covers the UDP source port: the sockets bind the one the datagrams were built with
const WRS = 64;
const MSG = 8192;
const FLOOD = 4000; // datagrams per kind

describe("flood during a live RC flow", () => {
  it(`${(4 * FLOOD).toLocaleString("en")} hostile datagrams: the flow completes, drops counted by reason, the log stays bounded`, async () => {
    const records: DropLogRecord[] = [];
    const a: Device = await openDevice({ address: A_ADDR, port: 0 });
    cleanups.push(() => a.close());
    const b: Device = await openDevice({ address: B_ADDR, port: 0, logDrops: (r) => records.push(r), logDropsMs: 100 });
    cleanups.push(() => b.close());
    const portOf = (d: Device) => (d.limits as { port: number }).port;
    const side = (d: Device) => {
      const pd = d.allocPd();
      const cq = d.createCq(256);
      const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: WRS, maxRecvWr: 1, maxSendSge: 1, maxRecvSge: 1 } });
      const mr = pd.regMr(WRS * MSG, Access.LOCAL_WRITE | Access.REMOTE_WRITE);
      return { cq, qp, mr };
    };
    const A = side(a);
    const B = side(b);
    const opts = { qpAccessFlags: Access.REMOTE_WRITE, timeout: 14, retryCnt: 7 };
    connectQp(A.qp, { qpNum: B.qp.qpNum, psn: 0x1234, gid: b.queryGid(0), port: portOf(b) }, { ...opts, sqPsn: 0x4321 });
    connectQp(B.qp, { qpNum: A.qp.qpNum, psn: 0x4321, gid: a.queryGid(0), port: portOf(a) }, { ...opts, sqPsn: 0x1234 });

    // the hostile datagrams, built before the flow starts
    const codec = await WireCodec.create(await coreModule());
    const rng = new Prng(0xf100d);
    const solver = (await instantiateCore(await coreModule())) as unknown as IdSolver;
    // (a Node socket sends its own IPv4 IDs: the device solves them from the ICRC, as for Linux rxe)
    const emit = (kind: string, spec: Record<string, unknown>) =>
      codec.emit({ src: X_ADDR[kind], dst: B_ADDR, udpSrcPort: X_PORT, udpDstPort: portOf(b), ipId: 0, ...spec } as never).subarray(28).slice();
    const kinds: Record<string, Uint8Array[]> = { short: [], bad_icrc: [], unknown_qpn: [], bad_source: [] };
    for (let i = 0; i < FLOOD; i++) {
      kinds.short!.push(Uint8Array.from({ length: 1 + (i % 15) }, () => rng.u32() & 0xff));
      const len = 4 * (1 + (i % 1024)); // many lengths: no length costs the solver more than another
      const full = codec.emit({ src: X_ADDR.bad_icrc, dst: B_ADDR, udpSrcPort: X_PORT, udpDstPort: portOf(b), ipId: 0, opcode: 0x0a /* RC WRITE ONLY */, destQp: B.qp.qpNum, psn: 0x1234,
        reth: { va: B.mr.addr, rkey: B.mr.rkey, len }, payload: new Uint8Array(len) } as never);
      // a random ICRC, one that no IPv4 ID explains (1 in 2^16 would solve: its drop reason would depend on the ID)
      do {
        const r = rng.u32();
        full.set([r & 0xff, (r >>> 8) & 0xff, (r >>> 16) & 0xff, r >>> 24], full.length - 4);
        new Uint8Array(solver.memory.buffer).set(full, solver.wire_buf());
      } while (solver.icrc_recover_ipv4_id(solver.wire_buf(), full.length) >= 0);
      kinds.bad_icrc!.push(full.subarray(28).slice());
      kinds.unknown_qpn!.push(emit("unknown_qpn", { opcode: 0x04 /* RC SEND ONLY */, destQp: (B.qp.qpNum ^ 0x5a5a5a) & 0xffffff, psn: i, payload: new Uint8Array(32) }));
      kinds.bad_source!.push(emit("bad_source", { opcode: 0x0a, destQp: B.qp.qpNum, psn: 0x1234 + (i % 64), reth: { va: B.mr.addr, rkey: B.mr.rkey, len: 64 }, payload: new Uint8Array(64).fill(0xee) }));
    }
    const order = Object.keys(kinds);
    const sockets: Record<string, dgram.Socket> = {};
    for (const k of order) {
      const x = dgram.createSocket("udp4");
      cleanups.push(() => new Promise<void>((r) => x.close(() => r())));
      await new Promise<void>((r) => x.bind(X_PORT, X_ADDR[k], r));
      sockets[k] = x;
    }
    const t0 = Date.now();
    const flood = (async () => {
      for (let i = 0; i < FLOOD; i += 50) {
        for (const k of order) for (let j = i; j < Math.min(FLOOD, i + 50); j++) sockets[k]!.send(kinds[k]![j]!, portOf(b), B_ADDR);
        await new Promise((r) => setTimeout(r, 2));
      }
    })();

    // the real flow, at the same time
    const src = new Uint8Array(a.memory.buffer, Number(A.mr.addr), WRS * MSG);
    for (let i = 0; i < src.length; i++) src[i] = (i * 13 + (i >>> 9)) & 0xff;
    for (let k = 0; k < WRS; k++) {
      A.qp.postSend({ wrId: BigInt(k), opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [A.mr.sge(k * MSG, MSG)],
        rdma: { remoteAddr: B.mr.addr + BigInt(k * MSG), rkey: B.mr.rkey } });
    }
    const wcs = [];
    while (wcs.length < WRS) wcs.push(await A.cq.next());
    await flood;
    expect(wcs.map((w) => w.status)).toEqual(new Array(WRS).fill(WcStatus.SUCCESS));
    expect(wcs.map((w) => Number(w.wrId)).sort((p, q) => p - q)).toEqual(Array.from({ length: WRS }, (_, i) => i));
    expect(Buffer.compare(new Uint8Array(b.memory.buffer, Number(B.mr.addr), WRS * MSG), src)).toBe(0);

    // every flood datagram dropped, by its reason
    const drops = () => b.port!.stats.drops;
    const total = () => Object.values(drops()).reduce((n, c) => n + c, 0);
    const end = Date.now() + 10_000;
    while (total() < 4 * FLOOD && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(drops()).toEqual({ short: FLOOD, bad_icrc: FLOOD, unknown_qpn: FLOOD, bad_source: FLOOD });
    const c = b.queryCounters();
    expect(c).toMatchObject({ bad_icrc: FLOOD, unknown_qpn: FLOOD, bad_source: FLOOD });
    // the ID solver saw every bad-ICRC datagram, whatever its length, and no ID explained any
    const stat = (i: number) => (b.port as unknown as { core: { icrc_id_stat(i: number): number } }).core.icrc_id_stat(i);
    expect(stat(1)).toBe(FLOOD);

    // the log: one record per reason per 100 ms interval (and the close's flush), counts adding up
    const t1 = Date.now();
    b.close();
    const logged = records.reduce((n, r) => n + r.count, 0);
    expect(logged).toBe(4 * FLOOD);
    expect(new Set(records.map((r) => r.reason))).toEqual(new Set(order));
    expect(records.length).toBeLessThan(4 * FLOOD / 20);
    expect(records.length).toBeLessThanOrEqual(4 * (Math.ceil((t1 - t0) / 100) + 1));
  }, 60_000);
});

// The receive-path fuzzer (test/host/e2e/receive.fuzz.test.ts, `npm run fuzz`): real rxe
// packets from test/fixtures/captures, mutated by a seeded PRNG and aimed at one victim
// device — its RC, UC and UD QPs, the edges of its MRs, keys with and without the access
// a request needs — half of them with a valid ICRC so they reach the transport. Around
// every MR lie canary MRs, and "secret" MRs hold bytes no READ may return. Invariants:
// nothing throws (no wasm trap), linear memory does not grow, no byte changes outside
// MRs that allow remote writes or atomics (canaries, slack after each MR, read-only and
// secret MRs), and no datagram the device sends carries a secret.
import { readFileSync, readdirSync } from "node:fs";
import { readCapture } from "../../../host/core/capture/pcap.js";
import { extractIp } from "../../../host/core/net/ip-extract.js";
import { coreModule } from "../../../host/node/wasm-source.js";
import { SimNetwork } from "../../../host/core/sim/network.js";
import { WireCodec } from "../../../host/core/wire/codec.js";
import { Prng } from "../../../host/core/sim/prng.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, QpState, QpType } from "../../../host/core/verbs/enums.js";
import type { MemoryRegion } from "../../../host/core/verbs/mr.js";
import type { QueuePair } from "../../../host/core/verbs/qp.js";

const ME = "192.0.2.1";
const PEER = "192.0.2.2";
const QKEY = 0x11111111;
const SECRET = Array.from("SECRET!!", (c) => c.charCodeAt(0));

/** RoCE UDP payloads (BTH … ICRC) of every IPv4 and IPv6 packet in the captures. */
export function capturePayloads(): Uint8Array[] {
  const out: Uint8Array[] = [];
  const roots = [new URL("../../fixtures/captures/", import.meta.url)];
  for (const sub of ["cm/", "perftest/", "mw/"]) roots.push(new URL(sub, roots[0]));
  for (const dir of roots) {
    let names: string[];
    try {
      names = readdirSync(dir).filter((n) => n.endsWith(".pcap"));
    } catch {
      continue;
    }
    for (const f of names) {
      for (const rec of readCapture(readFileSync(new URL(f, dir)))) {
        const ex = extractIp(rec.frame, rec.linktype);
        if (!("ip" in ex)) continue;
        const ip = ex.ip;
        const v6 = ip[0]! >> 4 === 6;
        const hl = v6 ? 40 : (ip[0]! & 15) * 4;
        if ((v6 ? ip[6] : ip[9]) !== 17 || ((ip[hl + 2]! << 8) | ip[hl + 3]!) !== 4791) continue;
        out.push(ip.slice(hl + 8));
      }
    }
  }
  return out;
}

export interface FuzzReport {
  packets: number;
  validIcrc: number;
  verdicts: Record<string, number>;
  /** times a QP was found in ERR and reconnected */
  resets?: number;
  failure?: string;
}

interface Target { mr: MemoryRegion; writable: boolean; secret: boolean }

/** Runs `packets` mutated datagrams with `seed`; returns what happened, and the first broken invariant. */
export async function runReceiveFuzz(seed: number, packets: number, corpus = capturePayloads()): Promise<FuzzReport> {
  const mod = await coreModule();
  const codec = await WireCodec.create(mod);
  const net = new SimNetwork({ seed });
  const dev = await net.addDevice(mod, ME, { mrArenaBytes: 1 << 20, ringArenaBytes: 4 << 20, maxQp: 8 });
  const rng = new Prng(seed);
  const pick = <T>(a: readonly T[]): T => a[rng.u32() % a.length]!;
  const below = (n: number) => rng.u32() % n;

  const pd = dev.allocPd();
  const cq = dev.createCq(4096);
  const ALL = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ | Access.REMOTE_ATOMIC;
  // MRs in registration order, so the arena lays them side by side: canary, target, canary, ...
  const canary = () => {
    const m = pd.regMr(192, 0);
    m.bytes.fill(0xa5);
    return m;
  };
  const targets: Target[] = [];
  const canaries: MemoryRegion[] = [canary()];
  const kinds: [number, number, boolean][] = [
    [100, ALL, false], [4099, Access.LOCAL_WRITE | Access.REMOTE_WRITE, false], [64, Access.LOCAL_WRITE | Access.REMOTE_ATOMIC, false],
    [1000, Access.REMOTE_READ, false], [300, 0, true], [8, Access.LOCAL_WRITE, true], [2048, ALL, false],
  ];
  for (const [len, access, secret] of kinds) {
    const mr = pd.regMr(len, access);
    if (secret) for (let i = 0; i < mr.bytes.length; i++) mr.bytes[i] = SECRET[i % 8]!;
    else for (let i = 0; i < mr.bytes.length; i++) mr.bytes[i] = (i * 31 + len) & 0xff;
    targets.push({ mr, writable: (access & (Access.REMOTE_WRITE | Access.REMOTE_ATOMIC)) !== 0, secret });
    canaries.push(canary());
  }
  const recvMr = pd.regMr(64 * 1024, Access.LOCAL_WRITE);
  const cap = { maxSendWr: 64, maxRecvWr: 256, maxSendSge: 1, maxRecvSge: 1 };
  const qps: QueuePair[] = [QpType.RC, QpType.UC, QpType.UD].map((qpType) => pd.createQp({ qpType, sendCq: cq, recvCq: cq, cap }));
  const o = { qpAccessFlags: Access.REMOTE_WRITE | Access.REMOTE_READ | Access.REMOTE_ATOMIC, maxDestRdAtomic: 16, minRnrTimer: 1 };
  const connect = (qp: QueuePair, i: number) => {
    if (qp.qpType === QpType.UD) connectQp(qp, undefined, { sqPsn: 0, qkey: QKEY });
    else connectQp(qp, { qpNum: 0x99 + i, psn: 0, gid: `::ffff:${PEER}` }, { sqPsn: 0, ...o });
  };
  qps.forEach(connect);
  const posted = qps.map(() => 0);
  /** a guess at each QP's next expected PSN (reads consume more; the guess then lags, and stays useful) */
  const expected = qps.map(() => 0);
  let rid = 0n;
  // keep every RQ stocked; a QP that a hostile request moved to ERR (as rxe does on an access error) is reset and reconnected
  const stock = () => {
    for (const wc of cq.poll(4096)) {
      const k = qps.findIndex((q) => q.qpNum === wc.qpNum);
      if (k >= 0 && (wc.opcode & 128)) posted[k]!--; // receive completions (IBV_WC_RECV = 128 and up)
    }
    qps.forEach((qp, k) => {
      if (qp.state === QpState.ERR) {
        qp.modify({ qpState: QpState.RESET });
        posted[k] = 0;
        expected[k] = 0;
        connect(qp, k);
        resets++;
      }
      while (posted[k]! < 32) {
        qp.postRecv({ wrId: rid++, sgList: [recvMr.sge(Number(rid % 16n) * 4096, 4096)] });
        posted[k]!++;
      }
    });
  };
  let resets = 0;
  stock();

  // Everything outside the remotely writable MRs, from the first canary to the end of the last.
  const mem = () => new Uint8Array(dev.memory.buffer);
  const lo = Number(canaries[0]!.addr);
  const hi = Number(canaries[canaries.length - 1]!.addr) + 192;
  const mutable = targets.filter((t) => t.writable).map((t) => [Number(t.mr.addr), Number(t.mr.addr) + t.mr.length] as const);
  const frozen = mem().slice(lo, hi);
  const memBytes = dev.memory.buffer.byteLength;
  let leak: string | undefined;
  dev.port!.capture = (dir, d) => {
    if (dir !== "tx" || leak) return;
    const p = d.payload;
    for (let i = 0; i + 8 <= p.length; i++) {
      let k = 0;
      while (k < 8 && p[i + k] === SECRET[k]) k++;
      if (k === 8) { leak = `a sent datagram carries secret bytes at offset ${i}`; return; }
    }
  };

  // one MR is aimed at per packet: mostly its own key, sometimes another's, a stale-looking or a random one
  let aim: MemoryRegion = targets[0]!.mr;
  const rkeys = () => {
    const t = below(4) ? aim : pick(targets).mr;
    return pick([t.rkey, t.rkey, t.rkey, canaries[0]!.rkey, recvMr.rkey, t.rkey ^ 0x100, t.rkey ^ 1, rng.u32() >>> 1, 0]);
  };
  const edge = (carried = 0): { va: bigint; len: number } => {
    const t = aim;
    const len = (below(2) ? carried : pick([0, 1, 8, 16, t.length, t.length + 1, t.length - 1, 4096, 0xffffffff, rng.u32()])) >>> 0;
    const base = pick([t.addr, t.addr + BigInt(t.length), t.addr + BigInt(t.length) - BigInt(Math.min(len, t.length)), t.addr - 8n, 0n, (1n << 64n) - 8n]);
    const va = BigInt.asUintN(64, base + BigInt(below(17)) - 8n);
    return { va, len };
  };
  // A request built for the aimed MR: WRITE, READ, atomics, FLUSH, ATOMIC WRITE, to the RC or UC QP
  const AIMED = [0x0a, 0x0b, 0x06, 0x0c, 0x13, 0x14, 0x1c, 0x1d, 0x2a, 0x2b, 0x26];
  const aimed = (): Uint8Array => {
    const op = pick(AIMED);
    const info = codec.opcode(op)!;
    const qp = info.transport === "UC" ? qps[1]! : qps[0]!;
    const payloadLen = info.flags.payload ? pick([0, 1, 8, 64, 100, 512, 1024]) : 0;
    const e = edge(payloadLen);
    const spec: Record<string, unknown> = {
      src: PEER, dst: ME, udpSrcPort: 0xc001, opcode: op, destQp: qp.qpNum, psn: expected[qps.indexOf(qp)]!, ackReq: 1,
      payload: new Uint8Array(op === 0x1d ? 8 : payloadLen).fill(0xee),
    };
    if (info.offsets.RETH !== undefined) spec.reth = { va: e.va, rkey: rkeys(), dmaLength: op === 0x1d ? 8 : e.len };
    if (info.offsets.AtomicETH !== undefined) spec.atomicEth = { va: e.va & ~(below(4) ? 7n : 0n), rkey: rkeys(), swapAdd: 0xeeeeeeeeeeeeeeeen, compare: 0n };
    if (info.offsets.FETH !== undefined) spec.feth = below(16);
    if (info.offsets.ImmDt !== undefined) spec.immDt = 1;
    try {
      return codec.emit(spec as never).subarray(28).slice();
    } catch {
      return pick(corpus).slice();
    }
  };
  const template = codec.emit({ src: PEER, dst: ME, udpSrcPort: 0xc001, opcode: 4, destQp: 1, payload: new Uint8Array(4) });

  const verdicts: Record<string, number> = {};
  let validIcrc = 0;
  const fail = (i: number, why: string): FuzzReport => ({ packets: i, validIcrc, verdicts, failure: `packet ${i}: ${why}` });
  for (let i = 0; i < packets; i++) {
    aim = pick(targets).mr;
    let p: Uint8Array = below(100) < 40 ? aimed() : pick(corpus).slice();
    if (p.length >= 12) {
      const r = below(100);
      const qp = pick(qps);
      if (r < 85) { const q = qp.qpNum; p[5] = q >>> 16; p[6] = (q >>> 8) & 0xff; p[7] = q & 0xff; }
      if (below(100) < 25) p[0] = below(256);
      if (below(100) < 70) {
        // mostly the PSN the QP expects next (so requests reach the access checks), else near or anywhere
        const psn = below(100) < 70 ? (expected[qps.indexOf(qp)]! + below(2)) & 0xffffff : below(100) < 50 ? below(64) : rng.u32() & 0xffffff;
        p[9] = psn >>> 16; p[10] = (psn >>> 8) & 0xff; p[11] = psn & 0xff;
      }
      if (below(100) < 10) p[1] = (p[1]! & 0xcf) | (below(4) << 4); // pad count
      const info = codec.opcode(p[0]!);
      const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
      const reth = info?.offsets.RETH;
      if (reth !== undefined && p.length >= reth + 16 && below(100) < 90) {
        // half the time the DMA length is the payload the packet carries, as an ONLY packet needs
        const carried = Math.max(0, p.length - info!.length - ((p[1]! >> 4) & 3) - 4);
        const e = edge(carried);
        dv.setBigUint64(reth, e.va);
        dv.setUint32(reth + 8, rkeys());
        dv.setUint32(reth + 12, e.len);
      }
      const atm = info?.offsets.AtomicETH;
      if (atm !== undefined && p.length >= atm + 28 && below(100) < 90) {
        dv.setBigUint64(atm, edge().va & (below(4) ? ~7n & ((1n << 64n) - 1n) : (1n << 64n) - 1n));
        dv.setUint32(atm + 8, rkeys());
      }
      const deth = info?.offsets.DETH;
      if (deth !== undefined && p.length >= deth + 8 && below(100) < 70) dv.setUint32(deth, QKEY);
    }
    const flips = below(100) < 30 ? 1 + below(4) : 0;
    for (let k = 0; k < flips && p.length; k++) p[below(p.length)] ^= 1 << below(8);
    const resize = below(100);
    if (resize < 5) p = p.slice(0, below(p.length + 1));
    else if (resize < 10) { const q = new Uint8Array(p.length + 4 * (1 + below(8))); q.set(p); p = q; }
    const valid = below(2) === 0 && p.length >= 4 && p.length + 28 <= 16384;
    if (valid) {
      // the ICRC over the IPv4/UDP header the datagram arrives with (ID 0, DF)
      const full = new Uint8Array(28 + p.length);
      full.set(template.subarray(0, 28));
      const tl = full.length;
      full[2] = tl >>> 8; full[3] = tl & 0xff;
      full[24] = (tl - 20) >>> 8; full[25] = (tl - 20) & 0xff;
      full[4] = 0; full[5] = 0;
      full.set(p, 28);
      new DataView(p.buffer, p.byteOffset).setUint32(p.length - 4, codec.icrc(full));
      validIcrc++;
    }
    const unseen = !valid && below(4) === 0;
    let r: number;
    try {
      r = dev.port!.receive({ src: PEER, dst: ME, srcPort: 0xc001, dstPort: 4791, ...(unseen ? {} : { ipId: 0 }), payload: p });
    } catch (e) {
      return fail(i, `receive threw ${(e as Error).stack ?? e}`);
    }
    if (r === 0 && p.length >= 12) {
      const k = qps.findIndex((q) => q.qpNum === ((p[5]! << 16) | (p[6]! << 8) | p[7]!));
      const psn = (p[9]! << 16) | (p[10]! << 8) | p[11]!;
      if (k >= 0 && psn === expected[k]) expected[k] = (psn + 1) & 0xffffff;
    }
    const name = r < 0 ? "too_long" : r === 0 ? "ok" : "dropped";
    verdicts[name] = (verdicts[name] ?? 0) + 1;
    if ((i & 255) === 255) {
      try {
        net.run(net.now + 20_000, 100_000);
        stock();
      } catch (e) {
        return fail(i, `progress threw ${(e as Error).stack ?? e}`);
      }
      const bad = checkFrozen();
      if (bad) return fail(i, bad);
      if (leak) return fail(i, leak);
      if (dev.memory.buffer.byteLength !== memBytes) return fail(i, `linear memory grew from ${memBytes} to ${dev.memory.buffer.byteLength}`);
    }
  }
  const bad = checkFrozen();
  if (bad) return fail(packets, bad);
  if (leak) return fail(packets, leak);
  if (dev.memory.buffer.byteLength !== memBytes) return fail(packets, `linear memory grew from ${memBytes} to ${dev.memory.buffer.byteLength}`);
  dev.close();
  return { packets, validIcrc, verdicts, resets };

  function checkFrozen(): string | undefined {
    const now = mem();
    for (let a = lo; a < hi; a++) {
      if (now[a] === frozen[a - lo]) continue;
      if (mutable.some(([s, e]) => a >= s && a < e)) continue;
      const t = targets.find((x) => a >= Number(x.mr.addr) && a < Number(x.mr.addr) + x.mr.length);
      return `byte at ${a} changed (${frozen[a - lo]} -> ${now[a]}) ${t ? `inside an MR that forbids remote writes (access ${t.mr.access})` : "outside every writable MR (canary or slack)"}`;
    }
    return undefined;
  }
}

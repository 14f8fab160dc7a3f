// The native batched datapath (host/node/datapath.ts over host/node/native/datapath.c), tested
// against plain node:dgram sockets and the wasm core's own ICRC. Addresses: 127.33.0.0/16.
import { afterEach, describe, expect, it } from "vitest";
import dgram from "node:dgram";
import { once } from "node:events";
import { WireCodec } from "../../../host/core/wire/codec.js";
import { addressGid, gidToAddress, instantiateCore, parseGid } from "../../../host/core/index.js";
import { coreModule } from "../../../host/node/wasm-source.js";
import {
  NativeDatapath, RX_GRO, RX_IP_ID_UNSEEN, RX_RECORD, RX_TRUNCATED, TX_GSO, TX_ICRC, TX_RECORD, datapathAddon,
  datapathAddonFrom, datapathUnavailableReason, openDatapath, patchIcrcId, rxLayoutWords, txLayoutWords, type DatapathOptions,
} from "../../../host/node/datapath.js";
import { Worker } from "node:worker_threads";
import { readdirSync, readlinkSync } from "node:fs";
import { SourcePortPool } from "../../../host/node/sport-pool.js";
import { sockoptAddon } from "../../../host/node/sockopt.js";
import { until } from "../support/until.js";

const EMSGSIZE = 90, EFAULT = 14, EAFNOSUPPORT = 97;
const A = "127.33.0.1", B = "127.33.0.2", C = "127.33.0.3";

// npm install builds the addon on Linux; where it failed this suite fails with the reason.
const addon = datapathAddon();

const open: { close(): void }[] = [];
afterEach(() => {
  while (open.length) open.pop()!.close();
});

function dp(opts: Partial<DatapathOptions> & { memory: DatapathOptions["memory"] }): NativeDatapath {
  const r = openDatapath({ address: A, port: 0, ...opts });
  if (!r.datapath) throw new Error(r.reason);
  open.push(r.datapath);
  return r.datapath;
}

async function udpSocket(address: string, type: "udp4" | "udp6" = "udp4"): Promise<dgram.Socket> {
  const s = dgram.createSocket({ type, ipv6Only: type === "udp6" });
  s.bind(0, address);
  await once(s, "listening");
  open.push({ close: () => s.close() });
  return s;
}

/** Collects datagrams until `n` arrived (or fails after `ms`). */
function collect(s: dgram.Socket, n: number, ms = 3000): Promise<{ msg: Buffer; rinfo: dgram.RemoteInfo }[]> {
  const got: { msg: Buffer; rinfo: dgram.RemoteInfo }[] = [];
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`got ${got.length} of ${n} datagrams`)), ms);
    s.on("message", (msg, rinfo) => {
      got.push({ msg, rinfo });
      if (got.length === n) clearTimeout(t), resolve(got);
    });
  });
}

/** Writes one TX_RECORD: destination, flags, ipId, pieces as [offset, length]. */
function putRecord(m: Uint8Array, at: number, r: { dst: string; port: number; flags?: number; ipId?: number; pieces: [number, number][] }) {
  const dv = new DataView(m.buffer, m.byteOffset, m.byteLength);
  m.set(parseGid(addressGid(r.dst)), at + TX_RECORD.dstAddr);
  dv.setUint32(at + TX_RECORD.dstPort, r.port, true);
  dv.setUint32(at + TX_RECORD.flags, r.flags ?? 0, true);
  dv.setUint32(at + TX_RECORD.ipId, r.ipId ?? 0, true);
  dv.setInt32(at + TX_RECORD.result, 0x7eadbeef, true);
  TX_RECORD.pieces.forEach((p, i) => {
    const [off, len] = r.pieces[i] ?? [0, 0];
    dv.setUint32(at + p.data, off, true);
    dv.setUint32(at + p.len, len, true);
  });
}

function field(m: Uint8Array, at: number, off: number, signed = false): number {
  const dv = new DataView(m.buffer, m.byteOffset, m.byteLength);
  return signed ? dv.getInt32(at + off, true) : dv.getUint32(at + off, true);
}

/** A recognisable byte pattern for datagram `seq`. */
function fill(m: Uint8Array, at: number, len: number, seq: number) {
  for (let i = 0; i < len; i++) m[at + i] = (seq * 31 + i * 7) & 0xff;
}
function pattern(len: number, seq: number): Buffer {
  const b = Buffer.alloc(len);
  fill(b, 0, len, seq);
  return b;
}

const TABLE = 0, DATA = 1 << 16, RXAREA = 1 << 20, RXMETA = 3 << 20;
const MEM = 4 << 20;

type Mem = "ArrayBuffer" | "SharedArrayBuffer" | "WebAssembly.Memory(shared)";
function memory(kind: Mem): { view: Uint8Array; opt: DatapathOptions["memory"] } {
  if (kind === "ArrayBuffer") {
    const view = new Uint8Array(new ArrayBuffer(MEM));
    return { view, opt: view };
  }
  if (kind === "SharedArrayBuffer") {
    const sab = new SharedArrayBuffer(MEM);
    return { view: new Uint8Array(sab), opt: sab };
  }
  const wm = new WebAssembly.Memory({ initial: MEM >> 16, maximum: MEM >> 16, shared: true });
  return { view: new Uint8Array(wm.buffer), opt: wm };
}

describe("native datapath: the addon", () => {
  it("is built with the datapath", () => {
    expect(datapathUnavailableReason()).toBeUndefined();
    expect(typeof addon?.Datapath).toBe("function");
  });

  it("without the addon openDatapath returns the reason instead of a datapath (the host keeps node:dgram)", () => {
    const m = new Uint8Array(1024);
    expect(datapathAddonFrom(undefined, "socket addon not loaded (no such file)")).toEqual({ reason: "socket addon not loaded (no such file)" });
    expect(datapathAddonFrom({ openUdpSocket() {}, socketOptions() {} }).reason).toMatch(/built without the datapath.*build\.mjs/);
    const r = openDatapath({ memory: m, address: A, port: 0 }, null);
    expect(r.datapath).toBeUndefined();
    expect(typeof r.reason).toBe("string");
  });

  it("refuses bad layouts, addresses and out-of-buffer batches with clear errors", () => {
    const m = new Uint8Array(4096);
    expect(() => openDatapath({ memory: m, address: "nope", port: 0 })).toThrow(/not an IPv4 or IPv6 address/);
    expect(() => openDatapath({ memory: m, address: A, port: 0, txLayout: { ...TX_RECORD, dstPort: 62 } })).toThrow(/dstAddr.*dstPort.*inside the record/);
    expect(() => openDatapath({ memory: m, address: A, port: 0, txLayout: { ...TX_RECORD, ringCap: 3 } })).toThrow(/power of two/);
    expect(() => openDatapath({ memory: m, address: A, port: 0, rxLayout: { ...RX_RECORD, src: 60 } })).toThrow(/src \(16 bytes\)/);
    const d = dp({ memory: m });
    expect(() => d.sendBatch(4096 - 64, 0, 2)).toThrow(/do not fit the buffer/);
    expect(() => d.receive({ area: 0, slotSize: 2048, slots: 2, meta: 1024, metaCap: 4 }, () => {})).toThrow(/overlap/);
    expect(() => d.receive({ area: 0, slotSize: 2048, slots: 4, meta: 0, metaCap: 1 }, () => {})).toThrow(/do not fit/);
    d.close();
    expect(() => d.sendBatch(0, 0, 0)).toThrow(/closed/);
  });
});

describe("native datapath: TX", () => {
  it("sends a batch of gathered datagrams with one sendmmsg, bytes and order intact", async () => {
    const { view: m } = memory("ArrayBuffer");
    const rx = await udpSocket(B);
    const d = dp({ memory: m });
    const sizes = [1, 100, 4112, 1500, 60, 9000, 4096, 3];
    let at = DATA;
    sizes.forEach((len, i) => {
      // three pieces, scattered, like headers + payload in an MR + trailer
      const a = Math.min(len, 12), b = Math.max(0, len - a - 4 > 0 ? len - a - 4 : len - a), c = len - a - b;
      const whole = pattern(len, i);
      m.set(whole.subarray(0, a), at);
      m.set(whole.subarray(a, a + b), at + 10000);
      m.set(whole.subarray(a + b), at + 20000);
      putRecord(m, TABLE + i * 64, { dst: B, port: rx.address().port, pieces: [[at, a], [at + 10000, b], [at + 20000, c]] });
      at += 30000;
    });
    const got = collect(rx, sizes.length);
    expect(d.sendBatch(TABLE, 0, sizes.length)).toBe(sizes.length);
    const msgs = await got;
    msgs.forEach(({ msg, rinfo }, i) => {
      expect(msg.equals(pattern(sizes[i]!, i))).toBe(true);
      expect(rinfo).toMatchObject({ address: A, port: d.port });
    });
    sizes.forEach((len, i) => expect(field(m, TABLE + i * 64, TX_RECORD.result, true)).toBe(len));
    expect(d.stats()).toMatchObject({ txDatagrams: sizes.length, txSyscalls: 1, txErrors: 0, txGsoSends: 0 });
  });

  it("reports errors per datagram (EMSGSIZE, EFAULT, EAFNOSUPPORT) and sends the rest", async () => {
    const { view: m } = memory("ArrayBuffer");
    const rx = await udpSocket(B);
    const d = dp({ memory: m });
    const port = rx.address().port;
    fill(m, DATA, 70_000, 1);
    const recs = [
      { dst: B, port, pieces: [[DATA, 100]] },
      { dst: B, port, pieces: [[DATA, 65_600]] }, // larger than any IPv4 UDP datagram
      { dst: B, port, pieces: [[DATA + 1, 200]] },
      { dst: B, port, pieces: [[MEM - 10, 100]] }, // reaches past the buffer
      { dst: B, port, pieces: [[DATA + 2, 300]] },
      { dst: "::1", port, pieces: [[DATA, 10]] }, // IPv6 peer on an IPv4 socket
      { dst: B, port, pieces: [[DATA + 3, 400]] },
    ] as const;
    recs.forEach((r, i) => putRecord(m, TABLE + i * 64, { ...r, pieces: r.pieces.map((p) => [...p] as [number, number]) }));
    const got = collect(rx, 4);
    expect(d.sendBatch(TABLE, 0, recs.length)).toBe(recs.length);
    const results = recs.map((_, i) => field(m, TABLE + i * 64, TX_RECORD.result, true));
    expect(results).toEqual([100, -EMSGSIZE, 200, -EFAULT, 300, -EAFNOSUPPORT, 400]);
    const msgs = await got;
    expect(msgs.map((x) => x.msg.length)).toEqual([100, 200, 300, 400]);
    expect(msgs[1]!.msg.equals(Buffer.from(m.subarray(DATA + 1, DATA + 201)))).toBe(true);
    expect(d.stats()).toMatchObject({ txDatagrams: 4, txErrors: 3, txBadRecords: 2 });
  });

  it("sends a GSO run as one send that the kernel splits into the right datagrams, IPv4 IDs 0..n-1", async () => {
    const { view: m } = memory("ArrayBuffer");
    const rx = await udpSocket(B);
    const d = dp({ memory: m });
    expect(d.info().gso).toBe(true);
    const port = rx.address().port;
    // 12 x 1000 then a shorter last one; then a run broken by another length and another peer
    const lens = [...Array(12).fill(1000), 600, 1200, 1200, 1200];
    const other = await udpSocket(C);
    lens.forEach((len, i) => {
      fill(m, DATA + i * 2000, len, i);
      const to = i === 15 ? { dst: C, port: other.address().port } : { dst: B, port };
      putRecord(m, TABLE + i * 64, { ...to, flags: TX_GSO, ipId: 0, pieces: [[DATA + i * 2000, 8], [DATA + i * 2000 + 8, len - 8]] });
    });
    const gotB = collect(rx, 15);
    const gotC = collect(other, 1);
    expect(d.sendBatch(TABLE, 0, lens.length)).toBe(lens.length);
    const msgs = await gotB;
    expect(msgs.map((x) => x.msg.length)).toEqual(lens.slice(0, 15));
    msgs.forEach(({ msg }, i) => expect(msg.equals(pattern(lens[i]!, i))).toBe(true));
    expect((await gotC)[0]!.msg.equals(pattern(1200, 15))).toBe(true);
    // runs: [0..12] (13 segments), [13, 14] (2), [15] alone to C
    expect(lens.map((_, i) => field(m, TABLE + i * 64, TX_RECORD.ipId))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 1, 0]);
    expect(d.stats()).toMatchObject({ txGsoSends: 2, txGsoSegments: 15, txDatagrams: 16, txSyscalls: 1, txErrors: 0 });
  });

  it("sends GSO over IPv6 too (no ID there)", async () => {
    const m = new Uint8Array(1 << 20);
    const rx = await udpSocket("::1", "udp6");
    const d = dp({ memory: m, address: "::1" });
    for (let i = 0; i < 5; i++) {
      fill(m, DATA + i * 1000, 900, i);
      putRecord(m, TABLE + i * 64, { dst: "::1", port: rx.address().port, flags: TX_GSO, ipId: 77, pieces: [[DATA + i * 1000, 900]] });
    }
    const got = collect(rx, 5);
    expect(d.sendBatch(TABLE, 0, 5)).toBe(5);
    (await got).forEach(({ msg }, i) => expect(msg.equals(pattern(900, i))).toBe(true));
    expect(field(m, TABLE + 4 * 64, TX_RECORD.ipId)).toBe(77); // untouched: IPv6 has no ID
    expect(d.stats()).toMatchObject({ txGsoSends: 1, txGsoSegments: 5 });
  });
});

describe("native datapath: the ICRC follows the IPv4 ID", () => {
  it("patchIcrcId gives the ICRC the wasm core computes for IDs 0..70 and a spread of others, at several lengths", async () => {
    const codec = new WireCodec(await instantiateCore(await coreModule()));
    const m = new Uint8Array(1 << 16);
    for (const payloadLen of [0, 1, 100, 1024, 4096]) {
      const spec = { src: A, dst: B, udpSrcPort: 40000, udpDstPort: 4791, opcode: 0x04, destQp: 0x11, psn: 5, payload: pattern(payloadLen, 3) };
      const base = codec.emit({ ...spec, ipId: 0 });
      const udp = base.subarray(28); // IPv4 20 + UDP 8: the UDP payload BTH .. ICRC
      const ids = [...Array(71).keys(), 0x100, 0x1234, 0x8000, 0xffff];
      let from = 0;
      m.set(udp, 0);
      for (const id of ids) {
        patchIcrcId(addon!, m, 0, udp.length, from, id);
        const want = codec.emit({ ...spec, ipId: id }).subarray(28);
        expect(Buffer.from(m.subarray(0, udp.length)).equals(Buffer.from(want))).toBe(true);
        from = id;
      }
    }
  });

  it("each segment of a GSO send carries the ICRC for the ID it gets (checked by the core's parser)", async () => {
    const codec = new WireCodec(await instantiateCore(await coreModule()));
    const { view: m } = memory("ArrayBuffer");
    const rx = await udpSocket(B);
    const d = dp({ memory: m });
    const n = 20;
    const port = rx.address().port;
    const facts = { src: A, dst: B, udpSrcPort: d.port, udpDstPort: port };
    for (let i = 0; i < n; i++) {
      // an RC WRITE MIDDLE at MTU 1024, ICRC computed for ID 0 as the device does
      const pkt = codec.emit({ ...facts, ipId: 0, opcode: 0x07, destQp: 0x42, psn: 100 + i, payload: pattern(1024, i) });
      const udp = pkt.subarray(28);
      m.set(udp, DATA + i * 2048);
      putRecord(m, TABLE + i * 64, { dst: B, port, flags: TX_GSO | TX_ICRC, ipId: 0, pieces: [[DATA + i * 2048, 12], [DATA + i * 2048 + 12, udp.length - 12]] });
    }
    const got = collect(rx, n);
    expect(d.sendBatch(TABLE, 0, n)).toBe(n);
    const msgs = await got;
    msgs.forEach(({ msg }, i) => {
      const ok = codec.parseUdpPayload(msg, { ...facts, ipId: i });
      expect(ok.ok && ok.info && ok.repr.icrcOk, `segment ${i}`).toBe(true);
      if (i > 0) {
        const as0 = codec.parseUdpPayload(msg, { ...facts, ipId: 0 });
        expect(as0.ok && as0.repr.icrcOk).toBe(false);
      }
      expect(field(m, TABLE + i * 64, TX_RECORD.ipId)).toBe(i);
    });
    // sent again one by one (no GSO): every ICRC goes back to ID 0
    for (let i = 0; i < n; i++) new DataView(m.buffer).setUint32(TABLE + i * 64 + TX_RECORD.flags, TX_ICRC, true);
    const got2 = collect(rx, n);
    expect(d.sendBatch(TABLE, 0, n)).toBe(n);
    (await got2).forEach(({ msg }) => {
      const r = codec.parseUdpPayload(msg, { ...facts, ipId: 0 });
      expect(r.ok && r.repr.icrcOk).toBe(true);
    });
    expect([...Array(n).keys()].map((i) => field(m, TABLE + i * 64, TX_RECORD.ipId))).toEqual(Array(n).fill(0));
    expect(d.stats()).toMatchObject({ txGsoSends: 1, txDatagrams: 2 * n });
  });
});

describe("native datapath: RX", () => {
  for (const kind of ["ArrayBuffer", "SharedArrayBuffer", "WebAssembly.Memory(shared)"] as const) {
    it(`receives from many senders in batches into the slots, metadata per datagram (${kind})`, async () => {
      const { view: m, opt } = memory(kind);
      const d = dp({ memory: opt, address: B, pktinfo: true });
      const senders = await Promise.all([A, C, "127.33.0.4", "127.33.0.5"].map((a) => udpSocket(a)));
      const per = 40;
      // queue everything before receiving starts, so the first wakeups find full batches
      for (let k = 0; k < per; k++) senders.forEach((s, j) => s.send(pattern(100 + k * 10 + j, j * 1000 + k), d.port, B));
      await new Promise((r) => setTimeout(r, 100));
      const seen = new Map<string, number>();
      const batches: number[] = [];
      let bad = 0;
      d.receive({ area: RXAREA, slotSize: 2048, slots: 64, meta: RXMETA, metaCap: 32 }, (count, error) => {
        expect(error).toBe(0);
        batches.push(count);
        const dv = new DataView(m.buffer, m.byteOffset);
        for (let i = 0; i < count; i++) {
          const r = RXMETA + i * RX_RECORD.stride;
          const src = gidToAddress(m.slice(r + RX_RECORD.src, r + RX_RECORD.src + 16));
          const srcPort = dv.getUint32(r + RX_RECORD.srcPort, true);
          const j = senders.findIndex((s) => s.address().port === srcPort && s.address().address === src);
          const k = seen.get(`${j}`) ?? 0;
          const len = dv.getUint32(r + RX_RECORD.length, true);
          const data = dv.getUint32(r + RX_RECORD.data, true);
          if (j < 0 || len !== 100 + k * 10 + j || !Buffer.from(m.subarray(data, data + len)).equals(pattern(len, j * 1000 + k))) bad++;
          if (dv.getUint32(r + RX_RECORD.family, true) !== 4 || dv.getUint32(r + RX_RECORD.flags, true) !== 0) bad++;
          if (dv.getUint32(r + RX_RECORD.ipId, true) !== RX_IP_ID_UNSEEN || dv.getUint32(r + RX_RECORD.dstPort, true) !== d.port) bad++;
          if (gidToAddress(m.slice(r + RX_RECORD.dst, r + RX_RECORD.dst + 16)) !== B) bad++;
          seen.set(`${j}`, k + 1);
        }
      });
      await until(() => [...seen.values()].reduce((a, b) => a + b, 0) >= senders.length * per, 3000, "all datagrams");
      expect(bad).toBe(0);
      expect([...seen.values()]).toEqual(Array(senders.length).fill(per));
      expect(Math.max(...batches)).toBe(32); // bounded by metaCap, and batched
      expect(batches.length).toBeLessThan(senders.length * per / 4);
      expect(d.stats()).toMatchObject({ rxDatagrams: senders.length * per, rxTruncated: 0, rxErrors: 0 });
    });
  }

  it("flags a datagram longer than its slot as truncated", async () => {
    const m = new Uint8Array(1 << 20);
    const d = dp({ memory: m, address: B });
    const s = await udpSocket(A);
    const flags: number[] = [];
    d.receive({ area: 0, slotSize: 256, slots: 4, meta: 4096, metaCap: 4 }, (count) => {
      for (let i = 0; i < count; i++) flags.push(field(m, 4096 + i * RX_RECORD.stride, RX_RECORD.flags), field(m, 4096 + i * RX_RECORD.stride, RX_RECORD.length));
    });
    s.send(Buffer.alloc(1000, 1), d.port, B);
    s.send(Buffer.alloc(200, 2), d.port, B);
    await until(() => flags.length === 4);
    expect(flags).toEqual([RX_TRUNCATED, 256, 0, 200]);
    expect(d.stats().rxTruncated).toBe(1);
  });

  it("splits a GRO super-datagram into its segments (a GSO send from another datapath), index as the ID hint", async () => {
    const { view: mt } = memory("SharedArrayBuffer");
    const { view: mr, opt } = memory("SharedArrayBuffer");
    const rx = dp({ memory: opt, address: B, gro: true });
    expect(rx.info().gro).toBe(true);
    const tx = dp({ memory: mt, address: A });
    const n = 15, len = 4112;
    for (let i = 0; i < n; i++) {
      fill(mt, DATA + i * len, len, i);
      putRecord(mt, TABLE + i * 64, { dst: B, port: rx.port, flags: TX_GSO, pieces: [[DATA + i * len, len]] });
    }
    const recs: { len: number; hint: number; flags: number; ok: boolean }[] = [];
    rx.receive({ area: 0, slotSize: 65536, slots: 8, meta: RXMETA, metaCap: 64 }, (count) => {
      for (let i = 0; i < count; i++) {
        const r = RXMETA + i * RX_RECORD.stride;
        const l = field(mr, r, RX_RECORD.length), at = field(mr, r, RX_RECORD.data), hint = field(mr, r, RX_RECORD.idHint);
        recs.push({ len: l, hint, flags: field(mr, r, RX_RECORD.flags), ok: Buffer.from(mr.subarray(at, at + l)).equals(pattern(l, recs.length)) });
      }
    });
    expect(tx.sendBatch(TABLE, 0, n)).toBe(n);
    await until(() => recs.length === n);
    expect(recs.every((r) => r.ok && r.len === len)).toBe(true);
    // on loopback the GSO send reaches the GRO socket whole: one super-datagram, segment i = ID i
    expect(recs.map((r) => r.hint)).toEqual([...Array(n).keys()]);
    expect(recs.every((r) => r.flags === RX_GRO)).toBe(true);
    expect(rx.stats()).toMatchObject({ rxGroSplits: 1, rxSyscalls: expect.any(Number), rxDatagrams: n });
    // a lone datagram to the GRO socket is one record without the GRO flag
    const s = await udpSocket(C);
    s.send(pattern(300, 99), rx.port, B);
    await until(() => recs.length === n + 1);
    expect(recs[n]).toMatchObject({ len: 300, hint: 0, flags: 0 });
  });

  it("answers from inside the batch callback: the reply goes out in the same turn", async () => {
    const { view: m, opt } = memory("SharedArrayBuffer");
    const echo = dp({ memory: opt, address: B });
    const client = await udpSocket(A);
    const n = 50;
    echo.receive({ area: RXAREA, slotSize: 2048, slots: 16, meta: RXMETA, metaCap: 16 }, (count) => {
      // each received datagram becomes a TX record pointing at its own slot, back to its source
      for (let i = 0; i < count; i++) {
        const r = RXMETA + i * RX_RECORD.stride, t = TABLE + i * 64;
        m.copyWithin(t + TX_RECORD.dstAddr, r + RX_RECORD.src, r + RX_RECORD.src + 16);
        new DataView(m.buffer).setUint32(t + TX_RECORD.dstPort, field(m, r, RX_RECORD.srcPort), true);
        putPieces(m, t, field(m, r, RX_RECORD.data), field(m, r, RX_RECORD.length));
      }
      expect(echo.sendBatch(TABLE, 0, count)).toBe(count);
    });
    const got = collect(client, n);
    for (let i = 0; i < n; i++) client.send(pattern(64 + i, i), echo.port, B);
    const msgs = await got;
    expect(msgs.map((x) => x.msg.length).sort((a, b) => a - b)).toEqual([...Array(n).keys()].map((i) => 64 + i));
    expect(echo.stats()).toMatchObject({ rxDatagrams: n, txDatagrams: n });
  });

  it("busy polling: refuses a window over 1000 µs; with one, the socket is polled after each batch", async () => {
    const { opt } = memory("SharedArrayBuffer");
    const d = dp({ memory: opt, address: B });
    expect(() => d.setBusyPoll(1001)).toThrow(RangeError);
    expect(() => d.setBusyPoll(-1)).toThrow(TypeError);
    d.setBusyPoll(1000);
    const client = await udpSocket(A);
    let got = 0;
    d.receive({ area: RXAREA, slotSize: 2048, slots: 16, meta: RXMETA, metaCap: 16 }, (count) => {
      got += count;
      // the next datagram leaves from inside the callback: the window (1 ms) polls until it is here
      if (got < 20) client.send(pattern(64, got), d.port, B);
    });
    client.send(pattern(64, 0), d.port, B);
    await until(() => got >= 20, 3000, "20 datagrams");
    const st = d.stats();
    // the window polled after batches; each batch came by a wake-up, by a poll inside the window, or
    // at a window's first look (how many by which depends on the machine's scheduling: a loaded one
    // lets windows expire, and a datagram there at the first look counts as ready, not as a hit)
    expect(st.rxBusyPolls + st.rxBusyHits).toBeGreaterThan(0);
    expect(st.rxBusyHits + st.rxBusyReady! + st.rxWakeups).toBeGreaterThanOrEqual(st.rxBatches);
    d.setBusyPoll(0);
  });

  it("survives close() from inside its own callback", async () => {
    const m = new Uint8Array(1 << 20);
    const d = dp({ memory: m, address: B });
    const s = await udpSocket(A);
    let calls = 0;
    d.receive({ area: 0, slotSize: 2048, slots: 8, meta: 1 << 19, metaCap: 1 }, () => {
      calls++;
      d.close();
    });
    for (let i = 0; i < 10; i++) s.send(Buffer.alloc(10), d.port, B);
    await until(() => calls > 0);
    await new Promise((r) => setTimeout(r, 50));
    expect(calls).toBe(1);
    expect(d.info().closed).toBe(true);
  });

  it("info() tells whether the socket is watched and what it holds now (a stalled receiver's report)", async () => {
    const m = new Uint8Array(1 << 20);
    const d = dp({ memory: m, address: B });
    const s = await udpSocket(A);
    expect(d.info()).toMatchObject({ receiving: false, watchingReadable: false, readableNow: false, headDatagramBytes: 0 });
    // not receiving: a datagram stays in the socket, and info() sees it there
    s.send(Buffer.alloc(77), d.port, B);
    await until(() => d.info().readableNow === true);
    expect(d.info()).toMatchObject({ receiving: false, watchingReadable: false, readableNow: true, headDatagramBytes: 77 });
    const got: number[] = [];
    d.receive({ area: 0, slotSize: 2048, slots: 8, meta: 1 << 19, metaCap: 8 }, (count) => got.push(count));
    expect(d.info()).toMatchObject({ receiving: true, watchingReadable: true });
    await until(() => got.length > 0);
    expect(d.info()).toMatchObject({ receiving: true, watchingReadable: true, readableNow: false, headDatagramBytes: 0 });
    d.stopReceive();
    expect(d.info()).toMatchObject({ receiving: false, watchingReadable: false });
  });

  it("a socket error (POLLERR: here an ICMP port unreachable queued with recvErr) is read, cleared and counted; receiving goes on", async () => {
    const m = new Uint8Array(1 << 20);
    const d = dp({ memory: m, address: B, recvErr: true });
    const counts: [number, number][] = [];
    d.receive({ area: 0, slotSize: 2048, slots: 8, meta: 1 << 19, metaCap: 8 }, (count, error) => counts.push([count, error]));
    // a port nothing listens on: bound, then closed
    const gone = dgram.createSocket("udp4");
    gone.bind(0, C);
    await once(gone, "listening");
    const deadPort = gone.address().port;
    await new Promise<void>((r) => gone.close(() => r()));
    // a burst of 20: loopback answers each (as ICMP's rate limit lets it) at once
    const table = 1 << 18, data = table + 4096;
    m.fill(7, data, data + 16);
    for (let i = 0; i < 20; i++) putRecord(m, table + i * TX_RECORD.stride, { dst: C, port: deadPort, pieces: [[data, 16]] });
    expect(d.sendBatch(table, 0, 20)).toBe(20);
    // the error wakes the receiver (libuv stops its watcher on POLLERR), which reads and clears it
    // and starts the watcher again; errors still queued wake it again
    await until(() => (d.stats().rxSocketErrors ?? 0) >= 1 || counts.length > 0);
    await new Promise((r) => setTimeout(r, 50));
    // (taken as fatal, the callback would have had [0, -EBADF] and receiving would have stopped for good)
    expect(counts).toEqual([]);
    expect(d.stats().rxSocketErrors).toBeGreaterThanOrEqual(1);
    expect(d.stats().rxLastSocketError).toBe(111); // ECONNREFUSED
    expect(d.info()).toMatchObject({ receiving: true, watchingReadable: true });
    // a datagram after the error is received
    const s = await udpSocket(A);
    s.send(Buffer.alloc(33, 1), d.port, B);
    await until(() => counts.length > 0);
    expect(counts).toEqual([[1, 0]]);
    expect(d.stats().rxErrors).toBe(0);
  });

  it("stops with -EFAULT, once, when its buffer is detached", async () => {
    const ab = new ArrayBuffer(1 << 20);
    const d = dp({ memory: ab, address: B });
    const s = await udpSocket(A);
    const calls: [number, number][] = [];
    d.receive({ area: 0, slotSize: 2048, slots: 8, meta: 1 << 19, metaCap: 8 }, (count, error) => calls.push([count, error]));
    structuredClone(ab, { transfer: [ab] }); // detaches ab: what a non-shared wasm memory's grow does
    s.send(Buffer.alloc(10), d.port, B);
    s.send(Buffer.alloc(10), d.port, B);
    await until(() => calls.length > 0);
    await new Promise((r) => setTimeout(r, 50));
    expect(calls).toEqual([[0, -EFAULT]]);
    expect(() => d.sendBatch(0, 0, 1)).toThrow(/do not fit the buffer/);
  });
});

describe("native datapath: onWritable on another socket (a per-QP source port's)", () => {
  // A pool socket is a node:dgram socket (libuv watches its descriptor for readable): the wait is a
  // one-shot watch on a dup of it. Loopback never says EAGAIN (test/system/native-gso.sys.mjs makes
  // a pool socket push back under a slow qdisc); here the socket is writable, so a wait ends on the
  // next turn, and what is checked is which socket it watches and that its dup is gone after.
  const socketOf = (fd: number) => readlinkSync(`/proc/self/fd/${fd}`);
  /** Descriptors of this process on the same socket as `fd` (the fd itself and any dups of it). */
  const sameSocket = (fd: number) => {
    const want = socketOf(fd);
    return readdirSync("/proc/self/fd").filter((f) => {
      try {
        return readlinkSync(`/proc/self/fd/${f}`) === want;
      } catch {
        return false; // closed between the listing and the look
      }
    }).length;
  };
  async function poolSocket(address: string) {
    const pool = new SourcePortPool({ address, family: 4, addon: sockoptAddon()!, cap: 2, sweepMs: 600_000 });
    open.push({ close: () => void pool.close() });
    for (let port = 50200; port < 50300; port++) {
      const fd = pool.fd(port);
      if (fd >= 0) return { pool, fd, port };
    }
    throw new Error(`no free port: ${pool.stats().lastFailure}`);
  }

  it("watches a dup of that socket, calls back once, then closes the dup", async () => {
    const d = dp({ memory: new Uint8Array(1 << 16), address: C });
    const { fd } = await poolSocket(C);
    expect(sameSocket(fd)).toBe(1);
    let calls = 0;
    d.onWritable(() => calls++, fd);
    expect(sameSocket(fd)).toBe(2); // the wait's dup
    await until(() => calls > 0);
    await new Promise((r) => setTimeout(r, 30));
    expect(calls).toBe(1);
    expect(sameSocket(fd)).toBe(1);
    // a wait replaced by another: only the last one calls back, one dup at a time
    const seen: string[] = [];
    d.onWritable(() => seen.push("first"), fd);
    d.onWritable(() => seen.push("second"), fd);
    expect(sameSocket(fd)).toBe(2);
    d.onWritable(() => seen.push("own"));
    expect(sameSocket(fd)).toBe(1); // moved to the datapath's socket: the dup closed at once
    await until(() => seen.length > 0);
    await new Promise((r) => setTimeout(r, 30));
    expect(seen).toEqual(["own"]);
  });

  it("the datapath closing while it waits: no call back, the dup closed", async () => {
    const d = dp({ memory: new Uint8Array(1 << 16), address: C });
    const { fd } = await poolSocket(C);
    let calls = 0;
    d.onWritable(() => calls++, fd);
    expect(sameSocket(fd)).toBe(2);
    d.close();
    expect(sameSocket(fd)).toBe(1);
    await new Promise((r) => setTimeout(r, 50));
    expect(calls).toBe(0);
    expect(() => d.onWritable(() => calls++, fd)).toThrow(/closed/);
  });

  it("a descriptor that is not open: a clear error, and no wait left behind", async () => {
    const d = dp({ memory: new Uint8Array(1 << 16), address: C });
    let calls = 0;
    expect(() => d.onWritable(() => calls++, 1 << 20)).toThrow(/bad file descriptor/i);
    expect(() => (d as unknown as { h: { onWritable(f: unknown, fd: unknown): void } }).h.onWritable(() => calls++, "3")).toThrow(/onWritable\(fn, fd\?\)/);
    await new Promise((r) => setTimeout(r, 30));
    expect(calls).toBe(0);
    d.onWritable(() => calls++);
    await until(() => calls === 1);
  });
});

describe("native datapath: in a worker on shared memory", () => {
  it("receives into a SharedArrayBuffer the main thread reads, and a worker terminated while receiving cleans up", async () => {
    const sab = new SharedArrayBuffer(1 << 20);
    const addonPath = new URL("../../../host/node/native/build/Release/softroce_sockopt.node", import.meta.url).pathname;
    // the worker owns the socket; the main thread only sees the bytes land in the shared buffer
    const code = `
      const { workerData: w, parentPort } = require("node:worker_threads");
      const addon = require(w.addonPath);
      const d = new addon.Datapath(new Uint8Array(w.sab), { family: 4, address: w.address, port: 0 }, w.tx, w.rx);
      d.receive(0, 2048, 16, 1 << 19, 16, 256, (count) => parentPort.postMessage({ count }));
      parentPort.postMessage({ port: d.info().port });`;
    const worker = new Worker(code, { eval: true, workerData: { sab, addonPath, address: B, tx: txLayoutWords(TX_RECORD), rx: rxLayoutWords(RX_RECORD) } });
    const errors: Error[] = [];
    worker.on("error", (e) => errors.push(e));
    let port = 0, received = 0;
    worker.on("message", (m: { port?: number; count?: number }) => (m.port ? (port = m.port) : (received += m.count!)));
    await until(() => port > 0, 5000, "the worker's datapath");
    const s = await udpSocket(A);
    for (let i = 0; i < 10; i++) s.send(pattern(100, i), port, B);
    await until(() => received === 10, 3000, "10 datagrams in the worker");
    const m = new Uint8Array(sab);
    // the last batch's first record, written by the worker's addon, read here
    const data = field(m, 1 << 19, RX_RECORD.data);
    expect(field(m, 1 << 19, RX_RECORD.length)).toBe(100);
    const bytes = Buffer.from(m.subarray(data, data + 100));
    expect([...Array(10).keys()].some((i) => bytes.equals(pattern(100, i)))).toBe(true);
    await worker.terminate(); // the socket is still open and watched: the environment's cleanup must close it
    expect(errors).toEqual([]);
    // the port is free again: the worker's socket was closed
    const again = openDatapath({ memory: new Uint8Array(4096), address: B, port });
    expect(again.datapath?.port).toBe(port);
    again.datapath?.close();
  });
});

function putPieces(m: Uint8Array, t: number, at: number, len: number) {
  const dv = new DataView(m.buffer, m.byteOffset);
  dv.setUint32(t + TX_RECORD.flags, 0, true);
  dv.setUint32(t + TX_RECORD.pieces[0].data, at, true);
  dv.setUint32(t + TX_RECORD.pieces[0].len, len, true);
  for (const p of TX_RECORD.pieces.slice(1)) dv.setUint32(t + p.len, 0, true);
}

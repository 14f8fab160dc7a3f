// The ICRC offload (host/node/native/icrc.c, used by datapath.c): its CRC-32 against zlib, its ICRC
// against the wasm core's on the golden vectors, on every RoCE packet of the rxe captures in
// test/fixtures and on randomized packets (one set of masking rules, proven equal to the core's);
// then on the wire: what the datapath fills in on TX is what the core would have written for the
// ID each GSO segment gets, what it computes on RX is the datagram's ICRC, devices with and
// without the offload talk to each other, and a bad ICRC is still a counted drop.
// Addresses: 127.0.21.0/24.
import { afterEach, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import dgram from "node:dgram";
import { once } from "node:events";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import zlib from "node:zlib";
import { WireCodec, type PacketSpec } from "../../../host/core/wire/codec.js";
import { readCaptureAll } from "../../../host/core/capture/pcap.js";
import { addressGid, instantiateCore, parseGid } from "../../../host/core/index.js";
import { coreModule } from "../../../host/node/wasm-source.js";
import { RxrFlag, TxFlag } from "../../../host/core/abi/index.js";
import {
  RX_GRO, RX_ICRC, RX_RECORD, TX_GSO, TX_ICRC, TX_ICRC_FILL, TX_RECORD, datapathAddon, openDatapath, type NativeDatapath,
} from "../../../host/node/datapath.js";
import { icrcOffloadChoice } from "../../../host/node/native-link.js";
import { datapathOf, openDevice, udpLinkOf } from "../../../host/node/index.js";
import { NativeUdpLink } from "../../../host/node/native-link.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, Mtu, QpType, SendFlags, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import type { Device } from "../../../host/core/verbs/device.js";
import { until } from "../support/until.js";

const addon = datapathAddon()!;
const bswap = (v: number) => (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
const hex = (s: string) => Uint8Array.from(Buffer.from(s, "hex"));
/** A deterministic generator (tests must not depend on Math.random). */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => ((x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5), x >>> 0);
}

const open: { close(): void }[] = [];
afterEach(() => {
  while (open.length) open.pop()!.close();
});

describe("ICRC offload: the CRC and the masking rules", () => {
  it("is in the addon, and the CPU check says whether the carry-less-multiplication path runs", () => {
    expect(typeof addon.crc32).toBe("function");
    expect(typeof addon.icrcOfPacket).toBe("function");
    expect(typeof addon.crc32Clmul).toBe("boolean");
    // this machine (x86-64 with PCLMULQDQ) runs it: the figures in docs/PERFORMANCE.md are of that path
    const cpuinfo = (() => { try { return readFileSync("/proc/cpuinfo", "utf8"); } catch { return ""; } })();
    expect(addon.crc32Clmul).toBe(process.arch === "x64" && /\bpclmulqdq\b/.test(cpuinfo));
  });

  it("has the 256-bit path where the CPU has AVX2 and VPCLMULQDQ (this one does), and can turn it off", () => {
    const cpuinfo = (() => { try { return readFileSync("/proc/cpuinfo", "utf8"); } catch { return ""; } })();
    expect(addon.crc32Vclmul).toBe(process.arch === "x64" && /\bvpclmulqdq\b/.test(cpuinfo) && /\bavx2\b/.test(cpuinfo));
    expect(addon.crc32Wide!(false)).toBe(false);
    expect(addon.crc32Wide!(true)).toBe(!!addon.crc32Vclmul);
  });

  for (const wide of [true, false]) it(`CRC-32 equals zlib's for every length 0..700 at four alignments, long runs and chained calls (${wide ? "256-bit path where there is one" : "128-bit path"})`, () => {
    addon.crc32Wide!(wide);
    const r = rng(7);
    const buf = new Uint8Array(70_000).map(() => r() & 0xff);
    const ours = (off: number, len: number, crc = 0) => (~addon.crc32!(buf, off, len, ~crc >>> 0) >>> 0);
    for (let len = 0; len <= 700; len++) for (let off = 0; off < 4; off++) {
      const want = zlib.crc32(buf.subarray(off, off + len));
      if (ours(off, len) !== want) expect(`${len}@${off}: ${ours(off, len)}`).toBe(`${len}@${off}: ${want}`);
    }
    for (const len of [4096, 4112, 8191, 65536, 69_999]) expect(ours(1, len)).toBe(zlib.crc32(buf.subarray(1, 1 + len)));
    // two calls chain like one
    expect(ours(100, 5000, ours(0, 100))).toBe(zlib.crc32(buf.subarray(0, 5100)));
    expect(() => addon.crc32!(buf, 69_999, 2, 0)).toThrow(/inside the buffer/);
    addon.crc32Wide!(true);
  });

  it("the golden vectors: a ConnectX-4 Lx CNP and scapy's UC SEND_ONLY", () => {
    const cnp = hex("e41d2dab2bc27cfe90643b32080045c2003c718c4000401191610a0011010a001201000012b7" +
      "002800008100ffff40000118000000000000000000000000000000000000000082fd002a").subarray(14);
    const uc = hex("45010040047840004011b4d5c0a80007c0a80007c00012b7002caca22460ffff000000d300cf" +
      "17104630818be28935d90e9a95505401be885e50000078f353f3");
    expect(bswap(addon.icrcOfPacket!(cnp, 0, cnp.length))).toBe(0x82fd002a);
    expect(bswap(addon.icrcOfPacket!(uc, 0, uc.length))).toBe(0x78f353f3);
  });

  it("on a CPU without PCLMULQDQ (SOFTROCE_CRC_CLMUL=0): the addon loads, says so, and its table CRC and ICRC are right", () => {
    // a child process, since the CPU check runs once per process; the same checks as above on the
    // table path, long runs included (under the carry-less path those go through the folding)
    const script = `
      import { createRequire } from "node:module";
      import zlib from "node:zlib";
      const addon = createRequire(import.meta.url)(process.argv[1]);
      const buf = new Uint8Array(70000);
      let x = 7;
      for (let i = 0; i < buf.length; i++) buf[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
      const ours = (off, len) => ~addon.crc32(buf, off, len, 0xffffffff) >>> 0;
      const bad = [];
      for (let len = 0; len <= 700; len++) for (let off = 0; off < 4; off++) if (ours(off, len) !== zlib.crc32(buf.subarray(off, off + len))) bad.push(len + "@" + off);
      for (const len of [4096, 4112, 65536, 69999]) if (ours(1, len) !== zlib.crc32(buf.subarray(1, 1 + len))) bad.push(len + "@1");
      const icrc = process.argv.slice(2).map((h) => { const p = Buffer.from(h, "hex"); return addon.icrcOfPacket(p, 0, p.length); });
      console.log(JSON.stringify({ clmul: addon.crc32Clmul, bad, icrc }));
    `;
    const path = new URL("../../../host/node/native/build/Release/softroce_sockopt.node", import.meta.url).pathname;
    const cnp = "45c2003c718c4000401191610a0011010a001201000012b7002800008100ffff40000118000000000000000000000000000000000000000082fd002a";
    const uc = "45010040047840004011b4d5c0a80007c0a80007c00012b7002caca22460ffff000000d300cf17104630818be28935d90e9a95505401be885e50000078f353f3";
    const run = (env: string | undefined) => {
      const r = spawnSync(process.execPath, ["--input-type=module", "-e", script, path, cnp, uc], {
        env: { ...process.env, SOFTROCE_CRC_CLMUL: env }, encoding: "utf8", timeout: 60_000,
      });
      expect(r.stderr).toBe("");
      return JSON.parse(r.stdout) as { clmul: boolean; bad: string[]; icrc: number[] };
    };
    const off = run("0");
    expect(off).toEqual({ clmul: false, bad: [], icrc: [bswap(0x82fd002a), bswap(0x78f353f3)] });
    // the offload then stays off, and says why
    expect(icrcOffloadChoice({ ...addon, crc32Clmul: off.clmul }, true).state).toMatch(/no PCLMULQDQ/);
    // any other value leaves the CPU check alone
    expect(run("1").clmul).toBe(addon.crc32Clmul);
  });

  it("agrees with the ICRC every RoCE packet of the rxe captures carries, and with the core's", async () => {
    const codec = new WireCodec(await instantiateCore(await coreModule()));
    const dir = "test/fixtures/captures";
    const files: string[] = [];
    const walk = (d: string) => {
      for (const n of readdirSync(d)) {
        const p = join(d, n);
        if (statSync(p).isDirectory()) walk(p);
        else if (/\.pcap(ng)?$/.test(n)) files.push(p);
      }
    };
    walk(dir);
    let roce = 0;
    for (const f of files) {
      for (const rec of readCaptureAll(readFileSync(f))) {
        const ip = rec.data;
        if (!ip) continue;
        const v6 = ip[0]! >> 4 === 6;
        const hl = v6 ? 40 : 20;
        if (ip[v6 ? 6 : 9] !== 17 || ip.length < hl + 8 + 16) continue;
        if (((ip[hl + 2]! << 8) | ip[hl + 3]!) !== 4791) continue;
        roce++;
        const carried = new DataView(ip.buffer, ip.byteOffset + ip.length - 4, 4).getUint32(0, true);
        const ours = addon.icrcOfPacket!(ip, 0, ip.length);
        if (ours !== carried) expect(`${f} #${rec.index}: ${ours}`).toBe(`${f} #${rec.index}: ${carried}`);
        expect(bswap(ours)).toBe(codec.icrc(ip));
      }
    }
    expect(roce).toBeGreaterThan(773); // the top-level captures alone hold 773
  });

  it("agrees with the core on randomized packets (IPv4 and IPv6, every header the opcode table has, pads, ports, IDs)", async () => {
    const codec = new WireCodec(await instantiateCore(await coreModule()));
    const r = rng(42);
    let checked = 0;
    const opcodes = [0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x07, 0x0a, 0x0b, 0x0c, 0x0d, 0x10, 0x11, 0x12, 0x13, 0x14, 0x16, 0x24, 0x2a, 0x64, 0x65];
    for (let i = 0; i < 400; i++) {
      const v6 = (r() & 3) === 0;
      const op = opcodes[r() % opcodes.length]!;
      const spec = {
        src: v6 ? `fd00::${(r() & 0xffff).toString(16)}` : `10.${r() & 255}.${r() & 255}.${r() & 255}`,
        dst: v6 ? `fd00:4791::${(r() & 0xffff).toString(16)}` : `192.0.2.${r() & 255}`,
        ipId: v6 ? 0 : r() & 0xffff, ipFlags: 2, udpSrcPort: 0xc000 | (r() & 0x3fff), udpDstPort: 4791,
        opcode: op, destQp: r() & 0xffffff, psn: r() & 0xffffff, fecn: r() & 1, becn: r() & 1, resv6: r() & 0x3f,
        payload: Uint8Array.from({ length: r() % 1500 }, () => r() & 0xff),
        reth: { va: BigInt(r()), rkey: r(), dmaLength: r() & 0xffff }, aeth: { syndrome: 0, msn: r() & 0xffffff },
        deth: { qkey: r(), srcQp: r() & 0xffffff }, immDt: r(), ieth: { rkey: r() },
        atomicEth: { va: BigInt(r()), rkey: r(), swapAdd: BigInt(r()), compare: BigInt(r()) }, atomicAckEth: { origRemoteData: BigInt(r()) },
      } as unknown as PacketSpec;
      let pkt: Uint8Array;
      try {
        pkt = codec.emit(spec).slice();
      } catch {
        pkt = codec.emit({ ...spec, payload: new Uint8Array(0) }).slice(); // an opcode without payload
      }
      checked++;
      const ours = addon.icrcOfPacket!(pkt, 0, pkt.length);
      expect(bswap(ours), `packet ${i} opcode ${op} v${v6 ? 6 : 4}`).toBe(codec.icrc(pkt));
      expect(ours).toBe(new DataView(pkt.buffer, pkt.length - 4).getUint32(0, true));
    }
    expect(checked).toBe(400);
  });

  it("the RX flag and the TX mark are the core's (abi/schema.json)", () => {
    expect(RX_ICRC).toBe(RxrFlag.ICRC_HOST);
    expect(TxFlag.ICRC_HOST).toBe(4);
    expect(TX_ICRC_FILL).toBe(4);
  });

  it("offload choice: on by default with PCLMULQDQ, off by option or env, off without the fast CRC (why)", () => {
    const env = process.env.SOFTROCE_ICRC_OFFLOAD;
    try {
      delete process.env.SOFTROCE_ICRC_OFFLOAD;
      expect(icrcOffloadChoice(addon).on).toBe(!!addon.crc32Clmul);
      expect(icrcOffloadChoice(addon, false)).toEqual({ on: false, state: "off (asked for)" });
      process.env.SOFTROCE_ICRC_OFFLOAD = "0";
      expect(icrcOffloadChoice(addon)).toEqual({ on: false, state: "off (SOFTROCE_ICRC_OFFLOAD=0)" });
      expect(icrcOffloadChoice({ ...addon, crc32Clmul: false }, true).state).toMatch(/no PCLMULQDQ/);
      expect(icrcOffloadChoice({ ...addon, crc32: undefined, crc32Clmul: undefined }, true).state).toMatch(/predates/);
    } finally {
      if (env === undefined) delete process.env.SOFTROCE_ICRC_OFFLOAD;
      else process.env.SOFTROCE_ICRC_OFFLOAD = env;
    }
  });
});

describe("ICRC offload: the datapath", () => {
  const TABLE = 0, DATA = 1 << 16, RXAREA = 1 << 20, RXMETA = 3 << 20;
  const A = "127.0.21.11", B = "127.0.21.12";
  // TX_RECORD plus the source the ICRC covers, and the fill request in its flags word
  const TX_LAYOUT = { ...TX_RECORD, srcAddr: 64, srcPort: 80, stride: 96, icrcFill: { word: TX_RECORD.flags, bit: 8 } };
  const RX_LAYOUT = { ...RX_RECORD, stride: 68, icrc: 64 };

  function pair(m: Uint8Array): { tx: NativeDatapath; rx: NativeDatapath } {
    const tx = openDatapath({ memory: m, address: A, port: 0, txLayout: TX_LAYOUT, rxLayout: RX_LAYOUT }).datapath!;
    const rx = openDatapath({ memory: m, address: B, port: 0, gro: true, txLayout: TX_LAYOUT, rxLayout: RX_LAYOUT }).datapath!;
    open.push(tx, rx);
    return { tx, rx };
  }

  // how a datagram of `len` bytes is cut into the record's four pieces: the BTH and the payload with
  // the ICRC's 4 bytes split over the last two; or the BTH split over two pieces, the second also
  // holding the payload's first 24 bytes, the rest of the payload, and its last 2 bytes with the ICRC
  const threePieces = (len: number) => [12, len - 14, 2, 0];
  const fourPieces = (len: number) => [8, 28, len - 42, 6];
  for (const [how, cut] of [["the record's fill bit", threePieces], ["flagsOr TX_ICRC_FILL", threePieces], ["flagsOr TX_ICRC_FILL, four pieces", fourPieces]] as const) {
    it(`fills each GSO segment's ICRC for the ID it gets, and the receiver computes the same (${how})`, async () => {
      const codec = new WireCodec(await instantiateCore(await coreModule()));
      const m = new Uint8Array(4 << 20);
      const dv = new DataView(m.buffer);
      const { tx, rx } = pair(m);
      expect(tx.info()).toMatchObject({ icrcTx: true, icrcRx: true });
      const n = 12;
      // the port the ICRC covers is the record's: the one the datagram leaves from
      const sport = tx.port;
      const facts = { src: A, dst: B, udpSrcPort: sport, udpDstPort: rx.port };
      const pkts: Uint8Array[] = [];
      for (let i = 0; i < n; i++) {
        // an RC WRITE MIDDLE (MTU 1024) with a zero ICRC: the datapath writes it
        const pkt = codec.emit({ ...facts, ipId: 0, opcode: 0x07, destQp: 0x42, psn: 100 + i, payload: Uint8Array.from({ length: 1024 }, (_, k) => (k * 7 + i) & 0xff) } as PacketSpec);
        pkts.push(pkt.slice());
        const udp = pkt.subarray(28).slice();
        udp.fill(0, udp.length - 4);
        m.set(udp, DATA + i * 2048);
        const at = TABLE + i * TX_LAYOUT.stride;
        m.set(parseGid(addressGid(B)), at + TX_LAYOUT.dstAddr);
        dv.setUint32(at + TX_LAYOUT.dstPort, rx.port, true);
        dv.setUint32(at + TX_LAYOUT.flags, TX_GSO | (how === "the record's fill bit" ? 8 : 0), true);
        dv.setUint32(at + TX_LAYOUT.ipId, 0, true);
        m.set(parseGid(addressGid(A)), at + TX_LAYOUT.srcAddr);
        dv.setUint32(at + TX_LAYOUT.srcPort, sport, true);
        let from = 0;
        cut(udp.length).forEach((len, k) => {
          dv.setUint32(at + TX_LAYOUT.pieces[k].data, DATA + i * 2048 + from, true);
          dv.setUint32(at + TX_LAYOUT.pieces[k].len, len, true);
          from += len;
        });
      }
      const recs: { len: number; hint: number; flags: number; icrc: number; carried: number; data: number }[] = [];
      rx.receive({ area: RXAREA, slotSize: 65536, slots: 4, meta: RXMETA, metaCap: 64 }, (count) => {
        for (let i = 0; i < count; i++) {
          const r = RXMETA + i * RX_LAYOUT.stride;
          const data = dv.getUint32(r + RX_LAYOUT.data, true), len = dv.getUint32(r + RX_LAYOUT.length, true);
          recs.push({ data, len, hint: dv.getUint32(r + RX_LAYOUT.idHint, true), flags: dv.getUint32(r + RX_LAYOUT.flags, true),
            icrc: dv.getUint32(r + RX_LAYOUT.icrc, true), carried: dv.getUint32(data + len - 4, true) });
        }
      });
      expect(tx.sendBatch(TABLE, 0, n, TX_ICRC | (how.startsWith("flagsOr") ? TX_ICRC_FILL : 0))).toBe(n);
      await until(() => recs.length === n);
      recs.forEach((r, i) => {
        // the segment's ID is its index; its ICRC is the core's for that ID
        expect(r.hint, `segment ${i}`).toBe(i);
        expect(r.flags).toBe(RX_GRO | RX_ICRC);
        const want = codec.emit({ ...facts, ipId: i, opcode: 0x07, destQp: 0x42, psn: 100 + i, payload: pkts[i]!.subarray(28 + 12, pkts[i]!.length - 4) } as PacketSpec);
        expect(r.carried).toBe(new DataView(want.buffer, want.byteOffset + want.length - 4).getUint32(0, true));
        expect(r.icrc).toBe(r.carried);
        expect(dv.getUint32(TABLE + i * TX_LAYOUT.stride + TX_LAYOUT.ipId, true)).toBe(i);
        // the request is cleared once filled
        expect(dv.getUint32(TABLE + i * TX_LAYOUT.stride + TX_LAYOUT.flags, true) & 8).toBe(0);
      });
      expect(tx.stats()).toMatchObject({ txIcrcFilled: n, txGsoSends: 1 });
      expect(rx.stats()).toMatchObject({ rxIcrcComputed: n });
      // sent again one by one: a filled record's ICRC moves back to ID 0 (TX_ICRC), not computed again
      recs.length = 0;
      for (let i = 0; i < n; i++) dv.setUint32(TABLE + i * TX_LAYOUT.stride + TX_LAYOUT.flags, 0, true);
      expect(tx.sendBatch(TABLE, 0, n, TX_ICRC)).toBe(n);
      await until(() => recs.length === n);
      recs.forEach((r) => expect(r).toMatchObject({ hint: 0, flags: RX_ICRC }));
      recs.forEach((r, i) => expect(r.icrc, `datagram ${i}`).toBe(r.carried));
      expect(tx.stats().txIcrcFilled).toBe(n);
    });
  }

  it("refuses a fill request on a datagram too short to hold a BTH and an ICRC (EINVAL), alone", async () => {
    const m = new Uint8Array(4 << 20);
    const dv = new DataView(m.buffer);
    const { tx } = pair(m);
    m.set(parseGid(addressGid(B)), TABLE + TX_LAYOUT.dstAddr);
    dv.setUint32(TABLE + TX_LAYOUT.dstPort, 9, true);
    dv.setUint32(TABLE + TX_LAYOUT.pieces[0].data, DATA, true);
    dv.setUint32(TABLE + TX_LAYOUT.pieces[0].len, 15, true);
    expect(tx.sendBatch(TABLE, 0, 1, TX_ICRC_FILL)).toBe(1);
    expect(dv.getInt32(TABLE + TX_LAYOUT.result, true)).toBe(-22);
    expect(tx.stats()).toMatchObject({ txIcrcFilled: 0, txBadRecords: 1 });
  });

  it("refuses layouts whose offload fields lie outside the record", () => {
    const m = new Uint8Array(1 << 16);
    expect(() => openDatapath({ memory: m, address: A, port: 0, txLayout: { ...TX_LAYOUT, srcAddr: 90 } })).toThrow(/srcAddr/);
    expect(() => openDatapath({ memory: m, address: A, port: 0, txLayout: { ...TX_LAYOUT, icrcFill: { word: 20, bit: 3 } } })).toThrow(/one bit/);
    expect(() => openDatapath({ memory: m, address: A, port: 0, rxLayout: { ...RX_LAYOUT, icrc: 66 } })).toThrow(/icrc/);
  });
});

describe("ICRC offload: devices", () => {
  const opened: Device[] = [];
  afterEach(() => {
    while (opened.length) opened.pop()!.close();
  });

  async function openWith(address: string, offload: boolean): Promise<Device> {
    const env = process.env.SOFTROCE_ICRC_OFFLOAD;
    process.env.SOFTROCE_ICRC_OFFLOAD = offload ? "1" : "0";
    try {
      const d = await openDevice({ address, port: 0, datapath: "native", activeMtu: Mtu.MTU_4096, mrArenaBytes: 4 << 20 });
      opened.push(d);
      return d;
    } finally {
      if (env === undefined) delete process.env.SOFTROCE_ICRC_OFFLOAD;
      else process.env.SOFTROCE_ICRC_OFFLOAD = env;
    }
  }

  for (const [a1, a2] of [["127.0.21.21", "127.0.21.22"], ["::1", "::1"]] as const) {
    it(`a device with the offload and one without exchange RC WRITEs and READs both ways, every byte and ICRC right (${a1.includes(":") ? "IPv6" : "IPv4"})`, async () => {
      const a = await openWith(a1, true);
      const b = await openWith(a2, false);
      const la = udpLinkOf(a) as NativeUdpLink, lb = udpLinkOf(b) as NativeUdpLink;
      expect(la.icrcOffloadState).toMatch(/^on/);
      expect(lb.icrcOffloadState).toBe("off (SOFTROCE_ICRC_OFFLOAD=0)");
      expect(datapathOf(a)?.icrcOffload).toMatch(/^on/);
      const MSG = 65536, N = 8;
      const ACCESS = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ;
      const side = (d: Device) => {
        const pd = d.allocPd();
        const cq = d.createCq(64);
        const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 32, maxRecvWr: 4, maxSendSge: 1, maxRecvSge: 1 } });
        const mr = pd.regMr(2 * N * MSG, ACCESS);
        return { d, cq, qp, mr, port: (d.limits as { port: number }).port };
      };
      const A = side(a), B = side(b);
      const common = { pathMtu: Mtu.MTU_4096, qpAccessFlags: ACCESS, timeout: 20, maxRdAtomic: 8, maxDestRdAtomic: 8 };
      connectQp(A.qp, { qpNum: B.qp.qpNum, psn: 7, gid: b.queryGid(0), port: B.port }, { ...common, sqPsn: 3 });
      connectQp(B.qp, { qpNum: A.qp.qpNum, psn: 3, gid: a.queryGid(0), port: A.port }, { ...common, sqPsn: 7 });
      const fillMr = (d: Device, mr: typeof A.mr, seed: number) => {
        const v = new Uint8Array(d.memory.buffer, Number(mr.addr), 2 * N * MSG);
        for (let i = 0; i < v.length; i++) v[i] = (i * seed + (i >>> 9)) & 0xff;
        return v;
      };
      const va = fillMr(a, A.mr, 31), vb = fillMr(b, B.mr, 17);
      // A (offload) WRITEs into B's first half and READs B's second half into its own second half;
      // then B (no offload) WRITEs its first half (A's bytes by then) back into A's first half
      const ops = async (from: typeof A, to: typeof A, read: boolean) => {
        for (let k = 0; k < N; k++) {
          from.qp.postSend({ wrId: BigInt(k), opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [from.mr.sge(k * MSG, MSG)],
            rdma: { remoteAddr: to.mr.addr + BigInt(k * MSG), rkey: to.mr.rkey } });
          if (read) from.qp.postSend({ wrId: 100n + BigInt(k), opcode: WrOpcode.RDMA_READ, sendFlags: SendFlags.SIGNALED,
            sgList: [from.mr.sge((N + k) * MSG, MSG)], rdma: { remoteAddr: to.mr.addr + BigInt((N + k) * MSG), rkey: to.mr.rkey } });
        }
        const want = read ? 2 * N : N;
        for (let i = 0; i < want; i++) expect((await from.cq.next()).status).toBe(WcStatus.SUCCESS);
      };
      const srcA = va.slice(0, N * MSG), readB = vb.slice(N * MSG);
      await ops(A, B, true);
      va.fill(0, 0, N * MSG); // what comes back must overwrite this
      await ops(B, A, false);
      expect(Buffer.compare(vb.subarray(0, N * MSG), srcA)).toBe(0);
      expect(Buffer.compare(va.subarray(N * MSG), readB)).toBe(0);
      expect(Buffer.compare(va.subarray(0, N * MSG), srcA)).toBe(0);
      for (const d of [a, b]) expect(d.queryCounters()).toMatchObject({ bad_icrc: 0, completer_retry_err: 0 });
      expect(a.port!.stats.drops).toEqual({});
      expect(b.port!.stats.drops).toEqual({});
      const sa = la.datapathStats(), sb = lb.datapathStats();
      // A computed every ICRC it sent and received; B none
      expect(sa.txIcrcFilled).toBe(a.queryCounters().sent_pkts);
      expect(sa.rxIcrcComputed).toBe(sa.rxDatagrams);
      expect(sa.txIcrcFilled).toBeGreaterThan(N * 16);
      expect(sb).toMatchObject({ txIcrcFilled: 0, rxIcrcComputed: 0 });
    });
  }

  it("a datagram with a bad ICRC is dropped and counted as bad_icrc with the offload on", async () => {
    const dev = await openWith("127.0.21.31", true);
    const codec = new WireCodec(await instantiateCore(await coreModule()));
    const pd = dev.allocPd();
    const cq = dev.createCq(4);
    const qp = pd.createQp({ qpType: QpType.UD, sendCq: cq, recvCq: cq, cap: { maxSendWr: 1, maxRecvWr: 2, maxSendSge: 1, maxRecvSge: 1 } });
    connectQp(qp, undefined, { sqPsn: 0, qkey: 0x11111111 });
    const mr = pd.regMr(4096, Access.LOCAL_WRITE);
    qp.postRecv({ wrId: 1n, sgList: [mr.sge(0, 4096)] });
    const port = (dev.limits as { port: number }).port;
    const s = dgram.createSocket("udp4");
    s.bind(0, "127.0.21.32");
    await once(s, "listening");
    const good = codec.emit({ src: "127.0.21.32", dst: "127.0.21.31", ipId: 0, ipFlags: 2, udpSrcPort: s.address().port, udpDstPort: port,
      opcode: 0x64, destQp: qp.qpNum, deth: { qkey: 0x11111111, srcQp: 3 }, payload: new Uint8Array(64).fill(5) } as PacketSpec).subarray(28);
    const bad = good.slice();
    bad[20] ^= 0x40; // a payload bit: the ICRC no longer matches, and no IPv4 ID explains it
    for (const p of [bad, good]) await new Promise<void>((r, j) => s.send(p, port, "127.0.21.31", (e) => (e ? j(e) : r())));
    s.close();
    await until(() => dev.port!.stats.rxDatagrams === 2);
    expect(dev.queryCounters()).toMatchObject({ rcvd_pkts: 1, bad_icrc: 1 });
    expect(dev.port!.stats.drops).toEqual({ bad_icrc: 1 });
    expect((udpLinkOf(dev) as NativeUdpLink).datapathStats().rxIcrcComputed).toBe(2);
    expect((await cq.next()).status).toBe(WcStatus.SUCCESS);
  });
});

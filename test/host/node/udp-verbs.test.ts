// Every RC operation over real UDP sockets, on both of the Node host's paths (the native datapath
// and node:dgram) and both families, in a worker and through the tunnel. The simulated wire proves
// the transport; this proves that what the sockets carry (GSO sends and GRO receives of
// multi-packet messages and READ responses, the IPv4 ID the ICRC follows) changes none of it.
// At MTU 1024, from A to B: a SEND with immediate of 5000 bytes into B's SRQ, WRITE, WRITE with
// immediate (an SRQ receive), a READ of 40,000 bytes, CMP_SWAP, FETCH_ADD, ATOMIC_WRITE, a range
// FLUSH, a WRITE through a type 2 memory window B bound, a SEND_WITH_INV that invalidates it, and a
// WRITE through the invalidated key (REM_ACCESS_ERR). Every completion, every byte on both sides,
// the window's state and the capture's ICRCs are checked; the same again with both devices in
// workers (the application thread posting and polling through the shared rings), and with A
// behind a WebSocket tunnel through the gateway, its JS bridge and its native relay, to B on UDP.
import { afterEach, describe, expect, it } from "vitest";
import { openDevice, openTunnelDevice, udpLinkOf, udpPortOf, type NodeDeviceOptions } from "../../../host/node/index.js";
import { Gateway } from "../../../host/gateway/index.js";
import { NativeUdpLink } from "../../../host/node/native-link.js";
import { datapathAddon } from "../../../host/node/datapath.js";
import { PcapRecorder, icrcMatches } from "../../../host/core/capture/recorder.js";
import { readCaptureAll } from "../../../host/core/capture/pcap.js";
import { WireCodec } from "../../../host/core/wire/codec.js";
import { coreModule } from "../../../host/node/wasm-source.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, FlushLevel, FlushType, Mtu, MwType, QpState, QpType, SendFlags, WcFlags, WcOpcode, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import { MwState } from "../../../host/core/verbs/abi.js";
import { incRkey } from "../../../host/core/verbs/mw.js";
import type { Device } from "../../../host/core/verbs/device.js";
import type { WorkCompletion } from "../../../host/core/verbs/cq.js";
import type { SendWr } from "../../../host/core/verbs/post.js";

/**
 * Where A runs: a device on this thread on each path, in a worker (issue 17: the same verbs from
 * the application thread), or behind a WebSocket tunnel through the gateway (its JS bridge or its
 * native relay) to UDP; B is a Node UDP device on this thread.
 */
const HOSTS = datapathAddon()
  ? (["native", "dgram", "worker", "tunnel-js", "tunnel-relay"] as const)
  : (["dgram", "worker", "tunnel-js"] as const);
type Host = (typeof HOSTS)[number];
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});
const GW = "127.0.23.10";
const TOKEN = "udp-verbs";

/** A and B as `host` has them, each with the UDP port the other's QP sends to. */
async function openPair(host: Host, a1: string, a2: string, devOpts: NodeDeviceOptions): Promise<{ a: Device; b: Device; aPort: number; bPort: number }> {
  const portOf = (d: Device) => udpPortOf(d)!;
  const open = async (address: string, o: NodeDeviceOptions) => {
    const d = await openDevice({ ...devOpts, address, ...o });
    cleanups.push(() => d.close());
    return d;
  };
  if (host === "native" || host === "dgram" || host === "worker") {
    const o = host === "worker" ? { worker: true } : { datapath: host };
    const [a, b] = [await open(a1, o), await open(a2, o)];
    return { a, b, aPort: portOf(a), bPort: portOf(b) };
  }
  const b = await open(a2, {});
  const gw = await Gateway.start({ listen: GW, port: 0, udpAddress: GW, udpPort: 0, token: TOKEN, allow: [a2], dstPorts: [portOf(b)], relay: host === "tunnel-relay" ? "native" : "js" });
  cleanups.push(() => gw.close());
  if (host === "tunnel-relay" && gw.relayPath !== "native") throw new Error(`no native relay: ${gw.limitations.join("; ")}`);
  const t = await openTunnelDevice(`ws://${GW}:${gw.port}/tunnel`, { token: TOKEN, mrArenaBytes: devOpts.mrArenaBytes, activeMtu: devOpts.activeMtu });
  cleanups.push(() => t.device.close());
  return { a: t.device, b, aPort: gw.udpPort, bPort: portOf(b) };
}

const MR_BYTES = 256 << 10;
const ACCESS = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ | Access.REMOTE_ATOMIC | Access.FLUSH_GLOBAL;
const S = SendFlags.SIGNALED;
// where things are in A's MR (sources, READ and atomic results) and in B's (targets, receives)
const AT = { send: 0, write: 8192, writeImm: 32768, read: 65536, atomics: 131072, mwWrite: 135168, sendInv: 139264 };
const BT = { write: 0, writeImm: 32768, read: 65536, counters: 131072, mw: 196608, recv: 204800 };
const RECV_SLOT = 8192;
const SIZES = { send: 5000, write: 20000, writeImm: 3000, read: 40000, mwWrite: 1500, sendInv: 700 };

function fill(b: Uint8Array, seed: number): void {
  for (let i = 0; i < b.length; i++) b[i] = (i * 131 + seed * 7 + (i >>> 8)) & 0xff;
}

describe.each(HOSTS)("every RC operation over UDP (A: %s)", (host) => {
  const families = host.startsWith("tunnel") ? ([["127.0.23.11", "127.0.23.12"]] as const) : ([["127.0.23.1", "127.0.23.2"], ["::1", "::1"]] as const);
  for (const [a1, a2] of families) {
    it(`${a1.includes(":") ? "IPv6" : "IPv4"}: SRQ receives, READ, atomics, FLUSH, a window and its invalidation; every byte and completion`, async () => {
      const devOpts = { port: 0, activeMtu: Mtu.MTU_1024, mrArenaBytes: 4 << 20 };
      const { a, b, aPort, bPort } = await openPair(host, a1, a2, devOpts);
      for (const d of [a, b]) expect(d.worker ?? false).toBe(host === "worker");
      const pdA = a.allocPd();
      const pdB = b.allocPd();
      const cqA = a.createCq(64);
      const cqB = b.createCq(64);
      const srq = pdB.createSrq({ attr: { maxWr: 16, maxSge: 1 } });
      const cap = { maxSendWr: 32, maxRecvWr: 16, maxSendSge: 1, maxRecvSge: 1 };
      const qpA = pdA.createQp({ qpType: QpType.RC, sendCq: cqA, recvCq: cqA, cap });
      const qpB = pdB.createQp({ qpType: QpType.RC, sendCq: cqB, recvCq: cqB, cap, srq });
      const mrA = pdA.regMr(MR_BYTES, ACCESS);
      const mrB = pdB.regMr(MR_BYTES, ACCESS | Access.MW_BIND);
      // ACK timeout 4.3 s (20): a loaded machine's stall past the default would add a retransmission, not a failure
      const common = { pathMtu: Mtu.MTU_1024, qpAccessFlags: ACCESS, timeout: 20, retryCnt: 7, rnrRetry: 7, maxRdAtomic: 4, maxDestRdAtomic: 4 };
      connectQp(qpA, { qpNum: qpB.qpNum, psn: 0xfffff0, gid: b.queryGid(0), port: bPort }, { ...common, sqPsn: 0xffffe0 });
      connectQp(qpB, { qpNum: qpA.qpNum, psn: 0xffffe0, gid: a.queryGid(0), port: aPort }, { ...common, sqPsn: 0xfffff0 });
      // the capture taps the port on this thread (a worker device's port is in its worker), and on B
      // for a tunnel (what crossed the gateway)
      const rec = new PcapRecorder();
      if (host !== "worker") rec.attach((host.startsWith("tunnel") ? b : a).port!);

      const memA = () => new Uint8Array(a.memory.buffer, Number(mrA.addr), MR_BYTES);
      const memB = () => new Uint8Array(b.memory.buffer, Number(mrB.addr), MR_BYTES);
      fill(memA(), 1);
      fill(memB(), 2);
      const before = { a: memA().slice(), b: memB().slice() };
      const dvB = () => new DataView(b.memory.buffer, Number(mrB.addr), MR_BYTES);
      const counter0 = dvB().getBigUint64(BT.counters, true);
      const counter1 = dvB().getBigUint64(BT.counters + 8, true);

      // B: three receives in its SRQ, a type 2 window over [mw, mw + 4096) bound through its QP
      srq.postRecv([0, 1, 2].map((j) => ({ wrId: BigInt(j), sgList: [mrB.sge(BT.recv + j * RECV_SLOT, RECV_SLOT)] })));
      const mw = pdB.allocMw(MwType.TYPE_2);
      const mwKey = incRkey(mw.rkey);
      qpB.postSend({ wrId: 50n, opcode: WrOpcode.BIND_MW, sendFlags: S,
        bindMw: { mw, rkey: mwKey, bindInfo: { mr: mrB, addr: mrB.addr + BigInt(BT.mw), length: 4096, mwAccessFlags: Access.REMOTE_WRITE } } });
      expect(await cqB.next()).toMatchObject({ wrId: 50n, status: WcStatus.SUCCESS, opcode: WcOpcode.BIND_MW });

      const remote = (off: number) => mrB.addr + BigInt(off);
      const swap = 0x0102030405060708n;
      const add = 0x1111n;
      const word = 0x8877665544332211n;
      const wrs: SendWr[] = [
        { wrId: 1n, opcode: WrOpcode.SEND_WITH_IMM, sendFlags: S, immData: 0xabcd, sgList: [mrA.sge(AT.send, SIZES.send)] },
        { wrId: 2n, opcode: WrOpcode.RDMA_WRITE, sendFlags: S, sgList: [mrA.sge(AT.write, SIZES.write)], rdma: { remoteAddr: remote(BT.write), rkey: mrB.rkey } },
        { wrId: 3n, opcode: WrOpcode.RDMA_WRITE_WITH_IMM, sendFlags: S, immData: 0x1234, sgList: [mrA.sge(AT.writeImm, SIZES.writeImm)], rdma: { remoteAddr: remote(BT.writeImm), rkey: mrB.rkey } },
        { wrId: 4n, opcode: WrOpcode.RDMA_READ, sendFlags: S, sgList: [mrA.sge(AT.read, SIZES.read)], rdma: { remoteAddr: remote(BT.read), rkey: mrB.rkey } },
        { wrId: 5n, opcode: WrOpcode.ATOMIC_CMP_AND_SWP, sendFlags: S, sgList: [mrA.sge(AT.atomics, 8)], atomic: { remoteAddr: remote(BT.counters), rkey: mrB.rkey, compareAdd: counter0, swap } },
        { wrId: 6n, opcode: WrOpcode.ATOMIC_FETCH_AND_ADD, sendFlags: S, sgList: [mrA.sge(AT.atomics + 8, 8)], atomic: { remoteAddr: remote(BT.counters + 8), rkey: mrB.rkey, compareAdd: add } },
        { wrId: 7n, opcode: WrOpcode.ATOMIC_WRITE, sendFlags: S, atomicWrite: { remoteAddr: remote(BT.counters + 16), rkey: mrB.rkey, value: word } },
        { wrId: 8n, opcode: WrOpcode.FLUSH, sendFlags: S, flush: { remoteAddr: remote(BT.write), rkey: mrB.rkey, length: SIZES.write, type: FlushType.GLOBAL, level: FlushLevel.RANGE } },
        { wrId: 9n, opcode: WrOpcode.RDMA_WRITE, sendFlags: S, sgList: [mrA.sge(AT.mwWrite, SIZES.mwWrite)], rdma: { remoteAddr: remote(BT.mw + 100), rkey: mwKey } },
        { wrId: 10n, opcode: WrOpcode.SEND_WITH_INV, sendFlags: S, invalidateRkey: mwKey, sgList: [mrA.sge(AT.sendInv, SIZES.sendInv)] },
      ];
      qpA.postSend(wrs);
      const sendWcs: WorkCompletion[] = [];
      while (sendWcs.length < wrs.length) sendWcs.push(await cqA.next());
      expect(sendWcs.map((w) => [w.wrId, w.status, w.opcode])).toEqual([
        [1n, WcStatus.SUCCESS, WcOpcode.SEND], [2n, WcStatus.SUCCESS, WcOpcode.RDMA_WRITE], [3n, WcStatus.SUCCESS, WcOpcode.RDMA_WRITE],
        [4n, WcStatus.SUCCESS, WcOpcode.RDMA_READ], [5n, WcStatus.SUCCESS, WcOpcode.COMP_SWAP], [6n, WcStatus.SUCCESS, WcOpcode.FETCH_ADD],
        [7n, WcStatus.SUCCESS, WcOpcode.ATOMIC_WRITE], [8n, WcStatus.SUCCESS, WcOpcode.FLUSH], [9n, WcStatus.SUCCESS, WcOpcode.RDMA_WRITE],
        [10n, WcStatus.SUCCESS, WcOpcode.SEND],
      ]);
      // B's receives, from its SRQ in order: the SEND's immediate, the WRITE's immediate, the invalidation
      const recvWcs: WorkCompletion[] = [];
      while (recvWcs.length < 3) recvWcs.push(await cqB.next());
      const seen = recvWcs.map((w) => ({ wrId: w.wrId, status: w.status, opcode: w.opcode, byteLen: w.byteLen, qp: w.qpNum === qpB.qpNum,
        imm: w.wcFlags & WcFlags.WITH_IMM ? w.immData : undefined, inv: w.wcFlags & WcFlags.WITH_INV ? w.invalidatedRkey : undefined }));
      expect(seen).toEqual([
        { wrId: 0n, status: WcStatus.SUCCESS, opcode: WcOpcode.RECV, byteLen: SIZES.send, qp: true, imm: 0xabcd, inv: undefined },
        { wrId: 1n, status: WcStatus.SUCCESS, opcode: WcOpcode.RECV_RDMA_WITH_IMM, byteLen: SIZES.writeImm, qp: true, imm: 0x1234, inv: undefined },
        { wrId: 2n, status: WcStatus.SUCCESS, opcode: WcOpcode.RECV, byteLen: SIZES.sendInv, qp: true, imm: undefined, inv: mwKey },
      ]);
      expect(mw.query().state).toBe(MwState.FREE);

      // every byte: what each operation put where, and nothing else changed
      const wantA = before.a.slice();
      const wantB = before.b.slice();
      const put = (dst: Uint8Array, at: number, src: Uint8Array, from: number, n: number) => dst.set(src.subarray(from, from + n), at);
      put(wantB, BT.recv, before.a, AT.send, SIZES.send);
      put(wantB, BT.write, before.a, AT.write, SIZES.write);
      put(wantB, BT.writeImm, before.a, AT.writeImm, SIZES.writeImm);
      put(wantA, AT.read, before.b, BT.read, SIZES.read);
      put(wantA, AT.atomics, before.b, BT.counters, 16); // the two atomics' original values
      const dv = new DataView(wantB.buffer);
      dv.setBigUint64(BT.counters, swap, true);
      dv.setBigUint64(BT.counters + 8, BigInt.asUintN(64, counter1 + add), true);
      dv.setBigUint64(BT.counters + 16, word, true);
      put(wantB, BT.mw + 100, before.a, AT.mwWrite, SIZES.mwWrite);
      put(wantB, BT.recv + 2 * RECV_SLOT, before.a, AT.sendInv, SIZES.sendInv);
      expect(Buffer.compare(memA(), wantA)).toBe(0);
      expect(Buffer.compare(memB(), wantB)).toBe(0);

      // the invalidated key: a remote access error, B's QP in ERR, A's too
      qpA.postSend({ wrId: 11n, opcode: WrOpcode.RDMA_WRITE, sendFlags: S, sgList: [mrA.sge(AT.mwWrite, 64)], rdma: { remoteAddr: remote(BT.mw), rkey: mwKey } });
      expect(await cqA.next()).toMatchObject({ wrId: 11n, status: WcStatus.REM_ACCESS_ERR });
      expect(Buffer.compare(memB(), wantB)).toBe(0);
      expect(qpA.state).toBe(QpState.ERR);

      // nothing dropped or resent on the way, and every ICRC recomputes over the headers as sent
      expect(a.queryCounters()).toMatchObject({ bad_icrc: 0, completer_retry_err: 0 });
      expect(b.queryCounters()).toMatchObject({ bad_icrc: 0 });
      if (host === "worker") return;
      if (!host.startsWith("tunnel")) expect(a.port!.stats.drops).toEqual({});
      expect(b.port!.stats.drops).toEqual({});
      const codec = await WireCodec.create(await coreModule());
      const records = readCaptureAll(rec.pcap());
      expect(records.length).toBeGreaterThan(SIZES.read / 1024);
      expect(records.filter((r) => !icrcMatches(codec, r.data!))).toEqual([]);
      const [la, lb] = [udpLinkOf(a), udpLinkOf(b)];
      if (la instanceof NativeUdpLink && lb instanceof NativeUdpLink) {
        // the multi-packet messages went as GSO runs and came in as GRO super-datagrams: B's READ
        // responses to A among them
        expect(lb.datapathStats().txGsoSegments).toBeGreaterThanOrEqual(SIZES.read / 1024);
        expect(la.datapathStats().rxGroSplits).toBeGreaterThan(0);
        expect(lb.datapathStats().rxGroSplits).toBeGreaterThan(0);
      }
    });
  }
});

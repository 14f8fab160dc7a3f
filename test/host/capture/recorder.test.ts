// PcapRecorder on a PacketPort: every datagram of an RC exchange over real UDP sockets is
// recorded with the IP/UDP headers its ICRC assumed, so the decoder recomputes every ICRC.
import { afterEach, describe, expect, it } from "vitest";
import { openDevice } from "../../../host/node/index.js";
import { PcapRecorder, icrcMatches, ipPacket } from "../../../host/core/capture/recorder.js";
import { readCaptureAll, LINKTYPE_IPV4, LINKTYPE_IPV6 } from "../../../host/core/capture/pcap.js";
import { decodePacket } from "../../../host/core/wire/decode.js";
import { WireCodec } from "../../../host/core/wire/codec.js";
import { coreModule } from "../../../host/node/wasm-source.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, QpType, WrOpcode, SendFlags, WcStatus } from "../../../host/core/verbs/enums.js";
import type { Device } from "../../../host/core/verbs/device.js";
import { SimNetwork } from "../../../host/core/sim/network.js";
import { simTracePcapng } from "../../../host/core/sim/trace.js";
import type { Datagram } from "../../../host/core/net/datagram.js";
import { parseIp } from "../../../host/core/net/addr.js";
import { PCAP_FILE_MAX_BYTES, writeCaptureFile, writeCaptureFileQuietly } from "../../../host/cli/capture-file.js";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const opened: Device[] = [];
afterEach(() => {
  while (opened.length) opened.pop()!.close();
});

async function pair(a: string, b: string) {
  const da = await openDevice({ address: a, port: 0 });
  opened.push(da);
  const db = await openDevice({ address: b, port: 0 });
  opened.push(db);
  const side = (d: Device) => {
    const pd = d.allocPd();
    const mr = pd.regMr(8192, Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ | Access.REMOTE_ATOMIC);
    const cq = d.createCq(16);
    const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 8, maxRecvWr: 8, maxSendSge: 1, maxRecvSge: 1 } });
    return { d, pd, mr, cq, qp, port: (d.limits as { port: number }).port };
  };
  const A = side(da);
  const B = side(db);
  const access = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ | Access.REMOTE_ATOMIC;
  // ACK timeout 4.3 s (20): on a loaded machine the default can expire before the ACK is read, and
  // a retransmission would change the datagram counts asserted below
  connectQp(A.qp, { qpNum: B.qp.qpNum, psn: 0x100, gid: db.queryGid(0), port: B.port }, { sqPsn: 0x200, qpAccessFlags: access, timeout: 20 });
  connectQp(B.qp, { qpNum: A.qp.qpNum, psn: 0x200, gid: da.queryGid(0), port: A.port }, { sqPsn: 0x100, qpAccessFlags: access, timeout: 20 });
  return { A, B };
}

async function exchange(a: string, b: string) {
  const { A, B } = await pair(a, b);
  const rec = new PcapRecorder();
  rec.attach(A.d.port!);
  A.mr.bytes.set(Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff));
  B.qp.postRecv({ wrId: 1n, sgList: [B.mr.sge(0, 4096)] });
  A.qp.postSend({ wrId: 2n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [A.mr.sge(0, 3000)] });
  expect((await A.cq.next()).status).toBe(WcStatus.SUCCESS);
  expect((await B.cq.next()).byteLen).toBe(3000);
  A.qp.postSend({ wrId: 3n, opcode: WrOpcode.RDMA_READ, sendFlags: SendFlags.SIGNALED, sgList: [A.mr.sge(4096, 2000)],
    rdma: { remoteAddr: B.mr.addr, rkey: B.mr.rkey } });
  expect((await A.cq.next()).status).toBe(WcStatus.SUCCESS);
  expect(A.mr.bytes.subarray(4096, 6096)).toEqual(A.mr.bytes.subarray(0, 2000));
  return { A, B, rec };
}

/** Every record's ICRC recomputed from the file (the devices use free UDP ports, which the RoCE
 * decoder does not take for RoCE: it is checked with the codec's ICRC over the whole packet). */
async function icrcs(bytes: Uint8Array) {
  const codec = await WireCodec.create(await coreModule());
  return readCaptureAll(bytes).map((r) => icrcMatches(codec, r.data!));
}

/** BTH opcode of each record (the first byte after the UDP header). */
function opcodes(bytes: Uint8Array) {
  return readCaptureAll(bytes).map((r) => {
    const ip = r.data!;
    const udp = ip[0] >> 4 === 4 ? 20 : 40;
    return ip[udp + 8];
  });
}

describe("PcapRecorder", () => {
  it("records every datagram of an RC SEND + READ over IPv4 UDP; every ICRC recomputes", async () => {
    const { A, B, rec } = await exchange("127.0.10.41", "127.0.10.42");
    // A sends SEND x3 (MTU 1024) and one READ request; B answers with an ACK and 2 READ responses
    // (ACK coalescing may fold the SEND ACK); everything A's port saw is recorded once.
    const stats = A.d.port!.stats;
    expect(rec.packets.filter((p) => p.dir === "tx").length).toBe(stats.txDatagrams);
    expect(rec.packets.filter((p) => p.dir === "rx").length).toBe(stats.rxDatagrams);
    expect(stats.txDatagrams).toBe(4);
    expect(B.d.port!.stats.txDatagrams).toBe(stats.rxDatagrams);
    expect(rec.packets.every((p) => p.dir === "tx" || p.rxResult === 0)).toBe(true);
    const file = rec.pcap();
    const recs = readCaptureAll(file);
    expect(recs[0].linktype).toBe(LINKTYPE_IPV4);
    expect(recs.length).toBe(rec.packets.length);
    expect(await icrcs(file)).toEqual(rec.packets.map(() => true));
    const ops = opcodes(file);
    expect(ops.slice(0, 3)).toEqual([0, 1, 2]); // SEND FIRST, MIDDLE, LAST
    expect(ops).toContain(12); // RDMA READ REQUEST
    expect(ops).toContain(13); // READ RESPONSE FIRST
    expect(ops).toContain(15); // READ RESPONSE LAST
    // IPv4 header: DF, TTL 64, ID 0, a valid header checksum; UDP ports: to B's, from the QP's own (rxe's per-QP port)
    const ip = recs[0].data!;
    expect([ip[6], ip[7], ip[8], ip[9]]).toEqual([0x40, 0, 64, 17]);
    expect((ip[4] << 8) | ip[5]).toBe(0);
    expect(((ip[22] << 8) | ip[23])).toBe(B.port);
    expect(((ip[20] << 8) | ip[21])).toBe(A.qp.udpSourcePort);
    expect(A.qp.udpSourcePort).toBeGreaterThanOrEqual(0xc000);
  });

  it("records IPv6 the same way", async () => {
    const { rec } = await exchange("::1", "::1");
    const file = rec.pcap();
    expect(readCaptureAll(file)[0].linktype).toBe(LINKTYPE_IPV6);
    const ok = await icrcs(file);
    expect(ok.length).toBeGreaterThanOrEqual(6);
    expect(ok.every((x) => x)).toBe(true);
  });

  it("records dropped datagrams too, and a damaged one fails its ICRC in the file", async () => {
    const { A } = await pair("127.0.10.43", "127.0.10.44");
    const rec = new PcapRecorder({ directions: ["rx"] });
    const detach = rec.attach(A.d.port!);
    A.d.port!.receive({ src: "127.0.10.44", dst: "127.0.10.43", srcPort: 1, dstPort: A.port, payload: new Uint8Array(40) });
    expect(rec.packets).toHaveLength(1);
    expect(rec.packets[0].rxResult).not.toBe(0);
    expect(await icrcs(rec.pcap())).toEqual([false]);
    detach();
    expect(A.d.port!.capture).toBeUndefined();
  });

  it("synthesizes exact IPv4 and UDP headers", async () => {
    const codec = await WireCodec.create(await coreModule());
    const p = ipPacket({ src: "10.0.0.1", dst: "10.0.0.2", srcPort: 0xc000, dstPort: 4791, ipId: 0x1234, payload: new Uint8Array([1, 2, 3, 4]) }, codec);
    // checksums computed independently (Python, RFC 1071 ones' complement sums)
    expect(Buffer.from(p).toString("hex")).toBe("450000201234400040111497" + "0a0000010a000002" + "c00012b7000c1516" + "01020304");
    // the header checksum verifies: the ones' complement sum over the header is 0xffff
    let s = 0;
    for (let i = 0; i < 20; i += 2) s += (p[i] << 8) | p[i + 1];
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    expect(s).toBe(0xffff);
  });

  it("a packet on 4791 decodes with icrc ok; a flipped payload bit does not", async () => {
    const codec = await WireCodec.create(await coreModule());
    // an RC SEND ONLY emitted by the codec, its UDP payload re-wrapped by the recorder
    const emitted = codec.emit({ src: "127.0.0.1", dst: "127.0.0.2", ipId: 0, udpSrcPort: 0xc011, opcode: 4, psn: 7, destQp: 0x11,
      payload: new Uint8Array([9, 8, 7, 6]) });
    const rec = new PcapRecorder({ now: () => 1_767_225_600_000_000 });
    rec.add("tx", { src: "127.0.0.1", dst: "127.0.0.2", srcPort: 0xc011, dstPort: 4791, ipId: 0, payload: emitted.subarray(28) });
    const bad = emitted.subarray(28).slice();
    bad[14] ^= 1;
    rec.add("tx", { src: "127.0.0.1", dst: "127.0.0.2", srcPort: 0xc011, dstPort: 4791, ipId: 0, payload: bad });
    const recs = readCaptureAll(rec.pcap());
    expect(recs.map((r) => r.tsMicros)).toEqual([1_767_225_600_000_000, 1_767_225_600_000_000]);
    expect(recs[0].data!.subarray(0, 20)).toEqual(emitted.subarray(0, 20).map((b, i) => (i === 10 || i === 11 ? recs[0].data![i] : b)));
    const d = recs.map((r) => decodePacket(codec, r.data!, { frame: r.index }));
    expect(d.map((x) => x.ok)).toEqual([true, false]);
    expect(d[0].record["infiniband.bth.opcode"]).toBe(4);
  });

  it("maxBytes: packets are kept until they hold that many bytes, the rest counted in dropped; a CLI tool's file says so", async () => {
    const codec = await WireCodec.create(await coreModule());
    const emitted = codec.emit({ src: "127.0.0.1", dst: "127.0.0.2", ipId: 0, udpSrcPort: 0xc011, opcode: 4, psn: 7, destQp: 0x11, payload: new Uint8Array(100) });
    const d = { src: "127.0.0.1", dst: "127.0.0.2", srcPort: 0xc011, dstPort: 4791, ipId: 0, payload: emitted.subarray(28) };
    // each packet is the emitted one's length: the bound lets the third in (2 × len < 2.5 × len), not the fourth
    const rec = new PcapRecorder({ maxBytes: 2.5 * emitted.length });
    for (let i = 0; i < 10; i++) rec.add("tx", d);
    expect(rec.packets.length).toBe(3);
    expect(rec.bytes).toBe(3 * emitted.length);
    expect(rec.dropped).toBe(7);
    expect(readCaptureAll(rec.pcap()).length).toBe(3);
    const dir = mkdtempSync(join(tmpdir(), "softroce-rec-"));
    try {
      expect(writeCaptureFile(join(dir, "a.pcap"), rec)).toBe(`wrote 3 packets to ${join(dir, "a.pcap")}; 7 more not kept (a capture holds at most ${PCAP_FILE_MAX_BYTES / 2 ** 20} MiB)`);
      expect(readCaptureAll(new Uint8Array(readFileSync(join(dir, "a.pcap")))).length).toBe(3);
      expect(() => writeCaptureFile(join(dir, "none", "a.pcap"), rec)).toThrow(`cannot write ${join(dir, "none", "a.pcap")}: `);
      // the quiet writer (perf's): the same line when packets were not kept, nothing when the file is all of them
      expect(writeCaptureFileQuietly(join(dir, "b.pcap"), rec)).toBe(`wrote 3 packets to ${join(dir, "b.pcap")}; 7 more not kept (a capture holds at most ${PCAP_FILE_MAX_BYTES / 2 ** 20} MiB)`);
      const whole = new PcapRecorder({ maxBytes: 2.5 * emitted.length });
      whole.add("tx", d);
      expect(writeCaptureFileQuietly(join(dir, "c.pcap"), whole)).toBeUndefined();
      expect(readCaptureAll(new Uint8Array(readFileSync(join(dir, "c.pcap")))).length).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // The headers a capture shows are the ones the device sends: written by the core from the TX
  // descriptor's facts (the AH's hop limit, traffic class and flow label, IPv4 ID 0 and DF), the
  // same facts the link was handed. The expected bytes are built here by hand from the datagram the
  // simulated link carried, checksums by RFC 1071.
  for (const [a, b] of [["127.0.10.1", "127.0.10.2"], ["fd00:10::1", "fd00:10::2"]] as const) {
    it(`a captured packet is the link's datagram inside the device's own IP/UDP header (${a.includes(":") ? "IPv6" : "IPv4"})`, async () => {
      const mod = await coreModule();
      const codec = await WireCodec.create(mod);
      const net = new SimNetwork({ trace: true });
      const mk = async (addr: string) => {
        const d = await net.addDevice(mod, addr);
        const pd = d.allocPd();
        const cq = d.createCq(8);
        const qp = pd.createQp({ qpType: QpType.UD, sendCq: cq, recvCq: cq, cap: { maxSendWr: 4, maxRecvWr: 4, maxSendSge: 1, maxRecvSge: 1 } });
        connectQp(qp, undefined, { sqPsn: 1 });
        return { d, pd, cq, qp, mr: pd.regMr(4096, Access.LOCAL_WRITE) };
      };
      const A = await mk(a);
      const B = await mk(b);
      const rec = new PcapRecorder({ codec, directions: ["tx"] });
      rec.attach(A.d.port!);
      B.qp.postRecv({ wrId: 1n, sgList: [B.mr.sge(0, 1024)] });
      const ah = A.pd.createAh({ grh: { dgid: B.d.queryGid(0), sgidIndex: 0, hopLimit: 9, trafficClass: 0x2e, flowLabel: 0xabcde }, portNum: 1 });
      A.mr.bytes.set([1, 2, 3, 4, 5, 6, 7]);
      A.qp.postSend({ wrId: 2n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [A.mr.sge(0, 7)],
        ud: { ah, remoteQpn: B.qp.qpNum, remoteQkey: 0x11111111 } });
      net.wire.clock.run();
      expect((await B.cq.next()).byteLen).toBe(40 + 7); // the GRH, then the payload
      const carried = net.wire.trace!.map((t) => t.datagram);
      expect(carried).toHaveLength(1);
      const d = carried[0]!;
      expect([d.ttl, d.tos, d.flowLabel, d.ipId]).toEqual([9, 0x2e, 0xabcde, 0]);
      const want = byHand(d);
      expect(Buffer.from(rec.packets[0]!.packet).toString("hex")).toBe(Buffer.from(want).toString("hex"));
      // the file and the simulated wire's pcapng hold the same bytes, and the ICRC recomputes over them
      expect(readCaptureAll(rec.pcap())[0]!.data).toEqual(want);
      expect(readCaptureAll(simTracePcapng(net.wire.trace!, { codec }))[0]!.data!.subarray(0, want.length)).toEqual(want);
      expect(icrcMatches(codec, want)).toBe(true);
      const parsed = codec.parse(want.slice());
      expect(parsed.ok && [parsed.repr.ttl, parsed.repr.tos, parsed.repr.flowLabel, parsed.repr.icrcOk])
        .toEqual([9, 0x2e, a.includes(":") ? 0xabcde : 0, true]);
    });
  }
});

function sum16(b: Uint8Array, acc = 0): number {
  for (let i = 0; i < b.length; i += 2) acc += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (acc > 0xffff) acc = (acc & 0xffff) + (acc >>> 16);
  return acc;
}

/** IPv4 (IHL 5, DF, the datagram's ID, TTL and TOS) or IPv6 (its traffic class, flow label, hop limit) + UDP with its checksum. */
function byHand(d: Datagram): Uint8Array {
  const s = parseIp(d.src)!;
  const t = parseIp(d.dst)!;
  const v4 = s.version === 4;
  const hl = v4 ? 20 : 40;
  const ulen = 8 + d.payload.length;
  const out = new Uint8Array(hl + ulen);
  const v = new DataView(out.buffer);
  if (v4) {
    v.setUint8(0, 0x45); v.setUint8(1, d.tos!); v.setUint16(2, hl + ulen); v.setUint16(4, d.ipId!); v.setUint16(6, 0x4000);
    v.setUint8(8, d.ttl!); v.setUint8(9, 17); out.set(s.bytes, 12); out.set(t.bytes, 16);
    v.setUint16(10, ~sum16(out.subarray(0, 20)) & 0xffff);
  } else {
    v.setUint32(0, (6 << 28) | (d.tos! << 20) | d.flowLabel!); v.setUint16(4, ulen); v.setUint8(6, 17); v.setUint8(7, d.ttl!);
    out.set(s.bytes, 8); out.set(t.bytes, 24);
  }
  v.setUint16(hl, d.srcPort); v.setUint16(hl + 2, d.dstPort); v.setUint16(hl + 4, ulen);
  out.set(d.payload, hl + 8);
  const pseudo = new Uint8Array(s.bytes.length * 2 + 4);
  pseudo.set(s.bytes); pseudo.set(t.bytes, s.bytes.length);
  new DataView(pseudo.buffer).setUint16(pseudo.length - 2, 17 + ulen);
  const ck = ~sum16(out.subarray(hl), sum16(pseudo)) & 0xffff;
  v.setUint16(hl + 6, ck === 0 ? 0xffff : ck);
  return out;
}

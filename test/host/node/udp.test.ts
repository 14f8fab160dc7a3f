// The Node UDP host, on both of its paths (the native datapath and node:dgram, same API): a
// device bound to a loopback address receives datagrams through a real socket, validates them
// like any other link's, moves RC traffic between two devices with the right bytes, and closes
// cleanly.
import { afterEach, describe, expect, it } from "vitest";
import dgram from "node:dgram";
import { once } from "node:events";
import { datapathOf, openDevice, udpLinkOf, type NodeDeviceOptions } from "../../../host/node/index.js";
import { NativeUdpLink } from "../../../host/node/native-link.js";
import { datapathAddon } from "../../../host/node/datapath.js";
import { PcapRecorder, icrcMatches } from "../../../host/core/capture/recorder.js";
import { readCaptureAll } from "../../../host/core/capture/pcap.js";
import { WireCodec, type PacketSpec } from "../../../host/core/wire/codec.js";
import { coreModule } from "../../../host/node/wasm-source.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, Mtu, QpType, SendFlags, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import type { Device } from "../../../host/core/verbs/device.js";
import { until } from "../support/until.js";

const openDeviceOn = openDevice;
const opened: Device[] = [];
afterEach(() => {
  while (opened.length) opened.pop()!.close();
});

async function sendFrom(payload: Uint8Array, port: number, address = "127.0.0.1"): Promise<void> {
  const s = dgram.createSocket(address.includes(":") ? "udp6" : "udp4");
  await new Promise<void>((r) => s.bind(0, address, r));
  await new Promise<void>((r, j) => s.send(payload, port, address, (e) => (e ? j(e) : r())));
  s.close();
}

const PATHS = datapathAddon() ? (["native", "dgram"] as const) : (["dgram"] as const);

it("the native datapath is built here (the host tests run on both paths)", () => {
  // the addon is built by npm ci; without it only the dgram half below runs, which must be visible
  expect(datapathAddon()).toBeDefined();
});

describe.each(PATHS)("Node UDP host (%s)", (path) => {
  const openDevice = (o: NodeDeviceOptions) => openDeviceOn({ ...o, datapath: path });

  it("reports its path", async () => {
    const dev = await openDevice({ address: "127.0.0.1", port: 0 });
    opened.push(dev);
    expect(datapathOf(dev)?.path).toBe(path);
    expect(udpLinkOf(dev)?.path).toBe(path);
    expect(udpLinkOf(dev) instanceof NativeUdpLink).toBe(path === "native");
  });

  it("binds IPv4 loopback, lists the address as GID 0, and validates what arrives", async () => {
    const dev = await openDevice({ address: "127.0.0.1", port: 0 });
    opened.push(dev);
    expect(dev.queryGid(0)).toBe("::ffff:127.0.0.1");
    const pd = dev.allocPd();
    const cq = dev.createCq(4);
    const qp = pd.createQp({ qpType: QpType.UD, sendCq: cq, recvCq: cq, cap: { maxSendWr: 1, maxRecvWr: 1, maxSendSge: 1, maxRecvSge: 1 } });
    connectQp(qp, undefined, { sqPsn: 0, qkey: 0x11111111 });
    const codec = await WireCodec.create(await coreModule());
    const port = dev.port!;
    const localPort = (dev.limits as { port: number }).port;
    // the sender's source port is part of the ICRC: send from a socket whose port we know
    const s = dgram.createSocket("udp4");
    await new Promise<void>((r) => s.bind(0, "127.0.0.1", r));
    const sport = s.address().port;
    const good = codec.emit({ src: "127.0.0.1", dst: "127.0.0.1", ipId: 0, ipFlags: 2, udpSrcPort: sport, udpDstPort: localPort,
      opcode: 0x64, destQp: qp.qpNum, deth: { qkey: 0x11111111, srcQp: 3 } } as PacketSpec).subarray(28);
    const bad = good.slice();
    bad[bad.length - 1] ^= 1;
    for (const p of [good, bad]) await new Promise<void>((r, j) => s.send(p, localPort, "127.0.0.1", (e) => (e ? j(e) : r())));
    s.close();
    await until(() => port.stats.rxDatagrams === 2);
    expect(dev.queryCounters()).toMatchObject({ rcvd_pkts: 1, bad_icrc: 1 });
    expect(port.stats.drops).toEqual({ bad_icrc: 1 });
  });

  it("binds IPv6 loopback", async () => {
    const dev = await openDevice({ address: "::1", port: 0 });
    opened.push(dev);
    expect(dev.queryGid(0)).toBe("::1");
    await sendFrom(new Uint8Array(8), (dev.limits as { port: number }).port, "::1");
    await until(() => dev.port!.stats.rxDatagrams === 1);
    expect(dev.port!.stats.drops).toEqual({ short: 1 });
  });

  it("refuses a bad address or port with a clear error, and a port in use", async () => {
    await expect(openDevice({ address: "nowhere" })).rejects.toThrow(/not an IPv4 or IPv6 address/);
    await expect(openDevice({ address: "127.0.0.1", port: 70000 })).rejects.toThrow(/bad UDP port/);
    const dev = await openDevice({ address: "127.0.0.1", port: 0 });
    opened.push(dev);
    await expect(openDevice({ address: "127.0.0.1", port: (dev.limits as { port: number }).port })).rejects.toThrow(/in use/);
  });

  for (const [a1, a2] of [["127.0.21.1", "127.0.21.2"], ["::1", "::1"]] as const) {
    it(`RC WRITE 64 KiB × 24 and a SEND between two devices over ${a1.includes(":") ? "IPv6" : "IPv4"}: the bytes arrive, nothing is dropped`, async () => {
      const MSG = 65536;
      const N = 24;
      const ACCESS = Access.LOCAL_WRITE | Access.REMOTE_WRITE;
      const devOpts = { port: 0, activeMtu: Mtu.MTU_4096, mrArenaBytes: 8 << 20 };
      const a = await openDevice({ ...devOpts, address: a1 });
      const b = await openDevice({ ...devOpts, address: a2 });
      opened.push(a, b);
      const side = (d: Device) => {
        const pd = d.allocPd();
        const cq = d.createCq(256);
        const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 64, maxRecvWr: 4, maxSendSge: 1, maxRecvSge: 1 } });
        const mr = pd.regMr(N * MSG, ACCESS);
        return { d, cq, qp, mr, port: (d.limits as { port: number }).port };
      };
      const A = side(a);
      const B = side(b);
      // ACK timeout 4.3 s (20): exact counts below; a loaded machine's stall past the default 67 ms would add a retransmission
      const common = { pathMtu: Mtu.MTU_4096, qpAccessFlags: ACCESS, timeout: 20 };
      connectQp(A.qp, { qpNum: B.qp.qpNum, psn: 7, gid: b.queryGid(0), port: B.port }, { ...common, sqPsn: 3 });
      connectQp(B.qp, { qpNum: A.qp.qpNum, psn: 3, gid: a.queryGid(0), port: A.port }, { ...common, sqPsn: 7 });
      // the capture taps the port after the batched send: the IPv4 ID each datagram went with
      const rec = new PcapRecorder();
      rec.attach(a.port!);
      const src = new Uint8Array(a.memory.buffer, Number(A.mr.addr), N * MSG);
      for (let i = 0; i < src.length; i++) src[i] = (i * 31 + (i >>> 10)) & 0xff;
      B.qp.postRecv({ wrId: 99n, sgList: [B.mr.sge(0, 256)] });
      for (let k = 0; k < N; k++) {
        A.qp.postSend({ wrId: BigInt(k), opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [A.mr.sge(k * MSG, MSG)],
          rdma: { remoteAddr: B.mr.addr + BigInt(k * MSG), rkey: B.mr.rkey } });
      }
      const wcs = [];
      while (wcs.length < N) wcs.push(await A.cq.next());
      expect(wcs.map((w) => w.status)).toEqual(new Array(N).fill(WcStatus.SUCCESS));
      expect(Buffer.compare(new Uint8Array(b.memory.buffer, Number(B.mr.addr), N * MSG), src)).toBe(0);
      // a SEND after the WRITEs lands in the receive buffer (it overwrites the first 256 bytes)
      A.qp.postSend({ wrId: 100n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [A.mr.sge(MSG, 256)] });
      expect((await A.cq.next()).status).toBe(WcStatus.SUCCESS);
      const r = await B.cq.next();
      expect(r).toMatchObject({ wrId: 99n, status: WcStatus.SUCCESS, byteLen: 256 });
      expect(a.port!.stats.drops).toEqual({});
      expect(b.port!.stats.drops).toEqual({});
      expect(a.queryCounters()).toMatchObject({ completer_retry_err: 0, bad_icrc: 0 });
      expect(b.queryCounters()).toMatchObject({ bad_icrc: 0, rcvd_pkts: N * 16 + 1 });
      const la = udpLinkOf(a)!;
      expect(la.stats.sent).toBe(a.queryCounters().sent_pkts);
      expect(udpLinkOf(b)!.stats.received).toBe(N * 16 + 1);
      // every ICRC recomputes over the headers as sent (GSO segments: IDs 1.. on IPv4)
      const codec = await WireCodec.create(await coreModule());
      const records = readCaptureAll(rec.pcap());
      expect(records.length).toBe(a.queryCounters().sent_pkts + a.queryCounters().rcvd_pkts);
      expect(records.filter((r) => !icrcMatches(codec, r.data!))).toEqual([]);
      const v4ids = records.filter((r) => r.data![0] >> 4 === 4).map((r) => (r.data![4]! << 8) | r.data![5]!);
      if (la instanceof NativeUdpLink && !a1.includes(":")) expect(Math.max(...v4ids)).toBeGreaterThan(0);
      if (la instanceof NativeUdpLink) {
        // on loopback a run of full-size packets to one peer is one GSO send; the receiver's GRO
        // gets it whole and the segment index is the IPv4 ID it checks the ICRC with
        const st = la.datapathStats();
        expect(la.gso).toBe(true);
        expect(st.txGsoSegments).toBeGreaterThan(N * 8);
        expect(st.txSyscalls).toBeLessThan(st.txDatagrams);
        expect((udpLinkOf(b) as NativeUdpLink).datapathStats().rxGroSplits).toBeGreaterThan(0);
      }
    });
  }

  it("stops receiving after close", async () => {
    const dev = await openDevice({ address: "127.0.0.1", port: 0 });
    const p = (dev.limits as { port: number }).port;
    dev.close();
    const s = dgram.createSocket("udp4");
    s.bind(0, "127.0.0.1");
    await once(s, "listening");
    expect(dev.port!.receive({ src: "127.0.0.1", dst: "127.0.0.1", srcPort: 1, dstPort: p, payload: new Uint8Array(20) })).toBe(-1);
    s.close();
  });
});

// Linux rxe's own packets (test/fixtures/captures/mw, captures/mcast: two rxe
// guests, verbs-ops and mckey) replayed against softroce.
// - mw2-inv: the server bound a type 2 window (rkey 0x08000104); the client
//   WRITEs and READs through it, sends SEND_WITH_INV for it, WRITEs again. A
//   device playing the server takes every request: the READ response carries
//   the bytes written, the SEND completes WITH_INV for 0x08000104, the last
//   WRITE gets the same NAK (remote access error) rxe sent. A device playing
//   the client emits the same SEND ONLY WITH INVALIDATE (headers and payload).
// - mckey-v4: three UD SEND ONLY WITH IMMEDIATE datagrams to QPN 0xFFFFFF at
//   239.1.1.1; a device whose QP attached ::ffff:239.1.1.1 completes all three,
//   one whose QP did not drops them; a device playing the sender emits the same bytes.
import { describe, expect, it } from "vitest";
import { coreModule } from "../../../host/node/wasm-source.js";
import type { Datagram } from "../../../host/core/net/datagram.js";
import { SimNetwork } from "../../../host/core/sim/network.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, Mtu, MwType, QpState, QpType, SendFlags, WcFlags, WcOpcode, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import { incRkey } from "../../../host/core/verbs/mw.js";
import type { Device, OpenDeviceOptions } from "../../../host/core/verbs/device.js";
import { core, deliver, loadCapture, parseSent, remapped, specOf } from "../support/replay.js";

const gid = (a: string) => (a.includes(":") ? a : `::ffff:${a}`);

/** A capture's RoCE packets (test/support/replay.ts) and the codec they were parsed with. */
async function load(name: string) {
  return { codec: (await core()).codec, pkts: await loadCapture(name) };
}

/** A device at `address` (GID 0 that address; QPNs, UDP port as the capture's end it plays) on a wire of its own, and what it sends. */
async function player(address: string, o: OpenDeviceOptions = {}): Promise<{ net: SimNetwork; dev: Device; sent: Datagram[] }> {
  const net = new SimNetwork({});
  const dev = await net.addDevice(await coreModule(), address, { gids: [gid(address)], ...o });
  const sent: Datagram[] = [];
  dev.port!.capture = (dir, d) => {
    if (dir === "tx") sent.push({ ...d, payload: d.payload.slice() });
  };
  return { net, dev, sent };
}

/** BTH and extension headers + payload of a UDP payload, without the ICRC (it covers the IP ID, which differs). */
const body = (udp: Uint8Array) => Array.from(udp.subarray(0, udp.length - 4));

describe("rxe captures replayed: SEND_WITH_INV of a type 2 window, multicast UD", () => {
  it("mw2-inv, responder: WRITE/READ through window 0x08000104, SEND_WITH_INV invalidates it, the next WRITE is NAKed as rxe did", async () => {
    const { codec, pkts } = await load("mw/mw2-inv");
    const client = pkts[0]!.repr.src; // 192.0.2.3
    const server = pkts[0]!.repr.dst; // 192.0.2.2
    const reqs = pkts.filter((p) => p.repr.src === client);
    const resps = pkts.filter((p) => p.repr.src === server);
    expect(reqs.map((p) => p.repr.opcode)).toEqual([0x0a, 0x0c, 0x17, 0x0a]); // WRITE ONLY, READ REQ, SEND ONLY INV, WRITE ONLY
    const inv = reqs[2]!.repr;
    expect(inv.ieth!.rkey).toBe(0x08000104);

    const { net, dev, sent } = await player(server, { qpnBase: inv.destQp, qpnCount: 1, maxQp: 1 });
    const pd = dev.allocPd();
    const cq = dev.createCq(64);
    const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 8, maxRecvWr: 8, maxSendSge: 1, maxRecvSge: 1 } });
    connectQp(qp, { qpNum: resps[0]!.repr.destQp, psn: reqs[0]!.repr.psn, gid: gid(client) }, {
      sqPsn: 0, pathMtu: Mtu.MTU_1024, qpAccessFlags: Access.REMOTE_WRITE | Access.REMOTE_READ, maxDestRdAtomic: 4, maxRdAtomic: 4, timeout: 14,
    });
    const mr = pd.regMr(4096, Access.LOCAL_WRITE | Access.MW_BIND);
    // rxe allocated 0x08000103 and bound it as 0x08000104: the same index (the first window) and key bytes here
    let mw = pd.allocMw(MwType.TYPE_2);
    while ((mw.rkey & 0xff) !== 0x03) {
      mw.destroy();
      mw = pd.allocMw(MwType.TYPE_2);
    }
    expect(mw.rkey).toBe(0x08000103);
    const window = mr.addr + 1024n;
    qp.postSend({ wrId: 1n, opcode: WrOpcode.BIND_MW, sendFlags: SendFlags.SIGNALED, bindMw: { mw, rkey: 0x08000104, bindInfo: { mr, addr: window, length: 1024, mwAccessFlags: Access.REMOTE_WRITE | Access.REMOTE_READ } } });
    qp.postRecv({ wrId: 100n, sgList: [mr.sge(0, 512)] });
    net.run(net.now + 1000);
    expect(cq.poll(4).map((w) => [w.wrId, w.status, w.opcode])).toEqual([[1n, WcStatus.SUCCESS, WcOpcode.BIND_MW]]);

    const base = 0x0000557cdb42a400n; // the window's address in the server's process (its log)
    for (const p of reqs) {
      const r = p.repr;
      const udp = r.reth ? remapped(codec, r, window + (r.reth.va - base), r.reth.rkey) : p.udp;
      expect(deliver(dev, r, udp)).toBe(0);
      net.run(net.now + 1000);
    }
    // the WRITE landed in the window, the READ response carries what rxe's did
    expect(Array.from(mr.bytes.subarray(1024, 1024 + reqs[0]!.repr.payload.length))).toEqual(Array.from(reqs[0]!.repr.payload));
    const ours = parseSent(codec, sent);
    const readResp = ours.find((x) => x.opcode === 0x10);
    expect(readResp && Array.from(readResp.payload)).toEqual(Array.from(resps.find((p) => p.repr.opcode === 0x10)!.repr.payload));
    // SEND_WITH_INV: a RECV completion with the invalidated rkey
    const [recv] = cq.poll(4);
    expect([recv!.wrId, recv!.status, recv!.opcode, recv!.byteLen]).toEqual([100n, WcStatus.SUCCESS, WcOpcode.RECV, inv.payload.length]);
    expect(recv!.wcFlags & WcFlags.WITH_INV).toBe(WcFlags.WITH_INV);
    expect(recv!.invalidatedRkey).toBe(0x08000104);
    // the answers, in order: ACK, READ RESPONSE ONLY, ACK, NAK remote access error — as rxe's
    const answers = ours.map((x) => [x.opcode, x.aeth?.syndrome ?? -1, x.psn]);
    expect(answers).toEqual(resps.map((p) => [p.repr.opcode, p.repr.aeth?.syndrome ?? -1, p.repr.psn]));
    expect(answers.at(-1)![1]).toBe(0x62); // NAK, remote access error
  });

  it("mw2-inv, requester: a device playing the client sends the same SEND ONLY WITH INVALIDATE", async () => {
    const { pkts } = await load("mw/mw2-inv");
    const p = pkts.find((x) => x.repr.opcode === 0x17)!;
    const r = p.repr;
    const { net, dev, sent } = await player(r.src, { qpnBase: pkts.find((x) => x.repr.src === r.dst)!.repr.destQp, qpnCount: 1, maxQp: 1, port: r.udpSrcPort });
    const pd = dev.allocPd();
    const cq = dev.createCq(8);
    const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 4, maxRecvWr: 1, maxSendSge: 1 } });
    connectQp(qp, { qpNum: r.destQp, psn: 0, gid: gid(r.dst) }, { sqPsn: r.psn, pathMtu: Mtu.MTU_1024, timeout: 14 });
    const mr = pd.regMr(4096, Access.LOCAL_WRITE);
    mr.bytes.set(r.payload, 0);
    qp.postSend({ wrId: 12n, opcode: WrOpcode.SEND_WITH_INV, sendFlags: SendFlags.SIGNALED, invalidateRkey: r.ieth!.rkey, sgList: [mr.sge(0, r.payload.length)] });
    expect(sent.length).toBe(1);
    expect(body(sent[0]!.payload)).toEqual(body(p.udp));
  });

  it("mckey-v4: rxe's multicast datagrams reach the attached QP (immediate, GRH, source QP); an unattached QP drops them", async () => {
    const { codec, pkts } = await load("mcast/mckey-v4");
    expect(pkts.length).toBe(3);
    const r0 = pkts[0]!.repr;
    expect([r0.opcode, r0.destQp, r0.dst, r0.deth!.qkey]).toEqual([0x65, 0xffffff, "239.1.1.1", 0x01234567]);
    const receiver = "192.0.2.2";
    for (const attach of [true, false]) {
      const { dev } = await player(receiver);
      const pd = dev.allocPd();
      const cq = dev.createCq(8);
      const qp = pd.createQp({ qpType: QpType.UD, sendCq: cq, recvCq: cq, cap: { maxSendWr: 1, maxRecvWr: 8, maxSendSge: 1, maxRecvSge: 1 } });
      connectQp(qp, undefined, { sqPsn: 0, qkey: r0.deth!.qkey });
      const mr = pd.regMr(4096, Access.LOCAL_WRITE);
      for (let i = 0; i < 3; i++) qp.postRecv({ wrId: BigInt(i), sgList: [mr.sge(i * 1024, 1024)] });
      if (attach) qp.attachMcast("::ffff:239.1.1.1");
      const verdicts = pkts.map((p) => deliver(dev, p.repr, p.udp));
      const wcs = cq.poll(8);
      if (!attach) {
        expect(verdicts).toEqual([6, 6, 6]); // unknown_qpn: no group here
        expect(wcs).toEqual([]);
        continue;
      }
      expect(verdicts).toEqual([0, 0, 0]);
      expect(wcs.map((w) => [w.wrId, w.status, w.opcode, w.byteLen, w.srcQp, w.immData, w.wcFlags & WcFlags.WITH_IMM])).toEqual(
        pkts.map((p, i) => [BigInt(i), WcStatus.SUCCESS, WcOpcode.RECV, 40 + p.repr.payload.length, p.repr.deth!.srcQp, p.repr.immDt, WcFlags.WITH_IMM]),
      );
      expect(Array.from(mr.bytes.subarray(40, 40 + r0.payload.length))).toEqual(Array.from(r0.payload));
    }
    void codec;
  });

  it("mckey-v4, sender: a device playing rxe's sender emits the same datagrams to the group", async () => {
    const { pkts } = await load("mcast/mckey-v4");
    const r0 = pkts[0]!.repr;
    const { net, dev, sent } = await player(r0.src, { qpnBase: r0.deth!.srcQp, qpnCount: 1, maxQp: 1, port: r0.udpSrcPort });
    const pd = dev.allocPd();
    const cq = dev.createCq(8);
    const qp = pd.createQp({ qpType: QpType.UD, sendCq: cq, recvCq: cq, cap: { maxSendWr: 4, maxRecvWr: 1, maxSendSge: 1 } });
    expect(qp.qpNum).toBe(r0.deth!.srcQp);
    connectQp(qp, undefined, { sqPsn: r0.psn, qkey: r0.deth!.qkey });
    const mr = pd.regMr(4096, Access.LOCAL_WRITE);
    const ah = pd.createAh({ grh: { dgid: "::ffff:239.1.1.1", sgidIndex: 0, hopLimit: r0.ttl }, portNum: 1 });
    pkts.forEach((p, i) => {
      mr.bytes.set(p.repr.payload, i * 1024);
      qp.postSend({ wrId: BigInt(i), opcode: WrOpcode.SEND_WITH_IMM, immData: p.repr.immDt!, sendFlags: SendFlags.SIGNALED, sgList: [mr.sge(i * 1024, p.repr.payload.length)], ud: { ah, remoteQpn: 0xffffff, remoteQkey: p.repr.deth!.qkey } });
    });
    net.run(net.now + 1000);
    expect(sent.map((s) => s.dst)).toEqual(["239.1.1.1", "239.1.1.1", "239.1.1.1"]);
    expect(sent.map((s) => body(s.payload))).toEqual(pkts.map((p) => body(p.udp)));
  });
});

/**
 * The other verbs-ops scenarios, responder side: a device playing rxe's server sets up what the
 * server log shows (a type 1 window, a type 2 window, or the MR itself), takes the client's
 * requests — R_Keys and addresses mapped onto its own (the ICRC redone) — does the server's step
 * before the last request (unbind, LOCAL_INV) and must answer each request as rxe did (opcode,
 * AETH syndrome, PSN), with the server's receive completion rxe logged.
 */
describe("rxe's other memory-window captures replayed against a device playing the server", () => {
  const scenarios = [
    { file: "mw1", kind: "type1", step: "unbind", recv: undefined },
    { file: "local-inv", kind: "type2", step: "local-inv", recv: undefined },
    { file: "inv-type1", kind: "type1", step: undefined, recv: WcStatus.REM_INV_REQ_ERR },
    { file: "inv-mr", kind: "mr", step: undefined, recv: WcStatus.REM_INV_REQ_ERR },
  ] as const;
  for (const sc of scenarios) {
    it(`${sc.file}: the same answers as rxe${sc.recv !== undefined ? ", the receive completes REM_INV_REQ_ERR and the QP goes to ERR" : ""}`, async () => {
      const { codec, pkts } = await load(`mw/${sc.file}`);
      const client = pkts[0]!.repr.src;
      const server = pkts[0]!.repr.dst;
      const reqs = pkts.filter((p) => p.repr.src === client);
      const resps = pkts.filter((p) => p.repr.src === server);
      const theirKey = (reqs[0]!.repr.reth ?? { rkey: 0 }).rkey;
      const theirBase = reqs[0]!.repr.reth!.va; // the first request writes at the start of the range
      const { net, dev, sent } = await player(server, { qpnBase: reqs[0]!.repr.destQp, qpnCount: 1, maxQp: 1 });
      const pd = dev.allocPd();
      const cq = dev.createCq(64);
      const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 8, maxRecvWr: 8, maxSendSge: 1, maxRecvSge: 1 } });
      const RW = Access.REMOTE_WRITE | Access.REMOTE_READ;
      connectQp(qp, { qpNum: resps[0]!.repr.destQp, psn: reqs[0]!.repr.psn, gid: gid(client) }, {
        sqPsn: 0, pathMtu: Mtu.MTU_1024, qpAccessFlags: RW, maxDestRdAtomic: 4, maxRdAtomic: 4, timeout: 14,
      });
      const mr = pd.regMr(8192, Access.LOCAL_WRITE | Access.MW_BIND | (sc.kind === "mr" ? RW : 0));
      let key = mr.rkey;
      let mw: ReturnType<typeof pd.allocMw> | undefined;
      const base = mr.addr + 1024n;
      if (sc.kind === "type1") {
        mw = pd.allocMw(MwType.TYPE_1);
        key = qp.bindMw(mw, { sendFlags: SendFlags.SIGNALED, bindInfo: { mr, addr: base, length: 1024, mwAccessFlags: RW } });
      } else if (sc.kind === "type2") {
        mw = pd.allocMw(MwType.TYPE_2);
        key = incRkey(mw.rkey);
        qp.postSend({ opcode: WrOpcode.BIND_MW, sendFlags: SendFlags.SIGNALED, bindMw: { mw, rkey: key, bindInfo: { mr, addr: base, length: 1024, mwAccessFlags: RW } } });
      }
      qp.postRecv([{ wrId: 100n, sgList: [mr.sge(4096, 512)] }, { wrId: 101n, sgList: [mr.sge(4608, 512)] }]);
      net.run(net.now + 1000);
      expect(cq.poll(4).map((w) => w.status)).toEqual(sc.kind === "mr" ? [] : [WcStatus.SUCCESS]);
      const mapKey = (k: number) => (k === theirKey ? key : k);
      reqs.forEach((p, i) => {
        const r = p.repr;
        if (i === reqs.length - 1 && sc.step === "unbind") qp.bindMw(mw!, { bindInfo: { addr: 0n, length: 0, mwAccessFlags: 0 } });
        if (i === reqs.length - 1 && sc.step === "local-inv") qp.postSend({ opcode: WrOpcode.LOCAL_INV, invalidateRkey: key });
        net.run(net.now + 1000);
        const full = codec.emit({
          ...specOf(r),
          ...(r.reth ? { reth: { va: base + (r.reth.va - theirBase), rkey: mapKey(r.reth.rkey), dmaLength: r.reth.dmaLength } } : {}),
          ...(r.ieth ? { ieth: { rkey: mapKey(r.ieth.rkey) } } : {}),
        });
        expect(deliver(dev, r, full.subarray(28))).toBe(0);
        net.run(net.now + 1000);
      });
      const answers = parseSent(codec, sent).map((x) => [x.opcode, x.aeth?.syndrome ?? -1, x.psn]);
      expect(answers).toEqual(resps.map((p) => [p.repr.opcode, p.repr.aeth?.syndrome ?? -1, p.repr.psn]));
      const wcs = cq.poll(8).filter((w) => w.wrId >= 100n);
      if (sc.recv !== undefined) {
        expect(wcs.map((w) => [w.wrId, w.status])).toEqual([[100n, sc.recv], [101n, WcStatus.WR_FLUSH_ERR]]);
        expect(qp.state).toBe(QpState.ERR);
      } else {
        // the NAKed WRITE was a class C error here too: the QP is in ERR and the receives flush (rxe's server log)
        expect(wcs.map((w) => [w.wrId, w.status])).toEqual([[100n, WcStatus.WR_FLUSH_ERR], [101n, WcStatus.WR_FLUSH_ERR]]);
        expect(qp.state).toBe(QpState.ERR);
      }
    });
  }
});

/** A minimal IPv4 + UDP header for parsing a sent UDP payload (addresses, lengths; ID 0, DF). */

// Real Linux rxe UC and UD traffic (test/fixtures/captures: ibv_uc_pingpong,
// ib_write_bw -c UC, ibv_ud_pingpong over IPv4 and IPv6) against softroce,
// both ways. Responder: every request one rxe sent is delivered to a device
// that plays the other rxe's part; it must accept each one and produce the
// receive completions and buffer contents rxe's peer got (UD: the 40-byte GRH
// made of the packet's own IP header, then the payload). Requester: a device
// that plays the sender posts the same work requests and must emit the same
// packets (opcode, PSN, destination QP, SE, AckReq, RETH, DETH, immediate,
// payload) — no ACKs exist to wait for.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { coreModule } from "../../../host/node/wasm-source.js";
import { readCaptureAll } from "../../../host/core/capture/pcap.js";
import { notRoce } from "../../../host/core/net/ip-extract.js";
import { WireCodec, type PacketRepr } from "../../../host/core/wire/codec.js";
import { SimNetwork } from "../../../host/core/sim/network.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, Mtu, QpType, SendFlags, WcOpcode, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import type { SendWr } from "../../../host/core/verbs/post.js";

/** A replay's one QP takes the capture's QPN: one QP, a range of one number (QPNs are random otherwise). */
const AS_CAPTURED = { maxQp: 1, qpnCount: 1 } as const;

const DIR = new URL("../../fixtures/captures/", import.meta.url);
const gid = (a: string) => (a.includes(":") ? a : `::ffff:${a}`);

interface Pkt {
  repr: PacketRepr;
  ip: Uint8Array; // the IP header as captured
  udp: Uint8Array; // the UDP payload as captured (BTH … ICRC)
}

async function load(file: string): Promise<{ codec: WireCodec; pkts: Pkt[] }> {
  const codec = await WireCodec.create(await coreModule());
  const pkts: Pkt[] = [];
  for (const rec of readCaptureAll(new Uint8Array(readFileSync(new URL(file, DIR))))) {
    if (!rec.data || notRoce(rec.data) !== undefined) continue;
    const p = codec.parse(rec.data);
    if (!p.ok) throw new Error(`${file}: frame ${rec.index}: ${p.error}`);
    const ipLen = p.repr.ipVersion === 4 ? 20 : 40;
    pkts.push({ repr: p.repr, ip: rec.data.slice(0, ipLen), udp: rec.data.slice(ipLen + 8, ipLen + p.repr.udpLength) });
  }
  return { codec, pkts };
}

/** The requests one endpoint sent to the other (the first packet's direction), grouped into messages. */
function messages(pkts: Pkt[]): { from: string; to: string; msgs: Pkt[][] } {
  const from = pkts[0]!.repr.src;
  const to = pkts[0]!.repr.dst;
  const msgs: Pkt[][] = [];
  let cur: Pkt[] = [];
  for (const p of pkts) {
    if (p.repr.src !== from || p.repr.dst !== to) continue;
    cur.push(p);
    const op = p.repr.opcode & 0x1f;
    if ([0x02, 0x03, 0x04, 0x05, 0x08, 0x09, 0x0a, 0x0b].includes(op)) {
      msgs.push(cur);
      cur = [];
    }
  }
  expect(cur).toEqual([]);
  return { from, to, msgs };
}

const concat = (ms: Pkt[]) => ms.flatMap((p) => Array.from(p.repr.payload));

async function responderReplay(file: string) {
  const { codec, pkts } = await load(file);
  const { from, to, msgs } = messages(pkts);
  const first = msgs[0]![0]!.repr;
  const ud = (first.opcode & 0xe0) === 0x60;
  const uc = !ud;
  const net = new SimNetwork({});
  const dev = await net.addDevice(await coreModule(), to, { gids: [gid(to)], qpnBase: first.destQp, ...AS_CAPTURED });
  const pd = dev.allocPd();
  const cq = dev.createCq(256);
  const qp = pd.createQp({ qpType: ud ? QpType.UD : QpType.UC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 1, maxRecvWr: 64, maxSendSge: 1, maxRecvSge: 1 } });
  expect(qp.qpNum).toBe(first.destQp);
  if (ud) connectQp(qp, undefined, { sqPsn: 1, qkey: first.deth!.qkey });
  else connectQp(qp, { qpNum: 0x99, psn: first.psn, gid: gid(from) }, { sqPsn: 1, pathMtu: Mtu.MTU_1024, qpAccessFlags: Access.REMOTE_WRITE });
  const STRIDE = 8192;
  const buf = pd.regMr(64 * STRIDE, Access.LOCAL_WRITE | Access.REMOTE_WRITE);
  const writes = msgs.filter((m) => m[0]!.repr.reth);
  const wbuf = pd.regMr(1 << 16, Access.LOCAL_WRITE | Access.REMOTE_WRITE);
  for (let i = 0; i < msgs.length; i++) qp.postRecv({ wrId: BigInt(i), sgList: [buf.sge(i * STRIDE, STRIDE)] });
  const recvMsgs = msgs.filter((m) => (m[0]!.repr.opcode & 0x1f) <= 0x05 || m.some((p) => p.repr.immDt !== undefined));
  for (const m of msgs) {
    for (const p of m) {
      const r = p.repr;
      let payload: Uint8Array | undefined;
      if (r.reth) {
        // a WRITE: its R_Key and address are mapped into this device's MR (the ICRC is redone)
        const full = codec.emit({
          ipVersion: r.ipVersion, src: r.src, dst: r.dst, ipId: r.ipId, ipFlags: r.ipFlags, ttl: r.ttl, tos: r.tos,
          flowLabel: r.flowLabel, udpSrcPort: r.udpSrcPort, udpDstPort: r.udpDstPort, opcode: r.opcode, se: r.se,
          migReq: r.migReq, pkey: r.pkey, destQp: r.destQp, ackReq: r.ackReq, psn: r.psn, payload: r.payload,
          reth: { va: wbuf.addr, rkey: wbuf.rkey, dmaLength: r.reth.dmaLength },
        });
        payload = full.subarray(r.ipVersion === 4 ? 28 : 48);
      } else {
        payload = p.udp;
      }
      const res = dev.port!.receive({ src: r.src, dst: r.dst, srcPort: r.udpSrcPort, dstPort: r.udpDstPort, ipId: r.ipId, ttl: r.ttl, tos: r.tos, flowLabel: r.flowLabel, payload });
      expect(res).toBe(0);
    }
  }
  const wcs = cq.poll(256);
  expect(wcs.length).toBe(recvMsgs.length);
  wcs.forEach((c, i) => {
    const m = recvMsgs[i]!;
    const data = concat(m);
    const grh = !ud ? [] : m[0]!.repr.ipVersion === 4 ? [...new Array(20).fill(0), ...Array.from(m[0]!.ip)] : Array.from(m[0]!.ip);
    expect(c.status).toBe(WcStatus.SUCCESS);
    expect(c.opcode).toBe(WcOpcode.RECV);
    expect(c.wrId).toBe(BigInt(i));
    expect(c.byteLen).toBe(grh.length + data.length);
    if (ud) {
      expect(c.srcQp).toBe(m[0]!.repr.deth!.srcQp);
      expect(Array.from(c.sgid!)).toEqual(Array.from(parseGid(gid(from))));
    }
    expect(Array.from(buf.bytes.subarray(i * STRIDE, i * STRIDE + c.byteLen))).toEqual([...grh, ...data]);
  });
  if (writes.length) {
    // every WRITE went to the same place; the last one's bytes are there
    expect(Array.from(wbuf.bytes.subarray(0, writes.at(-1)![0]!.repr.reth!.dmaLength))).toEqual(concat(writes.at(-1)!));
  }
  return { messages: msgs.length, receives: wcs.length, uc };
}

function parseGid(text: string): Uint8Array {
  const out = new Uint8Array(16);
  let t = text;
  const v4 = t.match(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/);
  if (v4) {
    out.set([0xff, 0xff, +v4[1]!, +v4[2]!, +v4[3]!, +v4[4]!], 10);
    return out;
  }
  const [l, r] = t.split("::") as [string, string | undefined];
  const words = (s: string | undefined) => (s ? s.split(":").filter((x) => x).map((x) => parseInt(x, 16)) : []);
  const lw = words(l);
  const rw = words(r);
  const all = [...lw, ...new Array(8 - lw.length - rw.length).fill(0), ...rw];
  all.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

async function requesterReplay(file: string) {
  const { codec, pkts } = await load(file);
  const { from, to, msgs } = messages(pkts);
  const first = msgs[0]![0]!.repr;
  const ud = (first.opcode & 0xe0) === 0x60;
  const net = new SimNetwork({ trace: true });
  const dev = await net.addDevice(await coreModule(), from, { gids: [gid(from)], qpnBase: ud ? first.deth!.srcQp : 0x40, ...AS_CAPTURED });
  const pd = dev.allocPd();
  const cq = dev.createCq(256);
  const qp = pd.createQp({ qpType: ud ? QpType.UD : QpType.UC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 64, maxRecvWr: 1, maxSendSge: 1, maxRecvSge: 1 } });
  if (ud) connectQp(qp, undefined, { sqPsn: first.psn, qkey: first.deth!.qkey });
  else connectQp(qp, { qpNum: first.destQp, psn: 1, gid: gid(to) }, { sqPsn: first.psn, pathMtu: Mtu.MTU_1024 });
  const ah = ud ? pd.createAh({ grh: { dgid: gid(to), sgidIndex: 0, hopLimit: 64 }, portNum: 1 }) : undefined;
  const STRIDE = 8192;
  const mr = pd.regMr(64 * STRIDE, Access.LOCAL_WRITE);
  msgs.forEach((m, i) => {
    const data = concat(m);
    mr.bytes.set(data, i * STRIDE);
    const r = m[0]!.repr;
    const last = m.at(-1)!.repr;
    const wr: SendWr = { wrId: BigInt(i), opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED | (last.se ? SendFlags.SOLICITED : 0), sgList: [mr.sge(i * STRIDE, data.length)] };
    if (last.immDt !== undefined) wr.immData = last.immDt;
    if (r.reth) {
      wr.opcode = last.immDt !== undefined ? WrOpcode.RDMA_WRITE_WITH_IMM : WrOpcode.RDMA_WRITE;
      wr.rdma = { remoteAddr: r.reth.va, rkey: r.reth.rkey };
    } else if (last.immDt !== undefined) {
      wr.opcode = WrOpcode.SEND_WITH_IMM;
    }
    if (ud) wr.ud = { ah: ah!, remoteQpn: r.destQp, remoteQkey: r.deth!.qkey };
    qp.postSend(wr);
  });
  net.run();
  const wcs = cq.poll(256);
  expect(wcs.map((c) => [c.wrId, c.status])).toEqual(msgs.map((_, i) => [BigInt(i), WcStatus.SUCCESS]));
  const key = (r: PacketRepr) => ({
    opcode: r.opcode, psn: r.psn, destQp: r.destQp, se: r.se, ackReq: r.ackReq, pkey: r.pkey, migReq: r.migReq,
    reth: r.reth ? { va: r.reth.va, rkey: r.reth.rkey, len: r.reth.dmaLength } : undefined,
    deth: r.deth, immDt: r.immDt, payload: Array.from(r.payload), dst: r.dst, ttl: r.ttl, tos: r.tos, icrcOk: r.icrcOk,
  });
  const ours = net.wire.trace!.map((t) => {
    const d = t.datagram;
    const p = codec.parseUdpPayload(d.payload, { src: d.src, dst: d.dst, udpSrcPort: d.srcPort, udpDstPort: d.dstPort, ipId: d.ipId, ttl: d.ttl });
    if (!p.ok) throw new Error(p.error);
    return key({ ...p.repr, ttl: d.ttl ?? 0, tos: d.tos ?? 0 });
  });
  expect(ours).toEqual(msgs.flat().map((p) => key(p.repr)));
  return ours.length;
}

describe("UC/UD against real rxe traffic", () => {
  for (const [file, what] of [
    ["uc-send.pcap", "UC SEND FIRST/MIDDLE/LAST (ibv_uc_pingpong -s 3000)"],
    ["uc-write.pcap", "UC WRITE FIRST/MIDDLE/LAST (ib_write_bw -c UC)"],
    ["ud-send.pcap", "UD SEND ONLY with DETH, IPv4 (ibv_ud_pingpong -s 512)"],
    ["ud-send-v6.pcap", "UD SEND ONLY with DETH, IPv6"],
  ] as const) {
    it(`responder: ${what}`, async () => {
      const r = await responderReplay(file);
      expect(r.messages).toBeGreaterThan(1);
      if (file !== "uc-write.pcap") expect(r.receives).toBe(r.messages);
    });
    it(`requester: ${what}`, async () => {
      expect(await requesterReplay(file)).toBeGreaterThan(2);
    });
  }
});

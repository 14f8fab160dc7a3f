// The issue 16 flows between two Node devices over real UDP on loopback
// (127.0.16.1 and 127.0.16.2): a type 2 window bound, written through and
// invalidated by the peer's SEND_WITH_INV; fast registration; a type 1 window's
// unbind; and UD multicast to an IPv4 group the devices' links join (loopback
// multicast, IP_MULTICAST_IF on the link's address).
import { afterEach, describe, expect, it } from "vitest";
import { openDevice, udpLinkOf } from "../../../host/node/index.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, MwType, QpState, QpType, SendFlags, WcFlags, WcOpcode, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import { incRkey } from "../../../host/core/verbs/mw.js";
import type { Device } from "../../../host/core/verbs/device.js";
import type { CompletionQueue, WorkCompletion } from "../../../host/core/verbs/cq.js";
import { until } from "../support/until.js";

const A = "127.0.16.1";
const B = "127.0.16.2";
const S = SendFlags.SIGNALED;
const RW = Access.REMOTE_WRITE | Access.REMOTE_READ;
const opened: Device[] = [];

afterEach(async () => {
  for (const d of opened.splice(0)) d.close();
  await new Promise((r) => setTimeout(r, 50)); // the sockets' close callbacks: the next test binds the same addresses
});

async function collect(cq: CompletionQueue, n: number): Promise<WorkCompletion[]> {
  const out: WorkCompletion[] = [];
  await until(() => {
    out.push(...cq.poll(16));
    return out.length >= n;
  });
  return out;
}

async function dev(address: string) {
  const d = await openDevice({ address, port: 4791 });
  opened.push(d);
  const pd = d.allocPd();
  const cq = d.createCq(64);
  return { d, pd, cq };
}

describe("issue 16 flows over UDP between two Node devices", () => {
  it("RC: type 2 window, WRITE through it, SEND_WITH_INV; fast registration; type 1 unbind", async () => {
    const a = await dev(A);
    const b = await dev(B);
    const mk = (s: typeof a) => s.pd.createQp({ qpType: QpType.RC, sendCq: s.cq, recvCq: s.cq, cap: { maxSendWr: 16, maxRecvWr: 16, maxSendSge: 1, maxRecvSge: 1 } });
    const qa = mk(a);
    const qb = mk(b);
    const o = { qpAccessFlags: RW, timeout: 14, retryCnt: 7, rnrRetry: 7, maxRdAtomic: 1, maxDestRdAtomic: 1 };
    connectQp(qa, { qpNum: qb.qpNum, psn: 2, gid: `::ffff:${B}` }, { sqPsn: 1, ...o });
    connectQp(qb, { qpNum: qa.qpNum, psn: 1, gid: `::ffff:${A}` }, { sqPsn: 2, ...o });
    const ma = a.pd.regMr(8192, Access.LOCAL_WRITE);
    const mb = b.pd.regMr(8192, Access.LOCAL_WRITE | Access.MW_BIND);

    const mw = b.pd.allocMw(MwType.TYPE_2);
    const rkey = incRkey(mw.rkey);
    qb.postSend({ wrId: 1n, opcode: WrOpcode.BIND_MW, sendFlags: S, bindMw: { mw, rkey, bindInfo: { mr: mb, addr: mb.addr + 1024n, length: 1024, mwAccessFlags: RW } } });
    expect((await collect(b.cq, 1)).map((w) => [w.status, w.opcode])).toEqual([[WcStatus.SUCCESS, WcOpcode.BIND_MW]]);
    ma.bytes.set(new TextEncoder().encode("over udp"), 0);
    qa.postSend({ wrId: 2n, opcode: WrOpcode.RDMA_WRITE, sendFlags: S, sgList: [ma.sge(0, 8)], rdma: { remoteAddr: mb.addr + 1024n, rkey } });
    expect((await collect(a.cq, 1)).map((w) => w.status)).toEqual([WcStatus.SUCCESS]);
    expect(new TextDecoder().decode(mb.bytes.subarray(1024, 1032))).toBe("over udp");

    qb.postRecv({ wrId: 100n, sgList: [mb.sge(0, 512)] });
    qa.postSend({ wrId: 3n, opcode: WrOpcode.SEND_WITH_INV, sendFlags: S, invalidateRkey: rkey, sgList: [ma.sge(0, 8)] });
    const [recv] = await collect(b.cq, 1);
    expect([recv!.status, recv!.opcode, recv!.wcFlags & WcFlags.WITH_INV, recv!.invalidatedRkey]).toEqual([WcStatus.SUCCESS, WcOpcode.RECV, WcFlags.WITH_INV, rkey]);
    await collect(a.cq, 1);

    // fast registration on b, written by a
    const fmr = b.pd.allocMr(1);
    const key = incRkey(fmr.lkey);
    qb.postSend({ wrId: 4n, opcode: WrOpcode.REG_MR, sendFlags: S, reg: { mr: fmr, key, access: Access.LOCAL_WRITE | RW, addr: mb.addr + 4096n, length: 4096 } });
    expect((await collect(b.cq, 1)).map((w) => [w.status, w.opcode])).toEqual([[WcStatus.SUCCESS, WcOpcode.REG_MR]]);
    qa.postSend({ wrId: 5n, opcode: WrOpcode.RDMA_WRITE, sendFlags: S, sgList: [ma.sge(0, 8)], rdma: { remoteAddr: fmr.addr, rkey: key } });
    expect((await collect(a.cq, 1)).map((w) => w.status)).toEqual([WcStatus.SUCCESS]);
    expect(new TextDecoder().decode(mb.bytes.subarray(4096, 4104))).toBe("over udp");

    // a type 1 window, then unbound: the old rkey is refused
    const w1 = b.pd.allocMw(MwType.TYPE_1);
    const k1 = qb.bindMw(w1, { wrId: 6n, sendFlags: S, bindInfo: { mr: mb, addr: mb.addr, length: 64, mwAccessFlags: RW } });
    qb.bindMw(w1, { wrId: 7n, sendFlags: S, bindInfo: { addr: 0n, length: 0, mwAccessFlags: 0 } });
    expect((await collect(b.cq, 2)).map((w) => [w.wrId, w.status])).toEqual([[6n, 0], [7n, 0]]);
    qa.postSend({ wrId: 8n, opcode: WrOpcode.RDMA_WRITE, sendFlags: S, sgList: [ma.sge(0, 8)], rdma: { remoteAddr: mb.addr, rkey: k1 } });
    expect((await collect(a.cq, 1)).map((w) => w.status)).toEqual([WcStatus.REM_ACCESS_ERR]);
    expect(qa.state).toBe(QpState.ERR);
  });

  it("UD multicast: a datagram to ::ffff:239.16.0.1 reaches the QPs attached on both devices", async () => {
    const GROUP = "239.16.0.1";
    const a = await dev(A);
    const b = await dev(B);
    const mk = (s: typeof a) => {
      const qp = s.pd.createQp({ qpType: QpType.UD, sendCq: s.cq, recvCq: s.cq, cap: { maxSendWr: 8, maxRecvWr: 8, maxSendSge: 1, maxRecvSge: 1 } });
      connectQp(qp, undefined, { sqPsn: 0, qkey: 0x1234 });
      return qp;
    };
    const qa = mk(a);
    const qb = mk(b);
    const ma = a.pd.regMr(4096, Access.LOCAL_WRITE);
    const mb = b.pd.regMr(4096, Access.LOCAL_WRITE);
    qa.postRecv({ wrId: 1n, sgList: [ma.sge(0, 1024)] });
    qb.postRecv({ wrId: 2n, sgList: [mb.sge(0, 1024)] });
    qa.attachMcast(`::ffff:${GROUP}`);
    qb.attachMcast(`::ffff:${GROUP}`);
    await udpLinkOf(a.d)!.joinGroup(GROUP);
    await udpLinkOf(b.d)!.joinGroup(GROUP);
    expect(udpLinkOf(b.d)!.joinedGroups).toEqual([GROUP]);

    ma.bytes.set(new TextEncoder().encode("mckey over udp"), 2048);
    const ah = a.pd.createAh({ grh: { dgid: `::ffff:${GROUP}`, sgidIndex: 0, hopLimit: 1 }, portNum: 1 });
    qa.postSend({ wrId: 9n, opcode: WrOpcode.SEND, sendFlags: S, sgList: [ma.sge(2048, 14)], ud: { ah, remoteQpn: 0xffffff, remoteQkey: 0x1234 } });
    const gotB = await collect(b.cq, 1);
    expect(gotB.map((w) => [w.wrId, w.status, w.byteLen, w.srcQp])).toEqual([[2n, WcStatus.SUCCESS, 40 + 14, qa.qpNum]]);
    expect(new TextDecoder().decode(mb.bytes.subarray(40, 54))).toBe("mckey over udp");
    // the sender's own device is a member too (multicast loops back, as on a NIC with IP_MULTICAST_LOOP)
    const gotA = await collect(a.cq, 2);
    expect(gotA.map((w) => w.wrId).sort()).toEqual([1n, 9n]);

    qb.detachMcast(`::ffff:${GROUP}`);
    await until(() => udpLinkOf(b.d)!.joinedGroups.length === 0);
  });
});

describe("the interface an IPv6 group is joined on", () => {
  it("is the one holding the device's address (::1 on lo); none for an address no interface has", async () => {
    const { ipv6InterfaceOf } = await import("../../../host/node/mcast-groups.js");
    const { networkInterfaces } = await import("node:os");
    const lo = Object.entries(networkInterfaces()).find(([, a]) => a?.some((x) => x.family === "IPv6" && x.address === "::1"))?.[0];
    expect(lo).toBeDefined();
    expect(ipv6InterfaceOf("::1")).toBe(`::%${lo}`);
    expect(ipv6InterfaceOf("0:0:0:0:0:0:0:1")).toBe(`::%${lo}`); // any spelling of it
    expect(ipv6InterfaceOf("fd00:4791:dead::1")).toBeUndefined();
    expect(ipv6InterfaceOf("not an address")).toBeUndefined();
  });
});

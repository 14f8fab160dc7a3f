// UD multicast on the simulated wire: ibv_attach_mcast / ibv_detach_mcast, a
// datagram to QPN 0xFFFFFF at the group's GID reaches every attached QP (on
// every device that joined), not a detached one; the bad flows with rxe's / IB
// core's errno (RC QP, unicast GID, not attached, destroy while attached, full group).
import { describe, expect, it } from "vitest";
import { drainCq } from "../support/sim-pair.js";
import { coreModule } from "../../../host/node/wasm-source.js";
import { SimNetwork } from "../../../host/core/sim/network.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, QpType, SendFlags, WcOpcode, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import type { Device } from "../../../host/core/verbs/device.js";
import type { ProtectionDomain } from "../../../host/core/verbs/pd.js";
import type { QueuePair } from "../../../host/core/verbs/qp.js";
import type { CompletionQueue } from "../../../host/core/verbs/cq.js";
import type { MemoryRegion } from "../../../host/core/verbs/mr.js";
import { expectVerbsError } from "../support/verbs-helpers.js";

const GROUP = "::ffff:239.1.1.1";
const QKEY = 0x01234567;

interface Member {
  dev: Device;
  pd: ProtectionDomain;
  cq: CompletionQueue;
  qp: QueuePair;
  mr: MemoryRegion;
}

async function member(net: SimNetwork, addr: string, opts = {}): Promise<Member> {
  const dev = await net.addDevice(await coreModule(), addr, opts);
  const pd = dev.allocPd();
  const cq = dev.createCq(64);
  const qp = pd.createQp({ qpType: QpType.UD, sendCq: cq, recvCq: cq, cap: { maxSendWr: 16, maxRecvWr: 16, maxSendSge: 1, maxRecvSge: 1 } });
  connectQp(qp, undefined, { sqPsn: 0, qkey: QKEY });
  const mr = pd.regMr(4096, Access.LOCAL_WRITE);
  return { dev, pd, cq, qp, mr };
}

function post(m: Member, wrId: bigint): void {
  m.qp.postRecv({ wrId, sgList: [m.mr.sge(0, 40 + 256)] });
}

function sendToGroup(net: SimNetwork, s: Member, text: string): void {
  s.mr.bytes.set(new TextEncoder().encode(text), 2048);
  const ah = s.pd.createAh({ grh: { dgid: GROUP, sgidIndex: 0, hopLimit: 1 }, portNum: 1 });
  s.qp.postSend({ wrId: 1n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [s.mr.sge(2048, text.length)], ud: { ah, remoteQpn: 0xffffff, remoteQkey: QKEY } });
  net.run(net.now + 100_000);
}

describe("UD multicast (attachMcast / detachMcast)", () => {
  it("every attached QP on every joined device receives; a detached QP and a non-member do not", async () => {
    const net = new SimNetwork({ seed: 3 });
    const s = await member(net, "127.0.0.1");
    const r1 = await member(net, "127.0.0.2");
    const r2 = await member(net, "127.0.0.3");
    const other = await member(net, "127.0.0.4");
    // a second QP on r1's device in the same group
    const q2 = r1.pd.createQp({ qpType: QpType.UD, sendCq: r1.cq, recvCq: r1.cq, cap: { maxSendWr: 4, maxRecvWr: 4, maxRecvSge: 1 } });
    connectQp(q2, undefined, { sqPsn: 0, qkey: QKEY });
    for (const m of [r1, r2, other]) post(m, 100n);
    q2.postRecv({ wrId: 200n, sgList: [r1.mr.sge(1024, 40 + 256)] });
    r1.qp.attachMcast(GROUP);
    q2.attachMcast(GROUP);
    r2.qp.attachMcast(GROUP);
    r2.qp.attachMcast(GROUP); // again: no error (rxe)
    expect(r1.dev.multicastGroups).toEqual(["239.1.1.1"]);
    expect(r1.dev.query().maxMcastGrp).toBeGreaterThan(0);

    sendToGroup(net, s, "mckey group message");
    expect(drainCq(s.cq).map((w) => [w.status, w.opcode])).toEqual([[WcStatus.SUCCESS, WcOpcode.SEND]]);
    const got1 = drainCq(r1.cq);
    expect(got1.map((w) => [w.wrId, w.status, w.opcode, w.byteLen, w.srcQp]).sort()).toEqual(
      [[100n, 0, WcOpcode.RECV, 40 + 19, s.qp.qpNum], [200n, 0, WcOpcode.RECV, 40 + 19, s.qp.qpNum]].sort(),
    );
    expect(new TextDecoder().decode(r1.mr.bytes.subarray(40, 59))).toBe("mckey group message");
    expect(new TextDecoder().decode(r1.mr.bytes.subarray(1064, 1083))).toBe("mckey group message");
    expect(drainCq(r2.cq).map((w) => [w.wrId, w.status])).toEqual([[100n, WcStatus.SUCCESS]]);
    expect(drainCq(other.cq)).toEqual([]);

    // detach r2: it hears nothing more; r1's second QP detaches too, r1's first still hears
    r2.qp.detachMcast(GROUP);
    q2.detachMcast(GROUP);
    expect(r2.dev.multicastGroups).toEqual([]);
    post(r1, 101n);
    post(r2, 101n);
    q2.postRecv({ wrId: 201n, sgList: [r1.mr.sge(1024, 40 + 256)] });
    sendToGroup(net, s, "second");
    expect(drainCq(r1.cq).map((w) => w.wrId)).toEqual([101n]);
    expect(drainCq(r2.cq)).toEqual([]);
    expect(r2.dev.queryCounters().rcvd_pkts).toBe(1);
  });

  it("IPv6: a datagram to ff0e::4791:1 reaches the members on the simulated wire (GRH: the IPv6 header)", async () => {
    const net = new SimNetwork({ seed: 6 });
    const s = await member(net, "fd00::1");
    const r = await member(net, "fd00::2");
    post(r, 7n);
    r.qp.attachMcast("ff0e::4791:1");
    s.mr.bytes.set(new TextEncoder().encode("v6 group"), 2048);
    const ah = s.pd.createAh({ grh: { dgid: "ff0e::4791:1", sgidIndex: 0, hopLimit: 5 }, portNum: 1 });
    s.qp.postSend({ wrId: 1n, opcode: WrOpcode.SEND, sgList: [s.mr.sge(2048, 8)], ud: { ah, remoteQpn: 0xffffff, remoteQkey: QKEY } });
    net.run(net.now + 100_000);
    const [w] = drainCq(r.cq);
    expect([w!.wrId, w!.status, w!.byteLen, w!.srcQp]).toEqual([7n, WcStatus.SUCCESS, 48, s.qp.qpNum]);
    expect(r.mr.bytes[0]! >> 4).toBe(6); // the GRH is the IPv6 header
    // the GRH's destination is the group
    expect([...r.mr.bytes.subarray(24, 40)]).toEqual([0xff, 0x0e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x47, 0x91, 0, 1]);
    expect(new TextDecoder().decode(r.mr.bytes.subarray(40, 48))).toBe("v6 group");
  });

  it("a member with another Q_Key drops the datagram (bad_qkey) while the others take it", async () => {
    const net = new SimNetwork({ seed: 4 });
    const s = await member(net, "127.0.0.1");
    const r = await member(net, "127.0.0.2");
    const q2 = r.pd.createQp({ qpType: QpType.UD, sendCq: r.cq, recvCq: r.cq, cap: { maxSendWr: 4, maxRecvWr: 4, maxRecvSge: 1 } });
    connectQp(q2, undefined, { sqPsn: 0, qkey: 0x999 });
    post(r, 1n);
    q2.postRecv({ wrId: 2n, sgList: [r.mr.sge(1024, 300)] });
    r.qp.attachMcast(GROUP);
    q2.attachMcast(GROUP);
    sendToGroup(net, s, "qkey");
    expect(drainCq(r.cq).map((w) => w.wrId)).toEqual([1n]);
    expect(r.dev.queryCounters().bad_qkey).toBe(1);
    expect(r.dev.queryPort().qkeyViolCntr).toBe(1);
  });

  it("bad flows: RC QP, unicast GID, detach when not attached, destroy while attached, a full group, too many groups", async () => {
    const net = new SimNetwork({ seed: 5 });
    const m = await member(net, "127.0.0.1", { maxMcastGrp: 2, maxMcastQpAttach: 1 });
    const rc = m.pd.createQp({ qpType: QpType.RC, sendCq: m.cq, recvCq: m.cq, cap: { maxSendWr: 1, maxRecvWr: 1 } });
    expectVerbsError(() => rc.attachMcast(GROUP), "EINVAL", "ibv_attach_mcast");
    expectVerbsError(() => m.qp.attachMcast("::ffff:10.0.0.1"), "EINVAL", "ibv_attach_mcast");
    expectVerbsError(() => m.qp.attachMcast("not a gid"), "EINVAL", "ibv_attach_mcast");
    expectVerbsError(() => m.qp.detachMcast(GROUP), "EINVAL", "ibv_detach_mcast");
    m.qp.attachMcast(GROUP);
    m.qp.attachMcast("ff0e::1234"); // IPv6 multicast GID
    expectVerbsError(() => m.qp.attachMcast("::ffff:239.9.9.9"), "ENOMEM", "ibv_attach_mcast"); // no third group
    const q2 = m.pd.createQp({ qpType: QpType.UD, sendCq: m.cq, recvCq: m.cq, cap: { maxSendWr: 1, maxRecvWr: 1 } });
    expectVerbsError(() => q2.attachMcast(GROUP), "ENOMEM", "ibv_attach_mcast"); // one QP per group
    expectVerbsError(() => m.qp.destroy(), "EBUSY", "ibv_destroy_qp");
    m.qp.detachMcast(GROUP);
    m.qp.detachMcast("ff0e::1234");
    expectVerbsError(() => m.qp.detachMcast(GROUP), "EINVAL", "ibv_detach_mcast");
    q2.attachMcast(GROUP); // the group has room again
    q2.detachMcast(GROUP);
    m.qp.destroy();
  });
});

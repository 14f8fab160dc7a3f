// Device memory up to the wasm32 limit: a 3 GiB MR arena opens (the old limit
// was 1 GiB), an MR above 2 GiB is written through by a peer's RDMA WRITE and
// read locally (on the simulated wire, and over UDP on the native datapath, whose
// receive area then lies above 2 GiB too), and an arena past the limit is ENOMEM naming mrArenaBytes.
// Only the bytes written are ever committed: fresh arena memory is not zeroed.
import { describe, expect, it } from "vitest";
import { coreModule } from "../../../host/node/wasm-source.js";
import { openDeviceWith } from "../../../host/core/verbs/device.js";
import { SimNetwork } from "../../../host/core/sim/network.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, QpType, SendFlags, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import type { Device } from "../../../host/core/verbs/device.js";
import type { ProtectionDomain } from "../../../host/core/verbs/pd.js";
import { expectVerbsError } from "../support/verbs-helpers.js";
import { openDevice, udpLinkOf, udpPortOf } from "../../../host/node/index.js";
import { NativeUdpLink } from "../../../host/node/native-link.js";
import { datapathAddon } from "../../../host/node/datapath.js";

const GiB = 2 ** 30;

/**
 * An RC QP on `pd` (the big device's) and one on `peer` with a 4 KiB MR the peer writes from, each
 * connected to the other (`at`: each side's GID and UDP port; the simulated wire needs no port).
 */
function writerPair(pd: ProtectionDomain, peer: Device, at: { big: { gid: string; port?: number }; peer: { gid: string; port?: number } }) {
  const cq = pd.device.createCq(16);
  const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 4, maxRecvWr: 4, maxSendSge: 1 } });
  const ppd = peer.allocPd();
  const pcq = peer.createCq(16);
  const pqp = ppd.createQp({ qpType: QpType.RC, sendCq: pcq, recvCq: pcq, cap: { maxSendWr: 4, maxRecvWr: 4, maxSendSge: 1 } });
  const pmr = ppd.regMr(4096, Access.LOCAL_WRITE);
  const o = { qpAccessFlags: Access.REMOTE_WRITE, timeout: 10, retryCnt: 3, rnrRetry: 3 };
  connectQp(qp, { qpNum: pqp.qpNum, psn: 0, ...at.peer }, { sqPsn: 0, ...o });
  connectQp(pqp, { qpNum: qp.qpNum, psn: 0, ...at.big }, { sqPsn: 0, ...o });
  return { cq, qp, pcq, pqp, pmr };
}

describe("device memory up to 4 GiB", () => {
  it("a 3 GiB MR arena: a 2.5 GiB MR, then an MR above 2 GiB that a peer writes into", async () => {
    const mod = await coreModule();
    const net = new SimNetwork({ seed: 1 });
    const big = await net.addDevice(mod, "127.0.0.1", { mrArenaBytes: 3 * GiB });
    const peer = await net.addDevice(mod, "127.0.0.2");
    expect(big.query().maxMrSize).toBe(BigInt(3 * GiB));
    expect(big.memory.buffer.byteLength).toBeGreaterThan(3 * GiB);
    const pd = big.allocPd();
    const huge = pd.regMr(2.5 * GiB, Access.LOCAL_WRITE);
    expect(huge.length).toBe(2.5 * GiB);
    const mr = pd.regMr(1 << 16, Access.LOCAL_WRITE | Access.REMOTE_WRITE);
    expect(mr.addr).toBeGreaterThan(BigInt(2 * GiB)); // above the positive-i32 range
    expect(mr.bytes.every((b) => b === 0)).toBe(true);
    // the end of the huge MR is usable memory too
    huge.bytes[huge.length - 1] = 0x5a;
    expect(huge.bytes[huge.length - 1]).toBe(0x5a);

    const { cq, qp, pcq, pqp, pmr } = writerPair(pd, peer, { big: { gid: "::ffff:127.0.0.1" }, peer: { gid: "::ffff:127.0.0.2" } });
    pmr.bytes.set(new TextEncoder().encode("above 2 GiB"), 0);
    pqp.postSend({ wrId: 1n, opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [pmr.sge(0, 11)], rdma: { remoteAddr: mr.addr + 100n, rkey: mr.rkey } });
    net.run(net.now + 100_000);
    expect(pcq.poll(4).map((w) => w.status)).toEqual([WcStatus.SUCCESS]);
    expect(new TextDecoder().decode(mr.bytes.subarray(100, 111))).toBe("above 2 GiB");
    // and back out: our device sends from its MR above 2 GiB
    qp.postSend({ wrId: 2n, opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [mr.sge(100, 11)], rdma: { remoteAddr: pmr.addr + 512n, rkey: pmr.rkey } });
    net.run(net.now + 100_000);
    // the peer's MR has no REMOTE_WRITE: refused, which proves the packet left and was checked there
    expect(cq.poll(4).map((w) => w.status)).toEqual([WcStatus.REM_ACCESS_ERR]);
    huge.destroy();
    big.close();
    peer.close();
  });

  it.runIf(datapathAddon() !== undefined)("a Node device on the native datapath with a 3 GiB MR arena: its receive area lies above 2 GiB, and a peer's WRITE over UDP lands in an MR above 2 GiB (it failed to open before: the area's address read as a negative i32)", async () => {
    const big = await openDevice({ address: "127.0.44.1", port: 0, mrArenaBytes: 3 * GiB });
    const peer = await openDevice({ address: "127.0.44.2", port: 0 });
    try {
      expect(udpLinkOf(big)).toBeInstanceOf(NativeUdpLink);
      const pd = big.allocPd();
      pd.regMr(2.5 * GiB, Access.LOCAL_WRITE); // what keeps the next MR above 2 GiB
      const mr = pd.regMr(1 << 16, Access.LOCAL_WRITE | Access.REMOTE_WRITE);
      expect(mr.addr).toBeGreaterThan(BigInt(2 * GiB));
      const { pcq, pqp, pmr } = writerPair(pd, peer, { big: { gid: "::ffff:127.0.44.1", port: udpPortOf(big) }, peer: { gid: "::ffff:127.0.44.2", port: udpPortOf(peer) } });
      pmr.bytes.set(new TextEncoder().encode("over UDP, above 2 GiB"), 0);
      pqp.postSend({ wrId: 1n, opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [pmr.sge(0, 21)], rdma: { remoteAddr: mr.addr + 64n, rkey: mr.rkey } });
      expect((await pcq.next()).status).toBe(WcStatus.SUCCESS);
      expect(new TextDecoder().decode(mr.bytes.subarray(64, 85))).toBe("over UDP, above 2 GiB");
    } finally {
      big.close();
      peer.close();
    }
  });

  it("an MR arena past the limit is ENOMEM and names the option; an MR larger than the arena is ENOMEM naming it", async () => {
    const mod = await coreModule();
    const e = await openDeviceWith(mod, { mrArenaBytes: 0xffffffff }).then(
      () => undefined,
      (x: Error) => x,
    );
    expect(e?.message).toMatch(/ibv_open_device: ENOMEM.*mrArenaBytes/);
    const d = await openDeviceWith(mod, { mrArenaBytes: 1 << 20 });
    const pd = d.allocPd();
    const err = expectVerbsError(() => pd.regMr(2 << 20), "ENOMEM", "ibv_reg_mr");
    expect(err.message).toMatch(/mrArenaBytes = 1048576/);
  });
});

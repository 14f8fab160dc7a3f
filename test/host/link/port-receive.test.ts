// PacketPort.receive writes a datagram's addresses into the RX meta record only when they change:
// datagrams from two peers interleaved on one device must each be seen with their own source
// (an RC QP drops a request from anyone but its peer as bad_source).
import { describe, expect, it } from "vitest";
import { coreModule } from "../../../host/node/wasm-source.js";
import { SimNetwork } from "../../../host/core/sim/network.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, SendFlags, WrOpcode } from "../../../host/core/verbs/enums.js";
import { rcEnd } from "../support/verbs-helpers.js";

describe("PacketPort.receive and the RX meta record", () => {
  it("two peers writing to one device at once: every datagram is checked against its own source and accepted", async () => {
    const mod = await coreModule();
    const net = new SimNetwork({ seed: 5 });
    const ALL = Access.LOCAL_WRITE | Access.REMOTE_WRITE;
    const c = await net.addDevice(mod, "10.1.0.3");
    const ends = [];
    for (const addr of ["10.1.0.1", "10.1.0.2"]) {
      const peer = rcEnd(await net.addDevice(mod, addr), 1 << 16, ALL);
      const mine = rcEnd(c, 1 << 16, ALL);
      connectQp(peer.qp, { qpNum: mine.qp.qpNum, psn: 1, gid: "::ffff:10.1.0.3" }, { sqPsn: 1, qpAccessFlags: ALL, timeout: 8, pathMtu: 1 });
      connectQp(mine.qp, { qpNum: peer.qp.qpNum, psn: 1, gid: `::ffff:${addr}` }, { sqPsn: 1, qpAccessFlags: ALL, timeout: 8, pathMtu: 1 });
      ends.push({ peer, mine });
    }
    // both peers post before the wire runs: their packets reach c interleaved
    for (let i = 0; i < 8; i++) {
      for (const { peer, mine } of ends) {
        peer.qp.postSend({
          wrId: BigInt(i), opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED,
          sgList: [{ addr: peer.mr.addr + BigInt(i * 2048), length: 2048, lkey: peer.mr.lkey }],
          rdma: { remoteAddr: mine.mr.addr + BigInt(i * 2048), rkey: mine.mr.rkey },
        });
      }
    }
    const seen: string[] = [];
    c.port!.capture = (dir, d) => {
      if (dir === "rx" && seen[seen.length - 1] !== d.src) seen.push(d.src);
    };
    net.run();
    expect(seen.length).toBeGreaterThan(4); // the sources alternated
    expect(c.port!.stats.rxDropped).toBe(0);
    for (const { peer } of ends) {
      const wcs = peer.cq.poll(16);
      expect(wcs.map((w) => w.status)).toEqual(new Array(8).fill(0));
    }
  });

  it("Port.received is told after each received datagram, once it is placed: an RDMA WRITE's bytes (no completion at the target) are in the memory then; a listener removed hears nothing more", async () => {
    const mod = await coreModule();
    const net = new SimNetwork({ seed: 7 });
    const ALL = Access.LOCAL_WRITE | Access.REMOTE_WRITE;
    const a = rcEnd(await net.addDevice(mod, "10.1.1.1"), 1 << 16, ALL);
    const b = rcEnd(await net.addDevice(mod, "10.1.1.2"), 1 << 16, ALL);
    connectQp(a.qp, { qpNum: b.qp.qpNum, psn: 1, gid: "::ffff:10.1.1.2" }, { sqPsn: 1, qpAccessFlags: ALL, timeout: 8, pathMtu: 1 });
    connectQp(b.qp, { qpNum: a.qp.qpNum, psn: 1, gid: "::ffff:10.1.1.1" }, { sqPsn: 1, qpAccessFlags: ALL, timeout: 8, pathMtu: 1 });
    a.mr.bytes.set([1, 2, 3, 4], 100);
    const at: number[][] = [];
    const look = () => at.push([...b.mr.bytes.subarray(200, 204)]);
    b.dev.port!.received.add(look);
    a.qp.postSend({
      wrId: 1n, opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED,
      sgList: [{ addr: a.mr.addr + 100n, length: 4, lkey: a.mr.lkey }], rdma: { remoteAddr: b.mr.addr + 200n, rkey: b.mr.rkey },
    });
    net.run();
    expect(at).toEqual([[1, 2, 3, 4]]); // one datagram, told once, the bytes already there
    b.dev.port!.received.delete(look);
    a.qp.postSend({
      wrId: 2n, opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED,
      sgList: [{ addr: a.mr.addr + 100n, length: 4, lkey: a.mr.lkey }], rdma: { remoteAddr: b.mr.addr + 300n, rkey: b.mr.rkey },
    });
    net.run();
    expect(at.length).toBe(1);
    expect([...b.mr.bytes.subarray(300, 304)]).toEqual([1, 2, 3, 4]);
  });
});

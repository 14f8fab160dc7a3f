// ibv_init_ah_from_wc / ibv_create_ah_from_wc: the address to answer a UD receive at, read from
// its completion and the 40-byte GRH area the receive buffer starts with — on the simulated wire,
// IPv4 and IPv6, the sender's traffic class, hop limit and flow label as sent, and the answer
// reaching the sender; the GRH areas libibverbs refuses (multicast, not RoCEv2, a GID not ours).
import { describe, expect, it } from "vitest";
import { drainCq } from "../support/sim-pair.js";
import { expectVerbsError } from "../support/verbs-helpers.js";
import { coreModule } from "../../../host/node/wasm-source.js";
import { SimNetwork } from "../../../host/core/sim/network.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, GRH_SIZE, QpType, SendFlags, WcFlags, WcOpcode, WcStatus, WrOpcode, initAhFromWc, parseRecvGrh, parseGid, type WorkCompletion } from "../../../host/core/verbs/index.js";

const QKEY = 0x11111111;

async function udEnd(net: SimNetwork, addr: string) {
  const dev = await net.addDevice(await coreModule(), addr);
  const pd = dev.allocPd();
  const cq = dev.createCq(16);
  const qp = pd.createQp({ qpType: QpType.UD, sendCq: cq, recvCq: cq, cap: { maxSendWr: 4, maxRecvWr: 4, maxSendSge: 1, maxRecvSge: 1 } });
  connectQp(qp, undefined, { sqPsn: 0, qkey: QKEY });
  const mr = pd.regMr(4096, Access.LOCAL_WRITE);
  qp.postRecv({ wrId: 1n, sgList: [mr.sge(0, GRH_SIZE + 64)] });
  return { dev, pd, cq, qp, mr };
}

/** A receive completion as the device gives one, for the GRH areas made by hand. */
const wcWith = (wcFlags: number): WorkCompletion => ({
  wrId: 0n, status: 0, opcode: WcOpcode.RECV, vendorErr: 0, byteLen: 40, immData: 0, invalidatedRkey: 0, qpNum: 0, srcQp: 0, wcFlags,
  pkeyIndex: 0, slid: 0, sl: 0, dlidPathBits: 0,
});

describe("ibv_init_ah_from_wc / ibv_create_ah_from_wc", () => {
  for (const [family, a, b, grh] of [
    ["IPv4", "10.0.0.1", "10.0.0.2", { trafficClass: 0x28, hopLimit: 9, flowLabel: 0 }],
    ["IPv6", "fd00::1", "fd00::2", { trafficClass: 0x48, hopLimit: 23, flowLabel: 0x12345 }],
  ] as const) {
    it(`${family}: the sender's GID, our GID's index, its traffic class, hop limit and flow label; the answer reaches the sender`, async () => {
      const net = new SimNetwork({ seed: 5 });
      const A = await udEnd(net, a);
      const B = await udEnd(net, b);
      const toB = A.pd.createAh({ grh: { dgid: B.dev.queryGid(0), sgidIndex: 0, ...grh }, portNum: 1 });
      A.mr.bytes.set(new TextEncoder().encode("ping"), 1024);
      A.qp.postSend({ wrId: 7n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [A.mr.sge(1024, 4)], ud: { ah: toB, remoteQpn: B.qp.qpNum, remoteQkey: QKEY } });
      net.run(net.now + 100_000);
      const [wc] = drainCq(B.cq);
      expect(wc).toMatchObject({ status: WcStatus.SUCCESS, opcode: WcOpcode.RECV, srcQp: A.qp.qpNum });
      const area = B.mr.bytes.subarray(0, GRH_SIZE);
      expect(parseRecvGrh(area)).toMatchObject({ version: family === "IPv4" ? 4 : 6, ...grh });

      const attr = initAhFromWc(B.dev, 1, wc!, area);
      expect(attr).toEqual({
        isGlobal: true, portNum: 1, dlid: 0, sl: 0, srcPathBits: 0,
        grh: { dgid: parseGid(A.dev.queryGid(0)), sgidIndex: 0, ...grh },
      });

      const back = B.pd.createAhFromWc(wc!, area, 1);
      B.mr.bytes.set(new TextEncoder().encode("pong"), 1024);
      B.qp.postSend({ wrId: 8n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [B.mr.sge(1024, 4)], ud: { ah: back, remoteQpn: A.qp.qpNum, remoteQkey: QKEY } });
      net.run(net.now + 100_000);
      const got = drainCq(A.cq).filter((w) => w.opcode === WcOpcode.RECV);
      expect(got.map((w) => [w.status, w.srcQp, w.byteLen])).toEqual([[WcStatus.SUCCESS, B.qp.qpNum, GRH_SIZE + 4]]);
      expect(new TextDecoder().decode(A.mr.bytes.subarray(GRH_SIZE, GRH_SIZE + 4))).toBe("pong");
      expect(parseRecvGrh(A.mr.bytes.subarray(0, GRH_SIZE))).toMatchObject(grh); // the answer kept the first datagram's
    });
  }

  it("bad flow: a multicast destination (EINVAL), a GRH area that is not RoCEv2 (EPROTONOSUPPORT), a destination GID not in the table (ENOENT)", async () => {
    const net = new SimNetwork({ seed: 6 });
    const { dev } = await udEnd(net, "10.0.0.1");
    const v4 = (dst: number[]) => {
      const g = new Uint8Array(GRH_SIZE);
      g.set([0x45, 0, 0, 60, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 2, ...dst], 20);
      return g;
    };
    const wc = wcWith(WcFlags.GRH);
    expect(initAhFromWc(dev, 1, wc, v4([10, 0, 0, 1])).grh).toMatchObject({ dgid: parseGid("::ffff:10.0.0.2"), sgidIndex: 0, hopLimit: 64 });
    expectVerbsError(() => initAhFromWc(dev, 1, wc, v4([239, 1, 1, 1])), "EINVAL", "ibv_init_ah_from_wc");
    expectVerbsError(() => initAhFromWc(dev, 1, wc, v4([10, 0, 0, 9])), "ENOENT", "ibv_init_ah_from_wc");
    const v6 = new Uint8Array(GRH_SIZE);
    v6.set([0x60, 0, 0, 0, 0, 20, 0x1b, 64]); // next header 0x1b: RoCEv1's GRH
    expectVerbsError(() => initAhFromWc(dev, 1, wc, v6), "EPROTONOSUPPORT", "ibv_init_ah_from_wc");
    v6[6] = 17;
    v6[24] = 0xff;
    expectVerbsError(() => initAhFromWc(dev, 1, wc, v6), "EINVAL", "ibv_init_ah_from_wc");
    expectVerbsError(() => initAhFromWc(dev, 1, wc, new Uint8Array(GRH_SIZE)), "EPROTONOSUPPORT", "ibv_init_ah_from_wc");
    // without the GRH flag the area is not read: an attribute without a GRH (which RoCE cannot send to)
    expect(initAhFromWc(dev, 1, wcWith(0), new Uint8Array(0))).toEqual({ dlid: 0, sl: 0, srcPathBits: 0, portNum: 1, isGlobal: false });
    expectVerbsError(() => dev.allocPd().createAhFromWc(wcWith(0), new Uint8Array(0)), "EINVAL", "ibv_create_ah");
  });
});

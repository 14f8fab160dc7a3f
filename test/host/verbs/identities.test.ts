// Unpredictable identities (docs/SECURITY.md): random first PSNs from the CSPRNG, the
// device's entropy pool kept full by its host, and the seeded simulated wire drawing
// the same identities on every run while two seeds draw different ones.
import { describe, expect, it } from "vitest";
import { coreModule } from "../../../host/node/wasm-source.js";
import { SimNetwork } from "../../../host/core/sim/network.js";
import { localEndpoint, randomPsn } from "../../../host/core/verbs/connect.js";
import { QpType } from "../../../host/core/verbs/enums.js";
import { smallDevice } from "../support/verbs-helpers.js";

async function simIdentities(seed: number): Promise<{ qpns: number[]; rkeys: number[]; addrs: bigint[] }> {
  const net = new SimNetwork({ seed });
  const dev = await net.addDevice(await coreModule(), "10.0.0.1", { maxQp: 16, maxMr: 16, mrArenaBytes: 1 << 20, ringArenaBytes: 1 << 20 });
  const pd = dev.allocPd();
  const cq = dev.createCq(16);
  const qpns = [0, 1, 2].map(() => pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 1, maxRecvWr: 1, maxSendSge: 1, maxRecvSge: 1 } }).qpNum);
  const mrs = [0, 1, 2].map(() => pd.regMr(64));
  return { qpns, rkeys: mrs.map((m) => m.rkey), addrs: mrs.map((m) => m.addr) };
}

describe("identities", () => {
  it("randomPsn draws 24-bit PSNs that vary; localEndpoint carries one", async () => {
    const psns = Array.from({ length: 64 }, () => randomPsn());
    for (const p of psns) expect(Number.isInteger(p) && p >= 0 && p < 1 << 24).toBe(true);
    expect(new Set(psns).size).toBeGreaterThan(60);
    const dev = await smallDevice();
    const pd = dev.allocPd();
    const cq = dev.createCq(4);
    const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 1, maxRecvWr: 1, maxSendSge: 1, maxRecvSge: 1 } });
    const e = localEndpoint(qp, "::ffff:127.0.12.1", 4791);
    expect(e).toMatchObject({ qpNum: qp.qpNum, gid: "::ffff:127.0.12.1", port: 4791 });
    expect(e.psn).toBeLessThan(1 << 24);
  });

  it("the host keeps the entropy pool full: thousands of keys and QPs, none drawn from an empty pool", async () => {
    const dev = await smallDevice({ maxMr: 4, maxQp: 4 });
    const pd = dev.allocPd();
    const cq = dev.createCq(4);
    const keys = new Set<number>();
    for (let i = 0; i < 3000; i++) {
      const mr = pd.regMr(64);
      keys.add(mr.rkey);
      mr.destroy();
      if (i % 10 === 0) pd.createQp({ qpType: QpType.UD, sendCq: cq, recvCq: cq, cap: { maxSendWr: 1, maxRecvWr: 1, maxSendSge: 1, maxRecvSge: 1 } }).destroy();
    }
    expect(dev.core.entropy_starved()).toBe(0);
    expect(keys.size).toBeGreaterThan(900); // 4 slots x 256 key bytes, drawn at random: most are seen
  });

  it("the seeded simulated wire draws the same identities for one seed and others for another", async () => {
    const a = await simIdentities(7);
    const b = await simIdentities(7);
    const c = await simIdentities(8);
    expect(a).toEqual(b);
    expect(a.qpns).not.toEqual(c.qpns);
    expect(a.rkeys).not.toEqual(c.rkeys);
  });
});

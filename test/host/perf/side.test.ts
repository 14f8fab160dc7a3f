// One side of a perf test and the work requests it posts (host/core/perf/side.ts): the same
// requests whatever the bed, so the two-process mode's atomics carry the seeded operands too.
import { describe, expect, it } from "vitest";
import { coreModule } from "../../../host/node/wasm-source.js";
import { atomicOperand, createPerfBed, perfDeviceOptions, perfWr, resolvePerfOptions } from "../../../host/core/perf/index.js";
import { QpType, WrOpcode } from "../../../host/core/verbs/index.js";

describe("perf work requests", () => {
  it("atomics: FETCH_AND_ADD adds the seeded operand; CMP_AND_SWAP chains value(seq) -> value(seq + 1)", async () => {
    const faa = resolvePerfOptions({ test: "atomic_bw", seed: 7, txDepth: 4 });
    const bed = await createPerfBed(await coreModule(), faa);
    const w = perfWr(faa, bed.client, bed.remote[0]!, bed, 0, 5);
    expect(w.opcode).toBe(WrOpcode.ATOMIC_FETCH_AND_ADD);
    expect(w.atomic).toEqual({ remoteAddr: bed.remote[0]!.addr, rkey: bed.remote[0]!.rkey, compareAdd: atomicOperand(7, 0, 5) });
    expect(w.sgList).toEqual([bed.client.mrs[0]!.sge(1 * bed.slotBytes, 8)]);
    const cas = { ...faa, atomicType: "CMP_AND_SWAP" as const };
    expect(perfWr(cas, bed.client, bed.remote[0]!, bed, 0, 0).atomic).toMatchObject({ compareAdd: 0n, swap: atomicOperand(7, 0, 0) });
    expect(perfWr(cas, bed.client, bed.remote[0]!, bed, 0, 3).atomic).toMatchObject({ compareAdd: atomicOperand(7, 0, 2), swap: atomicOperand(7, 0, 3) });
  });

  it("RDMA names the remote MR at the message's slot; UD SENDs carry the peer's address handle and QPN", async () => {
    const o = resolvePerfOptions({ test: "write_bw", size: 100, txDepth: 4 });
    const bed = await createPerfBed(await coreModule(), o);
    const w = perfWr(o, bed.client, bed.remote[0]!, bed, 0, 6);
    expect(w.rdma).toEqual({ remoteAddr: bed.remote[0]!.addr + BigInt(2 * bed.slotBytes), rkey: bed.remote[0]!.rkey });
    const ud = resolvePerfOptions({ test: "send_bw", connection: "UD", size: 64, txDepth: 2 });
    const udBed = await createPerfBed(await coreModule(), ud);
    const s = perfWr(ud, udBed.client, udBed.remote[0]!, udBed, 0, 0);
    expect(s.opcode).toBe(WrOpcode.SEND);
    expect(s.ud).toEqual({ ah: udBed.client.ahs[0], remoteQpn: udBed.server.qps[0]!.qpNum, remoteQkey: udBed.qkey });
  });

  it("device sizes hold every slot and ring", () => {
    const o = resolvePerfOptions({ test: "write_bw", size: 1 << 20, txDepth: 16, qps: 4 });
    const d = perfDeviceOptions(o);
    expect(d.mrArenaBytes).toBeGreaterThanOrEqual(4 * 16 * (1 << 20));
    expect(d.mrArenaBytes % (1 << 20)).toBe(0);
    expect(d.maxQp).toBe(17);
  });

  it("-q 16 on a Node device: its QP1 and the test's 16 QPs all fit (ibv_create_qp EINVAL before)", async () => {
    const { openDevice } = await import("../../../host/node/index.js");
    const o = resolvePerfOptions({ test: "write_bw", size: 4096, txDepth: 4, qps: 16 });
    const dev = await openDevice({ address: "127.0.9.7", port: 0, ...perfDeviceOptions(o) });
    try {
      const pd = dev.allocPd();
      const cq = dev.createCq(64);
      const qps = Array.from({ length: 16 }, () => pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 4, maxRecvWr: 4, maxSendSge: 1, maxRecvSge: 1 } }));
      expect(qps.length).toBe(16);
    } finally {
      dev.close();
    }
  });
});

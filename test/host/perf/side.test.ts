// One side of a perf test and the work requests it posts (host/core/perf/side.ts): the same
// requests whatever the bed, so the two-process mode's atomics carry the seeded operands too.
import { describe, expect, it } from "vitest";
import { coreModule } from "../../../host/node/wasm-source.js";
import { atomicOperand, createPerfBed, perfDeviceOptions, perfPlaces, perfWr, resolvePerfOptions, PERFTEST_CYCLE_BUFFER } from "../../../host/core/perf/index.js";
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

  it("places as perftest lays its buffer out: messages up to half a page cycle through a page at 64-byte steps, larger ones reuse one buffer; --verify keeps one per slot", () => {
    const places = (size: number, txDepth = 128, verify = false, connection: "RC" | "UD" = "RC") =>
      perfPlaces(resolvePerfOptions({ test: "send_bw", size, txDepth, verify, connection, mtu: 4096 }));
    expect(PERFTEST_CYCLE_BUFFER).toBe(4096);
    expect(places(65536)).toBe(1);
    expect(places(2049)).toBe(1);
    expect(places(2048)).toBe(2);
    expect(places(1000)).toBe(4); // 1024-byte steps
    expect(places(64)).toBe(64);
    expect(places(8, 1)).toBe(64); // the whole page even at -t 1: a perftest peer's writes cycle through all of it
    expect(places(2010)).toBe(2);
    expect(places(2010, 128, false, "UD")).toBe(1); // with the 40-byte GRH its receive buffer needs 2112 bytes
    expect(places(65536, 128, true)).toBe(128);
  });

  it("a 64 KiB write_bw names the same remote bytes in every work request, whatever the slot (perftest's one buffer per QP)", async () => {
    const o = resolvePerfOptions({ test: "write_bw", size: 65536, txDepth: 8 });
    const bed = await createPerfBed(await coreModule(), o);
    const addrs = new Set([0, 1, 5, 7, 8, 13].map((seq) => perfWr(o, bed.client, bed.remote[0]!, bed, 0, seq).rdma!.remoteAddr));
    expect([...addrs]).toEqual([bed.remote[0]!.addr]);
    expect(bed.client.registered[0]!.length).toBe(65536);
    const verify = resolvePerfOptions({ ...o, verify: true });
    const vbed = await createPerfBed(await coreModule(), verify);
    expect(perfWr(verify, vbed.client, vbed.remote[0]!, vbed, 0, 13).rdma!.remoteAddr).toBe(vbed.remote[0]!.addr + 5n * 65536n);
    expect(vbed.client.registered[0]!.length).toBe(8 * 65536);
  });

  it("one MR holds every QP's places, each QP its own part (perftest's default); --mr_per_qp registers one per QP", async () => {
    const o = resolvePerfOptions({ test: "write_bw", size: 4096, txDepth: 4, qps: 4 });
    const bed = await createPerfBed(await coreModule(), o);
    const per = BigInt(bed.slotBytes * bed.places);
    for (const side of [bed.client, bed.server]) {
      expect(side.registered.length).toBe(1);
      const mr = side.registered[0]!;
      expect(mr.length).toBe(4 * Number(per));
      expect(side.mrs.map((r) => r.addr)).toEqual([0n, 1n, 2n, 3n].map((i) => mr.addr + i * per));
      expect(new Set(side.mrs.map((r) => r.rkey))).toEqual(new Set([mr.rkey]));
      expect(side.mrs[2]!.sge(64, 100)).toEqual({ addr: mr.addr + 2n * per + 64n, length: 100, lkey: mr.lkey });
      // its bytes are its part of the MR's
      side.mrs[2]!.bytes[5] = 0xa5;
      expect(mr.bytes[2 * Number(per) + 5]).toBe(0xa5);
      expect(side.mrs[2]!.bytes.length).toBe(Number(per));
    }
    // QP 3's WRITE lands in QP 3's part of the peer's MR
    expect(perfWr(o, bed.client, bed.remote[3]!, bed, 3, 0).rdma).toEqual({ remoteAddr: bed.server.registered[0]!.addr + 3n * per, rkey: bed.server.registered[0]!.rkey });
    const own = resolvePerfOptions({ ...o, mrPerQp: true });
    const ownBed = await createPerfBed(await coreModule(), own);
    expect(ownBed.client.registered.length).toBe(4);
    expect(new Set(ownBed.client.mrs.map((r) => r.rkey)).size).toBe(4);
    expect(ownBed.client.registered.every((mr) => mr.length === Number(per))).toBe(true);
    expect(() => resolvePerfOptions({ test: "write_lat", mrPerQp: true })).toThrow(/MR per QP applies to the bandwidth tests/);
  });

  it("device sizes hold every place and ring", () => {
    const o = resolvePerfOptions({ test: "write_bw", size: 1 << 20, txDepth: 16, qps: 4 });
    const d = perfDeviceOptions(o);
    expect(d.mrArenaBytes).toBeGreaterThanOrEqual(4 * (1 << 20));
    expect(d.mrArenaBytes % (1 << 20)).toBe(0);
    expect(d.maxQp).toBe(17);
    expect(perfDeviceOptions({ ...o, verify: true }).mrArenaBytes).toBeGreaterThanOrEqual(4 * 16 * (1 << 20));
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

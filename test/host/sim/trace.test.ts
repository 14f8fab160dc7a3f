// The simulated wire's trace written as pcapng: every datagram with its fate.
import { describe, expect, it } from "vitest";
import { coreModule } from "../../../host/node/wasm-source.js";
import { SimNetwork } from "../../../host/core/sim/network.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { simTracePcapng } from "../../../host/core/sim/trace.js";
import { readCaptureAll } from "../../../host/core/capture/pcap.js";
import { WireCodec } from "../../../host/core/wire/codec.js";
import { Access, QpType, SendFlags, WrOpcode } from "../../../host/core/verbs/enums.js";

describe("simulated wire trace as pcapng", () => {
  it("holds every datagram once, at its send time, with its fate; ICRCs verify except where the wire corrupted", async () => {
    const mod = await coreModule();
    const net = new SimNetwork({ seed: 11, trace: true, faults: { loss: 0.1, corrupt: 0.05, dup: 0.05, delayUs: 10 } });
    const ALL = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ;
    const mk = async (addr: string) => {
      const dev = await net.addDevice(mod, addr);
      const pd = dev.allocPd();
      const cq = dev.createCq(256);
      const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 64, maxRecvWr: 64, maxSendSge: 1, maxRecvSge: 1 } });
      return { cq, qp, mr: pd.regMr(1 << 16, ALL) };
    };
    const a = await mk("127.0.0.1");
    const b = await mk("127.0.0.2");
    connectQp(a.qp, { qpNum: b.qp.qpNum, psn: 5, gid: "::ffff:127.0.0.2" }, { sqPsn: 9, qpAccessFlags: ALL, timeout: 6 });
    connectQp(b.qp, { qpNum: a.qp.qpNum, psn: 9, gid: "::ffff:127.0.0.1" }, { sqPsn: 5, qpAccessFlags: ALL, timeout: 6 });
    for (let i = 0; i < 20; i++) {
      a.qp.postSend({ wrId: BigInt(i), opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED,
        sgList: [{ addr: a.mr.addr + BigInt(i * 3000), length: 3000, lkey: a.mr.lkey }],
        rdma: { remoteAddr: b.mr.addr + BigInt(i * 3000), rkey: b.mr.rkey } });
    }
    net.run();
    expect(a.cq.poll(64).filter((w) => w.status === 0).length).toBe(20);

    const trace = net.wire.trace!;
    const file = simTracePcapng(trace, { epochMicros: 1_700_000_000_000_000 });
    const recs = readCaptureAll(file);
    expect(recs.length).toBe(trace.length);
    const codec = await WireCodec.create(mod);
    const fates: Record<string, number> = {};
    recs.forEach((r, i) => {
      const fate = trace[i]!.fate;
      fates[fate] = (fates[fate] ?? 0) + 1;
      expect(r.tsMicros).toBe(1_700_000_000_000_000 + Math.round(trace[i]!.sentAt));
      const parsed = codec.parse(r.data!);
      if (trace[i]!.corrupted) return; // a flipped bit (also in a duplicate of a corrupted datagram) may hit any field
      expect([fate, parsed.ok && parsed.repr.icrcOk]).toEqual([fate, true]);
    });
    expect(fates.lost).toBeGreaterThan(0);
    expect(fates.corrupted).toBeGreaterThan(0);
    const text = new TextDecoder("latin1").decode(file);
    expect(text.split("fate=lost").length - 1).toBe(fates.lost);
    expect(text.split("fate=corrupted").length - 1).toBe(fates.corrupted);
  });
});

// The device-wide in-flight budget (assembly/sched/budget.ts): with a limit the device never has
// more unacknowledged RC request packets out than allowed, QPs that do not fit wait in turn and
// are woken as ACKs come back, every WR still completes once with the right bytes, and a QP
// that leaves RTS gives its share back. Without a limit (the default) nothing waits.
import { describe, expect, it } from "vitest";
import { coreModule } from "../../../host/node/wasm-source.js";
import { SimNetwork } from "../../../host/core/sim/network.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, Mtu, QpState, QpType, SendFlags, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import type { Device } from "../../../host/core/verbs/device.js";
import type { WorkCompletion } from "../../../host/core/verbs/cq.js";

const ACCESS = Access.LOCAL_WRITE | Access.REMOTE_WRITE;
const MSG = 16384; // 4 packets at MTU 4096
const QPS = 8;
const PER_QP = 6;

async function bed() {
  const mod = await coreModule();
  const net = new SimNetwork({ seed: 7, faults: {} });
  const mk = async (addr: string) => {
    const dev = await net.addDevice(mod, addr, { mrArenaBytes: 4 << 20 });
    const pd = dev.allocPd();
    const cq = dev.createCq(1024);
    const qps = Array.from({ length: QPS }, () =>
      pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 64, maxRecvWr: 4, maxSendSge: 1, maxRecvSge: 1 } }));
    const mr = pd.regMr(QPS * PER_QP * MSG, ACCESS);
    return { dev, cq, qps, mr };
  };
  const a = await mk("127.0.0.1");
  const b = await mk("127.0.0.2");
  const common = { pathMtu: Mtu.MTU_4096, qpAccessFlags: ACCESS, timeout: 14, retryCnt: 7 };
  for (let i = 0; i < QPS; i++) {
    connectQp(a.qps[i]!, { qpNum: b.qps[i]!.qpNum, psn: 500, gid: "::ffff:127.0.0.2" }, { sqPsn: 100, ...common });
    connectQp(b.qps[i]!, { qpNum: a.qps[i]!.qpNum, psn: 100, gid: "::ffff:127.0.0.1" }, { sqPsn: 500, ...common });
  }
  return { net, a, b };
}

function postAll(a: Awaited<ReturnType<typeof bed>>["a"], b: Awaited<ReturnType<typeof bed>>["b"]): void {
  const src = new Uint8Array(a.dev.memory.buffer, Number(a.mr.addr), QPS * PER_QP * MSG);
  for (let i = 0; i < src.length; i++) src[i] = (i * 13 + (i >>> 9)) & 0xff;
  // round by round, so every QP has work queued from the start
  for (let k = 0; k < PER_QP; k++) {
    for (let q = 0; q < QPS; q++) {
      const off = (q * PER_QP + k) * MSG;
      a.qps[q]!.postSend({
        wrId: BigInt(q * 1000 + k), opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED,
        sgList: [a.mr.sge(off, MSG)], rdma: { remoteAddr: b.mr.addr + BigInt(off), rkey: b.mr.rkey },
      });
    }
  }
}

/** Runs the wire until `n` completions, sampling the budget after every event. */
function runSampling(net: SimNetwork, dev: Device, poll: () => WorkCompletion[], n: number) {
  const wcs: WorkCompletion[] = [];
  let peakPackets = 0;
  for (let steps = 0; wcs.length < n && steps < 1_000_000; steps++) {
    if (net.run(Infinity, 1) === 0) break;
    peakPackets = Math.max(peakPackets, dev.port!.budget().inflightPackets);
    wcs.push(...poll());
  }
  return { wcs, peakPackets };
}

describe("device-wide in-flight budget", () => {
  it("caps unacknowledged request packets, wakes waiting QPs in turn, and every WR completes once with its bytes", async () => {
    const { net, a, b } = await bed();
    a.dev.port!.setBudget(0, 10); // 2.5 messages of 4 packets
    postAll(a, b);
    const { wcs, peakPackets } = runSampling(net, a.dev, () => a.cq.poll(64), QPS * PER_QP);
    expect(wcs).toHaveLength(QPS * PER_QP);
    expect(wcs.every((w) => w.status === WcStatus.SUCCESS)).toBe(true);
    expect(new Set(wcs.map((w) => w.wrId)).size).toBe(QPS * PER_QP);
    const total = QPS * PER_QP * MSG;
    expect(Buffer.compare(new Uint8Array(b.dev.memory.buffer, Number(b.mr.addr), total), new Uint8Array(a.dev.memory.buffer, Number(a.mr.addr), total))).toBe(0);
    expect(peakPackets).toBeLessThanOrEqual(10);
    expect(peakPackets).toBeGreaterThanOrEqual(8);
    const s = a.dev.port!.budget();
    expect(s.limitPackets).toBe(10);
    expect(s.waits).toBeGreaterThan(0);
    expect(s.wakes).toBe(s.waits);
    expect(s).toMatchObject({ inflight: 0, inflightPackets: 0, waiting: 0 });
    // fair share: every QP had its first WR done before any QP had its last
    const firstDone = Math.max(...a.qps.map((qp) => wcs.findIndex((w) => w.qpNum === qp.qpNum)));
    const lastOfFastest = Math.min(...a.qps.map((qp) => wcs.map((w) => w.qpNum).lastIndexOf(qp.qpNum)));
    expect(firstDone).toBeLessThan(lastOfFastest);
    expect(a.dev.queryCounters().completer_retry_err ?? 0).toBe(0);
  });

  it("a byte limit charges each packet its receive-buffer cost (a 4 KiB packet: 8512 bytes)", async () => {
    const { net, a, b } = await bed();
    a.dev.port!.setBudget(8512 * 6);
    postAll(a, b);
    const { wcs, peakPackets } = runSampling(net, a.dev, () => a.cq.poll(64), QPS * PER_QP);
    expect(wcs.filter((w) => w.status === WcStatus.SUCCESS)).toHaveLength(QPS * PER_QP);
    expect(peakPackets).toBeLessThanOrEqual(6);
    expect(a.dev.port!.budget().peak).toBeLessThanOrEqual(8512 * 6);
    expect(a.dev.port!.budget().waits).toBeGreaterThan(0);
  });

  it("without a limit nothing waits", async () => {
    const { net, a, b } = await bed();
    postAll(a, b);
    const { wcs, peakPackets } = runSampling(net, a.dev, () => a.cq.poll(64), QPS * PER_QP);
    expect(wcs.filter((w) => w.status === WcStatus.SUCCESS)).toHaveLength(QPS * PER_QP);
    expect(a.dev.port!.budget()).toMatchObject({ limit: 0, limitPackets: 0, waits: 0, inflight: 0 });
    expect(peakPackets).toBeGreaterThan(10);
  });

  it("a QP moved to ERR or destroyed with packets out gives its share back; the others finish", async () => {
    const { net, a, b } = await bed();
    a.dev.port!.setBudget(0, 10);
    postAll(a, b);
    // two sends on the wire, nothing delivered yet: the first QPs hold the budget
    const held = a.dev.port!.budget();
    expect(held.inflightPackets).toBeGreaterThan(0);
    a.qps[0]!.modify({ qpState: QpState.ERR });
    a.qps[1]!.destroy();
    const { wcs } = runSampling(net, a.dev, () => a.cq.poll(64), (QPS - 1) * PER_QP);
    const others = wcs.filter((w) => w.qpNum !== a.qps[0]!.qpNum);
    expect(others.filter((w) => w.status === WcStatus.SUCCESS).length).toBe((QPS - 2) * PER_QP);
    expect(wcs.filter((w) => w.qpNum === a.qps[0]!.qpNum).every((w) => w.status === WcStatus.WR_FLUSH_ERR)).toBe(true);
    expect(a.dev.port!.budget()).toMatchObject({ inflight: 0, inflightPackets: 0, waiting: 0 });
  });

  it("refuses a bad budget", async () => {
    const { a } = await bed();
    expect(() => a.dev.port!.setBudget(-1)).toThrow(RangeError);
    expect(() => a.dev.port!.setBudget(0, 1.5)).toThrow(RangeError);
  });
});

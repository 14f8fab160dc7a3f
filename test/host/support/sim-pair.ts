// Two devices on the simulated wire, each with a PD, a CQ, an RC QP and an MR, the QPs connected to
// each other: the set-up the verbs tests of memory windows, fast registration, FLUSH, keys and QP
// states share, and the RC end-to-end, trace reader and sim fast-path tests (each names its seed,
// addresses, sizes, access, attributes and the wire's faults), and the small helpers they all use
// around it (draining a CQ, running the wire, the errno a verb throws).
import { coreModule } from "../../../host/node/wasm-source.js";
import { SimNetwork } from "../../../host/core/sim/network.js";
import type { SimWireOptions } from "../../../host/core/sim/wire.js";
import { connectQp, type ConnectOptions } from "../../../host/core/verbs/connect.js";
import { Access, QpType } from "../../../host/core/verbs/enums.js";
import { VerbsError } from "../../../host/core/verbs/errors.js";
import type { OpenDeviceOptions } from "../../../host/core/verbs/device.js";
import type { Device } from "../../../host/core/verbs/device.js";
import type { ProtectionDomain } from "../../../host/core/verbs/pd.js";
import type { QueuePair } from "../../../host/core/verbs/qp.js";
import type { QpCap } from "../../../host/core/verbs/qp-attr.js";
import type { CompletionQueue, WorkCompletion } from "../../../host/core/verbs/cq.js";
import type { MemoryRegion } from "../../../host/core/verbs/mr.js";

export interface SimSide {
  dev: Device;
  pd: ProtectionDomain;
  cq: CompletionQueue;
  qp: QueuePair;
  mr: MemoryRegion;
}

export interface SimPairOptions {
  seed: number;
  /** the devices' IPv4 addresses, a's and b's (each test file its own) */
  addresses: [string, string];
  /** CQ entries [default: 64] */
  cqe?: number;
  /** the RC QPs' capacities [default: 16 WRs each way, 1 SGE] */
  cap?: QpCap;
  /** bytes of each side's MR [default: 8192] */
  mrBytes?: number;
  /** each side's MR access, or [a's, b's] [default: LOCAL_WRITE] */
  mrAccess?: number | [number, number];
  /** first send PSNs, [a's, b's] [default: 10, 20] */
  psns?: [number, number];
  /** connectQp's attributes besides the first PSN, both sides */
  connect?: Omit<ConnectOptions, "sqPsn">;
  /** device options (arena sizes, limits) */
  device?: OpenDeviceOptions;
  /** the wire's faults and trace [default: none] */
  wire?: Omit<SimWireOptions, "seed" | "clock">;
}

/** Two devices on a SimNetwork, an RC QP on each, connected to the other's. */
export async function simRcPair(o: SimPairOptions): Promise<{ net: SimNetwork; a: SimSide; b: SimSide }> {
  const mod = await coreModule();
  const net = new SimNetwork({ ...o.wire, seed: o.seed });
  const access = Array.isArray(o.mrAccess) ? o.mrAccess : [o.mrAccess ?? Access.LOCAL_WRITE, o.mrAccess ?? Access.LOCAL_WRITE];
  const cap = o.cap ?? { maxSendWr: 16, maxRecvWr: 16, maxSendSge: 1, maxRecvSge: 1 };
  const side = async (i: 0 | 1): Promise<SimSide> => {
    const dev = await net.addDevice(mod, o.addresses[i], o.device ?? {});
    const pd = dev.allocPd();
    const cq = dev.createCq(o.cqe ?? 64);
    const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap });
    const mr = pd.regMr(o.mrBytes ?? 8192, access[i]!);
    return { dev, pd, cq, qp, mr };
  };
  const a = await side(0);
  const b = await side(1);
  const [pa, pb] = o.psns ?? [10, 20];
  connectQp(a.qp, { qpNum: b.qp.qpNum, psn: pb, gid: `::ffff:${o.addresses[1]}` }, { ...o.connect, sqPsn: pa });
  connectQp(b.qp, { qpNum: a.qp.qpNum, psn: pa, gid: `::ffff:${o.addresses[0]}` }, { ...o.connect, sqPsn: pb });
  return { net, a, b };
}

/** Every completion the CQ holds now. */
export function drainCq(cq: CompletionQueue): WorkCompletion[] {
  const out: WorkCompletion[] = [];
  for (let got = cq.poll(32); got.length; got = cq.poll(32)) out.push(...got);
  return out;
}

/** Runs the wire for `us` of virtual time (2 s: past any retry these tests provoke), then drains the CQ. */
export function settleAndDrain(net: SimNetwork, cq: CompletionQueue, us = 2_000_000): WorkCompletion[] {
  net.run(net.now + us);
  return drainCq(cq);
}

/** The errno name a verb throws (EINVAL, …), or "no error"; anything but a VerbsError is rethrown. */
export function errnoOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof VerbsError) return e.code;
    throw e;
  }
  return "no error";
}

// Shared setup for the verbs tests: a small device per test.
import { expect } from "vitest";
import { openDevice } from "../../../host/node/index.js";
import { VerbsError, type Device, type OpenDeviceOptions, QpType, QpState, Access, Mtu, type QueuePair, type CompletionQueue, type ProtectionDomain } from "../../../host/core/verbs/index.js";

export const SMALL: OpenDeviceOptions = {
  maxPd: 8,
  maxMr: 64,
  maxCq: 16,
  maxQp: 16,
  maxSrq: 4,
  maxAh: 8,
  maxQpWr: 1024,
  maxCqe: 4096,
  maxSrqWr: 256,
  mrArenaBytes: 1 << 20,
  ringArenaBytes: 4 << 20,
  eventRingSize: 64,
  nodeGuid: 0x0200_00ff_fe00_0001n,
  gids: ["fe80::ff:fe00:1", "::ffff:127.0.0.1"],
};

export async function smallDevice(extra: OpenDeviceOptions = {}) {
  return openDevice({ ...SMALL, ...extra });
}

/** Runs fn and expects a VerbsError with this errno name (and verb). */
export function expectVerbsError(fn: () => unknown, code: string, verb?: string): VerbsError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${code}`).toBeInstanceOf(VerbsError);
  const v = err as VerbsError;
  expect(v.code).toBe(code);
  if (verb) expect(v.verb).toBe(verb);
  expect(v.message.startsWith(v.verb)).toBe(true);
  return v;
}

export const AV = { grh: { dgid: "::ffff:127.0.0.2", sgidIndex: 1, hopLimit: 64 }, portNum: 1 };

export function rcQp(pd: ProtectionDomain, cq: CompletionQueue, cap = { maxSendWr: 16, maxRecvWr: 16, maxSendSge: 4, maxRecvSge: 4 }) {
  return pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap });
}

/** One RC end on `dev`: a PD, one CQ for both queues, an RC QP (32 WRs, 1 SGE each) and an MR of `mrBytes`. */
export function rcEnd(dev: Device, mrBytes: number, access: number) {
  const pd = dev.allocPd();
  const cq = dev.createCq(64);
  const qp = rcQp(pd, cq, { maxSendWr: 32, maxRecvWr: 32, maxSendSge: 1, maxRecvSge: 1 });
  const mr = pd.regMr(mrBytes, access);
  return { dev, cq, qp, mr };
}

/** Moves an RC/UC/UD QP to RTS with the attributes rc_pingpong uses. */
export function toRts(qp: QueuePair): void {
  if (qp.qpType === QpType.UD) {
    qp.modify({ qpState: QpState.INIT, pkeyIndex: 0, portNum: 1, qkey: 0x11111111 });
    qp.modify({ qpState: QpState.RTR });
    qp.modify({ qpState: QpState.RTS, sqPsn: 0 });
    return;
  }
  qp.modify({ qpState: QpState.INIT, pkeyIndex: 0, portNum: 1, qpAccessFlags: Access.LOCAL_WRITE | Access.REMOTE_WRITE });
  const rtr = { qpState: QpState.RTR, pathMtu: Mtu.MTU_1024, destQpNum: 0x12, rqPsn: 0, ahAttr: AV };
  qp.modify(qp.qpType === QpType.RC ? { ...rtr, maxDestRdAtomic: 1, minRnrTimer: 12 } : rtr);
  const rts = { qpState: QpState.RTS, sqPsn: 0 };
  qp.modify(qp.qpType === QpType.RC ? { ...rts, timeout: 14, retryCnt: 7, rnrRetry: 7, maxRdAtomic: 1 } : rts);
}

/** Lets queued async events be dispatched. */
export const tick = () => new Promise((r) => setTimeout(r, 0));

// One device opened on loopback UDP and one RC end on it, as the Node tests pair them: a PD, an MR,
// a CQ (64 by default) and an RC QP (16 send and 16 receive WRs by default, one SGE each); two ends
// connected to each other (connectRcEnds); an end that echoes every SEND (echoSends).
import { openDevice, udpPortOf, type NodeDeviceOptions } from "../../../host/node/index.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { QpType, WcOpcode, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import type { Device } from "../../../host/core/verbs/device.js";

/**
 * `d` opened at `address` (port 0) with `options` (a worker device must get its worker: an error
 * says why not); its MR has `mrBytes` (default 8192) with `access`, its CQ `cqe` entries (default
 * 64), its QP `depth` send and receive WRs (default 16). `opened`: the device is added for the
 * test's afterEach to close.
 */
export async function openRcEnd(
  address: string,
  options: Omit<NodeDeviceOptions, "address" | "port">,
  access: number,
  o: { mrBytes?: number; cqe?: number; depth?: number; opened?: Device[] } = {},
) {
  const d: Device = await openDevice({ ...options, address, port: 0 });
  o.opened?.push(d);
  if (options.worker && !d.worker) throw new Error(`${address}: no worker device (${d.workerFallback})`);
  const pd = d.allocPd();
  const mr = pd.regMr(o.mrBytes ?? 8192, access);
  const cq = d.createCq(o.cqe ?? 64);
  const depth = o.depth ?? 16;
  const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: depth, maxRecvWr: depth, maxSendSge: 1, maxRecvSge: 1 } });
  return { d, pd, mr, cq, qp };
}

export type RcEnd = Awaited<ReturnType<typeof openRcEnd>>;

/**
 * Connects two ends to each other, RC to RTS (A sends from PSN 0x200, B from 0x100; ACK timeout 20,
 * 4.3 s: a retransmission on a loaded machine would change the counts a test asserts).
 */
export function connectRcEnds(A: RcEnd, B: RcEnd, access: number): void {
  connectQp(A.qp, { qpNum: B.qp.qpNum, psn: 0x100, gid: B.d.queryGid(0), port: udpPortOf(B.d) }, { sqPsn: 0x200, qpAccessFlags: access, timeout: 20 });
  connectQp(B.qp, { qpNum: A.qp.qpNum, psn: 0x200, gid: A.d.queryGid(0), port: udpPortOf(A.d) }, { sqPsn: 0x100, qpAccessFlags: access, timeout: 20 });
}

/**
 * `B` echoes every SEND it receives: 8 receives of 64 B posted (wrId i at offset i * 64 of its MR),
 * each RECV answered by an unsignaled SEND of the same 64 bytes and its receive posted again, until
 * a completion fails or the device closes.
 */
export function echoSends(B: RcEnd): void {
  for (let i = 0; i < 8; i++) B.qp.postRecv({ wrId: BigInt(i), sgList: [B.mr.sge(i * 64, 64)] });
  void (async () => {
    for (;;) {
      const wc = await B.cq.next().catch(() => undefined);
      if (!wc || wc.status !== WcStatus.SUCCESS) return;
      if (wc.opcode !== WcOpcode.RECV) continue;
      B.qp.postRecv({ wrId: wc.wrId, sgList: [B.mr.sge(Number(wc.wrId) * 64, 64)] });
      B.qp.postSend({ wrId: 99n, opcode: WrOpcode.SEND, sendFlags: 0, sgList: [B.mr.sge(Number(wc.wrId) * 64, 64)] });
    }
  })();
}

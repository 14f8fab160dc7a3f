// One device opened on loopback UDP and one RC end on it, as the Node tests pair them: a PD, an MR,
// a CQ of 64 and an RC QP (16 send and 16 receive WRs, one SGE each). Connecting is the test's.
import { openDevice, type NodeDeviceOptions } from "../../../host/node/index.js";
import { QpType } from "../../../host/core/verbs/enums.js";
import type { Device } from "../../../host/core/verbs/device.js";

/** `d` opened at `address` (port 0) with `options`; its MR has `mrBytes` (default 8192) with `access`. */
export async function openRcEnd(address: string, options: Omit<NodeDeviceOptions, "address" | "port">, access: number, mrBytes = 8192) {
  const d: Device = await openDevice({ ...options, address, port: 0 });
  const pd = d.allocPd();
  const mr = pd.regMr(mrBytes, access);
  const cq = d.createCq(64);
  const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 16, maxRecvWr: 16, maxSendSge: 1, maxRecvSge: 1 } });
  return { d, pd, mr, cq, qp };
}

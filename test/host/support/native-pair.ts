// Two devices on Node's native datapath (loopback UDP, each at its own address), one connected RC
// QP each (openRcEnd): A's QP sends from PSN 200 to B's, B's from 100. `close()` closes both devices.
import { udpLinkOf } from "../../../host/node/index.js";
import { NativeUdpLink } from "../../../host/node/native-link.js";
import { connectQp, type ConnectOptions } from "../../../host/core/verbs/connect.js";
import { Access, Mtu } from "../../../host/core/verbs/enums.js";
import { openRcEnd } from "./rc-end.js";

export type NativeEnd = Awaited<ReturnType<typeof openRcEnd>> & { link: NativeUdpLink };

/** A and B at `addresses`, MRs of `mrBytes` with `access`, QPs connected with `qp` (path MTU 1024 unless said). */
export async function nativePair(
  addresses: [string, string],
  o: { access?: number; mrBytes?: number; qp?: Partial<ConnectOptions> } = {},
): Promise<{ A: NativeEnd; B: NativeEnd; close(): void }> {
  const access = o.access ?? Access.LOCAL_WRITE | Access.REMOTE_WRITE;
  const ends: NativeEnd[] = [];
  const close = () => {
    for (const e of ends) e.d.close();
  };
  try {
    for (const address of addresses) {
      const end = await openRcEnd(address, { activeMtu: Mtu.MTU_1024, datapath: "native" }, access, o.mrBytes ?? 4096);
      const link = udpLinkOf(end.d);
      ends.push({ ...end, link: link as NativeUdpLink });
      if (!(link instanceof NativeUdpLink)) throw new Error(`${address}: not on the native datapath (${link?.path})`);
    }
    const [A, B] = ends as [NativeEnd, NativeEnd];
    const common = { pathMtu: Mtu.MTU_1024, qpAccessFlags: access, ...o.qp };
    const portOf = (e: NativeEnd) => (e.d.limits as { port: number }).port;
    connectQp(A.qp, { qpNum: B.qp.qpNum, psn: 100, gid: B.d.queryGid(0), port: portOf(B) }, { ...common, sqPsn: 200 });
    connectQp(B.qp, { qpNum: A.qp.qpNum, psn: 200, gid: A.d.queryGid(0), port: portOf(A) }, { ...common, sqPsn: 100 });
    return { A, B, close };
  } catch (e) {
    close();
    throw e;
  }
}

// The perf test bed: two devices on the simulated wire (client 10.0.0.1,
// server 10.0.0.2), N connected RC QPs between them, one send and one receive
// CQ per device, and per QP one MR on each side holding tx-depth message slots.
import { connectQp } from "../verbs/connect.js";
import { SimNetwork } from "../sim/network.js";
import type { CompletionQueue } from "../verbs/cq.js";
import type { Device } from "../verbs/device.js";
import { Access, QpType } from "../verbs/enums.js";
import type { AddressHandle } from "../verbs/ah.js";
import type { MemoryRegion } from "../verbs/mr.js";
import type { ProtectionDomain } from "../verbs/pd.js";
import type { QueuePair } from "../verbs/qp.js";
import { perfSlotBytes, UD_GRH, type ResolvedPerfOptions } from "./options.js";

export const CLIENT_ADDRESS = "10.0.0.1";
export const SERVER_ADDRESS = "10.0.0.2";

export interface PerfSide {
  device: Device;
  pd: ProtectionDomain;
  sendCq: CompletionQueue;
  recvCq: CompletionQueue;
  qps: QueuePair[];
  /** per QP: slots × slotBytes */
  mrs: MemoryRegion[];
  /** QP number -> QP index */
  index: Map<number, number>;
  /** UD: per QP, the address handle of the peer and the peer QP's number */
  ahs: AddressHandle[];
  peers: number[];
}

export interface PerfBed {
  net: SimNetwork;
  client: PerfSide;
  server: PerfSide;
  /** bytes between slot starts (message size rounded up to 64, at least 64) */
  slotBytes: number;
  slots: number;
  /** where a received message starts in its receive buffer: the GRH size on UD, else 0 */
  rxOffset: number;
  qkey: number;
}

const ACCESS = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ | Access.REMOTE_ATOMIC;

function mtuEnum(bytes: number): number {
  return Math.log2(bytes) - 7;
}

export async function createPerfBed(module: WebAssembly.Module, o: ResolvedPerfOptions): Promise<PerfBed> {
  const slotBytes = perfSlotBytes(o.size, o.connection);
  const qpType = o.connection === "UD" ? QpType.UD : o.connection === "UC" ? QpType.UC : QpType.RC;
  const qkey = 0x11111111;
  const slots = o.txDepth;
  const mrBytes = o.qps * slots * slotBytes;
  const arena = Math.max(1 << 20, Math.ceil((mrBytes + o.qps * 4096 + (64 << 10)) / (1 << 20)) * (1 << 20));
  const wr = Math.max(o.txDepth, 16);
  const cqe = Math.min(32767, o.qps * wr + 64);
  const net = new SimNetwork({ seed: o.seed, faults: o.faults });
  const devOpts = {
    mrArenaBytes: arena,
    // rings (SQ/RQ/CQ) beyond the default arena, which also holds the engines' per-QP state
    ringArenaBytes: (16 << 20) + o.qps * wr * 2 * 256 + cqe * 2 * 128,
    // UD datagrams are limited by the port's MTU: make it the path MTU asked for
    activeMtu: o.connection === "UD" ? mtuEnum(o.mtu) : 5,
    maxQp: Math.max(16, o.qps),
  };
  const side = async (address: string): Promise<PerfSide> => {
    const device = await net.addDevice(module, address, devOpts);
    const pd = device.allocPd();
    const sendCq = device.createCq(cqe);
    const recvCq = device.createCq(cqe);
    const qps: QueuePair[] = [];
    const mrs: MemoryRegion[] = [];
    const index = new Map<number, number>();
    for (let i = 0; i < o.qps; i++) {
      const qp = pd.createQp({ qpType, sendCq, recvCq, cap: { maxSendWr: wr, maxRecvWr: wr, maxSendSge: 1, maxRecvSge: 1 } });
      index.set(qp.qpNum, i);
      qps.push(qp);
      mrs.push(pd.regMr(slots * slotBytes, ACCESS));
    }
    return { device, pd, sendCq, recvCq, qps, mrs, index, ahs: [], peers: [] };
  };
  const client = await side(CLIENT_ADDRESS);
  const server = await side(SERVER_ADDRESS);
  const psn = (side: number, i: number) => (((o.seed * 2654435761) >>> 8) + 0x1000 * i + 0x800000 * side) & 0xffffff;
  const common = {
    pathMtu: mtuEnum(o.mtu),
    qpAccessFlags: ACCESS,
    timeout: o.timeout,
    retryCnt: o.retryCnt,
    rnrRetry: 7,
    minRnrTimer: 1,
    maxRdAtomic: 16,
    maxDestRdAtomic: 16,
  };
  for (let i = 0; i < o.qps; i++) {
    const c = client.qps[i]!;
    const s = server.qps[i]!;
    if (o.connection === "UD") {
      connectQp(c, undefined, { sqPsn: psn(0, i), qkey });
      connectQp(s, undefined, { sqPsn: psn(1, i), qkey });
      client.ahs.push(client.pd.createAh({ grh: { dgid: `::ffff:${SERVER_ADDRESS}`, sgidIndex: 0, hopLimit: 64 }, portNum: 1 }));
      server.ahs.push(server.pd.createAh({ grh: { dgid: `::ffff:${CLIENT_ADDRESS}`, sgidIndex: 0, hopLimit: 64 }, portNum: 1 }));
      client.peers.push(s.qpNum);
      server.peers.push(c.qpNum);
      continue;
    }
    connectQp(c, { qpNum: s.qpNum, psn: psn(1, i), gid: `::ffff:${SERVER_ADDRESS}` }, { ...common, sqPsn: psn(0, i) });
    connectQp(s, { qpNum: c.qpNum, psn: psn(0, i), gid: `::ffff:${CLIENT_ADDRESS}` }, { ...common, sqPsn: psn(1, i) });
  }
  return { net, client, server, slotBytes, slots, rxOffset: o.connection === "UD" ? UD_GRH : 0, qkey };
}

/** The bytes of slot `slot` (message-size long) in a side's MR of QP `qp`. */
export function slotView(side: PerfSide, qp: number, slot: number, slotBytes: number, size: number, offset = 0): Uint8Array {
  const mr = side.mrs[qp]!;
  // re-derive: the MR's view detaches if memory ever grows
  return new Uint8Array(side.device.memory.buffer, Number(mr.addr) + slot * slotBytes + offset, size);
}

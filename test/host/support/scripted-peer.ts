// A device on the simulated wire whose RC QP talks to a scripted peer: nothing answers on the wire,
// the test makes the peer's ACKs (`ack(psn)`, straight into the device's port) and reads what the
// device sent from the wire's trace (`sentPsns`). QP `qp` sends from PSN 0x10 with ACK timeout 10
// (T10 µs); `qp2`, when asked for with its own timeout exponent, from PSN 0x80.
import { coreModule } from "../../../host/node/wasm-source.js";
import { WireCodec } from "../../../host/core/wire/codec.js";
import { SimNetwork } from "../../../host/core/sim/network.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, Mtu, QpType, SendFlags, WrOpcode } from "../../../host/core/verbs/enums.js";

export const PEER_QPN = 0x99;
const ACK = 0x1f;
/** ACK timeout 10, µs */
export const T10 = 4.096 * 1024;

export async function scriptedPeer(address: string, peer: string, o: { timeout2?: number } = {}) {
  const mod = await coreModule();
  const codec = await WireCodec.create(mod);
  const net = new SimNetwork({ trace: true });
  const dev = await net.addDevice(mod, address);
  const pd = dev.allocPd();
  const cq = dev.createCq(64);
  const cap = { maxSendWr: 8, maxRecvWr: 4, maxSendSge: 1, maxRecvSge: 1 };
  const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap });
  connectQp(qp, { qpNum: PEER_QPN, psn: 0x500, gid: `::ffff:${peer}` }, { sqPsn: 0x10, pathMtu: Mtu.MTU_1024, timeout: 10, retryCnt: 3 });
  const qp2 = o.timeout2 === undefined ? undefined : pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap });
  if (qp2) connectQp(qp2, { qpNum: PEER_QPN + 1, psn: 0x600, gid: `::ffff:${peer}` }, { sqPsn: 0x80, pathMtu: Mtu.MTU_1024, timeout: o.timeout2, retryCnt: 3 });
  const mr = pd.regMr(4096, Access.LOCAL_WRITE);
  /** the peer's ACK of `psn` to `qp` */
  const ack = (psn: number) =>
    dev.port!.receive({
      src: peer, dst: address, srcPort: 0xc000, dstPort: 4791, ipId: 0,
      payload: codec.emit({ ipVersion: 4, src: peer, dst: address, udpSrcPort: 0xc000, udpDstPort: 4791, destQp: qp.qpNum, opcode: 0x11, psn, aeth: { syndrome: ACK, msn: 0 } } as never).subarray(28),
    });
  const sentPsns = () => net.wire.trace!.map((t) => codec.parseDatagram(t.datagram)).flatMap((r) => (r.ok ? [r.repr.psn] : []));
  /** runs the simulated clock `us` on */
  const advance = (us: number) => {
    const target = net.now + us;
    net.run(target);
    if (net.wire.clock.now < target) net.wire.clock.now = target;
  };
  const write = { wrId: 1n, opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, rdma: { remoteAddr: 0n, rkey: 9 }, sgList: [mr.sge(0, 512)] };
  return { dev, cq, qp, qp2, ack, sentPsns, advance, write };
}

// softroce ud_pingpong: rdma-core 44's ibv_ud_pingpong (libibverbs/examples/ud_pingpong.c) on a
// softroce device bound to UDP: the QP is UD with Q_Key 0x11111111 (INIT), RTR and RTS need only
// the state and our PSN, each SEND goes through an address handle to the peer's QPN; receives are
// size + 40 bytes (the GRH comes first), sends start 40 bytes into the buffer; -s defaults to 2048
// and must fit the port's active MTU ("Requested size larger than port MTU").
import { GRH_SIZE, QpState, QpType, formatGid, type AddressHandle, type Device, type QueuePair } from "../core/verbs/index.js";
import { PingpongError, gidHasInterfaceId, type PingpongDest, type PingpongOptions } from "./pingpong.js";
import { pingpongCommand, type PingpongCtx, type PingpongTransport } from "./pingpong-run.js";

const QKEY = 0x11111111;

interface UdPeer {
  ah: AddressHandle;
  qpn: number;
}

/** pp_connect_ctx of ud_pingpong.c: RTR, RTS with our PSN, then the AH (hop limit 1) to the peer. */
function connectUd(ctx: PingpongCtx, qp: QueuePair, o: PingpongOptions, myPsn: number, rem: PingpongDest): void {
  try {
    qp.modify({ qpState: QpState.RTR });
  } catch (e) {
    throw new PingpongError(`Failed to modify QP to RTR: ${(e as Error).message}`);
  }
  try {
    qp.modify({ qpState: QpState.RTS, sqPsn: myPsn });
  } catch (e) {
    throw new PingpongError(`Failed to modify QP to RTS: ${(e as Error).message}`);
  }
  if (!gidHasInterfaceId(rem.gid)) throw new PingpongError("Failed to create AH (the peer sent no GID: RoCE needs one, run the peer with -g)");
  try {
    const ah = qp.pd.createAh({ grh: { dgid: formatGid(rem.gid), sgidIndex: o.gidIdx ?? 0, hopLimit: 1 }, portNum: o.ibPort, destPort: o.udpPort });
    ctx.peer = { ah, qpn: rem.qpn } satisfies UdPeer;
  } catch (e) {
    throw new PingpongError(`Failed to create AH: ${(e as Error).message}`);
  }
}

function preflight(dev: Device, o: PingpongOptions): void {
  const mtu = 1 << (dev.queryPort(o.ibPort).activeMtu + 7);
  if (o.size > mtu) throw new PingpongError(`Requested size larger than port MTU (${mtu})`);
}

export const UD_PINGPONG: PingpongTransport = {
  name: "ud_pingpong",
  summary: "rdma-core's ibv_ud_pingpong over a softroce device (server: no host; client: <host>)",
  about: `rdma-core's ibv_ud_pingpong on a softroce device: the device binds UDP at --address:--port,
the sides exchange "LID:QPN:PSN:GID" over TCP (-p, default 18515), then ping-pong -n UD SENDs of
-s bytes (default 2048; at most the port's active MTU, 1024 here) through an address handle, Q_Key
0x11111111; each receive buffer gets the 40-byte GRH first. A lost datagram stops the loop until
--timeout. Interoperates with ibv_ud_pingpong on Linux rxe (pass -g there; UDP port 4791).`,
  qpType: QpType.UD,
  recvExtra: GRH_SIZE,
  sendOffset: GRH_SIZE,
  defaultSize: 2048,
  // rdma-core's ud_pingpong has no -m: a UD message fits the port's active MTU
  dropFlags: ["mtu"],
  initAttr: { qkey: QKEY },
  preflight,
  connect: connectUd,
  sendWr(ctx: PingpongCtx) {
    const p = ctx.peer as UdPeer;
    return { ud: { ah: p.ah, remoteQpn: p.qpn, remoteQkey: QKEY } };
  },
};

export const udPingpongCommand = pingpongCommand(UD_PINGPONG);

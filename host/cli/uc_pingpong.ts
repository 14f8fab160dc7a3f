// softroce uc_pingpong: rdma-core 44's ibv_uc_pingpong (libibverbs/examples/uc_pingpong.c) on a
// softroce device bound to UDP: rc_pingpong's flags, exchange, output and loop over a UC QP, which
// is connected as RC is (RTR: path MTU, remote QPN and PSN, the AH; RTS: our PSN) but has no ACKs,
// so a send completes once its packets are out and a lost packet loses its message (the loop
// then waits, as ibv_uc_pingpong does).
import { connectQp, QpType, formatGid, type QueuePair } from "../core/verbs/index.js";
import { PingpongError, gidHasInterfaceId, type PingpongDest, type PingpongOptions } from "./pingpong.js";
import { pingpongCommand, type PingpongCtx, type PingpongTransport } from "./pingpong-run.js";

/** pp_connect_ctx of uc_pingpong.c: RTR (hop limit 1) then RTS. */
function connectUc(_ctx: PingpongCtx, qp: QueuePair, o: PingpongOptions, myPsn: number, rem: PingpongDest): void {
  if (!gidHasInterfaceId(rem.gid)) {
    throw new PingpongError("Failed to modify QP to RTR (the peer sent no GID: RoCE needs one, run the peer with -g)");
  }
  try {
    connectQp(qp, { qpNum: rem.qpn, psn: rem.psn, gid: formatGid(rem.gid), port: o.udpPort }, {
      sqPsn: myPsn, pathMtu: o.mtuEnum, qpAccessFlags: 0, sgidIndex: o.gidIdx ?? 0, hopLimit: 1,
    });
  } catch (e) {
    throw new PingpongError(`Failed to modify QP to RTR/RTS: ${(e as Error).message}`);
  }
}

export const UC_PINGPONG: PingpongTransport = {
  name: "uc_pingpong",
  summary: "rdma-core's ibv_uc_pingpong over a softroce device (server: no host; client: <host>)",
  about: `rdma-core's ibv_uc_pingpong on a softroce device: as rc_pingpong (the device binds UDP at
--address:--port, "LID:QPN:PSN:GID" over TCP on -p, default 18515), then ping-pong -n SENDs of
-s bytes over UC: no ACKs, a send completes once its packets are sent; a lost packet loses its
message (and the loop waits until --timeout). Interoperates with ibv_uc_pingpong on Linux rxe
(pass -g there; the UDP port must then be 4791).`,
  qpType: QpType.UC,
  connect: connectUc,
};

export const ucPingpongCommand = pingpongCommand(UC_PINGPONG);

// softroce rc_pingpong: rdma-core 44's ibv_rc_pingpong (libibverbs/examples/rc_pingpong.c) on a
// softroce device bound to UDP: the same flags, defaults, exchange, output and loop (one SEND in
// flight each way, rx_depth receives kept posted, the summary lines). Where a default cannot work
// on RoCE (-g unset) the local GID is GID 0, the bound address. The loop is pingpong-run.ts's;
// this file is what makes it RC.
import { connectQp, QpType, formatGid, type QueuePair } from "../core/verbs/index.js";
import { PingpongError, gidHasInterfaceId, type PingpongDest, type PingpongOptions } from "./pingpong.js";
import { pingpongCommand, type PingpongCtx, type PingpongTransport } from "./pingpong-run.js";

/** pp_connect_ctx: RTR then RTS with rc_pingpong's attributes (hop limit 1, timeout 14, retries 7). */
export function connectRc(_ctx: PingpongCtx, qp: QueuePair, o: PingpongOptions, myPsn: number, rem: PingpongDest): void {
  if (!gidHasInterfaceId(rem.gid)) {
    throw new PingpongError("Failed to modify QP to RTR (the peer sent no GID: RoCE needs one, run the peer with -g)");
  }
  try {
    connectQp(qp, { qpNum: rem.qpn, psn: rem.psn, gid: formatGid(rem.gid), port: o.udpPort }, {
      sqPsn: myPsn, pathMtu: o.mtuEnum, qpAccessFlags: 0, timeout: 14, retryCnt: 7, rnrRetry: 7, minRnrTimer: 12,
      maxRdAtomic: 1, maxDestRdAtomic: 1, sgidIndex: o.gidIdx ?? 0, hopLimit: 1,
    });
  } catch (e) {
    throw new PingpongError(`Failed to modify QP to RTR/RTS: ${(e as Error).message}`);
  }
}

export const RC_PINGPONG: PingpongTransport = {
  name: "rc_pingpong",
  summary: "rdma-core's ibv_rc_pingpong over a softroce device (server: no host; client: <host>)",
  about: `rdma-core's ibv_rc_pingpong on a softroce device: the device binds UDP at --address:--port (its
GID 0), the two sides exchange "LID:QPN:PSN:GID" over TCP (-p, default 18515; the server listens
on all IPv4 addresses), then ping-pong -n SENDs of -s bytes over RC. Prints the local and remote
address lines and rdma-core's two summary lines. Interoperates with ibv_rc_pingpong on Linux rxe
(pass -g there; the UDP port must then be 4791).`,
  qpType: QpType.RC,
  extraFlags: [{ name: "new_send", short: "N", type: "boolean", help: "use new post send WR API (the same post path here)" }],
  connect: connectRc,
};

export const rcPingpongCommand = pingpongCommand(RC_PINGPONG);

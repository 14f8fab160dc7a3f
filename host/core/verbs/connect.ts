// Connecting QPs the way rdma-core's pingpong examples and pyverbs tests do:
// RESET -> INIT -> RTR -> RTS with the attributes each QP type requires, from
// the peer's (QPN, PSN, GID) as exchanged out of band.
import type { QueuePair } from "./qp.js";
import { Mtu, QpState, QpType } from "./enums.js";
import { ROCE_V2_PORT } from "../net/datagram.js";

/** What one side tells the other out of band (rc_pingpong's "lid:qpn:psn:gid"). */
export interface QpEndpoint {
  qpNum: number;
  psn: number;
  /** GID text ("::ffff:127.0.0.2", "fe80::1") */
  gid: string;
  /** UDP port of the peer device (softroce extension, default 4791) */
  port?: number;
}

export interface ConnectOptions {
  /** our first send PSN */
  sqPsn: number;
  pathMtu?: number;
  qpAccessFlags?: number;
  /** RC: local ACK timeout exponent (4.096 µs × 2^timeout; rc_pingpong uses 14) */
  timeout?: number;
  retryCnt?: number;
  rnrRetry?: number;
  minRnrTimer?: number;
  maxRdAtomic?: number;
  maxDestRdAtomic?: number;
  /** UD: our Q_Key */
  qkey?: number;
  sgidIndex?: number;
  hopLimit?: number;
}

/** Moves `qp` from RESET to RTS, connected (RC/UC) to `remote`; UD ignores `remote`'s address. */
export function connectQp(qp: QueuePair, remote: QpEndpoint | undefined, o: ConnectOptions): void {
  const type = qp.qpType;
  if (type === QpType.UD) {
    qp.modify({ qpState: QpState.INIT, pkeyIndex: 0, portNum: 1, qkey: o.qkey ?? 0x11111111 });
    qp.modify({ qpState: QpState.RTR });
    qp.modify({ qpState: QpState.RTS, sqPsn: o.sqPsn });
    return;
  }
  if (!remote) throw new TypeError("connectQp: an RC or UC QP needs the remote endpoint");
  qp.modify({ qpState: QpState.INIT, pkeyIndex: 0, portNum: 1, qpAccessFlags: o.qpAccessFlags ?? 0 });
  const ahAttr = {
    grh: { dgid: remote.gid, sgidIndex: o.sgidIndex ?? 0, hopLimit: o.hopLimit ?? 64 },
    isGlobal: true,
    portNum: 1,
    destPort: remote.port ?? ROCE_V2_PORT,
  };
  if (type === QpType.RC) {
    qp.modify({
      qpState: QpState.RTR,
      pathMtu: o.pathMtu ?? Mtu.MTU_1024,
      destQpNum: remote.qpNum,
      rqPsn: remote.psn,
      maxDestRdAtomic: o.maxDestRdAtomic ?? 1,
      minRnrTimer: o.minRnrTimer ?? 12,
      ahAttr,
    });
    qp.modify({
      qpState: QpState.RTS,
      sqPsn: o.sqPsn,
      timeout: o.timeout ?? 14,
      retryCnt: o.retryCnt ?? 7,
      rnrRetry: o.rnrRetry ?? 7,
      maxRdAtomic: o.maxRdAtomic ?? 1,
    });
  } else {
    qp.modify({ qpState: QpState.RTR, pathMtu: o.pathMtu ?? Mtu.MTU_1024, destQpNum: remote.qpNum, rqPsn: remote.psn, ahAttr });
    qp.modify({ qpState: QpState.RTS, sqPsn: o.sqPsn });
  }
}

// softroce srq_pingpong: rdma-core 44's ibv_srq_pingpong (libibverbs/examples/srq_pingpong.c) on a
// softroce device bound to UDP: -q RC QPs (default 16) whose receives all come from one shared
// receive queue of rx_depth WQEs, each QP connected to its peer's as rc_pingpong connects its one;
// the exchange carries MAX_QP (256) address messages each way, those past -q all zero; the loop
// keeps one SEND in flight on every QP until -n sends and -n receives are done in all. The loop is
// pingpong-run.ts's; this file is what makes it srq_pingpong.
import { QpType } from "../core/verbs/index.js";
import { pingpongCommand, type PingpongTransport } from "./pingpong-run.js";
import { connectRc } from "./rc_pingpong.js";

/** srq_pingpong.c's MAX_QP: the exchange's message count; -q must stay below it. */
const MAX_QP = 256;
const DEFAULT_QPS = 16;

export const SRQ_PINGPONG: PingpongTransport = {
  name: "srq_pingpong",
  summary: "rdma-core's ibv_srq_pingpong over a softroce device: -q RC QPs sharing one SRQ (server: no host; client: <host>)",
  about: `rdma-core's ibv_srq_pingpong on a softroce device: -q RC QPs (default ${DEFAULT_QPS}) take their receives
from one SRQ of -r WQEs; the two sides exchange ${MAX_QP} "LID:QPN:PSN:GID" messages over TCP (-p, default
18515), then ping-pong SENDs of -s bytes on every QP until -n sends and -n receives are done in all.
Prints every QP's local and remote address line and rdma-core's two summary lines. Interoperates
with ibv_srq_pingpong on Linux rxe (pass -g there; the UDP port must then be 4791).`,
  qpType: QpType.RC,
  extraFlags: [{ name: "num-qp", short: "q", type: "int", min: 1, max: 1 << 16, default: DEFAULT_QPS, valueName: "num", help: "number of QPs to use" }],
  connect: connectRc,
  srq: { exchanged: MAX_QP },
};

export const srqPingpongCommand = pingpongCommand(SRQ_PINGPONG);

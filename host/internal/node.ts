// Everything, for the repository's own tests, benchmarks and system suites (bundled to
// dist/internal/node.js, which the package does not publish). Users import "softroce".
export * from "../core/index.js";
export { openDevice, openTunnelDevice, udpLinkOf, type NodeDeviceOptions, type NodeTunnelDeviceOptions } from "../node/index.js";
export {
  connectQpOverTcp, localEndpoint, jsonReplacer, remoteMr, remoteAddr, udpPortOf, ExchangeError, EXCHANGE_TCP_PORT,
  type TcpExchangeOptions, type TcpExchangeResult,
} from "../node/exchange.js";
export { UdpBindError, nodeGuidFor, activeMtuFor } from "../node/open-options.js";
export { coreModule } from "../node/wasm-source.js";
export { UdpLink, explainSendError, type UdpLinkOptions, type UdpSendError } from "../node/udp.js";
export { NativeUdpLink, txDescriptorLayout, RX_BATCH_LAYOUT, type NativeUdpLinkOptions } from "../node/native-link.js";
export { sockoptAddon, sockoptUnavailableReason } from "../node/sockopt.js";
export { SourcePortPool } from "../node/sport-pool.js";
export {
  openDatapath, datapathUnavailableReason, NativeDatapath, TX_RECORD, RX_RECORD, TX_GSO, TX_ICRC, RX_GRO, RX_TRUNCATED,
  RX_IP_ID_UNSEEN, type DatapathOptions, type ReceiveOptions, type BatchHandler, type TxLayout, type RxLayout,
  type DatapathInfo, type DatapathStats,
} from "../node/datapath.js";
export { workerStatsOf, workerDebugOf, WorkerPort, DEFAULT_SPIN_US, type WorkerStats, workerTraceOf, workerSessionOf, setWorkerAppSpin, TraceStage, TRACE_STAGE_NAMES, type TraceStamp, WorkerTrace } from "../core/worker/index.js";
export { Ring } from "../core/abi/index.js";

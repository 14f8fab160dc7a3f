// The package's public surface that runs on every platform: what docs/API.md documents, and
// nothing else. The Node entry (host/node/index.ts) and the browser entry (host/browser/index.ts)
// re-export this and add their openDevice / openTunnelDevice. Tests, benchmarks and system suites
// that need internals import host/internal/*.ts (bundled to dist/internal/, not published).
export {
  // the verbs (libibverbs with one naming rule)
  Device, openDeviceWith, VENDOR_ID, type OpenDeviceOptions, type DeviceAttr, type PortAttr,
  ProtectionDomain, MemoryRegion, CompletionQueue, type WorkCompletion, CompletionChannel,
  QueuePair, type QpInitAttr, type QpInitAttrOut, type QpAttr, type QpAttrOut, type QpCap, deriveMask,
  SharedReceiveQueue, type SrqAttr, type SrqInitAttr, AddressHandle, initAhFromWc, parseRecvGrh, GRH_SIZE, type RecvGrh, type AhAttr, type AhAttrOut, type GlobalRoute,
  type SendWr, type RecvWr, type Sge, type MwBindInfo, AsyncEvent, MemoryWindow, incRkey, VerbsError, Errno, parseGid, formatGid,
  Access, AtomicCap, DeviceCapFlags, EventType, LinkLayer, Mtu, PortState, QpAttrMask, QpState, QpType,
  ReregMrFlags, SendFlags, WcFlags, WcOpcode, WcStatus, WrOpcode, MigState, SrqAttrMask, MwType, FlushType, FlushLevel, nameOf, mtuBytes,
  connectQp, type QpEndpoint, type ConnectOptions,
  // the simulated wire (tests, teaching, the playground)
  SimNetwork, addressGid, SimWire, type SimFaults, type SimStats, type TraceRecord, type Fate,
  SimLink, simClock, simTracePcapng, type SimTraceOptions,
  type ScriptedFault,
  // the device's trace ring as events (the playground's per-QP rxe states)
  TraceReader, TRACE_NONE, type TraceEvent, type TraceCore, type TraceKindName,
  // packets: the codec, the decoder, captures
  WireCodec, OpMask, HEADER_NAMES, decodePacket, aethMeaning, type DecodedPacket, type PacketMeta, type ByteRange,
  ipPacket, PcapRecorder, type CapturedPacket, readCapture, type CaptureRecord, ROCE_V2_PORT,
  // connection management over QP1 (librdmacm's API, docs/API.md "Connection management")
  openRdmaCm, RdmaCm, RdmaCmId, RdmaCmState, McJoinFlag, RDMA_OPTION_ID, RDMA_OPTION_ID_TOS, RDMA_OPTION_ID_REUSEADDR, RDMA_OPTION_ID_AFONLY, RDMA_OPTION_ID_ACK_TIMEOUT, RdmaCmEventType, RdmaCmEvent, EventChannel, eventStr, RdmaCmError, Qp1Transport,
  type SockAddr, type ConnParam, type CmQpInitAttr, type RdmaCmOptions, type RdmaCmDeviceSpec, type Qp1TransportOptions,
  // the browser's device behind a gateway (docs/TUNNEL.md)
  type TunnelDevice, type TunnelLinkOptions,
} from "./core/index.js";
// `device.port` of a device opened with `worker: true` (docs/API.md, "The device in a worker")
export type { WorkerPort, WorkerPortStats, WorkerThreadCpu } from "./core/worker/index.js";

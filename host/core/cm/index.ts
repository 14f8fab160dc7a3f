// host/core/cm: connection management as Linux speaks it — MADs, the CM
// messages, ib_cm, and an API shaped like librdmacm's.
export * from "./mad.js";
export * from "./cm-msgs.js";
export * from "./cm-consts.js";
export * from "./cma-hdr.js";
export { RdmaCmError, Errno as CmErrno, errnoName, type CmErrnoName } from "./errno.js";
export { type MadAddress, type MadTransport } from "./mad-transport.js";
export { Qp1Transport, type Qp1TransportOptions, type Qp1Counters } from "./qp1-transport.js";
export { SimMadFabric, type SimMadFaults, type SimMadRecord, type SimMadFate, type SimMadDropRule } from "./sim-mad.js";
export { CommunicationManager, CmId, type CmOptions, type CmTraceRecord } from "./cm.js";
export type {
  CmHandler, IbCmEvent, PathRecord, CmReqParam, CmRepParam, CmSidrReqParam, CmSidrRepParam, ReqEventParam, RepEventParam,
} from "./cm-params.js";
export { ahAttrOf, type CmAv } from "./cm-av.js";
export {
  RdmaCmEventType, RdmaCmEvent, EventChannel, CmEventRouter, eventStr, type ConnEventParam, type UdEventParam,
} from "./rdma-cm-event.js";
export {
  openRdmaCm, RdmaCm, RdmaCmId, RdmaCmState, RDMA_CM_STATE_NAMES, RDMA_MAX_RESP_RES, RDMA_MAX_INIT_DEPTH,
  CMA_CM_RESPONSE_TIMEOUT, CMA_MAX_CM_RETRIES, CMA_CM_MRA_SETTING, CMA_IBOE_PACKET_LIFETIME, McJoinFlag, RDMA_OPTION_ID, RDMA_OPTION_ID_TOS, RDMA_OPTION_ID_REUSEADDR, RDMA_OPTION_ID_AFONLY, RDMA_OPTION_ID_ACK_TIMEOUT,
  type SockAddr, type ConnParam, type CmQpInitAttr, type RdmaCmOptions, type RdmaCmDeviceSpec,
} from "./rdma-cm.js";

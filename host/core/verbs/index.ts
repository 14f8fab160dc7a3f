// The verbs API (libibverbs, one name rule: ibv_foo_bar -> fooBar, IBV_X_Y -> X.Y).
export { Device, openDeviceWith, VENDOR_ID, DEFAULT_MAX_CQE, NUM_COMP_VECTORS, type OpenDeviceOptions, type DeviceAttr, type PortAttr } from "./device.js";
export { ProtectionDomain } from "./pd.js";
export { MemoryRegion } from "./mr.js";
export { MemoryWindow, incRkey } from "./mw.js";
export { CompletionQueue, type WorkCompletion } from "./cq.js";
export { CompletionChannel } from "./channel.js";
export { QueuePair, type QpInitAttr, type QpInitAttrOut } from "./qp.js";
export { type QpAttr, type QpAttrOut, type QpCap, deriveMask } from "./qp-attr.js";
export { SharedReceiveQueue, type SrqAttr, type SrqInitAttr } from "./srq.js";
export { AddressHandle, initAhFromWc, parseRecvGrh, GRH_SIZE, type RecvGrh } from "./ah.js";
export { type AhAttr, type AhAttrOut, type GlobalRoute } from "./av.js";
export { type SendWr, type RecvWr, type Sge, type MwBindInfo } from "./post.js";
export { AsyncEvent } from "./events.js";
export { VerbsError, Errno, errnoName, type ErrnoName } from "./errors.js";
export { parseGid, formatGid } from "../net/gid.js";
export * from "./enums.js";
export { connectQp, localEndpoint, randomPsn, type QpEndpoint, type ConnectOptions } from "./connect.js";

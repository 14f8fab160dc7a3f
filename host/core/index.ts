// host/core: everything that runs on any platform.
export { instantiateCore, CoreAbort, type CoreExports } from "./wasm.js";
export * from "./wire.js";
export * from "./addr.js";
export * from "./pcap.js";
export { extractIp, notRoce, ROCE_PORT, type Extracted } from "./ip-extract.js";
export * from "./decode.js";
export { parseHex, toHex, HexError } from "./hex.js";
export * from "./verbs/index.js";
export { SimNetwork, addressGid } from "./testbed.js";
export { connectQp, type QpEndpoint, type ConnectOptions } from "./connect.js";
export * from "./perf/index.js";

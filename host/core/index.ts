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
export { SimWire, type SimFaults, type SimStats, type TraceRecord, type Fate } from "./simwire.js";
export { SimClock } from "./sim-clock.js";
export { SimLink, simClock } from "./sim-link.js";
export { PacketPort, gidToAddress, type Clock, type Link, type OutgoingDatagram } from "./port.js";
export { realClock } from "./real-clock.js";
export { type Datagram, ROCE_V2_PORT } from "./datagram.js";
export { Prng } from "./prng.js";

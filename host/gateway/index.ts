// softroce/gateway: the WebSocket-to-UDP gateway for browser devices (docs/TUNNEL.md).
export { Gateway, type GatewayOptions, type GatewayCounters, type LogRecord, type RefusalReason } from "./gateway.js";
export { AddressPolicy, parseCidr, SPECIAL_RANGES } from "./address-policy.js";
export { RoceShape } from "./roce-shape.js";

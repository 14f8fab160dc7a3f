// host/core/tunnel: the WebSocket tunnel to a gateway — frames, the link, a device on it.
export * from "./frames.js";
export * from "./link.js";
export * from "./device.js";

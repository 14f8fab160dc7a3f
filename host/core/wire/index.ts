// host/core/wire: packets as the core parses and emits them (WireCodec), decoded for people, hex input.
export * from "./codec.js";
export * from "./decode.js";
export * from "./aeth.js";
export * from "./hex.js";

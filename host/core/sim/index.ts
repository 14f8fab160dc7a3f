// host/core/sim: the simulated wire, its virtual clock, the link onto it, networks of devices, its trace.
export * from "./wire.js";
export * from "./clock.js";
export * from "./link.js";
export * from "./inbox.js";
export * from "./network.js";
export * from "./prng.js";
export * from "./trace.js";
export * from "./linux-ipid.js";

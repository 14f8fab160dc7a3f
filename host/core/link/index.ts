// host/core/link: the packet port between a device's rings and a link, and the real clock.
export * from "./port.js";
export { realClock } from "./real-clock.js";

// The device's notion of "now": set by every entry point from the time the
// host passes in (µs). The core never reads a clock of its own.

export let nowUs: f64 = 0;

export function setNow(t: f64): void {
  // Time never runs backwards inside the device, whatever the host passes.
  if (t > nowUs) nowUs = t;
}

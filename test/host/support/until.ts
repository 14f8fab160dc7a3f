// Waiting in tests on something asynchronous (a socket's datagram, a counter, a child's line):
// `until(cond)` polls `cond` every 5 ms and throws, naming `what`, once `ms` have passed.
export async function until(cond: () => boolean, ms = 3000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

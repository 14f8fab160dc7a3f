/**
 * When a perftest exchange's wait gives up: the peer counts as gone once `ms` pass in which nothing
 * moved — neither what the wait waits for nor the device's packet counters (the peer's test running,
 * which a wait may have to sit out). perftest itself blocks for ever on a peer that is gone; a tool
 * run by scripts and tests must end.
 *
 * The one home of that rule for the exchanges' reads (the TCP exchange's ExactReader, the rdma_cm
 * exchange's receive). The test's own waits use the same ReadStall but watch it with one interval
 * over the whole test (perftest-exchange.ts's StallGuard): a timer per completion would sit on the
 * measured path.
 */

export interface ReadStall {
  ms: number;
  /** a figure that moves while the peer is alive (the device's packet counters) */
  progress(): number;
}

/**
 * `p`'s value, or `fail()` thrown once stall.ms pass with the progress figure where it stood at the
 * start of that span (each span that saw progress starts a new one). The figure is `progress()` when
 * given (the wait's own progress added to the device's), else stall.progress(). Without a stall, `p`.
 */
export async function unstalled<T>(p: Promise<T>, stall: ReadStall | undefined, fail: () => Error, progress?: () => number): Promise<T> {
  if (!stall) return p;
  const moved = progress ?? (() => stall.progress());
  // once: a wait that gave up leaves p behind, and the races that took it hear its failure
  const won = p.then((v) => ({ v }));
  let mark = moved();
  for (;;) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const out = await Promise.race([won, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), stall.ms)))]);
      if (out) return out.v;
    } finally {
      clearTimeout(timer);
    }
    const now = moved();
    if (now === mark) throw fail();
    mark = now;
  }
}

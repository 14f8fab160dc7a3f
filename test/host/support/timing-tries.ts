// A timing measurement, tried again on a busy machine. A busy-poll window catches its datagram only
// when the threads it waits for get a CPU within the window; beside other jobs on two vCPUs a whole
// run of windows can miss. A test that asserts what the windows caught runs the measuring phase up
// to `tries` times and takes the first run that shows the behaviour; when none does, it fails with
// every run's figures. A broken rule fails every try (a closed gate catches nothing, whatever the
// load), so the test still fails where the code is wrong.

/**
 * Runs `measure` until `good` accepts its result, at most `tries` times; returns that result. Throws
 * with each run's result (as JSON) when no run was good. `what` names the phase in that message.
 */
export async function firstGoodRun<T>(what: string, tries: number, measure: () => Promise<T>, good: (r: T) => boolean): Promise<T> {
  const runs: T[] = [];
  for (let i = 0; i < tries; i++) {
    const r = await measure();
    if (good(r)) return r;
    runs.push(r);
  }
  throw new Error(`${what}: no good run in ${tries} (the machine too busy for these windows, or the rule broken): ${JSON.stringify(runs)}`);
}

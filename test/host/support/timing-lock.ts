// One timing-sensitive test file at a time. The busy-poll suites measure whether a poll window caught
// its datagram before the window ran out; two of them at once on a 2-vCPU machine (vitest runs files
// in parallel) make each other's yields come back late, and the windows they count as hits then miss.
// A file calls holdTimingLock() at its top: the lock is taken in beforeAll and given back in afterAll;
// it is an atomic mkdir in the system's temporary directory, holding the owner's pid, so that a lock
// whose owner died is taken over.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll } from "vitest";

const LOCK = path.join(tmpdir(), "softroce-timing-tests.lock");
const OWNER = path.join(LOCK, "pid");
/** How long a file waits for the lock (ms) before it runs anyway, saying so. */
const WAIT_MS = 120_000;
const POLL_MS = 50;

function ownerAlive(): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(OWNER, "utf8"));
  } catch {
    return true; // the owner is between its mkdir and its pid: alive
  }
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Waits for the lock (bounded); returns the function that gives it back. */
async function takeTimingLock(): Promise<() => void> {
  const until = Date.now() + WAIT_MS;
  for (;;) {
    try {
      mkdirSync(LOCK);
      writeFileSync(OWNER, String(process.pid));
      return () => rmSync(LOCK, { recursive: true, force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    if (!ownerAlive()) {
      rmSync(LOCK, { recursive: true, force: true });
      continue;
    }
    if (Date.now() >= until) {
      console.warn(`timing lock ${LOCK}: still held after ${WAIT_MS} ms; running without it`);
      return () => {};
    }
    await sleep(POLL_MS);
  }
}

/** This test file runs holding the lock: taken before its first test, given back after its last. */
export function holdTimingLock(): void {
  let unlock: () => void = () => {};
  beforeAll(async () => {
    unlock = await takeTimingLock();
  }, WAIT_MS + 30_000);
  afterAll(() => unlock());
}

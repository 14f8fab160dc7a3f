// Device counters: one enum and one name table (as rxe_hw_counters.h), kept in
// one block of u64 the host reads directly (device.queryCounters()).
import { Counter } from "../abi/counters";

// ABI constants: generated from abi/schema.json into assembly/abi/counters.ts; re-exported for this file's importers.
export { Counter, COUNTER_NAMES } from "../abi/counters";

export const counterBlock: usize = memory.data(8 * 32);

@inline export function count(c: Counter, n: u64 = 1): void {
  const p = counterBlock + (<usize>c << 3);
  store<u64>(p, load<u64>(p) + n);
}

@inline export function counterValue(c: Counter): u64 { return load<u64>(counterBlock + (<usize>c << 3)); }

export function countersReset(): void { memory.fill(counterBlock, 0, 8 * 32); }

// Host side of a work ring: the host is the only producer of SQ/RQ/SRQ rings.
// Writes the slots, then publishes the producer index once for the batch.
import { Ring } from "./abi.js";
import { VerbsError, Errno, type ErrnoName } from "./errors.js";
import type { DeviceMemory } from "./memory.js";

/**
 * Posts `items` in order. Stops at the first one that fails its check or finds
 * the ring full (ENOMEM), like ibv_post_send's bad_wr: the ones before it stay
 * posted. Returns how many were posted and the error for the rest, if any.
 */
export function postToRing<T>(
  m: DeviceMemory,
  ring: number,
  verb: string,
  items: T[],
  checkOne: (wr: T) => [ErrnoName, string] | undefined,
  write: (slot: number, wr: T) => void,
): { posted: number; error?: VerbsError } {
  const cap = m.u32(ring + Ring.CAP);
  const slotSize = m.u32(ring + Ring.SLOT);
  const cons = m.loadIndex(ring + Ring.CONS);
  let prod = m.loadIndex(ring + Ring.PROD);
  let error: VerbsError | undefined;
  let i = 0;
  for (; i < items.length; i++) {
    const bad = checkOne(items[i]!);
    if (!bad && ((prod - cons) >>> 0) >= cap) {
      error = new VerbsError(verb, Errno.ENOMEM, "queue full");
    } else if (bad) {
      error = new VerbsError(verb, Errno[bad[0]], bad[1]);
    }
    if (error) {
      error.badWr = i;
      break;
    }
    write(ring + Ring.DATA + (prod & (cap - 1)) * slotSize, items[i]!);
    prod = (prod + 1) >>> 0;
  }
  if (i > 0) m.storeIndex(ring + Ring.PROD, prod);
  return { posted: i, error };
}

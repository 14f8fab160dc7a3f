// What a failing CM call throws: the errno Linux's ib_cm / rdma_cm / librdmacm
// return for the same call, by name and number, and the C function's name first
// in the message — the shape of VerbsError; the numbers are verbs/errors.ts's.
import { Errno, ErrnoError, errnoName } from "../verbs/errors.js";

export { Errno, errnoName };
export type CmErrnoName = keyof typeof Errno;

export class RdmaCmError extends ErrnoError {
  override name = "RdmaCmError";
}

export function cmFail(verb: string, code: CmErrnoName, detail?: string): never {
  throw new RdmaCmError(verb, Errno[code], detail);
}

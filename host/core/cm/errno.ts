// What a failing CM call throws: the errno Linux's ib_cm / rdma_cm / librdmacm
// return for the same call, by name and number, and the C function's name first
// in the message — the shape of VerbsError; the numbers are verbs/errors.ts's.
import { Errno, errnoName } from "../verbs/errors.js";

export { Errno, errnoName };
export type CmErrnoName = keyof typeof Errno;

export class RdmaCmError extends Error {
  override name = "RdmaCmError";
  /** errno name, e.g. 'EINVAL' */
  readonly code: string;
  /** errno number, e.g. 22 */
  readonly errno: number;
  /** the C function that failed, e.g. 'rdma_connect' or 'ib_send_cm_rep' */
  readonly verb: string;

  constructor(verb: string, errno: number, detail?: string) {
    const code = errnoName(errno);
    super(`${verb}: ${code}${detail ? ` (${detail})` : ""}`);
    this.code = code;
    this.errno = Math.abs(errno);
    this.verb = verb;
  }
}

export function cmFail(verb: string, code: CmErrnoName, detail?: string): never {
  throw new RdmaCmError(verb, Errno[code], detail);
}

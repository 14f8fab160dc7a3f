// What a failing CM call throws: the errno Linux's ib_cm / rdma_cm / librdmacm
// return for the same call, by name and number, and the C function's name first
// in the message — the shape of VerbsError, with the socket errnos the CM adds.
import { Errno as VerbsErrno } from "../verbs/errors.js";

/** Linux errno values the CM uses on top of the verbs' (asm-generic/errno*.h). */
export const Errno = {
  ...VerbsErrno,
  EACCES: 13,
  ENODEV: 19,
  EPROTONOSUPPORT: 93,
  EAFNOSUPPORT: 97,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ECONNABORTED: 103,
  EISCONN: 106,
  ETIMEDOUT: 110,
  ECONNREFUSED: 111,
  EHOSTUNREACH: 113,
} as const;
export type CmErrnoName = keyof typeof Errno;

const NAMES = new Map<number, string>(Object.entries(Errno).map(([k, v]) => [v, k]));

export function errnoName(errno: number): string {
  return NAMES.get(Math.abs(errno)) ?? `E${Math.abs(errno)}`;
}

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

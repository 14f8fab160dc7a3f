// VerbsError: what a failing verb throws — the errno name and number a real
// rxe device with rdma-core would give, and the verb's name in the message.

/** Linux errno numbers (asm-generic/errno-base.h, errno.h): the verbs' and the CM's (socket errors). */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  ENODEV: 19,
  EINVAL: 22,
  ENOSPC: 28,
  ENOSYS: 38,
  ENODATA: 61,
  EPROTONOSUPPORT: 93,
  EOPNOTSUPP: 95,
  EAFNOSUPPORT: 97,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ECONNABORTED: 103,
  ECONNRESET: 104,
  EISCONN: 106,
  ENOTCONN: 107,
  ETIMEDOUT: 110,
  ECONNREFUSED: 111,
  EHOSTUNREACH: 113,
  /** the kernel's internal "operation not supported" (include/linux/errno.h), which rdma_cm lets reach user space */
  ENOTSUPP: 524,
} as const;
const ERRNO_NAMES: Record<number, string> = Object.fromEntries(Object.entries(Errno).map(([k, v]) => [v, k]));

/** The errno name of a number (either sign), `E<n>` for one not listed. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES[Math.abs(errno)] ?? `E${Math.abs(errno)}`;
}
export type ErrnoName = keyof typeof Errno;

/**
 * An error that carries an errno (its name and number) and names the C function that failed first
 * in its message, "ibv_create_qp: EINVAL (detail)": VerbsError here, RdmaCmError for the CM.
 */
export class ErrnoError extends Error {
  /** errno name, e.g. 'EINVAL' */
  readonly code: string;
  /** errno number, e.g. 22 */
  readonly errno: number;
  /** the function that failed, e.g. 'ibv_create_qp' or 'rdma_connect' */
  readonly verb: string;

  constructor(verb: string, errno: number, detail?: string) {
    const code = errnoName(errno);
    super(`${verb}: ${code}${detail ? ` (${detail})` : ""}`);
    this.code = code;
    this.errno = Math.abs(errno);
    this.verb = verb;
  }
}

export class VerbsError extends ErrnoError {
  override name = "VerbsError";
  /** for post verbs: index of the first work request not posted (ibverbs' bad_wr) */
  badWr?: number;
}

export function fail(verb: string, code: ErrnoName, detail?: string): never {
  throw new VerbsError(verb, Errno[code], detail);
}

/** Turns a device return value (handle or -errno) into a handle or a thrown VerbsError. */
export function check(verb: string, rc: number, detail?: string): number {
  if (rc < 0) throw new VerbsError(verb, -rc, detail);
  return rc;
}

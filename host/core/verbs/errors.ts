// VerbsError: what a failing verb throws — the errno name and number a real
// rxe device with rdma-core would give, and the verb's name in the message.

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  11: "EAGAIN",
  12: "ENOMEM",
  14: "EFAULT",
  16: "EBUSY",
  22: "EINVAL",
  28: "ENOSPC",
  38: "ENOSYS",
  61: "ENODATA",
  95: "EOPNOTSUPP",
};

export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EAGAIN: 11,
  ENOMEM: 12,
  EFAULT: 14,
  EBUSY: 16,
  EINVAL: 22,
  ENOSPC: 28,
  ENOSYS: 38,
  ENODATA: 61,
  EOPNOTSUPP: 95,
} as const;
export type ErrnoName = keyof typeof Errno;

export class VerbsError extends Error {
  override name = "VerbsError";
  /** errno name, e.g. 'EINVAL' */
  readonly code: string;
  /** errno number, e.g. 22 */
  readonly errno: number;
  /** the verb that failed, e.g. 'ibv_create_qp' */
  readonly verb: string;
  /** for post verbs: index of the first work request not posted (ibverbs' bad_wr) */
  badWr?: number;

  constructor(verb: string, errno: number, detail?: string) {
    const code = ERRNO_NAMES[errno] ?? `E${errno}`;
    super(`${verb}: ${code}${detail ? ` (${detail})` : ""}`);
    this.code = code;
    this.errno = errno;
    this.verb = verb;
  }
}

export function fail(verb: string, code: ErrnoName, detail?: string): never {
  throw new VerbsError(verb, Errno[code], detail);
}

/** Turns a device return value (handle or -errno) into a handle or a thrown VerbsError. */
export function check(verb: string, rc: number, detail?: string): number {
  if (rc < 0) throw new VerbsError(verb, -rc, detail);
  return rc;
}

// Linux errno numbers: device calls return -errno, the host maps them to names.
export const EPERM: i32 = 1;
export const ENOENT: i32 = 2;
export const EAGAIN: i32 = 11;
export const ENOMEM: i32 = 12;
export const EFAULT: i32 = 14;
export const EBUSY: i32 = 16;
export const EINVAL: i32 = 22;
export const ENOSPC: i32 = 28;
export const ENOSYS: i32 = 38;
export const EOPNOTSUPP: i32 = 95;

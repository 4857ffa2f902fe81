// struct timespec fields from a nanosecond timeout, as qemu_poll_ns() and
// fdmon_io_uring_wait() build them: tv_nsec is the remainder, always in
// [0, 1e9), whatever cap applies to tv_sec. (Deriving it as "ns minus the
// capped seconds" made ppoll fail with EINVAL for timeouts past 2^31 s.)

const NS_PER_S = 1e9;

/** INT32_MAX: the tv_sec cap of ppoll timeouts (QEMU's qemu_poll_ns). */
export const TIMESPEC_SEC_MAX_PPOLL = 0x7fffffff;

/** tv_sec of a timeout of `ns` ≥ 0 nanoseconds, capped at `maxSec`. */
export function timespecSec(ns: number, maxSec: number): number {
  const sec = Math.floor(ns / NS_PER_S);
  return sec < maxSec ? sec : maxSec;
}

/** tv_nsec of a timeout of `ns` ≥ 0 nanoseconds: the sub-second remainder. */
export function timespecNsec(ns: number): number {
  // % is exact on doubles; the floor drops a fraction of a nanosecond.
  const r = Math.floor(ns % NS_PER_S);
  return r > 0 ? r : 0;
}

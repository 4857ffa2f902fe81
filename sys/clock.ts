/**
 * Clock reading through clock_gettime(2), in nanoseconds as a number.
 *
 * Thread: any isolate.
 *
 * @module
 */
import { errno, libc } from "./_libc.ts";
import { SysError } from "./errno.ts";

/** `CLOCK_REALTIME`. */
export const CLOCK_REALTIME = 0;
/** `CLOCK_MONOTONIC`. */
export const CLOCK_MONOTONIC = 1;

// struct timespec read through 32-bit halves: a BigInt64Array read would
// allocate a BigInt per call, and adaptive polling reads the clock in a loop.
const tsBuf = new Uint8Array(16);
const ts32 = new Uint32Array(tsBuf.buffer);

/**
 * Reads a POSIX clock in nanoseconds. The value is a number: exact up to
 * 2^53 ns (104 days of uptime for CLOCK_MONOTONIC), a few ns coarse after.
 *
 * Counterpart: clock_gettime(2); QEMU's `get_clock()` for CLOCK_MONOTONIC.
 *
 * @param clockId `CLOCK_MONOTONIC` (default) or `CLOCK_REALTIME`.
 * @returns The clock's value in ns.
 *
 * @example Timing something
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { clockGettimeNs } from "@aioloop/aioloop/sys";
 * const t0 = clockGettimeNs();
 * assertEquals(clockGettimeNs() >= t0, true);
 * ```
 */
export function clockGettimeNs(clockId: number = CLOCK_MONOTONIC): number {
  if (libc().clock_gettime(clockId, tsBuf) < 0) throw new SysError(errno(), "clock_gettime");
  // Little-endian: tv_sec = lo + hi * 2^32; tv_nsec < 1e9 fits the low word.
  return (ts32[0] + ts32[1] * 4294967296) * 1e9 + ts32[2];
}

/**
 * The monotonic clock in microseconds, as GLib reads it.
 *
 * @module
 */
import { clockGettimeNs } from "../sys/clock.ts";

/**
 * The monotonic clock (CLOCK_MONOTONIC) in microseconds. Ready times
 * ({@linkcode GSource.prototype.setReadyTime}) and timeouts are on this clock.
 *
 * Counterpart: `g_get_monotonic_time()`.
 *
 * Thread: any thread.
 *
 * @returns The monotonic time in µs.
 *
 * @example Making a source ready in 10 ms
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { getMonotonicTime, GSource } from "@aioloop/aioloop/glib";
 * const s = new GSource({ dispatch: () => false });
 * const at = getMonotonicTime() + 10_000;
 * s.setReadyTime(at);
 * assertEquals(s.getReadyTime(), at);
 * ```
 */
export function getMonotonicTime(): number {
  return Math.floor(clockGettimeNs() / 1000);
}

// The calling thread's timer slack (prctl PR_SET_TIMERSLACK): how much
// later than asked the kernel may end a timed sleep (poll/ppoll timeouts,
// nanosleep) so that it can batch wake-ups. The default is 50 us, which is
// most of a 1 ms timer's lateness; QEMU sets 1 ns when it sets up its
// clocks. Per thread: it affects only the thread that sets it.
import { errno, libc } from "./_libc.ts";
import { SysError } from "./errno.ts";

const PR_SET_TIMERSLACK = 29;
const PR_GET_TIMERSLACK = 30;

/** The calling thread's timer slack in ns (`prctl(PR_GET_TIMERSLACK)`). */
export function getTimerSlackNs(): number {
  const r = libc().prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
  if (r < 0) throw new SysError(errno(), "prctl");
  return r;
}

/**
 * Sets the calling thread's timer slack to `ns` (at least 1: 0 would mean
 * "back to the thread's default").
 */
export function setTimerSlackNs(ns: number): void {
  if (!Number.isInteger(ns) || ns < 1 || ns > 0xffffffff) {
    throw new RangeError(`Timer slack must be an integer from 1 to 2^32-1 ns, got ${ns}`);
  }
  if (libc().prctl(PR_SET_TIMERSLACK, ns, 0, 0, 0) < 0) throw new SysError(errno(), "prctl");
}

// The main loop's one parked wait: poll(2) as a `nonblocking: true` FFI
// call, which Deno runs on its blocking pool while the isolate's own event
// loop keeps turning (fetch, timers, signal listeners). That pool has 32
// threads shared with file I/O (docs/deno_constraints.md), so an isolate never
// has more than one such wait in flight; the counters below let the tests
// check it.
import { errno, libc } from "./_libc.ts";
import { SysError } from "./errno.ts";
import { TIMESPEC_SEC_MAX_PPOLL, timespecNsec, timespecSec } from "./_timespec.ts";
import type { PollFdArray } from "./poll.ts";

const EINTR = 4;

/** Counters of the parked waits of this isolate. */
export const asyncWaitStats: {
  /** Parked waits started. */
  calls: number;
  /** Parked waits in flight now (0 or 1). */
  inFlight: number;
  /** The most ever in flight at once. */
  maxInFlight: number;
} = { calls: 0, inFlight: 0, maxInFlight: 0 };

/** Whether a parked wait is in flight. */
export function asyncWaitParked(): boolean {
  return asyncWaitStats.inFlight !== 0;
}

// The timespec of the parked ppoll: read by the pool thread, so it is
// written only while no wait is in flight.
const tspec = new BigInt64Array(2);

/**
 * ppoll(2) over `fds` on Deno's blocking pool, with a nanosecond timeout
 * (negative: forever), as `qemu_poll_ns` does. Returns the ready count
 * (revents are in `fds`), or the error: errno is set on the pool thread and
 * lost here (docs/deno_constraints.md), so a failed call is repeated synchronously with timeout 0,
 * whose errno is readable. EINTR counts as "nothing ready". `fds` must not
 * change until it settles.
 */
export async function pollParked(fds: PollFdArray, timeoutNs: number): Promise<number | SysError> {
  if (asyncWaitStats.inFlight !== 0) {
    throw new Error("A parked main-loop wait is already in flight");
  }
  const c = libc();
  const st = asyncWaitStats;
  st.calls++;
  st.inFlight++;
  if (st.inFlight > st.maxInFlight) st.maxInFlight = st.inFlight;
  let r: number;
  try {
    if (timeoutNs <= 0) {
      r = await c.poll_nb(fds.buffer, fds.length, timeoutNs < 0 ? -1 : 0);
    } else {
      // Seconds capped as QEMU caps them (INT32_MAX); the nanoseconds are
      // the remainder either way.
      tspec[0] = BigInt(timespecSec(timeoutNs, TIMESPEC_SEC_MAX_PPOLL));
      tspec[1] = BigInt(timespecNsec(timeoutNs));
      r = await c.ppoll_nb(fds.buffer, fds.length, tspec, null);
    }
  } finally {
    st.inFlight--;
  }
  if (r >= 0) return r;
  r = c.poll(fds.buffer, fds.length, 0);
  if (r >= 0) return r;
  const e = errno();
  return e === EINTR ? 0 : new SysError(e, "poll");
}

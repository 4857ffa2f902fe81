// The main loop's one parked wait: poll(2) as a `nonblocking: true` FFI
// call, which Deno runs on its blocking pool while the isolate's own event
// loop keeps turning (fetch, timers, signal listeners). That pool has 32
// threads shared with file I/O (docs/deno_constraints.md), so an isolate never
// has more than one such wait in flight; the counters below let the tests
// check it.
import { errno, libc } from "./_libc.ts";
import { SysError } from "./errno.ts";
import { TIMESPEC_SEC_MAX_PPOLL, timespecNsec, timespecSec } from "./_timespec.ts";
import { type PollFdArray, POLLIN } from "./poll.ts";

const EINTR = 4;

/** Counters of the parked waits of this isolate. */
export const asyncWaitStats: {
  /** Parked waits started. */
  calls: number;
  /** Parked waits in flight now (0 or 1). */
  inFlight: number;
  /** The most ever in flight at once. */
  maxInFlight: number;
  /**
   * The latest hop of a timed wait: from its timerfd ringing to this
   * isolate resuming, ns (see pollParkedUntil).
   */
  lastHopNs: number;
} = { calls: 0, inFlight: 0, maxInFlight: 0, lastHopNs: 0 };

/**
 * Called after each parked wait with its timeout and how long it stayed
 * parked (ns), for benches that find out where a wait's time goes: a
 * zero-timeout wait that stays parked long was queued behind other work of
 * the isolate's event loop.
 */
let parkObserver: ((timeoutNs: number, parkedNs: number) => void) | null = null;

/** Installs (or with null removes) the parked-wait observer. */
export function setParkObserver(fn: ((timeoutNs: number, parkedNs: number) => void) | null): void {
  parkObserver = fn;
}

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
  const t0 = parkObserver === null ? 0 : monotonicNs();
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
  if (parkObserver !== null) parkObserver(timeoutNs, monotonicNs() - t0);
  if (r >= 0) return r;
  r = c.poll(fds.buffer, fds.length, 0);
  if (r >= 0) return r;
  const e = errno();
  return e === EINTR ? 0 : new SysError(e, "poll");
}

// --- A parked wait that ends on time ---------------------------------------
//
// A parked wait's timeout elapses on a pool thread, whose timer slack is
// the kernel's default (50 us) and which this isolate cannot change, and
// the completion then has to hop back to the isolate's thread (tens of us
// when idle). So a timed parked wait polls a timerfd instead (timerfd
// expiries get no slack) armed one hop before the deadline, and the
// isolate's thread, whose slack the main loop sets to 1 ns, does the rest
// in a short synchronous ppoll(2) up to the exact deadline.

const TFD_NONBLOCK = 0o4000;
const TFD_CLOEXEC = 0o2000000;
const TFD_TIMER_ABSTIME = 1;
const CLOCK_MONOTONIC = 1;
/** How early the timerfd rings: the estimated hop, bounded both ways. */
const MARGIN_MIN_NS = 50_000;
const MARGIN_MAX_NS = 500_000;

/** struct itimerspec: it_interval (0: one-shot), then it_value. */
const itspec = new BigInt64Array(4);
const scratch8 = new Uint8Array(8);
/** A running average of the hop (timerfd expiry to the isolate resuming). */
let hopNs = 40_000;

/** How early a timed parked wait rings now, ns (for the tests and benches). */
export function parkedWaitMarginNs(): number {
  return Math.min(MARGIN_MAX_NS, Math.max(MARGIN_MIN_NS, Math.round(2 * hopNs)));
}

/** A timerfd for {@linkcode pollParkedUntil} (nonblocking, close-on-exec). */
export function parkTimerCreate(): number {
  const fd = libc().timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (fd < 0) throw new SysError(errno(), "timerfd_create");
  return fd;
}

const tspecNow = new BigInt64Array(2);
function monotonicNs(): number {
  libc().clock_gettime(CLOCK_MONOTONIC, tspecNow);
  return Number(tspecNow[0]) * 1e9 + Number(tspecNow[1]);
}

function syncPoll(fds: PollFdArray, ns: number): number | SysError {
  const c = libc();
  let r: number;
  if (ns <= 0) {
    r = c.poll(fds.buffer, fds.length, 0);
  } else {
    tspec[0] = BigInt(timespecSec(ns, TIMESPEC_SEC_MAX_PPOLL));
    tspec[1] = BigInt(timespecNsec(ns));
    r = c.ppoll(fds.buffer, fds.length, tspec, null);
  }
  if (r >= 0) return r;
  const e = errno();
  return e === EINTR ? 0 : new SysError(e, ns > 0 ? "ppoll" : "poll");
}

/**
 * {@linkcode pollParked} that ends close to its deadline: a finite timeout
 * parks on `timer` (a {@linkcode parkTimerCreate} timerfd, appended to
 * `fds`) armed one estimated hop early, then waits out the rest in a
 * synchronous ppoll(2) on the calling thread; a timeout shorter than that
 * hop parks with timeout 0 (one turn of Deno's loop) before that
 * synchronous rest. No timeout, a zero timeout or a
 * negative `timer` is a plain parked wait. Returns the ready count of the
 * caller's fds (the timer's entry, if any, is last and not counted).
 * `deadlineNs` is the same timeout as a CLOCK_MONOTONIC time (taken when
 * the timeout was computed), or -1 to count from now.
 */
export async function pollParkedUntil(
  fds: PollFdArray,
  timeoutNs: number,
  deadlineNs: number,
  timer: number,
): Promise<number | SysError> {
  if (timeoutNs <= 0 || timer < 0) return await pollParked(fds, timeoutNs);
  const margin = parkedWaitMarginNs();
  const c = libc();
  const deadline = deadlineNs > 0 ? deadlineNs : monotonicNs() + timeoutNs;
  if (timeoutNs <= margin) {
    // Shorter than the hop: let Deno's loop turn once, then wait out the rest.
    const r = await pollParked(fds, 0);
    if (typeof r !== "number" || r > 0) return r;
    return syncPoll(fds, deadline - monotonicNs());
  }
  const ring = deadline - margin;
  const sec = Math.floor(ring / 1e9);
  itspec[2] = BigInt(sec);
  itspec[3] = BigInt(ring - sec * 1e9);
  if (c.timerfd_settime(timer, TFD_TIMER_ABSTIME, itspec, null) < 0) {
    return await pollParked(fds, timeoutNs);
  }
  const idx = fds.push(timer, POLLIN);
  const r = await pollParked(fds, -1);
  if (typeof r !== "number") return r;
  // Something else ended the wait: the timer stays armed but is polled
  // by nobody, and the next arm resets it.
  if ((fds.revents(idx) & POLLIN) === 0) return r;
  // Consume the expiry, so the tail below does not see it again.
  c.read(timer, scratch8, 8);
  const st = asyncWaitStats;
  const now = monotonicNs();
  st.lastHopNs = now - ring;
  hopNs += (st.lastHopNs - hopNs) / 8;
  if (r > 1) return r - 1;
  return syncPoll(fds, deadline - now);
}

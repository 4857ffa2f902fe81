/**
 * Clocks and timers: util/qemu-timer.c and include/qemu/timer.h.
 *
 * A {@linkcode TimerListGroup} holds one sorted timer list per clock; every
 * AioContext owns one, and {@linkcode mainLoopTlg} is the main loop's. A
 * {@linkcode QEMUTimer} is armed with an absolute expiry on its clock and
 * fires only when its group's {@linkcode TimerListGroup.prototype.runTimers}
 * runs (inside `aio_poll` or the main loop), never from `mod()` itself.
 *
 * Times are JavaScript numbers of nanoseconds, exact up to 2^53 ns (104 days
 * of CLOCK_MONOTONIC). HOST is wall-clock time since 1970, about 1.8e18 ns,
 * so its readings are coarse to 256 ns. Expiries are rounded up to whole ns,
 * so a timer never fires early.
 *
 * Clock state (enabled flags, the virtual clock) belongs to the isolate: a
 * Worker has its own, where QEMU has one per process.
 *
 * @example A virtual-clock timer
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import {
 *   clockAdvanceVirtualNs,
 *   clockEnable,
 *   QEMUClockType,
 *   QEMUTimer,
 *   SCALE_MS,
 *   TimerListGroup,
 * } from "@aioloop/aioloop/aio";
 *
 * const group = new TimerListGroup(() => {});
 * let fired = 0;
 * const t = new QEMUTimer(group, QEMUClockType.VIRTUAL, SCALE_MS, () => fired++);
 * clockEnable(QEMUClockType.VIRTUAL, true);
 * t.mod(5); // 5 ms of virtual time from 0
 * clockAdvanceVirtualNs(5 * SCALE_MS);
 * group.runTimers();
 * assertEquals(fired, 1);
 * clockEnable(QEMUClockType.VIRTUAL, false);
 * group.destroy();
 * ```
 *
 * @module
 */
import {
  CLOCK_COUNT,
  isClockEnabled,
  notifyClock,
  readClockNs,
  setClockEnabled,
  setVirtualNs,
  TimerList,
  timerListsOf,
  TimerNode,
  type TimerSnapshot,
} from "./_timer_list.ts";

/**
 * The clocks a timer can run on, as numbers so that they index arrays and
 * cross threads.
 *
 * - `REALTIME`: CLOCK_MONOTONIC; runs always.
 * - `VIRTUAL`: a per-isolate clock that moves only when told to
 *   ({@linkcode clockSetVirtualNs}, {@linkcode clockAdvanceVirtualNs}); it
 *   starts at 0 and **disabled**, as QEMU's runs only while the VM runs.
 * - `HOST`: CLOCK_REALTIME, the wall clock.
 * - `VIRTUAL_RT`: CLOCK_MONOTONIC, as in QEMU without icount.
 *
 * Counterpart: `QEMUClockType` (`QEMU_CLOCK_REALTIME` ...).
 *
 * @example Reading two clocks
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { clockGetNs, QEMUClockType } from "@aioloop/aioloop/aio";
 * assertEquals(clockGetNs(QEMUClockType.REALTIME) > 0, true);
 * assertEquals(clockGetNs(QEMUClockType.VIRTUAL) >= 0, true);
 * ```
 */
export const QEMUClockType = {
  /** CLOCK_MONOTONIC. */
  REALTIME: 0,
  /** The virtual clock: moves only when told to; starts disabled. */
  VIRTUAL: 1,
  /** CLOCK_REALTIME, the wall clock. */
  HOST: 2,
  /** CLOCK_MONOTONIC (QEMU without icount). */
  VIRTUAL_RT: 3,
} as const;

/**
 * One of the {@linkcode QEMUClockType} values.
 *
 * Counterpart: `QEMUClockType`.
 *
 * @example Typing a clock parameter
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { clockGetNs, QEMUClockType } from "@aioloop/aioloop/aio";
 * function elapsed(clock: QEMUClockType, since: number): number {
 *   return clockGetNs(clock) - since;
 * }
 * const since = clockGetNs(QEMUClockType.VIRTUAL);
 * assertEquals(elapsed(QEMUClockType.VIRTUAL, since), 0); // the virtual clock moves only when told
 * ```
 */
export type QEMUClockType = typeof QEMUClockType[keyof typeof QEMUClockType];

/**
 * The number of clocks.
 *
 * Counterpart: `QEMU_CLOCK_MAX`.
 *
 * @example Walking every clock
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { clockIsEnabled, QEMU_CLOCK_MAX, type QEMUClockType } from "@aioloop/aioloop/aio";
 * const enabled: boolean[] = [];
 * for (let c = 0; c < QEMU_CLOCK_MAX; c++) enabled.push(clockIsEnabled(c as QEMUClockType));
 * assertEquals(enabled.length, 4);
 * assertEquals(enabled[0], true); // REALTIME always runs
 * ```
 */
export const QEMU_CLOCK_MAX = 4;

/**
 * Timer scale: expiries in nanoseconds.
 *
 * Counterpart: `SCALE_NS`.
 *
 * @example A ns timer
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { QEMUClockType, SCALE_NS, timerNew } from "@aioloop/aioloop/aio";
 * const t = timerNew(QEMUClockType.REALTIME, SCALE_NS, () => {});
 * assertEquals(t.scale === SCALE_NS, true);
 * ```
 */
export const SCALE_NS = 1;
/**
 * Timer scale: expiries in microseconds.
 *
 * Counterpart: `SCALE_US`.
 *
 * @example A µs timer
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { QEMUClockType, SCALE_US, timerNew } from "@aioloop/aioloop/aio";
 * const t = timerNew(QEMUClockType.REALTIME, SCALE_US, () => {});
 * assertEquals(t.scale, 1000);
 * ```
 */
export const SCALE_US = 1000;
/**
 * Timer scale: expiries in milliseconds.
 *
 * Counterpart: `SCALE_MS`.
 *
 * @example A ms timer
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { QEMUClockType, SCALE_MS, timerNew } from "@aioloop/aioloop/aio";
 * const t = timerNew(QEMUClockType.REALTIME, SCALE_MS, () => {});
 * assertEquals(t.scale, 1000000);
 * ```
 */
export const SCALE_MS = 1_000_000;

/**
 * Timer attribute: the timer drives something outside the guest (it is
 * skipped by record/replay in QEMU; here it only matters to
 * {@linkcode clockDeadlineNsAll}'s mask).
 *
 * Counterpart: `QEMU_TIMER_ATTR_EXTERNAL`.
 *
 * @example An external timer
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { QEMU_TIMER_ATTR_EXTERNAL, QEMUClockType, SCALE_MS, timerNew } from "@aioloop/aioloop/aio";
 * const t = timerNew(QEMUClockType.HOST, SCALE_MS, () => {}, {
 *   attributes: QEMU_TIMER_ATTR_EXTERNAL,
 * });
 * assertEquals(t.attributes, 1);
 * ```
 */
export const QEMU_TIMER_ATTR_EXTERNAL = 1;
/**
 * Attribute mask that includes every attribute.
 *
 * Counterpart: `QEMU_TIMER_ATTR_ALL`.
 *
 * @example The deadline over every timer of a clock
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { clockDeadlineNsAll, QEMU_TIMER_ATTR_ALL, QEMUClockType } from "@aioloop/aioloop/aio";
 * assertEquals(clockDeadlineNsAll(QEMUClockType.HOST, QEMU_TIMER_ATTR_ALL) >= -1, true);
 * ```
 */
export const QEMU_TIMER_ATTR_ALL = 0xffffffff;

const INT32_MAX = 0x7fffffff;

function checkClock(clock: unknown): QEMUClockType {
  if (typeof clock !== "number") {
    throw new TypeError(`Clock must be a QEMUClockType number, got ${typeof clock}`);
  }
  if (!(Number.isInteger(clock) && clock >= 0 && clock < CLOCK_COUNT)) {
    throw new RangeError(`Clock must be 0 to ${CLOCK_COUNT - 1}, got ${clock}`);
  }
  return clock as QEMUClockType;
}

function checkNumber(v: unknown, what: string): number {
  if (typeof v !== "number") throw new TypeError(`${what} must be a number, got ${typeof v}`);
  if (Number.isNaN(v)) throw new RangeError(`${what} must not be NaN`);
  return v;
}

function checkFinite(v: unknown, what: string): number {
  checkNumber(v, what);
  if (!Number.isFinite(v)) throw new RangeError(`${what} must be finite, got ${v}`);
  return v as number;
}

function checkFunction(v: unknown, what: string): void {
  if (typeof v !== "function") throw new TypeError(`${what} must be a function, got ${typeof v}`);
}

// QEMU keeps expiries in int64_t ns: [-2^63, 2^63). Past that an expiry
// has no meaning (and its deadline no valid timespec).
const INT64_LIMIT = 2 ** 63;

// A finite expiry scaled to ns, rounded up so that a timer never fires
// early; the clamp of negatives to 0 happens at insertion.
function scaledNs(expire: unknown, scale: number): number {
  const ns = Math.ceil(checkFinite(expire, "Timer expiry") * scale);
  if (!(ns < INT64_LIMIT && ns >= -INT64_LIMIT)) {
    throw new RangeError(
      `Timer expiry overflows the int64 nanosecond range when scaled by ${scale}: ${expire}` +
        ` (use an expiry below 2^63 ns, about 292 years)`,
    );
  }
  return ns;
}

function checkVirtualNs(ns: unknown, what: string): number {
  checkNumber(ns, what);
  if (!Number.isSafeInteger(ns) || (ns as number) < 0) {
    throw new RangeError(`${what} must be a non-negative safe integer, got ${ns}`);
  }
  return ns as number;
}

/**
 * Reads a clock in nanoseconds.
 *
 * Counterpart: `qemu_clock_get_ns()`.
 * Thread: any isolate (each isolate has its own VIRTUAL clock).
 *
 * @param clock The clock to read.
 * @returns The clock's value in ns.
 * @throws {RangeError} If `clock` is not a clock.
 *
 * @example Elapsed real time
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { clockGetNs, QEMUClockType } from "@aioloop/aioloop/aio";
 * const t0 = clockGetNs(QEMUClockType.REALTIME);
 * assertEquals(clockGetNs(QEMUClockType.REALTIME) >= t0, true);
 * ```
 */
export function clockGetNs(clock: QEMUClockType): number {
  return readClockNs(checkClock(clock));
}

/**
 * Reads a clock in microseconds, rounded down.
 *
 * Counterpart: `qemu_clock_get_us()`.
 * Thread: any isolate.
 *
 * @param clock The clock to read.
 * @returns The clock's value in µs.
 * @throws {RangeError} If `clock` is not a clock.
 *
 * @example Microseconds
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { clockGetUs, QEMUClockType } from "@aioloop/aioloop/aio";
 * assertEquals(Number.isInteger(clockGetUs(QEMUClockType.REALTIME)), true);
 * ```
 */
export function clockGetUs(clock: QEMUClockType): number {
  return Math.floor(clockGetNs(clock) / SCALE_US);
}

/**
 * Reads a clock in milliseconds, rounded down.
 *
 * Counterpart: `qemu_clock_get_ms()`.
 * Thread: any isolate.
 *
 * @param clock The clock to read.
 * @returns The clock's value in ms.
 * @throws {RangeError} If `clock` is not a clock.
 *
 * @example Wall-clock milliseconds
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { clockGetMs, QEMUClockType } from "@aioloop/aioloop/aio";
 * assertEquals(Math.abs(clockGetMs(QEMUClockType.HOST) - Date.now()) < 60_000, true);
 * ```
 */
export function clockGetMs(clock: QEMUClockType): number {
  return Math.floor(clockGetNs(clock) / SCALE_MS);
}

/**
 * Sets the process's VIRTUAL clock (shared memory, seen by every isolate
 * that opened a context handle, and by IOThreads), then notifies every
 * timer list on VIRTUAL, here and in other isolates, so that contexts
 * waiting on it re-evaluate their deadline. Timers
 * that are now due fire on their group's next run, not here. The clock may be
 * set backwards (to reset it between tests, say); pending timers then simply
 * wait longer.
 *
 * Counterpart: `qemu_virtual_clock_set_ns()` plus `qemu_clock_notify()`.
 * Thread: any thread.
 *
 * @param ns The new value, a non-negative safe integer.
 * @throws {RangeError} If `ns` is not a non-negative safe integer.
 *
 * @example Jumping virtual time
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { clockGetNs, clockSetVirtualNs, QEMUClockType } from "@aioloop/aioloop/aio";
 * clockSetVirtualNs(1_000);
 * assertEquals(clockGetNs(QEMUClockType.VIRTUAL), 1000);
 * clockSetVirtualNs(0);
 * ```
 */
export function clockSetVirtualNs(ns: number): void {
  setVirtualNs(checkVirtualNs(ns, "Virtual time"));
}

/**
 * Moves the process's VIRTUAL clock forward, then notifies every timer
 * list on VIRTUAL (see {@linkcode clockSetVirtualNs}).
 *
 * Counterpart: `qemu_clock_advance_virtual_time()`, except that due timers
 * run at their group's next run rather than step by step here.
 * Thread: any thread.
 *
 * @param ns How far to move, a non-negative safe integer.
 * @returns The new virtual time in ns.
 * @throws {RangeError} If `ns` is negative or not a safe integer, or the sum
 * is not a safe integer.
 *
 * @example Advancing virtual time
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { clockAdvanceVirtualNs, clockSetVirtualNs } from "@aioloop/aioloop/aio";
 * clockSetVirtualNs(0);
 * assertEquals(clockAdvanceVirtualNs(250), 250);
 * clockSetVirtualNs(0);
 * ```
 */
export function clockAdvanceVirtualNs(ns: number): number {
  checkVirtualNs(ns, "Virtual time step");
  const to = checkVirtualNs(readClockNs(QEMUClockType.VIRTUAL) + ns, "Virtual time");
  setVirtualNs(to);
  return to;
}

/**
 * Enables or disables a clock for the whole process. A disabled clock runs no
 * timers and contributes no deadline; its timers stay armed. Enabling a
 * disabled clock notifies every timer list on it. VIRTUAL starts disabled,
 * the others enabled.
 *
 * QEMU's disable waits until no list of the clock is running timers, so
 * disabling from inside a timer callback of that clock deadlocks there; here
 * it throws instead.
 *
 * Counterpart: `qemu_clock_enable()`.
 * Thread: any thread.
 *
 * @param clock The clock.
 * @param on True to enable, false to disable.
 * @throws {RangeError} If `clock` is not a clock.
 * @throws {TypeError} If `on` is not a boolean.
 * @throws {Error} If disabling from inside a running callback of that clock.
 *
 * @example Starting the virtual clock
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { clockEnable, clockIsEnabled, QEMUClockType } from "@aioloop/aioloop/aio";
 * clockEnable(QEMUClockType.VIRTUAL, true);
 * assertEquals(clockIsEnabled(QEMUClockType.VIRTUAL), true);
 * clockEnable(QEMUClockType.VIRTUAL, false);
 * ```
 */
export function clockEnable(clock: QEMUClockType, on: boolean): void {
  checkClock(clock);
  if (typeof on !== "boolean") {
    throw new TypeError(`Enable flag must be a boolean, got ${typeof on}`);
  }
  setClockEnabled(clock, on);
}

/**
 * Tells whether a clock is enabled in this isolate.
 *
 * Counterpart: the `enabled` field of QEMU's `QEMUClock`.
 * Thread: any isolate.
 *
 * @param clock The clock.
 * @returns True if enabled.
 * @throws {RangeError} If `clock` is not a clock.
 *
 * @example VIRTUAL starts disabled
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { clockIsEnabled, QEMUClockType } from "@aioloop/aioloop/aio";
 * assertEquals(clockIsEnabled(QEMUClockType.REALTIME), true);
 * ```
 */
export function clockIsEnabled(clock: QEMUClockType): boolean {
  return isClockEnabled(checkClock(clock));
}

/**
 * Calls the notify hook of every timer list on a clock in this isolate
 * (every AioContext's `aio_notify`, and the main loop's hook).
 *
 * Counterpart: `qemu_clock_notify()`.
 * Thread: home thread of the contexts (the isolate).
 *
 * @param clock The clock.
 * @throws {RangeError} If `clock` is not a clock.
 *
 * @example Waking every context
 * ```ts
 * import { clockNotify, QEMUClockType } from "@aioloop/aioloop/aio";
 * clockNotify(QEMUClockType.REALTIME);
 * ```
 */
export function clockNotify(clock: QEMUClockType): void {
  notifyClock(checkClock(clock));
}

/**
 * The soonest deadline over every timer list of a clock in this isolate,
 * counting only timers whose attributes all lie in `attrMask`: -1 if none or
 * the clock is disabled, 0 if one is due.
 *
 * Counterpart: `qemu_clock_deadline_ns_all()`.
 * Thread: home thread of the timers (the isolate).
 *
 * @param clock The clock.
 * @param attrMask Attributes a timer may have and still count; default all.
 * @returns Nanoseconds until the earliest counted timer, or -1.
 * @throws {RangeError} If `clock` or `attrMask` is invalid.
 *
 * @example No VIRTUAL deadline while the clock is disabled
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { clockDeadlineNsAll, QEMUClockType } from "@aioloop/aioloop/aio";
 * assertEquals(clockDeadlineNsAll(QEMUClockType.VIRTUAL), -1);
 * ```
 */
export function clockDeadlineNsAll(
  clock: QEMUClockType,
  attrMask: number = QEMU_TIMER_ATTR_ALL,
): number {
  checkClock(clock);
  const mask = checkAttributes(attrMask, "Attribute mask");
  if (!isClockEnabled(clock)) return -1;
  let deadline = -1;
  for (const list of timerListsOf(clock)) {
    const expire = list.firstExpireInMask(mask);
    if (expire < 0) continue;
    const delta = expire - readClockNs(clock);
    deadline = qemuSoonestTimeout(deadline, delta > 0 ? delta : 0);
  }
  return deadline;
}

function checkAttributes(v: unknown, what: string): number {
  checkNumber(v, what);
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 0xffffffff) {
    throw new RangeError(`${what} must be an integer from 0 to 0xffffffff, got ${v}`);
  }
  return v as number;
}

/**
 * The sooner of two timeouts in ns, where a negative value means "never":
 * QEMU compares them as unsigned, so -1 loses to anything.
 *
 * Counterpart: `qemu_soonest_timeout()`.
 * Thread: any.
 *
 * @param a A timeout in ns, or -1.
 * @param b A timeout in ns, or -1.
 * @returns The sooner of the two; -1 only if both are negative.
 * @throws {TypeError} If an argument is not a number.
 *
 * @example Infinity loses
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { qemuSoonestTimeout } from "@aioloop/aioloop/aio";
 * assertEquals(qemuSoonestTimeout(-1, 5), 5);
 * assertEquals(qemuSoonestTimeout(7, 5), 5);
 * assertEquals(qemuSoonestTimeout(-1, -1), -1);
 * ```
 */
export function qemuSoonestTimeout(a: number, b: number): number {
  checkNumber(a, "Timeout");
  checkNumber(b, "Timeout");
  // Unsigned order: every negative sorts after every non-negative, and two
  // negatives keep their signed order.
  if (a < 0) return b < 0 && a < b ? a : b;
  if (b < 0) return a;
  return a < b ? a : b;
}

/**
 * Converts a timeout in ns to ms for poll(2)-style calls: negative → -1
 * (infinite), 0 → 0, otherwise rounded **up** (waiting slightly too long
 * beats a busy loop) and capped at INT32_MAX.
 *
 * Counterpart: `qemu_timeout_ns_to_ms()`.
 * Thread: any.
 *
 * @param ns A timeout in ns; negative means infinite.
 * @returns The timeout in ms.
 * @throws {TypeError} If `ns` is not a number.
 * @throws {RangeError} If `ns` is NaN.
 *
 * @example Rounding up
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { qemuTimeoutNsToMs } from "@aioloop/aioloop/aio";
 * assertEquals(qemuTimeoutNsToMs(1), 1);
 * assertEquals(qemuTimeoutNsToMs(1_000_001), 2);
 * assertEquals(qemuTimeoutNsToMs(-5), -1);
 * ```
 */
export function qemuTimeoutNsToMs(ns: number): number {
  checkNumber(ns, "Timeout");
  if (ns < 0) return -1;
  if (ns === 0) return 0;
  if (ns >= INT32_MAX * SCALE_MS) return INT32_MAX;
  // Remainder first: exact for every integer ns, unlike ceil(ns / 1e6).
  const rem = ns % SCALE_MS;
  return (ns - rem) / SCALE_MS + (rem > 0 ? 1 : 0);
}

/**
 * One pending timer, as {@linkcode TimerListGroup.prototype.debugTimers}
 * reports it.
 *
 * Counterpart: a row of QEMU's `info timers` style listing (no C struct).
 *
 * @example Formatting a listing
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { type TimerInfo, TimerListGroup } from "@aioloop/aioloop/aio";
 * const group = new TimerListGroup(() => {});
 * const rows = group.debugTimers().map((i: TimerInfo) => `${i.clock} ${i.expireNs} ${i.name}`);
 * assertEquals(rows.length, 0);
 * group.destroy();
 * ```
 */
export interface TimerInfo {
  /** The timer's clock. */
  clock: QEMUClockType;
  /** Absolute expiry in ns on that clock. */
  expireNs: number;
  /** The name given at creation (default: the callback's name). */
  name: string;
  /** The timer's attribute bits. */
  attributes: number;
}

// Module-private access to a group's lists for QEMUTimer, set by the
// group's static block (private fields cannot be shared across classes).
let listOf: (group: TimerListGroup, clock: QEMUClockType) => TimerList;

/**
 * One timer list per clock, with a notify hook that is called (with no
 * arguments) when a timer becomes the earliest of its list, or when the
 * clock is enabled or the virtual clock moves. Every AioContext owns one,
 * whose hook is `aio_notify`; {@linkcode mainLoopTlg} is the main loop's.
 *
 * Counterpart: `QEMUTimerListGroup` (`timerlistgroup_init()` /
 * `timerlistgroup_deinit()`).
 * Thread: home thread only (the isolate that made it).
 *
 * @example A context's timers
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { QEMUClockType, QEMUTimer, SCALE_NS, TimerListGroup } from "@aioloop/aioloop/aio";
 * let kicks = 0;
 * const group = new TimerListGroup(() => kicks++);
 * const t = new QEMUTimer(group, QEMUClockType.REALTIME, SCALE_NS, () => {});
 * t.modNs(0); // already due: becomes the head, so the group is notified
 * assertEquals(kicks, 1);
 * assertEquals(group.deadlineNs(), 0);
 * assertEquals(group.runTimers(), true);
 * group.destroy();
 * ```
 */
export class TimerListGroup {
  #lists: TimerList[];
  #destroyed = false;

  static {
    listOf = (group, clock) => {
      if (group.#destroyed) {
        throw new Deno.errors.BadResource("Timer list group is destroyed");
      }
      return group.#lists[clock];
    };
  }

  /**
   * Makes a group with one empty list per clock, registered with each clock.
   *
   * Counterpart: `timerlistgroup_init()`.
   * Thread: home thread only.
   *
   * @param notify Called with no arguments when the group's next deadline
   * may have moved earlier.
   * @throws {TypeError} If `notify` is not a function.
   *
   * @example A group with a wake-up hook
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { QEMUClockType, QEMUTimer, SCALE_NS, TimerListGroup } from "@aioloop/aioloop/aio";
   * let kicks = 0;
   * const group = new TimerListGroup(() => kicks++);
   * new QEMUTimer(group, QEMUClockType.REALTIME, SCALE_NS, () => {}).modNs(0);
   * assertEquals(kicks, 1); // the new earliest deadline kicks the owner
   * group.destroy();
   * ```
   */
  constructor(notify: () => void) {
    checkFunction(notify, "Notify callback");
    const hook = () => notify();
    this.#lists = [];
    for (let c = 0; c < CLOCK_COUNT; c++) this.#lists.push(new TimerList(c, hook));
  }

  /**
   * True once {@linkcode TimerListGroup.prototype.destroy} has run.
   *
   * Counterpart: none (QEMU frees the group).
   * Thread: home thread only.
   *
   * @returns Whether the group is destroyed.
   *
   * @example After destroy
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { TimerListGroup } from "@aioloop/aioloop/aio";
   * const group = new TimerListGroup(() => {});
   * group.destroy();
   * assertEquals(group.destroyed, true);
   * ```
   */
  get destroyed(): boolean {
    return this.#destroyed;
  }

  /**
   * Nanoseconds until the earliest timer over the enabled clocks: 0 if one
   * is due, -1 if there is none.
   *
   * Counterpart: `timerlistgroup_deadline_ns()`.
   * Thread: home thread only.
   *
   * @returns The deadline in ns, or -1.
   * @throws {Deno.errors.BadResource} If the group is destroyed.
   *
   * @example How long a poll may sleep
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { QEMUClockType, QEMUTimer, SCALE_NS, TimerListGroup } from "@aioloop/aioloop/aio";
   * const group = new TimerListGroup(() => {});
   * assertEquals(group.deadlineNs(), -1); // no timer
   * const t = new QEMUTimer(group, QEMUClockType.REALTIME, SCALE_NS, () => {});
   * t.modNs(0);
   * assertEquals(group.deadlineNs(), 0); // due
   * group.destroy();
   * ```
   */
  deadlineNs(): number {
    this.#check();
    let deadline = -1;
    for (let c = 0; c < CLOCK_COUNT; c++) {
      deadline = qemuSoonestTimeout(deadline, this.#lists[c].deadlineNs());
    }
    return deadline;
  }

  /**
   * Runs the expired timers of each enabled clock, clocks in enum order.
   * Each clock's "now" is sampled once per run. A callback that throws
   * stops the run and the exception propagates; that timer was already
   * popped, and the other expired timers stay queued for the next run.
   *
   * Counterpart: `timerlistgroup_run_timers()`.
   * Thread: home thread only.
   *
   * @returns True if at least one callback ran.
   * @throws {Deno.errors.BadResource} If the group is destroyed.
   *
   * @example Running due timers
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { QEMUClockType, QEMUTimer, SCALE_NS, TimerListGroup } from "@aioloop/aioloop/aio";
   * const group = new TimerListGroup(() => {});
   * let fired = 0;
   * new QEMUTimer(group, QEMUClockType.REALTIME, SCALE_NS, () => fired++).modNs(0);
   * assertEquals(group.runTimers(), true);
   * assertEquals(fired, 1);
   * assertEquals(group.runTimers(), false);
   * group.destroy();
   * ```
   */
  runTimers(): boolean {
    this.#check();
    let progress = false;
    for (let c = 0; c < CLOCK_COUNT; c++) {
      if (this.#lists[c].run()) progress = true;
    }
    return progress;
  }

  /**
   * The pending timers, by clock then expiry, as a snapshot (for an
   * `info timers` style listing). Empty once destroyed.
   *
   * Counterpart: none (QEMU's `info timers` walks the lists directly).
   * Thread: home thread only.
   *
   * @returns One entry per pending timer.
   *
   * @example Listing pending timers
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { QEMUClockType, QEMUTimer, SCALE_NS, TimerListGroup } from "@aioloop/aioloop/aio";
   * const group = new TimerListGroup(() => {});
   * const t = new QEMUTimer(group, QEMUClockType.HOST, SCALE_NS, () => {}, { name: "rtc" });
   * t.modNs(42);
   * assertEquals(group.debugTimers(), [{ clock: 2, expireNs: 42, name: "rtc", attributes: 0 }]);
   * group.destroy();
   * ```
   */
  debugTimers(): TimerInfo[] {
    const out: TimerSnapshot[] = [];
    for (const list of this.#lists) list.snapshot(out);
    return out as TimerInfo[];
  }

  /**
   * Idles every timer and unregisters the lists from their clocks. Later
   * arming of its timers, new timers, `runTimers` and `deadlineNs` throw
   * `Deno.errors.BadResource`; `del()` stays harmless. Calling it again does
   * nothing. May be called from one of the group's own callbacks.
   *
   * Counterpart: `timerlistgroup_deinit()` (which asserts no timer is left;
   * here leftover timers are idled instead).
   * Thread: home thread only.
   *
   * @example Tearing a group down
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { QEMUClockType, QEMUTimer, SCALE_NS, TimerListGroup } from "@aioloop/aioloop/aio";
   * const group = new TimerListGroup(() => {});
   * const t = new QEMUTimer(group, QEMUClockType.REALTIME, SCALE_NS, () => {});
   * t.modNs(1);
   * group.destroy();
   * assertEquals(t.pending, false);
   * try {
   *   t.modNs(1);
   * } catch (e) {
   *   assertEquals(e instanceof Deno.errors.BadResource, true);
   * }
   * ```
   */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (const list of this.#lists) list.destroy();
  }

  /**
   * Same as {@linkcode TimerListGroup.prototype.destroy}, for `using`.
   *
   * Counterpart: `timerlistgroup_deinit()`.
   * Thread: home thread only.
   *
   * @example A scoped group
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { TimerListGroup } from "@aioloop/aioloop/aio";
   * {
   *   using group = new TimerListGroup(() => {});
   *   assertEquals(group.deadlineNs(), -1);
   * }
   * ```
   */
  [Symbol.dispose](): void {
    this.destroy();
  }

  #check(): void {
    if (this.#destroyed) throw new Deno.errors.BadResource("Timer list group is destroyed");
  }
}

/**
 * Options of a {@linkcode QEMUTimer}.
 *
 * Counterpart: the `attributes` argument of `timer_new_full()`.
 *
 * @example A named external timer
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { QEMU_TIMER_ATTR_EXTERNAL, QEMUClockType, type QEMUTimerOptions, timerNewMs } from "@aioloop/aioloop/aio";
 * const options: QEMUTimerOptions = { name: "net-rx", attributes: QEMU_TIMER_ATTR_EXTERNAL };
 * assertEquals(timerNewMs(QEMUClockType.HOST, () => {}, options).name, "net-rx");
 * ```
 */
export interface QEMUTimerOptions {
  /** A name for listings such as `info timers`; default: the callback's name. */
  name?: string;
  /** Attribute bits such as {@linkcode QEMU_TIMER_ATTR_EXTERNAL}; default 0. */
  attributes?: number;
}

/**
 * A timer on one clock of one {@linkcode TimerListGroup}. It is idle until
 * armed; it fires once, when its group runs timers at or after its expiry,
 * and is idle again when its callback starts (the callback may re-arm it).
 *
 * `mod()` takes an **absolute** time on the timer's clock, as QEMU's
 * `timer_mod()` does: `t.mod(500)` on a REALTIME ms timer means "at 500 ms
 * of CLOCK_MONOTONIC", long past, so it fires at once. To arm relative to
 * now use {@linkcode QEMUTimer.prototype.modIn}; for a timer that keeps
 * firing, {@linkcode QEMUTimer.prototype.modPeriodic}.
 *
 * Counterpart: `QEMUTimer` (`timer_new_full()` / `aio_timer_new()`).
 * Thread: home thread only (the group's isolate).
 *
 * @example A periodic timer on the virtual clock
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import {
 *   clockEnable,
 *   clockSetVirtualNs,
 *   QEMUClockType,
 *   QEMUTimer,
 *   SCALE_US,
 *   TimerListGroup,
 * } from "@aioloop/aioloop/aio";
 *
 * const group = new TimerListGroup(() => {});
 * clockEnable(QEMUClockType.VIRTUAL, true);
 * clockSetVirtualNs(0);
 * let ticks = 0;
 * const tick = new QEMUTimer(group, QEMUClockType.VIRTUAL, SCALE_US, () => {
 *   ticks++;
 *   tick.mod((ticks + 1) * 10); // every 10 µs
 * });
 * tick.mod(10);
 * for (let us = 10; us <= 30; us += 10) {
 *   clockSetVirtualNs(us * SCALE_US);
 *   group.runTimers();
 * }
 * assertEquals(ticks, 3);
 * tick.del();
 * clockEnable(QEMUClockType.VIRTUAL, false);
 * clockSetVirtualNs(0);
 * group.destroy();
 * ```
 */
export class QEMUTimer {
  #node: TimerNode;
  #clock: QEMUClockType;
  #scale: number;
  #cb: () => void;
  // Periodic mode (modPeriodic): the period and the expiry it was armed
  // for, so that re-arming does not drift by the callback's lateness.
  #periodNs = 0;
  #dueNs = 0;

  /**
   * Makes an idle timer.
   *
   * Counterpart: `timer_new_full()` / `aio_timer_new_with_attrs()`.
   * Thread: home thread only.
   *
   * @param group The group whose runs fire it (a context's, or
   * {@linkcode mainLoopTlg}).
   * @param clock The clock its expiry is measured on.
   * @param scale ns per unit of `mod()`'s argument: {@linkcode SCALE_NS},
   * {@linkcode SCALE_US}, {@linkcode SCALE_MS} or any positive safe integer.
   * @param cb Called, with no arguments, when it fires.
   * @param options Name and attributes.
   * @throws {TypeError} If an argument has the wrong type.
   * @throws {RangeError} If `clock`, `scale` or `attributes` is out of range.
   * @throws {Deno.errors.BadResource} If the group is destroyed.
   *
   * @example A named ms timer
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { QEMUClockType, QEMUTimer, SCALE_MS, TimerListGroup } from "@aioloop/aioloop/aio";
   * const group = new TimerListGroup(() => {});
   * const t = new QEMUTimer(group, QEMUClockType.REALTIME, SCALE_MS, () => {}, { name: "watchdog" });
   * assertEquals(t.name, "watchdog");
   * assertEquals(t.pending, false);
   * group.destroy();
   * ```
   */
  constructor(
    group: TimerListGroup,
    clock: QEMUClockType,
    scale: number,
    cb: () => void,
    options?: QEMUTimerOptions,
  ) {
    if (!(group instanceof TimerListGroup)) {
      throw new TypeError("Timer group must be a TimerListGroup");
    }
    checkClock(clock);
    checkNumber(scale, "Timer scale");
    if (!Number.isSafeInteger(scale) || scale <= 0) {
      throw new RangeError(`Timer scale must be a positive safe integer, got ${scale}`);
    }
    checkFunction(cb, "Timer callback");
    const name = options?.name ?? cb.name;
    if (typeof name !== "string") throw new TypeError(`Timer name must be a string`);
    const attributes = checkAttributes(options?.attributes ?? 0, "Timer attributes");
    this.#node = new TimerNode(listOf(group, clock), cb, name, attributes);
    this.#clock = clock;
    this.#scale = scale;
    this.#cb = cb;
  }

  /**
   * The timer's clock.
   *
   * Counterpart: `ts->timer_list->clock->type`.
   * Thread: home thread only.
   *
   * @returns A {@linkcode QEMUClockType}.
   *
   * @example Reading the clock
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { QEMUClockType, timerNewMs } from "@aioloop/aioloop/aio";
   * assertEquals(timerNewMs(QEMUClockType.HOST, () => {}).clock, 2);
   * ```
   */
  get clock(): QEMUClockType {
    return this.#clock;
  }

  /**
   * ns per unit of {@linkcode QEMUTimer.prototype.mod}'s argument.
   *
   * Counterpart: `ts->scale`.
   * Thread: home thread only.
   *
   * @returns The scale.
   *
   * @example Reading the scale
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { QEMUClockType, timerNewUs } from "@aioloop/aioloop/aio";
   * assertEquals(timerNewUs(QEMUClockType.HOST, () => {}).scale, 1000);
   * ```
   */
  get scale(): number {
    return this.#scale;
  }

  /**
   * The timer's name, for listings.
   *
   * Counterpart: none (QEMU timers have no name).
   * Thread: home thread only.
   *
   * @returns The name.
   *
   * @example The default name
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { QEMUClockType, timerNewNs } from "@aioloop/aioloop/aio";
   * function flush(): void {}
   * assertEquals(timerNewNs(QEMUClockType.HOST, flush).name, "flush");
   * ```
   */
  get name(): string {
    return this.#node.name;
  }

  /**
   * The timer's attribute bits.
   *
   * Counterpart: `ts->attributes`.
   * Thread: home thread only.
   *
   * @returns The attributes.
   *
   * @example Reading the attributes
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { QEMU_TIMER_ATTR_EXTERNAL, QEMUClockType, timerNewNs } from "@aioloop/aioloop/aio";
   * const t = timerNewNs(QEMUClockType.HOST, () => {}, { attributes: QEMU_TIMER_ATTR_EXTERNAL });
   * assertEquals(t.attributes, 1);
   * ```
   */
  get attributes(): number {
    return this.#node.attributes;
  }

  /**
   * Arms (or re-arms) the timer to fire at `expire` × scale ns on its clock.
   * See {@linkcode QEMUTimer.prototype.modNs}.
   *
   * Counterpart: `timer_mod()`.
   * Thread: home thread only.
   *
   * @param expire Absolute expiry in units of the timer's scale.
   * @throws {TypeError} If `expire` is not a number.
   * @throws {RangeError} If `expire` is not finite, or overflows the int64 ns range when scaled.
   * @throws {Deno.errors.BadResource} If the group is destroyed.
   *
   * @example In 10 ms
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { clockGetMs, QEMUClockType, timerNewMs } from "@aioloop/aioloop/aio";
   * const t = timerNewMs(QEMUClockType.REALTIME, () => {});
   * t.mod(clockGetMs(QEMUClockType.REALTIME) + 10);
   * assertEquals(t.pending, true);
   * t.del();
   * ```
   */
  mod(expire: number): void {
    this.#modNs(scaledNs(expire, this.#scale));
  }

  /**
   * Arms (or re-arms) the timer to fire at `ns` on its clock. A pending
   * timer is moved. It is placed after every timer whose expiry is ≤ `ns`,
   * so equal expiries fire in arming order; a negative `ns` is stored as 0
   * (placed ahead of timers already at 0, as in QEMU); a fractional one is
   * rounded up. The group's notify hook is called only if the timer became
   * the earliest of its clock's list. On bad input nothing changes.
   *
   * Counterpart: `timer_mod_ns()`.
   * Thread: home thread only.
   *
   * @param ns Absolute expiry in ns.
   * @throws {TypeError} If `ns` is not a number.
   * @throws {RangeError} If `ns` is not finite, or outside the int64 range.
   * @throws {Deno.errors.BadResource} If the group is destroyed.
   *
   * @example Clamping a negative expiry
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { QEMUClockType, timerNewNs } from "@aioloop/aioloop/aio";
   * const t = timerNewNs(QEMUClockType.HOST, () => {});
   * t.modNs(-5);
   * assertEquals(t.expireTimeNs, 0);
   * t.del();
   * ```
   */
  modNs(ns: number): void {
    this.#modNs(scaledNs(ns, 1));
  }

  /**
   * Arms (or re-arms) the timer to fire `delta` units of its scale from now
   * on its clock: `t.modIn(500)` on a ms timer fires in 500 ms. Like every
   * `mod*`, it ends periodic mode.
   *
   * Counterpart: QEMU's relative idiom `timer_mod(ts,
   * qemu_clock_get_ms(clock) + delta)` (`qemu_clock_get_ns`/`_us` for other
   * scales), in one call.
   * Thread: home thread only.
   *
   * @param delta How long from now, in units of the timer's scale; 0 means
   * due at once. Fractions are allowed and rounded up to whole ns.
   * @throws {TypeError} If `delta` is not a number.
   * @throws {RangeError} If `delta` is negative, not finite, or overflows
   * when scaled (for an absolute time, use {@linkcode QEMUTimer.prototype.mod}).
   * @throws {Deno.errors.BadResource} If the group is destroyed.
   *
   * @example In 500 ms, not at 500 ms
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { clockGetNs, QEMUClockType, SCALE_MS, timerNewMs } from "@aioloop/aioloop/aio";
   * const t = timerNewMs(QEMUClockType.REALTIME, () => {});
   * const before = clockGetNs(QEMUClockType.REALTIME);
   * t.modIn(500);
   * const after = clockGetNs(QEMUClockType.REALTIME);
   * assertEquals(t.expireTimeNs >= before + 500 * SCALE_MS, true);
   * assertEquals(t.expireTimeNs <= after + 500 * SCALE_MS, true);
   * t.del();
   * ```
   */
  modIn(delta: number): void {
    const ns = scaledNs(delta, this.#scale);
    if (ns < 0) {
      throw new RangeError(
        `Timer delay must be >= 0, got ${delta}: for an absolute expiry use mod()`,
      );
    }
    this.#modNs(readClockNs(this.#clock) + ns);
  }

  /**
   * Makes the timer periodic: it fires every `period` units of its scale,
   * first one period from now. Each firing re-arms it **before** its
   * callback runs, at the previous expiry plus the period, so lateness does
   * not accumulate; if whole periods were missed (the loop was blocked), they
   * are skipped rather than fired back to back. The callback can stop it
   * with {@linkcode QEMUTimer.prototype.del}, or make it one-shot again with
   * any `mod*` call; a callback that throws leaves it armed for the next
   * period.
   *
   * Counterpart: the re-arm-from-the-callback idiom of QEMU device models
   * (`timer_mod(ts, expire + period)` in the callback); QEMU's `ptimer`
   * (`ptimer_set_period()` + `ptimer_run(s, 0)`) is its device-level form.
   * Thread: home thread only.
   *
   * @param period The period, in units of the timer's scale (> 0; rounded
   * up to whole ns).
   * @throws {TypeError} If `period` is not a number.
   * @throws {RangeError} If `period` is not > 0, not finite, or overflows
   * when scaled.
   * @throws {Deno.errors.BadResource} If the group is destroyed.
   *
   * @example Every 10 ms of virtual time
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import {
   *   clockAdvanceVirtualNs, clockEnable, clockSetVirtualNs, QEMUClockType, SCALE_MS, TimerListGroup,
   *   QEMUTimer,
   * } from "@aioloop/aioloop/aio";
   * using group = new TimerListGroup(() => {});
   * clockSetVirtualNs(0);
   * clockEnable(QEMUClockType.VIRTUAL, true);
   * let ticks = 0;
   * const t = new QEMUTimer(group, QEMUClockType.VIRTUAL, SCALE_MS, () => ticks++);
   * t.modPeriodic(10);
   * for (let i = 0; i < 3; i++) {
   *   clockAdvanceVirtualNs(10 * SCALE_MS);
   *   group.runTimers();
   * }
   * assertEquals(ticks, 3);
   * assertEquals(t.expireTimeNs, 40 * SCALE_MS); // armed for the next period
   * t.del();
   * clockEnable(QEMUClockType.VIRTUAL, false);
   * clockSetVirtualNs(0);
   * ```
   */
  modPeriodic(period: number): void {
    const ns = scaledNs(period, this.#scale);
    if (!(ns > 0)) throw new RangeError(`Timer period must be > 0, got ${period}`);
    const due = readClockNs(this.#clock) + ns;
    this.#modNs(due);
    this.#periodNs = ns;
    this.#dueNs = due;
    // A closure only for timers made periodic: plain timers call their
    // callback directly.
    this.#node.cb = () => this.#firePeriodic();
  }

  /**
   * The period in ns while the timer is periodic and pending
   * ({@linkcode QEMUTimer.prototype.modPeriodic}), else 0.
   *
   * Counterpart: none (a QEMU timer does not know it is re-armed).
   * Thread: home thread only.
   *
   * @returns The period in ns, or 0.
   *
   * @example One-shot again after mod
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { QEMUClockType, timerNewUs } from "@aioloop/aioloop/aio";
   * const t = timerNewUs(QEMUClockType.REALTIME, () => {});
   * t.modPeriodic(250);
   * assertEquals(t.periodNs, 250_000);
   * t.modIn(1);
   * assertEquals(t.periodNs, 0);
   * t.del();
   * ```
   */
  get periodNs(): number {
    // A destroyed group idles its timers without telling them.
    return this.#node.expire >= 0 ? this.#periodNs : 0;
  }

  // The node's callback while periodic: re-arm first (the user callback
  // may del() or mod() the timer, or throw), then call it.
  #firePeriodic(): void {
    const period = this.#periodNs;
    if (period > 0) {
      const node = this.#node;
      let next = this.#dueNs + period;
      const now = readClockNs(this.#clock);
      if (next <= now) next += (Math.floor((now - next) / period) + 1) * period;
      this.#dueNs = next;
      if (!node.list.destroyed) node.list.modNs(node, next);
    }
    const cb = this.#cb;
    cb();
  }

  /**
   * Like {@linkcode QEMUTimer.prototype.mod}, but only ever moves a pending
   * timer earlier; an idle timer is armed.
   *
   * Counterpart: `timer_mod_anticipate()`.
   * Thread: home thread only.
   *
   * @param expire Absolute expiry in units of the timer's scale.
   * @throws {TypeError} If `expire` is not a number.
   * @throws {RangeError} If `expire` is not finite, or overflows the int64 ns range when scaled.
   * @throws {Deno.errors.BadResource} If the group is destroyed.
   *
   * @example Only ever earlier
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { QEMUClockType, timerNewMs } from "@aioloop/aioloop/aio";
   * const t = timerNewMs(QEMUClockType.HOST, () => {});
   * t.modAnticipate(20);
   * t.modAnticipate(30); // later: ignored
   * assertEquals(t.expireTimeNs, 20000000);
   * t.del();
   * ```
   */
  modAnticipate(expire: number): void {
    this.#modAnticipateNs(scaledNs(expire, this.#scale));
  }

  /**
   * Like {@linkcode QEMUTimer.prototype.modNs}, but only ever moves a
   * pending timer earlier; an idle timer is armed.
   *
   * Counterpart: `timer_mod_anticipate_ns()`.
   * Thread: home thread only.
   *
   * @param ns Absolute expiry in ns.
   * @throws {TypeError} If `ns` is not a number.
   * @throws {RangeError} If `ns` is not finite.
   * @throws {Deno.errors.BadResource} If the group is destroyed.
   *
   * @example Pulling a timer in
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { QEMUClockType, timerNewNs } from "@aioloop/aioloop/aio";
   * const t = timerNewNs(QEMUClockType.HOST, () => {});
   * t.modNs(500);
   * t.modAnticipateNs(100);
   * assertEquals(t.expireTimeNs, 100);
   * t.del();
   * ```
   */
  modAnticipateNs(ns: number): void {
    this.#modAnticipateNs(scaledNs(ns, 1));
  }

  /**
   * Disarms the timer if pending. Harmless on an idle timer or a destroyed
   * group.
   *
   * Counterpart: `timer_del()` (and `timer_free()`: the object is simply
   * dropped afterwards).
   * Thread: home thread only.
   *
   * @example Disarming
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { QEMUClockType, timerNewNs } from "@aioloop/aioloop/aio";
   * const t = timerNewNs(QEMUClockType.HOST, () => {});
   * t.modNs(1);
   * t.del();
   * assertEquals(t.pending, false);
   * ```
   */
  del(): void {
    const node = this.#node;
    this.#periodNs = 0;
    node.list.del(node);
  }

  /**
   * True while armed and not yet fired.
   *
   * Counterpart: `timer_pending()`.
   * Thread: home thread only.
   *
   * @returns Whether the timer is pending.
   *
   * @example Armed or not
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { QEMUClockType, timerNewNs } from "@aioloop/aioloop/aio";
   * const t = timerNewNs(QEMUClockType.HOST, () => {});
   * assertEquals(t.pending, false);
   * t.modNs(0);
   * assertEquals(t.pending, true);
   * t.del();
   * ```
   */
  get pending(): boolean {
    return this.#node.expire >= 0;
  }

  /**
   * The absolute expiry in ns, or -1 if idle.
   *
   * Counterpart: `timer_expire_time_ns()`.
   * Thread: home thread only.
   *
   * @returns The expiry in ns, or -1.
   *
   * @example The expiry
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { QEMUClockType, timerNewUs } from "@aioloop/aioloop/aio";
   * const t = timerNewUs(QEMUClockType.HOST, () => {});
   * assertEquals(t.expireTimeNs, -1);
   * t.mod(3);
   * assertEquals(t.expireTimeNs, 3000);
   * t.del();
   * ```
   */
  get expireTimeNs(): number {
    return this.#node.expire;
  }

  /**
   * Tells whether the timer is pending with an expiry at or before
   * `currentTime` × scale ns.
   *
   * Counterpart: `timer_expired()`.
   * Thread: home thread only.
   *
   * @param currentTime A time in units of the timer's scale.
   * @returns True if pending and due at `currentTime`.
   * @throws {TypeError} If `currentTime` is not a number.
   * @throws {RangeError} If `currentTime` is NaN.
   *
   * @example Due yet?
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { QEMUClockType, timerNewMs } from "@aioloop/aioloop/aio";
   * const t = timerNewMs(QEMUClockType.HOST, () => {});
   * t.mod(5);
   * assertEquals(t.expired(4), false);
   * assertEquals(t.expired(5), true);
   * t.del();
   * ```
   */
  expired(currentTime: number): boolean {
    checkNumber(currentTime, "Current time");
    const e = this.#node.expire;
    return e >= 0 && e <= currentTime * this.#scale;
  }

  /**
   * Same as {@linkcode QEMUTimer.prototype.del}, for `using`.
   *
   * Counterpart: `timer_del()`.
   * Thread: home thread only.
   *
   * @example A scoped timer
   * ```ts
   * import { QEMUClockType, timerNewMs } from "@aioloop/aioloop/aio";
   * {
   *   using t = timerNewMs(QEMUClockType.HOST, () => {});
   *   t.mod(1);
   * } // disarmed here
   * ```
   */
  [Symbol.dispose](): void {
    this.del();
  }

  #modNs(ns: number): void {
    const node = this.#node;
    if (node.list.destroyed) throw new Deno.errors.BadResource("Timer list group is destroyed");
    this.#periodNs = 0;
    node.list.modNs(node, ns);
  }

  #modAnticipateNs(ns: number): void {
    const node = this.#node;
    if (node.list.destroyed) throw new Deno.errors.BadResource("Timer list group is destroyed");
    this.#periodNs = 0;
    node.list.modAnticipateNs(node, ns);
  }
}

let mainTlg: TimerListGroup | null = null;
let mainNotify: (() => void) | null = null;

/**
 * The main loop's timer list group, made on first use. Its notify calls the
 * hook set by {@linkcode setMainLoopTimerNotify} (nothing until one is set).
 * Its timers run from {@linkcode clockRunAllTimers}, in the main loop, never
 * from an AioContext's poll. If it was destroyed, a fresh one is made.
 *
 * Counterpart: `main_loop_tlg`.
 * Thread: home thread only (each isolate has its own).
 *
 * @returns The group.
 *
 * @example Timers of the main loop
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { mainLoopTlg, QEMUClockType, timerNewMs } from "@aioloop/aioloop/aio";
 * const t = timerNewMs(QEMUClockType.REALTIME, () => {});
 * t.mod(0);
 * assertEquals(mainLoopTlg().deadlineNs(), 0);
 * t.del();
 * ```
 */
export function mainLoopTlg(): TimerListGroup {
  if (mainTlg === null || mainTlg.destroyed) {
    mainTlg = new TimerListGroup(() => mainNotify?.());
  }
  return mainTlg;
}

/**
 * Sets the hook the main-loop group calls when its deadline may have moved
 * earlier (the main loop's wake-up).
 *
 * Counterpart: the `notify_cb` passed to `qemu_init_clocks()`
 * (`qemu_timer_notify_cb`, which calls `qemu_notify_event()`).
 * Thread: home thread only.
 *
 * @param fn The hook, or null for none.
 * @throws {TypeError} If `fn` is neither a function nor null.
 *
 * @example Counting wake-ups
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { QEMUClockType, setMainLoopTimerNotify, timerNewNs } from "@aioloop/aioloop/aio";
 * let wakes = 0;
 * setMainLoopTimerNotify(() => wakes++);
 * const t = timerNewNs(QEMUClockType.REALTIME, () => {});
 * t.modNs(0);
 * assertEquals(wakes, 1);
 * t.del();
 * setMainLoopTimerNotify(null);
 * ```
 */
export function setMainLoopTimerNotify(fn: (() => void) | null): void {
  if (fn !== null) checkFunction(fn, "Main loop timer notify");
  mainNotify = fn;
}

/**
 * Makes an idle timer in the main-loop group.
 *
 * Counterpart: `timer_new()` / `timer_new_full()` with a NULL group.
 * Thread: home thread only.
 *
 * @param clock The clock.
 * @param scale ns per unit of `mod()`'s argument.
 * @param cb Called when it fires.
 * @param options Name and attributes.
 * @returns The timer.
 * @throws {TypeError} If an argument has the wrong type.
 * @throws {RangeError} If `clock`, `scale` or `attributes` is out of range.
 *
 * @example A main-loop timer
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { QEMUClockType, SCALE_MS, timerNew } from "@aioloop/aioloop/aio";
 * const t = timerNew(QEMUClockType.REALTIME, SCALE_MS, () => {});
 * assertEquals(t.pending, false);
 * ```
 */
export function timerNew(
  clock: QEMUClockType,
  scale: number,
  cb: () => void,
  options?: QEMUTimerOptions,
): QEMUTimer {
  return new QEMUTimer(mainLoopTlg(), clock, scale, cb, options);
}

/**
 * Makes an idle ns-scale timer in the main-loop group.
 *
 * Counterpart: `timer_new_ns()`.
 * Thread: home thread only.
 *
 * @param clock The clock.
 * @param cb Called when it fires.
 * @param options Name and attributes.
 * @returns The timer.
 * @throws {TypeError} If an argument has the wrong type.
 * @throws {RangeError} If `clock` or `attributes` is out of range.
 *
 * @example A ns timer in the main loop
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { QEMUClockType, timerNewNs } from "@aioloop/aioloop/aio";
 * assertEquals(timerNewNs(QEMUClockType.HOST, () => {}).scale, 1);
 * ```
 */
export function timerNewNs(
  clock: QEMUClockType,
  cb: () => void,
  options?: QEMUTimerOptions,
): QEMUTimer {
  return timerNew(clock, SCALE_NS, cb, options);
}

/**
 * Makes an idle µs-scale timer in the main-loop group.
 *
 * Counterpart: `timer_new_us()`.
 * Thread: home thread only.
 *
 * @param clock The clock.
 * @param cb Called when it fires.
 * @param options Name and attributes.
 * @returns The timer.
 * @throws {TypeError} If an argument has the wrong type.
 * @throws {RangeError} If `clock` or `attributes` is out of range.
 *
 * @example A µs timer in the main loop
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { QEMUClockType, timerNewUs } from "@aioloop/aioloop/aio";
 * assertEquals(timerNewUs(QEMUClockType.HOST, () => {}).scale, 1000);
 * ```
 */
export function timerNewUs(
  clock: QEMUClockType,
  cb: () => void,
  options?: QEMUTimerOptions,
): QEMUTimer {
  return timerNew(clock, SCALE_US, cb, options);
}

/**
 * Makes an idle ms-scale timer in the main-loop group.
 *
 * Counterpart: `timer_new_ms()`.
 * Thread: home thread only.
 *
 * @param clock The clock.
 * @param cb Called when it fires.
 * @param options Name and attributes.
 * @returns The timer.
 * @throws {TypeError} If an argument has the wrong type.
 * @throws {RangeError} If `clock` or `attributes` is out of range.
 *
 * @example A ms timer in the main loop
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { QEMUClockType, timerNewMs } from "@aioloop/aioloop/aio";
 * assertEquals(timerNewMs(QEMUClockType.HOST, () => {}).scale, 1000000);
 * ```
 */
export function timerNewMs(
  clock: QEMUClockType,
  cb: () => void,
  options?: QEMUTimerOptions,
): QEMUTimer {
  return timerNew(clock, SCALE_MS, cb, options);
}

/**
 * Runs the expired timers of one clock in the main-loop group.
 *
 * Counterpart: `qemu_clock_run_timers()`.
 * Thread: home thread only.
 *
 * @param clock The clock.
 * @returns True if at least one callback ran.
 * @throws {RangeError} If `clock` is not a clock.
 *
 * @example Running the main loop's REALTIME timers
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { clockRunTimers, QEMUClockType } from "@aioloop/aioloop/aio";
 * assertEquals(typeof clockRunTimers(QEMUClockType.REALTIME), "boolean");
 * ```
 */
export function clockRunTimers(clock: QEMUClockType): boolean {
  checkClock(clock);
  return listOf(mainLoopTlg(), clock).run();
}

/**
 * Runs the expired timers of every clock in the main-loop group, clocks in
 * enum order (AioContext timers are not touched: their contexts run them).
 *
 * Counterpart: `qemu_clock_run_all_timers()`.
 * Thread: home thread only.
 *
 * @returns True if at least one callback ran.
 *
 * @example A main-loop iteration's timer phase
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { clockRunAllTimers, QEMUClockType, timerNewNs } from "@aioloop/aioloop/aio";
 * let ran = false;
 * timerNewNs(QEMUClockType.REALTIME, () => ran = true).modNs(0);
 * clockRunAllTimers();
 * assertEquals(ran, true);
 * ```
 */
export function clockRunAllTimers(): boolean {
  return mainLoopTlg().runTimers();
}

/**
 * Tells whether the main-loop group has a pending timer on a clock.
 *
 * Counterpart: `qemu_clock_has_timers()`.
 * Thread: home thread only.
 *
 * @param clock The clock.
 * @returns True if a timer is pending.
 * @throws {RangeError} If `clock` is not a clock.
 *
 * @example Asking for main-loop timers
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { clockHasTimers, QEMUClockType } from "@aioloop/aioloop/aio";
 * assertEquals(typeof clockHasTimers(QEMUClockType.HOST), "boolean");
 * ```
 */
export function clockHasTimers(clock: QEMUClockType): boolean {
  checkClock(clock);
  return listOf(mainLoopTlg(), clock).hasTimers;
}

/**
 * Sleeping coroutines: util/qemu-coroutine-sleep.c.
 *
 * A sleeping coroutine is marked scheduled by "qemu_co_sleep_ns", so any
 * attempt to enter or schedule it throws until it is woken, by its timer or
 * by {@linkcode CoSleepTicket.prototype.wake}.
 *
 * @example Sleep 1 ms on the realtime clock
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext, Coroutine, coSleepNs, QEMUClockType, withCurrentAioContext } from "@aioloop/aioloop";
 * using ctx = AioContext.create();
 * const co = Coroutine.create(function* () {
 *   yield* coSleepNs(QEMUClockType.REALTIME, 1_000_000);
 * });
 * withCurrentAioContext(ctx, () => {
 *   co.enter();
 *   while (!co.done) ctx.poll(true);
 * });
 * assertEquals(co.done, true);
 * ```
 *
 * @module
 */
import { Coroutine, type CoroutineFn, coroutineYield, inCoroutine } from "./coroutine.ts";
import { aioCoWake } from "./co_schedule.ts";
import { getCurrentAioContext } from "./current.ts";
import { clockGetNs, type QEMUClockType, SCALE_NS } from "./timer.ts";
import { coInternals } from "./_coroutine_internal.ts";

const SLEEP = "qemu_co_sleep_ns";

// Set by CoSleepTicket's static block: coSleep needs to publish to_wake.
let setToWake: (t: CoSleepTicket, co: Coroutine | null) => void;
let getToWake: (t: CoSleepTicket) => Coroutine | null;

/**
 * A handle on one sleep: who sleeps on it, and how to wake it early. Reuse
 * it for successive sleeps of one coroutine.
 *
 * Counterpart: `QemuCoSleep` (`qemu_co_sleep_wake`).
 *
 * Thread: home isolate.
 *
 * @example Wake a coroutine sleeping with no timer
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Coroutine, coSleep, CoSleepTicket } from "@aioloop/aioloop";
 * const w = new CoSleepTicket();
 * const co = Coroutine.create(function* () {
 *   yield* coSleep(w);
 * });
 * co.enter();
 * assertEquals(co.scheduled, "qemu_co_sleep_ns");
 * assertEquals(w.sleeping, true);
 * w.wake();
 * assertEquals(co.done, true);
 * ```
 */
export class CoSleepTicket {
  #toWake: Coroutine | null = null;

  static {
    setToWake = (t, co) => {
      t.#toWake = co;
    };
    getToWake = (t) => t.#toWake;
  }

  /**
   * True while a coroutine sleeps on this ticket.
   *
   * Counterpart: `QemuCoSleep.to_wake` being non-NULL.
   *
   * @example A fresh ticket
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { CoSleepTicket } from "@aioloop/aioloop";
   * assertEquals(new CoSleepTicket().sleeping, false);
   * ```
   */
  get sleeping(): boolean {
    return this.#toWake !== null;
  }

  /**
   * Wakes the coroutine sleeping on this ticket (with `aio_co_wake`, in the
   * context it slept in); a no-op if none sleeps.
   *
   * Counterpart: `qemu_co_sleep_wake()`.
   *
   * Thread: home isolate.
   *
   * @example Waking nobody
   * ```ts
   * import { CoSleepTicket } from "@aioloop/aioloop";
   * new CoSleepTicket().wake(); // no-op
   * ```
   */
  wake(): void {
    const co = this.#toWake;
    if (co === null) return;
    this.#toWake = null;
    const old = coInternals.casScheduled(co, SLEEP, null);
    if (old !== SLEEP) throw new Error(`Sleeping co-routine was scheduled in '${old}'`);
    aioCoWake(co);
  }
}

/**
 * Sleeps until `ticket` is woken. The coroutine is marked scheduled by
 * "qemu_co_sleep_ns" meanwhile.
 *
 * Counterpart: `qemu_co_sleep()`.
 *
 * Thread: inside a coroutine only.
 *
 * @param ticket A ticket nobody sleeps on.
 * @returns A coroutine function to run with `yield*`.
 * @throws {Error} If the ticket is in use, or the coroutine is scheduled.
 *
 * @example Sleep until woken
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Coroutine, coSleep, CoSleepTicket } from "@aioloop/aioloop";
 * const w = new CoSleepTicket();
 * let woke = false;
 * Coroutine.create(function* () {
 *   yield* coSleep(w);
 *   woke = true;
 * }).enter();
 * w.wake();
 * assertEquals(woke, true);
 * ```
 */
export function coSleep(ticket: CoSleepTicket): CoroutineFn {
  return coSleepCo(coInternals.opCreated("coSleep(ticket)"), ticket);
}

function* coSleepCo(owner: Coroutine | null, ticket: CoSleepTicket): CoroutineFn {
  coInternals.opStarted(owner);
  if (!(ticket instanceof CoSleepTicket)) throw new TypeError("Not a CoSleepTicket");
  if (!inCoroutine()) throw new Error("Co-routine is yielding to no one");
  if (getToWake(ticket) !== null) throw new Error("CoSleepTicket already has a sleeper");
  const self = Coroutine.self();
  const old = coInternals.casScheduled(self, null, SLEEP);
  if (old !== null) throw new Error(`Co-routine was already scheduled in '${old}'`);
  setToWake(ticket, self);
  yield* coroutineYield();
}

/**
 * Sleeps `ns` nanoseconds of `clock`, through a timer in the current
 * context, or until `ticket` is woken, whichever comes first.
 *
 * Counterpart: `qemu_co_sleep_ns_wakeable()`.
 *
 * Thread: inside a coroutine whose thread has a current context.
 *
 * @param ticket A ticket nobody sleeps on.
 * @param clock The clock to measure on (VIRTUAL moves only when advanced,
 * and only while enabled).
 * @param ns How long, an integer number of ns (0 or less: the next poll).
 * @returns A coroutine function to run with `yield*`.
 * @throws {RangeError} If `ns` is not a safe integer.
 * @throws {Error} If no context is current, or as {@linkcode coSleep}.
 *
 * @example Cut a sleep short
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext, Coroutine, CoSleepTicket, coSleepNsWakeable, QEMUClockType, withCurrentAioContext } from "@aioloop/aioloop";
 * using ctx = AioContext.create();
 * const w = new CoSleepTicket();
 * const co = Coroutine.create(function* () {
 *   yield* coSleepNsWakeable(w, QEMUClockType.REALTIME, 3_600_000_000_000);
 * });
 * withCurrentAioContext(ctx, () => {
 *   co.enter();
 *   w.wake();
 * });
 * assertEquals(co.done, true);
 * ```
 */
export function coSleepNsWakeable(
  ticket: CoSleepTicket,
  clock: QEMUClockType,
  ns: number,
): CoroutineFn {
  const owner = coInternals.opCreated("coSleepNsWakeable(ticket, clock, ns)");
  return coSleepNsWakeableCo(owner, ticket, clock, ns);
}

function* coSleepNsWakeableCo(
  owner: Coroutine | null,
  ticket: CoSleepTicket,
  clock: QEMUClockType,
  ns: number,
): CoroutineFn {
  coInternals.opStarted(owner);
  if (!Number.isSafeInteger(ns)) {
    throw new RangeError(`Sleep time must be a safe integer, got ${ns}`);
  }
  const ctx = getCurrentAioContext();
  if (ctx === null) throw new Error("coSleepNs() needs a current AioContext");
  const timer = ctx.timerNew(clock, SCALE_NS, () => ticket.wake(), { name: SLEEP });
  try {
    timer.mod(clockGetNs(clock) + ns);
    yield* coSleep(ticket);
  } finally {
    timer.del();
  }
}

/**
 * Sleeps `ns` nanoseconds of `clock`, through a timer in the current
 * context.
 *
 * Counterpart: `qemu_co_sleep_ns()`.
 *
 * Thread: inside a coroutine whose thread has a current context.
 *
 * @param clock The clock to measure on.
 * @param ns How long, an integer number of ns.
 * @returns A coroutine function to run with `yield*`.
 * @throws {RangeError} If `ns` is not a safe integer.
 * @throws {Error} If no context is current.
 *
 * @example Virtual time
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext, clockAdvanceVirtualNs, clockEnable, Coroutine, coSleepNs, QEMUClockType, withCurrentAioContext } from "@aioloop/aioloop";
 * using ctx = AioContext.create();
 * clockEnable(QEMUClockType.VIRTUAL, true);
 * const co = Coroutine.create(function* () {
 *   yield* coSleepNs(QEMUClockType.VIRTUAL, 1000);
 * });
 * withCurrentAioContext(ctx, () => {
 *   co.enter();
 *   clockAdvanceVirtualNs(1000);
 *   ctx.poll(false);
 * });
 * assertEquals(co.done, true);
 * clockEnable(QEMUClockType.VIRTUAL, false);
 * ```
 */
export function coSleepNs(clock: QEMUClockType, ns: number): CoroutineFn {
  const owner = coInternals.opCreated("coSleepNs(clock, ns)");
  return coSleepNsWakeableCo(owner, new CoSleepTicket(), clock, ns);
}

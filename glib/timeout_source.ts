/**
 * Timeout sources: ready once an interval of the monotonic clock has
 * passed, then re-armed from the time of the iteration that dispatched them.
 *
 * @module
 */
import { G_PRIORITY_DEFAULT } from "./constants.ts";
import { GSource, type GSourceAddOptions, type GSourceFunc } from "./source.ts";
import { addArgs } from "./_add_options.ts";
import { clockGettimeNs } from "../sys/clock.ts";
import { sourceCoreOf, sourceSetReadyTime } from "./_gmain.ts";

const NS_PER_S = 1e9;

class TimeoutSource extends GSource<GSourceFunc> {
  readonly #intervalNs: number;
  readonly #seconds: boolean;

  constructor(interval: number, seconds: boolean) {
    super();
    this.#seconds = seconds;
    this.#intervalNs = seconds ? interval * NS_PER_S : interval * 1e6;
    this.#arm(clockGettimeNs());
  }

  #arm(nowNs: number): void {
    let expiry = nowNs + this.#intervalNs;
    if (this.#seconds) {
      // GLib lands seconds timeouts on a whole second (its per-session
      // perturbation is 0 here) so that they fire together: round down when
      // within the first quarter second, up otherwise.
      const rem = expiry % NS_PER_S;
      if (rem >= NS_PER_S / 4) expiry += NS_PER_S;
      expiry -= rem;
    }
    sourceSetReadyTime(sourceCoreOf(this), true, expiry);
  }

  protected override dispatch(callback: GSourceFunc | null): boolean {
    if (callback === null) {
      this.destroy();
      throw new Error("Timeout source dispatched without a callback: call setCallback()");
    }
    const again = callback();
    if (again) {
      const ctx = sourceCoreOf(this).context;
      this.#arm(ctx !== null ? ctx.now() : clockGettimeNs());
    }
    return !!again;
  }
}

function checkInterval(interval: number, what: string): void {
  if (!Number.isInteger(interval) || interval < 0 || interval > 0xffffffff) {
    throw new RangeError(`${what} must be an integer from 0 to 4294967295, got ${interval}`);
  }
}

/**
 * Creates a timeout source, ready `intervalMs` ms from now on the monotonic
 * clock and never earlier. While its callback returns true it is re-armed
 * `intervalMs` after the dispatching iteration's time (lost time is not
 * caught up). Attach it, and set a `() => boolean` callback.
 *
 * Counterpart: `g_timeout_source_new()`.
 *
 * Thread: any; attach it on its context's home thread.
 *
 * @param intervalMs The interval in ms (a 32-bit unsigned integer).
 * @returns The new source (one reference, unattached).
 * @throws {RangeError} When the interval is out of range.
 *
 * @example A 5 ms timeout
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { GMainContext, timeoutSourceNew } from "@aioloop/aioloop/glib";
 * const ctx = new GMainContext();
 * const t = timeoutSourceNew(5);
 * let fired = false;
 * t.setCallback(() => (fired = true, false));
 * t.attach(ctx);
 * t.unref();
 * while (!fired) ctx.iteration(true);
 * assertEquals(fired, true);
 * ctx.destroy();
 * ```
 */
export function timeoutSourceNew(intervalMs: number): GSource<GSourceFunc> {
  checkInterval(intervalMs, "Interval");
  return new TimeoutSource(intervalMs, false);
}

/**
 * Creates a timeout source with a whole-second interval. As in GLib, its
 * expiry is rounded to a whole second of the monotonic clock so that such
 * timeouts fire together: it may fire up to 1/4 s before or 3/4 s after the
 * exact interval. Use `timeoutSourceNew` when precision matters.
 *
 * Counterpart: `g_timeout_source_new_seconds()`.
 *
 * Thread: any; attach it on its context's home thread.
 *
 * @param intervalS The interval in seconds.
 * @returns The new source (one reference, unattached).
 * @throws {RangeError} When the interval is out of range.
 *
 * @example A 1 s housekeeping timer
 * ```ts
 * import { timeoutSourceNewSeconds } from "@aioloop/aioloop/glib";
 * const t = timeoutSourceNewSeconds(1);
 * t.setCallback(() => true);
 * t.unref();
 * ```
 */
export function timeoutSourceNewSeconds(intervalS: number): GSource<GSourceFunc> {
  checkInterval(intervalS, "Interval");
  return new TimeoutSource(intervalS, true);
}

function add(
  make: () => GSource<GSourceFunc>,
  fn: GSourceFunc,
  opts: number | GSourceAddOptions | undefined,
  what: string,
): number {
  if (typeof fn !== "function") throw new TypeError(`${what}: callback must be a function`);
  const { priority, notify } = addArgs(opts, G_PRIORITY_DEFAULT, what);
  const source = make();
  if (priority !== G_PRIORITY_DEFAULT) source.setPriority(priority);
  source.setCallback(fn, notify);
  try {
    return source.attach(null);
  } finally {
    // Unattached (the default context is destroyed): this finalizes the
    // source, which releases the callback and calls the notify.
    source.unref();
  }
}

/**
 * Calls `fn` every `intervalMs` ms from the global default context until it
 * returns false (`G_SOURCE_REMOVE`) or the id is passed to `sourceRemove`.
 *
 * Pass `{ priority, notify }` instead of a priority for the full form: the
 * notify is called once when the source is destroyed.
 *
 * Counterpart: `g_timeout_add_full()` / `g_timeout_add()`.
 *
 * Thread: home thread of the default context.
 *
 * @param intervalMs The interval in ms.
 * @param fn The callback; return true to keep it.
 * @param priority The priority (default `G_PRIORITY_DEFAULT`), or the
 *   options of the full form.
 * @returns The source id in the default context.
 * @throws {RangeError} When the interval or priority is out of range.
 * @throws {TypeError} When `fn` is not a function.
 *
 * @example A timeout on the default context
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { GMainContext, timeoutAdd } from "@aioloop/aioloop/glib";
 * let fired = false;
 * timeoutAdd(2, () => (fired = true, false));
 * while (!fired) GMainContext.default().iteration(true);
 * assertEquals(fired, true);
 * ```
 */
export function timeoutAdd(
  intervalMs: number,
  fn: GSourceFunc,
  priority: number | GSourceAddOptions = G_PRIORITY_DEFAULT,
): number {
  checkInterval(intervalMs, "Interval");
  return add(() => timeoutSourceNew(intervalMs), fn, priority, "timeoutAdd");
}

/**
 * Calls `fn` every `intervalS` seconds (with the whole-second grouping of
 * `timeoutSourceNewSeconds`) from the global default context until it
 * returns false.
 *
 * Pass `{ priority, notify }` instead of a priority for the full form.
 *
 * Counterpart: `g_timeout_add_seconds_full()` / `g_timeout_add_seconds()`.
 *
 * Thread: home thread of the default context.
 *
 * @param intervalS The interval in seconds.
 * @param fn The callback; return true to keep it.
 * @param priority The priority (default `G_PRIORITY_DEFAULT`), or the
 *   options of the full form.
 * @returns The source id in the default context.
 * @throws {RangeError} When the interval or priority is out of range.
 * @throws {TypeError} When `fn` is not a function.
 *
 * @example Adding and removing
 * ```ts
 * import { sourceRemove, timeoutAddSeconds } from "@aioloop/aioloop/glib";
 * const id = timeoutAddSeconds(60, () => true);
 * sourceRemove(id);
 * ```
 */
export function timeoutAddSeconds(
  intervalS: number,
  fn: GSourceFunc,
  priority: number | GSourceAddOptions = G_PRIORITY_DEFAULT,
): number {
  checkInterval(intervalS, "Interval");
  return add(() => timeoutSourceNewSeconds(intervalS), fn, priority, "timeoutAddSeconds");
}

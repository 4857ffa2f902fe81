/**
 * Deferred calls: inside a `deferCallBegin()`/`deferCallEnd()` section, a
 * `deferCall(fn, opaque)` is recorded instead of run, once per distinct
 * (fn, opaque) pair, and the outermost `deferCallEnd()` runs the records in
 * the order they were first made. Code that completes many requests in a
 * row (the io_uring completion handlers, a thread pool's completion BH)
 * opens a section around them so that work each completion would trigger
 * (kicking a queue, notifying a guest) happens once for the batch.
 *
 * The state is per thread: each isolate (main thread or Worker) has its own
 * nesting level and list.
 *
 * Counterpart: `util/defer-call.c`.
 *
 * @module
 */

/** A recorded call: parallel arrays, reused across sections. */
const fns: Array<(opaque: any) => void> = [];
const opaques: unknown[] = [];
let nesting = 0;

/**
 * Opens a section: `deferCall()` records instead of calling until the
 * matching outermost {@linkcode deferCallEnd}. Sections nest.
 *
 * Counterpart: `defer_call_begin()`.
 *
 * Thread: any; the section belongs to the calling isolate.
 *
 * @example A section batches repeated calls
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { deferCall, deferCallBegin, deferCallEnd } from "@aioloop/aioloop/thread";
 * let kicks = 0;
 * const kick = (): void => {
 *   kicks++;
 * };
 * deferCallBegin();
 * deferCall(kick);
 * deferCall(kick);
 * assertEquals(kicks, 0);
 * deferCallEnd();
 * assertEquals(kicks, 1);
 * ```
 */
export function deferCallBegin(): void {
  if (nesting >= 0xffff_ffff) throw new RangeError("defer_call sections nested too deeply");
  nesting++;
}

/**
 * Closes a section. The outermost one runs every recorded call in order
 * and clears the list; a call made by a recorded one runs at once (no
 * section is open any more). If recorded calls throw, the others still
 * run, and the first error is rethrown afterwards: none is lost or run
 * twice.
 *
 * Counterpart: `defer_call_end()`.
 *
 * Thread: the isolate that opened the section.
 *
 * @throws {Error} Without a matching {@linkcode deferCallBegin}, or the
 * first error a recorded call threw.
 *
 * @example Nested sections run the calls at the outermost end
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { deferCall, deferCallBegin, deferCallEnd } from "@aioloop/aioloop/thread";
 * const log: string[] = [];
 * deferCallBegin();
 * deferCallBegin();
 * deferCall((s: string) => log.push(s), "a");
 * deferCallEnd();
 * assertEquals(log, []);
 * deferCallEnd();
 * assertEquals(log, ["a"]);
 * ```
 */
export function deferCallEnd(): void {
  if (nesting === 0) throw new Error("deferCallEnd() without deferCallBegin()");
  if (--nesting > 0 || fns.length === 0) return;
  // Detach the records first: a call that opens a section of its own (or
  // defers inside one) starts from an empty list and cannot rerun these.
  const f = fns.splice(0);
  const o = opaques.splice(0);
  let failed = false;
  let first: unknown;
  for (let i = 0; i < f.length; i++) {
    try {
      f[i](o[i]);
    } catch (e) {
      if (!failed) {
        failed = true;
        first = e;
      }
    }
  }
  if (failed) throw first;
}

/**
 * Calls `fn(opaque)` now when no section is open; inside one, records it
 * for the outermost {@linkcode deferCallEnd}, unless the same `fn` with the
 * same `opaque` (compared with `===`) is recorded already.
 *
 * Counterpart: `defer_call()`.
 *
 * Thread: any; it joins the calling isolate's section.
 *
 * @typeParam T The argument's type.
 * @param fn The function (keep one function object per purpose, so that
 * repeated calls are recognised as the same).
 * @param opaque Its argument.
 *
 * @example Outside a section the call is immediate
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { deferCall } from "@aioloop/aioloop/thread";
 * let got = 0;
 * deferCall((n: number) => {
 *   got = n;
 * }, 7);
 * assertEquals(got, 7);
 * ```
 */
export function deferCall<T>(fn: (opaque: T) => void, opaque?: T): void {
  if (typeof fn !== "function") throw new TypeError("deferCall() needs a function");
  if (nesting === 0) {
    fn(opaque as T);
    return;
  }
  // Few records per section: a linear search, as upstream does.
  for (let i = 0; i < fns.length; i++) {
    if (fns[i] === fn && opaques[i] === opaque) return;
  }
  fns.push(fn);
  opaques.push(opaque);
}

/**
 * The calling isolate's section depth (0: calls run at once).
 *
 * Counterpart: none (the `nesting_level` of `util/defer-call.c`, for tests
 * and assertions).
 *
 * Thread: any; reports the calling isolate's state.
 *
 * @returns The nesting level.
 *
 * @example Depth inside a section
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { deferCallBegin, deferCallDepth, deferCallEnd } from "@aioloop/aioloop/thread";
 * deferCallBegin();
 * assertEquals(deferCallDepth(), 1);
 * deferCallEnd();
 * assertEquals(deferCallDepth(), 0);
 * ```
 */
export function deferCallDepth(): number {
  return nesting;
}

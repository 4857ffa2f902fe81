/**
 * Promise adapters for coroutines: observe a coroutine's end as a promise,
 * and wait for a promise from inside a coroutine.
 *
 * These sit on top of the synchronous model, not instead of it. Promise
 * callbacks run only when the isolate's own event loop turns, which it does
 * not while a context is blocked in `poll(true)`: use them with contexts
 * driven by non-blocking polls between `await`s, or by the main loop's async
 * run. When a promise settles, {@linkcode coAwait} wakes its coroutine
 * through a BH in the coroutine's context (that schedule rings the context),
 * so the coroutine continues inside a poll of that context.
 *
 * @example Await a promise inside a coroutine
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext, coAwait, Coroutine, withCurrentAioContext } from "@aioloop/aioloop";
 * using ctx = AioContext.create();
 * let got = 0;
 * const co = Coroutine.create(function* () {
 *   got = yield* coAwait(Promise.resolve(42));
 * });
 * withCurrentAioContext(ctx, () => co.enter());
 * await Promise.resolve(); // let the promise callback schedule the coroutine
 * while (!co.done) withCurrentAioContext(ctx, () => ctx.poll(false));
 * assertEquals(got, 42);
 * ```
 *
 * @module
 */
import {
  Coroutine,
  type CoroutineFn,
  coroutineYield,
  inCoroutine,
  qemuAioCoroutineEnter,
} from "./coroutine.ts";
import { aioCoSchedule } from "./co_schedule.ts";

/**
 * A promise that settles when `co` terminates: fulfilled when its body
 * returns, rejected with the error when it throws.
 *
 * Counterpart: none (a promise adapter); same as
 * {@linkcode Coroutine.prototype.promise}.
 *
 * @param co The coroutine.
 * @returns The termination promise.
 *
 * @example Await the end
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Coroutine, coroutineToPromise } from "@aioloop/aioloop";
 * const co = Coroutine.create(function* () {});
 * const p = coroutineToPromise(co);
 * co.enter();
 * await p;
 * assertEquals(co.done, true);
 * ```
 */
export function coroutineToPromise(co: Coroutine): Promise<void> {
  if (!(co instanceof Coroutine)) throw new TypeError("Not a Coroutine");
  return co.promise;
}

/**
 * Waits, from a coroutine, until `value` (a promise or a plain value)
 * settles: returns what it fulfils with, or throws its rejection inside the
 * coroutine. The coroutine yields meanwhile; when the promise settles it is
 * scheduled (`aio_co_schedule`) in the context it last ran in, or, if it ran
 * with no context, entered directly from the promise callback (an error it
 * then throws becomes an unhandled rejection).
 *
 * Counterpart: none (a promise adapter).
 *
 * Thread: inside a coroutine only.
 *
 * @typeParam T The fulfilment type.
 * @param value A promise, thenable or value.
 * @returns A coroutine function to run with `yield*`; its result is the
 * fulfilment value.
 * @throws {Error} Outside a coroutine, or the promise's rejection.
 *
 * @example No context: resumed from the promise callback
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { coAwait, Coroutine } from "@aioloop/aioloop";
 * let msg = "";
 * const co = Coroutine.create(function* () {
 *   try {
 *     yield* coAwait(Promise.reject(new Error("boom")));
 *   } catch (e) {
 *     msg = (e as Error).message;
 *   }
 * });
 * co.enter();
 * await co.promise;
 * assertEquals(msg, "boom");
 * ```
 */
export function* coAwait<T>(value: T | PromiseLike<T>): CoroutineFn<Awaited<T>> {
  if (!inCoroutine()) throw new Error("coAwait() must be called from a coroutine");
  const self = Coroutine.self();
  let state = 0; // 0 pending, 1 fulfilled, 2 rejected
  let result: unknown;
  const settle = (s: number, v: unknown): void => {
    state = s;
    result = v;
    const ctx = self.ctx;
    if (ctx !== null) aioCoSchedule(ctx, self);
    else qemuAioCoroutineEnter(null, self);
  };
  Promise.resolve(value).then((v) => settle(1, v), (e) => settle(2, e));
  // Callbacks never run synchronously, so the first yield always happens;
  // the loop only guards against being entered early by someone else.
  while (state === 0) yield* coroutineYield();
  if (state === 2) throw result;
  return result as Awaited<T>;
}

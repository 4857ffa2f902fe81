/**
 * Waiting for a condition by running an event loop: util/aio-wait.c.
 *
 * {@linkcode aioWaitWhile} polls until a condition turns false; whoever
 * changes the condition from elsewhere calls {@linkcode aioWaitKick} so the
 * waiter's blocking poll returns and re-checks it.
 *
 * The waiter count is per isolate (QEMU's `global_aio_wait` is per
 * process): a Worker that changes a waited-for condition must ring the main
 * context itself (schedule something on it through the context's handle).
 *
 * @example Wait for a bottom half of another context
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { aioWaitBhOneshot } from "@aioloop/aioloop";
 * import { qemuCleanupMainLoop, qemuGetAioContext, qemuInitMainLoop } from "@aioloop/aioloop/main-loop";
 * qemuInitMainLoop();
 * let ran = false;
 * aioWaitBhOneshot(qemuGetAioContext(), () => ran = true);
 * assertEquals(ran, true);
 * qemuCleanupMainLoop();
 * ```
 *
 * @module
 */
import type { AioContext } from "./aio_context.ts";
import { inCoroutine } from "./coroutine.ts";
import { getCurrentAioContext, withCurrentAioContext } from "./current.ts";
import { getMainAioContext } from "./_main_context.ts";

let numWaiters = 0;

function dummyBh(): void {
  // Only makes the waiter's aio_poll return.
}

/**
 * Polls a context (blocking) while `cond()` is true. If `ctx` is the
 * current context it polls `ctx`; otherwise (null, or a context run by
 * another thread) it polls the main context, and must then be called from
 * the main context's thread.
 *
 * Counterpart: `AIO_WAIT_WHILE()` / `AIO_WAIT_WHILE_UNLOCKED()`.
 *
 * Thread: the home thread of `ctx`, or the main thread; never inside a
 * coroutine.
 *
 * @param ctx The context whose events change `cond`, or null.
 * @param cond Checked before each poll; the wait ends when it is false.
 * @returns True if it polled at least once.
 * @throws {Error} Inside a coroutine, or when it would poll the main context
 * from another thread (or there is none).
 *
 * @example Wait until a bottom half ran
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext, aioWaitWhile, withCurrentAioContext } from "@aioloop/aioloop";
 * using ctx = AioContext.create();
 * let done = false;
 * ctx.bhScheduleOneshot(() => done = true);
 * assertEquals(withCurrentAioContext(ctx, () => aioWaitWhile(ctx, () => !done)), true);
 * ```
 */
export function aioWaitWhile(ctx: AioContext | null, cond: () => boolean): boolean {
  if (typeof cond !== "function") throw new TypeError("Wait condition must be a function");
  if (inCoroutine()) throw new Error("aioWaitWhile() must not be called from a coroutine");
  let target = ctx;
  if (ctx === null || ctx !== getCurrentAioContext()) {
    const main = getMainAioContext();
    if (main === null) throw new Error("aioWaitWhile() needs a main AioContext");
    if (getCurrentAioContext() !== main) {
      throw new Error("aioWaitWhile() on a foreign context must run in the main context's thread");
    }
    target = main;
  }
  let waited = false;
  numWaiters++;
  try {
    while (cond()) {
      target!.poll(true);
      waited = true;
    }
  } finally {
    numWaiters--;
  }
  return waited;
}

/**
 * Wakes {@linkcode aioWaitWhile} waiters of this isolate so they re-check
 * their condition: if any waits, schedules an empty oneshot BH on the main
 * context. Call it after changing a condition somebody may wait on.
 *
 * Counterpart: `aio_wait_kick()`.
 *
 * Thread: home isolate (any context of it).
 *
 * @example Nobody waits: nothing happens
 * ```ts
 * import { aioWaitKick } from "@aioloop/aioloop";
 * aioWaitKick();
 * ```
 */
export function aioWaitKick(): void {
  if (numWaiters > 0) getMainAioContext()?.bhScheduleOneshot(dummyBh, "aio_wait_kick");
}

/**
 * Runs `cb` in `ctx` through a oneshot BH and waits until it has run. An
 * error thrown by `cb` leaves the wait.
 *
 * QEMU waits by polling the main context while `ctx`'s own thread runs the
 * BH. A context object always lives in the calling isolate, so no other
 * thread would run it: for a context other than the main one, the wait
 * polls `ctx` itself, with `ctx` made current meanwhile. Either way the
 * BH runs inside the waiting poll, so no {@linkcode aioWaitKick} follows it.
 *
 * Counterpart: `aio_wait_bh_oneshot()`.
 *
 * Thread: the main context's thread only; never inside a coroutine.
 *
 * @param ctx The context to run `cb` in.
 * @param cb The callback.
 * @throws {Error} Off the main thread, inside a coroutine, or what `cb` threw.
 *
 * @example Run a callback in the main context
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { aioWaitBhOneshot } from "@aioloop/aioloop";
 * import { qemuCleanupMainLoop, qemuGetAioContext, qemuInitMainLoop } from "@aioloop/aioloop/main-loop";
 * qemuInitMainLoop();
 * const order: string[] = [];
 * aioWaitBhOneshot(qemuGetAioContext(), () => order.push("cb"));
 * order.push("after");
 * assertEquals(order, [ "cb", "after" ]);
 * qemuCleanupMainLoop();
 * ```
 */
export function aioWaitBhOneshot(ctx: AioContext, cb: () => void): void {
  if (typeof cb !== "function") throw new TypeError("BH callback must be a function");
  const main = getMainAioContext();
  if (main === null || getCurrentAioContext() !== main) {
    throw new Error("aioWaitBhOneshot() must be called from the main context's thread");
  }
  let done = false;
  // QEMU kicks after the callback because its BH runs on another thread;
  // here the BH runs inside the very poll that waits, so a kick would only
  // leave a stray BH on the main context.
  ctx.bhScheduleOneshot(() => {
    cb();
    done = true;
  }, "aio_wait_bh");
  if (ctx === main) aioWaitWhile(null, () => !done);
  else withCurrentAioContext(ctx, () => aioWaitWhile(ctx, () => !done));
}

/**
 * The per-thread current AioContext. An isolate is one thread, so "per
 * thread" here means per isolate (main thread or Worker).
 *
 * @module
 */
import type { AioContext } from "./aio_context.ts";
import { getMainAioContext } from "./_main_context.ts";

let current: AioContext | null = null;
let bqlHeld = true;

/**
 * The context of the calling thread: the one set with
 * {@linkcode setCurrentAioContext}, else the main context when the big
 * lock is held (always, on the main isolate, unless a test emulates a
 * foreign thread), else null.
 *
 * Counterpart: `qemu_get_current_aio_context()`.
 *
 * @returns The current context or null.
 *
 * @example Outside any loop
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { getCurrentAioContext } from "@aioloop/aioloop";
 * assertEquals(getCurrentAioContext(), null);
 * ```
 */
export function getCurrentAioContext(): AioContext | null {
  if (current !== null) return current;
  return bqlHeld ? getMainAioContext() : null;
}

/**
 * Sets (or, with null, clears) the calling thread's current context.
 *
 * Counterpart: `qemu_set_current_aio_context()`.
 *
 * @param ctx The context, or null.
 * @throws {Error} If a different context is already current.
 *
 * @example Make a context current
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext, getCurrentAioContext, setCurrentAioContext } from "@aioloop/aioloop";
 * using ctx = AioContext.create();
 * setCurrentAioContext(ctx);
 * assertEquals(getCurrentAioContext() === ctx, true);
 * setCurrentAioContext(null);
 * ```
 */
export function setCurrentAioContext(ctx: AioContext | null): void {
  if (ctx !== null && current !== null && current !== ctx) {
    throw new Error("A different AioContext is already current in this thread");
  }
  current = ctx;
}

/**
 * Runs `fn` with the current context forced to `ctx` (null emulates a
 * foreign thread with no context and no big lock), then restores it.
 *
 * Counterpart: none in QEMU; it stands for running code on another thread.
 *
 * @param ctx The context to make current, or null.
 * @param fn The function to run.
 * @returns What `fn` returns.
 *
 * @example Emulating a worker thread
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { getCurrentAioContext, withCurrentAioContext } from "@aioloop/aioloop";
 * assertEquals(withCurrentAioContext(null, () => getCurrentAioContext()), null);
 * ```
 */
export function withCurrentAioContext<T>(ctx: AioContext | null, fn: () => T): T {
  const savedCurrent = current, savedBql = bqlHeld;
  current = ctx;
  bqlHeld = ctx !== null;
  try {
    return fn();
  } finally {
    current = savedCurrent;
    bqlHeld = savedBql;
  }
}

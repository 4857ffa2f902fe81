/**
 * The per-thread current AioContext. An isolate is one thread, so "per
 * thread" here means per isolate (main thread or Worker).
 *
 * @module
 */
import type { AioContext } from "./aio_context.ts";
import { getMainAioContext } from "./_main_context.ts";
import { bqlMask, bqlVisible, mainThreadVisible } from "../thread/_bql_state.ts";

let current: AioContext | null = null;

/**
 * The context of the calling thread: the one set with
 * {@linkcode setCurrentAioContext}, else the main context on the main
 * isolate (QEMU's main thread, unless `withCurrentAioContext(null, ...)`
 * stands for a foreign thread) or on a thread that holds the BQL
 * (`bqlLocked()` of the cpus entry point: a vCPU thread), else null.
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
  // The main isolate is QEMU's main thread (its current context is the
  // main one); another thread gets it while holding the BQL (a vCPU).
  return mainThreadVisible() || bqlVisible() ? getMainAioContext() : null;
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
  const savedCurrent = current;
  current = ctx;
  // A foreign thread does not hold the BQL: bqlLocked() reads false inside.
  if (ctx === null) bqlMask(1);
  try {
    return fn();
  } finally {
    current = savedCurrent;
    if (ctx === null) bqlMask(-1);
  }
}

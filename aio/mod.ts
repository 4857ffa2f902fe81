/**
 * The AioContext family: util/async.c (contexts, bottom halves, notify),
 * util/aio-posix.c (fd handlers, adaptive polling), qemu-timer.c (timers on
 * named clocks) and event_notifier-posix.c.
 *
 * @example One poll runs a bottom half
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext } from "@aioloop/aioloop/aio";
 * using ctx = AioContext.create();
 * let n = 0;
 * ctx.bhScheduleOneshot(() => n++);
 * assertEquals(ctx.poll(true), true);
 * assertEquals(n, 1);
 * ```
 *
 * @module
 */
export * from "./aio_context.ts";
export * from "./bh.ts";
export * from "./fd_handlers.ts";
export * from "./current.ts";
export * from "./handle.ts";
export * from "./event_notifier.ts";
export * from "./timer.ts";
export * from "./coroutine.ts";
export * from "./coroutine_lock.ts";
export * from "./co_schedule.ts";
export * from "./co_sleep.ts";
export * from "./aio_wait.ts";
export * from "./co_promise.ts";
export * from "./remote_timer.ts";
export * from "./aio_sqe.ts";
export * from "./aio_file.ts";

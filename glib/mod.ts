/**
 * The GLib main-loop core that QEMU's main loop sits on: {@linkcode GMainContext},
 * {@linkcode GSource}, {@linkcode GMainLoop}, and timeout, idle and unix fd
 * sources, with GLib's semantics (gmain.c) over libc's ppoll(2).
 *
 * ## Rules (as in GLib)
 *
 * - A source is ready when its prepare or check says so, when one of its
 *   unix fds ({@linkcode GSource.prototype.addUnixFd}) has events, or when
 *   its ready time has passed.
 * - Each iteration dispatches only the ready sources of the most urgent
 *   (numerically lowest) ready priority; `G_PRIORITY_HIGH` (-100) runs
 *   before `G_PRIORITY_DEFAULT` (0) before `G_PRIORITY_DEFAULT_IDLE` (200).
 * - While a source dispatches it is blocked (its fds leave the poll set and
 *   a nested iteration skips it) unless it can recurse.
 * - A source destroyed during any dispatch is never dispatched again; its
 *   finalize runs once, when its last reference goes, never in the middle
 *   of its own dispatch.
 * - Timeouts are on the monotonic clock and never fire early.
 * - `attach()` without a context, `timeoutAdd`, `idleAdd`, `unixFdAdd`,
 *   `sourceRemove` and `new GMainLoop()` use the global default context of
 *   the isolate, `GMainContext.default()`.
 *
 * ## Polling elsewhere: the split iteration
 *
 * {@linkcode GMainContext.prototype.iteration} blocks the isolate in a
 * synchronous ppoll(2). A loop that must keep Deno's own event loop turning
 * (QEMU's main loop, on the main thread) runs the phases itself and does the
 * wait elsewhere, for instance as a `nonblocking: true` FFI poll:
 *
 * 1. `ctx.acquire()` (optional, as `os_host_main_loop_wait` does).
 * 2. `const { priority } = ctx.prepare()`.
 * 3. `const { timeoutMs, timeoutNs, count } = ctx.query(priority, fds)`:
 *    `fds` (the caller's `GPollFD[]`, reused) now holds `count` entries,
 *    sorted by fd, always including the context's wakeup eventfd. Merge in
 *    your own fds and shorten the timeout as you like.
 * 4. Poll them (await the nonblocking call), then copy each `revents` back
 *    into `fds[i]`.
 * 5. `if (ctx.check(priority, fds, count)) ctx.dispatch()`.
 * 6. `ctx.release()`.
 *
 * Between steps 3 and 5 the context counts as "being polled": attaching or
 * destroying a source, changing fds, priorities or ready times, and
 * `GMainLoop.quit()` ring the wakeup eventfd so that the outside poll
 * returns, and `check` then returns false (the poll set changed) so the
 * next round starts afresh; nothing ready is lost. Another thread wakes the
 * context by writing an 8-byte 1 to {@linkcode GMainContext.prototype.wakeupFd}.
 *
 * ```ts ignore
 * import { GMainContext, type GPollFD } from "@aioloop/aioloop/glib";
 * import { PollFdArray, pollNonblocking } from "./my_poll.ts"; // your async poll
 * const ctx = GMainContext.default();
 * const fds: GPollFD[] = [];
 * const pfa = new PollFdArray();
 * for (;;) {
 *   ctx.acquire();
 *   const { priority } = ctx.prepare();
 *   const { timeoutMs, count } = ctx.query(priority, fds);
 *   pfa.clear();
 *   for (let i = 0; i < count; i++) pfa.push(fds[i].fd, fds[i].events);
 *   await pollNonblocking(pfa, timeoutMs);
 *   for (let i = 0; i < count; i++) fds[i].revents = pfa.revents(i);
 *   if (ctx.check(priority, fds, count)) ctx.dispatch();
 *   ctx.release();
 * }
 * ```
 *
 * @example A timeout and an idle callback on a private context
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { GMainContext, GMainLoop, idleSourceNew, timeoutSourceNew } from "@aioloop/aioloop/glib";
 * const ctx = new GMainContext();
 * const loop = new GMainLoop(ctx);
 * const order: string[] = [];
 * const idle = idleSourceNew();
 * idle.setCallback(() => (order.push("idle"), false));
 * idle.attach(ctx);
 * const t = timeoutSourceNew(5);
 * t.setCallback(() => (order.push("timeout"), loop.quit(), false));
 * t.attach(ctx);
 * loop.run();
 * assertEquals(order, ["idle", "timeout"]);
 * ctx.destroy();
 * ```
 *
 * @module
 */
export * from "./constants.ts";
export * from "./gpollfd.ts";
export * from "./source.ts";
export * from "./main_context.ts";
export * from "./gmain_loop.ts";
export * from "./timeout_source.ts";
export * from "./idle_source.ts";
export * from "./unix_fd_source.ts";
export * from "./source_remove.ts";
export * from "./monotonic_time.ts";

/**
 * # aioloop
 *
 * QEMU's event loop for Deno: the AioContext of `util/async.c` and
 * `util/aio-posix.c` (bottom halves, timers on named clocks, fd handlers,
 * adaptive busy polling) over real libc `poll`/`epoll` through FFI.
 *
 * This root face is the everyday API: `AioContext`, bottom halves, timers
 * and clocks, fd handlers, `EventNotifier`, coroutines and their locks, and
 * `SysError`. The rest are subpath exports: `./main-loop` (util/main-loop.c),
 * `./glib` (GMainContext and sources), `./thread-pool`, `./iothread`,
 * `./fdmon` (the fd monitor backends) and `./sys` (the libc bindings).
 *
 * Every public symbol names its QEMU or GLib counterpart in its docs
 * (`aio_bh_new` → {@linkcode AioContext.prototype.bhNew}, ...). Calls that
 * touch fds need `--allow-ffi`; importing needs no permission.
 *
 * @example React to a pipe, a bottom half and a timer in one loop
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext, clockGetNs, QEMUClockType, SCALE_MS } from "@aioloop/aioloop";
 * import { close, pipe, read, write } from "@aioloop/aioloop/sys";
 *
 * using ctx = AioContext.create();
 * const [r, w] = pipe();
 * const events: string[] = [];
 * ctx.setFdHandler(r, { read: () => { read(r, new Uint8Array(64)); events.push("fd"); } });
 * ctx.bhScheduleOneshot(() => events.push("bh"));
 * const t = ctx.timerNew(QEMUClockType.REALTIME, SCALE_MS, () => events.push("timer"));
 * t.mod(clockGetNs(QEMUClockType.REALTIME) / 1e6 + 2);
 * write(w, new Uint8Array([1]));
 * while (events.length < 3) ctx.poll(true);
 * assertEquals(events, [ "bh", "fd", "timer" ]);
 * ctx.setFdHandler(r, null);
 * close(r);
 * close(w);
 * ```
 *
 * @module
 */
export * from "./aio/mod.ts";
export * from "./sys/errno.ts";

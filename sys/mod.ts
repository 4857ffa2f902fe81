/**
 * The libc layer: typed FFI wrappers for the fd calls the event loop makes,
 * and {@linkcode SysError}. libc is opened lazily, on the first call, so
 * importing needs no permission; calls need `--allow-ffi`.
 *
 * @example A pipe
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { close, pipe, read, write } from "@aioloop/aioloop/sys";
 * const [r, w] = pipe();
 * write(w, new Uint8Array([7]));
 * const b = new Uint8Array(1);
 * read(r, b);
 * assertEquals(b[0], 7);
 * close(r);
 * close(w);
 * ```
 *
 * @module
 */
export * from "./errno.ts";
export * from "./fd.ts";
export * from "./clock.ts";
export * from "./poll.ts";
export * from "./epoll.ts";
export * from "./open.ts";
export * from "./dup.ts";
export * from "./rlimit.ts";
export * from "./inotify.ts";
export * from "./io_uring.ts";
export * from "./pread.ts";

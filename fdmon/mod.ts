/**
 * The fd monitors: the interchangeable backends an AioContext waits on its
 * file descriptors with (QEMU's `FDMonOps`). `io_uring` is the default
 * where the kernel allows it (as in QEMU 10.2); elsewhere `poll`,
 * which upgrades a busy context (64 fds or more) to `epoll` for good. Each
 * can be chosen outright.
 *
 * A context picks its backend with {@linkcode resolveFdMon}: an explicit
 * choice, else the environment variable `AIOLOOP_FDMON`
 * (`poll|epoll|io_uring|auto`, read only when env access to it is already
 * granted), else `auto`. `ctx.fdmonInfo()` says which one a context got
 * and, when `auto` could not have io_uring, why.
 *
 * @example Listing and choosing backends
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { resolveFdMon, supportedFdMons } from "@aioloop/aioloop/fdmon";
 * assertEquals(supportedFdMons().includes("poll"), true);
 * assertEquals(resolveFdMon("poll").name, "poll");
 * ```
 *
 * @module
 */
export * from "./fdmon_ops.ts";
export * from "./aio_handler.ts";
export * from "./poll.ts";
export * from "./epoll.ts";
export * from "./io_uring.ts";
export * from "./select.ts";
export * from "./fdmon_unavailable_error.ts";
export * from "./io_uring_sqe.ts";

/**
 * The fd monitors: the interchangeable backends an AioContext waits on its
 * file descriptors with (QEMU's `FDMonOps`). `poll` is the baseline and
 * upgrades a busy context (64 fds or more) to `epoll` for good; `epoll`
 * and `io_uring` (where the kernel allows it) can be chosen outright.
 *
 * A context picks its backend with {@linkcode resolveFdMon}: an explicit
 * choice, else the environment variable `AIOLOOP_FDMON`
 * (`poll|epoll|io_uring|auto`, read only when env access to it is already
 * granted), else `auto`.
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
export * from "./io_uring_sqe.ts";

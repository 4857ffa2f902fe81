/**
 * The error a context creation throws when the fd monitor it must use
 * cannot be had.
 *
 * @module
 */
import { errnoName } from "../sys/errno.ts";
import type { FdMonName } from "./fdmon_ops.ts";

/**
 * An fd monitor that was asked for, or that the "one context has io_uring,
 * every context gets it" rule demands, cannot be set up here. It is a
 * `Deno.errors.NotSupported`; `errno`/`code` name the failed call's error
 * (`EPERM` for io_uring turned off by the sysctl `kernel.io_uring_disabled`
 * or seccomp, `ENOSYS` before Linux 5.1, `EMFILE` with no fd left ...), or
 * are 0/"" when the kernel lacks a feature. The `SysError`, if any, is the
 * `cause`.
 *
 * Counterpart: the `Error` of `aio_context_setup()` ("Failed to initialize
 * io_uring") that makes `aio_context_new()` fail.
 *
 * Thread: thrown in the isolate that creates the context.
 *
 * @example Forcing io_uring where it may be missing
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext } from "@aioloop/aioloop";
 * import { FdMonUnavailableError } from "@aioloop/aioloop/fdmon";
 * try {
 *   using ctx = AioContext.create({ fdmon: "io_uring" });
 *   assertEquals(ctx.fdmon, "io_uring");
 * } catch (e) {
 *   if (!(e instanceof FdMonUnavailableError)) throw e;
 *   assertEquals(e.fdmon, "io_uring");
 *   assertEquals(e.code.startsWith("E") || e.code === "", true);
 * }
 * ```
 */
export class FdMonUnavailableError extends Deno.errors.NotSupported {
  /** The monitor that could not be set up. */
  readonly fdmon: FdMonName;
  /** The errno of the failed call, or 0 when a kernel feature is missing. */
  readonly errno: number;
  /** The errno name (`EPERM` ...), or "" with errno 0. */
  readonly code: string;

  /**
   * Builds the error.
   *
   * @param fdmon The monitor that could not be set up.
   * @param errno The failed call's errno, or 0.
   * @param message The whole message.
   * @param cause The underlying error, if any.
   */
  constructor(fdmon: FdMonName, errno: number, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "FdMonUnavailableError";
    this.fdmon = fdmon;
    this.errno = errno;
    this.code = errno === 0 ? "" : errnoName(errno);
  }
}

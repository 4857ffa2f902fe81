/**
 * User io_uring requests on a context: `aioAddSqe(ctx, prep, handler)`
 * queues an SQE that `prep` fills, on the ring of the context's io_uring fd
 * monitor, and `handler(res, flags)` runs with its completion in the
 * context's thread, while the context polls (inside a `deferCallBegin()` /
 * `deferCallEnd()` section, so handlers can batch follow-up work with
 * `deferCall()`).
 *
 * Destroying the context cancels the requests still in flight
 * (`IORING_OP_ASYNC_CANCEL`), waits for them, and calls each handler once:
 * with -ECANCELED, or with its own result when it finished first. (QEMU
 * drops them silently; here no handler is left hanging.)
 *
 * Counterpart: `aio_add_sqe()`, `aio_has_io_uring()`, `CqeHandler`
 * (`include/qemu/aio.h`, `util/aio-posix.c`, `util/fdmon-io_uring.c`).
 *
 * @example Reading a file through the context's ring
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { aioAddSqe, AioContext, aioHasIoUring, prepRead } from "@aioloop/aioloop";
 * import { fdmonIoUring } from "@aioloop/aioloop/fdmon";
 * import { close, open } from "@aioloop/aioloop/sys";
 * const path = Deno.makeTempFileSync();
 * Deno.writeTextFileSync(path, "hello");
 * const fd = open(path);
 * using ctx = AioContext.create({ fdmon: fdmonIoUring.supported() ? "io_uring" : "poll" });
 * if (aioHasIoUring(ctx)) {
 *   const buf = new Uint8Array(5);
 *   let got = 0;
 *   aioAddSqe(ctx, (sqe) => prepRead(sqe, fd, buf, 0), (res) => {
 *     got = res;
 *   });
 *   while (got === 0) ctx.poll(true);
 *   assertEquals(new TextDecoder().decode(buf), "hello");
 * }
 * close(fd);
 * Deno.removeSync(path);
 * ```
 *
 * @module
 */
import type { AioContext } from "./aio_context.ts";
import { internals } from "./_internal.ts";
import { CTL_NOTIFY_ME } from "./_ctl_block.ts";
import { withCurrentAioContext } from "./current.ts";
import type { FdMon, FdMonName } from "../fdmon/fdmon_ops.ts";
import type { CqeHandler, SqePrep } from "../fdmon/io_uring_sqe.ts";

export {
  type CqeHandler,
  IORING_OP_FSYNC,
  IORING_OP_NOP,
  IORING_OP_READ,
  IORING_OP_WRITE,
  prepFsync,
  prepNop,
  prepRead,
  prepWrite,
  Sqe,
  type SqePrep,
} from "../fdmon/io_uring_sqe.ts";

/**
 * Thrown when a context's fd monitor is not io_uring, so it cannot take
 * user io_uring requests.
 *
 * Counterpart: none (QEMU asserts `aio_has_io_uring()` instead).
 *
 * @example The error of a poll context
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { aioAddSqe, AioContext, IoUringUnavailableError, prepNop } from "@aioloop/aioloop";
 * using ctx = AioContext.create({ fdmon: "poll" });
 * let err: unknown;
 * try {
 *   aioAddSqe(ctx, prepNop, () => {});
 * } catch (e) {
 *   err = e;
 * }
 * assertEquals(err instanceof IoUringUnavailableError, true);
 * assertEquals((err as IoUringUnavailableError).fdmon, "poll");
 * ```
 */
export class IoUringUnavailableError extends Error {
  /** The fd monitor the context has. */
  readonly fdmon: FdMonName;

  /**
   * Builds the error for a context.
   *
   * @param ctxName The context's name.
   * @param fdmon Its fd monitor.
   */
  constructor(ctxName: string, fdmon: FdMonName) {
    super(
      `AioContext '${ctxName}' uses the ${fdmon} fd monitor; io_uring requests need ` +
        `AioContext.create({ fdmon: "io_uring" })`,
    );
    this.name = "IoUringUnavailableError";
    this.fdmon = fdmon;
  }
}

/**
 * Whether `ctx` can take io_uring requests ({@linkcode aioAddSqe}): its fd
 * monitor is io_uring.
 *
 * Counterpart: `aio_has_io_uring()`.
 *
 * Thread: the context's home thread.
 *
 * @param ctx The context.
 * @returns True for an io_uring context that is not destroyed.
 *
 * @example An epoll context has no ring
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext, aioHasIoUring } from "@aioloop/aioloop";
 * using ctx = AioContext.create({ fdmon: "epoll" });
 * assertEquals(aioHasIoUring(ctx), false);
 * ```
 */
export function aioHasIoUring(ctx: AioContext): boolean {
  if (ctx.destroyed) return false;
  const m = internals(ctx).posix.fdmon;
  return m.addSqe !== undefined;
}

const CANCEL_HOOK = Symbol("aio_sqe cancel hook");

/**
 * Queues a user io_uring request on `ctx`'s ring: `prep` fills the zeroed
 * SQE (opcode, fd, addr, len, off, flags; `user_data` is the context's),
 * and `handler(res, flags)` runs once with the completion, in `ctx`'s
 * thread while it polls; `res` is negative (-errno) on failure. The kernel
 * sees the SQE at the latest when the context next polls.
 *
 * Memory the request uses must stay put until the handler runs: the prep
 * helpers (`prepRead`, `prepWrite`) keep their buffer referenced; other
 * memory goes to `sqe.keep()`. Do not transfer or resize a buffer's
 * ArrayBuffer while its request is in flight.
 *
 * Counterpart: `aio_add_sqe()` (the handler plays `CqeHandler.cb`).
 *
 * Thread: the context's home thread.
 *
 * @param ctx An io_uring context ({@linkcode aioHasIoUring}).
 * @param prep Fills the SQE; if it throws, nothing is queued and the error
 * is rethrown.
 * @param handler Receives the result.
 * @throws {IoUringUnavailableError} If the context's fd monitor is not io_uring.
 * @throws {Deno.errors.BadResource} If the context is destroyed or being destroyed.
 * @throws {TypeError} If `prep` or `handler` is not a function.
 *
 * @example A NOP completes with 0
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { aioAddSqe, AioContext, prepNop } from "@aioloop/aioloop";
 * import { fdmonIoUring } from "@aioloop/aioloop/fdmon";
 * if (fdmonIoUring.supported()) {
 *   using ctx = AioContext.create({ fdmon: "io_uring" });
 *   let res = -1;
 *   aioAddSqe(ctx, prepNop, (r) => {
 *     res = r;
 *   });
 *   while (res === -1) ctx.poll(true);
 *   assertEquals(res, 0);
 * }
 * ```
 */
export function aioAddSqe(ctx: AioContext, prep: SqePrep, handler: CqeHandler): void {
  if (ctx.destroyed) {
    throw new Deno.errors.BadResource(`AioContext '${ctx.name}' was destroyed`);
  }
  const i = internals(ctx);
  const m = i.posix.fdmon;
  if (m.addSqe === undefined) throw new IoUringUnavailableError(ctx.name, m.name);
  if (!i.slots.has(CANCEL_HOOK)) {
    // First request on this context: at destroy, cancel what is in flight
    // before anything else is torn down, with the context current so that
    // handlers waking coroutines enter them at once.
    i.slots.set(CANCEL_HOOK, true);
    i.destroyHooks.unshift(() => {
      const fdmon: FdMon = i.posix.fdmon;
      if (fdmon.cancelSqes !== undefined) withCurrentAioContext(ctx, () => fdmon.cancelSqes!());
    });
  }
  m.addSqe(prep, handler);
  // The SQE goes to the kernel with the context's next wait. A caller
  // outside the context's own dispatch (a promise callback while the main
  // loop is parked in its wait, notify_me set) must cut that wait short.
  // Otherwise no kick: it would only make the next blocking poll return
  // before the completion.
  if (Atomics.load(i.ctl, CTL_NOTIFY_ME) !== 0) ctx.notify();
}

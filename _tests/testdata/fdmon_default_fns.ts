// Functions _tests/fdmon_default_test.ts runs in an IOThread.
import { getCurrentAioContext } from "../../aio/current.ts";
import { AioContext } from "../../aio/aio_context.ts";
import { ioUringHooks } from "../../fdmon/_io_uring_hooks.ts";

/** The fd monitor of the IOThread's own context. */
export function threadContextFdMon(): string {
  return getCurrentAioContext()!.fdmon;
}

/** Makes io_uring fail with `errno` in this isolate and tries an auto context. */
export function failingAutoContext(errno: number): { name: string; code: string } | null {
  ioUringHooks.setupErrno = errno;
  try {
    using _ctx = AioContext.create({ fdmon: "auto" });
    return null;
  } catch (e) {
    const err = e as Error & { code: string };
    return { name: err.name, code: err.code };
  } finally {
    ioUringHooks.setupErrno = null;
  }
}

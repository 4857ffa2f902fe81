/**
 * The Big QEMU Lock.
 *
 * @module
 */
import type { QemuCond } from "../thread/cond.ts";
import type { QemuMutex } from "../thread/mutex.ts";
import type { SharedWordHandle } from "../thread/shared_word.ts";
import {
  bqlAttachMutex,
  bqlMutex,
  bqlOwned,
  bqlSetOwned,
  bqlUnlockBlocked,
  bqlUnlockBlockedAdd,
  bqlVisible,
} from "../thread/_bql_state.ts";

function mutexOrThrow(what: string): QemuMutex {
  const m = bqlMutex();
  if (m === null) {
    throw new Error(
      `${what}: this Worker has no BQL; call bqlAttach(handle) with the main isolate's bqlHandle() first`,
    );
  }
  return m;
}

/**
 * Takes the BQL, the one process-wide lock shared by the main isolate,
 * vCPU Workers and any Worker that attached it. Blocks the calling thread
 * (event loop included) while another thread holds it. Never hold it
 * across an `await`: Deno would run unrelated callbacks meanwhile.
 *
 * Counterpart: `bql_lock()`.
 *
 * Thread: any thread that has the BQL (the main isolate, vCPU Workers,
 * Workers that called {@linkcode bqlAttach}).
 *
 * @throws {Error} If this thread already holds the BQL (it is not
 * recursive; use {@linkcode bqlLockGuard}), or has none attached.
 *
 * @example Lock and unlock
 * ```ts
 * import { bqlLock, bqlLocked, bqlUnlock } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * bqlLock();
 * assertEquals(bqlLocked(), true);
 * bqlUnlock();
 * assertEquals(bqlLocked(), false);
 * ```
 */
export function bqlLock(): void {
  const m = mutexOrThrow("bqlLock()");
  if (bqlOwned()) throw new Error("bqlLock(): this thread already holds the BQL");
  m.lock();
  bqlSetOwned(true);
}

/**
 * Releases the BQL.
 *
 * Counterpart: `bql_unlock()`.
 *
 * Thread: the thread that holds it.
 *
 * @throws {Error} If this thread does not hold the BQL, or if unlocking is
 * blocked by {@linkcode bqlBlockUnlock}.
 *
 * @example Unlocking what is not held throws
 * ```ts
 * import { bqlUnlock } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * let threw = false;
 * try {
 *   bqlUnlock();
 * } catch {
 *   threw = true;
 * }
 * assertEquals(threw, true);
 * ```
 */
export function bqlUnlock(): void {
  const m = mutexOrThrow("bqlUnlock()");
  if (!bqlOwned()) throw new Error("bqlUnlock(): this thread does not hold the BQL");
  if (bqlUnlockBlocked()) {
    throw new Error("bqlUnlock(): unlocking the BQL is blocked (bqlBlockUnlock(true) is in force)");
  }
  bqlSetOwned(false);
  m.unlock();
}

/**
 * Whether the calling thread holds the BQL. It reads false while the
 * thread sleeps in {@linkcode qemuCondWaitBql}, and inside
 * `withCurrentAioContext(null, ...)`, which stands for a foreign thread.
 *
 * Counterpart: `bql_locked()`.
 *
 * Thread: any.
 *
 * @returns Whether this thread holds the BQL.
 *
 * @example Not held by default
 * ```ts
 * import { bqlLocked } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * assertEquals(bqlLocked(), false);
 * ```
 */
export function bqlLocked(): boolean {
  return bqlVisible();
}

/**
 * Takes the BQL unless this thread holds it already, and returns a guard
 * whose disposal releases it only in the first case.
 *
 * Counterpart: `BQL_LOCK_GUARD()`.
 *
 * Thread: as {@linkcode bqlLock}.
 *
 * @returns The guard, for `using`.
 *
 * @example A scoped hold
 * ```ts
 * import { bqlLocked, bqlLockGuard } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * {
 *   using _bql = bqlLockGuard();
 *   assertEquals(bqlLocked(), true);
 * }
 * assertEquals(bqlLocked(), false);
 * ```
 */
export function bqlLockGuard(): Disposable {
  if (bqlOwned()) return { [Symbol.dispose]: () => {} };
  bqlLock();
  return { [Symbol.dispose]: () => bqlUnlock() };
}

/**
 * Runs `fn` with the BQL held: takes it for the call unless this thread
 * holds it already (then it is left held, not relocked).
 *
 * Counterpart: `WITH_BQL_LOCK_GUARD()` / a `BQL_LOCK_GUARD()` scope.
 *
 * Thread: as {@linkcode bqlLock}.
 *
 * @param fn What to run.
 * @returns What `fn` returns.
 *
 * @example
 * ```ts
 * import { bqlLocked, withBql } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * assertEquals(withBql(() => bqlLocked()), true);
 * ```
 */
export function withBql<T>(fn: () => T): T {
  using _g = bqlLockGuard();
  return fn();
}

/**
 * Waits on `cond` with the BQL as its mutex: the BQL is released while the
 * thread sleeps ({@linkcode bqlLocked} reads false meanwhile, as upstream
 * since the flag moved into the mutex hooks) and held again on return.
 * Wakeups may be spurious: re-check the condition in a loop.
 *
 * Counterpart: `qemu_cond_wait_bql()`.
 *
 * Thread: a thread that holds the BQL.
 *
 * @param cond The condition variable.
 * @throws {Error} If this thread does not hold the BQL.
 *
 * @example Waiting with the BQL (here until a timeout)
 * ```ts
 * import { bqlLock, bqlUnlock, qemuCondTimedwaitBql } from "@aioloop/aioloop/cpus";
 * import { QemuCond } from "@aioloop/aioloop/thread";
 * import { assertEquals } from "@std/assert";
 * const cond = QemuCond.create();
 * bqlLock();
 * assertEquals(qemuCondTimedwaitBql(cond, 1), false);
 * bqlUnlock();
 * ```
 */
export function qemuCondWaitBql(cond: QemuCond): void {
  qemuCondTimedwaitBql(cond, Infinity);
}

/**
 * As {@linkcode qemuCondWaitBql}, giving up after `ms` milliseconds.
 *
 * Counterpart: `qemu_cond_timedwait_bql()`.
 *
 * Thread: a thread that holds the BQL.
 *
 * @param cond The condition variable.
 * @param ms The longest sleep, in milliseconds.
 * @returns false if the time ran out.
 * @throws {Error} If this thread does not hold the BQL.
 *
 * @example Timing out
 * ```ts
 * import { bqlLocked, bqlLock, bqlUnlock, qemuCondTimedwaitBql } from "@aioloop/aioloop/cpus";
 * import { QemuCond } from "@aioloop/aioloop/thread";
 * import { assertEquals } from "@std/assert";
 * bqlLock();
 * assertEquals(qemuCondTimedwaitBql(QemuCond.create(), 1), false);
 * assertEquals(bqlLocked(), true);
 * bqlUnlock();
 * ```
 */
export function qemuCondTimedwaitBql(cond: QemuCond, ms: number): boolean {
  const m = mutexOrThrow("qemuCondWaitBql()");
  if (!bqlOwned()) throw new Error("qemuCondWaitBql(): this thread does not hold the BQL");
  bqlSetOwned(false);
  try {
    return cond.timedWait(m, ms);
  } finally {
    bqlSetOwned(true);
  }
}

/**
 * Forbids (`true`) or allows again (`false`) releasing the BQL on this
 * thread; calls nest. While forbidden, {@linkcode bqlUnlock} throws.
 *
 * Counterpart: `bql_block_unlock()`.
 *
 * Thread: any.
 *
 * @param increase true to forbid once more, false to undo one.
 * @throws {RangeError} On an unmatched `false`.
 *
 * @example
 * ```ts
 * import { bqlBlockUnlock, bqlLock, bqlUnlock } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * bqlLock();
 * bqlBlockUnlock(true);
 * let threw = false;
 * try {
 *   bqlUnlock();
 * } catch {
 *   threw = true;
 * }
 * bqlBlockUnlock(false);
 * bqlUnlock();
 * assertEquals(threw, true);
 * ```
 */
export function bqlBlockUnlock(increase: boolean): void {
  bqlUnlockBlockedAdd(increase ? 1 : -1);
}

/**
 * The cloneable handle of this process's BQL, to post to a Worker that
 * will call {@linkcode bqlAttach}. vCPU Workers get it automatically.
 *
 * Counterpart: none (QEMU threads share the lock's address).
 *
 * Thread: any thread that has the BQL.
 *
 * @returns The handle.
 * @throws {Error} In a Worker that has none attached.
 *
 * @example
 * ```ts
 * import { bqlAttach, bqlHandle } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * bqlAttach(bqlHandle()); // the same lock again: a no-op
 * assertEquals(bqlHandle().sab instanceof SharedArrayBuffer, true);
 * ```
 */
export function bqlHandle(): SharedWordHandle {
  return mutexOrThrow("bqlHandle()").handle;
}

/**
 * Makes the process's BQL (from {@linkcode bqlHandle} on the main isolate)
 * this Worker's BQL. Attaching the same lock again does nothing.
 *
 * Counterpart: none (QEMU threads share the lock's address).
 *
 * Thread: any; once per Worker.
 *
 * @param handle The main isolate's {@linkcode bqlHandle}.
 * @throws {Error} If a different BQL is attached already.
 *
 * @example
 * ```ts
 * import { bqlAttach, bqlHandle } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * const h = bqlHandle();
 * bqlAttach(h);
 * assertEquals(bqlHandle(), h);
 * ```
 */
export function bqlAttach(handle: SharedWordHandle): void {
  bqlAttachMutex(handle);
}

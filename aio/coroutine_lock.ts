/**
 * Coroutine locks: util/qemu-coroutine-lock.c for one isolate.
 *
 * - {@linkcode CoQueue}: a FIFO of waiting coroutines, used with an external
 *   lock.
 * - {@linkcode CoMutex}: a FIFO mutex for coroutines. Unlocking hands the
 *   lock to the first waiter and wakes it with `aio_co_wake`: a waiter of the
 *   same context runs after the unlocker yields or ends.
 * - {@linkcode CoRwlock}: a reader-writer lock with FIFO tickets; a reader
 *   never overtakes a queued writer.
 *
 * Operations that can block are coroutine functions (`yield* m.lock()`);
 * the rest are plain calls. Every lock operation keeps
 * {@linkcode Coroutine.prototype.locksHeld} balanced.
 *
 * Thread: home isolate. Waiters may belong to different contexts of the
 * isolate; each is woken in its own context.
 *
 * @example A mutex serialises two coroutines
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { CoMutex, Coroutine } from "@aioloop/aioloop";
 * const m = new CoMutex();
 * const log: string[] = [];
 * const body = function* (name: string) {
 *   yield* m.lock();
 *   log.push(name);
 *   yield;
 *   m.unlock();
 * };
 * const a = Coroutine.create(body, "a");
 * const b = Coroutine.create(body, "b");
 * a.enter();
 * b.enter(); // blocks on the lock
 * a.enter(); // a unlocks and ends; b then runs up to its yield
 * assertEquals(log, [ "a", "b" ]);
 * b.enter();
 * ```
 *
 * @module
 */
import type { AioContext } from "./aio_context.ts";
import { Coroutine, type CoroutineFn, coroutineYield, inCoroutine } from "./coroutine.ts";
import { aioCoWake } from "./co_schedule.ts";
import { getCurrentAioContext } from "./current.ts";
import { coInternals } from "./_coroutine_internal.ts";

/**
 * A lock a {@linkcode CoQueue} can drop while it waits. `lock()` is either
 * a coroutine function (as {@linkcode CoMutex.prototype.lock}) or a plain
 * call that never blocks.
 *
 * Counterpart: `QemuLockable`.
 *
 * @example A plain lock
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import type { Lockable } from "@aioloop/aioloop";
 * let held = false;
 * const flag: Lockable = { lock() { held = true; }, unlock() { held = false; } };
 * flag.lock();
 * assertEquals(held, true);
 * ```
 */
export interface Lockable {
  /** Takes the lock; a coroutine function to run with `yield*`, or nothing. */
  lock(): CoroutineFn | void;
  /** Releases the lock. */
  unlock(): void;
}

/**
 * Wraps a lock in a type-erased {@linkcode Lockable}; null stays null.
 *
 * Counterpart: `QEMU_MAKE_LOCKABLE()`.
 *
 * @param lock A lock, or null.
 * @returns A wrapper forwarding to `lock`, or null.
 *
 * @example Null in, null out
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { CoMutex, makeLockable } from "@aioloop/aioloop";
 * assertEquals(makeLockable(null), null);
 * assertEquals(makeLockable(new CoMutex()) !== null, true);
 * ```
 */
export function makeLockable(lock: Lockable | null | undefined): Lockable | null {
  if (lock === null || lock === undefined) return null;
  return { lock: () => lock.lock(), unlock: () => lock.unlock() };
}

/**
 * Takes a {@linkcode Lockable} from a coroutine, blocking if its `lock()`
 * is a coroutine function that blocks.
 *
 * Counterpart: `qemu_lockable_lock()`.
 *
 * @param lock The lock.
 * @returns A coroutine function to run with `yield*`.
 *
 * @example Through the wrapper
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { CoMutex, Coroutine, lockableLock, lockableUnlock, makeLockable } from "@aioloop/aioloop";
 * const m = new CoMutex();
 * const l = makeLockable(m)!;
 * Coroutine.create(function* () {
 *   yield* lockableLock(l);
 *   assertEquals(m.locked, true);
 *   lockableUnlock(l);
 * }).enter();
 * ```
 */
export function lockableLock(lock: Lockable): CoroutineFn {
  return lockableLockCo(coInternals.opCreated("lockableLock(lock)"), lock);
}

function* lockableLockCo(owner: Coroutine | null, lock: Lockable): CoroutineFn {
  coInternals.opStarted(owner);
  const g = lock.lock();
  if (g !== undefined) yield* g;
}

/**
 * Releases a {@linkcode Lockable}.
 *
 * Counterpart: `qemu_lockable_unlock()`.
 *
 * @param lock The lock.
 *
 * @example Plain lock
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { lockableUnlock } from "@aioloop/aioloop";
 * let held = true;
 * lockableUnlock({ lock() { held = true; }, unlock() { held = false; } });
 * assertEquals(held, false);
 * ```
 */
export function lockableUnlock(lock: Lockable): void {
  lock.unlock();
}

const GeneratorFunction = Object.getPrototypeOf(function* () {}).constructor;

/** Re-takes a lock outside a coroutine: only plain locks can do that. */
function relockPlain(lock: Lockable): void {
  const g = lock.lock();
  if (g !== undefined) {
    throw new TypeError("Lock cannot be taken synchronously: use next() or restartAll() instead");
  }
}

/**
 * Flags for {@linkcode CoQueue.prototype.waitFlags}.
 *
 * Counterpart: `CoQueueWaitFlags`.
 *
 * @example Wait at the front
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { CoQueueWaitFlags } from "@aioloop/aioloop";
 * assertEquals(CoQueueWaitFlags.WAIT_FRONT, 1);
 * ```
 */
export const CoQueueWaitFlags = {
  /** Insert at the tail (FIFO): no flag, the default. */
  NONE: 0,
  /** Insert at the head: woken before earlier waiters. Counterpart: `CO_QUEUE_WAIT_FRONT`. */
  WAIT_FRONT: 1,
} as const;

/**
 * A queue of coroutines waiting for a condition, protected by an external
 * lock. Waking moves the head waiter to the waker's wake-up list (same
 * context) or schedules it (another context).
 *
 * Counterpart: `CoQueue` (`qemu_co_queue_*`, `qemu_co_enter_next`).
 *
 * Thread: home isolate.
 *
 * @example Wait and wake
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Coroutine, CoQueue } from "@aioloop/aioloop";
 * const q = new CoQueue();
 * let woke = false;
 * Coroutine.create(function* () {
 *   yield* q.wait();
 *   woke = true;
 * }).enter();
 * assertEquals(woke, false);
 * assertEquals(q.empty, false);
 * q.enterNext();
 * assertEquals(woke, true);
 * assertEquals(q.empty, true);
 * ```
 */
export class CoQueue {
  #entries: Coroutine[] = [];

  /**
   * Waits at the tail of the queue; `lock` (if given) is released while
   * waiting and taken again before returning. There is no wait morphing.
   *
   * Counterpart: `qemu_co_queue_wait()`.
   *
   * Thread: inside a coroutine only.
   *
   * @param lock The lock protecting the condition, or null.
   * @returns A coroutine function to run with `yield*`.
   *
   * @example With a mutex
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { CoMutex, CoQueue, Coroutine } from "@aioloop/aioloop";
   * const m = new CoMutex();
   * const q = new CoQueue();
   * let ready = false;
   * const waiter = Coroutine.create(function* () {
   *   yield* m.lock();
   *   while (!ready) yield* q.wait(m);
   *   m.unlock();
   * });
   * waiter.enter();
   * ready = true;
   * q.enterNext();
   * assertEquals(waiter.done, true);
   * ```
   */
  wait(lock?: Lockable | null): CoroutineFn {
    return this.#waitFlagsCo(
      coInternals.opCreated("queue.wait(lock)"),
      lock,
      CoQueueWaitFlags.NONE,
    );
  }

  /**
   * As {@linkcode CoQueue.prototype.wait}, with flags: `WAIT_FRONT` inserts
   * at the head of the queue.
   *
   * Counterpart: `qemu_co_queue_wait_flags()`.
   *
   * Thread: inside a coroutine only.
   *
   * @param lock The lock protecting the condition, or null.
   * @param flags {@linkcode CoQueueWaitFlags} bits.
   * @returns A coroutine function to run with `yield*`.
   *
   * @example Front insertion
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { Coroutine, CoQueue, CoQueueWaitFlags } from "@aioloop/aioloop";
   * const q = new CoQueue();
   * const order: string[] = [];
   * Coroutine.create(function* () { yield* q.wait(); order.push("tail"); }).enter();
   * Coroutine.create(function* () {
   *   yield* q.waitFlags(null, CoQueueWaitFlags.WAIT_FRONT);
   *   order.push("front");
   * }).enter();
   * q.enterAll();
   * assertEquals(order, [ "front", "tail" ]);
   * ```
   */
  waitFlags(lock: Lockable | null | undefined, flags: number): CoroutineFn {
    return this.#waitFlagsCo(coInternals.opCreated("queue.waitFlags(lock, flags)"), lock, flags);
  }

  *#waitFlagsCo(
    owner: Coroutine | null,
    lock: Lockable | null | undefined,
    flags: number,
  ): CoroutineFn {
    coInternals.opStarted(owner);
    if (!inCoroutine()) throw new Error("CoQueue.wait() must be called from a coroutine");
    const self = Coroutine.self();
    if (flags & CoQueueWaitFlags.WAIT_FRONT) this.#entries.unshift(self);
    else this.#entries.push(self);
    if (lock) lock.unlock();
    yield* coroutineYield();
    if (lock) yield* lockableLock(lock);
  }

  /**
   * Wakes the first waiter, if any: it runs after the calling coroutine
   * yields or ends (same context), or from its own context's poll.
   *
   * Counterpart: `qemu_co_queue_next()`.
   *
   * Thread: home isolate; normally from a coroutine.
   *
   * @returns False if the queue was empty.
   *
   * @example Nothing to wake
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { CoQueue } from "@aioloop/aioloop";
   * assertEquals(new CoQueue().next(), false);
   * ```
   */
  next(): boolean {
    const co = this.#entries.shift();
    if (co === undefined) return false;
    aioCoWake(co);
    return true;
  }

  /**
   * Wakes every waiter, in queue order.
   *
   * Counterpart: `qemu_co_queue_restart_all()`.
   *
   * Thread: home isolate; normally from a coroutine.
   *
   * @example Restart all
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { Coroutine, CoQueue } from "@aioloop/aioloop";
   * const q = new CoQueue();
   * let n = 0;
   * for (let i = 0; i < 3; i++) Coroutine.create(function* () { yield* q.wait(); n++; }).enter();
   * q.restartAll();
   * assertEquals(n, 3);
   * ```
   */
  restartAll(): void {
    while (this.next()) { /* wake them all */ }
  }

  /**
   * Wakes the first waiter from outside a coroutine: it is entered at once
   * (same context), so `lock`, if given, is released around the wake-up and
   * taken again afterwards. `lock` must be a plain lock (its `lock()` does
   * not block); inside a coroutine use {@linkcode CoQueue.prototype.next}.
   *
   * Counterpart: `qemu_co_enter_next()`.
   *
   * Thread: home isolate.
   *
   * @param lock A plain lock held by the caller, or null.
   * @returns False if the queue was empty.
   * @throws {TypeError} If `lock.lock` is a coroutine function.
   *
   * @example Enter the next waiter
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { Coroutine, CoQueue } from "@aioloop/aioloop";
   * const q = new CoQueue();
   * let n = 0;
   * Coroutine.create(function* () { yield* q.wait(); n++; }).enter();
   * assertEquals(q.enterNext(), true);
   * assertEquals(n, 1);
   * assertEquals(q.enterNext(), false);
   * ```
   */
  enterNext(lock?: Lockable | null): boolean {
    if (lock && (lock instanceof CoMutex || lock.lock instanceof GeneratorFunction)) {
      throw new TypeError("enterNext() needs a plain lock, not a coroutine lock");
    }
    const co = this.#entries.shift();
    if (co === undefined) return false;
    if (lock) lock.unlock();
    try {
      aioCoWake(co);
    } finally {
      if (lock) relockPlain(lock);
    }
    return true;
  }

  /**
   * Wakes every waiter from outside a coroutine, as
   * {@linkcode CoQueue.prototype.enterNext} does one by one.
   *
   * Counterpart: `qemu_co_enter_all()`.
   *
   * Thread: home isolate.
   *
   * @param lock A plain lock held by the caller, or null.
   * @throws {TypeError} If `lock.lock` is a coroutine function.
   *
   * @example Enter all waiters
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { Coroutine, CoQueue } from "@aioloop/aioloop";
   * const q = new CoQueue();
   * let n = 0;
   * for (let i = 0; i < 2; i++) Coroutine.create(function* () { yield* q.wait(); n++; }).enter();
   * q.enterAll();
   * assertEquals(n, 2);
   * assertEquals(q.empty, true);
   * ```
   */
  enterAll(lock?: Lockable | null): void {
    while (this.enterNext(lock)) { /* enter them all */ }
  }

  /**
   * True if no coroutine waits.
   *
   * Counterpart: `qemu_co_queue_empty()`.
   *
   * @example A new queue
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { CoQueue } from "@aioloop/aioloop";
   * assertEquals(new CoQueue().empty, true);
   * ```
   */
  get empty(): boolean {
    return this.#entries.length === 0;
  }
}

/**
 * A mutex for coroutines. Waiters are served FIFO; unlocking hands the lock
 * to the first waiter and wakes it with `aio_co_wake`, so a waiter of the
 * same context runs only after the unlocking coroutine yields or ends.
 *
 * Counterpart: `CoMutex` (`qemu_co_mutex_lock`, `qemu_co_mutex_unlock`,
 * `qemu_co_mutex_assert_locked`).
 *
 * Thread: home isolate.
 *
 * @example Lock and unlock
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { CoMutex, Coroutine } from "@aioloop/aioloop";
 * const m = new CoMutex();
 * Coroutine.create(function* () {
 *   yield* m.lock();
 *   m.assertLocked();
 *   m.unlock();
 * }).enter();
 * assertEquals(m.locked, false);
 * ```
 */
export class CoMutex implements Lockable {
  // Holder plus waiters, as QEMU's `locked` counter.
  #lockers = 0;
  #holder: Coroutine | null = null;
  #ctx: AioContext | null = null;
  #waiters: Coroutine[] = [];

  /**
   * Takes the mutex, waiting in FIFO order if it is held. A waiter that is
   * woken owns the mutex already.
   *
   * Counterpart: `qemu_co_mutex_lock()`.
   *
   * Thread: inside a coroutine (blocking needs one).
   *
   * @returns A coroutine function to run with `yield*`. Called as a plain
   * statement it takes nothing; the coroutine then gets a `TypeError`
   * naming it at its next operation, yield, `unlock()` or end.
   * @throws {TypeError} If an earlier operation of this coroutine was
   * called without `yield*`.
   *
   * @example Uncontended
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { CoMutex, Coroutine } from "@aioloop/aioloop";
   * const m = new CoMutex();
   * Coroutine.create(function* () {
   *   yield* m.lock();
   *   assertEquals(m.locked, true);
   *   m.unlock();
   * }).enter();
   * ```
   */
  lock(): CoroutineFn {
    return this.#lockCo(coInternals.opCreated("mutex.lock()"));
  }

  *#lockCo(owner: Coroutine | null): CoroutineFn {
    coInternals.opStarted(owner);
    const self = Coroutine.self();
    if (this.#lockers === 0) {
      this.#lockers = 1;
      this.#ctx = getCurrentAioContext();
    } else {
      if (this.#holder === self) throw new Error("CoMutex locked twice by the same coroutine");
      if (!inCoroutine()) throw new Error("Co-routine is yielding to no one");
      this.#lockers++;
      this.#waiters.push(self);
      // unlock() hands the mutex over before waking us.
      yield* coroutineYield();
    }
    this.#holder = self;
    coInternals.addLocksHeld(self, 1);
  }

  /**
   * Releases the mutex. If coroutines wait, ownership passes to the first
   * one, which is woken with `aio_co_wake`.
   *
   * Counterpart: `qemu_co_mutex_unlock()`.
   *
   * Thread: the holding coroutine only.
   *
   * @throws {Error} If the mutex is not held by the calling coroutine.
   * @throws {TypeError} If it is not held because `lock()` was called
   * without `yield*`.
   *
   * @example Unlock by a non-holder
   * ```ts
   * import { assertThrows } from "@std/assert";
   * import { CoMutex } from "@aioloop/aioloop";
   * assertThrows(
   *   () => new CoMutex().unlock(),
   *   Error,
   *   "CoMutex unlocked by a coroutine that does not hold it",
   * );
   * ```
   */
  unlock(): void {
    const self = Coroutine.self();
    // `m.lock();` without yield* took nothing: say so, not "not held".
    if (this.#holder !== self) coInternals.checkNoPendingOp(self);
    if (this.#lockers === 0 || this.#holder !== self) {
      throw new Error("CoMutex unlocked by a coroutine that does not hold it");
    }
    this.#holder = null;
    this.#ctx = null;
    coInternals.addLocksHeld(self, -1);
    this.#lockers--;
    if (this.#lockers === 0) return;
    const next = this.#waiters.shift()!;
    this.#ctx = next.ctx;
    aioCoWake(next);
  }

  /**
   * Throws unless the calling coroutine holds the mutex.
   *
   * Counterpart: `qemu_co_mutex_assert_locked()`.
   *
   * @throws {Error} If the mutex is free or held by another coroutine.
   *
   * @example Not locked
   * ```ts
   * import { assertThrows } from "@std/assert";
   * import { CoMutex } from "@aioloop/aioloop";
   * assertThrows(
   *   () => new CoMutex().assertLocked(),
   *   Error,
   *   "CoMutex is not held by the calling coroutine",
   * );
   * ```
   */
  assertLocked(): void {
    if (this.#lockers === 0 || this.#holder !== Coroutine.self()) {
      throw new Error("CoMutex is not held by the calling coroutine");
    }
  }

  /**
   * True while some coroutine holds the mutex (or it has been handed to a
   * woken waiter that has not run yet).
   *
   * Counterpart: `CoMutex.locked` being non-zero.
   *
   * @example A new mutex is free
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { CoMutex } from "@aioloop/aioloop";
   * assertEquals(new CoMutex().locked, false);
   * ```
   */
  get locked(): boolean {
    return this.#lockers > 0;
  }

  /**
   * The context of the current holder (or of the waiter it was handed to),
   * null when free.
   *
   * Counterpart: `CoMutex.ctx`.
   *
   * @example Free mutex
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { CoMutex } from "@aioloop/aioloop";
   * assertEquals(new CoMutex().ctx, null);
   * ```
   */
  get ctx(): AioContext | null {
    return this.#ctx;
  }
}

/** A CoRwlock waiter: CoRwTicket. */
interface RwTicket {
  read: boolean;
  co: Coroutine;
}

/**
 * A reader-writer lock for coroutines. Waiters hold FIFO tickets: a reader
 * that arrives while a writer waits queues behind it. All operations are
 * coroutine functions (they take an internal CoMutex, as QEMU does).
 *
 * Counterpart: `CoRwlock` (`qemu_co_rwlock_rdlock`, `_wrlock`, `_unlock`,
 * `_upgrade`, `_downgrade`).
 *
 * Thread: inside coroutines of the home isolate.
 *
 * @example Two readers share it
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { CoRwlock, Coroutine } from "@aioloop/aioloop";
 * const rw = new CoRwlock();
 * const reader = function* () {
 *   yield* rw.rdlock();
 *   yield;
 *   yield* rw.unlock();
 * };
 * const a = Coroutine.create(reader);
 * const b = Coroutine.create(reader);
 * a.enter();
 * b.enter();
 * assertEquals(rw.owners, 2);
 * a.enter();
 * b.enter();
 * assertEquals(rw.owners, 0);
 * ```
 */
export class CoRwlock {
  #mutex = new CoMutex();
  // > 0: that many readers; -1: a writer; 0: free.
  #owners = 0;
  #tickets: RwTicket[] = [];

  /**
   * How the lock is held: the number of readers, -1 for a writer, 0 if free.
   *
   * Counterpart: `CoRwlock.owners`.
   *
   * @example Free
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { CoRwlock } from "@aioloop/aioloop";
   * assertEquals(new CoRwlock().owners, 0);
   * ```
   */
  get owners(): number {
    return this.#owners;
  }

  /**
   * Wakes the head ticket if it can run now, assigning it ownership first
   * so nobody sneaks in; releases the internal mutex either way.
   */
  #maybeWakeOne(): void {
    const tkt = this.#tickets[0];
    let co: Coroutine | null = null;
    if (tkt !== undefined) {
      if (tkt.read) {
        if (this.#owners >= 0) {
          this.#owners++;
          co = tkt.co;
        }
      } else if (this.#owners === 0) {
        this.#owners = -1;
        co = tkt.co;
      }
    }
    if (co !== null) {
      this.#tickets.shift();
      this.#mutex.unlock();
      aioCoWake(co);
    } else {
      this.#mutex.unlock();
    }
  }

  /**
   * Takes a read lock: at once if the lock is free, or held by readers with
   * no ticket queued; otherwise after the tickets ahead of it. A woken
   * reader wakes the next compatible ticket, so readers wake in a chain.
   *
   * Counterpart: `qemu_co_rwlock_rdlock()`.
   *
   * Thread: inside a coroutine only.
   *
   * @returns A coroutine function to run with `yield*`.
   *
   * @example Read lock
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { CoRwlock, Coroutine } from "@aioloop/aioloop";
   * const rw = new CoRwlock();
   * Coroutine.create(function* () {
   *   yield* rw.rdlock();
   *   assertEquals(rw.owners, 1);
   *   yield* rw.unlock();
   * }).enter();
   * ```
   */
  rdlock(): CoroutineFn {
    return this.#rdlockCo(coInternals.opCreated("rwlock.rdlock()"));
  }

  *#rdlockCo(owner: Coroutine | null): CoroutineFn {
    coInternals.opStarted(owner);
    const self = Coroutine.self();
    yield* this.#mutex.lock();
    if (this.#owners === 0 || (this.#owners > 0 && this.#tickets.length === 0)) {
      this.#owners++;
      this.#mutex.unlock();
    } else {
      this.#tickets.push({ read: true, co: self });
      this.#mutex.unlock();
      yield* coroutineYield();
      if (this.#owners < 1) throw new Error("CoRwlock reader woken without the lock");
      yield* this.#mutex.lock();
      this.#maybeWakeOne();
    }
    coInternals.addLocksHeld(self, 1);
  }

  /**
   * Takes the write lock: at once if the lock is free, otherwise after the
   * tickets ahead of it.
   *
   * Counterpart: `qemu_co_rwlock_wrlock()`.
   *
   * Thread: inside a coroutine only.
   *
   * @returns A coroutine function to run with `yield*`.
   *
   * @example Write lock
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { CoRwlock, Coroutine } from "@aioloop/aioloop";
   * const rw = new CoRwlock();
   * Coroutine.create(function* () {
   *   yield* rw.wrlock();
   *   assertEquals(rw.owners, -1);
   *   yield* rw.unlock();
   * }).enter();
   * ```
   */
  wrlock(): CoroutineFn {
    return this.#wrlockCo(coInternals.opCreated("rwlock.wrlock()"));
  }

  *#wrlockCo(owner: Coroutine | null): CoroutineFn {
    coInternals.opStarted(owner);
    const self = Coroutine.self();
    yield* this.#mutex.lock();
    if (this.#owners === 0) {
      this.#owners = -1;
      this.#mutex.unlock();
    } else {
      this.#tickets.push({ read: false, co: self });
      this.#mutex.unlock();
      yield* coroutineYield();
      if (this.#owners !== -1) throw new Error("CoRwlock writer woken without the lock");
    }
    coInternals.addLocksHeld(self, 1);
  }

  /**
   * Releases a read or write hold and wakes the head ticket if it can run.
   *
   * Counterpart: `qemu_co_rwlock_unlock()`.
   *
   * Thread: inside a coroutine holding the lock.
   *
   * @returns A coroutine function to run with `yield*`.
   * @throws {Error} If the lock is not held.
   *
   * @example Unlock
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { CoRwlock, Coroutine } from "@aioloop/aioloop";
   * const rw = new CoRwlock();
   * Coroutine.create(function* () {
   *   yield* rw.wrlock();
   *   yield* rw.unlock();
   * }).enter();
   * assertEquals(rw.owners, 0);
   * ```
   */
  unlock(): CoroutineFn {
    return this.#unlockCo(coInternals.opCreated("rwlock.unlock()"));
  }

  *#unlockCo(owner: Coroutine | null): CoroutineFn {
    coInternals.opStarted(owner);
    if (!inCoroutine()) throw new Error("CoRwlock.unlock() must be called from a coroutine");
    if (this.#owners === 0) throw new Error("CoRwlock unlocked while not held");
    const self = Coroutine.self();
    coInternals.addLocksHeld(self, -1);
    yield* this.#mutex.lock();
    if (this.#owners > 0) this.#owners--;
    else this.#owners = 0;
    this.#maybeWakeOne();
  }

  /**
   * Turns the caller's write hold into a read hold and wakes the next
   * compatible ticket. Never blocks.
   *
   * Counterpart: `qemu_co_rwlock_downgrade()`.
   *
   * Thread: inside a coroutine holding the write lock.
   *
   * @returns A coroutine function to run with `yield*`.
   * @throws {Error} If the lock is not write-locked.
   *
   * @example Downgrade
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { CoRwlock, Coroutine } from "@aioloop/aioloop";
   * const rw = new CoRwlock();
   * Coroutine.create(function* () {
   *   yield* rw.wrlock();
   *   yield* rw.downgrade();
   *   assertEquals(rw.owners, 1);
   *   yield* rw.unlock();
   * }).enter();
   * ```
   */
  downgrade(): CoroutineFn {
    return this.#downgradeCo(coInternals.opCreated("rwlock.downgrade()"));
  }

  *#downgradeCo(owner: Coroutine | null): CoroutineFn {
    coInternals.opStarted(owner);
    if (this.#owners !== -1) throw new Error("CoRwlock downgraded while not write-locked");
    yield* this.#mutex.lock();
    this.#owners = 1;
    this.#maybeWakeOne();
  }

  /**
   * Turns the caller's read hold into the write hold. At once if it is the
   * only reader and no ticket is queued; otherwise it gives up its read
   * hold, queues a writer ticket at the tail (so a queued writer goes
   * first) and sleeps until it owns the lock.
   *
   * Counterpart: `qemu_co_rwlock_upgrade()`.
   *
   * Thread: inside a coroutine holding a read lock.
   *
   * @returns A coroutine function to run with `yield*`.
   * @throws {Error} If the lock is not read-locked.
   *
   * @example Sole reader upgrades at once
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { CoRwlock, Coroutine } from "@aioloop/aioloop";
   * const rw = new CoRwlock();
   * Coroutine.create(function* () {
   *   yield* rw.rdlock();
   *   yield* rw.upgrade();
   *   assertEquals(rw.owners, -1);
   *   yield* rw.unlock();
   * }).enter();
   * ```
   */
  upgrade(): CoroutineFn {
    return this.#upgradeCo(coInternals.opCreated("rwlock.upgrade()"));
  }

  *#upgradeCo(owner: Coroutine | null): CoroutineFn {
    coInternals.opStarted(owner);
    if (this.#owners <= 0) throw new Error("CoRwlock upgraded while not read-locked");
    yield* this.#mutex.lock();
    if (this.#owners === 1 && this.#tickets.length === 0) {
      this.#owners = -1;
      this.#mutex.unlock();
    } else {
      this.#owners--;
      this.#tickets.push({ read: false, co: Coroutine.self() });
      this.#maybeWakeOne();
      yield* coroutineYield();
      if (this.#owners !== -1) throw new Error("CoRwlock upgrade woken without the lock");
    }
  }
}

/**
 * Locks shared between threads (Workers), for the multithread parity tests
 * (tests/unit/test-aio-multithread.c) and benchmarks:
 *
 * - {@linkcode CrossCoMutex}: a CoMutex whose lockers are coroutines living
 *   in different contexts, on different Workers. Its lock word and FIFO of
 *   waiters (context, coroutine id) are in a SharedArrayBuffer; unlock hands
 *   the mutex to the first waiter and wakes it in its home context with a
 *   remote "enter coroutine" request (or `aio_co_wake` when the waiter is in
 *   the same isolate).
 * - `QemuMutex` (thread/mutex.ts) is the test's thread-blocking
 *   `QemuMutex`; it is not repeated here.
 * - {@linkcode McsLock}: an MCS queue lock with one node per thread, each
 *   waiter sleeping on its own node's word (the test's `mcs_mutex`).
 *
 * The thread-blocking locks (McsLock, QemuMutex) stop the whole thread, event loop included,
 * while they wait: inside a coroutine they block every other coroutine of
 * that thread, as in QEMU's test. Use them only where that is intended.
 *
 * @module
 */
import type { AioContext } from "../aio/aio_context.ts";
import { Coroutine, type CoroutineFn, coroutineYield, inCoroutine } from "../aio/coroutine.ts";
import { coInternals } from "../aio/_coroutine_internal.ts";
import { aioCoWake } from "../aio/co_schedule.ts";
import { getCurrentAioContext } from "../aio/current.ts";
import {
  localRequestContext,
  registerCoroutine,
  registeredCoroutine,
  registeredCoroutineId,
  remoteCoEnter,
  type RemoteRequestChannel,
  unregisterCoroutine,
} from "../iothread/mod.ts";
import { QemuMutex } from "../thread/mutex.ts";

// ---------------------------------------------------------------------------
// MCS queue lock

const MCS_HEAD = 0;
const MCS_CONTENDED = 1;
const MCS_NODES = 2;
const MCS_BASE = 4;

/** Where an {@linkcode McsLock} lives (cloneable). */
export interface McsLockHandle {
  /** Head, contention count, node count, then (next, locked) per node. */
  readonly sab: SharedArrayBuffer;
}

/**
 * An MCS queue lock: each thread owns a node (by index) and, when the lock
 * is busy, links its node behind the tail and sleeps on its own word until
 * its predecessor hands the lock over. Fair (FIFO) and with no thundering
 * herd. For the multithread tests and benchmarks.
 *
 * Counterpart: the `mcs_mutex_lock` / `mcs_mutex_unlock` of
 * tests/unit/test-aio-multithread.c (`/aio/multi/mutex/mcs`), on
 * `Atomics.wait`/`notify` instead of raw futexes.
 *
 * Thread: any; each thread uses its own node index, one lock at a time.
 */
export class McsLock {
  #a: Int32Array;
  #handle: McsLockHandle;
  #nodes: number;

  /**
   * Opens a lock from its handle (possibly posted from another thread).
   *
   * @param handle What {@linkcode McsLock.prototype.handle} returned.
   * @throws {TypeError} If the handle is not an MCS lock's.
   */
  constructor(handle: McsLockHandle) {
    if (!(handle?.sab instanceof SharedArrayBuffer) || handle.sab.byteLength < MCS_BASE * 4) {
      throw new TypeError("Not an McsLockHandle");
    }
    this.#a = new Int32Array(handle.sab);
    this.#nodes = Atomics.load(this.#a, MCS_NODES);
    if (this.#a.length < MCS_BASE + 2 * this.#nodes) throw new TypeError("Not an McsLockHandle");
    this.#handle = handle;
  }

  /**
   * Creates a free lock with `nodes` per-thread nodes.
   *
   * Counterpart: the `nodes[NUM_CONTEXTS]` array and `mutex_head = -1`.
   *
   * @param nodes How many threads may use it (each with its own index).
   * @returns The lock.
   * @throws {RangeError} If `nodes` is not an integer in [1, 65536].
   */
  static create(nodes: number): McsLock {
    if (!Number.isInteger(nodes) || nodes < 1 || nodes > 65536) {
      throw new RangeError(`nodes must be an integer in [1, 65536], got ${nodes}`);
    }
    const a = new Int32Array(new SharedArrayBuffer((MCS_BASE + 2 * nodes) * 4));
    a[MCS_HEAD] = -1;
    a[MCS_NODES] = nodes;
    for (let i = 0; i < nodes; i++) a[MCS_BASE + 2 * i] = -1;
    return new McsLock({ sab: a.buffer as SharedArrayBuffer });
  }

  /** The cloneable handle to post to other threads. */
  get handle(): McsLockHandle {
    return this.#handle;
  }

  /** How many threads may use the lock. */
  get nodes(): number {
    return this.#nodes;
  }

  /** The node index at the tail of the queue, or -1 when the lock is free. */
  get head(): number {
    return Atomics.load(this.#a, MCS_HEAD);
  }

  /** How many lock() calls found a predecessor (and so had to wait). */
  get contended(): number {
    return Atomics.load(this.#a, MCS_CONTENDED);
  }

  #check(node: number): void {
    if (!Number.isInteger(node) || node < 0 || node >= this.#nodes) {
      throw new RangeError(`node must be an integer in [0, ${this.#nodes - 1}], got ${node}`);
    }
  }

  /**
   * Takes the lock with the calling thread's node, sleeping until the
   * predecessor hands it over.
   *
   * Counterpart: `mcs_mutex_lock()` of the test.
   *
   * Thread: any; blocks the calling thread.
   *
   * @param node This thread's node index.
   * @throws {RangeError} If `node` is out of range.
   */
  lock(node: number): void {
    this.#check(node);
    const a = this.#a;
    const next = MCS_BASE + 2 * node;
    Atomics.store(a, next, -1);
    Atomics.store(a, next + 1, 1);
    const prev = Atomics.exchange(a, MCS_HEAD, node);
    if (prev === -1) return;
    Atomics.add(a, MCS_CONTENDED, 1);
    const prevNext = MCS_BASE + 2 * prev;
    Atomics.store(a, prevNext, node);
    // The predecessor may be waiting in unlock() for this link.
    Atomics.notify(a, prevNext);
    while (Atomics.load(a, next + 1) === 1) Atomics.wait(a, next + 1, 1);
  }

  /**
   * Releases the lock held with `node`, handing it to the next node in the
   * queue if there is one.
   *
   * Counterpart: `mcs_mutex_unlock()` of the test.
   *
   * Thread: the thread that locked it with `node`.
   *
   * @param node This thread's node index.
   * @throws {RangeError} If `node` is out of range.
   */
  unlock(node: number): void {
    this.#check(node);
    const a = this.#a;
    const next = MCS_BASE + 2 * node;
    if (Atomics.load(a, next) === -1) {
      // Nobody visible behind us: free the lock if we are still the tail.
      if (Atomics.compareExchange(a, MCS_HEAD, node, -1) === node) return;
      // A successor swapped itself in but has not linked yet.
      while (Atomics.load(a, next) === -1) Atomics.wait(a, next, -1, 1);
    }
    const succ = Atomics.load(a, next);
    const succLocked = MCS_BASE + 2 * succ + 1;
    Atomics.store(a, succLocked, 0);
    Atomics.notify(a, succLocked);
  }
}

// ---------------------------------------------------------------------------
// Cross-isolate CoMutex

/** The guard, a QemuMutex (two words: lock word, contention count). */
const X_GUARD = 0;
const X_LOCKED = 2;
const X_QHEAD = 3;
const X_QTAIL = 4;
const X_CAP = 5;
const X_CONTENDED = 6;
const X_HANDOFFS = 7;
const X_BASE = 8;

/** Where a {@linkcode CrossCoMutex} lives: shared state plus its contexts (cloneable). */
export interface CrossCoMutexHandle {
  /** Lock word, waiter FIFO of (context index, coroutine id), counters. */
  readonly sab: SharedArrayBuffer;
  /** The contexts whose coroutines may lock it, by index. */
  readonly contexts: readonly RemoteRequestChannel[];
}

/** Options of {@linkcode CrossCoMutex.create}. */
export interface CrossCoMutexOptions {
  /** Most coroutines that may wait at once (default 64). */
  maxWaiters?: number;
}

/**
 * A coroutine mutex whose lockers may be coroutines of different contexts
 * on different threads. Waiters queue FIFO in shared memory; unlock hands
 * the mutex straight to the first waiter (it is owned before it runs) and
 * wakes it in its own context: a remote "enter coroutine" request to a
 * context of another thread, or `aio_co_wake` in the same isolate (after
 * the unlocking coroutine yields, as QEMU's CoMutex does).
 *
 * Every context whose coroutines lock it must be listed at creation (by its
 * request channel: `remoteRequestChannel(ctx)` or an IOThread's handle).
 * For the multithread tests and benchmarks.
 *
 * Counterpart: `CoMutex` shared by coroutines of several IOThreads
 * (`/aio/multi/mutex/contended`, `/aio/multi/mutex/handoff`).
 *
 * Thread: coroutines of the listed contexts, in any thread that opened the
 * handle.
 */
export class CrossCoMutex {
  #a: Int32Array;
  #guard: QemuMutex;
  #handle: CrossCoMutexHandle;
  /** The contexts of this isolate among the participants, by index. */
  #local: (AioContext | null)[];
  #holder: Coroutine | null = null;

  /**
   * Opens a mutex from its handle (possibly posted from another thread).
   *
   * @param handle What {@linkcode CrossCoMutex.prototype.handle} returned.
   * @throws {TypeError} If the handle is malformed.
   */
  constructor(handle: CrossCoMutexHandle) {
    if (!(handle?.sab instanceof SharedArrayBuffer) || !Array.isArray(handle.contexts)) {
      throw new TypeError("Not a CrossCoMutexHandle");
    }
    this.#a = new Int32Array(handle.sab);
    this.#guard = new QemuMutex({ sab: handle.sab, index: X_GUARD });
    this.#handle = handle;
    this.#local = handle.contexts.map((c) => localRequestContext(c));
  }

  /**
   * Creates a free mutex for coroutines of the given contexts.
   *
   * Counterpart: `qemu_co_mutex_init()`.
   *
   * @param contexts The request channels of every context whose coroutines may lock it.
   * @param options Queue capacity.
   * @returns The mutex; post its handle to the other threads.
   * @throws {RangeError} If `maxWaiters` is not an integer in [1, 65536].
   * @throws {TypeError} If `contexts` is empty or holds no channel.
   */
  static create(
    contexts: readonly RemoteRequestChannel[],
    options: CrossCoMutexOptions = {},
  ): CrossCoMutex {
    if (!Array.isArray(contexts) || contexts.length === 0) {
      throw new TypeError("A CrossCoMutex needs at least one context");
    }
    const cap = options.maxWaiters ?? 64;
    if (!Number.isInteger(cap) || cap < 1 || cap > 65536) {
      throw new RangeError(`maxWaiters must be an integer in [1, 65536], got ${cap}`);
    }
    const a = new Int32Array(new SharedArrayBuffer((X_BASE + 2 * cap) * 4));
    a[X_CAP] = cap;
    return new CrossCoMutex({ sab: a.buffer as SharedArrayBuffer, contexts: [...contexts] });
  }

  /** The cloneable handle to post to the other threads. */
  get handle(): CrossCoMutexHandle {
    return this.#handle;
  }

  /** Whether some coroutine holds the mutex (or it was handed to a waiter not yet run). */
  get locked(): boolean {
    return Atomics.load(this.#a, X_LOCKED) !== 0;
  }

  /** How many lock() calls found the mutex held and queued. */
  get contended(): number {
    return Atomics.load(this.#a, X_CONTENDED);
  }

  /** How many unlocks handed the mutex to a waiter. */
  get handoffs(): number {
    return Atomics.load(this.#a, X_HANDOFFS);
  }

  /**
   * Takes the mutex; if it is held, queues the calling coroutine and yields
   * until an unlock hands the mutex over (the waiter owns it when it runs).
   *
   * Counterpart: `qemu_co_mutex_lock()`.
   *
   * Thread: a coroutine of one of the mutex's contexts.
   *
   * @returns A coroutine function to run with `yield*`.
   * @throws {Error} Outside a coroutine, if the caller holds it already, if
   * the current context is not one of the mutex's, or if the queue is full.
   */
  *lock(): CoroutineFn {
    if (!inCoroutine()) throw new Error("CrossCoMutex.lock() must be called from a coroutine");
    const self = Coroutine.self();
    if (this.#holder === self) throw new Error("CrossCoMutex locked twice by the same coroutine");
    const a = this.#a;
    this.#guard.lock();
    if (Atomics.load(a, X_LOCKED) === 0) {
      Atomics.store(a, X_LOCKED, 1);
      this.#guard.unlock();
    } else {
      let waiter: [number, number, boolean];
      try {
        waiter = this.#enqueue(self);
      } finally {
        this.#guard.unlock();
      }
      // unlock() hands the mutex over before waking us.
      yield* coroutineYield();
      if (waiter[2]) unregisterCoroutine(waiter[1]);
    }
    this.#holder = self;
    coInternals.addLocksHeld(self, 1);
  }

  /** Queues self; returns (context index, coroutine id, registered here). Guard held. */
  #enqueue(self: Coroutine): [number, number, boolean] {
    const a = this.#a;
    const ctx = getCurrentAioContext();
    const p = ctx === null ? -1 : this.#local.indexOf(ctx);
    if (p < 0) {
      throw new Error("CrossCoMutex: the current AioContext is not one of the mutex's contexts");
    }
    const cap = Atomics.load(a, X_CAP);
    const head = Atomics.load(a, X_QHEAD);
    const tail = Atomics.load(a, X_QTAIL);
    if (((tail - head) | 0) >= cap) throw new Error(`CrossCoMutex has more than ${cap} waiters`);
    const had = registeredCoroutineId(self);
    const id = had ?? registerCoroutine(self);
    const at = X_BASE + 2 * ((tail >>> 0) % cap);
    Atomics.store(a, at, p);
    Atomics.store(a, at + 1, id);
    Atomics.store(a, X_QTAIL, (tail + 1) | 0);
    Atomics.add(a, X_CONTENDED, 1);
    return [p, id, had === undefined];
  }

  /**
   * Releases the mutex. If coroutines wait, ownership passes to the first
   * one, which is woken in its own context.
   *
   * Counterpart: `qemu_co_mutex_unlock()`.
   *
   * Thread: the holding coroutine.
   *
   * @throws {Error} If the calling coroutine does not hold the mutex.
   */
  unlock(): void {
    const self = Coroutine.self();
    if (this.#holder !== self || this.#holder === null || !inCoroutine()) {
      throw new Error("CrossCoMutex unlocked by a coroutine that does not hold it");
    }
    this.#holder = null;
    coInternals.addLocksHeld(self, -1);
    const a = this.#a;
    this.#guard.lock();
    const head = Atomics.load(a, X_QHEAD);
    if (head === Atomics.load(a, X_QTAIL)) {
      Atomics.store(a, X_LOCKED, 0);
      this.#guard.unlock();
      return;
    }
    const cap = Atomics.load(a, X_CAP);
    const at = X_BASE + 2 * ((head >>> 0) % cap);
    const p = Atomics.load(a, at);
    const id = Atomics.load(a, at + 1);
    Atomics.store(a, X_QHEAD, (head + 1) | 0);
    Atomics.add(a, X_HANDOFFS, 1);
    this.#guard.unlock();
    // X_LOCKED stays 1: the waiter owns the mutex from here on.
    if (this.#local[p] !== null) {
      const co = registeredCoroutine(id);
      if (co === undefined) throw new Error(`CrossCoMutex waiter ${id} is not registered`);
      aioCoWake(co);
    } else {
      remoteCoEnter(this.#handle.contexts[p], id);
    }
  }
}

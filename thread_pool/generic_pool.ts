/**
 * The generic thread pool of util/thread-pool.c (`ThreadPool`,
 * `thread_pool_new()` and friends): fire-and-forget work with a barrier,
 * no AioContext and no completion callbacks. It runs on the same workers as
 * the AIO pool (the same worker module, the same `{ module, name }` work
 * naming, the same argument codec and shared memory).
 *
 * Differences from QEMU, chosen for Deno:
 * - QEMU's pool starts with at most 0 threads, so plain `thread_pool_submit()`
 *   runs nothing until `thread_pool_set_max_threads()` or
 *   `thread_pool_submit_immediate()` raise it. Here the limit starts at the
 *   number of CPUs (`navigator.hardwareConcurrency`), so `submit()` alone
 *   runs work, and a burst does not start dozens of Workers.
 * - QEMU's exclusive GThreadPool starts all `max` threads at once; here a
 *   worker is created when queued work outnumbers the idle and starting
 *   workers. Like GLib's exclusive threads, an idle worker then stays until
 *   the pool is freed or the limit drops below the number of workers.
 * - Workers are created by the call that needs them (`submit()`,
 *   `setMaxThreads()`), in the caller's thread: constructing a Worker blocks
 *   it for tens of milliseconds, and each costs about 12 MB. There is no
 *   AioContext to spread that over.
 * - QEMU's work returns nothing and cannot fail. Here a job may throw (or
 *   its module or export may be missing, or its worker may die): the errors
 *   are collected, and the next `wait()` / `waitSync()` / `free()` throws an
 *   `AggregateError` of them once all work has finished. What a job returns
 *   is discarded.
 * - The pool belongs to the thread (isolate) that created it: QEMU lets any
 *   thread submit, but a Deno object cannot be shared between Workers.
 *
 * @module
 */
import { AioContext } from "../aio/aio_context.ts";
import { PoolCore } from "./_pool_core.ts";
import {
  C_CUR,
  C_DONE,
  C_DONE_WAITERS,
  C_IDLE,
  C_IDLE_MS,
  C_MAX,
  C_NEW,
  C_PENDING,
  C_SQ_HEAD,
  C_SQ_TAIL,
  lock,
  MAX_THREADS_DEFAULT,
  unlock,
} from "./_shared.ts";
import type { ThreadPoolStats, ThreadPoolWork } from "./types.ts";

const INT32_MAX = 0x7fffffff;
/**
 * Longest single sleep of a wait. Finished work wakes it at once (pushDone
 * notifies while C_DONE_WAITERS is set); the slice only bounds how long a
 * missed wake-up could cost.
 */
const WAIT_SLICE_MS = 200;

// Atomics.waitAsync does not keep Deno's event loop alive by itself
// (denoland/deno#15358): a ref'd timer is held while any wait is pending.
let keepAlive: ReturnType<typeof setInterval> | undefined;
let asyncWaiters = 0;

async function sleepOn(i32: Int32Array, index: number, value: number, ms: number): Promise<void> {
  const r = Atomics.waitAsync(i32, index, value, ms);
  if (!r.async) return;
  if (asyncWaiters++ === 0) keepAlive = setInterval(() => {}, 1 << 30);
  try {
    await r.value;
  } finally {
    if (--asyncWaiters === 0) clearInterval(keepAlive);
  }
}

/**
 * Options of a {@linkcode ThreadPool}.
 *
 * Counterpart: none (QEMU's `thread_pool_new()` takes no arguments; its
 * limit starts at 0).
 *
 * @example A pool of at most two workers
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { ThreadPool, type ThreadPoolOptions } from "@aioloop/aioloop/thread-pool";
 * const options: ThreadPoolOptions = { maxThreads: 2 };
 * using pool = new ThreadPool(options);
 * assertEquals(pool.maxThreads, 2);
 * ```
 */
export interface ThreadPoolOptions {
  /** Most workers at once (1 .. 2^31-1); the number of CPUs by default. */
  readonly maxThreads?: number;
}

function defaultMaxThreads(): number {
  const n = navigator.hardwareConcurrency;
  return Number.isInteger(n) && n >= 1 ? Math.min(n, MAX_THREADS_DEFAULT) : 1;
}

function checkMax(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > INT32_MAX) {
    throw new RangeError(`Bad thread pool max_threads value: ${n} (must be an integer >= 1)`);
  }
}

function failuresError(failures: Error[]): AggregateError {
  const first = failures[0];
  return new AggregateError(
    failures,
    `${failures.length} thread pool work item(s) failed; first: ${first.name}: ${first.message}`,
  );
}

/**
 * A generic pool of worker threads: submit work without a callback, then
 * wait for all of it. Work is an exported function of a module, named by
 * {@linkcode ThreadPoolWork} and called with one structured-cloneable
 * argument in a worker (views over SharedArrayBuffers share memory), as in
 * the AIO pool; its return value is discarded.
 *
 * Failures (the job threw, its module or export is missing, its argument
 * made the worker fail, its worker died) do not get lost: each is kept, and
 * the next {@linkcode ThreadPool.prototype.wait},
 * {@linkcode ThreadPool.prototype.waitSync} or
 * {@linkcode ThreadPool.prototype.free} throws them together as an
 * `AggregateError` (in no guaranteed order), after all work finished.
 * Each failure is reported once.
 *
 * The pool needs no AioContext and nobody has to poll anything: workers run
 * the work as soon as they are free. Workers are `unref()`'d: they never
 * keep the process alive (a pending `await pool.wait()` does). Free the
 * pool (or declare it with `using`): idle workers otherwise stay until the
 * process exits, as GLib's exclusive threads do.
 *
 * Counterpart: `ThreadPool` (`thread_pool_new()`).
 *
 * Thread: every method must be called from the thread (isolate) that
 * created the pool; the object cannot be posted to a Worker. The work
 * itself runs in the pool's workers.
 *
 * @example Submit work, then wait for all of it
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { ThreadPool } from "@aioloop/aioloop/thread-pool";
 * const jobs = "data:text/javascript,export function bump(n) { Atomics.add(n, 0, 1); }";
 * const n = new Int32Array(new SharedArrayBuffer(4));
 * using pool = new ThreadPool({ maxThreads: 2 });
 * for (let i = 0; i < 10; i++) pool.submit({ module: jobs, name: "bump" }, n);
 * await pool.wait();
 * assertEquals(n[0], 10);
 * ```
 */
export class ThreadPool {
  #ctx: AioContext;
  #core: PoolCore;
  /** cur_work: submitted and not yet seen finished. */
  #curWork = 0;
  #failures: Error[] = [];
  #freed = false;
  #onDone = (_ret: unknown, error: Error | undefined): void => {
    this.#curWork--;
    if (error !== undefined) this.#failures.push(error);
  };

  /**
   * Creates a pool with no workers yet; they start as work arrives.
   *
   * Counterpart: `thread_pool_new()`.
   *
   * Thread: any; the pool then belongs to that thread.
   *
   * @param options The limit on workers.
   * @throws {RangeError} If `maxThreads` is not an integer >= 1.
   *
   * @example A new pool is empty
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { ThreadPool } from "@aioloop/aioloop/thread-pool";
   * using pool = new ThreadPool();
   * assertEquals([pool.maxThreads, pool.pendingWork, pool.stats().curThreads], [navigator.hardwareConcurrency, 0, 0]);
   * ```
   */
  constructor(options: ThreadPoolOptions = {}) {
    const max = options.maxThreads ?? defaultMaxThreads();
    checkMax(max);
    // A private context only hosts the BHs the shared core asks for; it is
    // never polled (completions are read straight from shared memory).
    this.#ctx = AioContext.create({ name: "generic_thread_pool", fdmon: "poll" });
    try {
      this.#core = new PoolCore(this.#ctx, 0, max);
    } catch (e) {
      this.#ctx.destroy();
      throw e;
    }
    // GLib's exclusive threads never leave when idle.
    Atomics.store(this.#core.ctl, C_IDLE_MS, INT32_MAX);
  }

  /** Whether {@linkcode ThreadPool.prototype.free} ran. */
  get freed(): boolean {
    return this.#freed;
  }

  /** Work submitted whose end the pool has not seen yet (QEMU's `cur_work`). */
  get pendingWork(): number {
    if (!this.#freed) this.#process();
    return this.#curWork;
  }

  /** The current limit on workers. */
  get maxThreads(): number {
    return Atomics.load(this.#core.ctl, C_MAX);
  }

  #checkAlive(what: string): void {
    if (this.#freed) throw new Deno.errors.BadResource(`ThreadPool.${what}(): the pool was freed`);
  }

  /** Reads finished work and creates the workers asked for. Returns false if one could not start. */
  #process(): boolean {
    const core = this.#core;
    core.completionBhFn();
    let ok = true;
    while (!core.freed && Atomics.load(core.ctl, C_NEW) > 0) {
      try {
        core.spawnThreadBhFn();
      } catch {
        // The backlog was dropped; the queued work waits for the workers
        // that exist (or failed with the error if none is left).
        ok = false;
      }
    }
    return ok;
  }

  /**
   * Asks for workers for the queued work that no idle or starting worker
   * will take (GLib counts waiting threads against queued tasks the same
   * way; the AIO pool's "none idle" test misses a burst that arrives before
   * the idle workers wake).
   */
  #spawnForQueue(): boolean {
    const core = this.#core, ctl = core.ctl;
    lock(ctl);
    try {
      // Ring positions not yet taken (nothing is cancelled here), plus any
      // overflow waiting for room in the ring.
      const queued = ((Atomics.load(ctl, C_SQ_TAIL) - Atomics.load(ctl, C_SQ_HEAD)) | 0) +
        core.overflow.length;
      let need = queued - ctl[C_IDLE] - ctl[C_NEW] - ctl[C_PENDING];
      while (need-- > 0 && ctl[C_CUR] < ctl[C_MAX]) core.spawnThread();
    } finally {
      unlock(ctl);
    }
    return this.#process();
  }

  /**
   * Queues `work(arg)`. A worker is started for it if none is idle and
   * fewer than `maxThreads` exist; otherwise it waits for a worker. If a
   * worker cannot be started, the work still waits for the existing ones
   * (or fails, reported by the next wait, if there are none).
   *
   * Counterpart: `thread_pool_submit()` (the argument's `GDestroyNotify` has
   * no use: the argument is copied, or shared if it is a SharedArrayBuffer).
   *
   * Thread: the pool's thread.
   *
   * @param work The module and exported function to run.
   * @param arg A structured-cloneable argument.
   * @throws {TypeError} If `work` is malformed or `arg` cannot be cloned (nothing is queued then).
   * @throws {Deno.errors.BadResource} If the pool was freed.
   *
   * @example Work that shares memory with the caller
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { ThreadPool } from "@aioloop/aioloop/thread-pool";
   * const jobs = "data:text/javascript,export function put([a, i]) { a[i] = i * i; }";
   * const a = new Int32Array(new SharedArrayBuffer(16));
   * using pool = new ThreadPool();
   * for (let i = 0; i < 4; i++) pool.submit({ module: jobs, name: "put" }, [a, i]);
   * pool.waitSync();
   * assertEquals([...a], [0, 1, 4, 9]);
   * ```
   */
  submit(work: ThreadPoolWork, arg?: unknown): void {
    this.#checkAlive("submit");
    this.#core.submit(work, arg, this.#onDone);
    this.#curWork++;
    this.#spawnForQueue();
  }

  /**
   * Queues `work(arg)` and makes sure it starts now: as
   * {@linkcode ThreadPool.prototype.submit}, then
   * {@linkcode ThreadPool.prototype.adjustMaxThreadsToWork}, so that every
   * piece of unfinished work has its own worker (the limit may go down as
   * well as up). Work that waits for other work submitted this way cannot
   * deadlock on the limit.
   *
   * Counterpart: `thread_pool_submit_immediate()`.
   *
   * Thread: the pool's thread.
   *
   * @param work The module and exported function to run.
   * @param arg A structured-cloneable argument.
   * @throws {TypeError} If `work` is malformed or `arg` cannot be cloned.
   * @throws {Deno.errors.BadResource} If the pool was freed.
   *
   * @example Two jobs that need each other, with a limit of one
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { ThreadPool } from "@aioloop/aioloop/thread-pool";
   * const jobs = "data:text/javascript," + encodeURIComponent(
   *   "export function meet([g, me]) { Atomics.store(g, me, 1); Atomics.notify(g, me);" +
   *   " Atomics.wait(g, 1 - me, 0, 10000); if (g[1 - me] === 0) throw new Error('alone'); }",
   * );
   * const g = new Int32Array(new SharedArrayBuffer(8));
   * using pool = new ThreadPool({ maxThreads: 1 });
   * pool.submitImmediate({ module: jobs, name: "meet" }, [g, 0]);
   * pool.submitImmediate({ module: jobs, name: "meet" }, [g, 1]);
   * await pool.wait();
   * assertEquals([...g], [1, 1]);
   * ```
   */
  submitImmediate(work: ThreadPoolWork, arg?: unknown): void {
    this.submit(work, arg);
    this.adjustMaxThreadsToWork();
  }

  /**
   * Waits until all submitted work (including work submitted meanwhile)
   * has finished, without blocking the thread's event loop. Returns at
   * once if none is pending. The promise keeps the process alive while
   * it waits.
   *
   * Counterpart: `thread_pool_wait()`.
   *
   * Thread: the pool's thread.
   *
   * @returns A promise that resolves when no work is left.
   * @throws {AggregateError} If work failed since the last report; its
   * `errors` say why (the error a job threw, a TypeError for a missing module
   * export, an Error for a worker that died).
   * @throws {Deno.errors.BadResource} If the pool was freed before the call.
   *
   * @example Collect failures
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { ThreadPool } from "@aioloop/aioloop/thread-pool";
   * const jobs = "data:text/javascript,export function check(x) { if (x < 0) throw new RangeError('negative ' + x); }";
   * using pool = new ThreadPool();
   * for (const x of [1, -2, 3]) pool.submit({ module: jobs, name: "check" }, x);
   * const failed = await pool.wait().then(() => null, (e) => e as AggregateError);
   * assertEquals(failed?.errors.map((e: Error) => e.message), ["negative -2"]);
   * await pool.wait(); // reported once: nothing left
   * ```
   */
  async wait(): Promise<void> {
    this.#checkAlive("wait");
    const ctl = this.#core.ctl;
    Atomics.add(ctl, C_DONE_WAITERS, 1);
    try {
      for (;;) {
        if (this.#freed) break;
        this.#process();
        if (this.#curWork === 0) break;
        await sleepOn(ctl, C_DONE, 0, WAIT_SLICE_MS);
      }
    } finally {
      Atomics.sub(ctl, C_DONE_WAITERS, 1);
    }
    this.#report();
  }

  /**
   * Waits as {@linkcode ThreadPool.prototype.wait} does, blocking the
   * calling thread (its timers, promises and messages wait too). On Deno's
   * main thread this is allowed, and right where nothing else must run
   * meanwhile. A worker that dies without its exit hook (rare: see the AIO
   * pool's limits) is not noticed while blocked.
   *
   * Counterpart: `thread_pool_wait()`.
   *
   * Thread: the pool's thread.
   *
   * @throws {AggregateError} If work failed since the last report.
   * @throws {Deno.errors.BadResource} If the pool was freed.
   *
   * @example A blocking barrier between two batches
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { ThreadPool } from "@aioloop/aioloop/thread-pool";
   * const jobs = "data:text/javascript,export function inc(a) { Atomics.add(a, 0, 1); }";
   * const a = new Int32Array(new SharedArrayBuffer(4));
   * using pool = new ThreadPool();
   * pool.submit({ module: jobs, name: "inc" }, a);
   * pool.waitSync();
   * const afterFirst = a[0];
   * pool.submit({ module: jobs, name: "inc" }, a);
   * pool.waitSync();
   * assertEquals([afterFirst, a[0]], [1, 2]);
   * ```
   */
  waitSync(): void {
    this.#checkAlive("waitSync");
    this.#drainSync();
    this.#report();
  }

  #drainSync(): void {
    const ctl = this.#core.ctl;
    Atomics.add(ctl, C_DONE_WAITERS, 1);
    try {
      for (;;) {
        this.#process();
        if (this.#curWork === 0) break;
        if (Atomics.load(ctl, C_DONE) === 0) Atomics.wait(ctl, C_DONE, 0, WAIT_SLICE_MS);
      }
    } finally {
      Atomics.sub(ctl, C_DONE_WAITERS, 1);
    }
  }

  #report(): void {
    if (this.#failures.length === 0) return;
    throw failuresError(this.#failures.splice(0));
  }

  /**
   * Sets the limit on workers. Raising it starts workers for queued work at
   * once; lowering it lets each worker above the limit leave after its
   * current job (none is interrupted).
   *
   * Counterpart: `thread_pool_set_max_threads()`.
   *
   * Thread: the pool's thread.
   *
   * @param maxThreads Most workers at once (an integer >= 1).
   * @returns False if a worker could not be started (as GLib's result).
   * @throws {RangeError} If `maxThreads` is not an integer in 1 .. 2^31-1
   * (QEMU asserts it is > 0).
   * @throws {Deno.errors.BadResource} If the pool was freed.
   *
   * @example Change the limit
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { ThreadPool } from "@aioloop/aioloop/thread-pool";
   * using pool = new ThreadPool();
   * assertEquals(pool.setMaxThreads(3), true);
   * assertEquals(pool.maxThreads, 3);
   * ```
   */
  setMaxThreads(maxThreads: number): boolean {
    checkMax(maxThreads);
    this.#checkAlive("setMaxThreads");
    this.#core.setParams(0, maxThreads);
    return this.#spawnForQueue();
  }

  /**
   * Sets the limit to the amount of unfinished work, so each piece of work
   * has a worker of its own ("exactly one thread per task"). With no work
   * left the limit becomes 1 (QEMU would assert that 0 > 0).
   *
   * Counterpart: `thread_pool_adjust_max_threads_to_work()`.
   *
   * Thread: the pool's thread.
   *
   * @returns False if a worker could not be started.
   * @throws {Deno.errors.BadResource} If the pool was freed.
   *
   * @example The limit follows the work
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { ThreadPool } from "@aioloop/aioloop/thread-pool";
   * const jobs = "data:text/javascript,export function nap(ms) { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms); }";
   * using pool = new ThreadPool({ maxThreads: 1 });
   * for (let i = 0; i < 3; i++) pool.submit({ module: jobs, name: "nap" }, 200);
   * pool.adjustMaxThreadsToWork();
   * const raised = pool.maxThreads;
   * await pool.wait();
   * pool.adjustMaxThreadsToWork();
   * assertEquals([raised, pool.maxThreads], [3, 1]);
   * ```
   */
  adjustMaxThreadsToWork(): boolean {
    this.#checkAlive("adjustMaxThreadsToWork");
    this.#process();
    return this.setMaxThreads(Math.max(1, Math.min(this.#curWork, INT32_MAX)));
  }

  /**
   * The pool's counters (workers, queued work), as the AIO pool's
   * `stats()`; `minThreads` is always 0.
   *
   * Counterpart: the fields of GLib's `GThreadPool` (`g_thread_pool_get_num_threads()`,
   * `g_thread_pool_unprocessed()`, `g_thread_pool_get_max_threads()`).
   *
   * Thread: the pool's thread.
   *
   * @returns A snapshot of the counters.
   *
   * @example Counters of an idle pool
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { ThreadPool } from "@aioloop/aioloop/thread-pool";
   * using pool = new ThreadPool({ maxThreads: 5 });
   * const s = pool.stats();
   * assertEquals([s.maxThreads, s.curThreads, s.queued], [5, 0, 0]);
   * ```
   */
  stats(): ThreadPoolStats {
    if (!this.#freed) this.#process();
    return this.#core.stats();
  }

  /**
   * Waits for all submitted work (blocking, as
   * {@linkcode ThreadPool.prototype.waitSync}), then stops the workers and
   * releases the pool. Idempotent. Work that never returns blocks it, as in
   * QEMU.
   *
   * Counterpart: `thread_pool_free()`.
   *
   * Thread: the pool's thread.
   *
   * @throws {AggregateError} If work failed and no wait reported it yet
   * (the pool is freed all the same).
   * @throws {Error} If workers did not stop within 10 s.
   *
   * @example Free, then nothing more
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { ThreadPool } from "@aioloop/aioloop/thread-pool";
   * const jobs = "data:text/javascript,export function inc(a) { Atomics.add(a, 0, 1); }";
   * const a = new Int32Array(new SharedArrayBuffer(4));
   * const pool = new ThreadPool();
   * pool.submit({ module: jobs, name: "inc" }, a);
   * pool.free(); // waits for the work first
   * assertEquals([a[0], pool.freed], [1, true]);
   * ```
   */
  free(): void {
    if (this.#freed) return;
    this.#drainSync();
    this.#freed = true;
    try {
      this.#core.free(false);
    } finally {
      this.#ctx.destroy();
    }
    this.#report();
  }

  /**
   * {@linkcode ThreadPool.prototype.free}, for `using`.
   *
   * Counterpart: `thread_pool_free()` (`g_autoptr(ThreadPool)`).
   *
   * Thread: the pool's thread.
   *
   * @example Freed at the end of the block
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { ThreadPool } from "@aioloop/aioloop/thread-pool";
   * let kept: ThreadPool;
   * {
   *   using pool = new ThreadPool();
   *   kept = pool;
   * }
   * assertEquals(kept.freed, true);
   * ```
   */
  [Symbol.dispose](): void {
    this.free();
  }

  /**
   * Waits for the work without blocking (as
   * {@linkcode ThreadPool.prototype.wait}), then frees the pool; for
   * `await using`. Failures are thrown after the pool is freed.
   *
   * Counterpart: `thread_pool_free()`.
   *
   * Thread: the pool's thread.
   *
   * @example Freed at the end of an async block
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { ThreadPool } from "@aioloop/aioloop/thread-pool";
   * const jobs = "data:text/javascript,export function inc(a) { Atomics.add(a, 0, 1); }";
   * const a = new Int32Array(new SharedArrayBuffer(4));
   * {
   *   await using pool = new ThreadPool();
   *   pool.submit({ module: jobs, name: "inc" }, a);
   * }
   * assertEquals(a[0], 1);
   * ```
   */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#freed) return;
    let failed: unknown = undefined;
    try {
      await this.wait();
    } catch (e) {
      failed = e;
    }
    this.free();
    if (failed !== undefined) throw failed;
  }
}

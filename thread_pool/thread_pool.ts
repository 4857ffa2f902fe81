/**
 * util/thread-pool.c on Deno: one pool of Workers per AioContext, for
 * blocking work.
 *
 * Work is named, not shipped: a request names a module URL and one of its
 * exported functions ({@linkcode ThreadPoolWork}), plus a structured-
 * cloneable argument. Workers import the module (once each) and call the
 * function with the argument; the value it returns (or the promise it
 * returns, settled) is the result.
 *
 * Requests and results travel through shared memory. Submitting appends the
 * request to a lock-free ring that workers take from in order (QEMU's
 * FIFO request list); a worker drains the ring before it sleeps, and only a
 * sleeping worker is woken. A worker that finishes marks the request DONE,
 * pushes it on a lock-free stack, and schedules the pool's completion
 * bottom half through the context's doorbell only if no ring is pending
 * since the owner last drained, so a context blocked in `ctx.poll(true)`
 * wakes up once for a burst of completions; completions never depend on
 * the owner's postMessage loop. Cancelling a queued request and a worker
 * taking it race on one compare-and-swap: exactly one of them wins.
 *
 * Completion callbacks run only from that BH, in the context's thread,
 * never from the submit call: each time the BH takes the newest-submitted
 * request that has finished (QEMU rescans its list after every callback; a
 * list kept sorted by submission gives the same order without the
 * quadratic scan), reschedules itself, calls the callback, and cancels
 * itself.
 *
 * Workers are `node:worker_threads` Workers, made `unref()`: a pool never
 * keeps the process alive, so a script that falls off its end exits even
 * with idle (or busy) workers. (A web Worker cannot be unref'd, and
 * `terminate()` cannot stop one blocked in `Atomics.wait` or in a job.)
 * Workers are created from a BH of the owning context, one at a time (each
 * new worker, once up, rings the context so the next one is created): `min`
 * of them as soon as the pool exists (QEMU's `thread_pool_init_one`), more
 * on demand when a request finds none idle, up to `max` (64 by default).
 * Pre-spawning `min` workers is how to keep the first submits from waiting
 * for a Worker to start. An idle worker waits on the
 * request condition with `Atomics.wait` (after watching it for about 20 µs,
 * one spinning worker per spare core), and leaves after 10 s idle if more
 * than `min` workers exist.
 *
 * Arguments and results: numbers, booleans, null and undefined go inline; anything else is
 * encoded with the codec IOThread requests use too (a compact
 * structured-clone subset, node:v8 for the rare rest). SharedArrayBuffers,
 * bare or under typed-array views and DataViews, share their memory with
 * the worker (each buffer is posted to a worker once, then referred to by
 * id, and comes back as the same object).
 *
 * Limits:
 * - Creating a Worker blocks the creating thread for tens of milliseconds in
 *   Deno (the constructor boots the worker's runtime; about 50 ms for a
 *   node:worker_threads Worker on a small machine), so the first jobs of a
 *   cold pool wait for that, the spawn BH stalls the context's poll
 *   meanwhile, and a full pool of 64 takes seconds to appear. Each worker
 *   costs about 12 MB of memory.
 * - A worker that dies while the owner is blocked in a synchronous poll is
 *   noticed at once if it dies through `process.exit()`, `close()` or an
 *   uncaught error (the worker's own exit hook fails its request and rings
 *   the context); any other death is noticed when the owner's Deno event
 *   loop next runs (the Worker's "exit" event).
 * - A job that never returns (or returns a promise that never settles)
 *   keeps its worker, as in QEMU; `free()` then gives up after 10 s.
 *
 * @example Run a function in a worker and wait for its completion
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext } from "@aioloop/aioloop";
 * import { getThreadPool } from "@aioloop/aioloop/thread-pool";
 *
 * const jobs = "data:text/javascript,export function add([a, b]) { return a + b; }";
 * using ctx = AioContext.create();
 * let sum = 0;
 * getThreadPool(ctx).submitAio({ module: jobs, name: "add" }, [2, 3], (ret) => sum = ret as number);
 * while (sum === 0) ctx.poll(true);
 * assertEquals(sum, 5);
 * ```
 *
 * @module
 */
import type { AioContext } from "../aio/aio_context.ts";
import { aioCoWake } from "../aio/co_schedule.ts";
import { Coroutine, type CoroutineFn, coroutineYield, inCoroutine } from "../aio/coroutine.ts";
import { getCurrentAioContext } from "../aio/current.ts";
import { internals } from "../aio/_internal.ts";
import { checkParams, PoolCore, type ReqState } from "./_pool_core.ts";
import type {
  ThreadPoolCompletionFunc,
  ThreadPoolRequestState,
  ThreadPoolStats,
  ThreadPoolWork,
} from "./types.ts";
import { MAX_THREADS_DEFAULT } from "./_shared.ts";
import { registerPoolControl } from "./_internal.ts";

const POOL_SLOT = Symbol("thread_pool");
const PARAMS_SLOT = Symbol("thread_pool_params");

// Friend access between the public classes and the core.
let makeRequest: (st: ReqState) => ThreadPoolRequest<any>;
let makePool: (core: PoolCore) => ThreadPoolAio;

/**
 * A submitted request. Its completion callback runs exactly once, from the
 * pool's completion BH in a later poll of the pool's context (never from the
 * submit call), unless the pool is freed first.
 *
 * Counterpart: the `BlockAIOCB` that `thread_pool_submit_aio()` returns.
 *
 * Thread: home thread of the pool's context.
 *
 * @typeParam R The result type.
 *
 * @example Cancelling a request that has not started
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext } from "@aioloop/aioloop";
 * import { getThreadPool } from "@aioloop/aioloop/thread-pool";
 * const jobs = "data:text/javascript,export function id(x) { return x; }";
 * using ctx = AioContext.create();
 * let ret = 0;
 * const req = getThreadPool(ctx).submitAio({ module: jobs, name: "id" }, 1, (r) => ret = r as number);
 * req.cancelAsync(); // no worker exists yet: the request is still queued
 * while (req.state !== "completed") ctx.poll(true);
 * assertEquals(ret, -125);
 * ```
 */
export class ThreadPoolRequest<R = unknown> {
  #st: ReqState;

  private constructor(st: ReqState) {
    this.#st = st;
  }

  static {
    makeRequest = (st) => new ThreadPoolRequest(st);
  }

  /** The name of the function the request runs. */
  get name(): string {
    return this.#st.name;
  }

  /** Where the request is; see {@linkcode ThreadPoolRequestState}. */
  get state(): ThreadPoolRequestState {
    return this.#st.core.stateOf(this.#st);
  }

  /**
   * Asks for cancellation without waiting. A request still queued is
   * dropped, and its callback gets `-ECANCELED` in a later poll; a running
   * or finished request is not affected and completes normally. Either way
   * the callback runs exactly once.
   *
   * Counterpart: `bdrv_aio_cancel_async()` (the pool's `thread_pool_cancel`).
   *
   * Thread: home thread of the pool's context.
   *
   * @example Cancel, then poll for the callback
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext } from "@aioloop/aioloop";
   * import { getThreadPool } from "@aioloop/aioloop/thread-pool";
   * const jobs = "data:text/javascript,export function id(x) { return x; }";
   * using ctx = AioContext.create();
   * let error: Error | undefined;
   * const req = getThreadPool(ctx).submitAio({ module: jobs, name: "id" }, 1, (_r, e) => error = e);
   * req.cancelAsync();
   * while (req.state !== "completed") ctx.poll(true);
   * assertEquals(error?.name, "SysError");
   * ```
   */
  cancelAsync(): void {
    this.#st.core.cancelAsync(this.#st);
  }

  /**
   * Cancels and waits: as {@linkcode ThreadPoolRequest.prototype.cancelAsync},
   * then polls the pool's context until the request's completion has run (a
   * running request is waited for).
   *
   * Counterpart: `bdrv_aio_cancel()` (`AIO_WAIT_WHILE` until the AIOCB is
   * released).
   *
   * Thread: home thread of the pool's context, with that context current;
   * not inside a coroutine.
   *
   * @throws {Error} If the pool's context is not the current one, or inside
   * a coroutine.
   *
   * @example Synchronous cancel
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext, withCurrentAioContext } from "@aioloop/aioloop";
   * import { getThreadPool } from "@aioloop/aioloop/thread-pool";
   * const jobs = "data:text/javascript,export function id(x) { return x; }";
   * using ctx = AioContext.create();
   * let ret = 0;
   * const req = getThreadPool(ctx).submitAio({ module: jobs, name: "id" }, 1, (r) => ret = r as number);
   * withCurrentAioContext(ctx, () => req.cancel());
   * assertEquals([req.state, ret], ["completed", -125]);
   * ```
   */
  cancel(): void {
    this.#st.core.cancel(this.#st);
  }
}

/**
 * The thread pool of one AioContext. Get it with
 * {@linkcode getThreadPool}; submit with
 * {@linkcode ThreadPoolAio.prototype.submitAio} (callback),
 * {@linkcode ThreadPoolAio.prototype.submitCo} (coroutine) or
 * {@linkcode ThreadPoolAio.prototype.submit} (promise).
 *
 * Counterpart: `ThreadPoolAio` (`thread_pool_new_aio`, `aio_get_thread_pool`).
 *
 * Thread: home thread of its context.
 *
 * @example Several jobs, one poll loop
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext } from "@aioloop/aioloop";
 * import { getThreadPool } from "@aioloop/aioloop/thread-pool";
 * const jobs = "data:text/javascript,export function sq(x) { return x * x; }";
 * using ctx = AioContext.create();
 * const pool = getThreadPool(ctx);
 * const out: number[] = [];
 * for (const x of [1, 2, 3]) pool.submitAio({ module: jobs, name: "sq" }, x, (r) => out.push(r as number));
 * while (out.length < 3) ctx.poll(true);
 * assertEquals(out.sort(), [1, 4, 9]);
 * ```
 */
export class ThreadPoolAio {
  #core: PoolCore;

  private constructor(core: PoolCore) {
    this.#core = core;
  }

  static {
    makePool = (core) => new ThreadPoolAio(core);
  }

  /** The context whose thread runs the completions. */
  get ctx(): AioContext {
    return this.#core.ctx;
  }

  /** Whether {@linkcode ThreadPoolAio.prototype.free} ran. */
  get freed(): boolean {
    return this.#core.freed;
  }

  /**
   * Submits a request: `work` runs with `arg` in a worker, and `cb` (if any)
   * gets the outcome in a later poll of the pool's context. A worker is
   * created if none is idle and fewer than `max` exist.
   *
   * Counterpart: `thread_pool_submit_aio()`.
   *
   * Thread: home thread of the pool's context.
   *
   * @typeParam R The result type.
   * @param work The module and exported function to run.
   * @param arg A structured-cloneable argument (views over SharedArrayBuffers share memory).
   * @param cb The completion callback, or null/undefined for none.
   * @returns The request, for cancellation.
   * @throws {TypeError} If `work` or `cb` is malformed or `arg` cannot be cloned.
   * @throws {Deno.errors.BadResource} If the pool was freed.
   *
   * @example Submit with a callback
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext } from "@aioloop/aioloop";
   * import { getThreadPool } from "@aioloop/aioloop/thread-pool";
   * const jobs = "data:text/javascript,export function upper(s) { return s.toUpperCase(); }";
   * using ctx = AioContext.create();
   * let got = "";
   * getThreadPool(ctx).submitAio({ module: jobs, name: "upper" }, "abc", (r) => got = r as string);
   * assertEquals(got, ""); // never completed synchronously
   * while (got === "") ctx.poll(true);
   * assertEquals(got, "ABC");
   * ```
   */
  submitAio<R = unknown>(
    work: ThreadPoolWork,
    arg: unknown,
    cb?: ThreadPoolCompletionFunc<R> | null,
  ): ThreadPoolRequest<R> {
    return makeRequest(this.#core.submit(work, arg, cb));
  }

  /**
   * Runs `work` in a worker from a coroutine: submits, yields until the
   * completion wakes the coroutine, and returns the result. Unlike QEMU's
   * int, a failure is thrown (the error the callback form would get).
   *
   * Counterpart: `thread_pool_submit_co()`.
   *
   * Thread: inside a coroutine of the pool's context's thread.
   *
   * @typeParam R The result type.
   * @param work The module and exported function to run.
   * @param arg A structured-cloneable argument.
   * @returns A coroutine function to run with `yield*`, producing the result.
   * @throws {Error} Outside a coroutine, or why the request failed.
   *
   * @example From a coroutine
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext, Coroutine } from "@aioloop/aioloop";
   * import { getThreadPool } from "@aioloop/aioloop/thread-pool";
   * const jobs = "data:text/javascript,export function twice(x) { return 2 * x; }";
   * using ctx = AioContext.create();
   * const pool = getThreadPool(ctx);
   * let out = 0;
   * const co = Coroutine.create(function* () {
   *   out = yield* pool.submitCo<number>({ module: jobs, name: "twice" }, 21);
   * });
   * co.enter();
   * while (!co.done) ctx.poll(true);
   * assertEquals(out, 42);
   * ```
   */
  *submitCo<R = unknown>(work: ThreadPoolWork, arg: unknown): CoroutineFn<R> {
    if (!inCoroutine()) throw new Error("threadPoolSubmitCo() must be called from a coroutine");
    const co = Coroutine.self();
    let done = false;
    let ret: unknown;
    let error: Error | undefined;
    this.#core.submit(work, arg, (r, e) => {
      ret = r;
      error = e;
      done = true;
      aioCoWake(co);
    });
    while (!done) yield* coroutineYield();
    if (error !== undefined) throw error;
    return ret as R;
  }

  /**
   * Runs `work` in a worker and returns a promise of its result (rejected
   * with the error a callback would get). The promise settles from the
   * pool's completion BH, so the pool's context must be polled meanwhile
   * (by the main loop, or a `ctx.poll()` loop); a worker never keeps the
   * process alive by itself.
   *
   * Counterpart: none in QEMU (a promise adapter over `thread_pool_submit_aio()`).
   *
   * Thread: home thread of the pool's context.
   *
   * @typeParam R The result type.
   * @param work The module and exported function to run.
   * @param arg A structured-cloneable argument.
   * @returns The result.
   *
   * @example Await while polling
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext } from "@aioloop/aioloop";
   * import { getThreadPool } from "@aioloop/aioloop/thread-pool";
   * const jobs = "data:text/javascript,export async function later(x) { return x + 1; }";
   * using ctx = AioContext.create();
   * let settled = false;
   * const p = getThreadPool(ctx).submit<number>({ module: jobs, name: "later" }, 1);
   * p.finally(() => settled = true);
   * while (!settled) {
   *   ctx.poll(true);
   *   await Promise.resolve(); // let the settlement run
   * }
   * assertEquals(await p, 2);
   * ```
   */
  submit<R = unknown>(work: ThreadPoolWork, arg: unknown): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#core.submit(work, arg, (ret, error) => {
        if (error !== undefined) reject(error);
        else resolve(ret as R);
      });
    });
  }

  /**
   * Sets how many workers to keep (`min`, spawned now if missing) and allow
   * (`max`; workers above it leave once idle).
   *
   * Counterpart: `thread_pool_update_params()` (with the checks of
   * `aio_context_set_thread_pool_params()`).
   *
   * Thread: home thread of the pool's context.
   *
   * @param min Workers kept even when idle (>= 0).
   * @param max Most workers at once (1 .. 2^31-1, >= min).
   * @throws {RangeError} If `min > max`, `max <= 0`, `min < 0`, a value is
   * not an integer or exceeds 2^31-1.
   * @throws {Deno.errors.BadResource} If the pool was freed.
   *
   * @example At most two workers
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext } from "@aioloop/aioloop";
   * import { getThreadPool } from "@aioloop/aioloop/thread-pool";
   * using ctx = AioContext.create();
   * const pool = getThreadPool(ctx);
   * pool.setParams(0, 2);
   * assertEquals(pool.stats().maxThreads, 2);
   * ```
   */
  setParams(min: number, max: number): void {
    this.#core.setParams(min, max);
  }

  /**
   * The pool's counters.
   *
   * Counterpart: reading `ThreadPoolAio`'s fields under `pool->lock`.
   *
   * @returns A snapshot.
   *
   * @example A fresh pool has no workers
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext } from "@aioloop/aioloop";
   * import { getThreadPool } from "@aioloop/aioloop/thread-pool";
   * using ctx = AioContext.create();
   * assertEquals(getThreadPool(ctx).stats().curThreads, 0);
   * ```
   */
  stats(): ThreadPoolStats {
    return this.#core.stats();
  }

  /**
   * Frees the pool: stops every worker and waits until they left (at most
   * 10 s). Requests must all have completed. Destroying the context frees
   * its pool (then requests still outstanding are dropped, and destroy
   * reports them by throwing). A later {@linkcode getThreadPool} makes a new
   * pool. Idempotent.
   *
   * Counterpart: `thread_pool_free_aio()`.
   *
   * Thread: home thread of the pool's context.
   *
   * @throws {Error} If requests are outstanding (nothing is freed then), or
   * workers did not stop in time.
   *
   * @example Free explicitly
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext } from "@aioloop/aioloop";
   * import { getThreadPool } from "@aioloop/aioloop/thread-pool";
   * using ctx = AioContext.create();
   * const pool = getThreadPool(ctx);
   * pool.free();
   * assertEquals([pool.freed, getThreadPool(ctx) !== pool], [true, true]);
   * ```
   */
  free(): void {
    this.#core.free(false);
  }
}

interface PoolParams {
  min: number;
  max: number;
}

/**
 * The thread pool of `ctx` (default: the current context), created on
 * first use with the context's parameters (see
 * {@linkcode setThreadPoolParams}). Destroying the context frees it.
 *
 * A new pool asks for its `min` workers at once (as QEMU's
 * `thread_pool_init_one` does), and the context's next polls create them,
 * one per poll. That cost is paid there instead of by the first submits:
 * each Worker takes about 50 ms of the context thread to construct (tens of
 * milliseconds more to boot in its own thread) and about 12 MB of memory.
 * With `min` 0 (the default) nothing starts until the first submit, which
 * then waits for one Worker start.
 *
 * Counterpart: `aio_get_thread_pool()`.
 *
 * Thread: home thread of `ctx`.
 *
 * @param ctx The context; defaults to the current one.
 * @returns Its pool.
 * @throws {Error} If no context is given and none is current.
 * @throws {Deno.errors.BadResource} If `ctx` was destroyed.
 *
 * @example The same pool every time
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext } from "@aioloop/aioloop";
 * import { getThreadPool } from "@aioloop/aioloop/thread-pool";
 * using ctx = AioContext.create();
 * assertEquals(getThreadPool(ctx) === getThreadPool(ctx), true);
 * ```
 */
export function getThreadPool(ctx: AioContext | null = getCurrentAioContext()): ThreadPoolAio {
  if (ctx === null) throw new Error("No current AioContext: the thread pool needs one");
  if (ctx.destroyed) throw new Deno.errors.BadResource(`AioContext '${ctx.name}' was destroyed`);
  const ints = internals(ctx);
  const existing = ints.slots.get(POOL_SLOT) as ThreadPoolAio | undefined;
  if (existing !== undefined) return existing;
  const params = ints.slots.get(PARAMS_SLOT) as PoolParams | undefined;
  const core = new PoolCore(ctx, params?.min ?? 0, params?.max ?? MAX_THREADS_DEFAULT);
  const pool = makePool(core);
  registerPoolControl(pool, core.ctl);
  ints.slots.set(POOL_SLOT, pool);
  core.onFreed = () => {
    if (ints.slots.get(POOL_SLOT) === pool) ints.slots.delete(POOL_SLOT);
  };
  // thread_pool_free_aio at aio_ctx_finalize.
  ints.destroyHooks.push(() => core.free(true));
  return pool;
}

/**
 * Sets the worker limits of `ctx`'s thread pool: stored on the context (for
 * a pool made later, which then starts `min` workers at once; see
 * {@linkcode getThreadPool} for the cost) and applied to its pool if it
 * exists.
 *
 * Counterpart: `aio_context_set_thread_pool_params()`.
 *
 * Thread: home thread of `ctx`.
 *
 * @param ctx The context.
 * @param min Workers kept even when idle (>= 0).
 * @param max Most workers at once (1 .. 2^31-1, >= min).
 * @throws {RangeError} On bad values, as {@linkcode ThreadPoolAio.prototype.setParams}.
 *
 * @example Limits before the pool exists
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext } from "@aioloop/aioloop";
 * import { getThreadPool, setThreadPoolParams } from "@aioloop/aioloop/thread-pool";
 * using ctx = AioContext.create();
 * setThreadPoolParams(ctx, 0, 4);
 * assertEquals(getThreadPool(ctx).stats().maxThreads, 4);
 * ```
 */
export function setThreadPoolParams(ctx: AioContext, min: number, max: number): void {
  checkParams(min, max);
  if (ctx.destroyed) throw new Deno.errors.BadResource(`AioContext '${ctx.name}' was destroyed`);
  const ints = internals(ctx);
  ints.slots.set(PARAMS_SLOT, { min, max } satisfies PoolParams);
  const pool = ints.slots.get(POOL_SLOT) as ThreadPoolAio | undefined;
  pool?.setParams(min, max);
}

function currentPool(): ThreadPoolAio {
  const ctx = getCurrentAioContext();
  if (ctx === null) throw new Error("No current AioContext: thread pool requests need one");
  return getThreadPool(ctx);
}

/**
 * Submits a request to the current context's pool; see
 * {@linkcode ThreadPoolAio.prototype.submitAio}.
 *
 * Counterpart: `thread_pool_submit_aio()`.
 *
 * Thread: a thread with a current AioContext.
 *
 * @typeParam R The result type.
 * @param work The module and exported function to run.
 * @param arg A structured-cloneable argument.
 * @param cb The completion callback, or null/undefined for none.
 * @returns The request.
 * @throws {Error} If no AioContext is current.
 *
 * @example With the current context
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext, withCurrentAioContext } from "@aioloop/aioloop";
 * import { threadPoolSubmitAio } from "@aioloop/aioloop/thread-pool";
 * const jobs = "data:text/javascript,export function neg(x) { return -x; }";
 * using ctx = AioContext.create();
 * let r = 0;
 * withCurrentAioContext(ctx, () => {
 *   threadPoolSubmitAio({ module: jobs, name: "neg" }, 3, (ret) => r = ret as number);
 *   while (r === 0) ctx.poll(true);
 * });
 * assertEquals(r, -3);
 * ```
 */
export function threadPoolSubmitAio<R = unknown>(
  work: ThreadPoolWork,
  arg: unknown,
  cb?: ThreadPoolCompletionFunc<R> | null,
): ThreadPoolRequest<R> {
  return currentPool().submitAio(work, arg, cb);
}

/**
 * Runs `work` from a coroutine in the current context's pool; see
 * {@linkcode ThreadPoolAio.prototype.submitCo}.
 *
 * Counterpart: `thread_pool_submit_co()`.
 *
 * Thread: inside a coroutine, with a current AioContext.
 *
 * @typeParam R The result type.
 * @param work The module and exported function to run.
 * @param arg A structured-cloneable argument.
 * @returns A coroutine function to run with `yield*`, producing the result.
 * @throws {Error} Outside a coroutine, with no current context, or why the
 * request failed.
 *
 * @example In a coroutine
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext, Coroutine, withCurrentAioContext } from "@aioloop/aioloop";
 * import { threadPoolSubmitCo } from "@aioloop/aioloop/thread-pool";
 * const jobs = "data:text/javascript,export function inc(x) { return x + 1; }";
 * using ctx = AioContext.create();
 * let v = 0;
 * withCurrentAioContext(ctx, () => {
 *   const co = Coroutine.create(function* () {
 *     v = yield* threadPoolSubmitCo<number>({ module: jobs, name: "inc" }, 1);
 *   });
 *   co.enter();
 *   while (!co.done) ctx.poll(true);
 * });
 * assertEquals(v, 2);
 * ```
 */
export function* threadPoolSubmitCo<R = unknown>(
  work: ThreadPoolWork,
  arg: unknown,
): CoroutineFn<R> {
  if (!inCoroutine()) throw new Error("threadPoolSubmitCo() must be called from a coroutine");
  return yield* currentPool().submitCo<R>(work, arg);
}

/**
 * Runs `work` in the current context's pool and returns a promise of the
 * result; see {@linkcode ThreadPoolAio.prototype.submit} (the context must be
 * polled for it to settle).
 *
 * Counterpart: none in QEMU (a promise adapter over `thread_pool_submit_aio()`).
 *
 * Thread: a thread with a current AioContext.
 *
 * @typeParam R The result type.
 * @param work The module and exported function to run.
 * @param arg A structured-cloneable argument.
 * @returns The result.
 * @throws {Error} If no AioContext is current.
 *
 * @example Promise form
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext, withCurrentAioContext } from "@aioloop/aioloop";
 * import { threadPoolSubmit } from "@aioloop/aioloop/thread-pool";
 * const jobs = "data:text/javascript,export function len(s) { return s.length; }";
 * using ctx = AioContext.create();
 * const p = withCurrentAioContext(ctx, () => threadPoolSubmit<number>({ module: jobs, name: "len" }, "four"));
 * let n = -1;
 * p.then((v) => n = v);
 * while (n < 0) {
 *   ctx.poll(true);
 *   await Promise.resolve();
 * }
 * assertEquals(n, 4);
 * ```
 */
export function threadPoolSubmit<R = unknown>(work: ThreadPoolWork, arg: unknown): Promise<R> {
  let pool: ThreadPoolAio;
  try {
    pool = currentPool();
  } catch (e) {
    return Promise.reject(e);
  }
  return pool.submit<R>(work, arg);
}

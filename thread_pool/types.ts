/**
 * The types of the thread pool's API: what a request runs, its completion
 * callback, its state, and the pool's counters.
 *
 * @module
 */

/**
 * What a request runs: an exported function of a module, by name. The
 * module is imported by each worker (so it needs no permission beyond what
 * the process has, and `data:` URLs work); the function receives the
 * request's argument and returns (or resolves to) the result.
 *
 * Counterpart: the `ThreadPoolFunc *func` of `thread_pool_submit_aio()`.
 *
 * @example A work descriptor
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import type { ThreadPoolWork } from "@aioloop/aioloop/thread-pool";
 * const work: ThreadPoolWork = { module: new URL("./jobs.ts", import.meta.url), name: "checksum" };
 * assertEquals(work.name, "checksum");
 * ```
 */
export interface ThreadPoolWork {
  /** The module: an absolute URL (a `URL`, or a string such as `file:///…`, `data:…`). */
  readonly module: string | URL;
  /** The name of the exported function. */
  readonly name: string;
}

/**
 * A completion callback. `error` is undefined on success and `ret` is the
 * function's result. On failure `error` says why and `ret` is a negative
 * errno: `-ECANCELED` (-125) for a request cancelled while queued, the
 * error's `errno` when the job threw an error carrying one (a SysError),
 * and `-EIO` (-5) otherwise (the job threw, its module or function could
 * not be found, its result could not be cloned, or its worker died).
 *
 * Counterpart: `BlockCompletionFunc` (`void cb(void *opaque, int ret)`).
 *
 * @typeParam R The result type.
 *
 * @example A callback handling both outcomes
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import type { ThreadPoolCompletionFunc } from "@aioloop/aioloop/thread-pool";
 * const seen: string[] = [];
 * const cb: ThreadPoolCompletionFunc<number> = (ret, error) => {
 *   if (error) seen.push(`failed ${ret} ${error.message}`);
 *   else seen.push(`result ${ret}`);
 * };
 * cb(7, undefined);
 * cb(-5, new Error("boom"));
 * assertEquals(seen, ["result 7", "failed -5 boom"]);
 * ```
 */
export type ThreadPoolCompletionFunc<R = unknown> = (
  ret: R | number,
  error: Error | undefined,
) => void;

/**
 * Where a request is: `"queued"` (waiting for a worker), `"active"` (a
 * worker runs it), `"done"` (finished; its completion has not run yet) or
 * `"completed"` (its completion ran, or the pool was freed).
 *
 * Counterpart: `enum ThreadState` (`THREAD_QUEUED`, `THREAD_ACTIVE`,
 * `THREAD_DONE`).
 *
 * @example Checking a state
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import type { ThreadPoolRequestState } from "@aioloop/aioloop/thread-pool";
 * const s: ThreadPoolRequestState = "queued";
 * assertEquals(s === "queued", true);
 * ```
 */
export type ThreadPoolRequestState = "queued" | "active" | "done" | "completed";

/**
 * Counters of a pool, read under its lock.
 *
 * Counterpart: the fields of `ThreadPoolAio` (`cur_threads`, `idle_threads`,
 * `new_threads`, `pending_threads`, `min_threads`, `max_threads`).
 *
 * @example Reading the counters
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext } from "@aioloop/aioloop";
 * import { getThreadPool } from "@aioloop/aioloop/thread-pool";
 * using ctx = AioContext.create();
 * assertEquals(getThreadPool(ctx).stats().maxThreads, 64);
 * ```
 */
export interface ThreadPoolStats {
  /** Workers kept even when idle. */
  readonly minThreads: number;
  /** Most workers at once. */
  readonly maxThreads: number;
  /** Workers counted as existing: asked for, starting, running or idle. */
  readonly curThreads: number;
  /** Workers waiting for a request. */
  readonly idleThreads: number;
  /** Workers asked for and not created yet. */
  readonly newThreads: number;
  /** Workers created and not running yet. */
  readonly pendingThreads: number;
  /** Worker objects the pool holds (0 after `free()`). */
  readonly workers: number;
  /** Requests submitted whose completion has not run. */
  readonly requests: number;
  /** Requests waiting for a worker. */
  readonly queued: number;
}

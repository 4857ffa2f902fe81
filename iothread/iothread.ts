/**
 * IOThreads: a Worker that owns an AioContext and runs `poll(true)` in a
 * loop until it is stopped, as QEMU's `iothread.c` object (and the test
 * helper `tests/unit/iothread.c`) does with a thread.
 *
 * Work reaches the thread by name, never as a closure:
 * {@linkcode IOThread.prototype.run} calls an exported function of a module
 * inside the thread (as a bottom half of its context) and returns the
 * result; any thread can do the same with the thread's
 * {@linkcode IOThread.prototype.handle} and `remoteCall` / `remotePost` /
 * `remoteCoEnter`.
 *
 * Stopping is cooperative, because `Worker.terminate()` cannot interrupt a
 * thread blocked in a synchronous FFI call (and such a Worker keeps the
 * process alive): set the stop flag, ring the doorbell, wait for the Worker
 * to leave its loop and destroy its context, then terminate it.
 *
 * @example Run a function in an IOThread
 * ```ts
 * import { IOThread } from "@aioloop/aioloop/iothread";
 * await using t = await IOThread.create({ id: "io0" });
 * const mod = "data:text/javascript,export function twice(x) { return 2 * x; }";
 * console.log(await t.run(mod, "twice", 21)); // 42
 * ```
 *
 * @module
 */
import type { FdMonName } from "../fdmon/fdmon_ops.ts";
import type { PollParams } from "../aio/fd_handlers.ts";
import { RemoteAioContext } from "../aio/handle.ts";
import { processClockBlock } from "../aio/_timer_list.ts";
import {
  closeRemoteRequestChannel,
  remoteCall,
  remoteCallSync,
  type RemoteRequestChannel,
  type RequestModule,
} from "./remote_request.ts";

/** QEMU's IOTHREAD_POLL_MAX_NS_DEFAULT on POSIX hosts. */
export const IOTHREAD_POLL_MAX_NS_DEFAULT = 32768;
/** QEMU's THREAD_POOL_MAX_THREADS_DEFAULT. */
const THREAD_POOL_MAX_DEFAULT = 64;

/** Options of {@linkcode IOThread.create}. */
export interface IOThreadOptions {
  /** The object id (QEMU's `-object iothread,id=...`); names the Worker "IO <id>". */
  id?: string;
  /** Longest adaptive busy-poll in ns (default 32768; 0 disables). Counterpart: `poll-max-ns`. */
  pollMaxNs?: number;
  /** Busy-poll growth factor (0 = double). Counterpart: `poll-grow`. */
  pollGrow?: number;
  /** Busy-poll shrink divisor (0 = reset). Counterpart: `poll-shrink`. */
  pollShrink?: number;
  /** Minimum thread-pool workers of the context. Counterpart: `thread-pool-min`. */
  threadPoolMin?: number;
  /** Maximum thread-pool workers of the context (default 64). Counterpart: `thread-pool-max`. */
  threadPoolMax?: number;
  /** The fd monitor of the thread's context (default: as `AioContext.create`). */
  fdmon?: FdMonName | "auto";
  /**
   * Called (on this thread) with an error that left the IOThread's `poll()`
   * (a throwing BH, timer or fd handler, or a failed no-reply request). The
   * loop carries on. Default: `reportError`, i.e. an uncaught error, as an
   * uncaught error inside any Worker is.
   */
  onError?: (error: unknown) => void;
}

/** Thread-pool sizing handed to the IOThread's context. */
export interface ThreadPoolParams {
  /** Minimum workers. */
  min: number;
  /** Maximum workers. */
  max: number;
}

// The control block shared with the Worker (Int32 words); _iothread_worker.ts
// repeats these numbers (importing it here would run the Worker's entry code).
const C_STOP = 0;
const C_TID = 2;
const C_WORDS = 4;

/** The Worker's messages to this side. */
type FromWorker =
  | { type: "ready"; channel: RemoteRequestChannel }
  | { type: "failed"; error: unknown }
  | { type: "error"; error: unknown }
  | { type: "stopped" };

let unnamed = 0;

function checkParam(name: string, v: number | undefined, dflt: number): number {
  const x = v ?? dflt;
  if (typeof x !== "number" || !Number.isSafeInteger(x) || x < 0) {
    throw new RangeError(
      `${name} value must be in range [0, ${Number.MAX_SAFE_INTEGER}], got ${v}`,
    );
  }
  return x;
}

/**
 * A thread with its own AioContext, looping `poll(true)` until stopped.
 * Inside the thread, `getCurrentAioContext()` returns that context.
 *
 * Counterpart: the QOM `IOThread` of iothread.c (`iothread_new` /
 * `iothread_join` of tests/unit/iothread.c in the test suite).
 *
 * Thread: the creating thread owns the object; its `handle` may be posted
 * anywhere.
 *
 * @example Create, run, stop
 * ```ts
 * import { IOThread } from "@aioloop/aioloop/iothread";
 * const t = await IOThread.create({ pollMaxNs: 0 });
 * const mod = "data:text/javascript,export function id() { return 7; }";
 * console.log(await t.run(mod, "id")); // 7
 * await t.stop();
 * console.log(t.stopped); // true
 * ```
 */
export class IOThread implements AsyncDisposable {
  /** The object id. */
  readonly id: string;
  #worker: Worker;
  #ctl: Int32Array;
  #channel: RemoteRequestChannel | null = null;
  #pollParams: Required<PollParams>;
  #threadPool: ThreadPoolParams;
  #onError: (error: unknown) => void;
  #stopped = Promise.withResolvers<void>();
  #died = Promise.withResolvers<never>();
  #deathError: Error | null = null;
  #stopping: Promise<void> | null = null;
  #isStopped = false;

  private constructor(worker: Worker, id: string, ctl: Int32Array, o: {
    pollParams: Required<PollParams>;
    threadPool: ThreadPoolParams;
    onError: (error: unknown) => void;
  }) {
    this.#worker = worker;
    this.id = id;
    this.#ctl = ctl;
    this.#pollParams = o.pollParams;
    this.#threadPool = o.threadPool;
    this.#onError = o.onError;
    // Nobody need await the death promise for it to be handled.
    this.#died.promise.catch(() => {});
  }

  /**
   * Starts the thread and waits until its context exists (about one Worker
   * start-up, ~11-15 ms).
   *
   * Counterpart: `iothread_new()` / `iothread_init()` (with
   * `iothread_set_poll_param()` and the EventLoopBase thread-pool limits).
   *
   * @param options Id, polling and thread-pool parameters, fd monitor.
   * @returns The running IOThread.
   * @throws {RangeError} If a numeric parameter is negative or not a safe
   * integer ("pollMaxNs value must be in range [0, 9007199254740991]"), or
   * the thread-pool limits are inconsistent (min > max, max 0 or above
   * 2^31-1).
   * @throws {TypeError} If `id` is not a non-empty string.
   * @throws {Error} If the Worker cannot create its context (e.g. an
   * unsupported fd monitor); the Worker is terminated.
   *
   * @example Adaptive polling off, as QEMU's unit-test helper
   * ```ts
   * import { IOThread } from "@aioloop/aioloop/iothread";
   * await using t = await IOThread.create({ id: "worker", pollMaxNs: 0 });
   * console.log(t.pollParams.maxNs); // 0
   * ```
   */
  static async create(options: IOThreadOptions = {}): Promise<IOThread> {
    const id = options.id ?? `iothread${unnamed++}`;
    if (typeof id !== "string" || id === "") {
      throw new TypeError("IOThread id must be a non-empty string");
    }
    const pollParams = {
      maxNs: checkParam("pollMaxNs", options.pollMaxNs, IOTHREAD_POLL_MAX_NS_DEFAULT),
      grow: checkParam("pollGrow", options.pollGrow, 0),
      shrink: checkParam("pollShrink", options.pollShrink, 0),
    };
    const threadPool = {
      min: checkParam("threadPoolMin", options.threadPoolMin, 0),
      max: checkParam("threadPoolMax", options.threadPoolMax, THREAD_POOL_MAX_DEFAULT),
    };
    // aio_context_set_thread_pool_params's own check.
    if (threadPool.min > threadPool.max || threadPool.max === 0 || threadPool.max > 0x7fffffff) {
      throw new RangeError(
        `Bad thread-pool-min/thread-pool-max values: min ${threadPool.min}, max ${threadPool.max}`,
      );
    }
    const onError = options.onError ?? ((e: unknown) => reportError(e));
    if (typeof onError !== "function") throw new TypeError("onError must be a function");
    const ctl = new Int32Array(new SharedArrayBuffer(C_WORDS * 4));
    const worker = new Worker(new URL("./_worker.ts", import.meta.url), {
      type: "module",
      name: `IO ${id}`,
    });
    const t = new IOThread(worker, id, ctl, { pollParams, threadPool, onError });
    const ready = Promise.withResolvers<void>();
    worker.onmessage = (e: MessageEvent<FromWorker>) => t.#onMessage(e.data, ready);
    worker.onerror = (e: ErrorEvent) => {
      // An uncaught error inside the Worker (its own code catches the
      // loop's): the thread is gone.
      e.preventDefault();
      t.#die(new Error(`IOThread '${id}' died: ${e.message}`));
      ready.reject(t.#deathError);
    };
    worker.postMessage({
      type: "init",
      id,
      ctl: ctl.buffer,
      fdmon: options.fdmon,
      pollParams,
      threadPool,
      // One clock state per process: the thread adopts it before its context.
      clock: processClockBlock(),
    });
    try {
      await ready.promise;
    } catch (e) {
      worker.terminate();
      t.#isStopped = true;
      throw e;
    }
    return t;
  }

  #onMessage(m: FromWorker, ready: PromiseWithResolvers<void>): void {
    switch (m.type) {
      case "ready":
        this.#channel = m.channel;
        ready.resolve();
        break;
      case "failed":
        ready.reject(m.error);
        break;
      case "error":
        this.#onError(m.error);
        break;
      case "stopped":
        this.#stopped.resolve();
        break;
    }
  }

  #die(error: Error): void {
    if (this.#deathError !== null) return;
    this.#deathError = error;
    // Callers blocked on the dead thread's channel must not wait forever.
    if (this.#channel !== null) closeRemoteRequestChannel(this.#channel);
    this.#died.reject(error);
    this.#stopped.resolve();
  }

  #check(): RemoteRequestChannel {
    if (this.#deathError !== null) throw this.#deathError;
    if (this.#stopping !== null || this.#channel === null) {
      throw new Deno.errors.BadResource(`IOThread '${this.id}' is stopped`);
    }
    return this.#channel;
  }

  /**
   * The thread's context as a cloneable handle with its request channel:
   * post it to other threads for `remoteCall`, `remoteCoEnter`,
   * `RemoteAioContext` and shared BHs.
   *
   * Counterpart: `iothread_get_aio_context()`.
   *
   * @example The handle names the thread's context
   * ```ts
   * import { RemoteAioContext } from "@aioloop/aioloop";
   * import { IOThread } from "@aioloop/aioloop/iothread";
   * await using t = await IOThread.create();
   * new RemoteAioContext(t.handle).notify(); // a kick: the loop carries on
   * console.log(t.handle.requests instanceof SharedArrayBuffer); // true
   * ```
   */
  get handle(): RemoteRequestChannel {
    if (this.#channel === null) {
      throw new Deno.errors.BadResource(`IOThread '${this.id}' never started`);
    }
    return this.#channel;
  }

  /**
   * Whether {@linkcode IOThread.prototype.stop} has completed (or the
   * thread died).
   *
   * @example A running thread
   * ```ts
   * import { IOThread } from "@aioloop/aioloop/iothread";
   * await using t = await IOThread.create();
   * console.log(t.stopped); // false
   * ```
   */
  get stopped(): boolean {
    return this.#isStopped;
  }

  /**
   * The adaptive polling parameters the thread's context was given.
   *
   * Counterpart: the `poll-max-ns`, `poll-grow`, `poll-shrink` properties.
   *
   * @example The default
   * ```ts
   * import { IOThread } from "@aioloop/aioloop/iothread";
   * await using t = await IOThread.create();
   * console.log(t.pollParams.maxNs); // 32768
   * ```
   */
  get pollParams(): Required<PollParams> {
    return { ...this.#pollParams };
  }

  /**
   * The thread-pool limits the thread's context was given.
   *
   * Counterpart: the `thread-pool-min` / `thread-pool-max` properties.
   *
   * @example Defaults
   * ```ts
   * import { IOThread } from "@aioloop/aioloop/iothread";
   * await using t = await IOThread.create();
   * console.log(t.threadPoolParams); // { min: 0, max: 64 }
   * ```
   */
  get threadPoolParams(): ThreadPoolParams {
    return { ...this.#threadPool };
  }

  /**
   * Runs export `exportName` of `module` inside the thread, as a bottom half
   * of its context (which is current there), and resolves with its result
   * (awaited if it is a promise). The argument may contain
   * SharedArrayBuffers: they are posted to the Worker beside the request.
   * While a returned promise is pending, the thread polls without blocking
   * and yields to its event loop between polls (1 ms ticks), so that the
   * promise can settle.
   *
   * Counterpart: `ctx_run()` of tests/unit/test-aio-multithread.c.
   *
   * @param module Absolute URL of the module (`new URL("../aio/fns.ts", import.meta.url)`).
   * @param exportName The exported function to call.
   * @param arg Its argument.
   * @returns What the function returned.
   * @throws {Deno.errors.BadResource} If the thread is stopped.
   * @throws {TypeError} If the module has no such exported function, or the
   * argument cannot be cloned; otherwise whatever the function threw.
   *
   * @example A missing export is a clear error
   * ```ts
   * import { IOThread } from "@aioloop/aioloop/iothread";
   * await using t = await IOThread.create();
   * const mod = "data:text/javascript,export const x = 1;";
   * try {
   *   await t.run(mod, "missing");
   * } catch (e) {
   *   console.log((e as Error).message.endsWith("has no exported function 'missing'")); // true
   * }
   * ```
   */
  async run(module: RequestModule, exportName: string, arg?: unknown): Promise<unknown> {
    const ch = this.#check();
    const reply = remoteCall(ch, module, exportName, arg, { sharedBufferPort: this.#worker });
    // If the thread dies, the race settles first and the call fails later
    // (its channel is closed): that failure must not go unhandled.
    reply.catch(() => {});
    return await Promise.race([reply, this.#died.promise]);
  }

  /**
   * Like {@linkcode IOThread.prototype.run}, but blocks the calling thread
   * until the result is back. This thread's event loop stands still
   * meanwhile, so the function must not wait for anything this thread would
   * have to do.
   *
   * Counterpart: `ctx_run()` of tests/unit/test-aio-multithread.c.
   *
   * @param module Absolute URL of the module.
   * @param exportName The exported function to call.
   * @param arg Its argument.
   * @returns What the function returned.
   * @throws {Deno.errors.BadResource} If the thread is stopped or is
   * destroyed meanwhile.
   *
   * @example Synchronous call
   * ```ts
   * import { IOThread } from "@aioloop/aioloop/iothread";
   * await using t = await IOThread.create();
   * const mod = "data:text/javascript,export function inc(x) { return x + 1; }";
   * await t.run(mod, "inc", 0); // the first call imports the module
   * console.log(t.runSync(mod, "inc", 1)); // 2
   * ```
   */
  runSync(module: RequestModule, exportName: string, arg?: unknown): unknown {
    const ch = this.#check();
    return remoteCallSync(ch, module, exportName, arg, { sharedBufferPort: this.#worker });
  }

  /**
   * Stops the thread: sets its stop flag, rings its doorbell, waits for the
   * Worker to leave its `poll()` loop and destroy its context, then
   * terminates it. Idempotent: later calls return the same promise. A
   * function still running in the thread finishes first, and work already
   * scheduled in its context runs (up to 100 non-blocking polls); requests
   * that arrive after that fail with `BadResource`.
   *
   * Counterpart: `iothread_stop()` / `iothread_join()`.
   *
   * @returns Resolves once the Worker is gone.
   *
   * @example Stop twice
   * ```ts
   * import { IOThread } from "@aioloop/aioloop/iothread";
   * const t = await IOThread.create();
   * await Promise.all([t.stop(), t.stop()]);
   * console.log(t.stopped); // true
   * ```
   */
  stop(): Promise<void> {
    return this.#stopping ??= this.#stop();
  }

  async #stop(): Promise<void> {
    Atomics.store(this.#ctl, C_STOP, 1);
    if (this.#channel !== null && this.#deathError === null) {
      const remote = new RemoteAioContext(this.#channel);
      if (!remote.destroyed) {
        try {
          remote.notify();
        } catch (e) {
          // Destroyed between the check and the ring: it is leaving anyway.
          if (!(e instanceof Deno.errors.BadResource)) throw e;
        }
      }
    }
    await this.#stopped.promise;
    this.#worker.terminate();
    this.#isStopped = true;
  }

  /**
   * The OS thread id of the Worker (for /proc inspection), or 0 before
   * start.
   *
   * Counterpart: `IOThread.thread_id`.
   *
   * @example A real thread
   * ```ts
   * import { IOThread } from "@aioloop/aioloop/iothread";
   * await using t = await IOThread.create();
   * console.log(t.threadId > 0); // true
   * ```
   */
  get threadId(): number {
    return Atomics.load(this.#ctl, C_TID);
  }

  /** Same as {@linkcode IOThread.prototype.stop}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

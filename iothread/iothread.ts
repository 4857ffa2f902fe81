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
 * thread blocked in a synchronous FFI call: set the stop flag, ring the
 * doorbell, wait for the Worker to leave its loop and destroy its context,
 * then terminate it.
 *
 * An IOThread never keeps the process alive by itself, idle or busy (its
 * Worker is an unref'd `node:worker_threads` Worker, as the thread pool's
 * are): a script that creates one and falls off its end exits, as a QEMU
 * process's IOThreads end with the process. Awaiting `create()`, `run()` or
 * `stop()` does keep it alive until that promise settles.
 *
 * @example Run a function in an IOThread
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { IOThread } from "@aioloop/aioloop/iothread";
 * await using t = await IOThread.create({ id: "io0" });
 * const mod = "data:text/javascript,export function twice(x) { return 2 * x; }";
 * assertEquals(await t.run(mod, "twice", 21), 42);
 * ```
 *
 * @module
 */
import type { FdMonName } from "../fdmon/fdmon_ops.ts";
import type { PollParams } from "../aio/fd_handlers.ts";
import { RemoteAioContext } from "../aio/handle.ts";
import { MessageChannel, type MessagePort, Worker } from "node:worker_threads";
import { IOTHREAD_CTL, newControlBlock } from "../_wire/control_words.ts";
import type { WorkerInit } from "./_init.ts";
import { explainWorkerStartError } from "../_wire/worker_start.ts";
import type {
  RequestArgs,
  RequestExport,
  RequestFunction,
  RequestFunctionName,
  RequestResult,
} from "./request_types.ts";
import { processClockBlock } from "../aio/_timer_list.ts";
import { traceBlock } from "../trace/_state.ts";
import { bqlMutex } from "../thread/_bql_state.ts";
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
  /**
   * Minimum thread-pool workers of the context. Counterpart: `thread-pool-min`.
   * Above 0, the thread's pool is created with the thread and starts that
   * many workers in its first polls (each Worker costs the IOThread about
   * 50 ms to construct and about 12 MB), so the first jobs find them up.
   */
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

/**
 * A module of an IOThread typed by its exports (from
 * {@linkcode IOThread.prototype.module}).
 *
 * @typeParam M The module's type, `typeof import("./fns.ts")`.
 */
export interface IOThreadModule<M> {
  /** The module's URL. */
  readonly module: RequestModule;
  /** {@linkcode IOThread.prototype.run} of export `name`. */
  run<K extends RequestFunctionName<M>>(
    name: K,
    ...args: RequestArgs<RequestExport<M, K>>
  ): Promise<RequestResult<RequestExport<M, K>>>;
  /** {@linkcode IOThread.prototype.runSync} of export `name`. */
  runSync<K extends RequestFunctionName<M>>(
    name: K,
    ...args: RequestArgs<RequestExport<M, K>>
  ): RequestResult<RequestExport<M, K>>;
}

/** Thread-pool sizing handed to the IOThread's context. */
export interface ThreadPoolParams {
  /** Minimum workers. */
  min: number;
  /** Maximum workers. */
  max: number;
}

const WORKER_URL = new URL("./_worker.ts", import.meta.url);
const POLL_PARAMS_URL = new URL("./_poll_params.ts", import.meta.url);

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
 * import { assertEquals } from "@std/assert";
 * import { IOThread } from "@aioloop/aioloop/iothread";
 * const t = await IOThread.create({ pollMaxNs: 0 });
 * const mod = "data:text/javascript,export function id() { return 7; }";
 * assertEquals(await t.run(mod, "id"), 7);
 * await t.stop();
 * assertEquals(t.stopped, true);
 * ```
 */
export class IOThread implements AsyncDisposable {
  /** The object id. */
  readonly id: string;
  #worker: Worker;
  #ctl: Int32Array;
  /** Where SharedArrayBuffers of requests go; the thread pulls them synchronously. */
  #sabPort: MessagePort;
  #channel: RemoteRequestChannel | null = null;
  #pollParams: Required<PollParams>;
  #threadPool: ThreadPoolParams;
  #onError: (error: unknown) => void;
  #stopped = Promise.withResolvers<void>();
  #died = Promise.withResolvers<never>();
  #deathError: Error | null = null;
  #stopping: Promise<void> | null = null;
  #isStopped = false;
  #stoppedSeen = false;

  private constructor(worker: Worker, id: string, ctl: Int32Array, o: {
    sabPort: MessagePort;
    pollParams: Required<PollParams>;
    threadPool: ThreadPoolParams;
    onError: (error: unknown) => void;
  }) {
    this.#worker = worker;
    this.id = id;
    this.#ctl = ctl;
    this.#sabPort = o.sabPort;
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
   * @throws {Deno.errors.NotCapable} If the process may not read the
   * Worker's module (the message says which `--allow-read` to add).
   *
   * @example Adaptive polling off, as QEMU's unit-test helper
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { IOThread } from "@aioloop/aioloop/iothread";
   * await using t = await IOThread.create({ id: "worker", pollMaxNs: 0 });
   * assertEquals(t.pollParams.maxNs, 0);
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
    const ctl = newControlBlock(IOTHREAD_CTL);
    const { port1, port2 } = new MessageChannel();
    const init: WorkerInit = {
      id,
      ctl: ctl.buffer as SharedArrayBuffer,
      sabPort: port2,
      fdmon: options.fdmon,
      pollParams,
      threadPool,
      // One clock state per process: the thread adopts it before its context.
      clock: processClockBlock(),
      // One BQL per process: the thread may take it (it does not hold it).
      bql: bqlMutex()?.handle ?? null,
      // The process's trace buffer: the thread records into it.
      trace: traceBlock(),
    };
    let worker: Worker;
    try {
      worker = new Worker(WORKER_URL, {
        name: `IO ${id}`,
        workerData: init,
        transferList: [port2],
      });
    } catch (e) {
      port1.close();
      port2.close();
      throw explainWorkerStartError(e, `IOThread '${id}'`, WORKER_URL);
    }
    const t = new IOThread(worker, id, ctl, { sabPort: port1, pollParams, threadPool, onError });
    const ready = Promise.withResolvers<void>();
    worker.on("message", (m: FromWorker) => t.#onMessage(m, ready));
    worker.on("error", (e: unknown) => {
      // An uncaught error inside the Worker (its own code catches the
      // loop's): the thread is gone.
      t.#die(
        new Error(`IOThread '${id}' died: ${e instanceof Error ? e.message : e}`, {
          cause: e,
        }),
      );
      ready.reject(t.#deathError);
    });
    worker.on("exit", () => {
      // Gone without saying "stopped" (process.exit() or close() in a request).
      t.#die(new Error(`IOThread '${id}' exited`));
      ready.reject(t.#deathError);
    });
    try {
      await ready.promise;
    } catch (e) {
      await worker.terminate();
      port1.close();
      t.#isStopped = true;
      throw e;
    }
    // From now on the thread does not keep the process alive (see above).
    worker.unref();
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
        this.#stoppedSeen = true;
        this.#stopped.resolve();
        break;
    }
  }

  #die(error: Error): void {
    if (this.#deathError !== null || this.#isStopped || this.#stoppedSeen) return;
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
   * import { assertEquals } from "@std/assert";
   * import { RemoteAioContext } from "@aioloop/aioloop";
   * import { IOThread } from "@aioloop/aioloop/iothread";
   * await using t = await IOThread.create();
   * new RemoteAioContext(t.handle).notify(); // a kick: the loop carries on
   * assertEquals(t.handle.requests instanceof SharedArrayBuffer, true);
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
   * import { assertEquals } from "@std/assert";
   * import { IOThread } from "@aioloop/aioloop/iothread";
   * await using t = await IOThread.create();
   * assertEquals(t.stopped, false);
   * ```
   */
  get stopped(): boolean {
    return this.#isStopped;
  }

  /**
   * The adaptive polling parameters of the thread's context (as given to
   * {@linkcode IOThread.create}, or the last
   * {@linkcode IOThread.prototype.setPollParams}).
   *
   * Counterpart: the `poll-max-ns`, `poll-grow`, `poll-shrink` properties.
   *
   * @example The default
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { IOThread } from "@aioloop/aioloop/iothread";
   * await using t = await IOThread.create();
   * assertEquals(t.pollParams.maxNs, 32768);
   * ```
   */
  get pollParams(): Required<PollParams> {
    return { ...this.#pollParams };
  }

  /**
   * Changes the adaptive polling parameters of the thread's context, inside
   * the thread; fields left out keep their values. Every handler's polling
   * time starts afresh. Resolves once the thread applied them.
   *
   * Counterpart: setting the `poll-max-ns`, `poll-grow` and `poll-shrink`
   * properties of a running iothread (`iothread_set_poll_param()`, which
   * calls `aio_context_set_poll_params()`).
   *
   * Thread: the thread that created the IOThread.
   *
   * @param params `maxNs` (0 disables), `grow` (0 = double), `shrink` (0 = reset).
   * @returns The parameters now in force.
   * @throws {TypeError} If `params` is not an object, or a value is not a number.
   * @throws {RangeError} If a value is not an integer in [0, 2^53).
   * @throws {Deno.errors.BadResource} If the thread is stopped.
   *
   * @example Polling off, then on again
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { IOThread } from "@aioloop/aioloop/iothread";
   * await using t = await IOThread.create();
   * await t.setPollParams({ maxNs: 0 });
   * assertEquals(t.pollParams.maxNs, 0);
   * const now = await t.setPollParams({ maxNs: 65536, grow: 4 });
   * assertEquals(now, { maxNs: 65536, grow: 4, shrink: 0 });
   * ```
   */
  async setPollParams(params: Partial<PollParams>): Promise<Required<PollParams>> {
    if (params === null || typeof params !== "object" || Array.isArray(params)) {
      throw new TypeError(
        `setPollParams: params must be an object such as { maxNs: 32768 }, got ${
          params === null ? "null" : Array.isArray(params) ? "an array" : typeof params
        }`,
      );
    }
    const pick = (name: "maxNs" | "grow" | "shrink", prop: string): number => {
      const v: unknown = params[name];
      if (v === undefined) return this.#pollParams[name];
      if (typeof v !== "number") {
        throw new TypeError(`setPollParams: params.${name} must be a number, got ${typeof v}`);
      }
      return checkParam(prop, v, 0);
    };
    const next = {
      maxNs: pick("maxNs", "poll-max-ns"),
      grow: pick("grow", "poll-grow"),
      shrink: pick("shrink", "poll-shrink"),
    };
    this.#check();
    const applied = await this.run<(p: Required<PollParams>) => Required<PollParams>>(
      POLL_PARAMS_URL,
      "applyPollParams",
      next,
    );
    this.#pollParams = applied;
    return { ...applied };
  }

  /**
   * The thread-pool limits the thread's context was given.
   *
   * Counterpart: the `thread-pool-min` / `thread-pool-max` properties.
   *
   * @example Defaults
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { IOThread } from "@aioloop/aioloop/iothread";
   * await using t = await IOThread.create();
   * assertEquals(t.threadPoolParams, { min: 0, max: 64 });
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
   * Thread: the thread that created the IOThread.
   *
   * @typeParam F The called export's type (`typeof fns.add`): it types the
   * argument and the result. See also {@linkcode IOThread.prototype.module}.
   * @param module Absolute URL of the module (`new URL("./fns.ts", import.meta.url)`).
   * @param exportName The exported function to call.
   * @param args Its argument (none if it takes none).
   * @returns What the function returned.
   * @throws {Deno.errors.BadResource} If the thread is stopped.
   * @throws {TypeError} If the module has no such exported function, or the
   * argument cannot be cloned; otherwise whatever the function threw.
   *
   * @example A missing export is a clear error
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { IOThread } from "@aioloop/aioloop/iothread";
   * await using t = await IOThread.create();
   * const mod = "data:text/javascript,export const x = 1;";
   * let message = "";
   * try {
   *   await t.run(mod, "missing");
   * } catch (e) {
   *   message = (e as Error).message;
   * }
   * assertEquals(message.endsWith("has no exported function 'missing'"), true);
   * ```
   */
  async run<F extends RequestFunction = (arg?: unknown) => unknown>(
    module: RequestModule,
    exportName: string,
    ...args: RequestArgs<F>
  ): Promise<RequestResult<F>> {
    const arg: unknown = args[0];
    const ch = this.#check();
    const reply = remoteCall(ch, module, exportName, arg, { sharedBufferPort: this.#sabPort });
    // If the thread dies, the race settles first and the call fails later
    // (its channel is closed): that failure must not go unhandled.
    reply.catch(() => {});
    return await Promise.race([reply, this.#died.promise]) as RequestResult<F>;
  }

  /**
   * Like {@linkcode IOThread.prototype.run}, but blocks the calling thread
   * until the result is back. This thread's event loop stands still
   * meanwhile, so the function must not wait for anything this thread would
   * have to do. A quick reply is caught by spinning on it for an adaptive
   * window before sleeping (see `remoteCallSync`): with the thread polling
   * its doorbell too, the round trip needs no syscall on either side.
   *
   * Counterpart: `ctx_run()` of tests/unit/test-aio-multithread.c.
   *
   * Thread: the thread that created the IOThread.
   *
   * @typeParam F The called export's type: it types the argument and the result.
   * @param module Absolute URL of the module.
   * @param exportName The exported function to call.
   * @param args Its argument (none if it takes none).
   * @returns What the function returned.
   * @throws {Deno.errors.BadResource} If the thread is stopped or is
   * destroyed meanwhile.
   *
   * @example Synchronous call
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { IOThread } from "@aioloop/aioloop/iothread";
   * await using t = await IOThread.create();
   * const mod = "data:text/javascript,export function inc(x) { return x + 1; }";
   * await t.run(mod, "inc", 0); // the first call imports the module
   * assertEquals(t.runSync(mod, "inc", 1), 2);
   * ```
   */
  runSync<F extends RequestFunction = (arg?: unknown) => unknown>(
    module: RequestModule,
    exportName: string,
    ...args: RequestArgs<F>
  ): RequestResult<F> {
    const ch = this.#check();
    return remoteCallSync(ch, module, exportName, args[0], {
      sharedBufferPort: this.#sabPort,
    }) as RequestResult<F>;
  }

  /**
   * A module of the thread's, typed by its exports: its `run` and `runSync`
   * take an export's name and check the argument and result types against
   * that export (`typeof import("./fns.ts")`). Nothing is loaded until the
   * first call.
   *
   * Counterpart: none (C calls the function directly).
   *
   * @typeParam M The module's type.
   * @param module Absolute URL of the module.
   * @returns The typed view.
   *
   * @example Typed calls
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { IOThread } from "@aioloop/aioloop/iothread";
   * await using t = await IOThread.create();
   * type Fns = { add(pair: [number, number]): number };
   * const fns = t.module<Fns>("data:text/javascript,export function add([a, b]) { return a + b; }");
   * const sum: number = await fns.run("add", [2, 3]);
   * assertEquals(sum, 5);
   * ```
   */
  module<M>(module: RequestModule): IOThreadModule<M> {
    return {
      module,
      run: <K extends RequestFunctionName<M>>(
        name: K,
        ...args: RequestArgs<RequestExport<M, K>>
      ): Promise<RequestResult<RequestExport<M, K>>> =>
        this.run<RequestExport<M, K>>(module, name, ...args),
      runSync: <K extends RequestFunctionName<M>>(
        name: K,
        ...args: RequestArgs<RequestExport<M, K>>
      ): RequestResult<RequestExport<M, K>> =>
        this.runSync<RequestExport<M, K>>(module, name, ...args),
    };
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
   * import { assertEquals } from "@std/assert";
   * import { IOThread } from "@aioloop/aioloop/iothread";
   * const t = await IOThread.create();
   * await Promise.all([t.stop(), t.stop()]);
   * assertEquals(t.stopped, true);
   * ```
   */
  stop(): Promise<void> {
    return this.#stopping ??= this.#stop();
  }

  async #stop(): Promise<void> {
    Atomics.store(this.#ctl, IOTHREAD_CTL.STOP, 1);
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
    // Its "stopped" message must keep this process alive until it comes.
    this.#worker.ref();
    try {
      await this.#stopped.promise;
    } finally {
      this.#worker.unref();
    }
    await this.#worker.terminate();
    this.#sabPort.close();
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
   * import { assertEquals } from "@std/assert";
   * import { IOThread } from "@aioloop/aioloop/iothread";
   * await using t = await IOThread.create();
   * assertEquals(t.threadId > 0, true);
   * ```
   */
  get threadId(): number {
    return Atomics.load(this.#ctl, IOTHREAD_CTL.TID);
  }

  /** Same as {@linkcode IOThread.prototype.stop}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

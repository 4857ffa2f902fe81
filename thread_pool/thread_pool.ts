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
 * Requests and results travel through shared memory. A worker that finishes
 * marks the request DONE and schedules the pool's completion bottom half
 * through the context's doorbell, so a context blocked in
 * `ctx.poll(true)` wakes up; completions never depend on the owner's
 * postMessage loop. Completion callbacks run only from that BH, in the
 * context's thread, newest-submitted finished request first, never from
 * the submit call.
 *
 * Workers are `node:worker_threads` Workers, made `unref()`: a pool never
 * keeps the process alive, so a script that falls off its end exits even
 * with idle (or busy) workers. They are created lazily from a BH of the
 * owning context, one at a time (each new worker, once up, lets the next be
 * created), up to `max` (64 by default); an idle worker above `min` leaves
 * after 10 s.
 *
 * Arguments and results: numbers, strings, booleans, null and undefined go
 * inline; anything else is node:v8 structured-clone bytes. Typed-array views
 * over SharedArrayBuffers share their memory with the worker (each buffer is
 * posted to a worker once, then referred to by id); a bare SharedArrayBuffer
 * is accepted as the whole argument or result, and must be wrapped in a view
 * when nested.
 *
 * Limits:
 * - Creating a Worker blocks the creating thread for tens of milliseconds in
 *   Deno (the constructor boots the worker's runtime), so the first jobs of
 *   a cold pool wait for that, and the spawn BH stalls the context's poll
 *   meanwhile.
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
 * import { AioContext } from "@aioloop/aioloop";
 * import { getThreadPool } from "@aioloop/aioloop/thread-pool";
 *
 * const jobs = "data:text/javascript,export function add([a, b]) { return a + b; }";
 * using ctx = AioContext.create();
 * let sum = 0;
 * getThreadPool(ctx).submitAio({ module: jobs, name: "add" }, [2, 3], (ret) => sum = ret as number);
 * while (sum === 0) ctx.poll(true);
 * console.log(sum); // 5
 * ```
 *
 * @module
 */
import { MessageChannel, type MessagePort, Worker as NodeWorker } from "node:worker_threads";
import type { AioContext } from "../aio/async.ts";
import type { QEMUBH } from "../aio/bh.ts";
import { aioWaitWhile } from "../aio/aio_wait.ts";
import { aioCoWake } from "../aio/co_schedule.ts";
import { Coroutine, type CoroutineFn, coroutineYield, inCoroutine } from "../aio/coroutine.ts";
import { getCurrentAioContext } from "../aio/current.ts";
import { internals } from "../aio/_internal.ts";
import { errnoValue, SysError } from "../sys/errno.ts";
import { decodeThrown, decodeValue, encodeValue, SabInbox, SabOutbox } from "./_codec.ts";
import {
  C_CUR,
  C_DONE,
  C_FREED,
  C_IDLE,
  C_MAX,
  C_MIN,
  C_NEW,
  C_PENDING,
  C_Q_HEAD,
  C_QUEUED,
  C_REAP,
  C_REQ_COND,
  C_STOP_COND,
  condSignal,
  DONE,
  enqueue,
  lock,
  MAX_THREADS_DEFAULT,
  newControlBlock,
  newHeapBuffer,
  pushDone,
  QUEUED,
  R_ARG_F64_BYTE,
  R_ARG_LEN,
  R_ARG_PTR,
  R_ARG_TAG,
  R_DNEXT,
  R_RES_F64_BYTE,
  R_RES_LEN,
  R_RES_PTR,
  R_RES_TAG,
  R_STATE,
  R_WORK,
  R_WORKER,
  RECORD_BYTES,
  SharedHeap,
  storeWorkName,
  TAG_CANCELED,
  TAG_DIED,
  TAG_NUMBER,
  TAG_SPAWN_FAILED,
  TAG_THREW,
  tagHasBytes,
  unlinkQueued,
  unlock,
  W_ACTIVE,
  W_DEAD,
  W_EXITED,
  W_RUNNING,
  W_STARTING,
  W_STATE,
  WORKER_SLOT_BYTES,
  type WorkerInit,
} from "./_shared.ts";
import { registerPoolControl } from "./_internal.ts";

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
 * import type { ThreadPoolWork } from "@aioloop/aioloop/thread-pool";
 * const work: ThreadPoolWork = { module: new URL("./jobs.ts", import.meta.url), name: "checksum" };
 * console.log(work.name); // "checksum"
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
 * import type { ThreadPoolCompletionFunc } from "@aioloop/aioloop/thread-pool";
 * const cb: ThreadPoolCompletionFunc<number> = (ret, error) => {
 *   if (error) console.log("failed", ret, error.message);
 *   else console.log("result", ret);
 * };
 * cb(7, undefined); // result 7
 * ```
 */
export type ThreadPoolCompletionFunc<R = unknown> = (ret: R | number, error: Error | undefined) => void;

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
 * import type { ThreadPoolRequestState } from "@aioloop/aioloop/thread-pool";
 * const s: ThreadPoolRequestState = "queued";
 * console.log(s === "queued"); // true
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
 * import { AioContext } from "@aioloop/aioloop";
 * import { getThreadPool } from "@aioloop/aioloop/thread-pool";
 * using ctx = AioContext.create();
 * console.log(getThreadPool(ctx).stats().maxThreads); // 64
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

const POOL_SLOT = Symbol("thread_pool");
const PARAMS_SLOT = Symbol("thread_pool_params");
const WORKER_URL = new URL("./_worker.ts", import.meta.url);
const ECANCELED = errnoValue("ECANCELED");
const EIO = errnoValue("EIO");
const INT32_MAX = 0x7fffffff;
/** How long free() waits for workers to stop before giving up. */
const FREE_TIMEOUT_MS = 10_000;

interface ReqState {
  readonly core: PoolCore;
  readonly rec: number;
  readonly seq: number;
  readonly name: string;
  readonly cb: ThreadPoolCompletionFunc<any> | null;
  /** The result was read from shared memory (the record is gone). */
  finished: boolean;
  /** The completion ran (or the pool dropped the request). */
  completed: boolean;
  ret: unknown;
  error: Error | undefined;
  /** SharedArrayBuffers the argument refers to, alive until the worker took them. */
  keep: SharedArrayBuffer[] | null;
}

interface WorkerEntry {
  readonly slot: number;
  readonly port: MessagePort;
  readonly inbox: SabInbox;
  worker: NodeWorker | null;
  /** Removed from the pool; its slot may be reused. */
  dropped: boolean;
  /** An uncaught error it reported, if any. */
  error: unknown;
}

function checkParams(min: number, max: number): void {
  if (
    !Number.isInteger(min) || !Number.isInteger(max) || min < 0 || max <= 0 || min > max ||
    max > INT32_MAX
  ) {
    throw new RangeError(`Bad thread pool min/max values: min ${min}, max ${max}`);
  }
}

function workKey(work: ThreadPoolWork): { key: string; name: string } {
  if (work === null || typeof work !== "object") {
    throw new TypeError("Thread pool work must be an object { module, name }");
  }
  const { module, name } = work;
  if (typeof name !== "string" || name.length === 0 || name.includes("\n")) {
    throw new TypeError("Thread pool work name must be a non-empty string");
  }
  let url: string;
  if (module instanceof URL) url = module.href;
  else if (typeof module === "string" && URL.canParse(module)) url = new URL(module).href;
  else {
    throw new TypeError(
      `Thread pool work module must be an absolute URL (new URL("./jobs.ts", import.meta.url)), got ${
        String(module)
      }`,
    );
  }
  if (url.includes("\n")) throw new TypeError("Thread pool work module URL must not contain a newline");
  return { key: `${url}\n${name}`, name };
}

function errnoOf(error: Error): number {
  const n = (error as Error & { errno?: unknown }).errno;
  return typeof n === "number" && Number.isInteger(n) && n > 0 ? n : EIO;
}

const noInbox = {
  get(id: number): never {
    throw new Error(`SharedArrayBuffer #${id} came from a worker that is gone`);
  },
} as unknown as SabInbox;

// Max-heap on seq: the newest-submitted finished request comes out first.
function heapPush(h: ReqState[], st: ReqState): void {
  let i = h.push(st) - 1;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (h[p].seq >= st.seq) break;
    h[i] = h[p];
    i = p;
  }
  h[i] = st;
}

function heapPop(h: ReqState[]): ReqState | undefined {
  const top = h[0];
  const last = h.pop();
  if (h.length === 0 || last === undefined) return top;
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= h.length) break;
    const c = l + 1 < h.length && h[l + 1].seq > h[l].seq ? l + 1 : l;
    if (h[c].seq <= last.seq) break;
    h[i] = h[c];
    i = c;
  }
  h[i] = last;
  return top;
}

/** The pool's machinery (the public classes wrap it). */
class PoolCore {
  readonly ctx: AioContext;
  readonly ctl: Int32Array;
  readonly heap: SharedHeap;
  readonly completionBh: QEMUBH;
  readonly newThreadBh: QEMUBH;
  readonly workers: Map<number, WorkerEntry> = new Map();
  /** Submitted and not yet read back, by record offset (pool->head). */
  readonly outstanding: Map<number, ReqState> = new Map();
  /** Read back, completion not run yet (max-heap on seq). */
  readonly done: ReqState[] = [];
  readonly works: Map<string, number> = new Map();
  readonly outbox: SabOutbox;
  seq = 0;
  freed = false;
  reapSeen = 0;
  spawnError: unknown = undefined;

  constructor(ctx: AioContext, min: number, max: number) {
    this.ctx = ctx;
    this.ctl = newControlBlock(min, max);
    this.heap = new SharedHeap(this.ctl, newHeapBuffer());
    this.outbox = new SabOutbox((m) => {
      for (const e of this.workers.values()) e.port.postMessage(m);
    });
    this.completionBh = ctx.bhNew(() => this.completionBhFn(), {
      name: "thread_pool_completion_bh",
      shared: true,
    });
    try {
      this.newThreadBh = ctx.bhNew(() => this.spawnThreadBhFn(), {
        name: "thread_pool_new_thread_bh",
        shared: true,
      });
    } catch (e) {
      this.completionBh.delete();
      throw e;
    }
  }

  checkAlive(): void {
    if (this.freed) throw new Deno.errors.BadResource("Thread pool was freed");
  }

  // --- submission ---------------------------------------------------------

  submit(work: ThreadPoolWork, arg: unknown, cb: ThreadPoolCompletionFunc<any> | null | undefined): ReqState {
    this.checkAlive();
    const { key, name } = workKey(work);
    if (cb !== undefined && cb !== null && typeof cb !== "function") {
      throw new TypeError("Thread pool completion callback must be a function");
    }
    const enc = encodeValue(arg, this.outbox, "Thread pool argument");
    this.maybeReap();
    const ctl = this.ctl, heap = this.heap, i32 = heap.i32;
    let rec = 0, argp = 0, signal = false;
    lock(ctl);
    try {
      let w = this.works.get(key);
      if (w === undefined) {
        w = storeWorkName(heap, key);
        this.works.set(key, w);
      }
      rec = heap.alloc(RECORD_BYTES);
      if (enc.bytes !== null) argp = heap.store(enc.bytes);
      const r = rec >> 2;
      i32[r + R_STATE] = QUEUED;
      i32[r + R_WORK] = w;
      i32[r + R_ARG_TAG] = enc.tag;
      i32[r + R_ARG_PTR] = argp;
      i32[r + R_ARG_LEN] = enc.bytes === null ? 0 : enc.bytes.length;
      i32[r + R_RES_TAG] = 0;
      i32[r + R_RES_PTR] = 0;
      i32[r + R_RES_LEN] = 0;
      i32[r + R_WORKER] = 0;
      if (enc.tag === TAG_NUMBER) heap.f64[(rec + R_ARG_F64_BYTE) >> 3] = enc.num;
      if (ctl[C_IDLE] === 0 && ctl[C_CUR] < ctl[C_MAX]) this.spawnThread();
      enqueue(heap, rec);
      if (ctl[C_IDLE] > 0) {
        Atomics.add(ctl, C_REQ_COND, 1);
        signal = true;
      }
    } catch (e) {
      if (argp !== 0) heap.free(argp);
      if (rec !== 0) heap.free(rec);
      throw e;
    } finally {
      unlock(ctl);
    }
    if (signal) Atomics.notify(ctl, C_REQ_COND, 1);
    const st: ReqState = {
      core: this,
      rec,
      seq: ++this.seq,
      name,
      cb: cb ?? null,
      finished: false,
      completed: false,
      ret: undefined,
      error: undefined,
      keep: enc.sabs,
    };
    this.outstanding.set(rec, st);
    return st;
  }

  // --- spawning -----------------------------------------------------------

  /** spawn_thread: caller holds the lock. */
  spawnThread(): void {
    const ctl = this.ctl;
    ctl[C_CUR]++;
    ctl[C_NEW]++;
    // Workers are created from the context's thread; if one is being
    // created, it lets the next be created once it is up.
    if (ctl[C_PENDING] === 0) this.newThreadBh.schedule();
  }

  /** spawn_thread_bh_fn / do_spawn_thread: create one worker of the backlog. */
  spawnThreadBhFn(): void {
    if (this.freed) return;
    const ctl = this.ctl, heap = this.heap;
    let slot = 0;
    lock(ctl);
    try {
      if (ctl[C_NEW] === 0) return;
      slot = heap.alloc(WORKER_SLOT_BYTES);
      heap.i32[(slot >> 2) + W_STATE] = W_STARTING;
      heap.i32[(slot >> 2) + W_ACTIVE] = 0;
      ctl[C_NEW]--;
      ctl[C_PENDING]++;
    } finally {
      unlock(ctl);
    }
    try {
      this.createWorker(slot);
    } catch (e) {
      this.spawnFailed(slot, e);
      throw e;
    }
  }

  createWorker(slot: number): void {
    const { port1, port2 } = new MessageChannel();
    const entry: WorkerEntry = {
      slot,
      port: port1,
      inbox: new SabInbox(port1),
      worker: null,
      dropped: false,
      error: undefined,
    };
    const init: WorkerInit = {
      ctl: this.ctl.buffer as SharedArrayBuffer,
      heap: this.heap.buffer,
      slot,
      completionBh: this.completionBh.remote(),
      newThreadBh: this.newThreadBh.remote(),
      port: port2,
      sabs: this.outbox.snapshot(),
    };
    try {
      const w = new NodeWorker(WORKER_URL, { workerData: init, transferList: [port2] });
      // A pool never keeps the process alive (see the module docs).
      w.unref();
      w.on("error", (e: unknown) => {
        entry.error = e;
      });
      w.on("exit", () => this.onWorkerExit(entry));
      entry.worker = w;
    } catch (e) {
      port1.close();
      port2.close();
      throw e;
    }
    this.workers.set(slot, entry);
  }

  /** No worker could be created: undo, and fail queued work if none is left. */
  spawnFailed(slot: number, e: unknown): void {
    const ctl = this.ctl, heap = this.heap, i32 = heap.i32;
    lock(ctl);
    try {
      heap.free(slot);
      ctl[C_PENDING]--;
      ctl[C_CUR]--;
      // The backlog would fail the same way.
      ctl[C_CUR] -= ctl[C_NEW];
      ctl[C_NEW] = 0;
      if (ctl[C_CUR] === 0) {
        this.spawnError = e;
        while (ctl[C_Q_HEAD] !== 0) {
          const rec = ctl[C_Q_HEAD];
          unlinkQueued(heap, rec);
          i32[(rec >> 2) + R_RES_TAG] = TAG_SPAWN_FAILED;
          Atomics.store(i32, (rec >> 2) + R_STATE, DONE);
          pushDone(heap, rec);
        }
      }
    } finally {
      unlock(ctl);
    }
    this.completionBh.schedule();
  }

  /** The Worker's "exit" event (runs when the owner's event loop does). */
  onWorkerExit(entry: WorkerEntry): void {
    if (this.freed || entry.dropped) return;
    const ctl = this.ctl, heap = this.heap, i32 = heap.i32, s = entry.slot >> 2;
    let chain = false;
    lock(ctl);
    try {
      const state = i32[s + W_STATE];
      if (state === W_STARTING || state === W_RUNNING) {
        // It died without its exit hook: do what the hook would have done.
        if (state === W_STARTING) {
          ctl[C_PENDING]--;
          chain = ctl[C_NEW] > 0 && ctl[C_PENDING] === 0;
        }
        i32[s + W_STATE] = W_DEAD;
        const rec = i32[s + W_ACTIVE];
        if (rec !== 0) {
          i32[(rec >> 2) + R_RES_TAG] = TAG_DIED;
          i32[(rec >> 2) + R_WORKER] = entry.slot;
          i32[s + W_ACTIVE] = 0;
          Atomics.store(i32, (rec >> 2) + R_STATE, DONE);
          pushDone(heap, rec);
        }
        ctl[C_CUR]--;
        ctl[C_REAP]++;
        condSignal(ctl, C_STOP_COND, Infinity);
        condSignal(ctl, C_REQ_COND, 1);
      }
    } finally {
      unlock(ctl);
    }
    if (chain) this.newThreadBh.schedule();
    this.completionBh.schedule();
  }

  maybeReap(): void {
    if (Atomics.load(this.ctl, C_REAP) !== this.reapSeen) this.reap();
  }

  /** Drops workers that left, and replaces dead ones if work waits. */
  reap(): void {
    const ctl = this.ctl, i32 = this.heap.i32;
    this.reapSeen = Atomics.load(ctl, C_REAP);
    // Results may name a leaving worker's port: read them first.
    this.drainDone();
    let died = false;
    for (const e of [...this.workers.values()]) {
      const state = i32[(e.slot >> 2) + W_STATE];
      if (state === W_EXITED || state === W_DEAD) {
        if (state === W_DEAD) died = true;
        this.dropWorker(e);
      }
    }
    if (died) {
      lock(ctl);
      try {
        if (ctl[C_Q_HEAD] !== 0 && ctl[C_IDLE] === 0 && ctl[C_CUR] < ctl[C_MAX]) this.spawnThread();
        for (let i = ctl[C_CUR]; i < ctl[C_MIN]; i++) this.spawnThread();
      } finally {
        unlock(ctl);
      }
    }
  }

  dropWorker(e: WorkerEntry): void {
    e.dropped = true;
    this.workers.delete(e.slot);
    try {
      // A worker that left its loop has an empty event loop: this ends it.
      Promise.resolve(e.worker?.terminate()).catch(() => {});
    } catch {
      // Already gone.
    }
    e.port.close();
    lock(this.ctl);
    try {
      this.heap.free(e.slot);
    } finally {
      unlock(this.ctl);
    }
  }

  // --- completion ---------------------------------------------------------

  /** Reads every record published DONE since the last call. */
  drainDone(): void {
    const ctl = this.ctl;
    let rec = Atomics.exchange(ctl, C_DONE, 0);
    if (rec === 0) return;
    const heap = this.heap, i32 = heap.i32;
    const blocks: number[] = [];
    while (rec !== 0) {
      const r = rec >> 2;
      const next = Atomics.load(i32, r + R_DNEXT);
      const st = this.outstanding.get(rec);
      if (st !== undefined) {
        this.outstanding.delete(rec);
        this.readResult(st, rec);
        heapPush(this.done, st);
      }
      blocks.push(rec);
      if (tagHasBytes(i32[r + R_ARG_TAG])) blocks.push(i32[r + R_ARG_PTR]);
      if (tagHasBytes(i32[r + R_RES_TAG])) blocks.push(i32[r + R_RES_PTR]);
      rec = next;
    }
    lock(ctl);
    try {
      for (const p of blocks) heap.free(p);
    } finally {
      unlock(ctl);
    }
  }

  readResult(st: ReqState, rec: number): void {
    const heap = this.heap, i32 = heap.i32, r = rec >> 2;
    const tag = i32[r + R_RES_TAG];
    st.finished = true;
    st.keep = null;
    const entry = this.workers.get(i32[r + R_WORKER]);
    const inbox = entry?.inbox ?? noInbox;
    try {
      switch (tag) {
        case TAG_CANCELED:
          st.error = new SysError(ECANCELED, "thread_pool_cancel", `'${st.name}' was cancelled before it started`);
          break;
        case TAG_DIED:
          st.error = new Error(`Thread pool worker exited while running '${st.name}'`, {
            cause: entry?.error,
          });
          break;
        case TAG_SPAWN_FAILED:
          st.error = new Error(`Cannot start a thread pool worker for '${st.name}'`, { cause: this.spawnError });
          break;
        case TAG_THREW:
          st.error = decodeThrown(heap.copyOut(i32[r + R_RES_PTR], i32[r + R_RES_LEN]), inbox);
          break;
        default: {
          const bytes = tagHasBytes(tag) ? heap.copyOut(i32[r + R_RES_PTR], i32[r + R_RES_LEN]) : null;
          const num = tag === TAG_NUMBER ? heap.f64[(rec + R_RES_F64_BYTE) >> 3] : 0;
          st.ret = decodeValue(tag, num, bytes, inbox);
        }
      }
    } catch (e) {
      st.error = e instanceof Error ? e : new Error(String(e));
    }
    if (st.error !== undefined) st.ret = -errnoOf(st.error);
  }

  /** thread_pool_completion_bh: newest-submitted finished request first. */
  completionBhFn(): void {
    this.maybeReap();
    this.drainDone();
    for (;;) {
      const st = heapPop(this.done);
      if (st === undefined) return;
      st.completed = true;
      const cb = st.cb;
      if (cb === null) continue;
      // Rescheduled first, so a callback that polls still sees the other
      // completions; cancelled once it returned. If it throws, the BH stays
      // scheduled and the next poll carries on.
      this.completionBh.schedule();
      cb(st.ret, st.error);
      if (this.freed) return;
      this.completionBh.cancel();
      // New completions may have arrived meanwhile (QEMU restarts its scan).
      this.drainDone();
    }
  }

  // --- cancellation -------------------------------------------------------

  /** thread_pool_cancel: drop a queued request; it completes with -ECANCELED. */
  cancelAsync(st: ReqState): void {
    if (st.finished || this.freed) return;
    const ctl = this.ctl, heap = this.heap, i32 = heap.i32, r = st.rec >> 2;
    lock(ctl);
    try {
      if (Atomics.load(i32, r + R_STATE) === QUEUED) {
        unlinkQueued(heap, st.rec);
        i32[r + R_RES_TAG] = TAG_CANCELED;
        Atomics.store(i32, r + R_STATE, DONE);
        pushDone(heap, st.rec);
        this.completionBh.schedule();
      }
    } finally {
      unlock(ctl);
    }
  }

  cancel(st: ReqState): void {
    this.cancelAsync(st);
    if (st.completed) return;
    if (this.ctx !== getCurrentAioContext()) {
      throw new Error("ThreadPoolRequest.cancel() must run where the pool's AioContext is current");
    }
    aioWaitWhile(this.ctx, () => !st.completed);
  }

  stateOf(st: ReqState): ThreadPoolRequestState {
    if (st.completed) return "completed";
    if (st.finished) return "done";
    const s = Atomics.load(this.heap.i32, (st.rec >> 2) + R_STATE);
    return s === QUEUED ? "queued" : s === DONE ? "done" : "active";
  }

  // --- parameters, stats, free ----------------------------------------------

  /** thread_pool_update_params. */
  setParams(min: number, max: number): void {
    checkParams(min, max);
    this.checkAlive();
    const ctl = this.ctl;
    lock(ctl);
    try {
      ctl[C_MIN] = min;
      ctl[C_MAX] = max;
      for (let i = ctl[C_CUR]; i < min; i++) this.spawnThread();
      // Each signalled worker above max leaves its loop.
      for (let i = ctl[C_CUR]; i > max; i--) condSignal(ctl, C_REQ_COND, 1);
    } finally {
      unlock(ctl);
    }
  }

  stats(): ThreadPoolStats {
    if (!this.freed) this.maybeReap();
    const ctl = this.ctl;
    lock(ctl);
    try {
      return {
        minThreads: ctl[C_MIN],
        maxThreads: ctl[C_MAX],
        curThreads: ctl[C_CUR],
        idleThreads: ctl[C_IDLE],
        newThreads: ctl[C_NEW],
        pendingThreads: ctl[C_PENDING],
        workers: this.workers.size,
        requests: this.outstanding.size + this.done.length,
        queued: ctl[C_QUEUED],
      };
    } finally {
      unlock(ctl);
    }
  }

  /** thread_pool_free_aio; `force` (context destroy) frees even with requests left. */
  free(force: boolean): void {
    if (this.freed) return;
    const left = this.outstanding.size + this.done.length;
    if (left > 0 && !force) {
      throw new Error(`Thread pool has ${left} request(s) outstanding`);
    }
    const ctl = this.ctl;
    lock(ctl);
    try {
      this.newThreadBh.delete();
      ctl[C_CUR] -= ctl[C_NEW];
      ctl[C_NEW] = 0;
      ctl[C_MAX] = 0;
      condSignal(ctl, C_REQ_COND, Infinity);
    } finally {
      unlock(ctl);
    }
    // Wait for every worker to leave its loop (starting ones come up first).
    const deadline = performance.now() + FREE_TIMEOUT_MS;
    let stuck = 0;
    for (;;) {
      lock(ctl);
      const cur = ctl[C_CUR];
      const seq = Atomics.load(ctl, C_STOP_COND);
      unlock(ctl);
      if (cur <= 0) break;
      if (performance.now() > deadline) {
        stuck = cur;
        break;
      }
      Atomics.wait(ctl, C_STOP_COND, seq, 50);
    }
    lock(ctl);
    ctl[C_FREED] = 1;
    unlock(ctl);
    this.freed = true;
    for (const e of [...this.workers.values()]) {
      e.dropped = true;
      try {
        Promise.resolve(e.worker?.terminate()).catch(() => {});
      } catch {
        // Already gone.
      }
      e.port.close();
    }
    this.workers.clear();
    this.completionBh.delete();
    for (const st of this.outstanding.values()) st.completed = true;
    for (const st of this.done) st.completed = true;
    this.outstanding.clear();
    this.done.length = 0;
    const ints = internals(this.ctx);
    if (ints.slots.get(POOL_SLOT) !== undefined && poolCore(ints.slots.get(POOL_SLOT)) === this) {
      ints.slots.delete(POOL_SLOT);
    }
    if (left > 0) throw new Error(`Thread pool freed with ${left} request(s) outstanding`);
    if (stuck > 0) {
      throw new Error(`Thread pool freed while ${stuck} worker(s) did not stop within ${FREE_TIMEOUT_MS} ms`);
    }
  }
}

// Friend access between the public classes and the core.
let makeRequest: (st: ReqState) => ThreadPoolRequest<any>;
let makePool: (core: PoolCore) => ThreadPoolAio;
let poolCore: (pool: unknown) => PoolCore | undefined;

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
 * import { AioContext } from "@aioloop/aioloop";
 * import { getThreadPool } from "@aioloop/aioloop/thread-pool";
 * const jobs = "data:text/javascript,export function id(x) { return x; }";
 * using ctx = AioContext.create();
 * let ret = 0;
 * const req = getThreadPool(ctx).submitAio({ module: jobs, name: "id" }, 1, (r) => ret = r as number);
 * req.cancelAsync(); // no worker exists yet: the request is still queued
 * while (req.state !== "completed") ctx.poll(true);
 * console.log(ret); // -125
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
   * import { AioContext } from "@aioloop/aioloop";
   * import { getThreadPool } from "@aioloop/aioloop/thread-pool";
   * const jobs = "data:text/javascript,export function id(x) { return x; }";
   * using ctx = AioContext.create();
   * let error: Error | undefined;
   * const req = getThreadPool(ctx).submitAio({ module: jobs, name: "id" }, 1, (_r, e) => error = e);
   * req.cancelAsync();
   * while (req.state !== "completed") ctx.poll(true);
   * console.log(error?.name); // "SysError"
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
   * import { AioContext, withCurrentAioContext } from "@aioloop/aioloop";
   * import { getThreadPool } from "@aioloop/aioloop/thread-pool";
   * const jobs = "data:text/javascript,export function id(x) { return x; }";
   * using ctx = AioContext.create();
   * let ret = 0;
   * const req = getThreadPool(ctx).submitAio({ module: jobs, name: "id" }, 1, (r) => ret = r as number);
   * withCurrentAioContext(ctx, () => req.cancel());
   * console.log(req.state, ret); // completed -125
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
 * import { AioContext } from "@aioloop/aioloop";
 * import { getThreadPool } from "@aioloop/aioloop/thread-pool";
 * const jobs = "data:text/javascript,export function sq(x) { return x * x; }";
 * using ctx = AioContext.create();
 * const pool = getThreadPool(ctx);
 * const out: number[] = [];
 * for (const x of [1, 2, 3]) pool.submitAio({ module: jobs, name: "sq" }, x, (r) => out.push(r as number));
 * while (out.length < 3) ctx.poll(true);
 * console.log(out.sort()); // [ 1, 4, 9 ]
 * ```
 */
export class ThreadPoolAio {
  #core: PoolCore;

  private constructor(core: PoolCore) {
    this.#core = core;
  }

  static {
    makePool = (core) => new ThreadPoolAio(core);
    poolCore = (pool) => pool instanceof ThreadPoolAio ? pool.#core : undefined;
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
   * import { AioContext } from "@aioloop/aioloop";
   * import { getThreadPool } from "@aioloop/aioloop/thread-pool";
   * const jobs = "data:text/javascript,export function upper(s) { return s.toUpperCase(); }";
   * using ctx = AioContext.create();
   * let got = "";
   * getThreadPool(ctx).submitAio({ module: jobs, name: "upper" }, "abc", (r) => got = r as string);
   * console.log(got); // "": never completed synchronously
   * while (got === "") ctx.poll(true);
   * console.log(got); // "ABC"
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
   * console.log(out); // 42
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
   * console.log(await p); // 2
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
   * import { AioContext } from "@aioloop/aioloop";
   * import { getThreadPool } from "@aioloop/aioloop/thread-pool";
   * using ctx = AioContext.create();
   * const pool = getThreadPool(ctx);
   * pool.setParams(0, 2);
   * console.log(pool.stats().maxThreads); // 2
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
   * import { AioContext } from "@aioloop/aioloop";
   * import { getThreadPool } from "@aioloop/aioloop/thread-pool";
   * using ctx = AioContext.create();
   * console.log(getThreadPool(ctx).stats().curThreads); // 0
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
   * import { AioContext } from "@aioloop/aioloop";
   * import { getThreadPool } from "@aioloop/aioloop/thread-pool";
   * using ctx = AioContext.create();
   * const pool = getThreadPool(ctx);
   * pool.free();
   * console.log(pool.freed, getThreadPool(ctx) !== pool); // true true
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
 * import { AioContext } from "@aioloop/aioloop";
 * import { getThreadPool } from "@aioloop/aioloop/thread-pool";
 * using ctx = AioContext.create();
 * console.log(getThreadPool(ctx) === getThreadPool(ctx)); // true
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
  // thread_pool_free_aio at aio_ctx_finalize.
  ints.destroyHooks.push(() => core.free(true));
  return pool;
}

/**
 * Sets the worker limits of `ctx`'s thread pool: stored on the context (for
 * a pool made later) and applied to its pool if it exists.
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
 * import { AioContext } from "@aioloop/aioloop";
 * import { getThreadPool, setThreadPoolParams } from "@aioloop/aioloop/thread-pool";
 * using ctx = AioContext.create();
 * setThreadPoolParams(ctx, 0, 4);
 * console.log(getThreadPool(ctx).stats().maxThreads); // 4
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
 * import { AioContext, withCurrentAioContext } from "@aioloop/aioloop";
 * import { threadPoolSubmitAio } from "@aioloop/aioloop/thread-pool";
 * const jobs = "data:text/javascript,export function neg(x) { return -x; }";
 * using ctx = AioContext.create();
 * let r = 0;
 * withCurrentAioContext(ctx, () => {
 *   threadPoolSubmitAio({ module: jobs, name: "neg" }, 3, (ret) => r = ret as number);
 *   while (r === 0) ctx.poll(true);
 * });
 * console.log(r); // -3
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
 * console.log(v); // 2
 * ```
 */
export function* threadPoolSubmitCo<R = unknown>(work: ThreadPoolWork, arg: unknown): CoroutineFn<R> {
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
 * console.log(n); // 4
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

// The thread pool's machinery on the owner's side: util/thread-pool.c's
// ThreadPoolAio (submission, spawning, completion, cancellation, params,
// free). The public classes of thread_pool.ts wrap it; the workers run
// _worker.ts; both sides meet in the shared memory of _shared.ts.
import { MessageChannel, type MessagePort, Worker as NodeWorker } from "node:worker_threads";
import type { AioContext } from "../aio/aio_context.ts";
import type { QEMUBH } from "../aio/bh.ts";
import { aioWaitWhile } from "../aio/aio_wait.ts";
import { getCurrentAioContext } from "../aio/current.ts";
import { errnoValue, SysError } from "../sys/errno.ts";
import type {
  ThreadPoolCompletionFunc,
  ThreadPoolRequestState,
  ThreadPoolStats,
  ThreadPoolWork,
} from "./types.ts";
import { WireReader, WireWriter } from "../_wire/codec.ts";
import { SabInbox, SabLink, SabOutbox } from "../_wire/sab_handoff.ts";
import { moduleUrl } from "../_wire/module_cache.ts";
import { explainWorkerStartError } from "../_wire/worker_start.ts";
import {
  K_POOL,
  traceBlock,
  traceCallFlow,
  traceName,
  traceSend,
  tracing,
} from "../trace/_state.ts";
import {
  C_CUR,
  C_DONE,
  C_FREED,
  C_IDLE,
  C_MAX,
  C_MIN,
  C_NEW,
  C_PENDING,
  C_REAP,
  C_REQ_COND,
  C_RUNG,
  C_STOP_COND,
  CLAIM_CANCELED,
  CLAIM_PENDING,
  CLAIM_TAKEN,
  condSignal,
  decodeValue,
  DONE,
  encodeValue,
  lock,
  newControlBlock,
  newHeapBuffer,
  newSubmitRing,
  pushDone,
  QUEUED,
  R_ARG_F64_BYTE,
  R_ARG_LEN,
  R_ARG_PTR,
  R_ARG_TAG,
  R_CLAIM,
  R_DNEXT,
  R_RES_F64_BYTE,
  R_RES_LEN,
  R_RES_PTR,
  R_RES_TAG,
  R_STATE,
  R_WORK,
  R_WORKER,
  RECORD_BYTES,
  ringEmpty,
  ringPush,
  ringQueued,
  SharedHeap,
  storeWorkName,
  TAG_CANCELED,
  TAG_DIED,
  TAG_DIED_THREW,
  TAG_NO_ROOM,
  TAG_NUMBER,
  TAG_SPAWN_FAILED,
  TAG_THREW,
  tagHasBytes,
  takeQueued,
  unlock,
  W_ACTIVE,
  W_DEAD,
  W_EXITED,
  W_RUNNING,
  W_STARTING,
  W_STATE,
  wakeOne,
  WORKER_SLOT_BYTES,
  type WorkerInit,
} from "./_shared.ts";

const WORKER_URL = new URL("./_worker.ts", import.meta.url);
const ECANCELED = errnoValue("ECANCELED");
const EIO = errnoValue("EIO");
const INT32_MAX = 0x7fffffff;
/** How long free() waits for workers to stop before giving up. */
const FREE_TIMEOUT_MS = 10_000;

export interface ReqState {
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
  /** Buffers from this worker, and ours going back (results). */
  readonly link: SabLink;
  worker: NodeWorker | null;
  /** Removed from the pool; its slot may be reused. */
  dropped: boolean;
  /** An uncaught error it reported, if any. */
  error: unknown;
}

export function checkParams(min: number, max: number): void {
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
  const url = moduleUrl(module, "Thread pool work module");
  if (url.includes("\n")) {
    throw new TypeError("Thread pool work module URL must not contain a newline");
  }
  return { key: `${url}\n${name}`, name };
}

function errnoOf(error: Error): number {
  const n = (error as Error & { errno?: unknown }).errno;
  return typeof n === "number" && Number.isInteger(n) && n > 0 ? n : EIO;
}

/** Rebuilds a thrown value as an Error. */
function thrownError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  return new Error(`Thread pool job threw a non-Error value: ${String(thrown)}`, {
    cause: thrown,
  });
}

// The finished requests, sorted by seq ascending: the newest-submitted
// comes off the end. Requests finish roughly in submission order, so an
// insert is almost always an append (a binary search otherwise).
function doneInsert(done: ReqState[], st: ReqState): void {
  const n = done.length;
  if (n === 0 || done[n - 1].seq < st.seq) {
    done.push(st);
    return;
  }
  let lo = 0, hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (done[mid].seq < st.seq) lo = mid + 1;
    else hi = mid;
  }
  done.splice(lo, 0, st);
}

/** The pool's machinery (the public classes wrap it). */
export class PoolCore {
  readonly ctx: AioContext;
  readonly ctl: Int32Array;
  readonly heap: SharedHeap;
  readonly completionBh: QEMUBH;
  readonly newThreadBh: QEMUBH;
  readonly workers: Map<number, WorkerEntry> = new Map();
  /** Submitted and not yet read back, by record offset (pool->head). */
  readonly outstanding: Map<number, ReqState> = new Map();
  /** Read back, completion not run yet (sorted by seq, ascending). */
  readonly done: ReqState[] = [];
  readonly works: Map<string, number> = new Map();
  /** Work objects seen before, with what their fields were then. */
  readonly workCache: WeakMap<
    object,
    { module: unknown; name: unknown; key: string; label: string; w: number }
  > = new WeakMap();
  readonly outbox: SabOutbox;
  /** Arguments: our buffers only (the worker that takes a request is not known yet). */
  readonly argLink: SabLink;
  readonly argWriter: WireWriter = new WireWriter();
  /** Results from a worker that is gone: only our own buffers resolve. */
  readonly orphanLink: SabLink;
  /** The submission ring (shared with the workers). */
  readonly sq: Int32Array = newSubmitRing();
  /** Queued records that did not fit in the ring yet, oldest first. */
  readonly overflow: number[] = [];
  /** Request records to reuse: only the owner allocates and frees them. */
  readonly freeRecs: number[] = [];
  #blocks: number[] = [];
  #batch: ReqState[] = [];
  seq = 0;
  freed = false;
  reapSeen = 0;
  spawnError: unknown = undefined;
  /** Called once freed (the context forgets its pool). */
  onFreed: (() => void) | null = null;

  constructor(ctx: AioContext, min: number, max: number) {
    this.ctx = ctx;
    this.ctl = newControlBlock(min, max);
    this.heap = new SharedHeap(this.ctl, newHeapBuffer());
    this.outbox = new SabOutbox((m) => {
      for (const e of this.workers.values()) e.port.postMessage(m);
    }, { weak: true });
    this.argLink = new SabLink(this.outbox, null);
    this.orphanLink = new SabLink(this.outbox, null);
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
    // thread_pool_init_one -> thread_pool_update_params: `min` workers are
    // asked for now and created by the spawn BH in the next polls, so the
    // first submit finds them up.
    if (min > 0) {
      lock(this.ctl);
      try {
        for (let i = 0; i < min; i++) this.spawnThread();
      } finally {
        unlock(this.ctl);
      }
    }
  }

  checkAlive(): void {
    if (this.freed) throw new Deno.errors.BadResource("Thread pool was freed");
  }

  // --- submission ---------------------------------------------------------

  submit(
    work: ThreadPoolWork,
    arg: unknown,
    cb: ThreadPoolCompletionFunc<any> | null | undefined,
  ): ReqState {
    this.checkAlive();
    let cached = typeof work === "object" && work !== null ? this.workCache.get(work) : undefined;
    if (cached === undefined || cached.module !== work.module || cached.name !== work.name) {
      const { key, name } = workKey(work);
      cached = { module: work.module, name: work.name, key, label: name, w: 0 };
      this.workCache.set(work, cached);
    }
    const key = cached.key, name = cached.label;
    if (cb !== undefined && cb !== null && typeof cb !== "function") {
      throw new TypeError("Thread pool completion callback must be a function");
    }
    let keep: SharedArrayBuffer[] | null = null;
    let enc;
    if (typeof arg === "number") enc = { tag: TAG_NUMBER, num: arg, bytes: null };
    else if (arg === undefined || arg === null || typeof arg === "boolean") {
      // Inline: the writer is not used.
      enc = encodeValue(this.argWriter, arg);
    } else {
      const link = this.argLink;
      link.kept = keep = [];
      try {
        enc = encodeValue(this.argWriter.reset(link, "Thread pool argument"), arg);
      } finally {
        link.kept = null;
      }
      if (keep.length === 0) keep = null;
    }
    this.maybeReap();
    const ctl = this.ctl, heap = this.heap;
    // The work's name block, remembered on its cache entry after the first use.
    let w: number | undefined = cached.w !== 0 ? cached.w : this.works.get(key);
    let rec = this.freeRecs.pop() ?? 0, argp = 0;
    // The common submit (known work, a spare record, an inline argument, no
    // worker to add) takes no lock.
    if (
      w === undefined || rec === 0 || enc.bytes !== null ||
      (Atomics.load(ctl, C_IDLE) === 0 && Atomics.load(ctl, C_CUR) < Atomics.load(ctl, C_MAX))
    ) {
      lock(ctl);
      try {
        if (w === undefined) {
          w = storeWorkName(heap, key);
          this.works.set(key, w);
        }
        if (rec === 0) rec = heap.alloc(RECORD_BYTES);
        if (enc.bytes !== null) argp = heap.store(enc.bytes);
        if (ctl[C_IDLE] === 0 && ctl[C_CUR] < ctl[C_MAX]) this.spawnThread();
      } catch (e) {
        if (argp !== 0) heap.free(argp);
        if (rec !== 0) this.freeRecs.push(rec);
        throw e;
      } finally {
        unlock(ctl);
      }
    }
    cached.w = w as number;
    // Views are current after the allocations (they may have grown the heap).
    const i32 = heap.i32, r = rec >> 2;
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
    if (tracing) traceSend(K_POOL, traceName(`submit ${name}`), rec, rec);
    if (this.overflow.length > 0) this.flushOverflow();
    if (this.overflow.length > 0 || !ringPush(heap, this.sq, rec)) {
      i32[r + R_CLAIM] = CLAIM_PENDING;
      this.overflow.push(rec);
    }
    wakeOne(ctl);
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
      keep,
    };
    this.outstanding.set(rec, st);
    return st;
  }

  /** Moves overflowed records into the ring, oldest first; cancelled ones are dropped. */
  flushOverflow(): void {
    const ov = this.overflow, heap = this.heap;
    let i = 0;
    for (; i < ov.length; i++) {
      const rec = ov[i];
      if (heap.i32[(rec >> 2) + R_CLAIM] !== CLAIM_PENDING) continue;
      if (!ringPush(heap, this.sq, rec)) break;
    }
    if (i > 0) {
      ov.splice(0, i);
      wakeOne(this.ctl);
    }
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
      const error = explainWorkerStartError(e, "The thread pool", WORKER_URL);
      // The queued requests carry the error when no worker is left to run
      // them; otherwise it leaves this poll.
      if (!this.spawnFailed(slot, error)) throw error;
    }
  }

  createWorker(slot: number): void {
    const { port1, port2 } = new MessageChannel();
    const inbox = new SabInbox();
    inbox.addPort(port1);
    const entry: WorkerEntry = {
      slot,
      port: port1,
      link: new SabLink(this.outbox, inbox),
      worker: null,
      dropped: false,
      error: undefined,
    };
    const init: WorkerInit = {
      ctl: this.ctl.buffer as SharedArrayBuffer,
      heap: this.heap.buffer,
      sq: this.sq.buffer as SharedArrayBuffer,
      slot,
      completionBh: this.completionBh.remote(),
      newThreadBh: this.newThreadBh.remote(),
      port: port2,
      sabs: this.outbox.snapshot(),
      trace: traceBlock(),
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

  /**
   * No worker could be created: undo, and fail queued work if none is left.
   * Returns whether some request was failed with `e`.
   */
  spawnFailed(slot: number, e: unknown): boolean {
    const ctl = this.ctl, heap = this.heap;
    let delivered = false;
    lock(ctl);
    try {
      heap.sync();
      const i32 = heap.i32;
      heap.free(slot);
      ctl[C_PENDING]--;
      ctl[C_CUR]--;
      // The backlog would fail the same way.
      ctl[C_CUR] -= ctl[C_NEW];
      ctl[C_NEW] = 0;
      if (ctl[C_CUR] === 0) {
        this.spawnError = e;
        // The ring first, then the overflow: oldest first either way.
        const queued: number[] = [];
        for (let rec = takeQueued(heap, this.sq); rec !== 0; rec = takeQueued(heap, this.sq)) {
          queued.push(rec);
        }
        for (const rec of this.overflow) {
          if (i32[(rec >> 2) + R_CLAIM] !== CLAIM_PENDING) continue;
          i32[(rec >> 2) + R_CLAIM] = CLAIM_TAKEN;
          queued.push(rec);
        }
        this.overflow.length = 0;
        for (const rec of queued) {
          i32[(rec >> 2) + R_RES_TAG] = TAG_SPAWN_FAILED;
          Atomics.store(i32, (rec >> 2) + R_STATE, DONE);
          pushDone(heap, rec);
          delivered = true;
        }
      }
    } finally {
      unlock(ctl);
    }
    this.completionBh.schedule();
    return delivered;
  }

  /** The Worker's "exit" event (runs when the owner's event loop does). */
  onWorkerExit(entry: WorkerEntry): void {
    if (this.freed || entry.dropped) return;
    const ctl = this.ctl, heap = this.heap, s = entry.slot >> 2;
    let chain = false;
    lock(ctl);
    try {
      heap.sync();
      const i32 = heap.i32;
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
        const waiting = !ringEmpty(ctl) || this.overflow.length > 0;
        if (waiting && ctl[C_IDLE] === 0 && ctl[C_CUR] < ctl[C_MAX]) this.spawnThread();
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
    // A load first: the common empty case leaves the workers' line alone.
    if (Atomics.load(ctl, C_DONE) === 0) return;
    let rec = Atomics.exchange(ctl, C_DONE, 0);
    if (rec === 0) return;
    const heap = this.heap;
    heap.sync();
    const i32 = heap.i32;
    const blocks = this.#blocks, batch = this.#batch;
    blocks.length = 0;
    while (rec !== 0) {
      const r = rec >> 2;
      const next = Atomics.load(i32, r + R_DNEXT);
      const st = this.outstanding.get(rec);
      if (st !== undefined) {
        this.outstanding.delete(rec);
        this.readResult(st, rec);
        batch.push(st);
      }
      this.freeRecs.push(rec);
      if (tagHasBytes(i32[r + R_ARG_TAG])) blocks.push(i32[r + R_ARG_PTR]);
      if (tagHasBytes(i32[r + R_RES_TAG])) blocks.push(i32[r + R_RES_PTR]);
      rec = next;
    }
    // The stack hands them out newest-pushed first: insert oldest first.
    for (let i = batch.length - 1; i >= 0; i--) doneInsert(this.done, batch[i]);
    batch.length = 0;
    if (blocks.length === 0) return;
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
    const entry = this.workers.get(i32[r + R_WORKER]);
    const link = entry?.link ?? this.orphanLink;
    try {
      switch (tag) {
        case TAG_CANCELED:
          st.error = new SysError(
            ECANCELED,
            "thread_pool_cancel",
            `'${st.name}' was cancelled before it started`,
          );
          break;
        case TAG_DIED:
          st.error = new Error(`Thread pool worker exited while running '${st.name}'`, {
            cause: entry?.error,
          });
          break;
        case TAG_DIED_THREW: {
          const reader = new WireReader(heap.copyOut(i32[r + R_RES_PTR], i32[r + R_RES_LEN]));
          reader.sabs = link;
          const cause = reader.value();
          st.error = new Error(
            `Thread pool worker exited while running '${st.name}': ${
              cause instanceof Error ? cause.message : String(cause)
            }`,
            { cause },
          );
          break;
        }
        case TAG_SPAWN_FAILED:
          // A missing permission is already explained (which flag to add).
          st.error = this.spawnError instanceof Deno.errors.NotCapable
            ? this.spawnError
            : new Error(
              `Cannot start a thread pool worker for '${st.name}': ${
                this.spawnError instanceof Error ? this.spawnError.message : String(this.spawnError)
              }`,
              { cause: this.spawnError },
            );
          break;
        case TAG_NO_ROOM:
          st.error = new RangeError(
            `The result of '${st.name}' does not fit in the thread pool's shared heap`,
          );
          break;
        case TAG_THREW: {
          const reader = new WireReader(heap.copyOut(i32[r + R_RES_PTR], i32[r + R_RES_LEN]));
          reader.sabs = link;
          st.error = thrownError(reader.value());
          break;
        }
        default: {
          const bytes = tagHasBytes(tag)
            ? heap.copyOut(i32[r + R_RES_PTR], i32[r + R_RES_LEN])
            : null;
          const num = tag === TAG_NUMBER ? heap.f64[(rec + R_RES_F64_BYTE) >> 3] : 0;
          st.ret = decodeValue(tag, num, bytes, link);
        }
      }
    } catch (e) {
      st.error = e instanceof Error ? e : new Error(String(e));
    }
    if (st.error !== undefined) st.ret = -errnoOf(st.error);
    // The worker took its buffers long ago; results that named them are read.
    st.keep = null;
  }

  /** thread_pool_completion_bh: newest-submitted finished request first. */
  completionBhFn(): void {
    // Cleared before draining: a worker that publishes after the drain
    // finds 0 and rings again (see scheduleCompletion in _worker.ts).
    Atomics.store(this.ctl, C_RUNG, 0);
    this.maybeReap();
    this.drainDone();
    if (this.overflow.length > 0) this.flushOverflow();
    for (;;) {
      const st = this.done.pop();
      if (st === undefined) return;
      st.completed = true;
      const cb = st.cb;
      if (cb === null) continue;
      // Rescheduled first, so a callback that polls still sees the other
      // completions; cancelled once it returned. If it throws, the BH stays
      // scheduled and the next poll carries on.
      this.completionBh.schedule();
      if (tracing) traceCallFlow(K_POOL, `complete ${st.name}`, st.rec, cb, null, st.ret, st.error);
      else cb(st.ret, st.error);
      if (this.freed) return;
      // The cancel may also drop a worker's ring made meanwhile: clear the
      // doorbell word again before draining, so the next completion rings.
      this.completionBh.cancel();
      Atomics.store(this.ctl, C_RUNG, 0);
      // New completions may have arrived meanwhile (QEMU restarts its scan).
      this.drainDone();
    }
  }

  // --- cancellation -------------------------------------------------------

  /** thread_pool_cancel: drop a queued request; it completes with -ECANCELED. */
  cancelAsync(st: ReqState): void {
    if (st.finished || this.freed) return;
    const i32 = this.heap.i32, r = st.rec >> 2;
    // Queued (in the ring or the overflow) while the claim word holds a
    // ticket: one CAS decides between us and a worker taking it.
    const c = Atomics.load(i32, r + R_CLAIM);
    if (c <= 0 || Atomics.compareExchange(i32, r + R_CLAIM, c, CLAIM_CANCELED) !== c) return;
    i32[r + R_RES_TAG] = TAG_CANCELED;
    Atomics.store(i32, r + R_STATE, DONE);
    pushDone(this.heap, st.rec);
    this.completionBh.schedule();
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
    if (s === QUEUED) return "queued";
    if (s !== DONE) return "active";
    // A worker marks the record DONE just before it pushes it where the
    // completion BH finds it: "done" only once it is there (as in QEMU,
    // where both happen under the pool's lock), so that whatever is done
    // when the BH runs completes in the BH's order.
    this.drainDone();
    return st.finished ? "done" : "active";
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
        queued: ringQueued(this.heap, this.sq) +
          this.overflow.filter((rec) => this.heap.i32[(rec >> 2) + R_CLAIM] === CLAIM_PENDING)
            .length,
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
    this.onFreed?.();
    if (left > 0) throw new Error(`Thread pool freed with ${left} request(s) outstanding`);
    if (stuck > 0) {
      throw new Error(
        `Thread pool freed while ${stuck} worker(s) did not stop within ${FREE_TIMEOUT_MS} ms`,
      );
    }
  }
}

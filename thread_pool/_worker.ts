// The thread pool's worker: util/thread-pool.c's worker_thread() in a
// node:worker_threads Worker. It takes requests from the shared FIFO, runs
// the named function, stores the result in shared memory, marks the request
// DONE and schedules the owner's completion BH through the context's
// control block (the doorbell), so completion never waits for the owner's
// postMessage loop.
//
// The owner unref()s the Worker, so a worker blocked in Atomics.wait never
// keeps the process alive, and Atomics.wait is the idle wait (QEMU's
// qemu_cond_timedwait on request_cond).
import process from "node:process";
import { workerData } from "node:worker_threads";
import { remoteBhSchedule } from "../aio/_ctl_ops.ts";
import { libc } from "../sys/_libc.ts";
import { WireWriter, writeThrown } from "../_wire/codec.ts";
import { SabInbox, SabLink, SabOutbox } from "../_wire/sab_handoff.ts";
import { exportedFunction, importModule } from "../_wire/module_cache.ts";
import { K_POOL, traceAdopt, traceJobEnd, traceJobStart, tracing } from "../trace/_state.ts";
import {
  ACTIVE,
  C_CUR,
  C_FREED,
  C_IDLE,
  C_IDLE_MS,
  C_MAX,
  C_MIN,
  C_NEW,
  C_PENDING,
  C_REAP,
  C_REQ_COND,
  C_RUNG,
  C_SLEEPERS,
  C_SPINNERS,
  C_STOP_COND,
  C_WAKING,
  condSignal,
  decodeValue,
  DONE,
  type Encoded,
  encodeValue,
  loadWorkName,
  lock,
  pushDone,
  R_ARG_F64_BYTE,
  R_ARG_LEN,
  R_ARG_PTR,
  R_ARG_TAG,
  R_RES_F64_BYTE,
  R_RES_LEN,
  R_RES_PTR,
  R_RES_TAG,
  R_STATE,
  R_WORK,
  R_WORKER,
  ringEmpty,
  SharedHeap,
  TAG_DIED,
  TAG_DIED_THREW,
  TAG_NO_ROOM,
  TAG_NUMBER,
  TAG_THREW,
  tagHasBytes,
  takeQueued,
  unlock,
  W_ACTIVE,
  W_DEAD,
  W_EXITED,
  W_RUNNING,
  W_STATE,
  wakeOne,
  type WorkerInit,
} from "./_shared.ts";

const init = workerData as WorkerInit;
traceAdopt(init.trace, "thread pool worker");
const ctl = new Int32Array(init.ctl);
const heap = new SharedHeap(ctl, init.heap);
const slot = init.slot >> 2;
const ctxCtl = new Int32Array(init.completionBh.handle.ctl);
const inbox = new SabInbox(init.sabs);
inbox.addPort(init.port);
const outbox = new SabOutbox((m) => init.port.postMessage(m), { weak: true });
const link = new SabLink(outbox, inbox);
const writer = new WireWriter();
const sq = new Int32Array(init.sq);

/** Looks at the ring an idle worker takes before sleeping (about 20 µs: three loads each). */
const IDLE_SPIN = 700;
/** At most this many idle workers spin at once: one per spare core. */
const MAX_SPINNERS = Math.max(1, (navigator.hardwareConcurrency ?? 2) - 1);

/** The job this worker has taken (a sequence number), 0 between jobs. */
let activeJob = 0;
let jobSeq = 0;
/** A timer callback of the active job threw: the error the dying job carries. */
let strayError: { error: unknown } | null = null;
/** A timer of a job that already completed threw: leave after the current job. */
let retire = false;

// A job may leave timers behind. One that throws would kill this worker
// whenever it fires, which is during some later job's await (an idle worker
// sits in Atomics.wait and runs no timers), failing that innocent job. So
// each timer callback remembers which job set it: if that job is still
// running, the error kills the worker as before and that job carries it;
// if the job has completed, the error is reported, the current job
// finishes normally, and the worker then leaves so that a clean one
// replaces it.
function guarded(cb: (...args: unknown[]) => unknown, owner: number, name: string) {
  return function (this: unknown, ...args: unknown[]): unknown {
    try {
      return cb.apply(this, args);
    } catch (e) {
      if (owner !== 0 && owner === activeJob) {
        strayError = { error: e };
        throw e;
      }
      retire = true;
      console.error(
        `Thread pool job '${name}' left a timer that threw after the job completed; ` +
          "its worker is replaced:",
        e,
      );
    }
  };
}
let activeName = "";
for (const key of ["setTimeout", "setInterval"] as const) {
  const original = (globalThis as Record<string, unknown>)[key] as (
    cb: unknown,
    ...rest: unknown[]
  ) => unknown;
  (globalThis as Record<string, unknown>)[key] = function (cb: unknown, ...rest: unknown[]) {
    const f = typeof cb === "function"
      ? guarded(cb as (...args: unknown[]) => unknown, activeJob, activeName)
      : cb;
    return original.call(globalThis, f, ...rest);
  };
}

/** Set when the loop ended normally; the exit hook then does nothing. */
let exited = false;
/** Set once this worker is dying; the loop must not touch the pool again. */
let dying = false;

type Job = (arg: unknown) => unknown;
/** Work name block offset → the function, or why there is none. */
const jobs = new Map<number, Job | Error>();

/** Rings the owner's completion BH. Caller holds the lock. */
function scheduleCompletion(): void {
  if (Atomics.load(ctl, C_FREED) !== 0) return;
  // Published (pushDone) before this exchange: an owner that cleared the
  // word before its drain either sees the record or sees 1 and is rung.
  // A load first: while a ring is pending the word's cache line is only read.
  if (Atomics.load(ctl, C_RUNG) !== 0 || Atomics.exchange(ctl, C_RUNG, 1) !== 0) return;
  try {
    remoteBhSchedule(ctxCtl, init.completionBh.slot);
  } catch {
    // The context is gone; nobody is left to complete.
  }
}

/**
 * The worker is going away outside its loop (process.exit, close(), an
 * uncaught error): fail the request it runs and leave the pool as a normal
 * exit does, so the owner can replace it.
 */
function die(): void {
  if (exited || dying) return;
  dying = true;
  try {
    lock(ctl);
    heap.sync();
    heap.i32[slot + W_STATE] = W_DEAD;
    const rec = heap.i32[slot + W_ACTIVE];
    if (rec !== 0) {
      const r = rec >> 2;
      let tag = TAG_DIED, p = 0, len = 0;
      if (strayError !== null) {
        try {
          const out = threw(strayError.error);
          p = heap.store(out.bytes!);
          len = out.bytes!.length;
          tag = TAG_DIED_THREW;
        } catch {
          // No room: the plain "died" result.
        }
      }
      heap.i32[r + R_RES_TAG] = tag;
      heap.i32[r + R_RES_PTR] = p;
      heap.i32[r + R_RES_LEN] = len;
      heap.i32[r + R_WORKER] = init.slot;
      heap.i32[slot + W_ACTIVE] = 0;
      Atomics.store(heap.i32, r + R_STATE, DONE);
      pushDone(heap, rec);
    }
    scheduleCompletion();
    ctl[C_CUR]--;
    ctl[C_REAP]++;
    condSignal(ctl, C_STOP_COND, Infinity);
    condSignal(ctl, C_REQ_COND, 1);
    unlock(ctl);
  } catch {
    // Best effort: the owner's Worker "exit" event covers the rest.
  }
}

process.on("exit", die);
const g = globalThis as unknown as { close?: () => void };
const originalClose = g.close;
if (typeof originalClose === "function") {
  g.close = (): void => {
    die();
    originalClose.call(globalThis);
  };
}

/** The function a work name block names, or why there is none (imports once). */
async function resolveJob(work: number): Promise<Job | Error> {
  const { module, name } = loadWorkName(heap, work);
  let mod: Record<string, unknown>;
  try {
    mod = await importModule(module);
  } catch (e) {
    // A failed import is not cached: a later job tries again.
    return e instanceof Error ? e : new Error(`Cannot import '${module}': ${String(e)}`);
  }
  const found = exportedFunction(mod, module, name);
  jobs.set(work, found);
  return found;
}

function argOf(rec: number): unknown {
  const r = rec >> 2;
  const tag = heap.i32[r + R_ARG_TAG];
  if (tag === TAG_NUMBER) return heap.f64[(rec + R_ARG_F64_BYTE) >> 3];
  const bytes = tagHasBytes(tag)
    ? heap.copyOut(heap.i32[r + R_ARG_PTR], heap.i32[r + R_ARG_LEN])
    : null;
  return decodeValue(tag, 0, bytes, link);
}

function returned(value: unknown, name: string): Encoded {
  try {
    return encodeValue(writer.reset(link, `Result of '${name}'`), value);
  } catch (e) {
    return threw(e);
  }
}

function threw(e: unknown): Encoded {
  writeThrown(writer.reset(link, "Thrown value"), e);
  return { tag: TAG_THREW, num: 0, bytes: writer.view() };
}

/**
 * Stores the outcome and publishes DONE (QEMU: ret, then the release store
 * of the state), then rings the completion BH unless a ring is pending.
 * Only a result with bytes takes the lock (for the heap).
 */
function finish(rec: number, out: Encoded | null, num: number): void {
  const r = rec >> 2;
  let tag = TAG_NUMBER, p = 0, len = 0;
  if (out === null) {
    heap.f64[(rec + R_RES_F64_BYTE) >> 3] = num;
  } else if (out.bytes !== null) {
    lock(ctl);
    try {
      p = heap.store(out.bytes);
    } catch (e) {
      out = threw(e);
      try {
        p = heap.store(out.bytes!);
      } catch {
        out = { tag: TAG_NO_ROOM, num: 0, bytes: null };
      }
    }
    unlock(ctl);
    tag = out.tag;
    len = out.bytes?.length ?? 0;
  } else {
    if (out.tag === TAG_NUMBER) heap.f64[(rec + R_RES_F64_BYTE) >> 3] = out.num;
    tag = out.tag;
  }
  const i32 = heap.i32;
  i32[r + R_RES_TAG] = tag;
  i32[r + R_RES_PTR] = p;
  i32[r + R_RES_LEN] = len;
  i32[r + R_WORKER] = init.slot;
  i32[slot + W_ACTIVE] = 0;
  Atomics.store(i32, r + R_STATE, DONE);
  pushDone(heap, rec);
  scheduleCompletion();
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && typeof v === "object" &&
    typeof (v as PromiseLike<unknown>).then === "function";
}

async function workerThread(): Promise<void> {
  // Open libc now: the doorbell's first ring would otherwise pay for the
  // dlopen (milliseconds) while the owner sleeps waiting for it.
  libc();
  lock(ctl);
  heap.sync();
  ctl[C_PENDING]--;
  heap.i32[slot + W_STATE] = W_RUNNING;
  // The next worker of the backlog is created by the owner's spawn BH.
  if (ctl[C_NEW] > 0 && ctl[C_FREED] === 0) {
    try {
      remoteBhSchedule(ctxCtl, init.newThreadBh.slot);
    } catch {
      // The context is gone.
    }
  }
  unlock(ctl);
  // The job path takes no lock: requests come from the ring, results go
  // out through the DONE stack. The lock is for idling and leaving.
  for (;;) {
    const rec = takeQueued(heap, sq);
    if (rec === 0) {
      lock(ctl);
      heap.sync();
      if (ctl[C_CUR] > ctl[C_MAX]) break;
      ctl[C_IDLE]++;
      const seq = Atomics.load(ctl, C_REQ_COND);
      const timeout = ctl[C_IDLE_MS];
      unlock(ctl);
      // Watch the ring briefly before sleeping: a stream of submissions
      // then costs no wake-up, and one job's round trip no futex sleep.
      if (Atomics.add(ctl, C_SPINNERS, 1) < MAX_SPINNERS) {
        for (
          let i = 0;
          i < IDLE_SPIN && ringEmpty(ctl) && Atomics.load(ctl, C_REQ_COND) === seq;
          i++
        );
      }
      Atomics.sub(ctl, C_SPINNERS, 1);
      let res: "ok" | "not-equal" | "timed-out" = "not-equal";
      if (ringEmpty(ctl) && Atomics.load(ctl, C_REQ_COND) === seq) {
        // Announce the sleep, then look again: a submit that published
        // before the announcement is seen here; one after it sees the
        // announcement and bumps the condition (see wakeOne).
        Atomics.add(ctl, C_SLEEPERS, 1);
        // A wake-up flagged before this announcement may have found nobody
        // asleep: clear it, or later submits would skip waking this worker.
        // A wake flagged after it bumped the condition past `seq`.
        Atomics.store(ctl, C_WAKING, 0);
        if (ringEmpty(ctl)) {
          // Let SharedArrayBuffers posted meanwhile (and their forgets) land.
          inbox.drain();
          res = Atomics.wait(ctl, C_REQ_COND, seq, timeout);
        }
        Atomics.sub(ctl, C_SLEEPERS, 1);
        // Looking at the ring again below: later submits may wake others.
        Atomics.store(ctl, C_WAKING, 0);
      }
      lock(ctl);
      heap.sync();
      ctl[C_IDLE]--;
      if (ctl[C_CUR] > ctl[C_MAX]) break;
      if (res === "timed-out" && ringEmpty(ctl) && ctl[C_CUR] > ctl[C_MIN]) break;
      unlock(ctl);
      continue;
    }
    Atomics.store(heap.i32, (rec >> 2) + R_STATE, ACTIVE);
    heap.i32[slot + W_ACTIVE] = rec;
    // More queued: a sleeping worker helps.
    if (!ringEmpty(ctl)) wakeOne(ctl);
    activeJob = ++jobSeq;
    activeName = "";

    // Only the first use of a function, or a job returning a promise,
    // goes through the event loop.
    let fn = jobs.get(heap.i32[(rec >> 2) + R_WORK]);
    if (fn === undefined) fn = await resolveJob(heap.i32[(rec >> 2) + R_WORK]);
    if (!(fn instanceof Error)) activeName = fn.name || "anonymous";
    traceJobStart(K_POOL, `job ${activeName}`, rec);
    let ret: unknown;
    let failed = false;
    if (fn instanceof Error) {
      ret = fn;
      failed = true;
    } else {
      try {
        ret = fn(argOf(rec));
        if (isThenable(ret)) ret = await ret;
      } catch (e) {
        ret = e;
        failed = true;
      }
    }
    if (tracing) traceJobEnd(K_POOL, `job ${activeName}`, rec);
    if (dying) return;
    if (failed) finish(rec, threw(ret), 0);
    else if (typeof ret === "number") finish(rec, null, ret);
    else finish(rec, returned(ret, (fn as Job).name || "anonymous"), 0);
    activeJob = 0;
    if (retire) {
      // Leave, as a dead worker: the owner reaps it and spawns a clean one
      // if work waits (or fewer than min are left).
      lock(ctl);
      heap.i32[slot + W_STATE] = W_DEAD;
      exited = true;
      ctl[C_CUR]--;
      ctl[C_REAP]++;
      condSignal(ctl, C_STOP_COND, Infinity);
      condSignal(ctl, C_REQ_COND, 1);
      scheduleCompletion();
      unlock(ctl);
      init.port.close();
      return;
    }
    // The pool shrank (setParams, free): this worker may be one too many.
    if (Atomics.load(ctl, C_CUR) > Atomics.load(ctl, C_MAX)) {
      lock(ctl);
      heap.sync();
      if (ctl[C_CUR] > ctl[C_MAX]) break;
      unlock(ctl);
    }
  }
  heap.i32[slot + W_STATE] = W_EXITED;
  exited = true;
  ctl[C_CUR]--;
  ctl[C_REAP]++;
  condSignal(ctl, C_STOP_COND, Infinity);
  // This worker may have taken a wake-up meant for another.
  condSignal(ctl, C_REQ_COND, 1);
  unlock(ctl);
  init.port.close();
}

workerThread();

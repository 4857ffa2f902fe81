// Functions that the multithread tests run inside IOThreads, by name
// (IOThread.run / remoteCall). Each IOThread imports this module into its
// own isolate, so the module-level state below is per thread, as QEMU's
// test keeps `id` in a thread-local.
import { bqlMutex } from "../../thread/_bql_state.ts";
import type { AioContext } from "../../aio/aio_context.ts";
import { Coroutine, type CoroutineFn } from "../../aio/coroutine.ts";
import { aioCoSchedule } from "../../aio/co_schedule.ts";
import { getCurrentAioContext } from "../../aio/current.ts";
import { RemoteAioContext, type RemoteBH } from "../../aio/handle.ts";
import { getThreadPool, ThreadPoolAio, type ThreadPoolStats } from "../../thread_pool/mod.ts";
import { internals } from "../../aio/_internal.ts";
import {
  registerCoroutine,
  registeredCoroutine,
  remoteCallSync,
  remoteCoEnter,
  remoteCoSchedule,
  type RemoteRequestChannel,
  unregisterCoroutine,
} from "../../iothread/mod.ts";
import {
  CrossCoMutex,
  type CrossCoMutexHandle,
  McsLock,
  type McsLockHandle,
} from "../_cross_lock.ts";
import { QemuMutex } from "../../thread/mutex.ts";
import type { SharedWordHandle } from "../../thread/shared_word.ts";
import { libc } from "../../sys/_libc.ts";

/** Indices of the shared Int32Array the tests pass around. */
export const SH = {
  NOW_STOPPING: 0,
  RUNNING: 1,
  COUNTER: 2,
  ATOMIC_COUNTER: 3,
  COUNT_RETRY: 4,
  COUNT_HERE: 5,
  COUNT_OTHER: 6,
  /** to_schedule[i] from here on: coroutine ids, 0 = NULL. */
  TO_SCHEDULE: 8,
  WORDS: 16,
} as const;

// This thread's index among the test's contexts (test-aio-multithread's
// thread-local `id`).
let id = -1;

function ctx(): AioContext {
  const c = getCurrentAioContext();
  if (c === null) throw new Error("No current AioContext in this IOThread");
  return c;
}

/** set_id_cb of the QEMU test: record this thread's index. */
export function setId(i: number): { id: number; tid: number; ctxName: string } {
  id = i;
  return { id, tid: libc().gettid(), ctxName: ctx().name };
}

/** Identity of the thread and its context, for the IOThread tests. */
export function whoAmI(): {
  tid: number;
  hasCtx: boolean;
  ctxName: string | null;
  pollMaxNs: number;
  pollGrow: number;
  pollShrink: number;
  fdmon: string | null;
  threadPool: unknown;
} {
  const c = getCurrentAioContext();
  return {
    tid: libc().gettid(),
    hasCtx: c !== null,
    ctxName: c?.name ?? null,
    pollMaxNs: c?.pollParams.maxNs ?? -1,
    pollGrow: c?.pollParams.grow ?? -1,
    pollShrink: c?.pollParams.shrink ?? -1,
    fdmon: c?.fdmon ?? null,
    threadPool: c === null
      ? null
      : (({ minThreads, maxThreads }) => ({ min: minThreads, max: maxThreads }))(
        getThreadPool(c).stats(),
      ),
  };
}

/** Echo, for round trips. */
export function echo<T>(x: T): T {
  return x;
}

/** Adds one to word 0 of a shared array and returns the new value. */
export function bump(a: { arr: Int32Array }): number {
  return Atomics.add(a.arr, 0, 1) + 1;
}

/** Throws the given message as a RangeError. */
export function fail(message: string): never {
  throw new RangeError(message);
}

/** Resolves later (through a microtask), for the async-result path. */
export async function later(x: number): Promise<number> {
  await null;
  return x * 2;
}

/** Schedules a BH that throws: the error leaves the IOThread's poll. */
export function throwInBh(message: string): void {
  ctx().bhScheduleOneshot(() => {
    throw new Error(message);
  }, "throwing_bh");
}

/** Blocks the thread in Atomics.wait for `ms` (a long-running function). */
export function sleepMs(ms: number): number {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  return ms;
}

// ---------------------------------------------------------------------------
// /aio/coroutine/worker-thread-co-enter (Worker form)

/** From this thread (no context of the target's), ask `channel` to enter coroutine `coId`. */
export function coEnter(a: { channel: RemoteRequestChannel; coId: number }): void {
  remoteCoEnter(a.channel, a.coId);
}

/** Calls `echo(x)` in the context of `channel` and blocks this thread until it answers. */
export function callHome(a: { channel: RemoteRequestChannel; x: unknown }): unknown {
  return remoteCallSync(a.channel, import.meta.url, "echo", a.x);
}

// ---------------------------------------------------------------------------
// The notify storm of iothread_test.ts

/**
 * `count` times: increment the counter, then notify the context; finally
 * schedule the context's shared BH `bh` (after the last notify).
 */
export function notifyStorm(
  a: { handle: RemoteRequestChannel; counter: Int32Array; count: number; bh: RemoteBH },
): number {
  const remote = new RemoteAioContext(a.handle);
  for (let i = 0; i < a.count; i++) {
    Atomics.add(a.counter, 0, 1);
    remote.notify();
  }
  RemoteAioContext.scheduleBh(a.bh);
  return a.count;
}

// ---------------------------------------------------------------------------
// /aio/multi/schedule

interface ScheduleState {
  sh: Int32Array;
  channels: RemoteRequestChannel[];
  n: number;
  co: Coroutine;
  coId: number;
  /** stop[id] of the C test: set by finish_cb, read by this thread's coroutine only. */
  stop: boolean;
}
let sched: ScheduleState | null = null;

function scheduleNext(st: ScheduleState, n: number): void {
  const x = Atomics.exchange(st.sh, SH.TO_SCHEDULE + n, 0);
  if (x === 0) {
    Atomics.add(st.sh, SH.COUNT_RETRY, 1);
    return;
  }
  Atomics.add(st.sh, n === id ? SH.COUNT_HERE : SH.COUNT_OTHER, 1);
  if (n === id) {
    const co = registeredCoroutine(x);
    if (co === undefined) throw new Error(`to_schedule[${n}] holds unknown coroutine ${x}`);
    aioCoSchedule(ctx(), co);
  } else {
    remoteCoSchedule(st.channels[n], x);
  }
}

function checkSlotEmpty(st: ScheduleState, when: string): void {
  if (Atomics.load(st.sh, SH.TO_SCHEDULE + id) !== 0) {
    throw new Error(`to_schedule[${id}] is not NULL ${when}`);
  }
}

/**
 * The coroutine of QEMU's test at HEAD: schedule a random context's
 * parked coroutine, then publish self and yield. Activity may die out
 * (a retry parks the only running coroutine), as it may in C.
 */
function* scheduleEntry(st: ScheduleState): CoroutineFn {
  checkSlotEmpty(st, "at start");
  while (!st.stop) {
    scheduleNext(st, Math.floor(Math.random() * st.n));
    Atomics.store(st.sh, SH.TO_SCHEDULE + id, st.coId);
    // finish_cb can run here.
    yield;
    checkSlotEmpty(st, "after wake-up");
  }
}

/**
 * The token-passing form (QEMU's original version of the test): publish
 * self first, so that a coroutine may take and schedule itself ("here");
 * at least one coroutine keeps running, and coroutines keep moving between
 * threads until finish_cb.
 */
function* schedulePassEntry(st: ScheduleState): CoroutineFn {
  checkSlotEmpty(st, "at start");
  Atomics.store(st.sh, SH.TO_SCHEDULE + id, st.coId);
  while (!st.stop) {
    scheduleNext(st, Math.floor(Math.random() * st.n));
    yield;
    checkSlotEmpty(st, "after wake-up");
    if (st.stop) break;
    Atomics.store(st.sh, SH.TO_SCHEDULE + id, st.coId);
  }
}

/** Creates this thread's coroutine and aio_co_schedules it here; returns its id. */
export function scheduleStart(
  a: { sh: Int32Array; channels: RemoteRequestChannel[]; passing?: boolean },
): number {
  const st = { sh: a.sh, channels: a.channels, n: a.channels.length, stop: false } as ScheduleState;
  st.co = Coroutine.create(a.passing ? schedulePassEntry : scheduleEntry, st);
  st.coId = registerCoroutine(st.co);
  sched = st;
  aioCoSchedule(ctx(), st.co);
  return st.coId;
}

/** finish_cb: set stop[id] and wake this thread's coroutine if it is parked. */
export function finishCb(): void {
  if (sched === null) throw new Error("scheduleStart() did not run here");
  sched.stop = true;
  scheduleNext(sched, id);
}

/** Whether this thread's coroutine has terminated. */
export function scheduleDone(): boolean {
  if (sched === null) throw new Error("scheduleStart() did not run here");
  return sched.co.done;
}

/** At the end: whether this thread's coroutine terminated; drops its id. */
export function scheduleEnd(): { done: boolean } {
  if (sched === null) throw new Error("scheduleStart() did not run here");
  const done = sched.co.done;
  unregisterCoroutine(sched.coId);
  sched = null;
  return { done };
}

// ---------------------------------------------------------------------------
// /aio/multi/mutex/*

type LockKind = "comutex" | "futex" | "mcs";

interface MutexArg {
  sh: Int32Array;
  kind: LockKind;
  comutex?: CrossCoMutexHandle;
  futex?: SharedWordHandle;
  mcs?: McsLockHandle;
}

function* coMutexEntry(a: { sh: Int32Array; m: CrossCoMutex }): CoroutineFn {
  const { sh, m } = a;
  while (Atomics.load(sh, SH.NOW_STOPPING) === 0) {
    yield* m.lock();
    sh[SH.COUNTER]++;
    m.unlock();
    // After the unlock, as in QEMU: otherwise the thread could exit before
    // the coroutine it handed the mutex to is woken.
    Atomics.add(sh, SH.ATOMIC_COUNTER, 1);
  }
  Atomics.sub(sh, SH.RUNNING, 1);
}

// deno-lint-ignore require-yield -- it blocks its whole thread instead, as the C test does
function* futexEntry(a: { sh: Int32Array; m: QemuMutex }): CoroutineFn {
  const { sh, m } = a;
  while (Atomics.load(sh, SH.NOW_STOPPING) === 0) {
    m.lock();
    sh[SH.COUNTER]++;
    m.unlock();
    Atomics.add(sh, SH.ATOMIC_COUNTER, 1);
  }
  Atomics.sub(sh, SH.RUNNING, 1);
}

// deno-lint-ignore require-yield -- it blocks its whole thread instead, as the C test does
function* mcsEntry(a: { sh: Int32Array; m: McsLock; node: number }): CoroutineFn {
  const { sh, m, node } = a;
  while (Atomics.load(sh, SH.NOW_STOPPING) === 0) {
    m.lock(node);
    sh[SH.COUNTER]++;
    m.unlock(node);
    Atomics.add(sh, SH.ATOMIC_COUNTER, 1);
  }
  Atomics.sub(sh, SH.RUNNING, 1);
}

/** Creates this thread's locking coroutine and aio_co_schedules it here. */
export function mutexStart(a: MutexArg): void {
  let co: Coroutine;
  switch (a.kind) {
    case "comutex":
      co = Coroutine.create(coMutexEntry, { sh: a.sh, m: new CrossCoMutex(a.comutex!) });
      break;
    case "futex":
      co = Coroutine.create(futexEntry, { sh: a.sh, m: new QemuMutex(a.futex!) });
      break;
    case "mcs":
      co = Coroutine.create(mcsEntry, { sh: a.sh, m: new McsLock(a.mcs!), node: id });
      break;
    default:
      throw new TypeError(`Unknown lock kind ${a.kind}`);
  }
  aioCoSchedule(ctx(), co);
}

// ---------------------------------------------------------------------------
// bench/iothread_bench.ts: a BH ping-pong between the main thread and here

let pong: { bh: ReturnType<AioContext["bhNew"]> } | null = null;

/**
 * Creates a shared BH here that schedules the caller's shared BH `peer`;
 * returns its slot (the caller already holds this thread's handle).
 */
export function pongSetup(a: { peer: RemoteBH }): number {
  const peer = a.peer;
  const bh = ctx().bhNew(() => RemoteAioContext.scheduleBh(peer), { name: "pong", shared: true });
  pong = { bh };
  return bh.remote().slot;
}

/** Deletes the pong BH. */
export function pongTeardown(): void {
  pong?.bh.delete();
  pong = null;
}

/** A request that answers at once, for round-trip timing. */
export function ping(x: number): number {
  return x + 1;
}

/** Enters coroutine `coId` of the caller's context (remote co-enter ping). */
export function coPing(a: { channel: RemoteRequestChannel; coId: number }): void {
  remoteCoEnter(a.channel, a.coId);
}

let heldGate: Int32Array | null = null;

/** Keeps `gate` in this thread for {@linkcode blockOnGate}. */
export function holdGate(gate: Int32Array): void {
  heldGate = gate;
}

/** Sets word 1 of the held gate (it is running), then blocks until word 0 becomes non-zero. */
export function blockOnGate(): number {
  const gate = heldGate!;
  Atomics.store(gate, 1, 1);
  while (Atomics.load(gate, 0) === 0) Atomics.wait(gate, 0, 0, 1000);
  return 0;
}

/** The counters of the current context's thread pool if it exists (without creating one). */
export function existingPoolStats(): ThreadPoolStats | null {
  const ctx = getCurrentAioContext()!;
  for (const v of internals(ctx).slots.values()) if (v instanceof ThreadPoolAio) return v.stats();
  return null;
}

/** Whether this thread can take the process's BQL right now (and gives it back). */
export function tryBql(): boolean {
  const m = bqlMutex();
  if (m === null) throw new Error("this thread has no BQL attached");
  if (!m.tryLock()) return false;
  m.unlock();
  return true;
}

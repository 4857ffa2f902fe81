/**
 * Deferred reclamation: run a callback once a grace period has passed
 * (QEMU's call_rcu1 and drain_call_rcu).
 *
 * A callback is a JS closure, and a closure cannot leave its isolate. So the
 * queue is per isolate and FIFO, and each isolate is its own "call_rcu
 * thread": its event loop batches requests as QEMU's thread does (it waits up
 * to 5 × 10 ms while fewer than 30 are pending), then starts a grace period
 * that it polls without blocking (one counter increment, then a 1 ms poll of
 * the readers that were inside a section at that moment), then runs every
 * callback queued before that start, in order. No extra Worker exists, so
 * nothing is left running once the queue is empty, and the process may exit.
 *
 * An isolate that never returns to its event loop (a Worker in a busy loop)
 * runs its due callbacks in {@linkcode drainCallRcu}. Callbacks that only
 * touch shared memory (an arena node going back to its free list) are as
 * correct in the queuing isolate as on QEMU's thread.
 *
 * Deviation from QEMU, plainly: QEMU runs every thread's callbacks on one
 * thread in one global FIFO (with the BQL held when there is one); aioloop
 * runs them in the isolate that queued them, FIFO per isolate. QEMU promises
 * no order across threads either.
 *
 * @module
 */
import { startGracePeriod } from "./_grace.ts";
import { cbSeq, IN_DRAIN, shared } from "./_state.ts";
import { rcuReadDepth, synchronizeRcu } from "./rcu.ts";

/** QEMU's call_rcu thread: start a grace period at 30 pending requests... */
const RCU_CALL_MIN_SIZE = 30;
/** ...or after 5 waits of 10 ms. */
const BATCH_TRIES = 5;
const BATCH_SLEEP_MS = 10;

const fns: (() => void)[] = [];
let head = 0;
/** seq of fns[head]; fns[head + k] has seq base + k. */
let base = 0;
let pumping = false;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Runs queued callbacks whose grace period completed, in order. */
function runDue(): void {
  let first: unknown = undefined;
  let failed = false;
  // Callbacks queued by callbacks have seq >= cbSeq.due and wait their turn.
  while (head < fns.length && base < cbSeq.due) {
    const fn = fns[head];
    fns[head++] = undefined as unknown as () => void;
    base++;
    try {
      fn();
    } catch (e) {
      if (!failed) {
        failed = true;
        first = e;
      }
    }
  }
  if (head === fns.length) {
    fns.length = 0;
    head = 0;
  } else if (head > 1024 && head * 2 > fns.length) {
    fns.splice(0, head);
    head = 0;
  }
  if (failed) throw first;
}

/** The BQL of this isolate, when the process has one (see rcuSetBqlHooks). */
let bql: RcuBqlHooks | null = null;

/** Runs due callbacks with the BQL held, as QEMU's call_rcu thread does. */
function runDueUnderBql(): void {
  if (bql === null || bql.locked()) return runDue();
  bql.lock();
  try {
    runDue();
  } finally {
    bql.unlock();
  }
}

async function pump(): Promise<void> {
  pumping = true;
  try {
    while (cbSeq.next > base) {
      for (let t = 0; t < BATCH_TRIES && cbSeq.next - base < RCU_CALL_MIN_SIZE; t++) {
        await sleep(BATCH_SLEEP_MS);
      }
      const target = cbSeq.next;
      if (cbSeq.due < target) {
        const done = startGracePeriod();
        while (!done()) await sleep(1);
        if (cbSeq.due < target) cbSeq.due = target;
      }
      runDueUnderBql();
    }
  } finally {
    pumping = false;
  }
}

/**
 * Queues `fn` to run in this isolate after a grace period: once every read
 * section open at the time of the call has ended. Callbacks of one isolate
 * run in the order they were queued.
 *
 * A callback that throws is reported as an uncaught error of this isolate
 * (like a throwing timer callback) after the rest of its batch ran; in
 * {@linkcode drainCallRcu} the first error is rethrown.
 *
 * The queue belongs to this isolate: a Worker must call
 * {@linkcode drainCallRcu} before it exits, or its pending callbacks are
 * lost with it.
 *
 * Counterpart: call_rcu1() (and call_rcu() / g_free_rcu()).
 * Thread: any thread that has the registry (a Worker after rcuAttach).
 *
 * @param fn The callback.
 * @throws {TypeError} If fn is not a function.
 *
 * @example A callback after a grace period
 * ```ts
 * import { callRcu, drainCallRcu } from "@aioloop/aioloop/rcu";
 * import { assertEquals } from "@std/assert";
 * const seen: number[] = [];
 * callRcu(() => seen.push(1));
 * callRcu(() => seen.push(2));
 * drainCallRcu();
 * assertEquals(seen, [1, 2]);
 * ```
 */
export function callRcu(fn: () => void): void {
  if (typeof fn !== "function") {
    throw new TypeError(`callRcu: fn must be a function, got ${typeof fn}`);
  }
  shared("callRcu");
  fns.push(fn);
  cbSeq.next++;
  if (!pumping) {
    pump().catch((e) => {
      // Surface a failing callback as this isolate's uncaught error.
      queueMicrotask(() => {
        throw e;
      });
    });
  }
}

/**
 * The number of callbacks this isolate has queued that have not run yet.
 *
 * Counterpart: none (QEMU's rcu_call_count is process-wide).
 * Thread: any thread.
 *
 * @returns The count.
 *
 * @example Empty after a drain
 * ```ts
 * import { callRcu, callRcuPending, drainCallRcu } from "@aioloop/aioloop/rcu";
 * import { assertEquals } from "@std/assert";
 * callRcu(() => {});
 * drainCallRcu();
 * assertEquals(callRcuPending(), 0);
 * ```
 */
export function callRcuPending(): number {
  return cbSeq.next - base;
}

/**
 * Waits for a grace period and runs every callback this isolate queued
 * before the call, in order, before returning. While it waits it turns on
 * force-quiescent-state: readers stuck in a section are asked to leave it
 * (see rcuForceQuiescentRequested and rcuSetForceRcuDoorbell).
 *
 * It blocks like {@linkcode synchronizeRcu}. When this isolate has a BQL
 * ({@linkcode rcuSetBqlHooks}), it drops it while waiting and holds it while
 * the callbacks run, as QEMU does.
 *
 * Counterpart: drain_call_rcu().
 * Thread: any thread that has the registry, outside any read section.
 *
 * @throws {Error} Inside a read section, or the first error a callback threw.
 *
 * @example Drain runs earlier callbacks
 * ```ts
 * import { callRcu, drainCallRcu } from "@aioloop/aioloop/rcu";
 * import { assertEquals } from "@std/assert";
 * let ran = false;
 * callRcu(() => {
 *   ran = true;
 * });
 * drainCallRcu();
 * assertEquals(ran, true);
 * ```
 */
export function drainCallRcu(): void {
  if (rcuReadDepth() > 0) {
    throw new Error(
      "drainCallRcu: called inside a read section, it would wait for itself; call rcuReadUnlock first",
    );
  }
  const w = shared("drainCallRcu");
  // As QEMU: the BQL is dropped while waiting, so that a thread the grace
  // period waits for can take it and leave its section.
  const held = bql !== null && bql.locked();
  if (held) bql!.unlock();
  Atomics.add(w, IN_DRAIN, 1);
  try {
    synchronizeRcu();
  } finally {
    Atomics.sub(w, IN_DRAIN, 1);
    if (held) bql!.lock();
  }
  runDueUnderBql();
}

/** The big QEMU lock as seen by RCU: see {@linkcode rcuSetBqlHooks}. */
export interface RcuBqlHooks {
  /** bql_locked(): whether this thread holds the BQL. */
  locked(): boolean;
  /** bql_lock(). */
  lock(): void;
  /** bql_unlock(). */
  unlock(): void;
}

/**
 * Tells RCU about this isolate's BQL. Once set, callbacks run with the BQL
 * held (QEMU's call_rcu thread takes it around each batch) and
 * {@linkcode drainCallRcu} drops it while it waits and takes it back before
 * returning. `null` (the default) is QEMU's unit-test stub: no BQL. The
 * layer that owns the BQL installs the hooks; rcu/ imports nothing above it.
 *
 * Counterpart: the bql_lock()/bql_unlock() calls in util/rcu.c.
 * Thread: any thread, for itself.
 *
 * @param hooks The BQL's lock, unlock and locked, or null.
 *
 * @example Callbacks run under the lock
 * ```ts
 * import { callRcu, drainCallRcu, rcuSetBqlHooks } from "@aioloop/aioloop/rcu";
 * import { assertEquals } from "@std/assert";
 * let held = false;
 * rcuSetBqlHooks({ locked: () => held, lock: () => void (held = true), unlock: () => void (held = false) });
 * let seen = false;
 * callRcu(() => {
 *   seen = held;
 * });
 * drainCallRcu();
 * rcuSetBqlHooks(null);
 * assertEquals([seen, held], [true, false]);
 * ```
 */
export function rcuSetBqlHooks(hooks: RcuBqlHooks | null): void {
  if (
    hooks !== null &&
    (typeof hooks?.lock !== "function" || typeof hooks.unlock !== "function" ||
      typeof hooks.locked !== "function")
  ) {
    throw new TypeError(
      "rcuSetBqlHooks: hooks must have lock, unlock and locked functions, or be null",
    );
  }
  bql = hooks;
}

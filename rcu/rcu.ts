/**
 * Read-copy-update across Workers (QEMU's util/rcu.c, the liburcu "mb"
 * flavour): wait-free nestable read sections, grace periods, the registry of
 * reader threads, force-quiescent-state.
 *
 * The registry lives in one SharedArrayBuffer for the whole process. The main
 * isolate creates it on first use; a Worker gets it as a handle posted at
 * start, exactly like an AioContext handle: `worker.postMessage(rcuHandle())`
 * in the parent, `rcuAttach(handle)` in the Worker before any other RCU call.
 *
 * Grace periods use QEMU's 64-bit-host scheme: one counter increment, then one
 * wait for the readers that were inside a section when it started. A reader
 * that enters while synchronizeRcu waits carries the new counter value and is
 * never waited for. The counter is an Int32 word (odd, +2 per grace period):
 * comparisons are modulo 2^32, so the only exposure is a reader stalled
 * between its counter load and its store for 2^30 grace periods.
 *
 * @module
 */
import { waitForReaders } from "./_grace.ts";
import {
  attach,
  cbSeq,
  FORCE,
  GP_CTR,
  GP_DONE,
  gpEvent,
  isolateId,
  MAX_READERS,
  NREG,
  regLock,
  S_CTR,
  S_DOORBELL,
  S_OWNER,
  S_WAIT,
  shared,
  SLOT_HWM,
  slotBase,
  syncLock,
} from "./_state.ts";

/** A structured-cloneable handle on the process-wide RCU registry. */
export interface RcuHandle {
  /** The registry's shared memory. */
  readonly buffer: SharedArrayBuffer;
}

// The read side touches only these module-level values: one Atomics.load and
// one Atomics.store per outermost lock, one store and one load per unlock.
let rw: Int32Array = new Int32Array(1);
let ctrIdx = -1;
let waitIdx = -1;
let depth = 0;

/**
 * Returns the handle to post to a Worker that will take part in RCU.
 *
 * Counterpart: none (QEMU's threads share one address space).
 * Thread: any thread that already uses RCU (the main isolate creates the
 * registry on first use).
 *
 * @returns The registry handle.
 *
 * @example The handle carries shared memory
 * ```ts
 * import { rcuHandle } from "@aioloop/aioloop/rcu";
 * import { assertEquals } from "@std/assert";
 * assertEquals(rcuHandle().buffer instanceof SharedArrayBuffer, true);
 * ```
 */
export function rcuHandle(): RcuHandle {
  return { buffer: shared("rcuHandle").buffer as SharedArrayBuffer };
}

/**
 * Attaches this isolate (a Worker) to the registry of the process.
 *
 * Call it once, before any other RCU call, with the handle from
 * {@linkcode rcuHandle}. Attaching again to the same registry is a no-op.
 *
 * Counterpart: none (QEMU's threads share one address space).
 * Thread: any thread; a Worker must call it before using RCU.
 *
 * @param handle The handle posted by the parent.
 * @throws {TypeError} If the handle is not an RCU registry.
 *
 * @example Attaching the main isolate to its own registry is a no-op
 * ```ts
 * import { rcuAttach, rcuHandle } from "@aioloop/aioloop/rcu";
 * import { assertEquals } from "@std/assert";
 * const h = rcuHandle();
 * rcuAttach(h);
 * assertEquals(rcuHandle().buffer, h.buffer);
 * ```
 */
export function rcuAttach(handle: RcuHandle): void {
  if (handle === null || typeof handle !== "object") {
    throw new TypeError("rcuAttach: handle must be the object returned by rcuHandle()");
  }
  attach(handle.buffer);
}

/**
 * Registers this thread as an RCU reader.
 *
 * Only registered threads may enter read sections; the main isolate is
 * registered automatically on its first {@linkcode rcuReadLock}, as QEMU's
 * constructor registers the main thread.
 *
 * A Worker must leave its sections and unregister before it ends: a slot
 * left inside a read section by a terminated Worker stalls every later
 * grace period, as a thread dying inside a section does in QEMU.
 *
 * Counterpart: rcu_register_thread().
 * Thread: any thread, once (unregister before registering again).
 *
 * @throws {Error} If this thread is already registered.
 * @throws {RangeError} If all 256 reader slots are taken.
 *
 * @example Register and unregister
 * ```ts
 * import { rcuIsRegistered, rcuRegisterThread, rcuUnregisterThread } from "@aioloop/aioloop/rcu";
 * import { assertEquals } from "@std/assert";
 * if (rcuIsRegistered()) rcuUnregisterThread();
 * rcuRegisterThread();
 * assertEquals(rcuIsRegistered(), true);
 * rcuUnregisterThread();
 * assertEquals(rcuIsRegistered(), false);
 * ```
 */
export function rcuRegisterThread(): void {
  if (ctrIdx >= 0) {
    throw new Error(
      "rcuRegisterThread: this thread is already registered; call rcuUnregisterThread first",
    );
  }
  const w = shared("rcuRegisterThread");
  regLock!.lock();
  try {
    for (let s = 0; s < MAX_READERS; s++) {
      const b = slotBase(s);
      if (Atomics.load(w, b + S_OWNER) !== 0) continue;
      Atomics.store(w, b + S_CTR, 0);
      Atomics.store(w, b + S_WAIT, 0);
      Atomics.store(w, b + S_DOORBELL, 0);
      Atomics.store(w, b + S_OWNER, isolateId);
      Atomics.add(w, NREG, 1);
      if (Atomics.load(w, SLOT_HWM) <= s) Atomics.store(w, SLOT_HWM, s + 1);
      rw = w;
      ctrIdx = b + S_CTR;
      waitIdx = b + S_WAIT;
      return;
    }
  } finally {
    regLock!.unlock();
  }
  throw new RangeError(
    `rcuRegisterThread: all ${MAX_READERS} RCU reader slots are in use; unregister threads that ended`,
  );
}

/**
 * Removes this thread from the reader registry.
 *
 * Counterpart: rcu_unregister_thread().
 * Thread: a registered thread, outside any read section.
 *
 * @throws {Error} If this thread is not registered or is inside a read section.
 *
 * @example Unregister after use
 * ```ts
 * import { rcuIsRegistered, rcuRegisterThread, rcuUnregisterThread } from "@aioloop/aioloop/rcu";
 * import { assertEquals } from "@std/assert";
 * if (!rcuIsRegistered()) rcuRegisterThread();
 * rcuUnregisterThread();
 * assertEquals(rcuIsRegistered(), false);
 * ```
 */
export function rcuUnregisterThread(): void {
  if (ctrIdx < 0) {
    throw new Error("rcuUnregisterThread: this thread is not registered");
  }
  if (depth > 0) {
    throw new Error(
      "rcuUnregisterThread: called inside a read section; call rcuReadUnlock first",
    );
  }
  const w = rw;
  const b = ctrIdx - S_CTR;
  regLock!.lock();
  Atomics.store(w, b + S_CTR, 0);
  Atomics.store(w, b + S_WAIT, 0);
  Atomics.store(w, b + S_DOORBELL, 0);
  Atomics.store(w, b + S_OWNER, 0);
  Atomics.sub(w, NREG, 1);
  regLock!.unlock();
  ctrIdx = -1;
  waitIdx = -1;
}

/**
 * Tells whether this thread is a registered RCU reader.
 *
 * Counterpart: none.
 * Thread: any thread.
 *
 * @returns True once {@linkcode rcuRegisterThread} ran (or the main isolate
 * auto-registered) and until {@linkcode rcuUnregisterThread}.
 *
 * @example A fresh Worker is not registered
 * ```ts
 * import { rcuIsRegistered, rcuRegisterThread } from "@aioloop/aioloop/rcu";
 * import { assertEquals } from "@std/assert";
 * if (!rcuIsRegistered()) rcuRegisterThread();
 * assertEquals(rcuIsRegistered(), true);
 * ```
 */
export function rcuIsRegistered(): boolean {
  return ctrIdx >= 0;
}

function notRegistered(): void {
  if (typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope === "undefined") {
    rcuRegisterThread(); // the main thread, as QEMU's rcu_init constructor
    return;
  }
  throw new Error(
    "rcuReadLock: this Worker is not an RCU reader; call rcuAttach(handle) and rcuRegisterThread() first",
  );
}

/**
 * Enters a read section. Sections nest; the call never blocks or locks.
 *
 * Inside a section, every record reached through an RCU read (an
 * `Atomics.load` of a published index) stays valid until the outermost
 * {@linkcode rcuReadUnlock}. Keep sections short: they delay grace periods.
 *
 * Counterpart: rcu_read_lock().
 * Thread: a registered thread (the main isolate registers itself).
 *
 * @throws {Error} On a Worker that is not registered.
 *
 * @example Nested sections
 * ```ts
 * import { rcuReadDepth, rcuReadLock, rcuReadUnlock } from "@aioloop/aioloop/rcu";
 * import { assertEquals } from "@std/assert";
 * rcuReadLock();
 * rcuReadLock();
 * assertEquals(rcuReadDepth(), 2);
 * rcuReadUnlock();
 * rcuReadUnlock();
 * assertEquals(rcuReadDepth(), 0);
 * ```
 */
export function rcuReadLock(): void {
  if (depth++ === 0) {
    if (ctrIdx < 0) {
      depth = 0;
      notRegistered();
      depth = 1;
    }
    // The snapshot is odd, so never 0; SC store then loads: no fence needed.
    Atomics.store(rw, ctrIdx, Atomics.load(rw, GP_CTR));
  }
}

/**
 * Leaves a read section; the outermost unlock ends it and, if an updater
 * waits for this reader, wakes it.
 *
 * Counterpart: rcu_read_unlock().
 * Thread: the thread that called {@linkcode rcuReadLock}.
 *
 * @throws {Error} If no read section is open (QEMU only asserts).
 *
 * @example An unbalanced unlock throws
 * ```ts
 * import { rcuReadDepth, rcuReadUnlock } from "@aioloop/aioloop/rcu";
 * import { assertEquals, assertThrows } from "@std/assert";
 * assertEquals(rcuReadDepth(), 0);
 * assertThrows(() => rcuReadUnlock());
 * ```
 */
export function rcuReadUnlock(): void {
  if (depth === 0) {
    throw new Error("rcuReadUnlock: no read section is open; unlock once per rcuReadLock");
  }
  if (--depth === 0) {
    Atomics.store(rw, ctrIdx, 0);
    // Store then load of the updater's word: SC gives QEMU's smp_mb here.
    if (Atomics.load(rw, waitIdx) !== 0) {
      Atomics.store(rw, waitIdx, 0);
      gpEvent!.set();
    }
  }
}

/**
 * The nesting depth of this thread's read sections (0 outside).
 *
 * Counterpart: none (QEMU keeps `depth` private).
 * Thread: any thread.
 *
 * @returns The depth.
 *
 * @example Outside any section
 * ```ts
 * import { rcuReadDepth } from "@aioloop/aioloop/rcu";
 * import { assertEquals } from "@std/assert";
 * assertEquals(rcuReadDepth(), 0);
 * ```
 */
export function rcuReadDepth(): number {
  return depth;
}

/**
 * Tells a reader stuck in a long read section that an updater in
 * {@linkcode drainCallRcu} asks it to leave the section (QEMU's force-RCU
 * notifier, seen from the reader: check it at safe points, as a TCG vCPU
 * leaves `cpu_exec`).
 *
 * Counterpart: the force_rcu notifiers of rcu_add_force_rcu_notifier().
 * Thread: a registered thread.
 *
 * @returns True while inside a section whose end an updater forces.
 *
 * @example Nobody forces a fresh section
 * ```ts
 * import { rcuForceQuiescentRequested, rcuReadLock, rcuReadUnlock } from "@aioloop/aioloop/rcu";
 * import { assertEquals } from "@std/assert";
 * rcuReadLock();
 * assertEquals(rcuForceQuiescentRequested(), false);
 * rcuReadUnlock();
 * ```
 */
export function rcuForceQuiescentRequested(): boolean {
  return depth > 0 && (Atomics.load(rw, waitIdx) & FORCE) !== 0;
}

/**
 * Sets the doorbell that force-quiescent-state rings for this reader: an
 * eventfd (or pipe write end) its AioContext polls, so a reader blocked in
 * `poll` wakes and can leave its section. `null` removes it.
 *
 * Counterpart: rcu_add_force_rcu_notifier() / rcu_remove_force_rcu_notifier()
 * (a notifier cannot run in another isolate; an fd write can).
 * Thread: a registered thread.
 *
 * @param fd The fd to write an 8-byte 1 to, or null.
 * @throws {Error} If this thread is not registered.
 * @throws {TypeError} If fd is not a non-negative integer or null.
 *
 * @example Set and clear
 * ```ts
 * import { rcuIsRegistered, rcuRegisterThread, rcuSetForceRcuDoorbell } from "@aioloop/aioloop/rcu";
 * import { assertEquals } from "@std/assert";
 * if (!rcuIsRegistered()) rcuRegisterThread();
 * rcuSetForceRcuDoorbell(null);
 * assertEquals(rcuIsRegistered(), true);
 * ```
 */
export function rcuSetForceRcuDoorbell(fd: number | null): void {
  if (ctrIdx < 0) throw new Error("rcuSetForceRcuDoorbell: this thread is not registered");
  if (fd !== null && (!Number.isInteger(fd) || fd < 0)) {
    throw new TypeError(
      `rcuSetForceRcuDoorbell: fd must be a non-negative integer or null, got ${fd}`,
    );
  }
  Atomics.store(rw, ctrIdx - S_CTR + S_DOORBELL, fd === null ? 0 : fd + 1);
}

/**
 * Waits until every read section that was open when the call started has
 * ended. Sections entered meanwhile are not waited for. Returns at once when
 * no thread is registered.
 *
 * It blocks the thread (and, on the main isolate, Deno's event loop) while it
 * waits, as QEMU's does; prefer {@linkcode callRcu} on the main isolate.
 *
 * Counterpart: synchronize_rcu().
 * Thread: any thread that has the registry, outside any read section.
 *
 * @throws {Error} Inside a read section (QEMU deadlocks there).
 *
 * @example No readers in the way
 * ```ts
 * import { rcuGracePeriods, synchronizeRcu } from "@aioloop/aioloop/rcu";
 * import { assertEquals } from "@std/assert";
 * synchronizeRcu();
 * assertEquals(rcuGracePeriods() >= 0, true);
 * ```
 */
export function synchronizeRcu(): void {
  if (depth > 0) {
    throw new Error(
      "synchronizeRcu: called inside a read section, it would wait for itself; call rcuReadUnlock first",
    );
  }
  const w = shared("synchronizeRcu");
  // Callbacks this isolate queued before now are due once this grace period ends.
  const due = cbSeq.next;
  syncLock!.lock();
  try {
    regLock!.lock();
    try {
      if (Atomics.load(w, NREG) !== 0) {
        const g = (Atomics.add(w, GP_CTR, 2) + 2) | 0;
        waitForReaders(w, g);
      }
      Atomics.add(w, GP_DONE, 1);
    } finally {
      regLock!.unlock();
    }
  } finally {
    syncLock!.unlock();
  }
  if (cbSeq.due < due) cbSeq.due = due;
}

/**
 * The number of grace periods completed in the process so far.
 *
 * Counterpart: none (statistics; QEMU's rcutorture counts updates itself).
 * Thread: any thread.
 *
 * @returns The count.
 *
 * @example Grows with synchronizeRcu
 * ```ts
 * import { rcuGracePeriods, synchronizeRcu } from "@aioloop/aioloop/rcu";
 * import { assertEquals } from "@std/assert";
 * const before = rcuGracePeriods();
 * synchronizeRcu();
 * assertEquals(rcuGracePeriods(), before + 1);
 * ```
 */
export function rcuGracePeriods(): number {
  return Atomics.load(shared("rcuGracePeriods"), GP_DONE);
}

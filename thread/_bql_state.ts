// The Big QEMU Lock's word and this thread's view of it. It lives this low
// so that aio/current.ts (qemu_get_current_aio_context's BQL fallback) and
// the main loop (which drops it around its poll) share the one flag that
// cpus/bql.ts maintains. The public API is cpus/bql.ts.
//
// The main isolate creates the lock when this module loads; a Worker has
// none until it attaches the main isolate's handle (the vCPU Workers do it
// at start-up). Without one, the BQL is QEMU's stub: never held, no lock.
import { QemuMutex } from "./mutex.ts";
import type { SharedWordHandle } from "./shared_word.ts";

import { IN_WORKER } from "./_isolate.ts";

let mutex: QemuMutex | null = IN_WORKER ? null : QemuMutex.create();
/** This thread owns the lock word. */
let held = false;
/** withCurrentAioContext(null) pretends to be a thread without the BQL. */
let masked = 0;
/** bql_block_unlock's counter. */
let unlockBlocked = 0;

/** The BQL mutex of this isolate, or null if it has none attached. */
export function bqlMutex(): QemuMutex | null {
  return mutex;
}

/** Attaches the process's BQL in a Worker (idempotent for the same lock). */
export function bqlAttachMutex(handle: SharedWordHandle): void {
  if (mutex !== null) {
    if (mutex.handle.sab === handle.sab && mutex.handle.index === handle.index) return;
    throw new Error("This thread already has a different BQL attached");
  }
  mutex = new QemuMutex(handle);
}

/** Whether this thread owns the lock word (masking aside). */
export function bqlOwned(): boolean {
  return held;
}

/** Records that this thread took (true) or released (false) the lock word. */
export function bqlSetOwned(v: boolean): void {
  held = v;
}

/** bql_locked(): owned and not masked by an emulated foreign thread. */
export function bqlVisible(): boolean {
  return held && masked === 0;
}

/**
 * Whether this is the main isolate, not standing in for a foreign thread:
 * QEMU's main thread, whose current context is the main one.
 */
export function mainThreadVisible(): boolean {
  return !IN_WORKER && masked === 0;
}

/** Starts (+1) or ends (-1) an emulated thread that does not hold the BQL. */
export function bqlMask(delta: 1 | -1): void {
  masked += delta;
}

/** bql_block_unlock's counter, with its overflow checks. */
export function bqlUnlockBlockedAdd(delta: 1 | -1): void {
  if (delta < 0 && unlockBlocked === 0) {
    throw new RangeError("bqlBlockUnlock(false) without a matching bqlBlockUnlock(true)");
  }
  unlockBlocked += delta;
}

/** Whether bql_unlock is currently forbidden. */
export function bqlUnlockBlocked(): boolean {
  return unlockBlocked > 0;
}

/**
 * For one main-loop iteration: takes the BQL if this thread has one and
 * does not hold it. Returns whether it took it (to release at the end).
 */
export function bqlIterationEnter(): boolean {
  if (mutex === null || held) return false;
  mutex.lock();
  held = true;
  return true;
}

/** Ends a main-loop iteration begun with {@linkcode bqlIterationEnter}. */
export function bqlIterationLeave(took: boolean): void {
  if (took && held && mutex !== null) {
    held = false;
    mutex.unlock();
  }
}

/** Right before the blocking wait: release the BQL if held; returns whether it was. */
export function bqlPollRelease(): boolean {
  if (mutex === null || !held) return false;
  held = false;
  mutex.unlock();
  return true;
}

/** Right after the wait: retake what {@linkcode bqlPollRelease} released. */
export function bqlPollReacquire(released: boolean): void {
  if (!released || mutex === null || held) return;
  mutex.lock();
  held = true;
}

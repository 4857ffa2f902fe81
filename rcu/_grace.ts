// Grace-period machinery shared by synchronizeRcu (blocking) and the call_rcu
// batching (polled): wait_for_readers() and force-quiescent-state.
import { write } from "../sys/fd.ts";
import {
  FORCE,
  GP_CTR,
  GP_DONE,
  gpEvent,
  IN_DRAIN,
  regLock,
  S_CTR,
  S_DOORBELL,
  S_OWNER,
  S_WAIT,
  shared,
  SLOT_HWM,
  slotBase,
  WAITING,
} from "./_state.ts";

const ONE = new Uint8Array(new BigUint64Array([1n]).buffer);

/** Sets FORCE on a busy reader slot and rings its doorbell (registry lock held). */
export function forceReader(w: Int32Array, b: number): void {
  if ((Atomics.or(w, b + S_WAIT, FORCE) & FORCE) !== 0) return;
  Atomics.notify(w, b + S_WAIT);
  const fd = Atomics.load(w, b + S_DOORBELL) - 1;
  if (fd >= 0) {
    try {
      write(fd, ONE);
    } catch {
      // A full or closed doorbell: the flag alone still asks the reader.
    }
  }
}

/** True when a snapshot `c` does not hold up the grace period that produced `g`. */
function quiescent(c: number, g: number): boolean {
  return c === 0 || ((c - g) | 0) >= 0;
}

// wait_for_readers(), with the registry lock held on entry and exit.
export function waitForReaders(w: Int32Array, g: number): void {
  let pending: number[] = [];
  const hwm = Atomics.load(w, SLOT_HWM);
  for (let s = 0; s < hwm; s++) {
    const b = slotBase(s);
    if (Atomics.load(w, b + S_OWNER) !== 0) pending.push(b);
  }
  for (;;) {
    gpEvent!.reset();
    for (const b of pending) Atomics.or(w, b + S_WAIT, WAITING);
    const busy: number[] = [];
    const drain = Atomics.load(w, IN_DRAIN) !== 0;
    for (const b of pending) {
      if (Atomics.load(w, b + S_OWNER) === 0 || quiescent(Atomics.load(w, b + S_CTR), g)) {
        Atomics.and(w, b + S_WAIT, ~WAITING);
        continue;
      }
      busy.push(b);
      if (drain) forceReader(w, b);
    }
    if (busy.length === 0) return;
    pending = busy;
    regLock!.unlock();
    gpEvent!.wait();
    regLock!.lock();
  }
}

/**
 * Starts a grace period without blocking: advances the counter and returns a
 * probe that tells, when polled, whether every reader that was inside a
 * section at the start has left it. Used by the call_rcu batching.
 */
export function startGracePeriod(): () => boolean {
  const w = shared("callRcu");
  const g = (Atomics.add(w, GP_CTR, 2) + 2) | 0;
  const slots: number[] = [];
  const snaps: number[] = [];
  const hwm = Atomics.load(w, SLOT_HWM);
  for (let s = 0; s < hwm; s++) {
    const b = slotBase(s);
    const c = Atomics.load(w, b + S_CTR);
    if (Atomics.load(w, b + S_OWNER) !== 0 && !quiescent(c, g)) {
      slots.push(b);
      snaps.push(c);
    }
  }
  return (): boolean => {
    const drain = Atomics.load(w, IN_DRAIN) !== 0;
    let k = 0;
    for (let i = 0; i < slots.length; i++) {
      const b = slots[i];
      // Leaving the section stores 0; a new one stores a value >= g: both differ.
      if (Atomics.load(w, b + S_OWNER) !== 0 && Atomics.load(w, b + S_CTR) === snaps[i]) {
        if (drain) forceReader(w, b);
        slots[k] = b;
        snaps[k++] = snaps[i];
      }
    }
    slots.length = k;
    snaps.length = k;
    if (k === 0) {
      Atomics.add(w, GP_DONE, 1);
      return true;
    }
    return false;
  };
}

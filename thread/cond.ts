/**
 * A condition variable shared between isolates.
 *
 * @module
 */
import type { SharedWordHandle } from "./shared_word.ts";
import { checkMs, openWords, placeWords } from "./_words.ts";
import type { QemuMutex } from "./mutex.ts";

// One sequence word: signal and broadcast bump it, waiters sleep on the
// value they read while still holding the mutex. A bump between that read
// and the sleep makes the sleep return at once, so no wake is lost, and
// signalling without the mutex is safe.
const SEQ = 0;

/**
 * A condition variable: wait releases the mutex and sleeps until a signal,
 * then retakes the mutex. Wakeups may be spurious (a broadcast, or a signal
 * meant for another waiter), so wait in a loop that re-checks the
 * condition under the mutex.
 *
 * Counterpart: `QemuCond` (`qemu_cond_wait`, `qemu_cond_timedwait`,
 * `qemu_cond_signal`, `qemu_cond_broadcast`).
 *
 * Thread: any.
 *
 * @example A timed wait that times out
 * ```ts
 * import { QemuCond, QemuMutex } from "@aioloop/aioloop/thread";
 * import { assertEquals } from "@std/assert";
 * const m = QemuMutex.create();
 * const c = QemuCond.create();
 * m.lock();
 * assertEquals(c.timedWait(m, 1), false);
 * assertEquals(m.locked, true);
 * m.unlock();
 * ```
 */
export class QemuCond {
  /** How many Int32 words a condition variable takes in shared memory. */
  static readonly WORDS: number = 1;
  #a: Int32Array;
  #handle: SharedWordHandle;

  /**
   * Opens a condition variable from its handle.
   *
   * @param handle What {@linkcode QemuCond.prototype.handle} returned.
   * @throws {TypeError} If the handle holds no SharedArrayBuffer.
   * @throws {RangeError} If its index leaves no room.
   */
  constructor(handle: SharedWordHandle) {
    this.#a = openWords(handle, QemuCond.WORDS, "QemuCond");
    this.#handle = { sab: handle.sab, index: handle.index };
  }

  /**
   * Creates a condition variable, in fresh shared memory or at `place`.
   *
   * Counterpart: `qemu_cond_init()`.
   *
   * @param place Where to put its word.
   * @returns The condition variable.
   */
  static create(place?: SharedWordHandle): QemuCond {
    const c = new QemuCond(placeWords(QemuCond.WORDS, place));
    Atomics.store(c.#a, SEQ, 0);
    return c;
  }

  /** The cloneable handle to post to other threads. */
  get handle(): SharedWordHandle {
    return this.#handle;
  }

  /**
   * Releases `mutex`, sleeps until signalled, retakes `mutex`.
   *
   * Counterpart: `qemu_cond_wait()`.
   *
   * @param mutex The mutex the caller holds.
   * @throws {Error} If `mutex` is not locked.
   */
  wait(mutex: QemuMutex): void {
    const seq = Atomics.load(this.#a, SEQ);
    mutex.unlock();
    Atomics.wait(this.#a, SEQ, seq);
    mutex.lock();
  }

  /**
   * As {@linkcode QemuCond.prototype.wait}, giving up after `ms`
   * milliseconds.
   *
   * Counterpart: `qemu_cond_timedwait()`.
   *
   * @param mutex The mutex the caller holds.
   * @param ms The longest sleep, in milliseconds.
   * @returns false if the time ran out, true if woken (maybe spuriously).
   * @throws {RangeError} If `ms` is negative or NaN.
   */
  timedWait(mutex: QemuMutex, ms: number): boolean {
    checkMs(ms, "QemuCond.timedWait");
    const seq = Atomics.load(this.#a, SEQ);
    mutex.unlock();
    const r = Atomics.wait(this.#a, SEQ, seq, ms);
    mutex.lock();
    return r !== "timed-out";
  }

  /**
   * Wakes one waiter.
   *
   * Counterpart: `qemu_cond_signal()`.
   */
  signal(): void {
    Atomics.add(this.#a, SEQ, 1);
    Atomics.notify(this.#a, SEQ, 1);
  }

  /**
   * Wakes every waiter.
   *
   * Counterpart: `qemu_cond_broadcast()`.
   */
  broadcast(): void {
    Atomics.add(this.#a, SEQ, 1);
    Atomics.notify(this.#a, SEQ);
  }
}

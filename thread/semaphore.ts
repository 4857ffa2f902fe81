/**
 * A counting semaphore shared between isolates.
 *
 * @module
 */
import type { SharedWordHandle } from "./shared_word.ts";
import { checkMs, openWords, placeWords } from "./_words.ts";

// The count, and how many threads sleep on it (post wakes only if some do).
const COUNT = 0;
const WAITERS = 1;

/**
 * A counting semaphore: post adds one and wakes one waiter; wait takes one,
 * sleeping while the count is 0.
 *
 * Counterpart: `QemuSemaphore` (`qemu_sem_init`, `qemu_sem_post`,
 * `qemu_sem_wait`, `qemu_sem_timedwait`).
 *
 * Thread: any.
 *
 * @example Counting
 * ```ts
 * import { QemuSemaphore } from "@aioloop/aioloop/thread";
 * import { assertEquals } from "@std/assert";
 * const s = QemuSemaphore.create(1);
 * s.wait();
 * assertEquals(s.timedWait(0), -1);
 * s.post();
 * assertEquals(s.timedWait(0), 0);
 * ```
 */
export class QemuSemaphore {
  /** How many Int32 words a semaphore takes in shared memory. */
  static readonly WORDS: number = 2;
  #a: Int32Array;
  #handle: SharedWordHandle;

  /**
   * Opens a semaphore from its handle.
   *
   * @param handle What {@linkcode QemuSemaphore.prototype.handle} returned.
   * @throws {TypeError} If the handle holds no SharedArrayBuffer.
   * @throws {RangeError} If its index leaves no room.
   */
  constructor(handle: SharedWordHandle) {
    this.#a = openWords(handle, QemuSemaphore.WORDS, "QemuSemaphore");
    this.#handle = { sab: handle.sab, index: handle.index };
  }

  /**
   * Creates a semaphore with an initial count.
   *
   * Counterpart: `qemu_sem_init()`.
   *
   * @param value The initial count, an integer >= 0.
   * @param place Where to put its words; default fresh shared memory.
   * @returns The semaphore.
   * @throws {RangeError} If `value` is not an integer in [0, 2^31 - 1].
   */
  static create(value: number, place?: SharedWordHandle): QemuSemaphore {
    if (!Number.isInteger(value) || value < 0 || value > 0x7fffffff) {
      throw new RangeError(`QemuSemaphore.create: value must be an integer >= 0, got ${value}`);
    }
    const s = new QemuSemaphore(placeWords(QemuSemaphore.WORDS, place));
    Atomics.store(s.#a, COUNT, value);
    Atomics.store(s.#a, WAITERS, 0);
    return s;
  }

  /** The cloneable handle to post to other threads. */
  get handle(): SharedWordHandle {
    return this.#handle;
  }

  /** The current count. */
  get value(): number {
    return Atomics.load(this.#a, COUNT);
  }

  /**
   * Adds one to the count and wakes one waiter.
   *
   * Counterpart: `qemu_sem_post()` (which aborts on overflow).
   *
   * @throws {RangeError} If the count would pass 2^31 - 1.
   */
  post(): void {
    const a = this.#a;
    for (;;) {
      const c = Atomics.load(a, COUNT);
      if (c === 0x7fffffff) throw new RangeError("QemuSemaphore.post: count overflow");
      if (Atomics.compareExchange(a, COUNT, c, c + 1) === c) break;
    }
    if (Atomics.load(a, WAITERS) > 0) Atomics.notify(a, COUNT, 1);
  }

  /** Takes one if the count is positive. */
  #tryTake(): boolean {
    const a = this.#a;
    for (;;) {
      const c = Atomics.load(a, COUNT);
      if (c === 0) return false;
      if (Atomics.compareExchange(a, COUNT, c, c - 1) === c) return true;
    }
  }

  /**
   * Takes one from the count, sleeping while it is 0.
   *
   * Counterpart: `qemu_sem_wait()`.
   */
  wait(): void {
    this.timedWait(Infinity);
  }

  /**
   * As {@linkcode QemuSemaphore.prototype.wait}, giving up after `ms`
   * milliseconds; `timedWait(0)` is a try-wait.
   *
   * Counterpart: `qemu_sem_timedwait()`; the same return values.
   *
   * @param ms The longest sleep, in milliseconds.
   * @returns 0 when one was taken, -1 when the time ran out.
   * @throws {RangeError} If `ms` is negative or NaN.
   */
  timedWait(ms: number): number {
    checkMs(ms, "QemuSemaphore.timedWait");
    const a = this.#a;
    // One deadline for the whole wait, as QEMU computes it once.
    const deadline = performance.now() + ms;
    for (;;) {
      if (this.#tryTake()) return 0;
      const left = ms === Infinity ? Infinity : deadline - performance.now();
      if (left <= 0) return -1;
      Atomics.add(a, WAITERS, 1);
      Atomics.wait(a, COUNT, 0, left);
      Atomics.sub(a, WAITERS, 1);
    }
  }
}

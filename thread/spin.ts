/**
 * A spin lock shared between isolates.
 *
 * @module
 */
import type { SharedWordHandle } from "./shared_word.ts";
import { openWords, placeWords } from "./_words.ts";

const VALUE = 0;

/**
 * A test-and-test-and-set spin lock: lock exchanges the word to 1 and, while
 * that finds it held, spins on plain loads until it reads 0. For very short
 * critical sections; a holder that is descheduled makes others burn CPU.
 *
 * Counterpart: `QemuSpin` (`qemu_spin_init`, `qemu_spin_lock`,
 * `qemu_spin_unlock`, `qemu_spin_locked`); see {@linkcode qemuSpinTrylock}
 * for QEMU's inverted trylock.
 *
 * Thread: any.
 *
 * @example Lock and peek
 * ```ts
 * import { QemuSpin } from "@aioloop/aioloop/thread";
 * import { assertEquals } from "@std/assert";
 * const s = QemuSpin.create();
 * s.lock();
 * assertEquals(s.locked, true);
 * assertEquals(s.tryLock(), false);
 * s.unlock();
 * ```
 */
export class QemuSpin {
  /** How many Int32 words a spin lock takes in shared memory. */
  static readonly WORDS: number = 1;
  #a: Int32Array;
  #handle: SharedWordHandle;

  /**
   * Opens a spin lock from its handle.
   *
   * @param handle What {@linkcode QemuSpin.prototype.handle} returned.
   * @throws {TypeError} If the handle holds no SharedArrayBuffer.
   * @throws {RangeError} If its index leaves no room.
   */
  constructor(handle: SharedWordHandle) {
    this.#a = openWords(handle, QemuSpin.WORDS, "QemuSpin");
    this.#handle = { sab: handle.sab, index: handle.index };
  }

  /**
   * Creates a free spin lock.
   *
   * Counterpart: `qemu_spin_init()`.
   *
   * @param place Where to put its word; default fresh shared memory.
   * @returns The lock.
   */
  static create(place?: SharedWordHandle): QemuSpin {
    const s = new QemuSpin(placeWords(QemuSpin.WORDS, place));
    Atomics.store(s.#a, VALUE, 0);
    return s;
  }

  /** The cloneable handle to post to other threads. */
  get handle(): SharedWordHandle {
    return this.#handle;
  }

  /**
   * Takes the lock, spinning while it is held.
   *
   * Counterpart: `qemu_spin_lock()`.
   */
  lock(): void {
    const a = this.#a;
    while (Atomics.exchange(a, VALUE, 1) !== 0) {
      while (Atomics.load(a, VALUE) !== 0) { /* cpu_relax */ }
    }
  }

  /**
   * Takes the lock if it is free.
   *
   * Counterpart: the negation of `qemu_spin_trylock()`.
   *
   * @returns Whether the lock was taken.
   */
  tryLock(): boolean {
    return Atomics.exchange(this.#a, VALUE, 1) === 0;
  }

  /**
   * Releases the lock.
   *
   * Counterpart: `qemu_spin_unlock()`.
   *
   * @throws {Error} If the lock is not held.
   */
  unlock(): void {
    if (Atomics.exchange(this.#a, VALUE, 0) === 0) {
      throw new Error("QemuSpin unlocked while not locked (lock it first)");
    }
  }

  /**
   * Whether some thread holds the lock (a peek).
   *
   * Counterpart: `qemu_spin_locked()`.
   */
  get locked(): boolean {
    return Atomics.load(this.#a, VALUE) !== 0;
  }
}

/**
 * Tries to take `spin`, with QEMU's return value: true when the lock was
 * busy (the attempt failed), false when it was taken. This is the reverse
 * of {@linkcode QemuSpin.prototype.tryLock}.
 *
 * Counterpart: `qemu_spin_trylock()`.
 *
 * Thread: any.
 *
 * @param spin The lock.
 * @returns true if busy (not taken), false if taken.
 *
 * @example QEMU's inverted meaning
 * ```ts
 * import { QemuSpin, qemuSpinTrylock } from "@aioloop/aioloop/thread";
 * import { assertEquals } from "@std/assert";
 * const s = QemuSpin.create();
 * assertEquals(qemuSpinTrylock(s), false);
 * assertEquals(qemuSpinTrylock(s), true);
 * s.unlock();
 * ```
 */
export function qemuSpinTrylock(spin: QemuSpin): boolean {
  return !spin.tryLock();
}

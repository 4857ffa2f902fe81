/**
 * A mutex shared between isolates.
 *
 * @module
 */
import type { SharedWordHandle } from "./shared_word.ts";
import { openWords, placeWords } from "./_words.ts";
import { futexLock, futexUnlock } from "./_futex.ts";

// Word 0 is the futex lock word; word 1 counts the lock() calls that
// had to wait.
const STATE = 0;
const CONTENDED = 1;

/**
 * A non-recursive mutex that blocks the calling thread (in `Atomics.wait`,
 * event loop included) while another thread holds it. As with a default
 * `pthread_mutex_t`, any thread may unlock it. Open the handle in each
 * Worker that uses it.
 *
 * Counterpart: `QemuMutex` (`qemu_mutex_init`, `qemu_mutex_lock`,
 * `qemu_mutex_trylock`, `qemu_mutex_unlock`), futex based as on Linux.
 *
 * Thread: any.
 *
 * @example Lock, try, unlock
 * ```ts
 * import { QemuMutex } from "@aioloop/aioloop/thread";
 * import { assertEquals } from "@std/assert";
 * const m = QemuMutex.create();
 * m.lock();
 * assertEquals(m.tryLock(), false);
 * m.unlock();
 * assertEquals(m.tryLock(), true);
 * m.unlock();
 * ```
 */
export class QemuMutex {
  /** How many Int32 words a mutex takes in shared memory. */
  static readonly WORDS: number = 2;
  #a: Int32Array;
  #handle: SharedWordHandle;

  /**
   * Opens a mutex from its handle (possibly posted from another thread).
   *
   * @param handle What {@linkcode QemuMutex.prototype.handle} returned, or a
   * place made by {@linkcode QemuMutex.create}.
   * @throws {TypeError} If the handle holds no SharedArrayBuffer.
   * @throws {RangeError} If its index leaves no room for the mutex.
   */
  constructor(handle: SharedWordHandle) {
    this.#a = openWords(handle, QemuMutex.WORDS, "QemuMutex");
    this.#handle = { sab: handle.sab, index: handle.index };
  }

  /**
   * Creates an unlocked mutex, in fresh shared memory or at `place`.
   *
   * Counterpart: `qemu_mutex_init()`.
   *
   * @param place Where to put its {@linkcode QemuMutex.WORDS} words (they
   * are reset); default a new SharedArrayBuffer.
   * @returns The mutex.
   */
  static create(place?: SharedWordHandle): QemuMutex {
    const m = new QemuMutex(placeWords(QemuMutex.WORDS, place));
    Atomics.store(m.#a, STATE, 0);
    Atomics.store(m.#a, CONTENDED, 0);
    return m;
  }

  /** The cloneable handle to post to other threads. */
  get handle(): SharedWordHandle {
    return this.#handle;
  }

  /**
   * Takes the mutex, sleeping until it is free.
   *
   * Counterpart: `qemu_mutex_lock()`.
   */
  lock(): void {
    futexLock(this.#a, STATE, CONTENDED);
  }

  /**
   * Takes the mutex if it is free.
   *
   * Counterpart: `qemu_mutex_trylock()`, which returns 0 on success and
   * -EBUSY otherwise; this returns a boolean instead.
   *
   * @returns Whether the mutex was taken.
   */
  tryLock(): boolean {
    return Atomics.compareExchange(this.#a, STATE, 0, 1) === 0;
  }

  /**
   * Releases the mutex and wakes one sleeper, if any.
   *
   * Counterpart: `qemu_mutex_unlock()`.
   *
   * @throws {Error} If the mutex is not locked.
   */
  unlock(): void {
    futexUnlock(this.#a, STATE, "QemuMutex");
  }

  /**
   * Takes the mutex and returns a guard whose disposal releases it.
   *
   * Counterpart: `QEMU_LOCK_GUARD()`.
   *
   * @returns The guard, for `using`.
   */
  guard(): Disposable {
    this.lock();
    return { [Symbol.dispose]: () => this.unlock() };
  }

  /** Whether some thread holds the mutex. */
  get locked(): boolean {
    return Atomics.load(this.#a, STATE) !== 0;
  }

  /** How many lock() calls found the mutex held and had to wait (the QSP lock profiler's count). */
  get contended(): number {
    return Atomics.load(this.#a, CONTENDED);
  }
}

/**
 * A recursive mutex shared between isolates.
 *
 * @module
 */
import type { SharedWordHandle } from "./shared_word.ts";
import { openWords, placeWords } from "./_words.ts";
import { futexLock, futexUnlock } from "./_futex.ts";
import { qemuGetThreadId } from "./thread_self.ts";

// The mutex word, its contention count, the owner's thread id, the depth.
const STATE = 0;
const CONTENDED = 1;
const OWNER = 2;
const DEPTH = 3;

/**
 * A mutex that the thread holding it may take again; it is free once every
 * lock is matched by an unlock. The owner is the OS thread id
 * ({@linkcode qemuGetThreadId}), so only the owner may unlock.
 *
 * Counterpart: `QemuRecMutex` (`qemu_rec_mutex_lock`,
 * `qemu_rec_mutex_trylock`, `qemu_rec_mutex_unlock`).
 *
 * Thread: any.
 *
 * @example Nesting
 * ```ts
 * import { QemuRecMutex } from "@aioloop/aioloop/thread";
 * import { assertEquals } from "@std/assert";
 * const m = QemuRecMutex.create();
 * m.lock();
 * m.lock();
 * assertEquals(m.depth, 2);
 * m.unlock();
 * m.unlock();
 * assertEquals(m.locked, false);
 * ```
 */
export class QemuRecMutex {
  /** How many Int32 words a recursive mutex takes in shared memory. */
  static readonly WORDS: number = 4;
  #a: Int32Array;
  #handle: SharedWordHandle;

  /**
   * Opens a recursive mutex from its handle.
   *
   * @param handle What {@linkcode QemuRecMutex.prototype.handle} returned.
   * @throws {TypeError} If the handle holds no SharedArrayBuffer.
   * @throws {RangeError} If its index leaves no room for the mutex.
   */
  constructor(handle: SharedWordHandle) {
    this.#a = openWords(handle, QemuRecMutex.WORDS, "QemuRecMutex");
    this.#handle = { sab: handle.sab, index: handle.index };
  }

  /**
   * Creates an unlocked recursive mutex, in fresh shared memory or at `place`.
   *
   * Counterpart: `qemu_rec_mutex_init()`.
   *
   * @param place Where to put its {@linkcode QemuRecMutex.WORDS} words.
   * @returns The mutex.
   */
  static create(place?: SharedWordHandle): QemuRecMutex {
    const m = new QemuRecMutex(placeWords(QemuRecMutex.WORDS, place));
    for (let i = 0; i < QemuRecMutex.WORDS; i++) Atomics.store(m.#a, i, 0);
    return m;
  }

  /** The cloneable handle to post to other threads. */
  get handle(): SharedWordHandle {
    return this.#handle;
  }

  /**
   * Takes the mutex, or deepens this thread's hold on it.
   *
   * Counterpart: `qemu_rec_mutex_lock()`.
   */
  lock(): void {
    const me = qemuGetThreadId();
    const a = this.#a;
    if (Atomics.load(a, OWNER) === me) {
      Atomics.add(a, DEPTH, 1);
      return;
    }
    futexLock(a, STATE, CONTENDED);
    Atomics.store(a, OWNER, me);
    Atomics.store(a, DEPTH, 1);
  }

  /**
   * Takes the mutex if it is free or already this thread's.
   *
   * Counterpart: `qemu_rec_mutex_trylock()` (0 on success there).
   *
   * @returns Whether this thread now holds it.
   */
  tryLock(): boolean {
    const me = qemuGetThreadId();
    const a = this.#a;
    if (Atomics.load(a, OWNER) === me) {
      Atomics.add(a, DEPTH, 1);
      return true;
    }
    if (Atomics.compareExchange(a, STATE, 0, 1) !== 0) return false;
    Atomics.store(a, OWNER, me);
    Atomics.store(a, DEPTH, 1);
    return true;
  }

  /**
   * Undoes one lock; the last one frees the mutex.
   *
   * Counterpart: `qemu_rec_mutex_unlock()`.
   *
   * @throws {Error} If the calling thread does not hold it.
   */
  unlock(): void {
    const a = this.#a;
    if (Atomics.load(a, OWNER) !== qemuGetThreadId()) {
      throw new Error("QemuRecMutex unlocked by a thread that does not hold it");
    }
    if (Atomics.sub(a, DEPTH, 1) === 1) {
      Atomics.store(a, OWNER, 0);
      futexUnlock(a, STATE, "QemuRecMutex");
    }
  }

  /**
   * Takes the mutex and returns a guard whose disposal undoes that lock.
   *
   * Counterpart: `QEMU_LOCK_GUARD()` on a `QemuRecMutex`.
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

  /** The holder's nesting depth (0 when free). */
  get depth(): number {
    return Atomics.load(this.#a, DEPTH);
  }
}

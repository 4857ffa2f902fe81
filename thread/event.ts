/**
 * A manual-reset event shared between isolates.
 *
 * @module
 */
import type { SharedWordHandle } from "./shared_word.ts";
import { openWords, placeWords } from "./_words.ts";

// The one word takes three values. Valid transitions: FREE→SET and
// BUSY→SET (set; the latter wakes every sleeper), SET→FREE (reset), and
// FREE→BUSY (a waiter announcing itself). BUSY never goes back to FREE:
// reset is an OR with 1, which leaves FREE and BUSY as they are, so a reset
// can never hide a sleeper from the next set.
const EV_SET = 0;
const EV_FREE = 1;
const EV_BUSY = -1;
const VALUE = 0;

/**
 * A manual-reset event: `set` releases every current and future waiter
 * until `reset`. Users follow QEMU's protocol: reset, re-check the
 * condition, then wait; the other side changes the condition, then sets.
 * Waiting is on a level, not a pulse: a set followed by a reset before a
 * waiter runs does not release it.
 *
 * Counterpart: `QemuEvent` (`qemu_event_init`, `qemu_event_set`,
 * `qemu_event_reset`, `qemu_event_wait`), the futex version of
 * util/event.c.
 *
 * Thread: any.
 *
 * @example Set before wait returns at once
 * ```ts
 * import { QemuEvent } from "@aioloop/aioloop/thread";
 * import { assertEquals } from "@std/assert";
 * const ev = QemuEvent.create(false);
 * ev.set();
 * ev.wait();
 * ev.reset();
 * assertEquals(ev.isSet, false);
 * ```
 */
export class QemuEvent {
  /** How many Int32 words an event takes in shared memory. */
  static readonly WORDS: number = 1;
  #a: Int32Array;
  #handle: SharedWordHandle;

  /**
   * Opens an event from its handle.
   *
   * @param handle What {@linkcode QemuEvent.prototype.handle} returned.
   * @throws {TypeError} If the handle holds no SharedArrayBuffer.
   * @throws {RangeError} If its index leaves no room.
   */
  constructor(handle: SharedWordHandle) {
    this.#a = openWords(handle, QemuEvent.WORDS, "QemuEvent");
    this.#handle = { sab: handle.sab, index: handle.index };
  }

  /**
   * Creates an event, set or free.
   *
   * Counterpart: `qemu_event_init()`.
   *
   * @param init Whether it starts set.
   * @param place Where to put its word; default fresh shared memory.
   * @returns The event.
   */
  static create(init: boolean, place?: SharedWordHandle): QemuEvent {
    const ev = new QemuEvent(placeWords(QemuEvent.WORDS, place));
    Atomics.store(ev.#a, VALUE, init ? EV_SET : EV_FREE);
    return ev;
  }

  /** The cloneable handle to post to other threads. */
  get handle(): SharedWordHandle {
    return this.#handle;
  }

  /** Whether the event is set (a peek; another thread may change it). */
  get isSet(): boolean {
    return Atomics.load(this.#a, VALUE) === EV_SET;
  }

  /**
   * Sets the event, waking every waiter if some sleep. Setting a set event
   * costs one load.
   *
   * Counterpart: `qemu_event_set()`.
   */
  set(): void {
    const a = this.#a;
    if (Atomics.load(a, VALUE) !== EV_SET) {
      if (Atomics.exchange(a, VALUE, EV_SET) === EV_BUSY) Atomics.notify(a, VALUE);
    }
  }

  /**
   * Resets a set event to free; leaves a free or busy one alone.
   *
   * Counterpart: `qemu_event_reset()`.
   */
  reset(): void {
    Atomics.or(this.#a, VALUE, EV_FREE);
  }

  /**
   * Sleeps until the event is set; returns at once if it is.
   *
   * Counterpart: `qemu_event_wait()`.
   */
  wait(): void {
    const a = this.#a;
    for (;;) {
      const v = Atomics.load(a, VALUE);
      if (v === EV_SET) return;
      // Announce a sleeper; no retry needed, as BUSY never turns FREE.
      if (v === EV_FREE && Atomics.compareExchange(a, VALUE, EV_FREE, EV_BUSY) === EV_SET) return;
      Atomics.wait(a, VALUE, EV_BUSY);
    }
  }
}

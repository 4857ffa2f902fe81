// Package-private access to Coroutine's #fields, for the modules that play
// the part of QEMU's coroutine_int.h users (co_schedule, locks, sleep).
// coroutine.ts fills the table from a static block; nothing here is public.
import type { Coroutine } from "./coroutine.ts";

/** Hooks into Coroutine state that only aio/ modules may use. */
export interface CoroutineInternals {
  /**
   * Compare-and-set of `co->scheduled`: stores `value` if the field equals
   * `expected`, and returns the field's previous value either way.
   */
  casScheduled(co: Coroutine, expected: string | null, value: string | null): string | null;
  /** Appends `co` to `self`'s wake-up queue (co_queue_wakeup). */
  queueWakeup(self: Coroutine, co: Coroutine): void;
  /** Adds `delta` to `co->locks_held`. */
  addLocksHeld(co: Coroutine, delta: number): void;
  /**
   * Called by a coroutine operation (a plain function returning its
   * generator) when it is called: counts the operation as not yet run in
   * the calling coroutine. Returns that coroutine, or null outside one.
   */
  opCreated(what: string): Coroutine | null;
  /**
   * The first statement of an operation's generator: it runs, so it is no
   * longer pending. Throws the misuse TypeError if another operation of
   * the same coroutine was called and never run (a `yield*` was missing).
   */
  opStarted(owner: Coroutine | null): void;
  /** Throws the misuse TypeError if `co` has an operation called and never run. */
  checkNoPendingOp(co: Coroutine): void;
}

/** Filled in by coroutine.ts when it loads. */
export const coInternals: CoroutineInternals = {} as CoroutineInternals;

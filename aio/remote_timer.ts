/**
 * Timers that other threads may arm and disarm: {@linkcode shareTimer}
 * gives a cloneable {@linkcode RemoteTimer}; a Worker then calls
 * `RemoteAioContext.timerMod` / `timerModNs` / `timerDel` on it.
 *
 * QEMU's timer_mod takes the list's lock from any thread. Here a timer
 * list belongs to its home isolate, so the request goes into a shared word
 * and a hidden shared BH applies it on the home thread: at the home's next
 * poll, whose BH pass runs before its timers, so a request for a time
 * already passed fires in that same poll.
 *
 * @module
 */
import type { AioContext } from "./aio_context.ts";
import type { QEMUTimer } from "./timer.ts";
import type { RemoteTimer } from "./handle.ts";
import { TIMER_REQ_DEL, TIMER_REQ_NONE } from "./_ctl_block.ts";
import { internals } from "./_internal.ts";

const shared = new WeakMap<QEMUTimer, RemoteTimer>();

/**
 * Makes `timer` modifiable from other threads and returns its cloneable
 * reference (the same one for every call with the same timer). The hidden
 * BH that applies remote requests lives until `ctx` is destroyed; requests
 * that reach a timer whose group is gone are dropped.
 *
 * Counterpart: handing a `QEMUTimer *` to another thread.
 *
 * Thread: home thread of `ctx` (the timer's isolate).
 *
 * @param ctx The context whose home thread applies the requests (the
 *   timer's context, for `ctx.timerNew` timers).
 * @param timer The timer.
 * @returns The reference to post to a Worker.
 * @throws {TypeError} If `timer` is not a QEMUTimer.
 * @throws {Deno.errors.BadResource} If `ctx` is destroyed.
 *
 * @example Sharing a timer
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext, QEMUClockType, SCALE_MS, shareTimer } from "@aioloop/aioloop/aio";
 * using ctx = AioContext.create();
 * const t = ctx.timerNew(QEMUClockType.REALTIME, SCALE_MS, () => {}, { name: "tick" });
 * const ref = shareTimer(ctx, t);
 * assertEquals([ref.name, ref.scale], ["tick", 1_000_000]);
 * ```
 */
export function shareTimer(ctx: AioContext, timer: QEMUTimer): RemoteTimer {
  if (timer === null || typeof timer !== "object" || typeof timer.modNs !== "function") {
    throw new TypeError("shareTimer needs a QEMUTimer");
  }
  const known = shared.get(timer);
  if (known !== undefined) return known;
  const request = new SharedArrayBuffer(8);
  const word = new BigInt64Array(request);
  word[0] = TIMER_REQ_NONE;
  const bh = ctx.bhNew(() => {
    const v = Atomics.exchange(word, 0, TIMER_REQ_NONE);
    if (v === TIMER_REQ_NONE) return;
    try {
      if (v === TIMER_REQ_DEL) timer.del();
      else timer.modNs(Number(v));
    } catch (e) {
      // The timer's group is destroyed: nothing is left to arm.
      if (!(e instanceof Deno.errors.BadResource)) throw e;
    }
  }, { name: `timer_share:${timer.name}`, shared: true });
  internals(ctx).destroyHooks.push(() => {
    shared.delete(timer);
    if (!bh.deleted) bh.delete();
  });
  const ref: RemoteTimer = Object.freeze({
    bh: bh.remote(),
    request,
    scale: timer.scale,
    clock: timer.clock,
    name: timer.name,
  });
  shared.set(timer, ref);
  return ref;
}

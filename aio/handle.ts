/**
 * Context handles: what crosses to other threads (Workers) so they can ring
 * an AioContext and schedule its bottom halves. A handle is plain data (a
 * SharedArrayBuffer and fd numbers), so it survives `postMessage`; no
 * closure ever crosses.
 *
 * @module
 */
import { CTL_DESTROYED, CTL_ID } from "./_ctl_block.ts";
import { ctlNotify, remoteBhSchedule } from "./_ctl_ops.ts";
import { ctlHeader, TIMER_REQ_DEL } from "./_ctl_block.ts";
import { adoptProcessClock } from "./_timer_list.ts";

// One Int32Array per block and isolate, so that scheduling allocates no view.
const views = new WeakMap<SharedArrayBuffer, Int32Array>();
function ctlOf(sab: SharedArrayBuffer): Int32Array {
  let v = views.get(sab);
  if (v === undefined) {
    v = ctlHeader(sab);
    views.set(sab, v);
  }
  return v;
}

/**
 * The structured-cloneable identity of an AioContext: its shared control
 * block, its doorbell fd and its id. Post it to a Worker and open it there
 * with {@linkcode RemoteAioContext}.
 *
 * Counterpart: the `AioContext *` that QEMU threads share.
 *
 * @example Sending a handle to a Worker
 * ```ts ignore
 * import { AioContext } from "@aioloop/aioloop";
 * using ctx = AioContext.create();
 * const worker = new Worker(new URL("./w.ts", import.meta.url), { type: "module" });
 * worker.postMessage(ctx.handle());
 * ```
 */
export interface AioContextHandle {
  /** The control block (notify_me, notified, remote BH flags ...). */
  readonly ctl: SharedArrayBuffer;
  /** The context id. */
  readonly id: number;
  /**
   * The process-wide clock state (VIRTUAL time, clock enable flags, context
   * ids): a Worker that opens the handle shares it from then on.
   */
  readonly clock?: SharedArrayBuffer;
}

/**
 * A bottom half made schedulable from other threads (`bhNew(cb, { shared:
 * true })`), as plain data.
 *
 * Counterpart: a `QEMUBH *` passed to another thread for `qemu_bh_schedule()`.
 *
 * @example Scheduling from a Worker
 * ```ts ignore
 * import { RemoteAioContext, type RemoteBH } from "@aioloop/aioloop";
 * self.onmessage = (e: MessageEvent<RemoteBH>) => RemoteAioContext.scheduleBh(e.data);
 * ```
 */
export interface RemoteBH {
  /** The owning context. */
  readonly handle: AioContextHandle;
  /** The BH's slot in the control block. */
  readonly slot: number;
  /**
   * The slot's generation when the reference was made: a reference to a
   * deleted BH is refused even once its slot serves another BH.
   */
  readonly generation: number;
  /** The BH's name, for messages. */
  readonly name: string;
}

/**
 * A timer made modifiable from other threads with `shareTimer(ctx, timer)`,
 * as plain data: post it to a Worker, which arms or disarms the timer with
 * {@linkcode RemoteAioContext.timerMod},
 * {@linkcode RemoteAioContext.timerModNs} and
 * {@linkcode RemoteAioContext.timerDel}.
 *
 * Counterpart: a `QEMUTimer *` passed to another thread for `timer_mod()` /
 * `timer_del()`.
 *
 * @example Arming a shared timer from a Worker
 * ```ts ignore
 * import { RemoteAioContext, type RemoteTimer } from "@aioloop/aioloop";
 * self.onmessage = (e: MessageEvent<RemoteTimer>) => RemoteAioContext.timerModNs(e.data, 0);
 * ```
 */
export interface RemoteTimer {
  /** The hidden BH that applies the request on the timer's home thread. */
  readonly bh: RemoteBH;
  /** The requested change: one 64-bit word (expiry in ns, or a marker). */
  readonly request: SharedArrayBuffer;
  /** ns per unit of `timerMod`'s argument (the timer's scale). */
  readonly scale: number;
  /** The timer's clock (a `QEMUClockType`). */
  readonly clock: number;
  /** The timer's name, for messages. */
  readonly name: string;
}

function checkRemoteTimer(t: RemoteTimer): BigInt64Array {
  if (!(t?.request instanceof SharedArrayBuffer) || t.request.byteLength < 8) {
    throw new TypeError("Not a RemoteTimer: pass what shareTimer() returned");
  }
  return new BigInt64Array(t.request, 0, 1);
}

// Stores the request (the last one before the home looks wins, as the last
// timer_mod does), then rings the hidden BH.
function remoteTimerRequest(t: RemoteTimer, word: BigInt64Array, v: bigint): void {
  Atomics.store(word, 0, v);
  RemoteAioContext.scheduleBh(t.bh);
}

/**
 * Another thread's view of an AioContext, opened from its handle.
 *
 * Counterpart: calling `aio_notify()` / `qemu_bh_schedule()` on a context
 * owned by another thread.
 *
 * Thread: any thread (this is the cross-thread door; the home thread may
 * use it too).
 *
 * @example Ringing a context from a Worker
 * ```ts ignore
 * import { type AioContextHandle, RemoteAioContext } from "@aioloop/aioloop";
 * self.onmessage = (e: MessageEvent<AioContextHandle>) => new RemoteAioContext(e.data).notify();
 * ```
 */
export class RemoteAioContext {
  #ctl: Int32Array;
  /** The context id. */
  readonly id: number;

  /**
   * Opens a handle.
   *
   * @param handle What `ctx.handle()` returned (possibly posted from another thread).
   */
  constructor(handle: AioContextHandle) {
    if (!(handle?.ctl instanceof SharedArrayBuffer)) {
      throw new TypeError("Not an AioContextHandle: ctl must be a SharedArrayBuffer");
    }
    this.#ctl = ctlOf(handle.ctl);
    this.id = Atomics.load(this.#ctl, CTL_ID);
    adoptProcessClock(handle.clock);
  }

  /** Whether the context was destroyed. */
  get destroyed(): boolean {
    return Atomics.load(this.#ctl, CTL_DESTROYED) !== 0;
  }

  /**
   * Wakes the context (aio_notify). No wake-up is lost: either the home
   * sees `notified` before it blocks, or the doorbell rings.
   *
   * Counterpart: `aio_notify()`.
   *
   * @throws {Deno.errors.BadResource} If the context was destroyed.
   *
   * @example Notify
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext, RemoteAioContext } from "@aioloop/aioloop";
   * using ctx = AioContext.create();
   * new RemoteAioContext(ctx.handle()).notify();
   * assertEquals(ctx.poll(true), false); // woken, nothing ran
   * ```
   */
  notify(): void {
    if (!ctlNotify(this.#ctl)) throw new Deno.errors.BadResource("AioContext was destroyed");
  }

  /**
   * Arms a shared timer from any thread: `expire` is in units of the
   * timer's scale, on its clock (`clockGetNs` reads the same process-wide
   * clocks in every isolate). The change is applied on the timer's home
   * thread at its next poll, before that poll runs its timers: a timer
   * already due then fires in that very poll. Requests made before the home
   * applies them collapse into the last one, as consecutive `timer_mod()`
   * calls do.
   *
   * Counterpart: `timer_mod()` from another thread.
   *
   * Thread: any thread.
   *
   * @param timer The timer's remote reference (`shareTimer(ctx, timer)`).
   * @param expire Absolute expiry in units of the timer's scale.
   * @throws {TypeError} If `timer` is not a RemoteTimer.
   * @throws {RangeError} If `expire` scaled to ns is not a safe integer.
   * @throws {Deno.errors.BadResource} If the context was destroyed.
   *
   * @example Arming from the handle (here on the same thread)
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext, QEMUClockType, RemoteAioContext, SCALE_MS, shareTimer } from "@aioloop/aioloop/aio";
   * using ctx = AioContext.create();
   * let fired = 0;
   * const t = ctx.timerNew(QEMUClockType.REALTIME, SCALE_MS, () => fired++);
   * RemoteAioContext.timerMod(shareTimer(ctx, t), 0);
   * ctx.poll(true);
   * assertEquals(fired, 1);
   * ```
   */
  static timerMod(timer: RemoteTimer, expire: number): void {
    const word = checkRemoteTimer(timer);
    const ns = expire * timer.scale;
    if (typeof expire !== "number" || !Number.isSafeInteger(ns)) {
      throw new RangeError(
        `Timer '${timer.name}': expire ${expire} × scale ${timer.scale} is not a safe integer of ns`,
      );
    }
    remoteTimerRequest(timer, word, BigInt(ns));
  }

  /**
   * {@linkcode RemoteAioContext.timerMod} with the expiry in ns.
   *
   * Counterpart: `timer_mod_ns()` from another thread.
   *
   * Thread: any thread.
   *
   * @param timer The timer's remote reference.
   * @param expireNs Absolute expiry in ns on the timer's clock.
   * @throws {TypeError} If `timer` is not a RemoteTimer.
   * @throws {RangeError} If `expireNs` is not a safe integer.
   * @throws {Deno.errors.BadResource} If the context was destroyed.
   *
   * @example Already due
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext, QEMUClockType, RemoteAioContext, shareTimer } from "@aioloop/aioloop/aio";
   * using ctx = AioContext.create();
   * let fired = 0;
   * const t = ctx.timerNew(QEMUClockType.REALTIME, 1, () => fired++);
   * RemoteAioContext.timerModNs(shareTimer(ctx, t), 0);
   * ctx.poll(true);
   * assertEquals(fired, 1);
   * ```
   */
  static timerModNs(timer: RemoteTimer, expireNs: number): void {
    const word = checkRemoteTimer(timer);
    if (!Number.isSafeInteger(expireNs)) {
      throw new RangeError(
        `Timer '${timer.name}': expireNs must be a safe integer, got ${expireNs}`,
      );
    }
    remoteTimerRequest(timer, word, BigInt(expireNs));
  }

  /**
   * Disarms a shared timer from any thread (applied at the home's next
   * poll, like {@linkcode RemoteAioContext.timerMod}).
   *
   * Counterpart: `timer_del()` from another thread.
   *
   * Thread: any thread.
   *
   * @param timer The timer's remote reference.
   * @throws {TypeError} If `timer` is not a RemoteTimer.
   * @throws {Deno.errors.BadResource} If the context was destroyed.
   *
   * @example Disarming
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext, QEMUClockType, RemoteAioContext, shareTimer } from "@aioloop/aioloop/aio";
   * using ctx = AioContext.create();
   * const t = ctx.timerNew(QEMUClockType.REALTIME, 1, () => {});
   * t.modNs(1e18);
   * RemoteAioContext.timerDel(shareTimer(ctx, t));
   * ctx.poll(false);
   * assertEquals(t.pending, false);
   * ```
   */
  static timerDel(timer: RemoteTimer): void {
    remoteTimerRequest(timer, checkRemoteTimer(timer), TIMER_REQ_DEL);
  }

  /**
   * Schedules a shared BH of this context.
   *
   * Counterpart: `qemu_bh_schedule()` from another thread.
   *
   * The schedule takes its place in the context's BH list as if
   * `schedule()` had been called at home at that moment: BHs run newest
   * schedule first, local and remote ones alike, and a `cancel()` at home
   * after this call wins.
   *
   * @param bh The BH's remote reference (`bh.remote()`).
   * @throws {Deno.errors.BadResource} If the context was destroyed, or the
   *   BH was deleted (the reference is stale).
   * @throws {TypeError} If `bh` is not a RemoteBH.
   *
   * @example Schedule through the handle
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext, RemoteAioContext } from "@aioloop/aioloop";
   * using ctx = AioContext.create();
   * let n = 0;
   * const bh = ctx.bhNew(() => n++, { shared: true });
   * RemoteAioContext.scheduleBh(bh.remote());
   * ctx.poll(true);
   * assertEquals(n, 1);
   * bh.delete();
   * ```
   */
  static scheduleBh(bh: RemoteBH): void {
    if (
      !(bh?.handle?.ctl instanceof SharedArrayBuffer) || !Number.isInteger(bh.generation) ||
      !Number.isInteger(bh.slot)
    ) {
      throw new TypeError("Not a RemoteBH: pass what bh.remote() returned");
    }
    adoptProcessClock(bh.handle.clock);
    remoteBhSchedule(ctlOf(bh.handle.ctl), bh.slot, bh.generation);
  }
}

/**
 * Bottom halves: util/async.c's QEMUBH and its list/slice machinery.
 *
 * @module
 */
import type { AioContextHandle, RemoteBH } from "./handle.ts";

import { BH_DELETED, BH_IDLE, BH_ONESHOT, BH_SCHEDULED } from "./_bh_list.ts";

/** What a BH needs from its context. */
export interface BhOwner {
  /** Queues the BH with new flags and kicks the context (aio_bh_enqueue). */
  bhEnqueue(bh: QEMUBH, flags: number): void;
  /** Throws if the context is destroyed. */
  checkAlive(): void;
  /** The context's handle, for remote references. */
  handle(): AioContextHandle;
  /** Moves schedules made by other threads onto the BH list, in order. */
  bhSyncRemote(): void;
}

/** Options for {@linkcode AioContext.prototype.bhNew}. */
export interface BhOptions {
  /** Debug name (QEMU uses the callback's name); shown by leak reports and `info aio`. */
  name?: string;
  /**
   * Reentrancy guard (MemReentrancyGuard): an object whose `engagedInIo`
   * flag is set while the callback runs and restored afterwards.
   */
  reentrancyGuard?: { engagedInIo: boolean };
  /**
   * Make the BH schedulable from other threads through
   * {@linkcode QEMUBH.prototype.remote} and the context's handle.
   */
  shared?: boolean;
}

/**
 * A bottom half: a callback that runs later, inside the context's poll, on
 * the context's home thread. Scheduling never runs it synchronously.
 *
 * Counterpart: `QEMUBH` (`aio_bh_new`, `qemu_bh_schedule`, `qemu_bh_cancel`,
 * `qemu_bh_delete`).
 *
 * Thread: home thread only (cross-thread scheduling goes through a context
 * handle).
 *
 * @example Schedule, then poll
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext } from "@aioloop/aioloop";
 * using ctx = AioContext.create();
 * let n = 0;
 * const bh = ctx.bhNew(() => n++);
 * bh.schedule();
 * assertEquals(n, 0);
 * assertEquals(ctx.poll(true), true);
 * assertEquals(n, 1);
 * bh.delete();
 * ```
 */
export class QEMUBH {
  /** Debug name. */
  readonly name: string;
  #owner: BhOwner;
  #cb: () => void;
  #guard: { engagedInIo: boolean } | undefined;
  /** @internal Flag word (BH_*); owned by the context's BH list. */
  flags = 0;
  /** @internal Slot in the control block for remote scheduling, or -1. */
  remoteSlot = -1;
  /** @internal Generation of that slot, carried by remote references. */
  remoteGen = 0;

  /** @internal Use {@linkcode AioContext.prototype.bhNew}. */
  constructor(owner: BhOwner, cb: () => void, options?: BhOptions, oneshot = false) {
    this.#owner = owner;
    this.#cb = cb;
    this.name = options?.name ?? (cb.name || "anonymous");
    this.#guard = options?.reentrancyGuard;
    if (oneshot) this.flags = BH_ONESHOT;
  }

  #check(): void {
    this.#owner.checkAlive();
    if (this.flags & BH_DELETED) {
      throw new Deno.errors.BadResource(`BH '${this.name}' was deleted`);
    }
  }

  /**
   * Schedules the BH: it runs once in a later poll. Scheduling a pending BH
   * keeps its place; scheduling from a BH callback defers to the next poll.
   *
   * Counterpart: `qemu_bh_schedule()`.
   *
   * @example Scheduling twice runs once
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext } from "@aioloop/aioloop";
   * using ctx = AioContext.create();
   * let n = 0;
   * const bh = ctx.bhNew(() => n++);
   * bh.schedule();
   * bh.schedule();
   * ctx.poll(false);
   * assertEquals(n, 1);
   * bh.delete();
   * ```
   */
  schedule(): void {
    this.#check();
    this.#owner.bhEnqueue(this, BH_SCHEDULED);
  }

  /**
   * Schedules the BH as idle: it does not make the context's timeout 0 (it
   * waits at most 10 ms) and its run does not count as progress.
   *
   * Counterpart: `qemu_bh_schedule_idle()`.
   *
   * @example An idle BH
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext } from "@aioloop/aioloop";
   * using ctx = AioContext.create();
   * let n = 0;
   * const bh = ctx.bhNew(() => n++);
   * bh.scheduleIdle();
   * assertEquals(ctx.poll(false), false);
   * assertEquals(n, 1);
   * bh.delete();
   * ```
   */
  scheduleIdle(): void {
    this.#check();
    this.#owner.bhEnqueue(this, BH_SCHEDULED | BH_IDLE);
  }

  /**
   * Cancels a scheduled run. The BH stays queued but is not called; no kick.
   *
   * Counterpart: `qemu_bh_cancel()`.
   *
   * @example Cancel before the poll
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext } from "@aioloop/aioloop";
   * using ctx = AioContext.create();
   * let n = 0;
   * const bh = ctx.bhNew(() => n++);
   * bh.schedule();
   * bh.cancel();
   * assertEquals(ctx.poll(false), false);
   * assertEquals(n, 0);
   * bh.delete();
   * ```
   */
  cancel(): void {
    this.#check();
    // A schedule from another thread that already happened is cancelled too.
    if (this.remoteSlot >= 0) this.#owner.bhSyncRemote();
    this.flags &= ~BH_SCHEDULED;
  }

  /**
   * Deletes the BH: cancels it and frees it on the next BH pass (which kicks
   * the context). Safe inside the BH's own callback. Any later use throws.
   *
   * Counterpart: `qemu_bh_delete()`.
   *
   * @example Delete from the callback
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext } from "@aioloop/aioloop";
   * using ctx = AioContext.create();
   * const bh = ctx.bhNew(() => bh.delete());
   * bh.schedule();
   * ctx.poll(true);
   * assertEquals(bh.deleted, true);
   * ```
   */
  delete(): void {
    this.#check();
    this.#owner.bhEnqueue(this, BH_DELETED);
  }

  /**
   * A cloneable reference that lets another thread schedule this BH (only
   * for BHs made with `shared: true`).
   *
   * Counterpart: passing the `QEMUBH *` to another thread.
   *
   * @returns The reference to post to a Worker.
   * @throws {TypeError} If the BH was not made shared.
   *
   * @example A shared BH
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext } from "@aioloop/aioloop";
   * using ctx = AioContext.create();
   * const bh = ctx.bhNew(() => {}, { shared: true });
   * assertEquals(typeof bh.remote().slot, "number");
   * bh.delete();
   * ```
   */
  remote(): RemoteBH {
    this.#check();
    if (this.remoteSlot < 0) {
      throw new TypeError(`BH '${this.name}' was not created with shared: true`);
    }
    return {
      handle: this.#owner.handle(),
      slot: this.remoteSlot,
      generation: this.remoteGen,
      name: this.name,
    };
  }

  /** Whether {@linkcode QEMUBH.prototype.delete} was called. */
  get deleted(): boolean {
    return (this.flags & BH_DELETED) !== 0;
  }

  /** Whether the BH is scheduled to run (`BH_SCHEDULED`). */
  get scheduled(): boolean {
    if (this.remoteSlot >= 0 && (this.flags & BH_DELETED) === 0) this.#owner.bhSyncRemote();
    return (this.flags & (BH_SCHEDULED | BH_DELETED)) === BH_SCHEDULED;
  }

  /** @internal Runs the callback under the reentrancy guard (aio_bh_call). */
  call(): void {
    const g = this.#guard;
    if (g === undefined) {
      this.#cb();
      return;
    }
    const prev = g.engagedInIo;
    g.engagedInIo = true;
    try {
      this.#cb();
    } finally {
      g.engagedInIo = prev;
    }
  }
}

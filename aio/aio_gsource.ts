/**
 * The AioContext as a GLib source (util/async.c's `aio_ctx_prepare`,
 * `aio_ctx_check`, `aio_ctx_dispatch`): attach
 * {@linkcode AioContext.prototype.getGSource} to a
 * {@linkcode GMainContext} and that context's iterations run the
 * AioContext's bottom halves, fd handlers and timers, polling its fds in the
 * same poll as every other source. This is how QEMU's main loop services
 * its two AioContexts.
 *
 * @module
 */
import { CTL_NOTIFY_ME } from "./_ctl_block.ts";
import { type AioInternals, internals } from "./_internal.ts";
import { SCALE_MS } from "./timer.ts";
import { GSource, type GSourceFunc, type GSourcePrepareResult } from "../glib/source.ts";
import type { GPollFD } from "../glib/gpollfd.ts";

/** The per-context record kept in `internals.slots`. */
interface GSourceSlot {
  source: AioGSource | null;
}

const SLOT = Symbol("aio_gsource");

/**
 * The source itself. In QEMU the AioContext *is* the GSource; here the
 * source is a separate object that the context owns (one reference), so its
 * lifetime is tied to the context's: destroying the context destroys the
 * source, destroying the source leaves the context alone.
 */
class AioGSource extends GSource<GSourceFunc> {
  readonly #i: AioInternals;
  // Reused by every prepare, so an iteration allocates nothing.
  readonly #prep: [boolean, number] = [false, -1];

  constructor(i: AioInternals) {
    super();
    this.#i = i;
    // A BH may run a nested iteration of the same GMainContext (QEMU's
    // aio_context_new sets this too).
    this.setCanRecurse(true);
  }

  protected override prepare(): GSourcePrepareResult {
    const i = this.#i;
    // Announce the coming poll before reading BH flags and timers; a
    // notifier that sees bit 0 rings the eventfd (Atomics are seq-cst: the
    // full barrier of aio_ctx_prepare).
    Atomics.or(i.ctl, CTL_NOTIFY_ME, 1);
    const timeoutNs = i.computeTimeout();
    // aio_prepare: poll mode off (the GLib loop cannot busy-wait) and the
    // fd monitor's gsource prepare (io_uring submits its SQEs here).
    i.posix.prepare();
    // The timeout in ms, unrounded (a fraction): GLib's own loop rounds
    // it up to whole ms for the public query result, while the main loop
    // and GMainContext iterations wait the exact ns (QEMU rounds up here;
    // a 300 us timer would then wait 1 ms).
    const r = this.#prep;
    r[0] = timeoutNs === 0;
    r[1] = timeoutNs < 0 ? -1 : timeoutNs / SCALE_MS;
    return r;
  }

  protected override check(): boolean {
    const i = this.#i;
    // The timeout is computed: no need to be rung any more.
    Atomics.and(i.ctl, CTL_NOTIFY_ME, ~1);
    i.notifyAccept();
    // Idle BHs count here (they only lengthen the timeout in prepare).
    // computeTimeout() === 0 covers expired timers and BHs scheduled from
    // other threads that are not on the local list yet.
    return i.bhList.anyScheduled() || i.posix.pending() || i.computeTimeout() === 0;
  }

  protected override dispatch(_callback: GSourceFunc | null): boolean {
    // BHs, then ready fd handlers, then timers (aio_dispatch). A callback
    // set on this source is never called, as QEMU asserts there is none.
    this.#i.posix.dispatch();
    return true;
  }
}

/**
 * What the GSource needs of its AioContext besides the internals table
 * (typed structurally so this file does not import the context back).
 */
export interface GSourceOwner {
  /** Whether the context was destroyed. */
  readonly destroyed: boolean;
  /** The context's name, for messages. */
  readonly name: string;
}

/**
 * The context's GSource, created on first use: one live source per context.
 * Its poll set is the set of fds the context's fd monitor wants in it (the
 * handlers' fds with fdmon-poll, the epoll or io_uring fd otherwise), kept in
 * step as handlers come and go. `AioContext.prototype.getGSource` calls this.
 *
 * - prepare sets bit 0 of `notify_me` (so that `notify()` rings the
 *   context's eventfd while the GMainContext may be polling), then reports
 *   the context's timeout (BHs and timers, in ms, unrounded) and is ready iff
 *   that timeout is 0;
 * - check clears bit 0, accepts the notification, and is ready if a BH is
 *   scheduled (idle ones included), a polled fd has an event some handler
 *   wants, or a timer is due;
 * - dispatch runs the BHs, the ready fd handlers, then the expired timers,
 *   and keeps the source attached.
 *
 * The source can recurse. The context holds one reference: destroying the
 * context destroys the source (detaching it from its GMainContext) and drops
 * that reference; destroying the source (or its GMainContext) leaves the
 * context working, and the next call makes a new source. A callback set on
 * the source is never called.
 *
 * Counterpart: `aio_get_g_source()` (without the extra reference: take one
 * with `ref()` to keep the source past the context's destroy).
 *
 * Thread: home thread only.
 *
 * @param ctx The context.
 * @returns The context's live source.
 * @throws {Deno.errors.BadResource} When the context is destroyed.
 *
 * @example Running a context from a GMainContext
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext } from "@aioloop/aioloop";
 * import { GMainContext } from "@aioloop/aioloop/glib";
 * using ctx = AioContext.create();
 * const gctx = new GMainContext();
 * ctx.getGSource().attach(gctx); // AioContext.prototype.getGSource calls aioGetGSource
 * let ran = false;
 * ctx.bhScheduleOneshot(() => ran = true);
 * assertEquals(gctx.iteration(false), true);
 * assertEquals(ran, true);
 * gctx.destroy();
 * ```
 */
export function aioGetGSource(ctx: GSourceOwner): GSource<GSourceFunc> {
  if (ctx.destroyed) throw new Deno.errors.BadResource(`AioContext '${ctx.name}' was destroyed`);
  const i = internals(ctx);
  let slot = i.slots.get(SLOT) as GSourceSlot | undefined;
  if (slot === undefined) {
    const s: GSourceSlot = { source: null };
    slot = s;
    i.slots.set(SLOT, s);
    i.destroyHooks.push(() => release(i, s));
  }
  const cur = slot.source;
  if (cur !== null && !cur.isDestroyed()) return cur;
  // The previous source was destroyed from outside (or its GMainContext
  // was): a destroyed GSource cannot be attached again, so start afresh.
  if (cur !== null) release(i, slot);
  const source = new AioGSource(i);
  slot.source = source;
  // GSource.addPoll rejects a record added twice; the fd monitors never
  // do that, but a set makes the hooks idempotent whatever they do.
  const polled = new Set<GPollFD>();
  const add = (pfd: GPollFD): void => {
    if (polled.has(pfd) || source.isDestroyed()) return;
    polled.add(pfd);
    source.addPoll(pfd);
  };
  for (const pfd of i.gsourcePolls) add(pfd);
  i.gsource = {
    addPoll: add,
    removePoll(pfd: GPollFD): void {
      if (polled.delete(pfd)) source.removePoll(pfd);
    },
  };
  return source;
}

/** Detaches and drops the context's reference to its source. */
function release(i: AioInternals, slot: GSourceSlot): void {
  const s = slot.source;
  if (s === null) return;
  slot.source = null;
  i.gsource = null;
  try {
    s.destroy();
  } finally {
    s.unref();
  }
}

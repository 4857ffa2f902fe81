/**
 * Coroutine scheduling across AioContexts: the `aio_co_*` helpers of
 * util/async.c.
 *
 * - {@linkcode aioCoSchedule} queues a coroutine on a context; the context's
 *   `co_schedule_bh` enters every queued coroutine, in scheduling order, in
 *   its next poll.
 * - {@linkcode aioCoEnter} enters at once when the target context is current,
 *   queues on the running coroutine's wake-up list when called from a
 *   coroutine of that context, and schedules otherwise.
 * - {@linkcode aioCoWake} does that for the context the coroutine last ran in.
 * - {@linkcode aioCoRescheduleSelf} moves the running coroutine to another
 *   context.
 *
 * Cross-isolate scheduling ("schedule coroutine #id" rung through a
 * context's doorbell from a Worker) is not here yet: a coroutine lives in one
 * isolate, and every function below acts within it.
 *
 * @example Schedule a coroutine into a context
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext, aioCoSchedule, Coroutine } from "@aioloop/aioloop";
 * using ctx = AioContext.create();
 * let ran = false;
 * const co = Coroutine.create(function* () {
 *   ran = true;
 * });
 * aioCoSchedule(ctx, co);
 * assertEquals(ran, false);
 * assertEquals(co.scheduled, "aio_co_schedule");
 * ctx.poll(true);
 * assertEquals(ran, true);
 * assertEquals(co.scheduled, null);
 * ```
 *
 * @module
 */
import type { AioContext } from "./aio_context.ts";
import type { QEMUBH } from "./bh.ts";
import {
  Coroutine,
  type CoroutineFn,
  coroutineYield,
  inCoroutine,
  qemuAioCoroutineEnter,
} from "./coroutine.ts";
import { getCurrentAioContext, withCurrentAioContext } from "./current.ts";
import { coInternals } from "./_coroutine_internal.ts";
import { internals } from "./_internal.ts";

const SCHEDULED = "aio_co_schedule";
const SLOT = Symbol("co_schedule");

/** Per-context state: ctx->scheduled_coroutines and ctx->co_schedule_bh. */
interface CoScheduleState {
  list: Coroutine[];
  bh: QEMUBH;
}

function stateOf(ctx: AioContext): CoScheduleState {
  const ints = internals(ctx);
  let st = ints.slots.get(SLOT) as CoScheduleState | undefined;
  if (st === undefined) {
    const state: CoScheduleState = {
      list: [],
      bh: ctx.bhNew(() => coScheduleBh(ctx, state), { name: "co_schedule_bh" }),
    };
    st = state;
    ints.slots.set(SLOT, st);
    ints.destroyHooks.push(() => {
      // aio_ctx_finalize asserts that nothing is left scheduled.
      state.bh.delete();
      ints.slots.delete(SLOT);
      const n = state.list.length;
      state.list = [];
      if (n > 0) {
        throw new Error(`AioContext destroyed with ${n} coroutine(s) still scheduled`);
      }
    });
  }
  return st;
}

/** co_schedule_bh_cb: enter every coroutine scheduled so far, FIFO. */
function coScheduleBh(ctx: AioContext, st: CoScheduleState): void {
  const list = st.list;
  if (list.length === 0) return;
  st.list = [];
  withCurrentAioContext(ctx, () => {
    let i = 0;
    try {
      for (; i < list.length; i++) {
        const co = list[i];
        coInternals.casScheduled(co, SCHEDULED, null);
        qemuAioCoroutineEnter(ctx, co);
      }
    } catch (e) {
      // The error leaves poll(); the coroutines not yet entered stay
      // scheduled, ahead of any scheduled meanwhile, for the next poll.
      const rest = list.slice(i + 1);
      if (rest.length > 0) {
        st.list = rest.concat(st.list);
        st.bh.schedule();
      }
      throw e;
    }
  });
}

/**
 * Schedules `co` to be entered in `ctx` by the context's next poll.
 * Coroutines scheduled on one context are entered in scheduling order.
 *
 * Counterpart: `aio_co_schedule()`.
 *
 * Thread: home thread of `ctx` (the isolate that owns both).
 *
 * @param ctx The context to run the coroutine in.
 * @param co The coroutine; it must not be scheduled or sleeping already.
 * @throws {Error} "Co-routine was already scheduled in '<name>'" if `co` is
 * already scheduled (or sleeping); the first scheduling stands.
 * @throws {Deno.errors.BadResource} If `ctx` is destroyed.
 *
 * @example FIFO order
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext, aioCoSchedule, Coroutine } from "@aioloop/aioloop";
 * using ctx = AioContext.create();
 * const order: number[] = [];
 * for (const i of [1, 2, 3]) {
 *   aioCoSchedule(ctx, Coroutine.create(function* () { order.push(i); }));
 * }
 * ctx.poll(true);
 * assertEquals(order, [ 1, 2, 3 ]);
 * ```
 */
export function aioCoSchedule(ctx: AioContext, co: Coroutine): void {
  if (ctx === null || typeof ctx !== "object") {
    throw new TypeError("Cannot schedule a coroutine without an AioContext");
  }
  if (!(co instanceof Coroutine)) throw new TypeError("Not a Coroutine");
  if (ctx.destroyed) throw new Deno.errors.BadResource("AioContext is destroyed");
  if (co.done) throw new Deno.errors.BadResource("Co-routine has terminated");
  const st = stateOf(ctx);
  const old = coInternals.casScheduled(co, null, SCHEDULED);
  if (old !== null) throw new Error(`Co-routine was already scheduled in '${old}'`);
  st.list.push(co);
  st.bh.schedule();
}

/**
 * Runs `co` in `ctx`: scheduled if `ctx` is not the current context; queued
 * on the running coroutine's wake-up list (to run after it yields or ends)
 * when called from a coroutine; entered at once otherwise.
 *
 * Counterpart: `aio_co_enter()`.
 *
 * Thread: home isolate; with the current context forced to null
 * ({@linkcode withCurrentAioContext}) it behaves as from a foreign thread.
 *
 * @param ctx The context to run `co` in (null only when no context is
 * current either).
 * @param co The coroutine.
 * @throws {Error} If `co` is the running coroutine, or as
 * {@linkcode aioCoSchedule} and {@linkcode Coroutine.prototype.enter}.
 *
 * @example Queued behind the running coroutine
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { aioCoEnter, Coroutine } from "@aioloop/aioloop";
 * const log: string[] = [];
 * const b = Coroutine.create(function* () { log.push("b"); });
 * const a = Coroutine.create(function* () {
 *   aioCoEnter(null, b);
 *   log.push("a");
 * });
 * a.enter();
 * assertEquals(log, [ "a", "b" ]);
 * ```
 */
export function aioCoEnter(ctx: AioContext | null, co: Coroutine): void {
  if (ctx !== getCurrentAioContext()) {
    if (ctx === null) {
      throw new TypeError("Cannot enter a coroutine in a null AioContext from a context");
    }
    aioCoSchedule(ctx, co);
    return;
  }
  if (inCoroutine()) {
    const self = Coroutine.self();
    if (self === co) throw new Error("A coroutine cannot wake itself");
    if (!(co instanceof Coroutine)) throw new TypeError("Not a Coroutine");
    coInternals.queueWakeup(self, co);
    return;
  }
  qemuAioCoroutineEnter(ctx, co);
}

/**
 * Wakes `co` in the context it last ran in ({@linkcode Coroutine.prototype.ctx}),
 * by the rules of {@linkcode aioCoEnter}.
 *
 * Counterpart: `aio_co_wake()`.
 *
 * Thread: home isolate.
 *
 * @param co A yielded coroutine.
 * @throws {Error} As {@linkcode aioCoEnter}.
 *
 * @example Waking a parked coroutine
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { aioCoWake, Coroutine } from "@aioloop/aioloop";
 * let n = 0;
 * const co = Coroutine.create(function* () {
 *   n++;
 *   yield;
 *   n++;
 * });
 * co.enter();
 * aioCoWake(co); // no context anywhere: entered directly
 * assertEquals(n, 2);
 * ```
 */
export function aioCoWake(co: Coroutine): void {
  aioCoEnter(co.ctx, co);
}

/**
 * Moves the running coroutine to `newCtx`: a oneshot BH in the current
 * (old) context schedules it into `newCtx`, then it yields; it resumes when
 * `newCtx` polls. Going through the old context's BH guarantees the
 * coroutine has yielded before anyone can enter it. A no-op if `newCtx` is
 * already current.
 *
 * Counterpart: `aio_co_reschedule_self()`.
 *
 * Thread: inside a coroutine only.
 *
 * @param newCtx The context to continue in.
 * @returns A coroutine function to run with `yield*`.
 * @throws {Error} Outside a coroutine, or when no context is current.
 *
 * @example Hop from one context to another
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext, aioCoRescheduleSelf, Coroutine, getCurrentAioContext, withCurrentAioContext } from "@aioloop/aioloop";
 * using a = AioContext.create();
 * using b = AioContext.create();
 * const seen: string[] = [];
 * const co = Coroutine.create(function* () {
 *   seen.push(getCurrentAioContext()!.name);
 *   yield* aioCoRescheduleSelf(b);
 *   seen.push(getCurrentAioContext()!.name);
 * });
 * withCurrentAioContext(a, () => co.enter());
 * withCurrentAioContext(a, () => a.poll(false)); // a's BH schedules co into b
 * b.poll(false); // b enters co
 * assertEquals(seen[0] === a.name, true);
 * assertEquals(seen[1] === b.name, true);
 * ```
 */
export function* aioCoRescheduleSelf(newCtx: AioContext): CoroutineFn {
  if (!inCoroutine()) throw new Error("aioCoRescheduleSelf() must be called from a coroutine");
  const oldCtx = getCurrentAioContext();
  if (oldCtx === newCtx) return;
  if (oldCtx === null) {
    throw new Error("aioCoRescheduleSelf() needs a current AioContext to leave");
  }
  const self = Coroutine.self();
  oldCtx.bhScheduleOneshot(() => aioCoSchedule(newCtx, self), "aio_co_reschedule_self_bh");
  yield* coroutineYield();
}

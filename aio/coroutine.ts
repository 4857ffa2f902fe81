/**
 * Coroutines: util/qemu-coroutine.c on JavaScript generators.
 *
 * A QEMU coroutine is stackful; here its body is a **generator function**.
 * Entering a coroutine runs the generator synchronously until the body
 * yields or returns, exactly as `qemu_coroutine_enter` switches to the
 * coroutine and comes back when it yields or terminates.
 *
 * The convention, in full:
 *
 * - A coroutine body is `function* (arg) { ... }`, given to
 *   {@linkcode Coroutine.create}. A bare `yield;` in it is
 *   `qemu_coroutine_yield()`. Bodies yield nothing else: yielding a value
 *   (usually a forgotten `*` in `yield* f()`) throws a `TypeError` into the
 *   body.
 * - A `coroutine_fn` that may block (CoMutex lock, CoQueue wait, sleep,
 *   anything that yields) is itself a generator function returning
 *   {@linkcode CoroutineFn}, and is called with `yield*`:
 *   `yield* mutex.lock()`. Its result is the value of the `yield*`
 *   expression. Functions that can never yield (`mutex.unlock()`,
 *   `queue.next()`, `aioCoWake(co)`) are plain functions.
 * - Library generators yield through {@linkcode coroutineYield}, which
 *   throws "Co-routine is yielding to no one" when driven outside a
 *   coroutine, as QEMU aborts.
 *
 * A forgotten `*` is not a silent no-op. `yield m.lock()` throws a
 * `TypeError` into the body at once. `m.lock();` as a plain statement (or
 * a generator kept for later) is found when the coroutine next runs an
 * operation, yields or ends, and throws a `TypeError` naming the operation
 * there; `mutex.unlock()` checks too. This covers the operations of this
 * package (`coroutineYield`, `CoMutex.lock`, `CoQueue.wait`/`waitFlags`,
 * `CoRwlock` methods, `coSleep*`, `lockableLock`); not (yet) `coAwait`,
 * `aioCoRescheduleSelf` or the thread pool's `submitCo`. It cannot cover
 * your own generator functions called without `yield*` (their bodies never
 * start), nor operations called outside any coroutine.
 *
 * Entering is a trampoline: wake-ups that a coroutine queues (with
 * `aioCoEnter` or `aioCoWake` on its own context) run from the enterer's loop
 * after the coroutine yields or ends, depth-first, never nested inside it, so
 * ping-pong between two coroutines does not grow the stack. A body that
 * enters another coroutine directly (`child.enter()`) runs it as a nested
 * step, as QEMU does; that nesting is bounded by the JS stack (1000 levels
 * work; a few thousand end in a `RangeError`, with state left consistent).
 *
 * No AioContext is needed: with none current, wake-ups resolve to "same
 * context (null)" and queue or enter directly. For promises, see
 * `coroutineToPromise` and `coAwait`.
 *
 * Errors: QEMU aborts on misuse; here the same conditions throw an `Error`
 * with QEMU's message. A body that throws terminates its coroutine; the error
 * reaches the `enter()` call that ran it, after the wake-ups already pending
 * in that enter loop have run (so no coroutine handed a lock or a wake-up is
 * lost). Several errors from one loop become an `AggregateError`.
 *
 * Thread: a coroutine lives in the isolate that created it and never moves.
 *
 * @example A coroutine that takes a lock and yields
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { CoMutex, Coroutine, type CoroutineFn } from "@aioloop/aioloop";
 *
 * const log: string[] = [];
 * const m = new CoMutex();
 * function* critical(name: string): CoroutineFn {
 *   yield* m.lock();
 *   log.push(`${name} in`);
 *   yield; // qemu_coroutine_yield()
 *   log.push(`${name} out`);
 *   m.unlock();
 * }
 * const a = Coroutine.create(critical, "a");
 * const b = Coroutine.create(critical, "b");
 * a.enter(); // a takes the lock and yields
 * b.enter(); // b queues on the lock and yields
 * a.enter(); // a unlocks and ends; then b runs until its own yield
 * b.enter();
 * assertEquals(log, ["a in", "a out", "b in", "b out"]);
 * ```
 *
 * @module
 */
import type { AioContext } from "./aio_context.ts";
import { getCurrentAioContext } from "./current.ts";
import { coInternals } from "./_coroutine_internal.ts";
import { coroutineHooks } from "./_internal.ts";

/**
 * What a coroutine function returns: a generator that yields `void` (each
 * yield is `qemu_coroutine_yield`) and returns `R`. Call it with `yield*`.
 *
 * Counterpart: a `coroutine_fn` that may yield.
 *
 * @typeParam R The value the `yield*` expression produces.
 *
 * @example A coroutine function returning a value
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Coroutine, type CoroutineFn } from "@aioloop/aioloop";
 * function* twice(x: number): CoroutineFn<number> {
 *   yield;
 *   return 2 * x;
 * }
 * let out = 0;
 * const co = Coroutine.create(function* () {
 *   out = yield* twice(21);
 * });
 * co.enter();
 * co.enter();
 * assertEquals(out, 42);
 * ```
 */
export type CoroutineFn<R = void> = Generator<void, R, unknown>;

/**
 * A coroutine body: a generator function taking the coroutine's argument.
 * Its return value is ignored.
 *
 * Counterpart: `CoroutineEntry`.
 *
 * @typeParam A The argument type (`opaque` in QEMU).
 *
 * @example A body
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Coroutine, type CoroutineEntry } from "@aioloop/aioloop";
 * const body: CoroutineEntry<{ n: number }> = function* (s) {
 *   s.n++;
 * };
 * const s = { n: 0 };
 * Coroutine.create(body, s).enter();
 * assertEquals(s.n, 1);
 * ```
 */
export type CoroutineEntry<A> = (arg: A) => CoroutineFn<unknown>;

// Coroutine states; DONE and FAILED are terminated.
const LIVE = 0;
const LEADER = 1;
const DONE = 2;
const FAILED = 3;

// Set by Coroutine's static block: the trampoline needs its #fields.
let enterImpl: (ctx: AioContext | null, co: Coroutine) => void;
// The running coroutine; the leader pseudo-coroutine outside any.
let current: Coroutine;

const YIELD_VALUE_MESSAGE =
  "Coroutine yielded a value: call coroutine functions with yield*, and yield nothing else";

function yieldValueMessage(value: unknown): string {
  const v = value as { next?: unknown; [Symbol.iterator]?: unknown } | null;
  if (
    v !== null && typeof v === "object" && typeof v.next === "function" &&
    typeof v[Symbol.iterator] === "function"
  ) {
    return "Coroutine yielded a generator: write `yield* op()`, not `yield op()`, " +
      "to run a coroutine operation";
  }
  return YIELD_VALUE_MESSAGE;
}

function misuseMessage(what: string): string {
  return `${what} was called but never run: coroutine operations are generators and do ` +
    `nothing until run with yield* (write \`yield* ${what}\`)`;
}

/**
 * A coroutine: a generator-backed body that can be entered, yields back to
 * its enterer, and is woken through its AioContext.
 *
 * States as QEMU derives them: *created* (never entered), *entered*
 * (`entered` is true), *yielded*, *scheduled* (`scheduled` is not null) and
 * *terminated* (`done`).
 *
 * Counterpart: `Coroutine` (include/qemu/coroutine.h).
 *
 * Thread: home thread only (the isolate that created it).
 *
 * @example Yield and re-enter
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Coroutine } from "@aioloop/aioloop";
 * const steps: number[] = [];
 * const co = Coroutine.create(function* () {
 *   steps.push(1);
 *   yield;
 *   steps.push(2);
 * });
 * co.enter();
 * co.enter();
 * assertEquals(steps, [ 1, 2 ]);
 * assertEquals(co.done, true);
 * ```
 */
export class Coroutine {
  static {
    // A module binding, not a static field: it is read on every entry.
    current = new Coroutine(null, undefined, true);
  }

  #entry: CoroutineEntry<any> | null;
  #arg: unknown;
  #gen: CoroutineFn<unknown> | null = null;
  #caller: Coroutine | null = null;
  #ctx: AioContext | null = null;
  #scheduled: string | null = null;
  #locksHeld = 0;
  #wakeup: Coroutine[] | null = null;
  #state: number;
  // The body's error once FAILED; the termination promise's resolvers while
  // someone awaits a live coroutine. Few fields keep create() cheap.
  #error: unknown = undefined;
  #termination: PromiseWithResolvers<void> | null = null;
  #promise: Promise<void> | null = null;
  // Operations called in this coroutine whose generator has not started
  // (a missing yield*), and the first one's name for the error.
  #unstarted = 0;
  #unstartedWhat = "";

  static {
    coInternals.casScheduled = (co, expected, value) => {
      const old = co.#scheduled;
      if (old === expected) co.#scheduled = value;
      return old;
    };
    coInternals.queueWakeup = (self, co) => {
      (self.#wakeup ??= []).push(co);
    };
    coInternals.addLocksHeld = (co, delta) => {
      co.#locksHeld += delta;
    };
    coInternals.opCreated = (what) => {
      const co = current;
      if (co.#state === LEADER) return null;
      if (co.#unstarted++ === 0) co.#unstartedWhat = what;
      return co;
    };
    coInternals.opStarted = (owner) => {
      if (owner === null) return;
      if (owner.#unstarted > 0) owner.#unstarted--;
      if (owner.#unstarted !== 0) throw Coroutine.#misuse(owner);
    };
    coInternals.checkNoPendingOp = (co) => {
      if (co.#unstarted !== 0) throw Coroutine.#misuse(co);
    };
  }

  /** The error for an operation called without yield*; forgets the count. */
  static #misuse(co: Coroutine): TypeError {
    co.#unstarted = 0;
    return new TypeError(misuseMessage(co.#unstartedWhat));
  }

  private constructor(entry: CoroutineEntry<any> | null, arg: unknown, isLeader: boolean) {
    this.#entry = entry;
    this.#arg = arg;
    this.#state = isLeader ? LEADER : LIVE;
  }

  /**
   * Creates a coroutine that will run `entry()` when first entered.
   * Nothing of the body runs before that.
   *
   * Counterpart: `qemu_coroutine_create()`.
   *
   * Thread: any code in the isolate.
   *
   * @param entry A generator function: the body.
   * @returns The new coroutine, in the *created* state.
   * @throws {TypeError} If `entry` is not a function.
   *
   * @example Create and enter
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { Coroutine } from "@aioloop/aioloop";
   * let done = false;
   * const co = Coroutine.create(function* () {
   *   done = true;
   * });
   * assertEquals(done, false);
   * assertEquals(co.entered, false);
   * co.enter();
   * assertEquals(done, true);
   * assertEquals(co.done, true);
   * ```
   */
  static create(entry: CoroutineEntry<undefined>): Coroutine;
  /**
   * Creates a coroutine that will run `entry(arg)` when first entered.
   *
   * Counterpart: `qemu_coroutine_create()`.
   *
   * @typeParam A The argument type.
   * @param entry A generator function: the body.
   * @param arg The argument given to `entry`.
   * @returns The new coroutine, in the *created* state.
   *
   * @example With an argument
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { Coroutine } from "@aioloop/aioloop";
   * const box = { n: 0 };
   * Coroutine.create(function* (b: { n: number }) {
   *   b.n = 1;
   * }, box).enter();
   * assertEquals(box.n, 1);
   * ```
   */
  static create<A>(entry: CoroutineEntry<A>, arg: A): Coroutine;
  static create<A>(entry: CoroutineEntry<A>, arg?: A): Coroutine {
    if (typeof entry !== "function") {
      throw new TypeError("Coroutine entry must be a generator function");
    }
    return new Coroutine(entry, arg, false);
  }

  /**
   * The running coroutine, or outside any coroutine the isolate's leader
   * pseudo-coroutine: never null. The leader cannot be entered.
   *
   * Counterpart: `qemu_coroutine_self()`.
   *
   * @returns The current coroutine.
   *
   * @example Inside and outside
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { Coroutine } from "@aioloop/aioloop";
   * const outside = Coroutine.self();
   * let inside: Coroutine | null = null;
   * const co = Coroutine.create(function* () {
   *   inside = Coroutine.self();
   * });
   * co.enter();
   * assertEquals(inside === co, true);
   * assertEquals(outside === Coroutine.self(), true);
   * ```
   */
  static self(): Coroutine {
    return current;
  }

  /**
   * True while the coroutine is on the active call chain (running, or
   * waiting for a coroutine it entered): its caller link is set.
   *
   * Counterpart: `qemu_coroutine_entered()`.
   *
   * @example A yielded coroutine is not entered
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { Coroutine } from "@aioloop/aioloop";
   * let seen = false;
   * const co = Coroutine.create(function* () {
   *   seen = Coroutine.self().entered;
   *   yield;
   * });
   * co.enter();
   * assertEquals(seen, true);
   * assertEquals(co.entered, false);
   * ```
   */
  get entered(): boolean {
    return this.#caller !== null;
  }

  /**
   * True once the body has returned or thrown. A terminated coroutine cannot
   * be entered again.
   *
   * Counterpart: none (QEMU returns the coroutine to its pool).
   *
   * @example After the body returns
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { Coroutine } from "@aioloop/aioloop";
   * const co = Coroutine.create(function* () {});
   * co.enter();
   * assertEquals(co.done, true);
   * ```
   */
  get done(): boolean {
    return this.#state >= DONE;
  }

  /**
   * The AioContext of the coroutine's last entry (null if it has never run
   * or ran with no current context). `aioCoWake` wakes it there.
   *
   * Counterpart: `Coroutine.ctx`.
   *
   * @example No context
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { Coroutine } from "@aioloop/aioloop";
   * const co = Coroutine.create(function* () {});
   * co.enter();
   * assertEquals(co.ctx, null);
   * ```
   */
  get ctx(): AioContext | null {
    return this.#ctx;
  }

  /**
   * Who scheduled the coroutine ("aio_co_schedule", or "qemu_co_sleep_ns"
   * while it sleeps), or null. Entering a scheduled coroutine throws.
   *
   * Counterpart: `Coroutine.scheduled`.
   *
   * @example Not scheduled
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { Coroutine } from "@aioloop/aioloop";
   * assertEquals(Coroutine.create(function* () {}).scheduled, null);
   * ```
   */
  get scheduled(): string | null {
    return this.#scheduled;
  }

  /**
   * How many coroutine locks (CoMutex, CoRwlock) the coroutine holds. It must
   * be 0 when the body ends.
   *
   * Counterpart: `Coroutine.locks_held`.
   *
   * @example Counting a held mutex
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { CoMutex, Coroutine } from "@aioloop/aioloop";
   * const m = new CoMutex();
   * let held = -1;
   * Coroutine.create(function* () {
   *   yield* m.lock();
   *   held = Coroutine.self().locksHeld;
   *   m.unlock();
   * }).enter();
   * assertEquals(held, 1);
   * ```
   */
  get locksHeld(): number {
    return this.#locksHeld;
  }

  /**
   * A promise that settles when the coroutine terminates: fulfilled when the
   * body returns, rejected with its error when it throws. The body runs on
   * enters only; the promise merely observes it.
   *
   * Counterpart: none (a promise adapter).
   *
   * @example Awaiting termination
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { Coroutine } from "@aioloop/aioloop";
   * const co = Coroutine.create(function* () {
   *   yield;
   * });
   * co.enter();
   * const p = co.promise;
   * co.enter();
   * await p;
   * assertEquals(co.done, true);
   * ```
   */
  get promise(): Promise<void> {
    if (this.#promise === null) {
      if (this.#state === FAILED) this.#promise = Promise.reject(this.#error);
      else if (this.#state === DONE) this.#promise = Promise.resolve();
      else {
        this.#termination = Promise.withResolvers<void>();
        this.#promise = this.#termination.promise;
      }
    }
    return this.#promise;
  }

  /**
   * Enters the coroutine in the current AioContext (which may be null) and
   * returns when it, and every wake-up it queued, has yielded or ended.
   *
   * Counterpart: `qemu_coroutine_enter()`.
   *
   * Thread: home thread only.
   *
   * @throws {Error} "Co-routine re-entered recursively" if it is entered,
   * "Co-routine was already scheduled in '<name>'" if it is scheduled or
   * sleeping, "Co-routine terminated with N locks held" if it ends holding
   * locks, or whatever the body threw.
   * @throws {Deno.errors.BadResource} If it has terminated.
   *
   * @example Enter twice
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { Coroutine } from "@aioloop/aioloop";
   * let n = 0;
   * const co = Coroutine.create(function* () {
   *   n++;
   *   yield;
   *   n++;
   * });
   * co.enter();
   * co.enter();
   * assertEquals(n, 2);
   * ```
   */
  enter(): void {
    enterImpl(getCurrentAioContext(), this);
  }

  /**
   * Enters the coroutine unless it is already entered.
   *
   * Counterpart: `qemu_coroutine_enter_if_inactive()`.
   *
   * Thread: home thread only.
   *
   * @example A running coroutine is left alone
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { Coroutine } from "@aioloop/aioloop";
   * let n = 0;
   * const co = Coroutine.create(function* () {
   *   n++;
   *   Coroutine.self().enterIfInactive(); // no-op: already entered
   * });
   * co.enterIfInactive();
   * assertEquals(n, 1);
   * ```
   */
  enterIfInactive(): void {
    if (this.#caller === null) this.enter();
  }

  /** QEMU's abort checks, made before a coroutine is switched to. */
  static #check(to: Coroutine): void {
    if (to.#scheduled !== null) {
      throw new Error(`Co-routine was already scheduled in '${to.#scheduled}'`);
    }
    if (to.#caller !== null) throw new Error("Co-routine re-entered recursively");
    if (to.#state !== LIVE) {
      if (to.#state === LEADER) {
        throw new TypeError("The leader pseudo-coroutine cannot be entered");
      }
      throw new Deno.errors.BadResource("Co-routine has terminated");
    }
  }

  /** Switches to `to` until it yields or ends; rethrows what the body threw. */
  static #run(from: Coroutine, to: Coroutine, ctx: AioContext | null): void {
    to.#caller = from;
    to.#ctx = ctx;
    current = to;
    let r: IteratorResult<void, unknown>;
    try {
      const gen = to.#gen ?? Coroutine.#start(to);
      r = gen.next();
      // The common case: a bare yield or the end, with no operation left
      // unrun. Anything else is a misuse, handled off the hot path.
      if ((!r.done && r.value !== undefined) || to.#unstarted !== 0) {
        r = Coroutine.#misused(to, gen, r);
      }
    } catch (e) {
      current = from;
      Coroutine.#terminate(to, true, e);
      return;
    }
    current = from;
    if (r.done) Coroutine.#terminate(to, false, undefined);
    else to.#caller = null;
  }

  /** Makes the body's generator at first entry, refusing what is not one. */
  static #start(to: Coroutine): CoroutineFn<unknown> {
    const entry = to.#entry!;
    const arg = to.#arg;
    to.#entry = null;
    to.#arg = undefined;
    const gen = entry(arg);
    if (
      gen === null || typeof gen !== "object" || typeof gen.next !== "function" ||
      Symbol.asyncIterator in gen
    ) {
      // An async generator's next() returns a promise: it cannot be
      // entered synchronously.
      throw new TypeError("Coroutine entry must be a generator function");
    }
    to.#gen = gen;
    return gen;
  }

  /** Throws the misuse errors into the body until it stops misusing. */
  static #misused(
    to: Coroutine,
    gen: CoroutineFn<unknown>,
    r: IteratorResult<void, unknown>,
  ): IteratorResult<void, unknown> {
    for (;;) {
      if (!r.done && r.value !== undefined) {
        // `yield op()` made an operation it will never run: one error.
        to.#unstarted = 0;
        r = gen.throw(new TypeError(yieldValueMessage(r.value)));
      } else if (to.#unstarted !== 0) {
        // An operation called as a plain statement (`m.lock();`), found
        // at the body's next yield or its end.
        const e = Coroutine.#misuse(to);
        if (r.done) throw e;
        r = gen.throw(e);
      } else return r;
    }
  }

  static #terminate(co: Coroutine, threw: boolean, error: unknown): void {
    co.#caller = null;
    co.#gen = null;
    const held = co.#locksHeld;
    if (held !== 0) {
      const what = `${held} lock${held === 1 ? "" : "s"} held`;
      error = threw
        ? new Error(`Co-routine threw with ${what}`, { cause: error })
        : new Error(`Co-routine terminated with ${what}`);
      threw = true;
    }
    co.#state = threw ? FAILED : DONE;
    if (threw) co.#error = error;
    const t = co.#termination;
    if (t !== null) {
      co.#termination = null;
      if (threw) t.reject(error);
      else t.resolve();
    }
    if (threw) throw error;
  }

  static {
    enterImpl = (ctx, co) => {
      const from = current;
      // The common case runs one coroutine that queued no wake-ups; a
      // refused first entry has run nothing, so its error is thrown as is.
      Coroutine.#check(co);
      try {
        Coroutine.#run(from, co, ctx);
      } catch (e) {
        Coroutine.#runQueued(from, co, ctx, [e]);
        return;
      }
      const wq = co.#wakeup;
      if (wq !== null && wq.length > 0) Coroutine.#runQueued(from, co, ctx, null);
    };
  }

  /**
   * Runs, depth-first, the wake-ups `co` queued and theirs in turn, then
   * throws what was thrown along the way (one error as is, several as an
   * AggregateError).
   */
  static #runQueued(
    from: Coroutine,
    co: Coroutine,
    ctx: AioContext | null,
    errors: unknown[] | null,
  ): void {
    // pending is a stack whose top is the next coroutine to run, so that
    // prepending a wake-up queue is a reversed push.
    const pending: Coroutine[] = [];
    let to = co;
    let ran = true;
    for (;;) {
      // A refused entry ran nothing; its queue belongs to whoever runs it.
      const wq = ran ? to.#wakeup : null;
      if (wq !== null && wq.length > 0) {
        for (let i = wq.length - 1; i >= 0; i--) pending.push(wq[i]);
        wq.length = 0;
      }
      if (pending.length === 0) break;
      to = pending.pop()!;
      ran = false;
      try {
        Coroutine.#check(to);
        ran = true;
        Coroutine.#run(from, to, ctx);
      } catch (e) {
        (errors ??= []).push(e);
      }
    }
    if (errors !== null) {
      throw errors.length === 1
        ? errors[0]
        : new AggregateError(errors, "Several coroutines threw in one enter");
    }
  }
}

/**
 * Enters `co` with `ctx` recorded as its context, then runs, depth-first,
 * every wake-up it queued, until all have yielded or ended.
 *
 * Counterpart: `qemu_aio_coroutine_enter()`.
 *
 * Thread: home thread of `ctx` only.
 *
 * @param ctx The context the coroutine runs in now (may be null).
 * @param co The coroutine to enter.
 * @throws {Error} As {@linkcode Coroutine.prototype.enter}.
 *
 * @example Entering with no context
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Coroutine, qemuAioCoroutineEnter } from "@aioloop/aioloop";
 * const co = Coroutine.create(function* () {});
 * qemuAioCoroutineEnter(null, co);
 * assertEquals(co.done, true);
 * assertEquals(co.ctx, null);
 * ```
 */
export function qemuAioCoroutineEnter(ctx: AioContext | null, co: Coroutine): void {
  if (!(co instanceof Coroutine)) throw new TypeError("Not a Coroutine");
  enterImpl(ctx, co);
}

/**
 * True when called from inside a coroutine body (or a coroutine function it
 * runs).
 *
 * Counterpart: `qemu_in_coroutine()`.
 *
 * @returns Whether the caller runs in a coroutine.
 *
 * @example Inside and outside
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Coroutine, inCoroutine } from "@aioloop/aioloop";
 * let inside = false;
 * Coroutine.create(function* () {
 *   inside = inCoroutine();
 * }).enter();
 * assertEquals(inCoroutine(), false);
 * assertEquals(inside, true);
 * ```
 */
export function inCoroutine(): boolean {
  return Coroutine.self().entered;
}

// AioContext.poll() refuses to run inside a coroutine, as aio_poll asserts.
coroutineHooks.inCoroutine = inCoroutine;

/**
 * Yields the current coroutine back to whoever entered it. In a body a bare
 * `yield;` does the same; library coroutine functions use
 * `yield* coroutineYield()` to get QEMU's check.
 *
 * Counterpart: `qemu_coroutine_yield()`.
 *
 * @returns A coroutine function to run with `yield*`.
 * @throws {Error} "Co-routine is yielding to no one" outside a coroutine.
 * @throws {TypeError} If an earlier operation of this coroutine was called
 * without `yield*` (see the module documentation).
 *
 * @example Yielding from a helper
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Coroutine, coroutineYield } from "@aioloop/aioloop";
 * let n = 0;
 * const co = Coroutine.create(function* () {
 *   n++;
 *   yield* coroutineYield();
 *   n++;
 * });
 * co.enter();
 * assertEquals(n, 1);
 * co.enter();
 * assertEquals(n, 2);
 * ```
 */
export function coroutineYield(): CoroutineFn {
  return yieldCo(coInternals.opCreated("coroutineYield()"));
}

function* yieldCo(owner: Coroutine | null): CoroutineFn {
  coInternals.opStarted(owner);
  if (!Coroutine.self().entered) throw new Error("Co-routine is yielding to no one");
  yield;
}

/**
 * {@linkcode GSource}: an event source of a {@linkcode GMainContext}, with
 * GLib's prepare / check / dispatch / finalize contract.
 *
 * @module
 */
import type { GPollFD } from "./gpollfd.ts";
import { GMainContext } from "./main_context.ts";
import {
  type AnyCallback,
  CallbackRec,
  contextCoreOf,
  PollRec,
  registerSourceAccess,
  sourceAddChild,
  sourceAddRec,
  SourceCore,
  sourceDestroy,
  type SourceHooks,
  sourceRef,
  sourceRemoveChild,
  sourceRemoveRec,
  sourceSetCallback,
  sourceSetPriority,
  sourceSetReadyTime,
  sourceUnref,
} from "./_gmain.ts";

/**
 * The callback of timeout and idle sources: return `G_SOURCE_CONTINUE`
 * (true) to be called again, `G_SOURCE_REMOVE` (false) to destroy the
 * source.
 *
 * Counterpart: `GSourceFunc`.
 *
 * @example A callback that runs three times
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import type { GSourceFunc } from "@aioloop/aioloop/glib";
 * let n = 0;
 * const cb: GSourceFunc = () => ++n < 3;
 * assertEquals([cb(), cb(), cb()], [true, true, false]);
 * ```
 */
export type GSourceFunc = () => boolean;

/**
 * Called once when a callback is no longer in use: when it is replaced by
 * {@linkcode GSource.prototype.setCallback}, when its source is destroyed,
 * or when its source is finalized without having been destroyed. A callback
 * replaced or destroyed while it runs is notified after it returns.
 *
 * Counterpart: `GDestroyNotify` (the `notify` of `g_source_set_callback()`
 * and of the `_full` functions); the closure stands for the `data` pointer.
 *
 * @example Releasing what a callback holds
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { type GDestroyNotify, idleSourceNew } from "@aioloop/aioloop/glib";
 * let released = 0;
 * const notify: GDestroyNotify = () => void released++;
 * const s = idleSourceNew();
 * s.setCallback(() => false, notify);
 * s.unref();
 * assertEquals(released, 1);
 * ```
 */
export type GDestroyNotify = () => void;

/**
 * The options of the `_full` forms: `timeoutAdd`, `timeoutAddSeconds`,
 * `idleAdd`, `unixFdAdd` and `GMainContext.invoke`.
 *
 * Counterpart: the `priority` and `notify` arguments of
 * `g_timeout_add_full()`, `g_idle_add_full()`, `g_unix_fd_add_full()` and
 * `g_main_context_invoke_full()`.
 *
 * @example A high-priority idle with a notify
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { G_PRIORITY_HIGH, GMainContext, type GSourceAddOptions, idleAdd } from "@aioloop/aioloop/glib";
 * const log: string[] = [];
 * const opts: GSourceAddOptions = { priority: G_PRIORITY_HIGH, notify: () => log.push("notify") };
 * idleAdd(() => (log.push("run"), false), opts);
 * GMainContext.default().iteration(false);
 * assertEquals(log, ["run", "notify"]);
 * ```
 */
export interface GSourceAddOptions {
  /** The source's priority (each function has its own default). */
  priority?: number;
  /** Called once when the callback is no longer in use. */
  notify?: GDestroyNotify | null;
}

/**
 * Any source callback. Each source type decides the arguments; all return
 * whether to keep the source.
 *
 * Counterpart: `GSourceFunc` cast to the source's own callback type.
 *
 * @example A callback with arguments is a GSourceCallback
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import type { GSourceCallback } from "@aioloop/aioloop/glib";
 * const onFd = (fd: number, cond: number): boolean => fd >= 0 && cond !== 0;
 * const cb: GSourceCallback = onFd; // any callback shape that returns a boolean
 * assertEquals(onFd(0, 1), true);
 * ```
 */
export type GSourceCallback = (...args: never[]) => boolean;

/**
 * What a prepare function returns: `true` when the source is ready, `false`
 * when it is not, or `[ready, timeoutMs]` to also bound the poll timeout
 * (GLib's `*timeout` out parameter; -1 means no bound). A tuple may be
 * reused from call to call.
 *
 * Counterpart: the `gboolean` result and `gint *timeout` of
 * `GSourceFuncs.prepare`.
 *
 * @example Not ready, but poll at most 5 ms
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import type { GSourcePrepareResult } from "@aioloop/aioloop/glib";
 * const r: GSourcePrepareResult = [false, 5];
 * assertEquals(r[1], 5); // poll at most 5 ms
 * ```
 */
export type GSourcePrepareResult = boolean | readonly [ready: boolean, timeoutMs: number];

/**
 * The function table of a source built with `new GSource(funcs)`.
 *
 * - `prepare` runs before the poll. Return true when ready without polling.
 *   Missing means "not ready".
 * - `check` runs after the poll. Return true when ready. Missing means "not
 *   ready". Unix fds ({@linkcode GSource.prototype.addUnixFd}) with events
 *   and a passed ready time make the source ready whatever these say.
 * - `dispatch` runs the callback and returns whether to keep the source.
 * - `finalize` runs once, when the last reference goes.
 *
 * The methods are called with `this` bound to the table.
 *
 * Counterpart: `GSourceFuncs`.
 *
 * @typeParam C The callback type handed to `dispatch`.
 *
 * @example A source ready when a flag is set
 * ```ts
 * import { type GSourceFuncs, GSource } from "@aioloop/aioloop/glib";
 * let flag = false;
 * const funcs: GSourceFuncs = {
 *   prepare: () => flag,
 *   check: () => flag,
 *   dispatch: (_s, cb) => {
 *     flag = false;
 *     return cb ? cb() : false;
 *   },
 * };
 * const s = new GSource(funcs);
 * ```
 */
export interface GSourceFuncs<C extends GSourceCallback = GSourceFunc> {
  /**
   * Called before polling.
   *
   * @param source The source.
   * @returns Whether the source is ready (optionally with a timeout bound).
   */
  prepare?(source: GSource<C>): GSourcePrepareResult;
  /**
   * Called after polling.
   *
   * @param source The source.
   * @returns Whether the source is ready.
   */
  check?(source: GSource<C>): boolean;
  /**
   * Called when the source is ready.
   *
   * @param source The source.
   * @param callback The callback set with `setCallback`, or null.
   * @returns `G_SOURCE_CONTINUE` to keep the source, `G_SOURCE_REMOVE` to destroy it.
   */
  dispatch(source: GSource<C>, callback: C | null): boolean;
  /**
   * Called once when the last reference is dropped.
   *
   * @param source The source.
   */
  finalize?(source: GSource<C>): void;
}

/**
 * The tag of a unix fd added with {@linkcode GSource.prototype.addUnixFd}: a
 * read-only view of the polled fd (its `revents` is what
 * {@linkcode GSource.prototype.queryUnixFd} returns).
 *
 * Counterpart: the `gpointer tag` of `g_source_add_unix_fd()`.
 *
 * @example Reading a tag
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { G_IO_IN, GSource, type GSourceFdTag } from "@aioloop/aioloop/glib";
 * const s = new GSource({ dispatch: () => false });
 * const tag: GSourceFdTag = s.addUnixFd(0, G_IO_IN);
 * assertEquals(tag.fd, 0);
 * assertEquals(tag.events, 1);
 * ```
 */
export interface GSourceFdTag {
  /** The fd. */
  readonly fd: number;
  /** The events watched. */
  readonly events: number;
  /** The events seen by the last poll. */
  readonly revents: number;
}

function checkPriority(priority: number): void {
  if (!Number.isInteger(priority) || priority < -0x80000000 || priority > 0x7fffffff) {
    throw new RangeError(`Priority must be a 32-bit integer, got ${priority}`);
  }
}

function checkEvents(events: number): void {
  if (!Number.isInteger(events) || events < 0 || events > 0xffff) {
    throw new RangeError(`Events must be a 16-bit mask, got ${events}`);
  }
}

function checkFd(fd: number): void {
  if (!Number.isInteger(fd) || fd < 0) {
    throw new RangeError(`File descriptor must be a non-negative integer, got ${fd}`);
  }
}

/**
 * An event source: something a {@linkcode GMainContext} polls and
 * dispatches. Build one from a function table (`new GSource(funcs)`) or
 * subclass it and override the protected `prepare`, `check`, `dispatch` and
 * `finalize` methods.
 *
 * Ready means: `prepare` or `check` returned true, a unix fd
 * ({@linkcode GSource.prototype.addUnixFd}) has events, or the ready time
 * passed. Each iteration dispatches only the ready sources of the most
 * urgent (numerically lowest) ready priority. A source is not dispatched
 * again from a nested iteration inside its own dispatch (its fds leave the
 * poll set meanwhile) unless {@linkcode GSource.prototype.setCanRecurse} is
 * on.
 *
 * References work as in GLib: `new` gives one reference, `attach` adds
 * the context's, `destroy` drops the context's, and `finalize` runs when the
 * last one goes. Call {@linkcode GSource.prototype.unref} after `attach` if
 * you keep no reference, as in C.
 *
 * Counterpart: `GSource` (`g_source_new()`).
 *
 * Thread: home thread of its context only.
 *
 * @typeParam C The callback type (see {@linkcode GSource.prototype.setCallback}).
 *
 * @example A subclass ready every time it is polled
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { GMainContext, GSource, type GSourceFunc } from "@aioloop/aioloop/glib";
 * class Always extends GSource<GSourceFunc> {
 *   protected override prepare(): boolean {
 *     return true;
 *   }
 *   protected override dispatch(cb: GSourceFunc | null): boolean {
 *     return cb ? cb() : false;
 *   }
 * }
 * const ctx = new GMainContext();
 * const s = new Always();
 * let n = 0;
 * s.setCallback(() => ++n < 2);
 * s.attach(ctx);
 * s.unref();
 * while (ctx.iteration(false));
 * assertEquals(n, 2);
 * ctx.destroy();
 * ```
 */
export class GSource<C extends GSourceCallback = GSourceFunc> {
  #core: SourceCore;
  #funcs: GSourceFuncs<C> | null;

  static {
    registerSourceAccess((s) => (s as GSource<GSourceCallback>).#core);
  }

  /**
   * Creates an unattached source with one reference.
   *
   * Counterpart: `g_source_new()`.
   *
   * @param funcs The function table; omit it in a subclass that overrides
   *   `dispatch`.
   * @throws {TypeError} When there is no dispatch function.
   *
   * @example A source from a function table
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GSource } from "@aioloop/aioloop/glib";
   * const s = new GSource({ dispatch: (_s, cb) => (cb ? cb() : false) });
   * assertEquals(s.isDestroyed(), false);
   * ```
   */
  constructor(funcs?: GSourceFuncs<C>) {
    if (funcs === undefined || funcs === null) {
      if (this.dispatch === GSource.prototype.dispatch) {
        throw new TypeError("GSource needs a dispatch function: pass funcs or override dispatch");
      }
      this.#funcs = null;
    } else {
      if (typeof funcs.dispatch !== "function") {
        throw new TypeError("GSourceFuncs.dispatch must be a function");
      }
      this.#funcs = funcs;
    }
    this.#core = new SourceCore(this, this as unknown as SourceHooks);
  }

  /**
   * Called before polling. The default calls `funcs.prepare` (or reports
   * not ready). Override it in a subclass.
   *
   * Counterpart: `GSourceFuncs.prepare`.
   *
   * @returns Whether the source is ready, optionally with a timeout bound in ms.
   *
   * @example Overriding prepare
   * ```ts
   * import { GSource, type GSourcePrepareResult } from "@aioloop/aioloop/glib";
   * class Soon extends GSource {
   *   protected override prepare(): GSourcePrepareResult {
   *     return [false, 10];
   *   }
   *   protected override dispatch(): boolean {
   *     return false;
   *   }
   * }
   * new Soon();
   * ```
   */
  protected prepare(): GSourcePrepareResult {
    const f = this.#funcs;
    return f !== null && f.prepare !== undefined ? f.prepare(this) : false;
  }

  /**
   * Called after polling. The default calls `funcs.check` (or reports not
   * ready). Override it in a subclass.
   *
   * Counterpart: `GSourceFuncs.check`.
   *
   * @returns Whether the source is ready.
   *
   * @example Overriding check
   * ```ts
   * import { GSource } from "@aioloop/aioloop/glib";
   * class Never extends GSource {
   *   protected override check(): boolean {
   *     return false;
   *   }
   *   protected override dispatch(): boolean {
   *     return false;
   *   }
   * }
   * new Never();
   * ```
   */
  protected check(): boolean {
    const f = this.#funcs;
    return f !== null && f.check !== undefined ? f.check(this) : false;
  }

  /**
   * Called when the source is ready. The default calls `funcs.dispatch`.
   * A subclass without funcs must override it.
   *
   * Counterpart: `GSourceFuncs.dispatch`.
   *
   * @param callback The callback set with `setCallback`, or null.
   * @returns `G_SOURCE_CONTINUE` (true) to keep the source, `G_SOURCE_REMOVE` (false) to destroy it.
   *
   * @example Overriding dispatch
   * ```ts
   * import { GSource, type GSourceFunc } from "@aioloop/aioloop/glib";
   * class Once extends GSource<GSourceFunc> {
   *   protected override dispatch(cb: GSourceFunc | null): boolean {
   *     cb?.();
   *     return false;
   *   }
   * }
   * new Once();
   * ```
   */
  protected dispatch(callback: C | null): boolean {
    return this.#funcs!.dispatch(this, callback);
  }

  /**
   * Called once, when the last reference goes. The default calls
   * `funcs.finalize`.
   *
   * Counterpart: `GSourceFuncs.finalize`.
   *
   * @example Overriding finalize
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GSource } from "@aioloop/aioloop/glib";
   * let finalized = 0;
   * class Counted extends GSource {
   *   protected override dispatch(): boolean {
   *     return false;
   *   }
   *   protected override finalize(): void {
   *     finalized++;
   *   }
   * }
   * new Counted().unref();
   * assertEquals(finalized, 1);
   * ```
   */
  protected finalize(): void {
    const f = this.#funcs;
    if (f !== null && f.finalize !== undefined) f.finalize(this);
  }

  /**
   * Adds the source to a context (the global default one when omitted) and
   * returns its id there. The context takes a reference.
   *
   * Counterpart: `g_source_attach()`.
   *
   * Thread: home thread only.
   *
   * @param context The context; `GMainContext.default()` when omitted.
   * @returns The source id (greater than 0), unique within the context.
   * @throws {Deno.errors.BadResource} When the source is destroyed or
   *   finalized, or the context is destroyed.
   * @throws {Error} When the source is already attached or is a child source.
   *
   * @example Attaching to a private context
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext, idleSourceNew } from "@aioloop/aioloop/glib";
   * const ctx = new GMainContext();
   * const s = idleSourceNew();
   * assertEquals(s.attach(ctx) > 0, true);
   * ctx.destroy();
   * ```
   */
  attach(context?: GMainContext | null): number {
    const c = this.#core;
    if (c.refCount <= 0) throw new Deno.errors.BadResource("Source is finalized");
    if (c.destroyed) throw new Deno.errors.BadResource("Source is destroyed");
    if (c.context !== null) throw new Error("Source is already attached to a context");
    if (c.parent !== null) throw new Error("A child source is attached with its parent");
    const ctx = contextCoreOf(context ?? GMainContext.default());
    if (ctx.destroyed) throw new Deno.errors.BadResource("Context is destroyed");
    return ctx.attach(c);
  }

  /**
   * Removes the source from its context and marks it destroyed: it will
   * not be dispatched again, and cannot be attached again. Safe to call from
   * inside its own dispatch, and more than once.
   *
   * Counterpart: `g_source_destroy()`.
   *
   * Thread: home thread only.
   *
   * @example Destroying an attached source
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext, idleSourceNew } from "@aioloop/aioloop/glib";
   * const ctx = new GMainContext();
   * const s = idleSourceNew();
   * s.attach(ctx);
   * s.destroy();
   * assertEquals(s.isDestroyed(), true);
   * ctx.destroy();
   * ```
   */
  destroy(): void {
    const c = this.#core;
    if (c.destroyed || c.refCount <= 0) return;
    sourceDestroy(c);
  }

  /**
   * Whether the source has been destroyed.
   *
   * Counterpart: `g_source_is_destroyed()`.
   *
   * @returns True once destroyed.
   *
   * @example A fresh source
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { idleSourceNew } from "@aioloop/aioloop/glib";
   * assertEquals(idleSourceNew().isDestroyed(), false);
   * ```
   */
  isDestroyed(): boolean {
    return this.#core.destroyed;
  }

  /**
   * Takes a reference.
   *
   * Counterpart: `g_source_ref()`.
   *
   * @returns The source.
   * @throws {Deno.errors.BadResource} When the source is finalized.
   *
   * @example Keeping a source alive past destroy
   * ```ts
   * import { idleSourceNew } from "@aioloop/aioloop/glib";
   * const s = idleSourceNew().ref();
   * s.unref();
   * s.unref();
   * ```
   */
  ref(): this {
    sourceRef(this.#core);
    return this;
  }

  /**
   * Drops a reference; the last one finalizes the source.
   *
   * Counterpart: `g_source_unref()`.
   *
   * @throws {Deno.errors.BadResource} When the source is already finalized.
   *
   * @example The GLib idiom: attach, then unref
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext, idleSourceNew } from "@aioloop/aioloop/glib";
   * const ctx = new GMainContext();
   * const s = idleSourceNew();
   * s.setCallback(() => false);
   * s.attach(ctx);
   * s.unref(); // the context now owns it
   * assertEquals(ctx.iteration(false), true); // dispatched, then destroyed by its callback
   * ctx.destroy();
   * ```
   */
  unref(): void {
    sourceUnref(this.#core);
  }

  /**
   * Sets the priority (lower runs first). Children follow their parent.
   *
   * Counterpart: `g_source_set_priority()`.
   *
   * @param priority A 32-bit integer such as `G_PRIORITY_DEFAULT`.
   * @throws {RangeError} When the priority is not a 32-bit integer.
   * @throws {Error} On a child source, whose priority is its parent's.
   *
   * @example Raising a source
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { G_PRIORITY_HIGH, idleSourceNew } from "@aioloop/aioloop/glib";
   * const s = idleSourceNew();
   * s.setPriority(G_PRIORITY_HIGH);
   * assertEquals(s.getPriority(), G_PRIORITY_HIGH);
   * ```
   */
  setPriority(priority: number): void {
    checkPriority(priority);
    const c = this.#core;
    if (c.parent !== null && c.parent.priority !== priority) {
      throw new Error("A child source has its parent's priority");
    }
    sourceSetPriority(c, priority);
  }

  /**
   * The priority.
   *
   * Counterpart: `g_source_get_priority()`.
   *
   * @returns The priority.
   *
   * @example Idle priority
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { idleSourceNew } from "@aioloop/aioloop/glib";
   * assertEquals(idleSourceNew().getPriority(), 200);
   * ```
   */
  getPriority(): number {
    return this.#core.priority;
  }

  /**
   * Sets the callback that `dispatch` receives (null clears it). Its
   * signature is the source type's: `() => boolean` for timeouts and idles,
   * `(fd, condition) => boolean` for unix fd sources.
   *
   * `notify`, when given, is called exactly once when this callback is no
   * longer in use: when it is replaced by another `setCallback`, when the
   * source is destroyed (before `finalize`), or when the source is
   * finalized without having been destroyed (after `finalize`). A callback
   * replaced or destroyed while it runs is notified after it returns.
   *
   * Counterpart: `g_source_set_callback()` (with its `GDestroyNotify`).
   *
   * Thread: home thread of its context only.
   *
   * @param callback The callback, or null.
   * @param notify Called once when the callback is released.
   * @throws {TypeError} When the callback is not a function or null, or
   *   `notify` is not a function.
   * @throws {Deno.errors.BadResource} When the source is finalized.
   *
   * @example The notify runs when the callback is replaced
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { idleSourceNew } from "@aioloop/aioloop/glib";
   * const log: string[] = [];
   * const s = idleSourceNew();
   * s.setCallback(() => false, () => log.push("first released"));
   * s.setCallback(() => false);
   * assertEquals(log, ["first released"]);
   * s.unref();
   * ```
   */
  setCallback(callback: C | null, notify?: GDestroyNotify | null): void {
    if (callback !== null && typeof callback !== "function") {
      throw new TypeError("Callback must be a function or null");
    }
    if (notify !== undefined && notify !== null && typeof notify !== "function") {
      throw new TypeError("Destroy notify must be a function, null or omitted");
    }
    const c = this.#core;
    if (c.refCount <= 0) throw new Deno.errors.BadResource("Source is finalized");
    const n = notify ?? null;
    const rec = callback === null && n === null
      ? null
      : new CallbackRec(callback as AnyCallback | null, n);
    sourceSetCallback(c, rec);
  }

  /**
   * Allows (or forbids, the default) dispatching the source again from a
   * nested iteration run inside its own dispatch. A source that cannot
   * recurse has its fds taken out of the poll set while it dispatches.
   *
   * Counterpart: `g_source_set_can_recurse()`.
   *
   * @param canRecurse Whether recursion is allowed.
   *
   * @example Allowing recursion (as QEMU's AioContext source does)
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { idleSourceNew } from "@aioloop/aioloop/glib";
   * const s = idleSourceNew();
   * s.setCanRecurse(true);
   * assertEquals(s.getCanRecurse(), true);
   * ```
   */
  setCanRecurse(canRecurse: boolean): void {
    this.#core.canRecurse = !!canRecurse;
  }

  /**
   * Whether the source may be dispatched recursively.
   *
   * Counterpart: `g_source_get_can_recurse()`.
   *
   * @returns The flag.
   *
   * @example The default
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { idleSourceNew } from "@aioloop/aioloop/glib";
   * assertEquals(idleSourceNew().getCanRecurse(), false);
   * ```
   */
  getCanRecurse(): boolean {
    return this.#core.canRecurse;
  }

  /**
   * Makes the source ready once the monotonic clock reaches `readyTime`
   * (µs, see `getMonotonicTime`): 0 (or any past time) means now, -1 means
   * never. Dispatching does not reset it; do so in dispatch if needed.
   *
   * Counterpart: `g_source_set_ready_time()`.
   *
   * @param readyTime Monotonic time in µs, 0 for now, -1 for never.
   * @throws {RangeError} When the value is not a finite number.
   *
   * @example Ready now
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext, GSource } from "@aioloop/aioloop/glib";
   * const ctx = new GMainContext();
   * const s = new GSource({ dispatch: () => false });
   * s.setReadyTime(0);
   * s.attach(ctx);
   * assertEquals(ctx.iteration(false), true);
   * ctx.destroy();
   * ```
   */
  setReadyTime(readyTime: number): void {
    if (!Number.isFinite(readyTime)) {
      throw new RangeError(`Ready time must be a finite number, got ${readyTime}`);
    }
    const c = this.#core;
    if (readyTime === -1) sourceSetReadyTime(c, false, 0);
    // Other negative values mean "now", as in GLib.
    else sourceSetReadyTime(c, true, readyTime < 0 ? 0 : readyTime * 1000);
  }

  /**
   * The ready time in monotonic µs, or -1 when none is set.
   *
   * Counterpart: `g_source_get_ready_time()`.
   *
   * @returns The ready time, or -1.
   *
   * @example No ready time by default
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GSource } from "@aioloop/aioloop/glib";
   * assertEquals(new GSource({ dispatch: () => false }).getReadyTime(), -1);
   * ```
   */
  getReadyTime(): number {
    const c = this.#core;
    return c.hasReadyTime ? Math.ceil(c.readyTimeNs / 1000) : -1;
  }

  /**
   * The monotonic time (µs) of the current iteration of the source's
   * context: read once per iteration and cached, so that sources computing
   * deadlines in one iteration agree.
   *
   * Counterpart: `g_source_get_time()`.
   *
   * @returns The cached monotonic time in µs.
   * @throws {Error} When the source is not attached.
   *
   * @example Reading the iteration time
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext, idleSourceNew } from "@aioloop/aioloop/glib";
   * const ctx = new GMainContext();
   * const s = idleSourceNew();
   * s.attach(ctx);
   * assertEquals(s.getTime() > 0, true);
   * ctx.destroy();
   * ```
   */
  getTime(): number {
    const ctx = this.#core.context;
    if (ctx === null) throw new Error("Source is not attached to a context");
    return Math.floor(ctx.now() / 1000);
  }

  /**
   * Adds a caller-owned {@linkcode GPollFD} to the poll set of the source.
   * Its `revents` is updated after each poll; the source's `check` decides
   * what it means (unlike {@linkcode GSource.prototype.addUnixFd}).
   *
   * Counterpart: `g_source_add_poll()`.
   *
   * @param pfd The fd record (kept by identity).
   * @throws {TypeError} When `pfd` is not a GPollFD or is already added.
   * @throws {Deno.errors.BadResource} When the source is destroyed.
   *
   * @example Polling stdin from a check function
   * ```ts
   * import { G_IO_IN, type GPollFD, GSource } from "@aioloop/aioloop/glib";
   * const pfd: GPollFD = { fd: 0, events: G_IO_IN, revents: 0 };
   * const s = new GSource({ check: () => pfd.revents !== 0, dispatch: () => true });
   * s.addPoll(pfd);
   * s.removePoll(pfd);
   * ```
   */
  addPoll(pfd: GPollFD): void {
    if (pfd === null || typeof pfd !== "object") throw new TypeError("Expected a GPollFD");
    checkFd(pfd.fd);
    checkEvents(pfd.events);
    const c = this.#core;
    if (c.destroyed || c.refCount <= 0) throw new Deno.errors.BadResource("Source is destroyed");
    for (const rec of c.recs) {
      if (rec.pfd === pfd) throw new TypeError("GPollFD is already added to this source");
    }
    sourceAddRec(c, new PollRec(pfd, c.priority, c, false));
  }

  /**
   * Removes a {@linkcode GPollFD} added with `addPoll`. Does nothing if it
   * is not there (or the source is destroyed, which already removed it).
   *
   * Counterpart: `g_source_remove_poll()`.
   *
   * @param pfd The same object passed to `addPoll`.
   *
   * @example Adding and removing
   * ```ts
   * import { G_IO_IN, GSource } from "@aioloop/aioloop/glib";
   * const s = new GSource({ dispatch: () => true });
   * const pfd = { fd: 0, events: G_IO_IN, revents: 0 };
   * s.addPoll(pfd);
   * s.removePoll(pfd);
   * ```
   */
  removePoll(pfd: GPollFD): void {
    const c = this.#core;
    for (const rec of c.recs) {
      if (rec.pfd === pfd && !rec.unix) {
        sourceRemoveRec(c, rec);
        return;
      }
    }
  }

  /**
   * Watches `fd` for `events`. When the poll reports any of them (or ERR,
   * HUP, NVAL) the source is ready, whatever its check says; the events are
   * read with {@linkcode GSource.prototype.queryUnixFd}.
   *
   * Counterpart: `g_source_add_unix_fd()`.
   *
   * @param fd A non-negative fd.
   * @param events A mask of `G_IO_*` values.
   * @returns The tag naming this watch.
   * @throws {RangeError} When `fd` or `events` is out of range.
   * @throws {Deno.errors.BadResource} When the source is destroyed.
   *
   * @example Watching a pipe
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { G_IO_IN, GMainContext, GSource, type GSourceFdTag } from "@aioloop/aioloop/glib";
   * import { close, pipe, write } from "@aioloop/aioloop/sys";
   * const [r, w] = pipe();
   * const ctx = new GMainContext();
   * let seen = 0;
   * const s: GSource = new GSource({
   *   dispatch: (src) => {
   *     seen = src.queryUnixFd(tag);
   *     return false;
   *   },
   * });
   * const tag: GSourceFdTag = s.addUnixFd(r, G_IO_IN);
   * s.attach(ctx);
   * write(w, new Uint8Array([1]));
   * ctx.iteration(true);
   * assertEquals(seen & G_IO_IN, 1);
   * ctx.destroy();
   * close(r);
   * close(w);
   * ```
   */
  addUnixFd(fd: number, events: number): GSourceFdTag {
    checkFd(fd);
    checkEvents(events);
    const c = this.#core;
    if (c.destroyed || c.refCount <= 0) throw new Deno.errors.BadResource("Source is destroyed");
    const rec = new PollRec({ fd, events, revents: 0 }, c.priority, c, true);
    sourceAddRec(c, rec);
    return rec.pfd;
  }

  #unixRec(tag: GSourceFdTag): PollRec {
    for (const rec of this.#core.recs) if (rec.unix && rec.pfd === tag) return rec;
    throw new TypeError("Unix fd tag does not belong to this source");
  }

  /**
   * Changes the events watched for a unix fd.
   *
   * Counterpart: `g_source_modify_unix_fd()`.
   *
   * @param tag The tag from `addUnixFd`.
   * @param events The new `G_IO_*` mask.
   * @throws {TypeError} When the tag is not this source's.
   * @throws {RangeError} When `events` is out of range.
   *
   * @example Switching to write readiness
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { G_IO_IN, G_IO_OUT, GSource } from "@aioloop/aioloop/glib";
   * const s = new GSource({ dispatch: () => true });
   * const tag = s.addUnixFd(1, G_IO_IN);
   * s.modifyUnixFd(tag, G_IO_OUT);
   * assertEquals(tag.events, 4);
   * ```
   */
  modifyUnixFd(tag: GSourceFdTag, events: number): void {
    checkEvents(events);
    const rec = this.#unixRec(tag);
    rec.pfd.events = events;
    this.#core.context?.signalIfPolling();
  }

  /**
   * Stops watching a unix fd.
   *
   * Counterpart: `g_source_remove_unix_fd()`.
   *
   * @param tag The tag from `addUnixFd`.
   * @throws {TypeError} When the tag is not this source's.
   *
   * @example Removing a watch
   * ```ts
   * import { G_IO_IN, GSource } from "@aioloop/aioloop/glib";
   * const s = new GSource({ dispatch: () => true });
   * s.removeUnixFd(s.addUnixFd(0, G_IO_IN));
   * ```
   */
  removeUnixFd(tag: GSourceFdTag): void {
    sourceRemoveRec(this.#core, this.#unixRec(tag));
  }

  /**
   * The events the last poll saw on a unix fd (meaningful in dispatch).
   *
   * Counterpart: `g_source_query_unix_fd()`.
   *
   * @param tag The tag from `addUnixFd`.
   * @returns The `G_IO_*` events seen.
   * @throws {TypeError} When the tag is not this source's.
   *
   * @example Before any poll
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { G_IO_IN, GSource } from "@aioloop/aioloop/glib";
   * const s = new GSource({ dispatch: () => true });
   * assertEquals(s.queryUnixFd(s.addUnixFd(0, G_IO_IN)), 0);
   * ```
   */
  queryUnixFd(tag: GSourceFdTag): number {
    return this.#unixRec(tag).pfd.revents;
  }

  /**
   * Names the source (for debugging).
   *
   * Counterpart: `g_source_set_name()`.
   *
   * @param name The name, or null.
   *
   * @example Naming a source as QEMU does
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { idleSourceNew } from "@aioloop/aioloop/glib";
   * const s = idleSourceNew();
   * s.setName("aio-context");
   * assertEquals(s.getName(), "aio-context");
   * ```
   */
  setName(name: string | null): void {
    this.#core.name = name === null ? null : String(name);
  }

  /**
   * The name, or null.
   *
   * Counterpart: `g_source_get_name()`.
   *
   * @returns The name.
   *
   * @example Idle sources are named
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { idleSourceNew } from "@aioloop/aioloop/glib";
   * assertEquals(idleSourceNew().getName(), "GIdleSource");
   * ```
   */
  getName(): string | null {
    return this.#core.name;
  }

  /**
   * The id `attach` returned, or 0 if never attached.
   *
   * Counterpart: `g_source_get_id()`.
   *
   * @returns The id.
   *
   * @example Ids come from attach
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext, idleSourceNew } from "@aioloop/aioloop/glib";
   * const ctx = new GMainContext();
   * const s = idleSourceNew();
   * const id = s.attach(ctx);
   * assertEquals(s.getId() === id, true);
   * ctx.destroy();
   * ```
   */
  getId(): number {
    return this.#core.id;
  }

  /**
   * The context the source is (or was) attached to, or null.
   *
   * Counterpart: `g_source_get_context()`.
   *
   * @returns The context, or null.
   *
   * @example An unattached source
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { idleSourceNew } from "@aioloop/aioloop/glib";
   * assertEquals(idleSourceNew().getContext(), null);
   * ```
   */
  getContext(): GMainContext | null {
    const ctx = this.#core.context;
    return ctx === null ? null : ctx.wrapper as GMainContext;
  }

  /**
   * Makes `child` part of this source: it is attached and destroyed with
   * it, takes its priority, is blocked with it, and when it is ready this
   * source is ready too. The parent takes a reference on the child.
   *
   * Counterpart: `g_source_add_child_source()`.
   *
   * @param child An unattached source with no parent.
   * @throws {Deno.errors.BadResource} When either source is destroyed.
   * @throws {Error} When the child is attached or already has a parent.
   *
   * @example A timeout inside a custom source
   * ```ts
   * import { GSource, timeoutSourceNew } from "@aioloop/aioloop/glib";
   * const parent = new GSource({ dispatch: () => true });
   * const child = timeoutSourceNew(10);
   * child.setCallback(() => false);
   * parent.addChildSource(child);
   * child.unref();
   * ```
   */
  addChildSource(child: GSource<GSourceCallback>): void {
    const c = this.#core;
    const k = child.#core;
    if (c.destroyed || c.refCount <= 0) throw new Deno.errors.BadResource("Source is destroyed");
    if (k.destroyed || k.refCount <= 0) {
      throw new Deno.errors.BadResource("Child source is destroyed");
    }
    if (k.context !== null) throw new Error("Child source is already attached");
    if (k.parent !== null) throw new Error("Child source already has a parent");
    if (k === c) throw new Error("A source cannot be its own child");
    sourceAddChild(c, k);
  }

  /**
   * Detaches and destroys a child source.
   *
   * Counterpart: `g_source_remove_child_source()`.
   *
   * @param child A child of this source.
   * @throws {TypeError} When `child` is not a child of this source.
   *
   * @example Removing a child
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GSource, idleSourceNew } from "@aioloop/aioloop/glib";
   * const parent = new GSource({ dispatch: () => true });
   * const child = idleSourceNew();
   * parent.addChildSource(child);
   * parent.removeChildSource(child);
   * assertEquals(child.isDestroyed(), true);
   * ```
   */
  removeChildSource(child: GSource<GSourceCallback>): void {
    const k = child.#core;
    if (k.parent !== this.#core) throw new TypeError("Source is not a child of this source");
    sourceRemoveChild(k);
  }
}

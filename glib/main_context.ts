/**
 * {@linkcode GMainContext}: a set of sources polled together, with GLib's
 * iteration phases (prepare, query, poll, check, dispatch).
 *
 * @module
 */
import type { GPollFD } from "./gpollfd.ts";
import {
  GSource,
  type GSourceAddOptions,
  type GSourceCallback,
  type GSourceFunc,
} from "./source.ts";
import { addArgs } from "./_add_options.ts";
import { ContextCore, dispatchState, registerContextAccess } from "./_gmain.ts";

/**
 * The result of {@linkcode GMainContext.prototype.prepare}.
 *
 * Counterpart: the return value and `*priority` of
 * `g_main_context_prepare()`.
 *
 * @example Passing the priority on to query
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { GMainContext, type GMainContextPrepareResult } from "@aioloop/aioloop/glib";
 * const ctx = new GMainContext();
 * const p: GMainContextPrepareResult = ctx.prepare();
 * assertEquals(p.ready, false);
 * ctx.destroy();
 * ```
 */
export interface GMainContextPrepareResult {
  /** Whether some source is ready without polling. */
  ready: boolean;
  /**
   * The priority of the most urgent ready source (0x7fffffff, GLib's
   * G_MAXINT, when none is): pass it to `query` and `check`.
   */
  priority: number;
}

/**
 * The result of {@linkcode GMainContext.prototype.query}.
 *
 * Counterpart: the return value and `*timeout_` of `g_main_context_query()`.
 *
 * @example Reading the timeout
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { GMainContext, type GMainContextQueryResult, type GPollFD } from "@aioloop/aioloop/glib";
 * const ctx = new GMainContext();
 * const fds: GPollFD[] = [];
 * const q: GMainContextQueryResult = ctx.query(ctx.prepare().priority, fds);
 * assertEquals(q.timeoutMs, -1);
 * assertEquals(q.count, 1);
 * ctx.destroy();
 * ```
 */
export interface GMainContextQueryResult {
  /** Poll timeout in ms, rounded up: -1 means no timeout, 0 means do not block. */
  timeoutMs: number;
  /** The same timeout in ns, unrounded (-1: none), for a ppoll(2)-style wait. */
  timeoutNs: number;
  /** How many entries of the array are to be polled (from index 0). */
  count: number;
}

let defaultContext: GMainContext | null = null;
// Per isolate, as GLib's per thread. null stands for the global default.
const threadDefaultStack: (GMainContext | null)[] = [];

// The source g_main_context_invoke falls back to: an idle source.
const INVOKE_FUNCS = {
  prepare: (): boolean => true,
  check: (): boolean => true,
  dispatch: (_s: GSource<GSourceFunc>, cb: GSourceFunc | null): boolean => cb !== null && cb(),
};

function roundTimeoutToMs(hasTimeout: boolean, ns: number): number {
  if (!hasTimeout) return -1;
  if (ns === 0) return 0;
  return Math.min(Math.ceil(ns / 1e6), 0x7fffffff);
}

/**
 * A GLib main context: the set of sources (and their fds) that one thread
 * polls and dispatches. {@linkcode GMainContext.prototype.iteration} runs
 * one round; {@linkcode GMainLoop} runs rounds until told to quit.
 *
 * The context owns an eventfd (created on first use) that is always in its
 * poll set: {@linkcode GMainContext.prototype.wakeup} rings it, and any
 * thread can ring it by writing an 8-byte 1 to
 * {@linkcode GMainContext.prototype.wakeupFd}.
 *
 * Destroying the context (or dropping its last reference) destroys its
 * sources and closes that eventfd.
 *
 * Counterpart: `GMainContext` (`g_main_context_new()`).
 *
 * Thread: home thread (isolate) only, except the wakeup eventfd.
 *
 * @example One iteration
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { GMainContext, idleSourceNew } from "@aioloop/aioloop/glib";
 * const ctx = new GMainContext();
 * const s = idleSourceNew();
 * let calls = 0;
 * s.setCallback(() => {
 *   calls++;
 *   return false; // G_SOURCE_REMOVE
 * });
 * s.attach(ctx);
 * s.unref();
 * assertEquals(ctx.iteration(false), true);
 * assertEquals(calls, 1);
 * assertEquals(ctx.iteration(false), false); // the source removed itself
 * ctx.destroy();
 * ```
 */
export class GMainContext {
  #core: ContextCore;
  #refs = 1;

  static {
    registerContextAccess((c) => (c as GMainContext).#core);
  }

  /**
   * Creates a context with one reference and no sources.
   *
   * Counterpart: `g_main_context_new()`.
   *
   * @example A private context
   * ```ts
   * import { GMainContext } from "@aioloop/aioloop/glib";
   * const ctx = new GMainContext();
   * ctx.destroy();
   * ```
   */
  constructor() {
    this.#core = new ContextCore(this);
  }

  /**
   * The global default context of this isolate, created on first use. If it
   * is destroyed, the next call makes a new one.
   *
   * Counterpart: `g_main_context_default()`.
   *
   * Thread: any isolate (each has its own).
   *
   * @returns The default context.
   *
   * @example The same object every time
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext } from "@aioloop/aioloop/glib";
   * assertEquals(GMainContext.default() === GMainContext.default(), true);
   * ```
   */
  static default(): GMainContext {
    if (defaultContext === null || defaultContext.#core.destroyed) {
      defaultContext = new GMainContext();
    }
    return defaultContext;
  }

  /**
   * The top of this isolate's thread-default stack, or null when it is
   * empty or its top is the global default.
   *
   * Counterpart: `g_main_context_get_thread_default()`.
   *
   * @returns The thread-default context, or null (meaning the default one).
   *
   * @example Nothing pushed
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext } from "@aioloop/aioloop/glib";
   * assertEquals(GMainContext.threadDefault(), null);
   * ```
   */
  static threadDefault(): GMainContext | null {
    const n = threadDefaultStack.length;
    return n === 0 ? null : threadDefaultStack[n - 1];
  }

  /**
   * The thread-default context (or the global default when there is none),
   * with a reference taken for the caller.
   *
   * Counterpart: `g_main_context_ref_thread_default()`.
   *
   * @returns The context, referenced.
   *
   * @example Falling back to the global default
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext } from "@aioloop/aioloop/glib";
   * const ctx = GMainContext.refThreadDefault();
   * assertEquals(ctx === GMainContext.default(), true);
   * ctx.unref();
   * ```
   */
  static refThreadDefault(): GMainContext {
    return (GMainContext.threadDefault() ?? GMainContext.default()).ref();
  }

  /**
   * The source being dispatched right now in this isolate, or null.
   *
   * Counterpart: `g_main_current_source()`.
   *
   * @returns The innermost dispatching source.
   *
   * @example Outside any dispatch
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext } from "@aioloop/aioloop/glib";
   * assertEquals(GMainContext.currentSource(), null);
   * ```
   */
  static currentSource(): GSource<GSourceCallback> | null {
    const s = dispatchState.current;
    return s === null ? null : s.wrapper as GSource<GSourceCallback>;
  }

  /**
   * How many dispatches are on the stack of this isolate (0 outside any
   * callback, 1 inside one, 2 inside a nested iteration's callback ...).
   *
   * Counterpart: `g_main_depth()`.
   *
   * @returns The dispatch depth.
   *
   * @example At top level
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext } from "@aioloop/aioloop/glib";
   * assertEquals(GMainContext.depth(), 0);
   * ```
   */
  static depth(): number {
    return dispatchState.depth;
  }

  #live(): ContextCore {
    const c = this.#core;
    if (c.destroyed) throw new Deno.errors.BadResource("Context is destroyed");
    return c;
  }

  /**
   * Makes this context the thread default of this isolate (acquiring it),
   * so code that looks up the thread default attaches its sources here.
   *
   * Counterpart: `g_main_context_push_thread_default()`.
   *
   * Thread: home thread only.
   *
   * @throws {Deno.errors.BadResource} When the context is destroyed.
   *
   * @example Push, then pop
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext } from "@aioloop/aioloop/glib";
   * const ctx = new GMainContext();
   * ctx.pushThreadDefault();
   * assertEquals(GMainContext.threadDefault() === ctx, true);
   * ctx.popThreadDefault();
   * ctx.destroy();
   * ```
   */
  pushThreadDefault(): void {
    this.#live();
    this.acquire();
    if (this === defaultContext) {
      threadDefaultStack.push(null);
    } else {
      this.ref();
      threadDefaultStack.push(this);
    }
  }

  /**
   * Pops this context off the thread-default stack (it must be the top) and
   * releases it.
   *
   * Counterpart: `g_main_context_pop_thread_default()`.
   *
   * Thread: home thread only.
   *
   * @throws {Error} When this context is not the top of the stack.
   *
   * @example See pushThreadDefault
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext } from "@aioloop/aioloop/glib";
   * const ctx = new GMainContext();
   * ctx.pushThreadDefault();
   * ctx.popThreadDefault();
   * assertEquals(GMainContext.threadDefault(), null);
   * ctx.destroy();
   * ```
   */
  popThreadDefault(): void {
    const n = threadDefaultStack.length;
    const top = n === 0 ? undefined : threadDefaultStack[n - 1];
    const me = this === defaultContext ? null : this;
    if (n === 0 || top !== me) throw new Error("Context is not the thread default");
    threadDefaultStack.pop();
    this.release();
    if (me !== null) this.unref();
  }

  /**
   * Becomes the owner of the context. In one isolate this always succeeds;
   * ownership is a re-entrant count.
   *
   * Counterpart: `g_main_context_acquire()`.
   *
   * Thread: home thread only.
   *
   * @returns True (the context was acquired).
   *
   * @example Acquire and release
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext } from "@aioloop/aioloop/glib";
   * const ctx = new GMainContext();
   * ctx.acquire();
   * assertEquals(ctx.isOwner(), true);
   * ctx.release();
   * ctx.destroy();
   * ```
   */
  acquire(): boolean {
    this.#core.ownerCount++;
    return true;
  }

  /**
   * Drops one level of ownership.
   *
   * Counterpart: `g_main_context_release()`.
   *
   * Thread: home thread only.
   *
   * @throws {Error} When the context is not acquired.
   *
   * @example Releasing
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext } from "@aioloop/aioloop/glib";
   * const ctx = new GMainContext();
   * ctx.acquire();
   * ctx.release();
   * assertEquals(ctx.isOwner(), false);
   * ctx.destroy();
   * ```
   */
  release(): void {
    const c = this.#core;
    if (c.ownerCount <= 0) throw new Error("Context is not acquired");
    c.ownerCount--;
  }

  /**
   * Whether the context is acquired (by this isolate: the only possible
   * owner). True during an iteration or a `GMainLoop.run`.
   *
   * Counterpart: `g_main_context_is_owner()`.
   *
   * @returns True when owned.
   *
   * @example Not owned at rest
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext } from "@aioloop/aioloop/glib";
   * const ctx = new GMainContext();
   * assertEquals(ctx.isOwner(), false);
   * ctx.destroy();
   * ```
   */
  isOwner(): boolean {
    return this.#core.ownerCount > 0;
  }

  /**
   * Phase 1: runs the prepare step of every source (most urgent first,
   * stopping below the first ready priority) and computes the poll timeout.
   * Also drops what a previous `check` queued but nobody dispatched.
   *
   * Counterpart: `g_main_context_prepare()`.
   *
   * Thread: home thread only.
   *
   * @returns Whether a source is ready, and the priority to poll up to.
   * @throws {Error} When called from a prepare or check function.
   * @throws {Deno.errors.BadResource} When the context is destroyed.
   *
   * @example The four phases by hand
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext, type GPollFD, idleSourceNew } from "@aioloop/aioloop/glib";
   * import { pollNs, PollFdArray } from "@aioloop/aioloop/sys";
   * const ctx = new GMainContext();
   * const s = idleSourceNew();
   * let dispatched = 0;
   * s.setCallback(() => (dispatched++, false));
   * s.attach(ctx);
   * const fds: GPollFD[] = [];
   * const { priority } = ctx.prepare();
   * const { timeoutNs, count } = ctx.query(priority, fds);
   * const pfa = new PollFdArray();
   * for (let i = 0; i < count; i++) pfa.push(fds[i].fd, fds[i].events);
   * pollNs(pfa, timeoutNs); // 0 here: the idle source is ready
   * for (let i = 0; i < count; i++) fds[i].revents = pfa.revents(i);
   * if (ctx.check(priority, fds, count)) ctx.dispatch();
   * ctx.destroy();
   * ```
   */
  prepare(): GMainContextPrepareResult {
    const c = this.#live();
    const ready = c.prepare();
    return { ready, priority: c.readyPriority };
  }

  /**
   * Phase 2: fills `fds` with the fds to poll (sources of priority up to
   * `maxPriority`, plus the wakeup eventfd) and returns the timeout.
   * Existing objects in `fds` are reused and new ones appended; entries
   * past `count` are set to fd -1, which poll(2) ignores. Entries come out
   * sorted by fd; pass the array back to `check` unchanged (apart from
   * `revents`).
   *
   * Counterpart: `g_main_context_query()`.
   *
   * Thread: home thread only.
   *
   * @param maxPriority The `priority` from `prepare`.
   * @param fds The caller's array, filled in place.
   * @returns The timeout (ms rounded up, and ns) and the entry count.
   * @throws {Deno.errors.BadResource} When the context is destroyed.
   *
   * @example The wakeup fd is always there
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext, type GPollFD } from "@aioloop/aioloop/glib";
   * const ctx = new GMainContext();
   * const fds: GPollFD[] = [];
   * const q = ctx.query(ctx.prepare().priority, fds);
   * assertEquals(q.count, 1);
   * assertEquals(fds[0].fd === ctx.wakeupFd, true);
   * ctx.destroy();
   * ```
   */
  query(maxPriority: number, fds: GPollFD[]): GMainContextQueryResult {
    if (typeof maxPriority !== "number" || Number.isNaN(maxPriority)) {
      throw new TypeError("Max priority must be a number");
    }
    if (!Array.isArray(fds)) throw new TypeError("Expected an array of GPollFD");
    const c = this.#live();
    const count = c.query(maxPriority, fds);
    return {
      timeoutMs: roundTimeoutToMs(c.hasTimeout, c.timeoutNs),
      timeoutNs: c.hasTimeout ? c.timeoutNs : -1,
      count,
    };
  }

  /**
   * Phase 4 (after the poll): takes the `revents` of `fds`, clears the
   * wakeup eventfd if it fired, runs the check step of the sources and
   * queues the ready ones of the most urgent ready priority. Returns false
   * without queuing anything when the poll set changed since `query` (the
   * next iteration picks the work up).
   *
   * Counterpart: `g_main_context_check()`.
   *
   * Thread: home thread only.
   *
   * @param maxPriority The `priority` from `prepare`.
   * @param fds The array `query` filled, with `revents` set by the poll.
   * @param count How many entries were polled (default: all).
   * @returns Whether some source is ready to dispatch.
   * @throws {Error} When called from a prepare or check function.
   * @throws {Deno.errors.BadResource} When the context is destroyed.
   *
   * @example See prepare
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext, type GPollFD } from "@aioloop/aioloop/glib";
   * const ctx = new GMainContext();
   * const fds: GPollFD[] = [];
   * const { priority } = ctx.prepare();
   * const { count } = ctx.query(priority, fds);
   * assertEquals(ctx.check(priority, fds, count), false);
   * ctx.destroy();
   * ```
   */
  check(maxPriority: number, fds: readonly GPollFD[], count: number = fds.length): boolean {
    if (typeof maxPriority !== "number" || Number.isNaN(maxPriority)) {
      throw new TypeError("Max priority must be a number");
    }
    if (!Number.isInteger(count) || count < 0 || count > fds.length) {
      throw new RangeError(`Count must be an integer from 0 to ${fds.length}, got ${count}`);
    }
    return this.#live().check(maxPriority, fds, count);
  }

  /**
   * Phase 5: dispatches the sources the last `check` queued. A source whose
   * dispatch returns `G_SOURCE_REMOVE` is destroyed. If a callback throws,
   * the exception propagates; the sources not yet dispatched stay ready for
   * the next iteration.
   *
   * Counterpart: `g_main_context_dispatch()`.
   *
   * Thread: home thread only.
   *
   * @throws {Deno.errors.BadResource} When the context is destroyed.
   *
   * @example See prepare
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext } from "@aioloop/aioloop/glib";
   * const ctx = new GMainContext();
   * ctx.dispatch(); // nothing queued
   * assertEquals(ctx.pending(), false);
   * ctx.destroy();
   * ```
   */
  dispatch(): void {
    this.#live().dispatch();
  }

  /**
   * Runs one iteration: prepare, query, poll (ppoll(2), blocking when
   * `mayBlock` and nothing is ready, until the earliest timeout or an fd
   * event or a wakeup), check, dispatch.
   *
   * With `mayBlock` and no source that can ever become ready, this blocks
   * until `wakeup()`.
   *
   * Counterpart: `g_main_context_iteration()`.
   *
   * Thread: home thread only. It blocks the isolate while it waits.
   *
   * @param mayBlock Whether to wait for something to happen.
   * @returns Whether some source was dispatched.
   * @throws {Error} When called from a prepare or check function.
   * @throws {Deno.errors.BadResource} When the context is destroyed.
   *
   * @example Draining ready work
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext } from "@aioloop/aioloop/glib";
   * const ctx = new GMainContext();
   * while (ctx.iteration(false));
   * assertEquals(ctx.iteration(false), false); // nothing left to dispatch
   * ctx.destroy();
   * ```
   */
  iteration(mayBlock: boolean): boolean {
    return this.#core.iterate(!!mayBlock, true);
  }

  /**
   * Whether some source is ready: a non-blocking iteration without the
   * dispatch. The sources found ready stay ready for the next iteration.
   *
   * Counterpart: `g_main_context_pending()`.
   *
   * Thread: home thread only.
   *
   * @returns True when an iteration would dispatch something.
   * @throws {Deno.errors.BadResource} When the context is destroyed.
   *
   * @example An idle source is pending
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext, idleSourceNew } from "@aioloop/aioloop/glib";
   * const ctx = new GMainContext();
   * const s = idleSourceNew();
   * s.setCallback(() => false);
   * s.attach(ctx);
   * assertEquals(ctx.pending(), true);
   * ctx.destroy();
   * ```
   */
  pending(): boolean {
    return this.#core.iterate(false, false);
  }

  /**
   * Rings the context's wakeup eventfd, so that a poll over its fds (a
   * blocking iteration, or an outside poll between `query` and `check`)
   * returns. From another thread, write an 8-byte 1 to `wakeupFd` instead.
   *
   * Counterpart: `g_main_context_wakeup()`.
   *
   * Thread: home thread; other threads write to `wakeupFd`.
   *
   * @throws {Deno.errors.BadResource} When the context is destroyed.
   *
   * @example A wakeup makes the next blocking iteration return
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext } from "@aioloop/aioloop/glib";
   * const ctx = new GMainContext();
   * ctx.wakeup();
   * assertEquals(ctx.iteration(true), false); // returns at once, nothing dispatched
   * ctx.destroy();
   * ```
   */
  wakeup(): void {
    this.#live().wakeup();
  }

  /**
   * The wakeup eventfd (created on first use). Any thread that has this
   * number may write an 8-byte native-endian 1 to it to wake the context,
   * as long as the context is not destroyed (the fd is closed then and its
   * number may be reused).
   *
   * Counterpart: the fd of GLib's private `GWakeup`.
   *
   * Thread: read it on the home thread; write to the fd from any thread.
   *
   * @returns The eventfd.
   * @throws {Deno.errors.BadResource} When the context is destroyed.
   *
   * @example Ringing through the fd
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext } from "@aioloop/aioloop/glib";
   * import { write } from "@aioloop/aioloop/sys";
   * const ctx = new GMainContext();
   * write(ctx.wakeupFd, new Uint8Array(new BigUint64Array([1n]).buffer));
   * assertEquals(ctx.iteration(true), false); // returns at once: a wakeup, nothing dispatched
   * ctx.destroy();
   * ```
   */
  get wakeupFd(): number {
    return this.#live().ensureWakeup();
  }

  /**
   * Runs `fn` in this context: right now if the context is owned (we are
   * inside its iteration) or is the thread default and can be acquired;
   * otherwise from an idle source of `priority` attached to it. As in GLib,
   * `fn` is called again as long as it returns true.
   *
   * Pass `{ priority, notify }` for the full form: `notify` is called once
   * when `fn` is done, right after it when `fn` ran at once (even if it
   * threw), or when the idle source is destroyed.
   *
   * Counterpart: `g_main_context_invoke_full()`.
   *
   * Thread: home thread only.
   *
   * @param fn The function; return false when done.
   * @param priority The idle source's priority (default `G_PRIORITY_DEFAULT`),
   *   or the options of the full form.
   * @throws {TypeError} When `fn` is not a function.
   * @throws {Deno.errors.BadResource} When the context is destroyed.
   *
   * @example Deferred to the next iteration of a private context
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext } from "@aioloop/aioloop/glib";
   * const ctx = new GMainContext();
   * let ran = false;
   * ctx.invoke(() => (ran = true, false));
   * assertEquals(ran, false);
   * ctx.iteration(false);
   * assertEquals(ran, true);
   * ctx.destroy();
   * ```
   */
  invoke(fn: GSourceFunc, priority: number | GSourceAddOptions = 0): void {
    if (typeof fn !== "function") throw new TypeError("Invoke needs a function");
    const { priority: prio, notify } = addArgs(priority, 0, "invoke");
    const c = this.#live();
    if (c.ownerCount > 0) {
      try {
        while (fn());
      } finally {
        notify?.();
      }
      return;
    }
    const td = GMainContext.threadDefault() ?? defaultContext;
    if (td === this && this.acquire()) {
      try {
        while (fn());
      } finally {
        // As in GLib, released before the notify runs.
        this.release();
        notify?.();
      }
      return;
    }
    const s = new GSource<GSourceFunc>(INVOKE_FUNCS);
    s.setPriority(prio);
    s.setName("GIdleSource");
    s.setCallback(fn, notify);
    try {
      s.attach(this);
    } finally {
      s.unref();
    }
  }

  /**
   * The live (not destroyed) source with this id, or null.
   *
   * Counterpart: `g_main_context_find_source_by_id()`.
   *
   * Thread: home thread only.
   *
   * @param id A source id.
   * @returns The source, or null.
   * @throws {RangeError} When `id` is not a positive integer.
   *
   * @example Looking a source up
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext, idleSourceNew } from "@aioloop/aioloop/glib";
   * const ctx = new GMainContext();
   * const s = idleSourceNew();
   * const id = s.attach(ctx);
   * assertEquals(ctx.findSourceById(id) === s, true);
   * ctx.destroy();
   * ```
   */
  findSourceById(id: number): GSource<GSourceCallback> | null {
    if (!Number.isInteger(id) || id <= 0) {
      throw new RangeError(`Source id must be a positive integer, got ${id}`);
    }
    const s = this.#core.ids.get(id);
    return s === undefined || s.destroyed ? null : s.wrapper as GSource<GSourceCallback>;
  }

  /**
   * Adds a caller-owned fd record to the poll set of the context itself
   * (not of a source). Its `revents` is updated by `check`.
   *
   * Counterpart: `g_main_context_add_poll()`.
   *
   * Thread: home thread only.
   *
   * @param pfd The fd record (kept by identity).
   * @param priority Polled only when no source more urgent than this is ready.
   * @throws {RangeError} When the fd or priority is out of range.
   * @throws {Deno.errors.BadResource} When the context is destroyed.
   *
   * @example Adding and removing
   * ```ts
   * import { G_IO_IN, GMainContext } from "@aioloop/aioloop/glib";
   * const ctx = new GMainContext();
   * const pfd = { fd: 0, events: G_IO_IN, revents: 0 };
   * ctx.addPoll(pfd, 0);
   * ctx.removePoll(pfd);
   * ctx.destroy();
   * ```
   */
  addPoll(pfd: GPollFD, priority: number): void {
    if (pfd === null || typeof pfd !== "object") throw new TypeError("Expected a GPollFD");
    if (!Number.isInteger(pfd.fd) || pfd.fd < 0) {
      throw new RangeError(`File descriptor must be a non-negative integer, got ${pfd.fd}`);
    }
    if (!Number.isInteger(priority) || priority < -0x80000000 || priority > 0x7fffffff) {
      throw new RangeError(`Priority must be a 32-bit integer, got ${priority}`);
    }
    this.#live().addContextPoll(pfd, priority);
  }

  /**
   * Removes a record added with `addPoll` (nothing happens if absent).
   *
   * Counterpart: `g_main_context_remove_poll()`.
   *
   * Thread: home thread only.
   *
   * @param pfd The object passed to `addPoll`.
   *
   * @example See addPoll
   * ```ts
   * import { GMainContext } from "@aioloop/aioloop/glib";
   * const ctx = new GMainContext();
   * ctx.removePoll({ fd: 0, events: 1, revents: 0 }); // not there: no-op
   * ctx.destroy();
   * ```
   */
  removePoll(pfd: GPollFD): void {
    if (!this.#core.destroyed) this.#core.removeContextPoll(pfd);
  }

  /**
   * Takes a reference.
   *
   * Counterpart: `g_main_context_ref()`.
   *
   * @returns The context.
   * @throws {Deno.errors.BadResource} When the context is destroyed.
   *
   * @example Two owners
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext } from "@aioloop/aioloop/glib";
   * const ctx = new GMainContext().ref();
   * ctx.unref();
   * assertEquals(ctx.isDestroyed(), false);
   * ctx.unref();
   * assertEquals(ctx.isDestroyed(), true);
   * ```
   */
  ref(): this {
    this.#live();
    this.#refs++;
    return this;
  }

  /**
   * Drops a reference; the last one destroys the context (see `destroy`).
   *
   * Counterpart: `g_main_context_unref()`.
   *
   * @example Dropping the only reference
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext } from "@aioloop/aioloop/glib";
   * const ctx = new GMainContext();
   * ctx.unref();
   * assertEquals(ctx.isDestroyed(), true);
   * ```
   */
  unref(): void {
    if (this.#core.destroyed) return;
    if (--this.#refs <= 0) this.destroy();
  }

  /**
   * Destroys the context now, whatever its reference count: destroys every
   * attached source (each is finalized once its last reference goes),
   * drops queued dispatches and closes the wakeup eventfd. Later calls to
   * most methods throw `Deno.errors.BadResource`; a `GMainLoop` running on
   * it stops. Destroying the default context makes `default()` create a
   * new one. Idempotent. Do not destroy a context while an outside poll
   * (between `query` and `check`) still waits on its fds: the eventfd's
   * number may be reused once closed.
   *
   * Counterpart: `g_main_context_unref()` reaching zero.
   *
   * Thread: home thread only.
   *
   * @example Tearing down
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext, timeoutSourceNew } from "@aioloop/aioloop/glib";
   * const ctx = new GMainContext();
   * const t = timeoutSourceNew(1000);
   * t.attach(ctx);
   * ctx.destroy();
   * assertEquals(t.isDestroyed(), true);
   * ```
   */
  destroy(): void {
    const c = this.#core;
    if (c.destroyed) return;
    this.#refs = 0;
    if (defaultContext === this) defaultContext = null;
    c.destroy();
  }

  /**
   * Whether the context is destroyed.
   *
   * Counterpart: none (a GLib context is freed at its last unref).
   *
   * @returns True after `destroy` (or the last `unref`).
   *
   * @example A fresh context
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext } from "@aioloop/aioloop/glib";
   * const ctx = new GMainContext();
   * assertEquals(ctx.isDestroyed(), false);
   * ctx.destroy();
   * ```
   */
  isDestroyed(): boolean {
    return this.#core.destroyed;
  }

  /**
   * Same as `destroy()`, for `using`.
   *
   * Counterpart: `g_main_context_unref()` (`g_autoptr` cleanup).
   *
   * @example Scoped context
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext } from "@aioloop/aioloop/glib";
   * {
   *   using ctx = new GMainContext();
   *   assertEquals(ctx.iteration(false), false);
   * }
   * ```
   */
  [Symbol.dispose](): void {
    this.destroy();
  }
}

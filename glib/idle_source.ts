/**
 * Idle sources: always ready, so they run whenever nothing of a more urgent
 * priority is (their default priority is `G_PRIORITY_DEFAULT_IDLE`).
 *
 * @module
 */
import { G_PRIORITY_DEFAULT_IDLE } from "./constants.ts";
import { GSource, type GSourceFunc } from "./source.ts";

class IdleSource extends GSource<GSourceFunc> {
  constructor() {
    super();
    this.setPriority(G_PRIORITY_DEFAULT_IDLE);
    this.setName("GIdleSource");
  }

  protected override prepare(): boolean {
    return true;
  }

  protected override check(): boolean {
    return true;
  }

  protected override dispatch(callback: GSourceFunc | null): boolean {
    if (callback === null) {
      this.destroy();
      throw new Error("Idle source dispatched without a callback: call setCallback()");
    }
    return !!callback();
  }
}

/**
 * Creates an idle source (priority `G_PRIORITY_DEFAULT_IDLE`, named
 * "GIdleSource"). It is ready in every iteration; its `() => boolean`
 * callback returns true (`G_SOURCE_CONTINUE`) to run again, false
 * (`G_SOURCE_REMOVE`) to be destroyed.
 *
 * Counterpart: `g_idle_source_new()`.
 *
 * Thread: any; attach it on its context's home thread.
 *
 * @returns The new source (one reference, unattached).
 *
 * @example An idle source on a private context
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { GMainContext, idleSourceNew } from "@aioloop/aioloop/glib";
 * const ctx = new GMainContext();
 * const s = idleSourceNew();
 * let n = 0;
 * s.setCallback(() => ++n < 3);
 * s.attach(ctx);
 * s.unref();
 * while (ctx.iteration(false));
 * assertEquals(n, 3);
 * ctx.destroy();
 * ```
 */
export function idleSourceNew(): GSource<GSourceFunc> {
  return new IdleSource();
}

/**
 * Calls `fn` from the global default context whenever nothing more urgent
 * is ready, until it returns false (`G_SOURCE_REMOVE`).
 *
 * Counterpart: `g_idle_add_full()` / `g_idle_add()`.
 *
 * Thread: home thread of the default context.
 *
 * @param fn The callback; return true to be called again.
 * @param priority The priority (default `G_PRIORITY_DEFAULT_IDLE`).
 * @returns The source id in the default context.
 * @throws {TypeError} When `fn` is not a function.
 * @throws {RangeError} When the priority is out of range.
 *
 * @example One idle call
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { GMainContext, idleAdd } from "@aioloop/aioloop/glib";
 * let ran = false;
 * idleAdd(() => (ran = true, false));
 * GMainContext.default().iteration(false);
 * assertEquals(ran, true);
 * ```
 */
export function idleAdd(fn: GSourceFunc, priority: number = G_PRIORITY_DEFAULT_IDLE): number {
  if (typeof fn !== "function") throw new TypeError("Idle callback must be a function");
  const s = new IdleSource();
  if (priority !== G_PRIORITY_DEFAULT_IDLE) s.setPriority(priority);
  s.setCallback(fn);
  const id = s.attach(null);
  s.unref();
  return id;
}

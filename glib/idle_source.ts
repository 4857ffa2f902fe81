/**
 * Idle sources: always ready, so they run whenever nothing of a more urgent
 * priority is (their default priority is `G_PRIORITY_DEFAULT_IDLE`).
 *
 * @module
 */
import { G_PRIORITY_DEFAULT_IDLE } from "./constants.ts";
import { GSource, type GSourceAddOptions, type GSourceFunc } from "./source.ts";
import { addArgs } from "./_add_options.ts";

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
 * Pass `{ priority, notify }` instead of a priority for the full form: the
 * notify is called once when the source is destroyed.
 *
 * Counterpart: `g_idle_add_full()` / `g_idle_add()`.
 *
 * Thread: home thread of the default context.
 *
 * @param fn The callback; return true to be called again.
 * @param priority The priority (default `G_PRIORITY_DEFAULT_IDLE`), or the
 *   options of the full form.
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
export function idleAdd(
  fn: GSourceFunc,
  priority: number | GSourceAddOptions = G_PRIORITY_DEFAULT_IDLE,
): number {
  if (typeof fn !== "function") throw new TypeError("Idle callback must be a function");
  const a = addArgs(priority, G_PRIORITY_DEFAULT_IDLE, "idleAdd");
  const s = new IdleSource();
  if (a.priority !== G_PRIORITY_DEFAULT_IDLE) s.setPriority(a.priority);
  s.setCallback(fn, a.notify);
  try {
    return s.attach(null);
  } finally {
    s.unref();
  }
}

/**
 * {@linkcode GMainLoop}: runs a {@linkcode GMainContext} until told to quit.
 *
 * @module
 */
import { GMainContext } from "./main_context.ts";
import { contextCoreOf } from "./_gmain.ts";

/**
 * A loop over one context: {@linkcode GMainLoop.prototype.run} iterates
 * (blocking) until {@linkcode GMainLoop.prototype.quit}. Runs may nest, for
 * instance a modal loop run from a callback; quitting a loop ends every run
 * of that loop object once its current iteration returns.
 *
 * The loop holds a reference on its context. Destroying the context stops
 * the loop.
 *
 * Counterpart: `GMainLoop` (`g_main_loop_new()`).
 *
 * Thread: home thread of the context only. `run` blocks the isolate.
 *
 * @example Quitting from a timeout
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { GMainContext, GMainLoop, timeoutSourceNew } from "@aioloop/aioloop/glib";
 * const ctx = new GMainContext();
 * const loop = new GMainLoop(ctx);
 * const t = timeoutSourceNew(5);
 * t.setCallback(() => {
 *   loop.quit();
 *   return false;
 * });
 * t.attach(ctx);
 * t.unref();
 * loop.run();
 * assertEquals(loop.isRunning(), false);
 * ctx.destroy();
 * ```
 */
export class GMainLoop {
  #ctx: GMainContext;
  #running: boolean;
  #refs = 1;

  /**
   * Creates a loop on `context` (the global default when omitted).
   *
   * Counterpart: `g_main_loop_new()`.
   *
   * @param context The context to run.
   * @param isRunning The initial running flag (GLib's argument; `run` sets it anyway).
   * @throws {Deno.errors.BadResource} When the context is destroyed.
   *
   * @example A loop on the default context
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext, GMainLoop } from "@aioloop/aioloop/glib";
   * const loop = new GMainLoop();
   * assertEquals(loop.getContext() === GMainContext.default(), true);
   * ```
   */
  constructor(context?: GMainContext | null, isRunning: boolean = false) {
    const ctx = context ?? GMainContext.default();
    ctx.ref();
    this.#ctx = ctx;
    this.#running = !!isRunning;
  }

  /**
   * Iterates the context, blocking, until `quit()` (or until the context is
   * destroyed). If a callback throws, the exception leaves `run` and the
   * loop is no longer running.
   *
   * Counterpart: `g_main_loop_run()`.
   *
   * Thread: home thread only.
   *
   * @throws {Deno.errors.BadResource} When the context is destroyed.
   * @throws {Error} When called from a prepare or check function.
   *
   * @example A nested run
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext, GMainLoop, idleSourceNew, timeoutSourceNew } from "@aioloop/aioloop/glib";
   * const ctx = new GMainContext();
   * const outer = new GMainLoop(ctx);
   * const inner = new GMainLoop(ctx);
   * const t = timeoutSourceNew(1);
   * t.setCallback(() => (inner.quit(), false));
   * const i = idleSourceNew();
   * i.setCallback(() => {
   *   t.attach(ctx);
   *   inner.run(); // returns when the timeout quits it
   *   outer.quit();
   *   return false;
   * });
   * i.attach(ctx);
   * outer.run();
   * assertEquals([inner.isRunning(), outer.isRunning()], [false, false]);
   * ctx.destroy();
   * ```
   */
  run(): void {
    const core = contextCoreOf(this.#ctx);
    if (core.destroyed) throw new Deno.errors.BadResource("Context is destroyed");
    if (core.inCheckOrPrepare > 0) {
      throw new Error("Cannot run a loop from inside a prepare or check function");
    }
    core.ownerCount++;
    this.#running = true;
    try {
      while (this.#running && !core.destroyed) core.iterate(true, true);
    } catch (e) {
      this.#running = false;
      throw e;
    } finally {
      core.ownerCount--;
    }
  }

  /**
   * Stops the loop: every `run` of it returns after the current iteration.
   * If the context is being polled from outside (between `query` and
   * `check`), its wakeup is rung.
   *
   * Counterpart: `g_main_loop_quit()`.
   *
   * Thread: home thread only.
   *
   * @example Quitting before running is remembered until run
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainLoop, GMainContext } from "@aioloop/aioloop/glib";
   * const ctx = new GMainContext();
   * const loop = new GMainLoop(ctx, true);
   * loop.quit();
   * assertEquals(loop.isRunning(), false);
   * ctx.destroy();
   * ```
   */
  quit(): void {
    this.#running = false;
    contextCoreOf(this.#ctx).signalIfPolling();
  }

  /**
   * Whether the loop is running (between `run` and `quit`).
   *
   * Counterpart: `g_main_loop_is_running()`.
   *
   * @returns The running flag.
   *
   * @example A new loop
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainLoop } from "@aioloop/aioloop/glib";
   * assertEquals(new GMainLoop().isRunning(), false);
   * ```
   */
  isRunning(): boolean {
    return this.#running;
  }

  /**
   * The context this loop runs.
   *
   * Counterpart: `g_main_loop_get_context()`.
   *
   * @returns The context.
   *
   * @example A loop on a private context
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext, GMainLoop } from "@aioloop/aioloop/glib";
   * const ctx = new GMainContext();
   * assertEquals(new GMainLoop(ctx).getContext() === ctx, true);
   * ctx.destroy();
   * ```
   */
  getContext(): GMainContext {
    return this.#ctx;
  }

  /**
   * Takes a reference.
   *
   * Counterpart: `g_main_loop_ref()`.
   *
   * @returns The loop.
   *
   * @example Sharing a loop
   * ```ts
   * import { GMainLoop } from "@aioloop/aioloop/glib";
   * const loop = new GMainLoop().ref();
   * loop.unref();
   * loop.unref();
   * ```
   */
  ref(): this {
    if (this.#refs <= 0) throw new Deno.errors.BadResource("Loop is finalized");
    this.#refs++;
    return this;
  }

  /**
   * Drops a reference; the last one releases the context's reference.
   *
   * Counterpart: `g_main_loop_unref()`.
   *
   * @example Dropping a loop and its context
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { GMainContext, GMainLoop } from "@aioloop/aioloop/glib";
   * const ctx = new GMainContext();
   * const loop = new GMainLoop(ctx);
   * ctx.unref();
   * loop.unref();
   * assertEquals(ctx.isDestroyed(), true);
   * ```
   */
  unref(): void {
    if (this.#refs <= 0) throw new Deno.errors.BadResource("Loop is already finalized");
    if (--this.#refs === 0) this.#ctx.unref();
  }
}

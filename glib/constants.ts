/**
 * GLib's main-loop constants: source priorities, the dispatch return values
 * and the GIOCondition bits (which are poll(2)'s values on Linux).
 *
 * @module
 */

/**
 * Priority for sources that must run before the default ones.
 *
 * Counterpart: `G_PRIORITY_HIGH`.
 *
 * @example Running before default sources
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { G_PRIORITY_HIGH, idleSourceNew } from "@aioloop/aioloop/glib";
 * const s = idleSourceNew();
 * s.setPriority(G_PRIORITY_HIGH);
 * assertEquals(s.getPriority(), -100);
 * ```
 */
export const G_PRIORITY_HIGH: -100 = -100;

/**
 * The priority of timeouts, fd sources and most other sources.
 *
 * Counterpart: `G_PRIORITY_DEFAULT`.
 *
 * @example The default priority
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { G_PRIORITY_DEFAULT, GSource } from "@aioloop/aioloop/glib";
 * const s = new GSource({ dispatch: () => false });
 * assertEquals(s.getPriority() === G_PRIORITY_DEFAULT, true);
 * ```
 */
export const G_PRIORITY_DEFAULT = 0;

/**
 * Priority for idle work that should run before redraws (GTK's convention).
 *
 * Counterpart: `G_PRIORITY_HIGH_IDLE`.
 *
 * @example An idle callback above the default idle priority
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { G_PRIORITY_HIGH_IDLE, idleSourceNew } from "@aioloop/aioloop/glib";
 * const s = idleSourceNew();
 * s.setPriority(G_PRIORITY_HIGH_IDLE);
 * assertEquals(s.getPriority(), G_PRIORITY_HIGH_IDLE);
 * ```
 */
export const G_PRIORITY_HIGH_IDLE = 100;

/**
 * The priority of idle sources: they run only when nothing more urgent is
 * ready.
 *
 * Counterpart: `G_PRIORITY_DEFAULT_IDLE`.
 *
 * @example Idle sources start at this priority
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { G_PRIORITY_DEFAULT_IDLE, idleSourceNew } from "@aioloop/aioloop/glib";
 * assertEquals(idleSourceNew().getPriority() === G_PRIORITY_DEFAULT_IDLE, true);
 * ```
 */
export const G_PRIORITY_DEFAULT_IDLE = 200;

/**
 * Priority for background work.
 *
 * Counterpart: `G_PRIORITY_LOW`.
 *
 * @example A low-priority source
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { G_PRIORITY_LOW, idleSourceNew } from "@aioloop/aioloop/glib";
 * const s = idleSourceNew();
 * s.setPriority(G_PRIORITY_LOW);
 * assertEquals(s.getPriority(), G_PRIORITY_LOW);
 * ```
 */
export const G_PRIORITY_LOW = 300;

/**
 * Returned by a dispatch function or callback to keep the source attached.
 *
 * Counterpart: `G_SOURCE_CONTINUE`.
 *
 * @example A callback that keeps running
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { G_SOURCE_CONTINUE } from "@aioloop/aioloop/glib";
 * const tick = (): boolean => G_SOURCE_CONTINUE;
 * assertEquals(tick(), true);
 * ```
 */
export const G_SOURCE_CONTINUE = true;

/**
 * Returned by a dispatch function or callback to destroy the source.
 *
 * Counterpart: `G_SOURCE_REMOVE`.
 *
 * @example A one-shot callback
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { G_SOURCE_REMOVE } from "@aioloop/aioloop/glib";
 * const once = (): boolean => G_SOURCE_REMOVE;
 * assertEquals(once(), false);
 * ```
 */
export const G_SOURCE_REMOVE = false;

/**
 * Data to read (POLLIN).
 *
 * Counterpart: `G_IO_IN`.
 *
 * @example Watching for input
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { G_IO_IN } from "@aioloop/aioloop/glib";
 * assertEquals(G_IO_IN, 1);
 * ```
 */
export const G_IO_IN = 0x001;

/**
 * Urgent data to read (POLLPRI).
 *
 * Counterpart: `G_IO_PRI`.
 *
 * @example The value
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { G_IO_PRI } from "@aioloop/aioloop/glib";
 * assertEquals(G_IO_PRI, 2);
 * ```
 */
export const G_IO_PRI = 0x002;

/**
 * Writing will not block (POLLOUT).
 *
 * Counterpart: `G_IO_OUT`.
 *
 * @example The value
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { G_IO_OUT } from "@aioloop/aioloop/glib";
 * assertEquals(G_IO_OUT, 4);
 * ```
 */
export const G_IO_OUT = 0x004;

/**
 * Error condition (POLLERR); always reported, never needs asking for.
 *
 * Counterpart: `G_IO_ERR`.
 *
 * @example The value
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { G_IO_ERR } from "@aioloop/aioloop/glib";
 * assertEquals(G_IO_ERR, 8);
 * ```
 */
export const G_IO_ERR = 0x008;

/**
 * Hung up, e.g. the other end of a pipe closed (POLLHUP); always reported.
 *
 * Counterpart: `G_IO_HUP`.
 *
 * @example The value
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { G_IO_HUP } from "@aioloop/aioloop/glib";
 * assertEquals(G_IO_HUP, 16);
 * ```
 */
export const G_IO_HUP = 0x010;

/**
 * Invalid request: the fd is not open (POLLNVAL); always reported.
 *
 * Counterpart: `G_IO_NVAL`.
 *
 * @example The value
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { G_IO_NVAL } from "@aioloop/aioloop/glib";
 * assertEquals(G_IO_NVAL, 32);
 * ```
 */
export const G_IO_NVAL = 0x020;

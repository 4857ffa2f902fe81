/**
 * Removing a source of the default context by id.
 *
 * @module
 */
import { GMainContext } from "./main_context.ts";

/**
 * Destroys the source with id `id` in the global default context (ids from
 * `timeoutAdd`, `idleAdd`, `unixFdAdd` ...). Returns false when no live
 * source has that id (GLib also logs a critical warning then).
 *
 * Counterpart: `g_source_remove()`.
 *
 * Thread: home thread of the default context.
 *
 * @param id The source id.
 * @returns Whether a source was found and destroyed.
 * @throws {RangeError} When `id` is not a positive integer.
 *
 * @example Cancelling a timeout
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { sourceRemove, timeoutAdd } from "@aioloop/aioloop/glib";
 * const id = timeoutAdd(1000, () => false);
 * assertEquals(sourceRemove(id), true);
 * assertEquals(sourceRemove(id), false);
 * ```
 */
export function sourceRemove(id: number): boolean {
  const s = GMainContext.default().findSourceById(id);
  if (s === null) return false;
  s.destroy();
  return true;
}

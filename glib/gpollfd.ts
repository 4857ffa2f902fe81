/**
 * One polled fd as GLib describes it: the fd, the events wanted and the
 * events seen by the last poll. Event values are poll(2)'s (G_IO_IN ==
 * POLLIN ...).
 *
 * Counterpart: GLib's `GPollFD`.
 *
 * @example Describing stdin
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import type { GPollFD } from "@aioloop/aioloop/glib";
 * const pfd: GPollFD = { fd: 0, events: 1, revents: 0 };
 * assertEquals(pfd.fd, 0);
 * ```
 */
export interface GPollFD {
  /** The file descriptor. */
  fd: number;
  /** The events to watch (G_IO_IN, G_IO_OUT ...). */
  events: number;
  /** The events the last poll returned. */
  revents: number;
}

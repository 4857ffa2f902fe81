/**
 * Unix fd sources: ready when an fd has the requested events (or ERR, HUP,
 * NVAL), level-triggered.
 *
 * @module
 */
import { G_PRIORITY_DEFAULT } from "./constants.ts";
import { GSource, type GSourceAddOptions, type GSourceFdTag } from "./source.ts";
import { addArgs } from "./_add_options.ts";

/**
 * The callback of a unix fd source: gets the fd and the `G_IO_*` events
 * seen; returns true (`G_SOURCE_CONTINUE`) to keep watching, false
 * (`G_SOURCE_REMOVE`) to destroy the source.
 *
 * Counterpart: `GUnixFDSourceFunc`.
 *
 * @example Draining a readable fd
 * ```ts
 * import { G_IO_HUP, type GUnixFDSourceFunc } from "@aioloop/aioloop/glib";
 * import { read } from "@aioloop/aioloop/sys";
 * const buf = new Uint8Array(64);
 * const onReadable: GUnixFDSourceFunc = (fd, cond) => {
 *   while (read(fd, buf) > 0);
 *   return (cond & G_IO_HUP) === 0;
 * };
 * ```
 */
export type GUnixFDSourceFunc = (fd: number, condition: number) => boolean;

class UnixFdSource extends GSource<GUnixFDSourceFunc> {
  readonly #fd: number;
  readonly #tag: GSourceFdTag;

  constructor(fd: number, condition: number) {
    super();
    this.#fd = fd;
    this.#tag = this.addUnixFd(fd, condition);
  }

  protected override dispatch(callback: GUnixFDSourceFunc | null): boolean {
    if (callback === null) {
      this.destroy();
      throw new Error("Unix fd source dispatched without a callback: call setCallback()");
    }
    return !!callback(this.#fd, this.queryUnixFd(this.#tag));
  }
}

/**
 * Creates a source watching `fd` for `condition` (`G_IO_IN`, `G_IO_OUT`
 * ...). Its callback is a {@linkcode GUnixFDSourceFunc}.
 *
 * Counterpart: `g_unix_fd_source_new()`.
 *
 * Thread: any; attach it on its context's home thread.
 *
 * @param fd A non-negative fd (the source does not own it).
 * @param condition The `G_IO_*` events to watch.
 * @returns The new source (one reference, unattached).
 * @throws {RangeError} When `fd` or `condition` is out of range.
 *
 * @example Reading a pipe
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { G_IO_IN, GMainContext, unixFdSourceNew } from "@aioloop/aioloop/glib";
 * import { close, pipe, read, write } from "@aioloop/aioloop/sys";
 * const [r, w] = pipe();
 * const ctx = new GMainContext();
 * const s = unixFdSourceNew(r, G_IO_IN);
 * s.setCallback((fd) => {
 *   assertEquals(read(fd, new Uint8Array(8)), 1);
 *   return false;
 * });
 * s.attach(ctx);
 * s.unref();
 * write(w, new Uint8Array([42]));
 * ctx.iteration(true);
 * ctx.destroy();
 * close(r);
 * close(w);
 * ```
 */
export function unixFdSourceNew(fd: number, condition: number): GSource<GUnixFDSourceFunc> {
  return new UnixFdSource(fd, condition);
}

/**
 * Calls `fn(fd, condition)` from the global default context whenever `fd`
 * has any of `condition`'s events, until it returns false.
 *
 * Pass `{ priority, notify }` for the full form: the notify is called once
 * when the source is destroyed.
 *
 * Counterpart: `g_unix_fd_add_full()` / `g_unix_fd_add()`.
 *
 * Thread: home thread of the default context.
 *
 * @param fd The fd (not owned).
 * @param condition The `G_IO_*` events to watch.
 * @param fn The callback.
 * @param options The priority (default `G_PRIORITY_DEFAULT`) and notify.
 * @returns The source id in the default context.
 * @throws {RangeError} When `fd` or `condition` is out of range.
 * @throws {TypeError} When `fn` is not a function.
 *
 * @example Watching and unwatching
 * ```ts
 * import { G_IO_IN, sourceRemove, unixFdAdd } from "@aioloop/aioloop/glib";
 * import { close, pipe } from "@aioloop/aioloop/sys";
 * const [r, w] = pipe();
 * const id = unixFdAdd(r, G_IO_IN, () => true);
 * sourceRemove(id);
 * close(r);
 * close(w);
 * ```
 */
export function unixFdAdd(
  fd: number,
  condition: number,
  fn: GUnixFDSourceFunc,
  options?: GSourceAddOptions,
): number {
  if (typeof fn !== "function") throw new TypeError("Unix fd callback must be a function");
  if (typeof options === "number") {
    throw new TypeError("unixFdAdd: pass the priority as { priority }");
  }
  const a = addArgs(options, G_PRIORITY_DEFAULT, "unixFdAdd");
  const s = new UnixFdSource(fd, condition);
  if (a.priority !== G_PRIORITY_DEFAULT) s.setPriority(a.priority);
  s.setCallback(fn, a.notify);
  try {
    return s.attach(null);
  } finally {
    s.unref();
  }
}

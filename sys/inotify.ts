/**
 * inotify(7): watch files and directories for changes through one fd, which
 * becomes readable when events are queued, so it fits any poll loop (hand it
 * to `qemuSetFdHandler` or `AioContext.setFdHandler`).
 *
 * Thread: any isolate.
 *
 * @module
 */
import { errno, libc } from "./_libc.ts";
import { SysError } from "./errno.ts";

const EINTR = 4;
const EAGAIN = 11;

/** `IN_NONBLOCK` for {@linkcode inotifyInit}: reads fail with EAGAIN instead of blocking. */
export const IN_NONBLOCK = 0o4000;
/** `IN_CLOEXEC` for {@linkcode inotifyInit}. */
export const IN_CLOEXEC = 0o2000000;
/** `IN_ACCESS`: the file was read. */
export const IN_ACCESS = 0x1;
/** `IN_MODIFY`: the file was written to. */
export const IN_MODIFY = 0x2;
/** `IN_ATTRIB`: metadata changed (permissions, timestamps, link count ...). */
export const IN_ATTRIB = 0x4;
/** `IN_CLOSE_WRITE`: a file opened for writing was closed. */
export const IN_CLOSE_WRITE = 0x8;
/** `IN_CLOSE_NOWRITE`: a file not opened for writing was closed. */
export const IN_CLOSE_NOWRITE = 0x10;
/** `IN_OPEN`: the file was opened. */
export const IN_OPEN = 0x20;
/** `IN_MOVED_FROM`: a file was moved out of the watched directory. */
export const IN_MOVED_FROM = 0x40;
/** `IN_MOVED_TO`: a file was moved into the watched directory. */
export const IN_MOVED_TO = 0x80;
/** `IN_CREATE`: a file was created in the watched directory. */
export const IN_CREATE = 0x100;
/** `IN_DELETE`: a file was deleted from the watched directory. */
export const IN_DELETE = 0x200;
/** `IN_DELETE_SELF`: the watched file itself was deleted. */
export const IN_DELETE_SELF = 0x400;
/** `IN_MOVE_SELF`: the watched file itself was moved. */
export const IN_MOVE_SELF = 0x800;
/** `IN_Q_OVERFLOW`: the event queue overflowed (events were lost). */
export const IN_Q_OVERFLOW = 0x4000;
/** `IN_IGNORED`: the watch was removed (explicitly, or its file is gone). */
export const IN_IGNORED = 0x8000;

/**
 * One inotify event.
 *
 * Counterpart: `struct inotify_event`.
 *
 * @example Testing a mask
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { IN_MODIFY, type InotifyEvent } from "@aioloop/aioloop/sys";
 * const ev: InotifyEvent = { wd: 1, mask: IN_MODIFY, cookie: 0, name: "" };
 * assertEquals((ev.mask & IN_MODIFY) !== 0, true);
 * ```
 */
export interface InotifyEvent {
  /** The watch descriptor ({@linkcode inotifyAddWatch}'s result). */
  wd: number;
  /** What happened (`IN_*` bits). */
  mask: number;
  /** Pairs `IN_MOVED_FROM` with `IN_MOVED_TO`. */
  cookie: number;
  /** The file name inside a watched directory; "" for the watched file itself. */
  name: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Creates an inotify instance.
 *
 * Counterpart: inotify_init1(2).
 *
 * @param flags `IN_NONBLOCK | IN_CLOEXEC` by default.
 * @returns The inotify fd (close it with `close`, which drops every watch).
 * @throws {SysError} When the call fails (EMFILE ...).
 *
 * @example Create and close
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { close, inotifyInit, isOpenFd } from "@aioloop/aioloop/sys";
 * const fd = inotifyInit();
 * assertEquals(isOpenFd(fd), true);
 * close(fd);
 * ```
 */
export function inotifyInit(flags: number = IN_NONBLOCK | IN_CLOEXEC): number {
  if (!Number.isInteger(flags) || flags < 0) {
    throw new RangeError(`Flags must be a non-negative integer, got ${flags}`);
  }
  const fd = libc().inotify_init1(flags);
  if (fd < 0) throw new SysError(errno(), "inotify_init1");
  return fd;
}

/**
 * Watches `path` for the events in `mask` (or changes the mask of an
 * existing watch on the same file).
 *
 * Counterpart: inotify_add_watch(2).
 *
 * @param fd The inotify fd.
 * @param path The file or directory.
 * @param mask `IN_*` bits.
 * @returns The watch descriptor.
 * @throws {TypeError} When the path contains a NUL byte.
 * @throws {SysError} When the call fails (ENOENT, EACCES, ENOSPC ...).
 *
 * @example Watching a temporary file
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { close, IN_MODIFY, inotifyAddWatch, inotifyInit } from "@aioloop/aioloop/sys";
 * const path = Deno.makeTempFileSync();
 * const fd = inotifyInit();
 * assertEquals(inotifyAddWatch(fd, path, IN_MODIFY) > 0, true);
 * close(fd);
 * Deno.removeSync(path);
 * ```
 */
export function inotifyAddWatch(fd: number, path: string, mask: number): number {
  if (path.includes("\0")) throw new TypeError("Path must not contain a NUL byte");
  if (!Number.isInteger(mask) || mask <= 0 || mask > 0xffffffff) {
    throw new RangeError(`Mask must be a non-zero 32-bit integer, got ${mask}`);
  }
  const wd = libc().inotify_add_watch(fd, encoder.encode(path + "\0"), mask >>> 0);
  if (wd < 0) throw new SysError(errno(), "inotify_add_watch", path);
  return wd;
}

/**
 * Removes a watch; an `IN_IGNORED` event for it follows.
 *
 * Counterpart: inotify_rm_watch(2).
 *
 * @param fd The inotify fd.
 * @param wd The watch descriptor.
 * @throws {SysError} EINVAL when `wd` is not a watch of `fd`.
 *
 * @example Adding and removing a watch
 * ```ts
 * import { close, IN_MODIFY, inotifyAddWatch, inotifyInit, inotifyRmWatch } from "@aioloop/aioloop/sys";
 * const path = Deno.makeTempFileSync();
 * const fd = inotifyInit();
 * inotifyRmWatch(fd, inotifyAddWatch(fd, path, IN_MODIFY));
 * close(fd);
 * Deno.removeSync(path);
 * ```
 */
export function inotifyRmWatch(fd: number, wd: number): void {
  if (libc().inotify_rm_watch(fd, wd) < 0) throw new SysError(errno(), "inotify_rm_watch");
}

let scratch = new Uint8Array(4096);

/**
 * Reads the queued events (as many as one read returns) from a
 * non-blocking inotify fd: an empty array when none is queued.
 *
 * Counterpart: read(2) on an inotify fd, parsing `struct inotify_event`s.
 *
 * @param fd The inotify fd (made with `IN_NONBLOCK`).
 * @returns The events, oldest first.
 * @throws {SysError} When the read fails (other than EAGAIN).
 *
 * @example Seeing a write
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { close, IN_MODIFY, inotifyAddWatch, inotifyInit, readInotifyEvents } from "@aioloop/aioloop/sys";
 * const path = Deno.makeTempFileSync();
 * const fd = inotifyInit();
 * inotifyAddWatch(fd, path, IN_MODIFY);
 * Deno.writeTextFileSync(path, "hello");
 * assertEquals(readInotifyEvents(fd).some((e) => (e.mask & IN_MODIFY) !== 0), true);
 * close(fd);
 * Deno.removeSync(path);
 * ```
 */
export function readInotifyEvents(fd: number): InotifyEvent[] {
  const c = libc();
  let n: number;
  for (;;) {
    n = c.read(fd, scratch, scratch.byteLength);
    if (n >= 0) break;
    const e = errno();
    if (e === EINTR) continue;
    if (e === EAGAIN) return [];
    // EINVAL: the buffer is too small for the next event (a long name).
    if (e === 22 && scratch.byteLength < 1 << 20) {
      scratch = new Uint8Array(scratch.byteLength * 4);
      continue;
    }
    throw new SysError(e, "read", "inotify");
  }
  const dv = new DataView(scratch.buffer, scratch.byteOffset, n);
  const out: InotifyEvent[] = [];
  for (let off = 0; off + 16 <= n;) {
    const len = dv.getUint32(off + 12, true);
    let end = off + 16;
    const stop = Math.min(off + 16 + len, n);
    while (end < stop && scratch[end] !== 0) end++;
    out.push({
      wd: dv.getInt32(off, true),
      mask: dv.getUint32(off + 4, true),
      cookie: dv.getUint32(off + 8, true),
      name: decoder.decode(scratch.subarray(off + 16, end)),
    });
    off += 16 + len;
  }
  return out;
}

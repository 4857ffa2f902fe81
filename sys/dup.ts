/**
 * dup(2) and dup3(2), for code that must duplicate or replace raw fds.
 *
 * Thread: any isolate.
 *
 * @module
 */
import { errno, libc } from "./_libc.ts";
import { SysError } from "./errno.ts";

const EINTR = 4;
const EBUSY = 16;
const O_CLOEXEC = 0o2000000;

/**
 * Duplicates an fd onto the lowest free number. The copy is not
 * close-on-exec (dup(2) semantics).
 *
 * Counterpart: dup(2).
 *
 * @param fd The fd to duplicate.
 * @returns The new fd.
 * @throws {SysError} EBADF, EMFILE ...
 *
 * @example Duplicating an eventfd
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { close, eventfd } from "@aioloop/aioloop/sys";
 * import { dup } from "@aioloop/aioloop/sys";
 * const fd = eventfd();
 * const copy = dup(fd);
 * assertEquals(copy !== fd, true);
 * close(copy);
 * close(fd);
 * ```
 */
export function dup(fd: number): number {
  const r = libc().dup(fd);
  if (r < 0) throw new SysError(errno(), "dup");
  return r;
}

/**
 * Makes `newFd` a close-on-exec copy of `oldFd`, closing whatever `newFd`
 * was first, atomically. EINTR and EBUSY (a race with open(2) in another
 * thread) are retried.
 *
 * Counterpart: dup3(2) with `O_CLOEXEC`.
 *
 * @param oldFd The fd to copy.
 * @param newFd The number to put the copy on.
 * @returns `newFd`.
 * @throws {RangeError} If the two fds are the same (dup3 refuses that).
 * @throws {SysError} EBADF ...
 *
 * @example Replacing an fd in place
 * ```ts
 * import { close, eventfd } from "@aioloop/aioloop/sys";
 * import { dup2 } from "@aioloop/aioloop/sys";
 * const a = eventfd(), b = eventfd();
 * dup2(b, a); // a now refers to b's eventfd
 * close(a);
 * close(b);
 * ```
 */
export function dup2(oldFd: number, newFd: number): number {
  if (oldFd === newFd) throw new RangeError("The two fds must differ");
  const c = libc();
  for (;;) {
    const r = c.dup3(oldFd, newFd, O_CLOEXEC);
    if (r >= 0) return r;
    const e = errno();
    if (e !== EINTR && e !== EBUSY) throw new SysError(e, "dup3");
  }
}

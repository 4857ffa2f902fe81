/**
 * open(2), for code that needs a raw fd on a path (Deno's `FsFile` hides
 * its fd).
 *
 * Thread: any isolate.
 *
 * @module
 */
import { errno, libc } from "./_libc.ts";
import { SysError } from "./errno.ts";

/** `O_RDONLY`. */
export const O_RDONLY = 0;
/** `O_WRONLY`. */
export const O_WRONLY = 1;
/** `O_RDWR`. */
export const O_RDWR = 2;
/** `O_CREAT`. */
export const O_CREAT = 0o100;
/** `O_TRUNC`. */
export const O_TRUNC = 0o1000;

const EINTR = 4;
// O_CLOEXEC, added to every open: an fd the loop opens must not leak into
// child processes.
const O_CLOEXEC = 0o2000000;
const encoder = new TextEncoder();

/**
 * Opens a path and returns the raw fd, always close-on-exec. EINTR is
 * retried.
 *
 * Counterpart: open(2) (QEMU's `qemu_open_old()`).
 *
 * @param path The path to open.
 * @param flags `O_RDONLY` (default), `O_WRONLY` or `O_RDWR`, optionally with
 * `O_CREAT` / `O_TRUNC` (and `O_NONBLOCK` from `fd.ts`).
 * @param mode The permission bits for a file that `O_CREAT` makes.
 * @returns The new fd.
 * @throws {TypeError} If the path contains a NUL byte.
 * @throws {SysError} If open(2) fails (ENOENT, EACCES ...).
 *
 * @example Opening /dev/null
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { close } from "@aioloop/aioloop/sys";
 * import { open, O_RDWR } from "@aioloop/aioloop/sys";
 * const fd = open("/dev/null", O_RDWR);
 * assertEquals(fd >= 0, true);
 * close(fd);
 * ```
 */
export function open(path: string, flags: number = O_RDONLY, mode = 0o644): number {
  if (path.includes("\0")) throw new TypeError("Path must not contain a NUL byte");
  const cpath = encoder.encode(path + "\0");
  const c = libc();
  for (;;) {
    const fd = c.open(cpath, flags | O_CLOEXEC, mode);
    if (fd >= 0) return fd;
    const e = errno();
    if (e !== EINTR) throw new SysError(e, "open", path);
  }
}

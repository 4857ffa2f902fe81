/**
 * Thin typed wrappers over the libc fd calls the event loop needs. Every
 * failure throws a {@linkcode SysError}; EINTR is retried.
 *
 * Thread: any isolate (each opens its own libc handle).
 *
 * @module
 */
import { errno, libc } from "./_libc.ts";
import { SysError } from "./errno.ts";

const EINTR = 4;
const EAGAIN = 11;

/** `O_NONBLOCK` for {@linkcode pipe2} and `fcntl(F_SETFL)`. */
export const O_NONBLOCK = 0o4000;
/** `O_CLOEXEC` for {@linkcode pipe2}. */
export const O_CLOEXEC = 0o2000000;
/** `EFD_NONBLOCK` for {@linkcode eventfd}. */
export const EFD_NONBLOCK = 0o4000;
/** `EFD_CLOEXEC` for {@linkcode eventfd}. */
export const EFD_CLOEXEC = 0o2000000;

/**
 * Reads into `buf`; returns the byte count, 0 at end of file, or -1 when the
 * fd would block (EAGAIN). EINTR is retried.
 *
 * Counterpart: read(2).
 *
 * @param fd The file descriptor.
 * @param buf The destination buffer.
 * @param len How many bytes to read at most (default: the buffer's length).
 * @returns Bytes read, 0 at EOF, or -1 for EAGAIN.
 *
 * @example Reading a pipe
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { close, pipe, read, write } from "@aioloop/aioloop/sys";
 * const [r, w] = pipe();
 * write(w, new TextEncoder().encode("hi"));
 * const buf = new Uint8Array(8);
 * assertEquals(read(r, buf), 2);
 * close(r);
 * close(w);
 * ```
 */
export function read(fd: number, buf: Uint8Array, len: number = buf.byteLength): number {
  const c = libc();
  for (;;) {
    const n = c.read(fd, buf, len);
    if (n >= 0) return n;
    const e = errno();
    if (e === EINTR) continue;
    if (e === EAGAIN) return -1;
    throw new SysError(e, "read");
  }
}

/**
 * Writes `buf`; returns the byte count, or -1 when the fd would block
 * (EAGAIN). EINTR is retried.
 *
 * Counterpart: write(2).
 *
 * @param fd The file descriptor.
 * @param buf The bytes to write.
 * @param len How many bytes (default: the buffer's length).
 * @returns Bytes written, or -1 for EAGAIN.
 *
 * @example Writing to a pipe
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { close, pipe, write } from "@aioloop/aioloop/sys";
 * const [r, w] = pipe();
 * assertEquals(write(w, new Uint8Array([1, 2, 3])), 3);
 * close(r);
 * close(w);
 * ```
 */
export function write(fd: number, buf: Uint8Array, len: number = buf.byteLength): number {
  const c = libc();
  for (;;) {
    const n = c.write(fd, buf, len);
    if (n >= 0) return n;
    const e = errno();
    if (e === EINTR) continue;
    if (e === EAGAIN) return -1;
    throw new SysError(e, "write");
  }
}

/**
 * Closes an fd. EINTR is not retried (on Linux the fd is gone either way).
 *
 * Counterpart: close(2).
 *
 * @param fd The file descriptor.
 * @throws {SysError} EBADF for a closed or invalid fd.
 *
 * @example Closing both ends of a pipe
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { close, isOpenFd, pipe } from "@aioloop/aioloop/sys";
 * const [r, w] = pipe();
 * assertEquals([isOpenFd(r), isOpenFd(w)], [true, true]);
 * close(r);
 * close(w);
 * ```
 */
export function close(fd: number): void {
  if (libc().close(fd) < 0) {
    const e = errno();
    if (e !== EINTR) throw new SysError(e, "close");
  }
}

const pairBuf = new Int32Array(2);

/**
 * Creates a pipe, non-blocking and close-on-exec unless `flags` says
 * otherwise.
 *
 * Counterpart: pipe2(2).
 *
 * @param flags `O_NONBLOCK | O_CLOEXEC` by default.
 * @returns `[readFd, writeFd]`.
 *
 * @example Making a pipe
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { close, isOpenFd, pipe } from "@aioloop/aioloop/sys";
 * const [r, w] = pipe();
 * assertEquals([isOpenFd(r), isOpenFd(w)], [true, true]);
 * close(r);
 * close(w);
 * ```
 */
export function pipe(flags: number = O_NONBLOCK | O_CLOEXEC): [number, number] {
  if (libc().pipe2(pairBuf, flags) < 0) throw new SysError(errno(), "pipe2");
  return [pairBuf[0], pairBuf[1]];
}

/**
 * Creates a connected pair of Unix stream sockets, non-blocking and
 * close-on-exec.
 *
 * Counterpart: socketpair(2) with `AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC`.
 *
 * @returns The two socket fds.
 *
 * @example A socket pair
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { close, isOpenFd, socketpair } from "@aioloop/aioloop/sys";
 * const [a, b] = socketpair();
 * assertEquals([isOpenFd(a), isOpenFd(b)], [true, true]);
 * close(a);
 * close(b);
 * ```
 */
export function socketpair(): [number, number] {
  const AF_UNIX = 1, SOCK_STREAM = 1, SOCK_NONBLOCK = 0o4000, SOCK_CLOEXEC = 0o2000000;
  if (libc().socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pairBuf) < 0) {
    throw new SysError(errno(), "socketpair");
  }
  return [pairBuf[0], pairBuf[1]];
}

/**
 * Creates an eventfd (`EFD_NONBLOCK | EFD_CLOEXEC` by default).
 *
 * Counterpart: eventfd(2).
 *
 * @param initval The initial counter.
 * @param flags The eventfd flags.
 * @returns The new fd.
 *
 * @example An eventfd
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { close, eventfd, isOpenFd } from "@aioloop/aioloop/sys";
 * const fd = eventfd();
 * assertEquals(isOpenFd(fd), true);
 * close(fd);
 * ```
 */
export function eventfd(initval = 0, flags: number = EFD_NONBLOCK | EFD_CLOEXEC): number {
  const fd = libc().eventfd(initval, flags);
  if (fd < 0) throw new SysError(errno(), "eventfd");
  return fd;
}

/**
 * Puts an fd in non-blocking mode (or takes it out).
 *
 * Counterpart: QEMU's `qemu_set_blocking()` / `fcntl(F_SETFL, O_NONBLOCK)`.
 *
 * @param fd The file descriptor.
 * @param nonblocking Whether reads and writes should fail with EAGAIN.
 *
 * @example Making stdin non-blocking
 * ```ts ignore
 * import { setNonblocking } from "@aioloop/aioloop/sys";
 * setNonblocking(0, true);
 * ```
 */
export function setNonblocking(fd: number, nonblocking: boolean): void {
  const F_GETFL = 3, F_SETFL = 4;
  const c = libc();
  const fl = c.fcntl(fd, F_GETFL, 0);
  if (fl < 0) throw new SysError(errno(), "fcntl");
  const nfl = nonblocking ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
  if (nfl !== fl && c.fcntl(fd, F_SETFL, nfl) < 0) throw new SysError(errno(), "fcntl");
}

/**
 * Whether `fd` is an open file descriptor of this process.
 *
 * Counterpart: `fcntl(fd, F_GETFD)` succeeding.
 *
 * @param fd The file descriptor.
 * @returns True if it is open.
 *
 * @example Checking stdin
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { isOpenFd } from "@aioloop/aioloop/sys";
 * assertEquals(isOpenFd(-1), false);
 * ```
 */
export function isOpenFd(fd: number): boolean {
  if (!Number.isInteger(fd) || fd < 0) return false;
  const F_GETFD = 1;
  return libc().fcntl(fd, F_GETFD, 0) >= 0;
}

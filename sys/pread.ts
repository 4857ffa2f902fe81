/**
 * Positional reads and writes, synchronous: pread(2) / pwrite(2).
 *
 * @module
 */
import { errno, libc } from "./_libc.ts";
import { SysError } from "./errno.ts";

const EINTR = 4;

function checkOffset(offset: number | bigint): bigint {
  if (typeof offset === "bigint") {
    if (offset < 0n) throw new RangeError(`Invalid offset: ${offset}`);
    return offset;
  }
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new RangeError(`Invalid offset: ${offset}`);
  }
  return BigInt(offset);
}

/**
 * Reads up to `buf.byteLength` bytes at `offset` without moving the file
 * position; returns the byte count (0 at end of file, possibly short).
 * EINTR is retried.
 *
 * Counterpart: pread(2) (QEMU's `qemu_pread` via `raw_co_prw`'s sync path).
 *
 * Thread: any isolate; blocks it for the call.
 *
 * @param fd The file descriptor.
 * @param buf The destination.
 * @param offset The file offset.
 * @returns Bytes read.
 * @throws {RangeError} For a negative or unsafe offset.
 * @throws {SysError} EBADF, EISDIR, ESPIPE, EINVAL ...
 *
 * @example Reading /dev/zero at an offset
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { close, open, pread } from "@aioloop/aioloop/sys";
 * const fd = open("/dev/zero");
 * assertEquals(pread(fd, new Uint8Array(16), 4096), 16);
 * close(fd);
 * ```
 */
export function pread(fd: number, buf: Uint8Array, offset: number | bigint): number {
  const off = checkOffset(offset);
  const c = libc();
  for (;;) {
    const n = c.pread(fd, buf, buf.byteLength, off);
    if (n >= 0) return n;
    const e = errno();
    if (e !== EINTR) throw new SysError(e, "pread");
  }
}

/**
 * Writes `buf` at `offset` without moving the file position; returns the
 * byte count (possibly short). EINTR is retried.
 *
 * Counterpart: pwrite(2).
 *
 * Thread: any isolate; blocks it for the call.
 *
 * @param fd The file descriptor.
 * @param buf The bytes.
 * @param offset The file offset.
 * @returns Bytes written.
 * @throws {RangeError} For a negative or unsafe offset.
 * @throws {SysError} EBADF, ESPIPE, ENOSPC ...
 *
 * @example Writing to /dev/null at an offset
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { close, open, O_WRONLY, pwrite } from "@aioloop/aioloop/sys";
 * const fd = open("/dev/null", O_WRONLY);
 * assertEquals(pwrite(fd, new Uint8Array(3), 100), 3);
 * close(fd);
 * ```
 */
export function pwrite(fd: number, buf: Uint8Array, offset: number | bigint): number {
  const off = checkOffset(offset);
  const c = libc();
  for (;;) {
    const n = c.pwrite(fd, buf, buf.byteLength, off);
    if (n >= 0) return n;
    const e = errno();
    if (e !== EINTR) throw new SysError(e, "pwrite");
  }
}

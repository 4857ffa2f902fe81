/**
 * Typed errors for failing system calls.
 *
 * @module
 */

// Linux (x86-64 / aarch64 generic) errno numbers.
const NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  3: "ESRCH",
  4: "EINTR",
  5: "EIO",
  6: "ENXIO",
  7: "E2BIG",
  8: "ENOEXEC",
  9: "EBADF",
  10: "ECHILD",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  14: "EFAULT",
  16: "EBUSY",
  17: "EEXIST",
  19: "ENODEV",
  20: "ENOTDIR",
  21: "EISDIR",
  22: "EINVAL",
  23: "ENFILE",
  24: "EMFILE",
  25: "ENOTTY",
  27: "EFBIG",
  28: "ENOSPC",
  29: "ESPIPE",
  32: "EPIPE",
  34: "ERANGE",
  38: "ENOSYS",
  62: "ETIME",
  75: "EOVERFLOW",
  88: "ENOTSOCK",
  95: "EOPNOTSUPP",
  104: "ECONNRESET",
  110: "ETIMEDOUT",
  115: "EINPROGRESS",
  125: "ECANCELED",
};

const NUMBERS: Record<string, number> = Object.fromEntries(
  Object.entries(NAMES).map(([n, name]) => [name, Number(n)]),
);

/**
 * The symbolic name of an errno value ("EBADF"), or `E<n>` when unknown.
 *
 * Counterpart: strerrorname_np(3).
 *
 * @param errno The errno value.
 * @returns Its symbolic name.
 *
 * @example Naming an errno
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { errnoName } from "@aioloop/aioloop/sys";
 * assertEquals(errnoName(9), "EBADF");
 * ```
 */
export function errnoName(errno: number): string {
  return NAMES[errno] ?? `E${errno}`;
}

/**
 * The errno value for a symbolic name such as "ECANCELED".
 *
 * @param name The symbolic name.
 * @returns The errno value.
 * @throws {RangeError} If the name is unknown.
 *
 * @example Looking up ECANCELED
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { errnoValue } from "@aioloop/aioloop/sys";
 * assertEquals(errnoValue("ECANCELED"), 125);
 * ```
 */
export function errnoValue(name: string): number {
  const n = NUMBERS[name];
  if (n === undefined) throw new RangeError(`Unknown errno name: ${name}`);
  return n;
}

/**
 * A failed system call: carries the errno value, its name and the call.
 *
 * Counterpart: QEMU's `-errno` returns and `error_setg_errno()`.
 *
 * @example Catching a bad file descriptor
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { SysError } from "@aioloop/aioloop/sys";
 * const err = new SysError(9, "close");
 * assertEquals(err.code, "EBADF");
 * assertEquals(err.syscall, "close");
 * assertEquals(err.message, "close: EBADF (errno 9)");
 * ```
 */
export class SysError extends Error {
  /** The errno value (positive). */
  readonly errno: number;
  /** The errno name, such as "EBADF". */
  readonly code: string;
  /** The name of the failing call, such as "epoll_ctl". */
  readonly syscall: string;

  /**
   * Builds the error for one failed call.
   *
   * @param errno The errno value.
   * @param syscall The name of the failing call.
   * @param detail An optional note added to the message.
   */
  constructor(errno: number, syscall: string, detail?: string) {
    const code = errnoName(errno);
    super(`${syscall}: ${code} (errno ${errno})${detail ? `: ${detail}` : ""}`);
    this.name = "SysError";
    this.errno = errno;
    this.code = code;
    this.syscall = syscall;
  }
}

/**
 * io_uring(7) system calls, made raw through `syscall(2)` (libc has no
 * wrapper and the package ships no liburing), plus the mmap of its rings.
 * Layouts and constants are Linux's UAPI (`<linux/io_uring.h>`), for
 * little-endian 64-bit targets (x86-64, aarch64).
 *
 * Thread: any isolate (each opens its own libc handle).
 *
 * @module
 */
import { errno, libc } from "./_libc.ts";
import { SysError } from "./errno.ts";

const SYS_IO_URING_SETUP = 425;
const SYS_IO_URING_ENTER = 426;
const EINTR = 4;
const PROT_READ_WRITE = 0x3;
const MAP_SHARED_POPULATE = 0x01 | 0x8000;
// MAP_FAILED is (void *)-1.
const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

/** Size of `struct io_uring_params` in bytes. */
export const IO_URING_PARAMS_SIZE = 120;
/** Size of one `struct io_uring_sqe` (no IORING_SETUP_SQE128). */
export const IO_URING_SQE_SIZE = 64;
/** Size of one `struct io_uring_cqe` (no IORING_SETUP_CQE32). */
export const IO_URING_CQE_SIZE = 16;

/** `IORING_OP_NOP`. */
export const IORING_OP_NOP = 0;
/** `IORING_OP_POLL_ADD`: a one-shot poll of an fd; the CQE's res is the revents mask. */
export const IORING_OP_POLL_ADD = 6;
/** `IORING_OP_POLL_REMOVE`: cancels the POLL_ADD whose user_data is in `addr`. */
export const IORING_OP_POLL_REMOVE = 7;
/** `IORING_OP_TIMEOUT`: completes after a timespec, or after `off` other completions. */
export const IORING_OP_TIMEOUT = 11;

/** `IORING_OFF_SQ_RING`: mmap offset of the submission ring. */
export const IORING_OFF_SQ_RING = 0;
/** `IORING_OFF_CQ_RING`: mmap offset of the completion ring. */
export const IORING_OFF_CQ_RING = 0x800_0000;
/** `IORING_OFF_SQES`: mmap offset of the SQE array. */
export const IORING_OFF_SQES = 0x1000_0000;

/** `IORING_ENTER_GETEVENTS`: wait for `minComplete` CQEs (and flush overflowed ones). */
export const IORING_ENTER_GETEVENTS = 1 << 0;
/**
 * `IORING_ENTER_EXT_ARG`: the enter call's argument is a `struct
 * io_uring_getevents_arg` (a wait timeout, a signal mask), not a bare
 * sigset (Linux 5.11+, {@linkcode IORING_FEAT_EXT_ARG}).
 */
export const IORING_ENTER_EXT_ARG = 1 << 3;

/** `IORING_FEAT_SINGLE_MMAP`: one mmap maps both rings. */
export const IORING_FEAT_SINGLE_MMAP = 1 << 0;
/** `IORING_FEAT_NODROP`: completions that do not fit the CQ wait in the kernel (5.5+). */
export const IORING_FEAT_NODROP = 1 << 1;

/** `IORING_FEAT_EXT_ARG`: io_uring_enter takes {@linkcode IORING_ENTER_EXT_ARG} (5.11+). */
export const IORING_FEAT_EXT_ARG = 1 << 8;

/**
 * Size of `struct io_uring_getevents_arg` in bytes: u64 sigmask, u32
 * sigmask_sz, u32 min_wait_usec (was pad), u64 ts (the address of a
 * relative `__kernel_timespec`, or 0 for no timeout).
 */
export const IO_URING_GETEVENTS_ARG_SIZE = 24;

/** `IORING_SQ_CQ_OVERFLOW` in the SQ ring's flags: CQEs wait in the kernel's overflow list. */
export const IORING_SQ_CQ_OVERFLOW = 1 << 1;

/**
 * Creates an io_uring instance. `params` is a zeroed (or flag-set)
 * `struct io_uring_params` of {@linkcode IO_URING_PARAMS_SIZE} bytes; the
 * kernel fills in the ring sizes, features and ring offsets. The returned
 * fd is close-on-exec.
 *
 * Counterpart: io_uring_setup(2) (liburing's `io_uring_queue_init()` without
 * the mmap).
 *
 * @param entries The SQ ring size wanted (rounded up to a power of two).
 * @param params The params buffer, read and written by the kernel.
 * @returns The ring fd.
 * @throws {RangeError} If `params` is too small or `entries` is not a positive integer.
 * @throws {SysError} ENOSYS, EPERM (sysctl `kernel.io_uring_disabled`, seccomp),
 * ENOMEM, EINVAL ...
 *
 * @example Making and closing a ring
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { close, IO_URING_PARAMS_SIZE, ioUringSetup, SysError } from "@aioloop/aioloop/sys";
 * try {
 *   const params = new Uint8Array(IO_URING_PARAMS_SIZE);
 *   const fd = ioUringSetup(8, params);
 *   assertEquals(new DataView(params.buffer).getUint32(0, true), 8); // sq_entries
 *   close(fd);
 * } catch (e) {
 *   if (!(e instanceof SysError)) throw e; // io_uring disabled here
 * }
 * ```
 */
export function ioUringSetup(entries: number, params: Uint8Array): number {
  if (!Number.isInteger(entries) || entries < 1 || entries > 0x8000) {
    throw new RangeError(`Invalid io_uring entries ${entries}: expected an integer in 1..32768`);
  }
  if (params.byteLength < IO_URING_PARAMS_SIZE) {
    throw new RangeError(`The io_uring params buffer needs ${IO_URING_PARAMS_SIZE} bytes`);
  }
  const fd = libc().syscall_uring_setup(SYS_IO_URING_SETUP, entries, params);
  if (fd < 0) throw new SysError(errno(), "io_uring_setup");
  return fd;
}

/**
 * Submits up to `toSubmit` SQEs (the SQ tail must already be published)
 * and, with {@linkcode IORING_ENTER_GETEVENTS}, waits until at least
 * `minComplete` CQEs are in the CQ ring. A signal makes it return early:
 * with nothing submitted that is EINTR, reported as `-1` rather than thrown
 * because callers loop on it (as liburing's do); a caller that waited must
 * also check the CQ itself, since an interrupted wait may return a count.
 *
 * Counterpart: io_uring_enter(2), with no signal mask.
 *
 * @param fd The ring fd.
 * @param toSubmit How many published SQEs to consume.
 * @param minComplete How many CQEs to wait for (with GETEVENTS).
 * @param flags `IORING_ENTER_*` flags.
 * @returns The number of SQEs consumed, or -1 for EINTR.
 * @throws {SysError} EBADF, EBUSY, EFAULT, EINVAL ...
 *
 * @example A NOP round trip
 * ```ts ignore
 * // Fill an SQE with IORING_OP_NOP, publish the SQ tail, then:
 * ioUringEnter(fd, 1, 1, IORING_ENTER_GETEVENTS); // 1; one CQE in the CQ ring
 * ```
 */
export function ioUringEnter(
  fd: number,
  toSubmit: number,
  minComplete: number,
  flags: number,
): number {
  const r = libc().syscall_uring_enter(
    SYS_IO_URING_ENTER,
    fd,
    toSubmit,
    minComplete,
    flags,
    null,
    0n,
  );
  if (r >= 0) return r;
  const e = errno();
  if (e === EINTR) return -1;
  throw new SysError(e, "io_uring_enter");
}

/** What {@linkcode ioUringEnterArg} returns when its wait timed out with nothing submitted. */
export const IO_URING_ENTER_TIMED_OUT: number = -2;

const ETIME = 62;
const GETEVENTS_ARG_SIZE = BigInt(IO_URING_GETEVENTS_ARG_SIZE);

/**
 * io_uring_enter with {@linkcode IORING_ENTER_EXT_ARG}: as
 * {@linkcode ioUringEnter}, and the wait (with
 * {@linkcode IORING_ENTER_GETEVENTS}) gives up after the timeout that `arg`
 * points to. A timeout that expires with nothing submitted is reported as
 * {@linkcode IO_URING_ENTER_TIMED_OUT} (ETIME), not thrown; when SQEs were
 * consumed the kernel returns their count whatever became of the wait, so a
 * caller must then look at the CQ ring and its clock.
 *
 * Counterpart: io_uring_enter2(2) as liburing's
 * `io_uring_submit_and_wait_timeout()` makes it.
 *
 * @param fd The ring fd.
 * @param toSubmit How many published SQEs to consume.
 * @param minComplete How many CQEs to wait for.
 * @param flags `IORING_ENTER_*` flags; {@linkcode IORING_ENTER_EXT_ARG} is added.
 * @param arg A `struct io_uring_getevents_arg` of
 * {@linkcode IO_URING_GETEVENTS_ARG_SIZE} bytes, alive until the call returns.
 * @returns The number of SQEs consumed, -1 for EINTR, or
 * {@linkcode IO_URING_ENTER_TIMED_OUT}.
 * @throws {SysError} EBADF, EFAULT, EINVAL (no EXT_ARG before Linux 5.11) ...
 *
 * @example Waiting 1 ms for a completion that does not come
 * ```ts ignore
 * // arg: sigmask 0, sigmask_sz 0, ts = address of { tv_sec: 0, tv_nsec: 1e6 }
 * ioUringEnterArg(fd, 0, 1, IORING_ENTER_GETEVENTS, arg); // IO_URING_ENTER_TIMED_OUT
 * ```
 */
export function ioUringEnterArg(
  fd: number,
  toSubmit: number,
  minComplete: number,
  flags: number,
  arg: Deno.PointerObject,
): number {
  const r = libc().syscall_uring_enter(
    SYS_IO_URING_ENTER,
    fd,
    toSubmit,
    minComplete,
    flags | IORING_ENTER_EXT_ARG,
    arg,
    GETEVENTS_ARG_SIZE,
  );
  if (r >= 0) return r;
  const e = errno();
  if (e === EINTR) return -1;
  if (e === ETIME) return IO_URING_ENTER_TIMED_OUT;
  throw new SysError(e, "io_uring_enter");
}

/**
 * Maps one region of a ring (SQ ring, CQ ring or SQE array), shared with the
 * kernel and pre-faulted.
 *
 * Counterpart: the `mmap(2)` calls of liburing's `io_uring_queue_mmap()`.
 *
 * @param fd The ring fd.
 * @param offset {@linkcode IORING_OFF_SQ_RING}, {@linkcode IORING_OFF_CQ_RING}
 * or {@linkcode IORING_OFF_SQES}.
 * @param length The region's size in bytes (from the params' offsets).
 * @returns The mapping's address.
 * @throws {SysError} If mmap fails.
 *
 * @example Mapping the SQE array
 * ```ts ignore
 * const sqes = ioUringMmap(fd, IORING_OFF_SQES, sqEntries * IO_URING_SQE_SIZE);
 * ioUringMunmap(sqes, sqEntries * IO_URING_SQE_SIZE);
 * ```
 */
export function ioUringMmap(fd: number, offset: number, length: number): Deno.PointerObject {
  const p = libc().mmap(
    null,
    BigInt(length),
    PROT_READ_WRITE,
    MAP_SHARED_POPULATE,
    fd,
    BigInt(offset),
  );
  if (p === null || Deno.UnsafePointer.value(p) === MAP_FAILED) {
    throw new SysError(errno(), "mmap");
  }
  return p;
}

/**
 * Unmaps a region returned by {@linkcode ioUringMmap}. Every view of it must
 * be dropped first: touching one afterwards faults.
 *
 * Counterpart: munmap(2).
 *
 * @param ptr The mapping's address.
 * @param length Its size in bytes.
 * @throws {SysError} If munmap fails (EINVAL).
 *
 * @example See {@linkcode ioUringMmap}.
 * ```ts ignore
 * ioUringMunmap(ptr, length);
 * ```
 */
export function ioUringMunmap(ptr: Deno.PointerObject, length: number): void {
  if (libc().munmap(ptr, BigInt(length)) < 0) throw new SysError(errno(), "munmap");
}

/**
 * poll(2)/ppoll(2) with an array of `struct pollfd` kept in one buffer.
 *
 * Thread: any isolate.
 *
 * @module
 */
import { errno, libc } from "./_libc.ts";
import { SysError } from "./errno.ts";
import { TIMESPEC_SEC_MAX_PPOLL, timespecNsec, timespecSec } from "./_timespec.ts";

/** `POLLIN` (same value as GLib's `G_IO_IN`). */
export const POLLIN = 0x001;
/** `POLLPRI` (`G_IO_PRI`). */
export const POLLPRI = 0x002;
/** `POLLOUT` (`G_IO_OUT`). */
export const POLLOUT = 0x004;
/** `POLLERR` (`G_IO_ERR`). */
export const POLLERR = 0x008;
/** `POLLHUP` (`G_IO_HUP`). */
export const POLLHUP = 0x010;
/** `POLLNVAL` (`G_IO_NVAL`). */
export const POLLNVAL = 0x020;

const EINTR = 4;

/**
 * A growable array of `struct pollfd { int fd; short events; short revents; }`
 * in one buffer, ready to hand to poll(2) with no per-call allocation.
 *
 * Counterpart: the `GPollFD` arrays of GLib and QEMU's fdmon-poll.
 *
 * @example Polling an eventfd
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { close, eventfd, POLLIN, PollFdArray, pollNs } from "@aioloop/aioloop/sys";
 * const fd = eventfd(1);
 * const fds = new PollFdArray();
 * fds.push(fd, POLLIN);
 * assertEquals(pollNs(fds, 0), 1);
 * assertEquals(fds.revents(0) & POLLIN, 1);
 * close(fd);
 * ```
 */
export class PollFdArray {
  #buf: Uint8Array;
  #i32: Int32Array;
  #i16: Int16Array;
  #len = 0;

  /**
   * Makes an empty array.
   *
   * @param capacity The initial capacity (it doubles as needed).
   */
  constructor(capacity = 8) {
    this.#buf = new Uint8Array(capacity * 8);
    this.#i32 = new Int32Array(this.#buf.buffer);
    this.#i16 = new Int16Array(this.#buf.buffer);
  }

  /** How many entries are in use. */
  get length(): number {
    return this.#len;
  }

  /** The raw buffer, for the FFI call. */
  get buffer(): Uint8Array {
    return this.#buf;
  }

  /** Empties the array (keeping its capacity). */
  clear(): void {
    this.#len = 0;
  }

  /**
   * Appends an entry; returns its index.
   *
   * @param fd The file descriptor.
   * @param events The requested events.
   * @returns The new entry's index.
   */
  push(fd: number, events: number): number {
    if (this.#len * 8 === this.#buf.byteLength) {
      const nb = new Uint8Array(this.#buf.byteLength * 2);
      nb.set(this.#buf);
      this.#buf = nb;
      this.#i32 = new Int32Array(nb.buffer);
      this.#i16 = new Int16Array(nb.buffer);
    }
    const i = this.#len++;
    this.#i32[i * 2] = fd;
    this.#i16[i * 4 + 2] = events;
    this.#i16[i * 4 + 3] = 0;
    return i;
  }

  /**
   * The fd of entry `i`.
   *
   * @param i The index.
   * @returns The fd.
   */
  fd(i: number): number {
    return this.#i32[i * 2];
  }

  /**
   * The requested events of entry `i`.
   *
   * @param i The index.
   * @returns The events mask.
   */
  events(i: number): number {
    return this.#i16[i * 4 + 2];
  }

  /**
   * The returned events of entry `i` after a poll.
   *
   * @param i The index.
   * @returns The revents mask.
   */
  revents(i: number): number {
    return this.#i16[i * 4 + 3] & 0xffff;
  }
}

const tspec = new BigInt64Array(2);

/**
 * ppoll(2) with a nanosecond timeout (negative: infinite), retrying EINTR
 * with the time left. Returns the number of ready entries.
 *
 * Counterpart: QEMU's `qemu_poll_ns()`.
 *
 * @param fds The entries.
 * @param timeoutNs Timeout in ns; negative waits forever, 0 does not block.
 * @returns The number of entries with non-zero revents.
 *
 * @example A 1 ms sleep with no fds
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { PollFdArray, pollNs } from "@aioloop/aioloop/sys";
 * assertEquals(pollNs(new PollFdArray(), 1_000_000), 0);
 * ```
 */
export function pollNs(fds: PollFdArray, timeoutNs: number): number {
  const c = libc();
  for (;;) {
    let r: number;
    if (timeoutNs < 0) {
      r = c.poll(fds.buffer, fds.length, -1);
    } else if (timeoutNs === 0) {
      r = c.poll(fds.buffer, fds.length, 0);
    } else {
      // Seconds are capped as QEMU caps them (INT32_MAX); the nanoseconds
      // are the remainder either way.
      tspec[0] = BigInt(timespecSec(timeoutNs, TIMESPEC_SEC_MAX_PPOLL));
      tspec[1] = BigInt(timespecNsec(timeoutNs));
      r = c.ppoll(fds.buffer, fds.length, tspec, null);
    }
    if (r >= 0) return r;
    const e = errno();
    // EINTR: QEMU's callers simply go round again; a short early return
    // is harmless for the event loop (it recomputes its timeout).
    if (e === EINTR) return 0;
    throw new SysError(e, timeoutNs > 0 ? "ppoll" : "poll");
  }
}

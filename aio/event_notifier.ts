/**
 * EventNotifier: a level-triggered doorbell on an eventfd (a pipe where
 * eventfd is missing).
 *
 * Counterpart: `util/event_notifier-posix.c`.
 *
 * @module
 */
import { SysError } from "../sys/errno.ts";
import { close, eventfd, isOpenFd, O_CLOEXEC, O_NONBLOCK, pipe, read, write } from "../sys/fd.ts";

const ENOSYS = 38;
const EBADF = 9;
/** Bytes read per drain step (QEMU's 512-byte buffer). */
const DRAIN_CHUNK = 512;

// Shared by every notifier of this isolate. The calls that use them are
// synchronous and never re-enter, so one copy serves all: set() and
// testAndClear() allocate nothing. The value 1 is a native-endian u64, as
// eventfd(2) wants it.
const ONE = new Uint8Array(new BigUint64Array([1n]).buffer);
const DRAIN = new Uint8Array(DRAIN_CHUNK);

/** Options for {@linkcode EventNotifier.create}. */
export interface EventNotifierOptions {
  /**
   * Use a non-blocking pipe even where eventfd works (the fallback QEMU
   * takes on ENOSYS); mainly for testing that path.
   */
  forcePipe?: boolean;
}

/**
 * A doorbell on an fd: {@linkcode EventNotifier.set} makes the read side
 * readable and it stays so (level-triggered) until
 * {@linkcode EventNotifier.testAndClear} drains it. Backed by one eventfd,
 * or by a non-blocking pipe where eventfd is missing.
 *
 * Threads: the object lives in the isolate that made it, but its fd numbers
 * are process-wide, so any thread (a Worker, or C code) rings it by writing
 * an 8-byte 1 to {@linkcode EventNotifier.wfd} with write(2), given the
 * number. Close it only after every such writer has stopped.
 *
 * Counterpart: QEMU's `EventNotifier`.
 *
 * @example Set, poll, clear
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { EventNotifier } from "@aioloop/aioloop/aio";
 * using n = EventNotifier.create();
 * n.set();
 * n.set();
 * assertEquals(n.testAndClear(), true);
 * assertEquals(n.testAndClear(), false);
 * ```
 */
export class EventNotifier {
  #rfd: number;
  #wfd: number;
  #closed = false;

  private constructor(rfd: number, wfd: number) {
    this.#rfd = rfd;
    this.#wfd = wfd;
  }

  /**
   * Makes a notifier on a new eventfd (`EFD_NONBLOCK | EFD_CLOEXEC`). Where
   * the kernel lacks eventfd (ENOSYS), or when `options.forcePipe` is set,
   * it uses a non-blocking close-on-exec pipe instead.
   *
   * Counterpart: `event_notifier_init()`.
   *
   * Thread: any isolate; the notifier belongs to the one that made it.
   *
   * @param active Whether the notifier starts set.
   * @param options Backing choice ({@linkcode EventNotifierOptions}).
   * @returns The new notifier.
   * @throws {SysError} If no fd can be made (EMFILE ...).
   *
   * @example An active notifier
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { EventNotifier } from "@aioloop/aioloop/aio";
   * using n = EventNotifier.create(true);
   * assertEquals(n.testAndClear(), true);
   * ```
   */
  static create(active = false, options: EventNotifierOptions = {}): EventNotifier {
    let n: EventNotifier | undefined;
    if (!options.forcePipe) {
      try {
        const fd = eventfd(0);
        n = new EventNotifier(fd, fd);
      } catch (e) {
        if (!(e instanceof SysError) || e.errno !== ENOSYS) throw e;
      }
    }
    if (n === undefined) {
      const [r, w] = pipe(O_NONBLOCK | O_CLOEXEC);
      n = new EventNotifier(r, w);
    }
    if (active) n.set();
    return n;
  }

  /**
   * Adopts an existing eventfd: the notifier reads and writes it and closes
   * it on {@linkcode EventNotifier.close}. The fd must be a real eventfd
   * (a pipe's one end will not do), preferably non-blocking: on a blocking
   * one, `testAndClear()` of a clear notifier would block.
   *
   * Counterpart: `event_notifier_init_fd()`.
   *
   * Thread: any isolate; the notifier belongs to the one that adopts it.
   *
   * @param fd The eventfd to adopt.
   * @returns A notifier that owns `fd`.
   * @throws {TypeError} If `fd` is not an integer.
   * @throws {RangeError} If `fd` is negative.
   * @throws {SysError} EBADF if `fd` is not open.
   *
   * @example Wrapping an eventfd
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { EventNotifier } from "@aioloop/aioloop/aio";
   * import { eventfd } from "@aioloop/aioloop/sys";
   * using n = EventNotifier.fromFd(eventfd(1));
   * assertEquals(n.testAndClear(), true);
   * ```
   */
  static fromFd(fd: number): EventNotifier {
    if (!Number.isInteger(fd)) throw new TypeError(`Fd must be an integer, got ${String(fd)}`);
    if (fd < 0) throw new RangeError(`Fd must not be negative, got ${fd}`);
    if (!isOpenFd(fd)) throw new SysError(EBADF, "event_notifier_init_fd", `fd ${fd} is not open`);
    return new EventNotifier(fd, fd);
  }

  /**
   * The read side: the fd to poll for POLLIN. It stays valid until
   * {@linkcode EventNotifier.close}; -1 after.
   *
   * Counterpart: `event_notifier_get_fd()`.
   *
   * Thread: any thread may use the number.
   *
   * @returns The read fd, or -1 once closed.
   *
   * @example Polling the read side
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { EventNotifier } from "@aioloop/aioloop/aio";
   * import { POLLIN, PollFdArray, pollNs } from "@aioloop/aioloop/sys";
   * using n = EventNotifier.create(true);
   * const fds = new PollFdArray();
   * fds.push(n.fd, POLLIN);
   * assertEquals(pollNs(fds, 0), 1);
   * ```
   */
  get fd(): number {
    return this.#closed ? -1 : this.#rfd;
  }

  /**
   * The write side: the same fd as {@linkcode EventNotifier.fd} for an
   * eventfd, the pipe's write end otherwise; -1 after close. Another thread
   * rings the notifier by writing an 8-byte 1 to it.
   *
   * Counterpart: `event_notifier_get_wfd()`.
   *
   * Thread: any thread may write to the number while the notifier is open.
   *
   * @returns The write fd, or -1 once closed.
   *
   * @example Ringing by hand
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { EventNotifier } from "@aioloop/aioloop/aio";
   * import { write } from "@aioloop/aioloop/sys";
   * using n = EventNotifier.create();
   * write(n.wfd, new Uint8Array(new BigUint64Array([1n]).buffer));
   * assertEquals(n.testAndClear(), true);
   * ```
   */
  get wfd(): number {
    return this.#closed ? -1 : this.#wfd;
  }

  /**
   * Whether {@linkcode EventNotifier.close} has run.
   *
   * Counterpart: the negation of `EventNotifier.initialized`.
   *
   * Thread: home isolate.
   *
   * @returns True once closed.
   *
   * @example Closing
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { EventNotifier } from "@aioloop/aioloop/aio";
   * const n = EventNotifier.create();
   * n.close();
   * assertEquals(n.closed, true);
   * ```
   */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Sets the notifier: writes an 8-byte 1 to the write side. A full
   * counter or pipe (EAGAIN) counts as success, since a read is pending
   * anyway. EINTR is retried.
   *
   * Counterpart: `event_notifier_set()`.
   *
   * Thread: home isolate (other threads write to {@linkcode EventNotifier.wfd}).
   *
   * @throws {Deno.errors.BadResource} If the notifier is closed.
   * @throws {SysError} If write(2) fails otherwise (EBADF if the fd was
   * closed behind the notifier's back).
   *
   * @example Setting twice, clearing once
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { EventNotifier } from "@aioloop/aioloop/aio";
   * using n = EventNotifier.create();
   * n.set();
   * n.set();
   * assertEquals(n.testAndClear(), true);
   * assertEquals(n.testAndClear(), false);
   * ```
   */
  set(): void {
    if (this.#closed) throw new Deno.errors.BadResource("The event notifier is closed");
    write(this.#wfd, ONE, 8);
  }

  /**
   * Clears the notifier and tells whether it was set: drains the read side
   * in 512-byte reads until one comes up short or would block. Returns
   * false on a closed notifier, as QEMU returns 0 on an uninitialised one.
   *
   * Counterpart: `event_notifier_test_and_clear()`.
   *
   * Thread: home isolate.
   *
   * @returns True iff anything was read.
   * @throws {SysError} If read(2) fails otherwise (EBADF if the fd was
   * closed behind the notifier's back).
   *
   * @example Clearing an active notifier
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { EventNotifier } from "@aioloop/aioloop/aio";
   * using n = EventNotifier.create(true);
   * assertEquals(n.testAndClear(), true);
   * ```
   */
  testAndClear(): boolean {
    if (this.#closed) return false;
    let value = false;
    let len: number;
    do {
      len = read(this.#rfd, DRAIN, DRAIN_CHUNK);
      if (len > 0) value = true;
    } while (len === DRAIN_CHUNK);
    return value;
  }

  /**
   * Closes the fd(s). Idempotent: a second call does nothing. The notifier
   * is marked closed before the fds go, so it stays consistent even if a
   * close(2) fails (that error is rethrown).
   *
   * A notifier registered on an AioContext may be closed first and
   * unregistered afterwards: `ctx.setEventNotifier(n, null)` works on a
   * closed notifier. Until it is unregistered the context watches a dead
   * fd, so unregister it right away.
   *
   * Counterpart: `event_notifier_cleanup()`.
   *
   * Thread: home isolate, once no other thread writes to the fd.
   *
   * @throws {SysError} If close(2) fails (EBADF if the fd was closed behind
   * the notifier's back).
   *
   * @example Closing twice
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { EventNotifier } from "@aioloop/aioloop/aio";
   * const n = EventNotifier.create();
   * n.close();
   * n.close();
   * assertEquals(n.fd, -1);
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    let error: unknown;
    if (this.#rfd !== this.#wfd) {
      try {
        close(this.#rfd);
      } catch (e) {
        error = e;
      }
    }
    try {
      close(this.#wfd);
    } catch (e) {
      error ??= e;
    }
    if (error !== undefined) throw error;
  }

  /**
   * Closes the notifier at the end of a `using` block.
   *
   * Counterpart: `event_notifier_cleanup()`.
   *
   * Thread: home isolate.
   *
   * @example Scoped notifier
   * ```ts
   * import { EventNotifier } from "@aioloop/aioloop/aio";
   * {
   *   using n = EventNotifier.create();
   *   n.set();
   * } // closed here
   * ```
   */
  [Symbol.dispose](): void {
    this.close();
  }
}

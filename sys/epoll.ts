/**
 * epoll(7) calls with a reusable event buffer.
 *
 * Thread: any isolate.
 *
 * @module
 */
import { errno, libc } from "./_libc.ts";
import { SysError } from "./errno.ts";

/** `EPOLL_CTL_ADD`. */
export const EPOLL_CTL_ADD = 1;
/** `EPOLL_CTL_DEL`. */
export const EPOLL_CTL_DEL = 2;
/** `EPOLL_CTL_MOD`. */
export const EPOLL_CTL_MOD = 3;
/** `EPOLL_CLOEXEC`. */
export const EPOLL_CLOEXEC = 0o2000000;

const EINTR = 4;
// struct epoll_event is packed on x86-64: u32 events; u64 data (12 bytes).
const EV_SIZE = 12;
const one = new Uint8Array(EV_SIZE);
const oneView = new DataView(one.buffer);

/**
 * Creates an epoll instance (close-on-exec).
 *
 * Counterpart: epoll_create1(2).
 *
 * @returns The epoll fd.
 *
 * @example An epoll fd
 * ```ts
 * import { close, epollCreate } from "@aioloop/aioloop/sys";
 * close(epollCreate());
 * ```
 */
export function epollCreate(): number {
  const fd = libc().epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) throw new SysError(errno(), "epoll_create1");
  return fd;
}

/**
 * Adds, modifies or removes an fd; `data` is a 32-bit cookie returned with
 * its events.
 *
 * Counterpart: epoll_ctl(2).
 *
 * @param epfd The epoll fd.
 * @param op `EPOLL_CTL_ADD`, `EPOLL_CTL_MOD` or `EPOLL_CTL_DEL`.
 * @param fd The target fd.
 * @param events The event mask (EPOLLIN etc. share poll's values).
 * @param data The cookie.
 *
 * @example Watching an eventfd
 * ```ts
 * import { assertThrows } from "@std/assert";
 * import { close, EPOLL_CTL_ADD, epollCreate, epollCtl, eventfd, POLLIN } from "@aioloop/aioloop/sys";
 * const ep = epollCreate(), fd = eventfd();
 * epollCtl(ep, EPOLL_CTL_ADD, fd, POLLIN, 7);
 * assertThrows(() => epollCtl(ep, EPOLL_CTL_ADD, fd, POLLIN, 7)); // EEXIST: already added
 * close(fd);
 * close(ep);
 * ```
 */
export function epollCtl(epfd: number, op: number, fd: number, events: number, data: number): void {
  oneView.setUint32(0, events, true);
  oneView.setUint32(4, data, true);
  oneView.setUint32(8, 0, true);
  if (libc().epoll_ctl(epfd, op, fd, one) < 0) throw new SysError(errno(), "epoll_ctl");
}

/**
 * A reusable buffer of `struct epoll_event` for {@linkcode epollWait}.
 *
 * Counterpart: the `struct epoll_event events[128]` of fdmon-epoll.
 *
 * @example Reading results
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { close, EPOLL_CTL_ADD, epollCreate, epollCtl, EpollEvents, epollWait, eventfd, POLLIN } from "@aioloop/aioloop/sys";
 * const ep = epollCreate(), fd = eventfd(1), evs = new EpollEvents(4);
 * epollCtl(ep, EPOLL_CTL_ADD, fd, POLLIN, 42);
 * const n = epollWait(ep, evs, 0);
 * assertEquals(n, 1);
 * assertEquals(evs.data(0), 42);
 * assertEquals(evs.events(0) & POLLIN, 1);
 * close(fd);
 * close(ep);
 * ```
 */
export class EpollEvents {
  /** The raw buffer. */
  readonly buffer: Uint8Array;
  /** Capacity in events. */
  readonly capacity: number;
  #dv: DataView;

  /**
   * Makes a buffer for `capacity` events.
   *
   * @param capacity How many events one wait may return.
   */
  constructor(capacity: number) {
    this.capacity = capacity;
    this.buffer = new Uint8Array(capacity * EV_SIZE);
    this.#dv = new DataView(this.buffer.buffer);
  }

  /**
   * The events of result `i`.
   *
   * @param i The index.
   * @returns The event mask.
   */
  events(i: number): number {
    return this.#dv.getUint32(i * EV_SIZE, true);
  }

  /**
   * The cookie of result `i`.
   *
   * @param i The index.
   * @returns The cookie given to {@linkcode epollCtl}.
   */
  data(i: number): number {
    return this.#dv.getUint32(i * EV_SIZE + 4, true);
  }
}

/**
 * Waits for events (timeout in ms; negative waits forever). EINTR returns 0,
 * as the caller recomputes its timeout anyway.
 *
 * Counterpart: epoll_wait(2).
 *
 * @param epfd The epoll fd.
 * @param evs The result buffer.
 * @param timeoutMs Timeout in ms.
 * @returns The number of results.
 *
 * @example See {@linkcode EpollEvents}.
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { close, epollCreate, EpollEvents, epollWait } from "@aioloop/aioloop/sys";
 * const ep = epollCreate();
 * assertEquals(epollWait(ep, new EpollEvents(1), 0), 0);
 * close(ep);
 * ```
 */
export function epollWait(epfd: number, evs: EpollEvents, timeoutMs: number): number {
  const r = libc().epoll_wait(epfd, evs.buffer, evs.capacity, timeoutMs);
  if (r >= 0) return r;
  const e = errno();
  if (e === EINTR) return 0;
  throw new SysError(e, "epoll_wait");
}

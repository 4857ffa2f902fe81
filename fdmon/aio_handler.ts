// The AioHandler node of util/aio-posix.c, shared by aio_posix.ts and the fd
// monitors. One node per (fd, registration): aio_set_fd_handler always makes
// a new node, so a node's callbacks never change after creation.
import type { GPollFD } from "../glib/gpollfd.ts";

/** An fd callback (io_read / io_write / io_poll_ready / io_poll_begin / io_poll_end). */
export type IOHandler = () => void;
/** An io_poll callback: true if the handler has work, checked without a syscall. */
export type IOPollHandler = () => boolean;

/**
 * One fd handler registration of a context: the fd with its events, the
 * callbacks, and the bookkeeping of aio_poll and the fd monitors. The
 * context makes a new node on every aio_set_fd_handler; fd monitors only
 * read a node, save the slots reserved for them.
 *
 * Counterpart: QEMU's `AioHandler` (util/aio-posix.h).
 *
 * Thread: its context's home thread only.
 *
 * @example A node as a test's fake context makes one
 * ```ts ignore
 * const node = new AioHandler(fd, POLLIN | POLLHUP | POLLERR, onRead, null, null, null, false);
 * ```
 */
export class AioHandler {
  /** The fd, the events wanted (never changed but to 0 on removal) and the last revents. */
  readonly pfd: GPollFD;
  /** io_read: called on IN, HUP or ERR. */
  readonly ioRead: IOHandler | null;
  /** io_write: called on OUT or ERR. */
  readonly ioWrite: IOHandler | null;
  /** io_poll: checks for work without a syscall (adaptive polling). */
  readonly ioPoll: IOPollHandler | null;
  /** io_poll_ready: called when io_poll found work. */
  readonly ioPollReady: IOHandler | null;
  /** io_poll_begin: polling mode starts. */
  ioPollBegin: IOHandler | null = null;
  /** io_poll_end: polling mode ends. */
  ioPollEnd: IOHandler | null = null;
  /** The ctx's own notifier: its callbacks never count as progress. */
  readonly isNotifier: boolean;
  /** What the registration is for (QEMU's opaque), e.g. its EventNotifier. */
  opaque: unknown = null;
  /** On the ctx's deleted list: skip every callback, free at the outermost walk. */
  deleted = false;
  /** Unlinked from the ctx (freed); a backend must drop it. */
  freed = false;
  /** The ready list this node is on (a nested poll may steal it). */
  readyOwner: ReadyList | null = null;
  /** On the ctx's polling list (poll_aio_handlers). */
  polling = false;
  /** Links of the polling list (node_poll), newest first. */
  pollPrev: AioHandler | null = null;
  /** The next (older) node of the polling list. */
  pollNext: AioHandler | null = null;
  /** io_poll said ready during busy polling. */
  pollReady = false;
  /** Adaptive polling time in ns (AioPolledEvent.ns). */
  pollNs = 0;
  /** When the handler leaves the polling list if it stays idle (ns, REALTIME). */
  pollIdleTimeout = 0;
  /** Backend-private slot (epoll cookie, io_uring user data ...). */
  fdmonSlot: number = -1;
  /** Backend-private flags. */
  fdmonFlags = 0;

  /**
   * Makes a node; `events` is (read ? IN|HUP|ERR : 0) | (write ? OUT|ERR : 0).
   *
   * @param fd The file descriptor.
   * @param events The poll events wanted.
   * @param ioRead The read callback, or null.
   * @param ioWrite The write callback, or null.
   * @param ioPoll The busy-poll callback, or null.
   * @param ioPollReady The callback for work found by ioPoll, or null.
   * @param isNotifier Whether this is the context's own notifier.
   */
  constructor(
    fd: number,
    events: number,
    ioRead: IOHandler | null,
    ioWrite: IOHandler | null,
    ioPoll: IOPollHandler | null,
    ioPollReady: IOHandler | null,
    isNotifier: boolean,
  ) {
    this.pfd = { fd, events, revents: 0 };
    this.ioRead = ioRead;
    this.ioWrite = ioWrite;
    this.ioPoll = ioPoll;
    this.ioPollReady = ioPollReady;
    this.isNotifier = isNotifier;
  }
}

/**
 * The per-call ready list of aio_poll. Adding a node that sits on another
 * list (a parent poll's) steals it: the parent will skip it, exactly as
 * QEMU's QLIST_SAFE_REMOVE on node_ready does. Popping order is LIFO, so a
 * backend that adds in newest-registration-first order dispatches oldest
 * first (fdmon-poll's order).
 *
 * Counterpart: QEMU's `AioHandlerList` and `aio_add_ready_handler()`.
 *
 * Thread: its context's home thread only.
 *
 * @example How an fd monitor fills it
 * ```ts ignore
 * const ready = new ReadyList();
 * ready.add(node, POLLIN);
 * for (let n = ready.pop(); n !== null; n = ready.pop()) dispatch(n);
 * ```
 */
export class ReadyList {
  #items: AioHandler[] = [];

  /**
   * Puts `node` on this list with `revents`, taking it off any other list.
   *
   * Counterpart: `aio_add_ready_handler()`.
   *
   * @param node The ready node.
   * @param revents The events seen.
   */
  add(node: AioHandler, revents: number): void {
    node.readyOwner = this;
    node.pfd.revents = revents;
    this.#items.push(node);
  }

  /**
   * Takes the next node still owned by this list (the last added first).
   *
   * @returns The node, or null when empty.
   */
  pop(): AioHandler | null {
    const items = this.#items;
    while (items.length > 0) {
      const n = items.pop()!;
      if (n.readyOwner === this) {
        n.readyOwner = null;
        return n;
      }
    }
    return null;
  }

  /**
   * Whether no node on the list is still owned by it.
   *
   * @returns True when empty.
   */
  get empty(): boolean {
    for (const n of this.#items) if (n.readyOwner === this) return false;
    return true;
  }
}

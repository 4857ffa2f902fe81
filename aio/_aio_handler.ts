// The AioHandler node of util/aio-posix.c, shared by aio_posix.ts and the fd
// monitors. One node per (fd, registration): aio_set_fd_handler always makes
// a new node, so a node's callbacks never change after creation.
import type { GPollFD } from "../glib/gpollfd.ts";

/** An fd callback (io_read / io_write / io_poll_ready / io_poll_begin / io_poll_end). */
export type IOHandler = () => void;
/** An io_poll callback: true if the handler has work, checked without a syscall. */
export type IOPollHandler = () => boolean;

export class AioHandler {
  readonly pfd: GPollFD;
  readonly ioRead: IOHandler | null;
  readonly ioWrite: IOHandler | null;
  readonly ioPoll: IOPollHandler | null;
  readonly ioPollReady: IOHandler | null;
  ioPollBegin: IOHandler | null = null;
  ioPollEnd: IOHandler | null = null;
  /** The ctx's own notifier: its callbacks never count as progress. */
  readonly isNotifier: boolean;
  /** On the ctx's deleted list: skip every callback, free at the outermost walk. */
  deleted = false;
  /** Unlinked from the ctx (freed); a backend must drop it. */
  freed = false;
  /** The ready list this node is on (a nested poll may steal it). */
  readyOwner: ReadyList | null = null;
  /** On the ctx's polling list (poll_aio_handlers). */
  polling = false;
  /** io_poll said ready during busy polling. */
  pollReady = false;
  /** Adaptive polling time in ns (AioPolledEvent.ns). */
  pollNs = 0;
  /** When the handler leaves the polling list if it stays idle (ns, REALTIME). */
  pollIdleTimeout = 0;
  /** Backend-private slot (epoll cookie, io_uring user data ...). */
  fdmonSlot = -1;
  /** Backend-private flags. */
  fdmonFlags = 0;

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
 */
export class ReadyList {
  #items: AioHandler[] = [];

  add(node: AioHandler, revents: number): void {
    node.readyOwner = this;
    node.pfd.revents = revents;
    this.#items.push(node);
  }

  /** Next node still owned by this list, or null when empty. */
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

  get empty(): boolean {
    for (const n of this.#items) if (n.readyOwner === this) return false;
    return true;
  }
}

/**
 * The public shapes of fd handlers (QEMU's `aio_set_fd_handler()` arguments)
 * and of adaptive polling parameters; the machinery is in `aio_posix.ts`.
 *
 * @module
 */
import type { IOHandler, IOPollHandler } from "../fdmon/aio_handler.ts";

export type { IOHandler, IOPollHandler };

/** Callbacks of one fd, as given to {@linkcode AioContext.prototype.setFdHandler}. */
export interface FdHandlers {
  /** Called when the fd is readable (or on HUP/ERR). Counterpart: `io_read`. */
  read?: IOHandler | null;
  /** Called when the fd is writable (or on ERR). Counterpart: `io_write`. */
  write?: IOHandler | null;
  /**
   * Busy-poll check, no syscall: true if there is work. Only used together
   * with `pollReady`. Counterpart: `io_poll`.
   */
  poll?: IOPollHandler | null;
  /** Called when `poll` returned true. Counterpart: `io_poll_ready`. */
  pollReady?: IOHandler | null;
}

/** Adaptive polling parameters. */
export interface PollParams {
  /** Longest busy-poll time in ns; 0 disables polling. Counterpart: `poll_max_ns`. */
  maxNs: number;
  /** Growth factor (0 means 2). Counterpart: `poll_grow`. */
  grow?: number;
  /** Shrink divisor (0 means reset to 0). Counterpart: `poll_shrink`. */
  shrink?: number;
}

/** Introspection of one registered fd handler. */
export interface FdHandlerInfo {
  /** The fd. */
  fd: number;
  /** Requested poll events. */
  events: number;
  /** Whether a read callback is set. */
  read: boolean;
  /** Whether a write callback is set. */
  write: boolean;
  /** Whether poll/pollReady callbacks are set. */
  poll: boolean;
  /** On the busy-polling list. */
  polling: boolean;
  /** Its current adaptive polling time (ns). */
  pollNs: number;
  /** The context's own notifier. */
  notifier: boolean;
}

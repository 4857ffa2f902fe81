// The FDMonOps seam of util/aio-posix.h: every backend is an object with
// the same verbs. Backends hold per-context state, so a backend "ops" value
// is a factory and the per-context object carries the verbs.
import type { AioHandler, ReadyList } from "./aio_handler.ts";
import type { GPollFD } from "../glib/gpollfd.ts";
import type { CqeHandler, SqePrep } from "./io_uring_sqe.ts";

/** Names of the fd monitors. */
export type FdMonName = "poll" | "epoll" | "io_uring";

/** What a backend may ask of the context it serves. Home thread only. */
export interface FdMonHost {
  /** Live (not deleted) handlers, newest registration first. */
  liveHandlers(): Iterable<AioHandler>;
  /** How many live handlers have non-zero events. */
  readonly liveCount: number;
  /** True when the handler walk is not nested (lockcnt could drop to 0). */
  canUpgrade(): boolean;
  /** Swap the context's backend (poll -> epoll upgrade). */
  replaceFdMon(next: FdMon): void;
  /** poll_disable_cnt > 0: some handler has no io_poll. */
  pollDisabled(): boolean;
  /** The GSource's fd list (g_source_add_poll / g_source_remove_poll). */
  gsourceAddPoll(pfd: GPollFD): void;
  /** Takes a record out of the GSource's fd list (g_source_remove_poll). */
  gsourceRemovePoll(pfd: GPollFD): void;
  /** Mark a node as really deleted (io_uring: after its POLL_ADD CQE). */
  nodeDeleted?(node: AioHandler): void;
}

/** One backend instance bound to one context (FDMonOps + its state). */
export interface FdMon {
  /** Which backend this is (it changes when the context upgrades or falls back). */
  readonly name: FdMonName;
  /** A handler is replaced (old -> new), added (null -> new) or removed (old -> null). */
  update(oldNode: AioHandler | null, newNode: AioHandler | null): void;
  /** Waits up to timeoutNs (negative: forever; 0: no block); fills `ready`. */
  wait(ready: ReadyList, timeoutNs: number): number;
  /** Whether aio_poll must call wait() even with a zero timeout. */
  needWait(): boolean;
  /**
   * Hands queued changes to the kernel without waiting (io_uring), so that
   * busy polling may start; absent where changes apply at once.
   */
  submitPending?(): void;
  /** io_uring user CQE handlers; false when nothing ran. */
  dispatch?(): boolean;
  /** io_uring only: queues a user request (QEMU's add_sqe). */
  addSqe?(prep: SqePrep, handler: CqeHandler): void;
  /** io_uring only: cancels the user requests and runs their handlers; no new ones after. */
  cancelSqes?(): void;
  /** GSource prepare / check / dispatch (QEMU's gsource_* ops). */
  gsourcePrepare(): void;
  /** GSource check: whether a polled fd has an event some handler wants. */
  gsourceCheck(): boolean;
  /** GSource dispatch: puts the handlers whose fds have events on `ready`. */
  gsourceDispatch(ready: ReadyList): void;
  /** Whether busy polling in userspace (idle removal) applies. */
  readonly supportsUserspacePolling: boolean;
  /** How the backend works here, for introspection (io_uring: how timed waits are made). */
  readonly detail?: string;
  /** Release fds; called once, at context destroy. */
  destroy(): void;
}

/** A backend: tells whether it works here and creates per-context instances. */
export interface FdMonOps {
  /** The backend's name, as `AIOLOOP_FDMON` spells it. */
  readonly name: FdMonName;
  /** Whether this kernel supports the backend (probed once). */
  supported(): boolean;
  /** Makes the backend for one context (throws SysError on failure). */
  create(host: FdMonHost): FdMon;
}

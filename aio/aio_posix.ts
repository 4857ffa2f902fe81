/**
 * util/aio-posix.c: fd handlers, the ready list, adaptive polling and the
 * `aio_poll` algorithm. {@linkcode AioContext} owns one `AioPosix` and calls
 * it; users go through the context's methods.
 *
 * Thread: home thread only.
 *
 * @module
 */
import { AioHandler, type IOHandler, ReadyList } from "../fdmon/aio_handler.ts";
import type { FdMon, FdMonHost } from "../fdmon/fdmon_ops.ts";
import type { GPollFD } from "../glib/gpollfd.ts";
import type { FdHandlerInfo, FdHandlers, PollParams } from "./fd_handlers.ts";
import { POLLERR, POLLHUP, POLLIN, POLLOUT } from "../sys/poll.ts";
import { clockGettimeNs } from "../sys/clock.ts";
import { pollCounters } from "./_poll_counters.ts";
import { libc } from "../sys/_libc.ts";
import {
  K_FD,
  K_LOOP,
  K_WAIT,
  traceBegin,
  traceCall,
  traceEnd,
  traceName,
  traceWaitBegin,
  tracing,
} from "../trace/_state.ts";

const T_WAIT = traceName("wait");
const T_DISPATCH = traceName("dispatch");
const T_FD_READ = traceName("fd read");
const T_FD_WRITE = traceName("fd write");
const T_FD_POLL_READY = traceName("fd poll ready");

/**
 * Busy polling that found nothing for this long yields the CPU between
 * rounds. A thread woken through an eventfd tends to be placed on its
 * waker's CPU, so the peer whose answer we poll for may be queued behind us
 * on this very CPU: without a yield the whole window would only delay it.
 * With a CPU of its own the peer answers sooner than this.
 */
export const POLL_YIELD_AFTER_NS = 1000;
/** Stop busy-polling a handler that stayed idle this long (POLL_IDLE_INTERVAL_NS). */
const POLL_IDLE_INTERVAL_NS = 7_000_000_000;
const READ_EVENTS = POLLIN | POLLHUP | POLLERR;
const WRITE_EVENTS = POLLOUT | POLLERR;
// Which caller's order AioPosix.#ending follows (aio_poll or aio_dispatch).
const ENDING_POLL = 0;
const ENDING_GSOURCE = 1;
const ENDING_OWED = 2;
type EndingMode = typeof ENDING_POLL | typeof ENDING_GSOURCE | typeof ENDING_OWED;

/** The rest of an ending that an exception cut short. */
interface OwedEnding {
  ready: ReadyList;
  blockNs: number;
}

/** What aio_poll needs from the rest of the context (util/async.c). */
export interface AioPollHooks {
  /** aio_compute_timeout: BHs and timers, ns, -1 = infinite. */
  computeTimeout(): number;
  /** aio_bh_poll. */
  bhPoll(): boolean;
  /** timerlistgroup_run_timers. */
  runTimers(): boolean;
  /** Adds delta to notify_me (home thread only). */
  notifyMeAdd(delta: number): void;
  /** Reads notified. */
  notified(): boolean;
  /** aio_notify_accept. */
  notifyAccept(): void;
  /** aio_notify. */
  notify(): void;
  /** GSource poll-fd bookkeeping: g_source_add_poll. */
  gsourceAddPoll(pfd: GPollFD): void;
  /** g_source_remove_poll. */
  gsourceRemovePoll(pfd: GPollFD): void;
}

/** The fd-handler half of an AioContext. */
export class AioPosix implements FdMonHost {
  #hooks: AioPollHooks;
  #fdmon!: FdMon;
  /** Live nodes by fd (find_aio_handler). */
  #byFd = new Map<number, AioHandler>();
  /** All nodes not yet freed, in registration order (aio_handlers, reversed). */
  #handlers = new Set<AioHandler>();
  #deleted: AioHandler[] = [];
  /**
   * Head of poll_aio_handlers, linked through the nodes: QEMU inserts at
   * the head, so busy polling walks the handlers newest first.
   */
  #pollHead: AioHandler | null = null;
  #liveCount = 0;
  /** list_lock's visitor count (QemuLockCnt, single-isolate). */
  #lockcnt = 0;
  #pollDisableCnt = 0;
  #pollStarted = false;
  #pollMaxNs = 0;
  #pollGrow = 0;
  #pollShrink = 0;
  /** One ready list per nesting depth, so polls allocate nothing. */
  #readyLists: ReadyList[] = [];
  #depth = 0;
  /** The timeout being computed; only used before any callback can nest. */
  #t = { timeout: 0 };
  /**
   * Endings cut short by an exception: the ready handlers they had left and
   * their timers. The next poll or GSource dispatch runs them first, so a
   * handler that throws on every call cannot starve those behind it.
   */
  #owed: OwedEnding[] = [];

  constructor(hooks: AioPollHooks) {
    this.#hooks = hooks;
  }

  /** Installs the backend (once, at context setup). */
  setFdMon(m: FdMon): void {
    this.#fdmon = m;
  }

  get fdmon(): FdMon {
    return this.#fdmon;
  }

  // ---- FdMonHost ----

  *liveHandlers(): Iterable<AioHandler> {
    const arr = [...this.#handlers];
    for (let i = arr.length - 1; i >= 0; i--) if (!arr[i].deleted) yield arr[i];
  }

  get liveCount(): number {
    return this.#liveCount;
  }

  canUpgrade(): boolean {
    // qemu_lockcnt_dec_if_lock succeeds only for the outermost walker.
    return this.#lockcnt <= 1;
  }

  replaceFdMon(next: FdMon): void {
    this.#fdmon = next;
  }

  pollDisabled(): boolean {
    return this.#pollDisableCnt > 0;
  }

  gsourceAddPoll(pfd: GPollFD): void {
    this.#hooks.gsourceAddPoll(pfd);
  }

  gsourceRemovePoll(pfd: GPollFD): void {
    this.#hooks.gsourceRemovePoll(pfd);
  }

  nodeDeleted(node: AioHandler): void {
    if (!node.deleted) {
      node.deleted = true;
      this.#deleted.push(node);
    }
  }

  // ---- aio_set_fd_handler ----

  /**
   * aio_set_fd_handler; `isNotifier` marks the context's own notifier,
   * `opaque` what the registration is for (found again by fdOf()).
   * Returns the new registration's node (null on removal).
   */
  setFdHandler(
    fd: number,
    h: FdHandlers,
    isNotifier = false,
    opaque: unknown = null,
  ): AioHandler | null {
    let ioPoll = h.poll ?? null;
    const ioPollReady = h.pollReady ?? null;
    const ioRead = h.read ?? null;
    const ioWrite = h.write ?? null;
    if (ioPoll !== null && ioPollReady === null) ioPoll = null; // polling needs a ready handler
    const node = this.#byFd.get(fd) ?? null;
    let newNode: AioHandler | null = null;
    let change: number;
    if (ioRead === null && ioWrite === null && ioPoll === null) {
      if (node === null) return null;
      node.pfd.events = 0;
      change = node.ioPoll === null ? -1 : 0;
      this.#byFd.delete(fd);
    } else {
      change = (ioPoll === null ? 1 : 0) - (node !== null && node.ioPoll === null ? 1 : 0);
      const events = (ioRead ? READ_EVENTS : 0) | (ioWrite ? WRITE_EVENTS : 0);
      newNode = new AioHandler(fd, events, ioRead, ioWrite, ioPoll, ioPollReady, isNotifier);
      newNode.opaque = opaque;
      this.#handlers.add(newNode);
      this.#byFd.set(fd, newNode);
      this.#liveCount++;
    }
    this.#pollDisableCnt += change;
    this.#fdmon.update(node, newNode);
    if (node !== null) this.#removeNode(node);
    this.#hooks.notify();
    return newNode;
  }

  /** aio_remove_fd_handler: free now, or mark deleted while a walk is on. */
  #removeNode(node: AioHandler): void {
    // The backend's update() already took its pfd out of the GSource.
    node.pfd.revents = 0;
    node.pollReady = false;
    this.#liveCount--;
    if (node.deleted) return; // the backend already marked it (io_uring)
    if (this.#lockcnt > 0) {
      node.deleted = true;
      this.#deleted.push(node);
      return;
    }
    node.deleted = true;
    this.#free(node);
  }

  #free(node: AioHandler): void {
    node.freed = true;
    node.readyOwner = null;
    this.#pollRemove(node);
    this.#handlers.delete(node);
  }

  /** aio_set_fd_poll: io_poll_begin / io_poll_end of an existing node. */
  setFdPoll(fd: number, begin: IOHandler | null, end: IOHandler | null): void {
    const node = this.#byFd.get(fd);
    if (node === undefined) return;
    node.ioPollBegin = begin;
    node.ioPollEnd = end;
  }

  hasFd(fd: number): boolean {
    return this.#byFd.has(fd);
  }

  /** The fd of the live registration made for `opaque`, or -1. */
  fdOf(opaque: unknown): number {
    for (const [fd, node] of this.#byFd) if (node.opaque === opaque) return fd;
    return -1;
  }

  /** aio_context_set_poll_params (no validation here; the caller validates). */
  setPollParams(maxNs: number, grow: number, shrink: number): void {
    for (const n of this.#handlers) n.pollNs = 0;
    this.#pollMaxNs = maxNs;
    this.#pollGrow = grow;
    this.#pollShrink = shrink;
    this.#hooks.notify();
  }

  get pollParams(): Required<PollParams> {
    return { maxNs: this.#pollMaxNs, grow: this.#pollGrow, shrink: this.#pollShrink };
  }

  info(): FdHandlerInfo[] {
    const out: FdHandlerInfo[] = [];
    for (const n of this.liveHandlers()) {
      out.push({
        fd: n.pfd.fd,
        events: n.pfd.events,
        read: n.ioRead !== null,
        write: n.ioWrite !== null,
        poll: n.ioPoll !== null,
        polling: n.polling,
        pollNs: n.pollNs,
        notifier: n.isNotifier,
      });
    }
    return out;
  }

  // ---- polling ----

  /** QLIST_INSERT_HEAD on poll_aio_handlers. */
  #pollInsertHead(node: AioHandler): void {
    const head = this.#pollHead;
    node.pollPrev = null;
    node.pollNext = head;
    if (head !== null) head.pollPrev = node;
    this.#pollHead = node;
    node.polling = true;
  }

  /** QLIST_SAFE_REMOVE from poll_aio_handlers (a no-op when not on it). */
  #pollRemove(node: AioHandler): void {
    if (!node.polling) return;
    const prev = node.pollPrev;
    const next = node.pollNext;
    if (prev !== null) prev.pollNext = next;
    else this.#pollHead = next;
    if (next !== null) next.pollPrev = prev;
    node.pollPrev = null;
    node.pollNext = null;
    node.polling = false;
  }

  #addPollReady(ready: ReadyList, node: AioHandler): void {
    node.pollReady = true;
    ready.add(node, 0);
  }

  /** poll_set_started: io_poll_begin/end on every polled handler. */
  #pollSetStarted(ready: ReadyList, started: boolean): boolean {
    if (started === this.#pollStarted) return false;
    this.#pollStarted = started;
    let progress = false;
    this.#lockcnt++;
    try {
      let next: AioHandler | null;
      for (let node: AioHandler | null = this.#pollHead; node !== null; node = next) {
        next = node.pollNext;
        if (node.deleted) continue;
        const fn = started ? node.ioPollBegin : node.ioPollEnd;
        if (fn !== null) fn();
        // A last look in case io_poll_end raced with an event.
        if (!started && node.ioPoll!()) {
          this.#addPollReady(ready, node);
          progress = true;
        }
      }
    } finally {
      this.#lockcnt--;
    }
    return progress;
  }

  #runPollHandlersOnce(ready: ReadyList, now: number, t: { timeout: number }): boolean {
    let progress = false;
    let next: AioHandler | null;
    for (let node: AioHandler | null = this.#pollHead; node !== null; node = next) {
      next = node.pollNext;
      if (node.ioPoll!()) {
        pollCounters.pollHits++;
        this.#addPollReady(ready, node);
        node.pollIdleTimeout = now + POLL_IDLE_INTERVAL_NS;
        t.timeout = 0;
        if (!node.isNotifier) progress = true;
      }
    }
    return progress;
  }

  #removeIdlePollHandlers(ready: ReadyList, now: number): boolean {
    if (!this.#fdmon.supportsUserspacePolling) return false;
    let progress = false;
    let next: AioHandler | null;
    for (let node: AioHandler | null = this.#pollHead; node !== null; node = next) {
      next = node.pollNext;
      if (node.pollIdleTimeout === 0) {
        node.pollIdleTimeout = now + POLL_IDLE_INTERVAL_NS;
      } else if (now >= node.pollIdleTimeout) {
        node.pollIdleTimeout = 0;
        this.#pollRemove(node);
        if (this.#pollStarted && node.ioPollEnd !== null) {
          node.ioPollEnd();
          if (node.ioPoll!()) {
            this.#addPollReady(ready, node);
            progress = true;
          }
        }
      }
    }
    return progress;
  }

  #runPollHandlers(ready: ReadyList, maxNs: number, t: { timeout: number }): boolean {
    let progress: boolean;
    const start = clockGettimeNs();
    let elapsed: number;
    for (;;) {
      progress = this.#runPollHandlersOnce(ready, start, t);
      elapsed = clockGettimeNs() - start;
      maxNs = soonest(t.timeout, maxNs);
      // need_wait first, as upstream: io_uring work that came up during the
      // last round is collected without blocking and poll mode stays on
      // (QEMU 2025-11), even when the polling time is used up as well.
      if (this.#fdmon.needWait()) {
        if (this.#fdmon.supportsUserspacePolling) t.timeout = 0;
        break;
      }
      if (elapsed >= maxNs) break;
      if (elapsed > POLL_YIELD_AFTER_NS) libc().sched_yield();
    }
    if (this.#removeIdlePollHandlers(ready, start + elapsed)) {
      t.timeout = 0;
      progress = true;
    }
    if (t.timeout !== -1) t.timeout -= Math.min(t.timeout, elapsed);
    return progress;
  }

  #tryPollMode(ready: ReadyList, t: { timeout: number }): boolean {
    if (this.#pollHead === null) return false;
    let maxNs = 0;
    for (let n: AioHandler | null = this.#pollHead; n !== null; n = n.pollNext) {
      if (n.pollNs > maxNs) maxNs = n.pollNs;
    }
    maxNs = soonest(t.timeout, maxNs);
    if (maxNs === 0) return false;
    // io_uring: the re-arm of a handler that fired last time is still
    // queued, and need_wait would say so on every round of a ping-pong, so
    // polling would never start. Submit it first (no wait): the kernel
    // watches the fd again, and only real completions count below.
    this.#fdmon.submitPending?.();
    if (!this.#fdmon.needWait()) {
      this.#pollSetStarted(ready, true);
      if (this.#runPollHandlers(ready, maxNs, t)) return true;
    }
    return false;
  }

  #adjustPollingTime(node: AioHandler, blockNs: number): void {
    const max = this.#pollMaxNs;
    if (blockNs <= node.pollNs) return;
    if (blockNs > max) {
      node.pollNs = this.#pollShrink ? Math.floor(node.pollNs / this.#pollShrink) : 0;
    } else if (node.pollNs < max && blockNs < max) {
      const grow = this.#pollGrow || 2;
      node.pollNs = node.pollNs ? node.pollNs * grow : 4000;
      if (node.pollNs > max) node.pollNs = max;
    }
  }

  // ---- dispatch ----

  /** aio_dispatch_handler. */
  #dispatchHandler(node: AioHandler): boolean {
    const revents = node.pfd.revents & node.pfd.events;
    node.pfd.revents = 0;
    const pollReady = node.pollReady;
    node.pollReady = false;
    // Start polling a handler once it has had a real event.
    if (!node.deleted && !node.polling && node.ioPoll !== null) {
      if (this.#pollStarted && node.ioPollBegin !== null) node.ioPollBegin();
      this.#pollInsertHead(node);
    }
    if (!node.deleted && pollReady && revents === 0 && node.ioPollReady !== null) {
      // Off the polling list while io_poll_ready runs, so a nested aio_poll
      // cannot call this handler's io_poll again.
      this.#pollRemove(node);
      try {
        if (tracing) traceCall(K_FD, T_FD_POLL_READY, node.pfd.fd, node.ioPollReady);
        else node.ioPollReady();
      } finally {
        // Back at the head, as QEMU re-inserts it.
        if (!node.polling && !node.freed) this.#pollInsertHead(node);
      }
      return !node.isNotifier;
    }
    let progress = false;
    if (!node.deleted && (revents & READ_EVENTS) !== 0 && node.ioRead !== null) {
      if (tracing) traceCall(K_FD, T_FD_READ, node.pfd.fd, node.ioRead);
      else node.ioRead();
      if (!node.isNotifier) progress = true;
    }
    if (!node.deleted && (revents & WRITE_EVENTS) !== 0 && node.ioWrite !== null) {
      if (tracing) traceCall(K_FD, T_FD_WRITE, node.pfd.fd, node.ioWrite);
      else node.ioWrite();
      progress = true;
    }
    return progress;
  }

  #dispatchReady(ready: ReadyList, blockNs: number): boolean {
    let progress = false;
    let node: AioHandler | null;
    while ((node = ready.pop()) !== null) {
      if (this.#dispatchHandler(node)) progress = true;
      if (this.#pollMaxNs !== 0 && node.polling) this.#adjustPollingTime(node, blockNs);
    }
    return progress;
  }

  /** aio_free_deleted_handlers: only the outermost walker frees. */
  #freeDeleted(): void {
    if (this.#deleted.length === 0 || this.#lockcnt !== 1) return;
    for (const n of this.#deleted) this.#free(n);
    this.#deleted.length = 0;
  }

  /**
   * Whether an ending cut short by an exception is still owed: the context
   * must not block then (aio_compute_timeout is 0, the GSource is ready).
   */
  get owesEnding(): boolean {
    return this.#owed.length !== 0;
  }

  /** aio_poll. Returns progress. */
  poll(blocking: boolean): boolean {
    // What an exception left undone runs first, as the rest of that round;
    // if it did something, this call was that round's end.
    if (this.#owed.length !== 0 && this.#runOwed()) return true;
    const hooks = this.#hooks;
    const depth = this.#depth++;
    const ready = this.#readyLists[depth] ??= new ReadyList();
    this.#lockcnt++;
    let useNotifyMe = false;
    let progress = false;
    let blockNs: number;
    try {
      const start = this.#pollMaxNs !== 0 ? clockGettimeNs() : 0;
      const t = this.#t;
      t.timeout = blocking ? hooks.computeTimeout() : 0;
      progress = this.#tryPollMode(ready, t);
      // notify_me handshake: announce the coming wait, then look at
      // notified once more so a kick that raced with us is not lost.
      if (t.timeout !== 0) {
        useNotifyMe = true;
        hooks.notifyMeAdd(2);
        if (hooks.notified()) t.timeout = 0;
      }
      // A zero-timeout poll needs no syscall when every handler can be
      // busy-polled (need_wait false).
      if (t.timeout !== 0 || this.#fdmon.needWait()) {
        // Poll mode off only before a blocking wait, so that a kick through
        // the fd wakes us; the last io_poll look may still find work.
        if (t.timeout !== 0 && this.#pollSetStarted(ready, false)) {
          t.timeout = 0;
          progress = true;
        }
        if (t.timeout !== 0) pollCounters.blockingWaits++;
        if (tracing) traceWaitBegin(T_WAIT, t.timeout);
        this.#fdmon.wait(ready, t.timeout);
        if (tracing) traceEnd(K_WAIT, T_WAIT);
      }
      if (useNotifyMe) {
        useNotifyMe = false;
        hooks.notifyMeAdd(-2);
      }
      hooks.notifyAccept();
      blockNs = this.#pollMaxNs !== 0 ? clockGettimeNs() - start : 0;
    } catch (e) {
      // A callback of the polling phase (io_poll, io_poll_begin/end) threw:
      // keep the counters right so the next poll starts from a consistent
      // state. Level-triggered fds are simply reported again by the next
      // wait, and io_poll looks again.
      if (useNotifyMe) hooks.notifyMeAdd(-2);
      this.#dropReady(ready);
      this.#unlock();
      this.#depth--;
      throw e;
    }
    if (tracing) traceBegin(K_LOOP, T_DISPATCH);
    try {
      return this.#ending(ready, blockNs, ENDING_POLL) || progress;
    } finally {
      this.#depth--;
      if (tracing) traceEnd(K_LOOP, T_DISPATCH);
    }
  }

  /**
   * The ending that aio_poll and aio_dispatch share (util/aio-posix.c): the
   * fd monitor's own completion handlers, BHs, the ready fd handlers, then
   * freeing deleted nodes, and timers once list_lock is dropped. Upstream
   * runs the fd monitor's dispatch before the BHs in aio_poll, and after
   * them in aio_dispatch, where the ready fds are only collected once the
   * BHs ran; `mode` keeps both orders, and ENDING_OWED is what is left of
   * an ending that an exception cut short (its handlers, then timers).
   * Called with list_lock taken (lockcnt incremented); drops it.
   *
   * A callback that throws leaves poll() at once, as QEMU has no such
   * thing; the handlers still on `ready` and the timers are then owed
   * (#owed) and run first by the next poll, so a handler that throws
   * without draining its fd only makes the loop busy, as a QEMU handler
   * that does not drain it would, instead of starving every handler and
   * timer behind it. Nothing is run twice: the owed nodes keep their
   * places on their own list (a nested poll may still steal them) and are
   * skipped once deleted.
   */
  #ending(ready: ReadyList, blockNs: number, mode: EndingMode): boolean {
    const hooks = this.#hooks;
    let progress = false;
    try {
      if (mode === ENDING_POLL) {
        if (this.#fdmonDispatch()) progress = true;
        if (hooks.bhPoll()) progress = true;
      } else if (mode === ENDING_GSOURCE) {
        if (hooks.bhPoll()) progress = true;
        this.#fdmon.gsourceDispatch(ready);
        if (this.#fdmonDispatch()) progress = true;
      }
      if (this.#dispatchReady(ready, blockNs)) progress = true;
    } catch (e) {
      this.#owe(ready, blockNs);
      this.#unlock();
      throw e;
    }
    this.#unlock();
    // A throwing timer needs no bookkeeping: the expired timers after it
    // stay on their list, due, for the next poll.
    if (hooks.runTimers()) progress = true;
    return progress;
  }

  /** Keeps the rest of an ending an exception cut short, for the next poll. */
  #owe(ready: ReadyList, blockNs: number): void {
    // The list now belongs to the owed ending: its depth gets a fresh one.
    const i = this.#readyLists.indexOf(ready);
    if (i >= 0) this.#readyLists[i] = new ReadyList();
    this.#owed.push({ ready, blockNs });
  }

  /** Runs the owed endings, oldest first; returns progress. */
  #runOwed(): boolean {
    let progress = false;
    while (this.#owed.length !== 0) {
      const { ready, blockNs } = this.#owed.shift()!;
      this.#lockcnt++;
      if (this.#ending(ready, blockNs, ENDING_OWED)) progress = true;
    }
    return progress;
  }

  /** fdmon_ops->dispatch, where the backend has one. */
  #fdmonDispatch(): boolean {
    const m = this.#fdmon;
    return m.dispatch !== undefined && m.dispatch();
  }

  /** Empties a ready list whose round was cut short by an exception. */
  #dropReady(ready: ReadyList): void {
    while (ready.pop() !== null);
  }

  /** Frees the deleted nodes (outermost walker only) and drops list_lock. */
  #unlock(): void {
    this.#freeDeleted();
    this.#lockcnt--;
  }

  // ---- GSource path (aio_prepare / aio_pending / aio_dispatch) ----

  /** aio_prepare: poll mode cannot be used under the GLib loop. */
  prepare(): void {
    const ready = this.#readyLists[this.#depth] ??= new ReadyList();
    this.#pollSetStarted(ready, false);
    this.#dropReady(ready);
    this.#fdmon.gsourcePrepare();
  }

  /** aio_pending (fdmon gsource_check), or an owed ending. */
  pending(): boolean {
    return this.#owed.length !== 0 || this.#fdmon.gsourceCheck();
  }

  /** aio_dispatch: BHs first, then the fds GLib found ready, then timers. */
  dispatch(): boolean {
    if (this.#owed.length !== 0 && this.#runOwed()) return true;
    const depth = this.#depth++;
    const ready = this.#readyLists[depth] ??= new ReadyList();
    this.#lockcnt++;
    if (tracing) traceBegin(K_LOOP, T_DISPATCH);
    try {
      // block_ns is 0: the GLib loop never busy-polls.
      return this.#ending(ready, 0, ENDING_GSOURCE);
    } finally {
      this.#depth--;
      if (tracing) traceEnd(K_LOOP, T_DISPATCH);
    }
  }

  /** aio_context_destroy: drop every node; the backend closes its fds. */
  destroy(): void {
    this.#fdmon.destroy();
    for (const n of this.#handlers) {
      n.deleted = true;
      n.freed = true;
    }
    this.#handlers.clear();
    this.#byFd.clear();
    for (let n: AioHandler | null = this.#pollHead; n !== null; n = n.pollNext) n.polling = false;
    this.#pollHead = null;
    this.#deleted.length = 0;
    this.#owed.length = 0;
    this.#liveCount = 0;
  }
}

/** qemu_soonest_timeout: unsigned minimum, so -1 (infinite) loses. */
function soonest(a: number, b: number): number {
  if (a < 0) return b;
  if (b < 0) return a;
  return a < b ? a : b;
}

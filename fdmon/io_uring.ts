/**
 * fdmon-io_uring: the io_uring(7) fd monitor. Each handler's fd is watched
 * by a one-shot `IORING_OP_POLL_ADD`, re-armed after every completion;
 * handler changes wait on a submit list and become SQEs only when the ring
 * is filled (in `wait` or the GSource's prepare). The completion ring is
 * mapped into the isolate, so readiness can be seen without a syscall,
 * which is what lets busy polling skip the kernel (`supportsUserspacePolling`).
 *
 * Counterpart: `util/fdmon-io_uring.c`.
 *
 * @module
 */
import { type AioHandler, ReadyList } from "./aio_handler.ts";
import type { GPollFD } from "../glib/gpollfd.ts";
import { clockGettimeNs } from "../sys/clock.ts";
import { timespecNsec, timespecSec } from "../sys/_timespec.ts";
import { IO_URING_ENTER_TIMED_OUT, IORING_FEAT_EXT_ARG } from "../sys/io_uring.ts";
import { POLLERR, POLLHUP, POLLIN, POLLOUT } from "../sys/poll.ts";
import type { FdMon, FdMonHost, FdMonOps } from "./fdmon_ops.ts";
import { IoUringRing } from "./_io_uring_ring.ts";
import { ioUringUnavailable } from "./_io_uring_probe.ts";
import { ioUringHooks } from "./_io_uring_hooks.ts";
import { type CqeHandler, Sqe, type SqePrep } from "./io_uring_sqe.ts";
import { deferCallBegin, deferCallEnd } from "../thread/defer_call.ts";

/** SQ ring size (the CQ ring gets twice as many). */
const FDMON_IO_URING_ENTRIES = 128;

// AioHandler.fdmonFlags. PENDING: on the submit list. ADD: a POLL_ADD is
// due at the next fill. REMOVE: the handler was removed; sticky until its
// POLL_ADD's CQE comes back, when the slot is released. ARMED: a POLL_ADD
// for the node is queued or in the kernel, so exactly one CQE will name its
// slot. QEMU's DELETE_AIO_HANDLER ("free at the next fill") has no use
// here: user_data is a slot index, not a pointer into the node, so the slot
// is released as soon as that CQE is seen (#processPollCqe), and the
// context may unlink the node itself whenever it likes.
const PENDING = 1 << 0;
const ADD = 1 << 1;
const REMOVE = 1 << 2;
const ARMED = 1 << 3;

// user_data: low word = the node's slot for POLL_ADDs; the high word tags
// the SQEs that belong to no node.
const TAG_TIMEOUT = 1;
const TAG_POLL_REMOVE = 2;
/** User requests (aio_add_sqe): the low word is the request's slot. */
const TAG_CQE_HANDLER = 3;
/** SQEs whose completion carries nothing (the cancels queued at destroy). */
const TAG_VOID = 4;
const ECANCELED = 125;
const EINTR = 4;
/** IORING_CQE_F_MORE: a multishot request will post more CQEs. */
const IORING_CQE_F_MORE = 1 << 1;
/** How long destroy waits for cancelled user requests to complete. */
const CANCEL_DRAIN_NS = 2_000_000_000;

// Memory of user requests the kernel still had when destroy gave up
// waiting for them: referenced for the life of the isolate, since the
// kernel may still write it.
const orphanedPins: unknown[] = [];

// Poll's bit values are the kernel's EPOLL* values for these four, and
// GLib's G_IO_*: a node's pfd.events goes to POLL_ADD as is, and a CQE's
// res maps back by mask (dropping EPOLLRDHUP, POLLNVAL ...).
const EVENT_MASK = POLLIN | POLLOUT | POLLHUP | POLLERR;
const ETIME = 62;

/** One io_uring backend instance: the ring, the slot table and the submit list. */
class IoUringFdMon implements FdMon {
  readonly name = "io_uring" as const;
  readonly supportsUserspacePolling = true;
  readonly detail: string;
  #host: FdMonHost;
  #ring: IoUringRing;
  // user_data -> node. A slot is taken when a node's first POLL_ADD is
  // queued and released when the CQE of its last one is seen.
  #slots: (AioHandler | null)[] = [];
  #freeSlots: number[] = [];
  // ctx->submit_list: nodes with PENDING set, applied by #fill().
  #submit: AioHandler[] = [];
  // The ring fd as the GSource polls it (g_source_add_unix_fd in QEMU).
  #gsourcePfd: GPollFD;
  #inGSource = false;
  // The __kernel_timespec of IORING_OP_TIMEOUT: off-heap (an explicit
  // ArrayBuffer never moves) and alive as long as the instance, since the
  // SQE holds its address until it is submitted.
  #ts = new Int32Array(new ArrayBuffer(16));
  #tsLo: number;
  #tsHi: number;
  #timeoutSeq = 0;
  // Completions of our own still to come: one per TIMEOUT and POLL_REMOVE
  // queued, and the last POLL_ADD result of each node being removed.
  #internalDue = 0;
  /** Whether the TIMEOUT of the current wait expired (-ETIME). */
  #timeoutExpired = false;
  // Timed waits pass their timeout to io_uring_enter (IORING_FEAT_EXT_ARG,
  // 5.11+) instead of queueing an IORING_OP_TIMEOUT: one SQE and one CQE
  // less per timed wait, and no TIMEOUT left behind when an fd wins.
  readonly #extArg: boolean;
  #destroyed = false;
  // User requests in flight, by slot (their user_data low word): the
  // handler and the memory the request uses, kept until its last CQE.
  #userHandlers: (CqeHandler | null)[] = [];
  #userPins: unknown[] = [];
  #userFree: number[] = [];
  #userInFlight = 0;
  // cqe_handler_ready_list: completions waiting for dispatch(), FIFO in
  // [#cqeHead, #cqeTail). The arrays keep their length when emptied, so
  // that their backing stores are reused, not reallocated, each round.
  #cqeQ: (CqeHandler | null)[] = [];
  #cqeRes: number[] = [];
  #cqeFlags: number[] = [];
  #cqeHead = 0;
  #cqeTail = 0;
  // The one SQE view that prep functions fill (copied into the ring).
  #sqe = new Sqe();
  #inPrep = false;
  // Set once the user requests were cancelled: no new ones from then on.
  #userClosed = false;

  constructor(host: FdMonHost, ring: IoUringRing) {
    this.#host = host;
    this.#ring = ring;
    this.#extArg = (ring.features & IORING_FEAT_EXT_ARG) !== 0 && ioUringHooks.extArg;
    this.detail = this.#extArg
      ? "timed waits: IORING_ENTER_EXT_ARG"
      : "timed waits: IORING_OP_TIMEOUT" +
        (ioUringHooks.extArg ? " (the kernel lacks IORING_FEAT_EXT_ARG)" : "");
    const addr = Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.#ts));
    this.#tsLo = Number(BigInt.asUintN(32, BigInt(addr)));
    this.#tsHi = Number(BigInt(addr) >> 32n);
    this.#gsourcePfd = { fd: ring.fd, events: POLLIN, revents: 0 };
    // A context that already has handlers gets them all watched.
    for (const node of host.liveHandlers()) {
      node.fdmonSlot = -1;
      node.fdmonFlags = 0;
      if (!node.deleted && node.pfd.events !== 0) this.#enqueue(node, ADD);
    }
    host.gsourceAddPoll(this.#gsourcePfd);
    this.#inGSource = true;
  }

  update(oldNode: AioHandler | null, newNode: AioHandler | null): void {
    this.#checkLive();
    if (newNode !== null && newNode.pfd.events !== 0) {
      newNode.fdmonSlot = -1;
      newNode.fdmonFlags = 0;
      this.#enqueue(newNode, ADD);
    }
    if (oldNode !== null) this.#remove(oldNode);
  }

  wait(ready: ReadyList, timeoutNs: number): number {
    this.#checkLive();
    const ring = this.#ring;
    // fdmon_io_uring_wait(): first every change and re-arm becomes an SQE
    // and is submitted, then every CQE is reaped, those the submission
    // itself produced included. Reaping completions that were already
    // posted before the re-arms go in would let a re-arm complete unseen
    // (its handler waits one more poll) and would post a completion for an
    // fd whose handler is about to drain it (a spurious call next time).
    this.#fill();
    // Completions already queued for dispatch() (a handler threw): no wait.
    if (this.#cqeHead < this.#cqeTail) timeoutNs = 0;
    // The start time is needed when completions of our own may end a timed
    // wait early, and always with EXT_ARG, whose relative timeout starts
    // anew on every enter (a signal, SQEs consumed on the way).
    const deadline = timeoutNs > 0 && (this.#extArg || this.#internalDue > 0 || ring.cqReady() > 0)
      ? clockGettimeNs() + timeoutNs
      : -1;
    for (;;) {
      let waitNr = 0;
      let expired = false;
      // Completions already posted end a blocking wait at once: submit
      // without a timeout, which would only linger in the kernel.
      if (timeoutNs !== 0 && ring.cqReady() === 0) {
        waitNr = 1;
        if (timeoutNs < 0) {
          this.#submitAndWait(1);
        } else if (this.#extArg) {
          expired = this.#submitAndWaitTimed(timeoutNs, deadline);
        } else {
          this.#prepTimeout(timeoutNs);
          this.#submitAndWait(1);
        }
      } else {
        this.#submitAndWait(0);
      }
      const numReady = this.#processCq(ready);
      if (numReady > 0 || timeoutNs === 0 || this.#cqeHead < this.#cqeTail) return numReady;
      // Woken by completions of our own (a cancelled poll, a POLL_REMOVE's
      // result): QEMU returns here, a spurious wake-up for the caller; wait
      // on for what is left of the timeout instead.
      if (timeoutNs > 0) {
        if ((waitNr !== 0 && (expired || this.#timeoutExpired)) || deadline < 0) return 0;
        timeoutNs = deadline - clockGettimeNs();
        if (timeoutNs <= 0) return 0;
      }
    }
  }

  needWait(): boolean {
    this.#checkLive();
    const ring = this.#ring;
    return ring.cqReady() > 0 || ring.sqReady() > 0 || this.#submit.length > 0 ||
      this.#cqeHead < this.#cqeTail;
  }

  submitPending(): void {
    this.#checkLive();
    if (this.#submit.length === 0 && this.#ring.sqReady() === 0) return;
    this.#fill();
    this.#submitAndWait(0);
  }

  /**
   * fdmon_io_uring_dispatch(): runs the handlers of completed user
   * requests, oldest first, inside a defer_call section. A handler that
   * throws leaves the others queued for the next dispatch.
   */
  dispatch(): boolean {
    if (this.#cqeHead === this.#cqeTail) return false;
    deferCallBegin();
    try {
      // The fields are re-read each round: a handler may poll the context
      // again (a nested dispatch moves the head) or add requests.
      while (this.#cqeHead < this.#cqeTail) {
        const i = this.#cqeHead++;
        const handler = this.#cqeQ[i]!;
        const res = this.#cqeRes[i];
        const flags = this.#cqeFlags[i];
        this.#cqeQ[i] = null;
        if (this.#cqeHead === this.#cqeTail) this.#cqeHead = this.#cqeTail = 0;
        handler(res, flags);
      }
    } finally {
      deferCallEnd();
    }
    return true;
  }

  /**
   * aio_add_sqe() / fdmon_io_uring_add_sqe(): `prep` fills a zeroed SQE,
   * which is queued under a user_data naming `handler`; it is submitted by
   * the next wait (or sooner, when the SQ ring is full).
   */
  addSqe(prep: SqePrep, handler: CqeHandler): void {
    this.#checkLive();
    if (typeof prep !== "function" || typeof handler !== "function") {
      throw new TypeError("addSqe() needs a prep function and a handler");
    }
    if (this.#userClosed) {
      throw new Deno.errors.BadResource("The io_uring fd monitor is being destroyed");
    }
    if (this.#inPrep) throw new Error("addSqe() called from a prep function");
    const sqe = this.#sqe;
    sqe.reset();
    this.#inPrep = true;
    try {
      prep(sqe);
    } catch (e) {
      sqe.reset();
      throw e;
    } finally {
      this.#inPrep = false;
    }
    const slot = this.#userFree.length > 0 ? this.#userFree.pop()! : this.#userHandlers.length;
    this.#userHandlers[slot] = handler;
    this.#userPins[slot] = sqe.takePins();
    try {
      this.#ring.prepWords(sqe.words, slot, TAG_CQE_HANDLER);
    } catch (e) {
      this.#userHandlers[slot] = null;
      this.#userPins[slot] = null;
      this.#userFree.push(slot);
      throw e;
    }
    this.#userInFlight++;
  }

  /**
   * Cancels every user request in flight (IORING_OP_ASYNC_CANCEL), waits
   * for their CQEs, then runs every handler still owed: a cancelled request
   * reports -ECANCELED, one that finished first its own result. Later
   * addSqe() calls fail. The first error a handler throws is rethrown once
   * all ran.
   */
  cancelSqes(): void {
    this.#checkLive();
    if (!this.#userClosed) {
      this.#userClosed = true;
      if (this.#userInFlight > 0) this.#drainUser();
    }
    let failed = false;
    let first: unknown;
    for (;;) {
      try {
        this.dispatch();
        break;
      } catch (e) {
        if (!failed) {
          failed = true;
          first = e;
        }
      }
    }
    if (failed) throw first;
  }

  #drainUser(): void {
    const ring = this.#ring;
    const handlers = this.#userHandlers;
    for (let s = 0; s < handlers.length; s++) {
      if (handlers[s] !== null) {
        ring.prepAsyncCancel(s, TAG_CQE_HANDLER, 0, TAG_VOID);
        this.#internalDue++;
      }
    }
    // Poll completions seen on the way are dropped (the context is going);
    // re-arms they queue are cancelled by the kernel when the ring closes.
    const scratch = new ReadyListSink();
    const deadline = clockGettimeNs() + CANCEL_DRAIN_NS;
    while (this.#userInFlight > 0) {
      const left = deadline - clockGettimeNs();
      if (left <= 0) break;
      this.#prepTimeout(left);
      this.#submitAndWait(1);
      this.#processCq(scratch.list);
      scratch.drop();
    }
    // Requests the kernel would not give back in time: reported cancelled,
    // their memory kept for good.
    for (let s = 0; s < handlers.length; s++) {
      const h = handlers[s];
      if (h === null) continue;
      orphanedPins.push(this.#userPins[s]);
      handlers[s] = null;
      this.#userPins[s] = null;
      this.#userInFlight--;
      this.#queueCqe(h, -ECANCELED, 0);
    }
  }

  /** A user request's CQE: queue its handler; its slot is free after the last CQE. */
  #userCqe(slot: number, res: number, flags: number): void {
    const handler = this.#userHandlers[slot];
    if (handler === null || handler === undefined) return;
    if ((flags & IORING_CQE_F_MORE) === 0) {
      this.#userHandlers[slot] = null;
      this.#userPins[slot] = null;
      this.#userFree.push(slot);
      this.#userInFlight--;
      // A cancel that caught the request in a worker thread reports EINTR.
      if (this.#userClosed && res === -EINTR) res = -ECANCELED;
    }
    this.#queueCqe(handler, res, flags);
  }

  #queueCqe(handler: CqeHandler, res: number, flags: number): void {
    const i = this.#cqeTail++;
    this.#cqeQ[i] = handler;
    this.#cqeRes[i] = res;
    this.#cqeFlags[i] = flags;
  }

  gsourcePrepare(): void {
    this.#checkLive();
    this.#fill();
    this.#submitAndWait(0);
  }

  gsourceCheck(): boolean {
    this.#checkLive();
    // The ring fd polls readable while CQEs wait; a CQE posted after GLib's
    // poll is just as good.
    return (this.#gsourcePfd.revents & POLLIN) !== 0 || this.#ring.cqReady() > 0 ||
      this.#cqeHead < this.#cqeTail;
  }

  gsourceDispatch(ready: ReadyList): void {
    this.#checkLive();
    this.#processCq(ready);
  }

  destroy(): void {
    if (this.#destroyed) return;
    // User requests are cancelled and their handlers run while the ring is
    // still up (the AioContext does it earlier, in a destroy hook).
    let failed = false;
    let first: unknown;
    try {
      this.cancelSqes();
    } catch (e) {
      failed = true;
      first = e;
    }
    this.#destroyed = true;
    if (this.#inGSource) {
      this.#inGSource = false;
      this.#host.gsourceRemovePoll(this.#gsourcePfd);
    }
    // Queued SQEs are dropped; the kernel cancels the polls in flight.
    for (const node of this.#submit) node.fdmonFlags = 0;
    this.#submit.length = 0;
    const slots = this.#slots;
    for (let s = 0; s < slots.length; s++) {
      const node = slots[s];
      if (node !== null && node.fdmonSlot === s) {
        node.fdmonSlot = -1;
        node.fdmonFlags = 0;
      }
    }
    slots.length = 0;
    this.#freeSlots.length = 0;
    this.#internalDue = 0;
    this.#ring.close();
    if (failed) throw first;
  }

  /**
   * Queues an IORING_OP_TIMEOUT that expires after `ns`, or completes as
   * soon as one other CQE arrives. Its user_data carries a sequence number,
   * so that only this wait's expiry counts as "timed out".
   */
  #prepTimeout(ns: number): void {
    const ts = this.#ts;
    // A 64-bit tv_sec: no cap needed below the int64 ns range of timers.
    const sec = timespecSec(ns, Number.MAX_SAFE_INTEGER);
    ts[0] = sec % 0x1_0000_0000;
    ts[1] = Math.floor(sec / 0x1_0000_0000);
    ts[2] = timespecNsec(ns);
    ts[3] = 0;
    this.#timeoutSeq = (this.#timeoutSeq + 1) >>> 0;
    this.#timeoutExpired = false;
    this.#internalDue++;
    this.#ring.prepTimeout(this.#tsLo, this.#tsHi, 1, this.#timeoutSeq, TAG_TIMEOUT);
  }

  /**
   * A timed wait for one CQE with the timeout given to io_uring_enter
   * (IORING_ENTER_EXT_ARG). Returns true when the time ran out. The kernel
   * reports ETIME only when nothing was submitted; a signal, or SQEs
   * consumed, return early or hide how the wait ended, and then the clock
   * decides whether to wait on.
   */
  #submitAndWaitTimed(ns: number, deadline: number): boolean {
    const ring = this.#ring;
    for (;;) {
      const r = ring.submitTimed(1, ns);
      if (ring.cqReady() > 0) return false;
      if (r === IO_URING_ENTER_TIMED_OUT) return true;
      ns = deadline - clockGettimeNs();
      if (ns <= 0) return true;
    }
  }

  /**
   * io_uring_submit_and_wait() in QEMU's loop: a signal makes the call fail
   * with EINTR when nothing was submitted, or return the submitted count
   * early; either way go round (then only waiting) until `waitNr` CQEs are
   * there.
   */
  #submitAndWait(waitNr: number): void {
    const ring = this.#ring;
    for (;;) {
      const r = ring.submit(waitNr);
      if (r !== -1 && ring.cqReady() >= waitNr) return;
    }
  }

  /** enqueue(): flag the node and put it on the submit list once. */
  #enqueue(node: AioHandler, flag: number): void {
    const old = node.fdmonFlags;
    node.fdmonFlags = old | PENDING | flag;
    if ((old & PENDING) === 0) this.#submit.push(node);
  }

  /** The removal half of update(). */
  #remove(node: AioHandler): void {
    const f = node.fdmonFlags;
    if ((f & ADD) !== 0) {
      // Its POLL_ADD was never queued: nothing to cancel. It stays on the
      // submit list with no work, which #fill() skips.
      node.fdmonFlags = f & ~ADD;
    } else if ((f & ARMED) !== 0) {
      // A POLL_ADD is out: cancel it, and keep the slot until its CQE
      // (completed or -ECANCELED) is seen, so no later node reusing the
      // slot can be confused with it.
      this.#enqueue(node, REMOVE);
      this.#internalDue++;
    } else if (node.fdmonSlot >= 0) {
      // Unarmed (its last poll failed, say): nothing will name the slot.
      this.#releaseSlot(node);
    }
  }

  /** fill_sq_ring(): turn the submit list into SQEs. */
  #fill(): void {
    const list = this.#submit;
    if (list.length === 0) return;
    const ring = this.#ring;
    // Index loop: #queuePollAdd may submit when the SQ ring is full, but
    // never touches the list.
    for (let i = 0; i < list.length; i++) {
      const node = list[i];
      const f = node.fdmonFlags;
      node.fdmonFlags = f & ~(PENDING | ADD);
      if ((f & ADD) !== 0) this.#queuePollAdd(node);
      // REMOVE stays set: it also tells #processCq to drop the CQE.
      if ((f & REMOVE) !== 0 && (f & ARMED) !== 0) {
        ring.prepPollRemove(node.fdmonSlot, 0, node.fdmonSlot, TAG_POLL_REMOVE);
        this.#internalDue++;
      }
    }
    list.length = 0;
  }

  #queuePollAdd(node: AioHandler): void {
    let slot = node.fdmonSlot;
    if (slot < 0) {
      slot = this.#freeSlots.length > 0 ? this.#freeSlots.pop()! : this.#slots.length;
      this.#slots[slot] = node;
      node.fdmonSlot = slot;
    }
    this.#ring.prepPollAdd(node.pfd.fd, node.pfd.events & EVENT_MASK, slot, 0);
    node.fdmonFlags |= ARMED;
  }

  #releaseSlot(node: AioHandler): void {
    const slot = node.fdmonSlot;
    this.#slots[slot] = null;
    this.#freeSlots.push(slot);
    node.fdmonSlot = -1;
  }

  /** process_cq_ring(): every CQE in the ring; returns how many nodes got ready. */
  #processCq(ready: ReadyList): number {
    const ring = this.#ring;
    ring.flushOverflow();
    // Only the CQEs there now: re-arms submitted on the way (a full SQ
    // ring) may complete at once, and belong to the next round.
    let n = ring.cqReady();
    let numReady = 0;
    for (; n > 0; n--) {
      const hi = ring.cqeUdHi();
      const slot = ring.cqeUdLo();
      const res = ring.cqeRes();
      const flags = hi === TAG_CQE_HANDLER ? ring.cqeFlags() : 0;
      // Hand the entry back first: a re-arm below may enter the kernel.
      ring.cqAdvance();
      if (hi === TAG_CQE_HANDLER) {
        // Run later, by dispatch() (process_cqe()).
        this.#userCqe(slot, res, flags);
        continue;
      }
      if (hi !== 0) {
        // POLL_REMOVE results carry nothing for us; a TIMEOUT's only
        // matters when it is the current wait's and it expired.
        this.#internalDue--;
        if (hi === TAG_TIMEOUT) {
          if (slot === this.#timeoutSeq && res === -ETIME) this.#timeoutExpired = true;
        }
        continue;
      }
      if (this.#processPollCqe(ready, slot, res)) numReady++;
    }
    return numReady;
  }

  /** process_cqe_aio_handler(): one POLL_ADD came back. */
  #processPollCqe(ready: ReadyList, slot: number, res: number): boolean {
    const node = this.#slots[slot];
    if (node === undefined || node === null) return false;
    const f = node.fdmonFlags & ~ARMED;
    if ((f & REMOVE) !== 0) {
      // The removed node's last CQE: its slot is free now. PENDING may still
      // be set (removed after the last fill); #fill() then finds no work.
      node.fdmonFlags = f & ~REMOVE;
      this.#releaseSlot(node);
      this.#internalDue--;
      return false;
    }
    node.fdmonFlags = f;
    if (res < 0) {
      // The fd went bad (EBADF), or the poll was cancelled without a removal
      // (the submitting thread exited): not re-armed, as epoll drops a
      // closed fd. The node keeps its slot until it is removed; a new
      // registration of the fd watches it again.
      return false;
    }
    ready.add(node, res & EVENT_MASK);
    // One-shot: watch it again (submitted by the next wait or prepare).
    this.#queuePollAdd(node);
    return true;
  }

  #checkLive(): void {
    if (this.#destroyed) {
      throw new Deno.errors.BadResource("The io_uring fd monitor was destroyed");
    }
  }
}

/** A throwaway ready list for completions nobody will dispatch. */
class ReadyListSink {
  readonly list: ReadyList = new ReadyList();
  drop(): void {
    while (this.list.pop() !== null);
  }
}

/**
 * The io_uring(7) fd monitor, over raw `io_uring_setup`/`io_uring_enter`
 * system calls and rings mapped into the isolate (no liburing). A ring of
 * 128 entries watches each handler's fd with a one-shot
 * `IORING_OP_POLL_ADD` that is re-armed after every completion, so the
 * context sees level-triggered readiness as with poll. A timed wait passes
 * its timeout (nanosecond precision) to `io_uring_enter` itself
 * (`IORING_ENTER_EXT_ARG`, Linux 5.11+); on older kernels it adds an
 * `IORING_OP_TIMEOUT` that completes early once any
 * other completion arrives. A removed handler's poll is cancelled with
 * `IORING_OP_POLL_REMOVE` and it never fires again. The GSource polls the
 * ring fd.
 *
 * `supported()` makes one ring per isolate to find out: io_uring may be
 * missing (before Linux 5.5), or turned off by the sysctl
 * `kernel.io_uring_disabled` or a seccomp filter (Docker's default one).
 * It is what an `auto` context (the default) takes first; where it cannot
 * be had, `ctx.fdmonInfo().fallback` says why.
 *
 * Counterpart: `fdmon_io_uring_ops` (`util/fdmon-io_uring.c`),
 * `fdmon_io_uring_setup()`.
 *
 * Thread: the instance it creates serves its context's home thread only.
 *
 * @example Choosing io_uring where the kernel allows it
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext } from "@aioloop/aioloop";
 * import { fdmonIoUring } from "@aioloop/aioloop/fdmon";
 * if (fdmonIoUring.supported()) {
 *   using ctx = AioContext.create({ fdmon: "io_uring" });
 *   assertEquals(ctx.fdmon, "io_uring");
 * }
 * ```
 */
export const fdmonIoUring: FdMonOps = Object.freeze({
  name: "io_uring" as const,
  supported(): boolean {
    return ioUringUnavailable() === null;
  },
  create(host: FdMonHost): FdMon {
    return new IoUringFdMon(host, IoUringRing.create(FDMON_IO_URING_ENTRIES));
  },
});

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
import type { AioHandler, ReadyList } from "./aio_handler.ts";
import type { GPollFD } from "../glib/gpollfd.ts";
import { clockGettimeNs } from "../sys/clock.ts";
import { SysError } from "../sys/errno.ts";
import { timespecNsec, timespecSec } from "../sys/_timespec.ts";
import { IORING_FEAT_NODROP } from "../sys/io_uring.ts";
import { POLLERR, POLLHUP, POLLIN, POLLOUT } from "../sys/poll.ts";
import type { FdMon, FdMonHost, FdMonOps } from "./fdmon_ops.ts";
import { IoUringRing } from "./_io_uring_ring.ts";

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
/** Reserved for user CQE handlers (aio_add_sqe), not implemented. */
const TAG_CQE_HANDLER = 3;

// Poll's bit values are the kernel's EPOLL* values for these four, and
// GLib's G_IO_*: a node's pfd.events goes to POLL_ADD as is, and a CQE's
// res maps back by mask (dropping EPOLLRDHUP, POLLNVAL ...).
const EVENT_MASK = POLLIN | POLLOUT | POLLHUP | POLLERR;
const ETIME = 62;

/** One io_uring backend instance: the ring, the slot table and the submit list. */
class IoUringFdMon implements FdMon {
  readonly name = "io_uring" as const;
  readonly supportsUserspacePolling = true;
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
  #destroyed = false;

  constructor(host: FdMonHost, ring: IoUringRing) {
    this.#host = host;
    this.#ring = ring;
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
    // Only when completions of our own may come can they end a timed wait
    // early; only then is the start time needed (reading it allocates).
    const deadline = timeoutNs > 0 && (this.#internalDue > 0 || ring.cqReady() > 0)
      ? clockGettimeNs() + timeoutNs
      : -1;
    for (;;) {
      let waitNr = 0;
      // Completions already posted end a blocking wait at once: submit
      // without a TIMEOUT, which would only linger in the kernel.
      if (timeoutNs !== 0 && ring.cqReady() === 0) {
        waitNr = 1;
        if (timeoutNs > 0) this.#prepTimeout(timeoutNs);
      }
      this.#submitAndWait(waitNr);
      const numReady = this.#processCq(ready);
      if (numReady > 0 || timeoutNs === 0) return numReady;
      // Woken by completions of our own (a cancelled poll, a POLL_REMOVE's
      // result): QEMU returns here, a spurious wake-up for the caller; wait
      // on for what is left of the timeout instead.
      if (timeoutNs > 0) {
        if ((waitNr !== 0 && this.#timeoutExpired) || deadline < 0) return 0;
        timeoutNs = deadline - clockGettimeNs();
        if (timeoutNs <= 0) return 0;
      }
    }
  }

  needWait(): boolean {
    this.#checkLive();
    const ring = this.#ring;
    return ring.cqReady() > 0 || ring.sqReady() > 0 || this.#submit.length > 0;
  }

  submitPending(): void {
    this.#checkLive();
    if (this.#submit.length === 0 && this.#ring.sqReady() === 0) return;
    this.#fill();
    this.#submitAndWait(0);
  }

  /** User CQE handlers (aio_add_sqe) are not implemented: nothing to run. */
  dispatch(): boolean {
    return false;
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
    return (this.#gsourcePfd.revents & POLLIN) !== 0 || this.#ring.cqReady() > 0;
  }

  gsourceDispatch(ready: ReadyList): void {
    this.#checkLive();
    this.#processCq(ready);
  }

  destroy(): void {
    if (this.#destroyed) return;
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
      // Hand the entry back first: a re-arm below may enter the kernel.
      ring.cqAdvance();
      if (hi !== 0) {
        // POLL_REMOVE results carry nothing for us; a TIMEOUT's only
        // matters when it is the current wait's and it expired.
        this.#internalDue--;
        if (hi === TAG_TIMEOUT) {
          if (slot === this.#timeoutSeq && res === -ETIME) this.#timeoutExpired = true;
        } else if (hi === TAG_CQE_HANDLER) {
          // Would go to dispatch(), were aio_add_sqe implemented.
          throw new Error("Unexpected io_uring CQE handler completion");
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

/**
 * Makes and tests a ring: setup, mmap, one NOP round trip (seccomp may allow
 * setup and forbid enter), and the features this backend relies on.
 */
function probe(): boolean {
  let ring: IoUringRing;
  try {
    ring = IoUringRing.create(1);
  } catch (e) {
    if (e instanceof SysError) return false;
    throw e;
  }
  try {
    // Without NODROP (before 5.5) completions past the CQ ring are lost.
    if ((ring.features & IORING_FEAT_NODROP) === 0) return false;
    ring.prepNop(0, 0);
    let r: number;
    do r = ring.submit(1); while (r === -1);
    if (ring.cqReady() !== 1 || ring.cqeRes() !== 0) return false;
    ring.cqAdvance();
    return true;
  } catch (e) {
    if (e instanceof SysError) return false;
    throw e;
  } finally {
    ring.close();
  }
}

let ioUringSupported: boolean | undefined;

/**
 * The io_uring(7) fd monitor, over raw `io_uring_setup`/`io_uring_enter`
 * system calls and rings mapped into the isolate (no liburing). A ring of
 * 128 entries watches each handler's fd with a one-shot
 * `IORING_OP_POLL_ADD` that is re-armed after every completion, so the
 * context sees level-triggered readiness as with poll. A timed wait adds an
 * `IORING_OP_TIMEOUT` (nanosecond precision) that completes early once any
 * other completion arrives. A removed handler's poll is cancelled with
 * `IORING_OP_POLL_REMOVE` and it never fires again. The GSource polls the
 * ring fd.
 *
 * `supported()` makes one ring per isolate to find out: io_uring may be
 * missing (before Linux 5.5), or turned off by the sysctl
 * `kernel.io_uring_disabled` or a seccomp filter (Docker's default one).
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
    // Only the kernel's answer is cached; a missing permission throws.
    ioUringSupported ??= probe();
    return ioUringSupported;
  },
  create(host: FdMonHost): FdMon {
    return new IoUringFdMon(host, IoUringRing.create(FDMON_IO_URING_ENTRIES));
  },
});

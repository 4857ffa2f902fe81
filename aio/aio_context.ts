/**
 * util/async.c: the AioContext. Bottom halves, timers, fd handlers and the
 * notify handshake, driven by {@linkcode AioContext.prototype.poll}.
 *
 * @module
 */
import { type AioPollHooks, AioPosix } from "./aio_posix.ts";
import type { FdHandlerInfo, FdHandlers, PollParams } from "./fd_handlers.ts";
import { type BhOptions, QEMUBH } from "./bh.ts";
import { BH_DELETED, BH_SCHEDULED, BhList } from "./_bh_list.ts";
import {
  CTL_DOORBELL_FD,
  CTL_ID,
  CTL_KICKS,
  CTL_NOTIFIED,
  CTL_NOTIFY_ME,
  newCtlBlock,
} from "./_ctl_block.ts";
import { EventNotifier } from "./event_notifier.ts";
import type { AioContextHandle } from "./handle.ts";
import {
  bhCapacity,
  bhGrow,
  bhSlotGeneration,
  bhSlotReset,
  ctlShutdown,
  drainRemoteBhs,
  remoteBhPending,
} from "./_ctl_ops.ts";
import { CTL_REMOTE_BH_MAX } from "./_ctl_block.ts";
import {
  ioUringNeeded,
  markIoUringNeeded,
  nextContextId,
  processClockBlock,
  registerClockWake,
  unregisterClockWake,
} from "./_timer_list.ts";
import { type QEMUClockType, QEMUTimer, TimerListGroup } from "./timer.ts";
import { type AioInternals, coroutineHooks, registerInternals } from "./_internal.ts";
import { aioGetGSource } from "./aio_gsource.ts";
import { K_LOOP, traceBegin, traceEnd, traceName, tracing } from "../trace/_state.ts";
import type { GSource, GSourceFunc } from "../glib/source.ts";
import { type FdMonSetup, setupFdMon, setupReason } from "../fdmon/_setup.ts";
import type { FdMonName } from "../fdmon/fdmon_ops.ts";
import { FdMonUnavailableError } from "../fdmon/fdmon_unavailable_error.ts";

export type { FdMonName };
export { FdMonUnavailableError };
import { isOpenFd } from "../sys/fd.ts";
import { SysError } from "../sys/errno.ts";

/** Options for {@linkcode AioContext.create}. */
export interface AioContextOptions {
  /**
   * The fd monitor: "poll" (upgrades to epoll at 64 fds, as QEMU), "epoll",
   * "io_uring", or "auto" (default: the `AIOLOOP_FDMON` environment
   * variable, else auto: io_uring where the kernel allows it, else poll).
   */
  fdmon?: FdMonName | "auto";
  /** A name for introspection (`info aio`). */
  name?: string;
}

/** Introspection of a context, as the demo's `info aio` prints it. */
export interface AioContextInfo {
  /** Context id. */
  id: number;
  /** Context name. */
  name: string;
  /** The fd monitor in use now. */
  fdmon: FdMonName;
  /** Why the context has it, in one line (see {@linkcode FdMonInfo}). */
  fdmonReason: string;
  /** Registered fd handlers. */
  handlers: FdHandlerInfo[];
  /** Names of queued bottom halves and whether each is scheduled. */
  bhs: { name: string; scheduled: boolean }[];
  /** Adaptive polling parameters. */
  pollParams: Required<PollParams>;
}

/** Which fd monitor a context has and why: {@linkcode AioContext.prototype.fdmonInfo}. */
export interface FdMonInfo {
  /** The fd monitor in use now (`poll` becomes `epoll` at 64 fds). */
  name: FdMonName;
  /** What was asked for, after `AIOLOOP_FDMON`: a name, or "auto". */
  requested: FdMonName | "auto";
  /** Why an `auto` context did not get io_uring, in one line; null if it did or was not auto. */
  fallback: string | null;
  /** How the monitor works here (io_uring: how timed waits are made), or null. */
  detail: string | null;
  /**
   * One line: the monitor, how it was chosen and any fallback, such as
   * `io_uring (auto): AIOLOOP_FDMON not set` or `poll, moving to epoll at 64
   * fds (auto; io_uring unavailable: io_uring_setup: EPERM (errno 1)):
   * AIOLOOP_FDMON not set`.
   */
  reason: string;
}

const INT32_MAX = 0x7fffffff;

// aio_context_setup()'s need_io_uring, process-wide: it lives in the block
// every isolate shares.
const IO_URING_RULE = Object.freeze({ needed: ioUringNeeded, got: markIoUringNeeded });

/** A short description of a bad argument, for error messages. */
function describe(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === "string") return `the string ${JSON.stringify(v)}`;
  if (typeof v === "function") return "a function";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") {
    const name = Object.getPrototypeOf(v)?.constructor?.name;
    return name ? `an object (${name})` : "an object";
  }
  return `${typeof v} ${String(v)}`;
}

/** An fd argument: a number, an integer in [0, INT32_MAX] (a C int). */
function checkFd(fd: unknown): void {
  if (typeof fd !== "number") {
    throw new TypeError(
      `setFdHandler: fd must be a file descriptor number, got ${describe(fd)}`,
    );
  }
  if (!Number.isInteger(fd) || fd < 0 || fd > INT32_MAX) {
    throw new RangeError(
      `setFdHandler: fd must be an open file descriptor, an integer from 0 to ${INT32_MAX}, ` +
        `got ${fd}`,
    );
  }
}

/** A callback argument: a function, null or undefined. */
function checkCallback(name: string, f: unknown): void {
  if (f !== undefined && f !== null && typeof f !== "function") {
    throw new TypeError(`${name} must be a function, or null for none, got ${describe(f)}`);
  }
}

// What removing a handler returns: there is nothing to undo.
const NO_REGISTRATION: Disposable = Object.freeze({ [Symbol.dispose](): void {} });

/**
 * An event loop context: bottom halves, timers and fd handlers, run by
 * {@linkcode AioContext.prototype.poll}. The fd path is real libc (poll,
 * epoll) through FFI; the notify handshake lives in a SharedArrayBuffer so
 * other threads can ring the context.
 *
 * Counterpart: `AioContext` (`aio_context_new`, `aio_poll`, `aio_notify`).
 *
 * Thread: home thread (the isolate that created it) only, except where a
 * method says otherwise.
 *
 * @example A bottom half and a timer
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext, QEMUClockType, SCALE_MS } from "@aioloop/aioloop";
 * using ctx = AioContext.create();
 * const log: string[] = [];
 * ctx.bhScheduleOneshot(() => log.push("bh"));
 * const t = ctx.timerNew(QEMUClockType.REALTIME, SCALE_MS, () => log.push("timer"));
 * t.mod(0); // already expired: runs in the next poll
 * while (log.length < 2) ctx.poll(true);
 * assertEquals(log, [ "bh", "timer" ]);
 * ```
 */
export class AioContext {
  /** Id, unique in the process (shared with IOThreads and Workers that opened a handle). */
  readonly id: number;
  /** Name for introspection. */
  readonly name: string;
  #ctl: Int32Array;
  #notifier: EventNotifier;
  #bhs: BhList = new BhList();
  #tlg: TimerListGroup;
  #posix: AioPosix;
  #destroyed = false;
  #polling = 0;
  #internals: AioInternals;
  /** Shared BHs by control-block slot. */
  #remoteBhs = new Map<number, QEMUBH>();
  #freeSlots: number[] = [];
  #handle: AioContextHandle;
  /** The name of this context's poll spans in a trace. */
  #traceName: number;

  private constructor(options: AioContextOptions) {
    this.id = nextContextId();
    this.name = options.name ?? `ctx${this.id}`;
    this.#traceName = traceName(`aio_poll ${this.name}`);
    this.#ctl = newCtlBlock();
    this.#notifier = EventNotifier.create(false);
    const ctl = this.#ctl;
    Atomics.store(ctl, CTL_ID, this.id);
    Atomics.store(ctl, CTL_DOORBELL_FD, this.#notifier.wfd);
    this.#handle = this.#makeHandle();
    for (let i = bhCapacity(ctl) - 1; i >= 0; i--) this.#freeSlots.push(i);
    this.#bhs.onFree = (bh) => {
      if (bh.remoteSlot >= 0) {
        // The generation was bumped at delete(); drop any late stamp.
        bhSlotReset(ctl, bh.remoteSlot, bhSlotGeneration(ctl, bh.remoteSlot));
        this.#remoteBhs.delete(bh.remoteSlot);
        this.#freeSlots.push(bh.remoteSlot);
        bh.remoteSlot = -1;
      }
    };
    const hooks: AioPollHooks = {
      computeTimeout: () => this.#computeTimeout(),
      bhPoll: () => {
        if (this.#remoteBhs.size !== 0) this.#drainRemote();
        return this.#bhs.poll();
      },
      runTimers: () => this.#tlg.runTimers(),
      notifyMeAdd: (d) => {
        Atomics.add(ctl, CTL_NOTIFY_ME, d);
      },
      notified: () => Atomics.load(ctl, CTL_NOTIFIED) !== 0,
      notifyAccept: () => {
        Atomics.store(ctl, CTL_NOTIFIED, 0);
      },
      notify: () => this.#notify(),
      // The records exist whether or not a GSource was made yet; getGSource()
      // hands the current set over.
      gsourceAddPoll: (pfd) => {
        this.#internals.gsourcePolls.add(pfd);
        this.#internals.gsource?.addPoll(pfd);
      },
      gsourceRemovePoll: (pfd) => {
        this.#internals.gsourcePolls.delete(pfd);
        this.#internals.gsource?.removePoll(pfd);
      },
    };
    this.#posix = new AioPosix(hooks);
    this.#tlg = new TimerListGroup(() => this.#notify());
    this.#internals = {
      posix: this.#posix,
      bhList: this.#bhs,
      tlg: this.#tlg,
      ctl,
      // The GSource must not block while a poll cut short by an exception
      // still owes its handlers and timers (poll() runs them first itself).
      computeTimeout: () => this.#posix.owesEnding ? 0 : this.#computeTimeout(),
      notifyAccept: hooks.notifyAccept,
      destroyHooks: [],
      slots: new Map(),
      gsource: null,
      gsourcePolls: new Set(),
    };
    registerInternals(this, this.#internals);
    try {
      this.#fdmonSetup = setupFdMon(this.#posix, options.fdmon, IO_URING_RULE);
      this.#posix.setFdMon(this.#fdmonSetup.mon);
    } catch (e) {
      this.#tlg.destroy();
      this.#notifier.close();
      throw e;
    }
    const notifier = this.#notifier;
    this.#posix.setFdHandler(notifier.fd, {
      read: () => {
        notifier.testAndClear();
      },
      // Busy polling notices a kick without a syscall.
      poll: () => Atomics.load(ctl, CTL_NOTIFIED) !== 0,
      pollReady: () => {},
    }, true);
    // Clock changes made in other isolates ring the doorbell.
    this.#clockWake = registerClockWake(notifier.wfd);
  }

  #clockWake = 0;
  #fdmonSetup!: FdMonSetup;

  #makeHandle(): AioContextHandle {
    return Object.freeze({
      ctl: this.#ctl.buffer as SharedArrayBuffer,
      id: this.id,
      clock: processClockBlock(),
    });
  }

  /**
   * Creates a context with its own notifier (eventfd) and fd monitor.
   *
   * Counterpart: `aio_context_new()`.
   *
   * @param options Which fd monitor to use, and a name.
   * @returns The new context; destroy it with {@linkcode AioContext.prototype.destroy} or `using`.
   * @throws {SysError} If the eventfd cannot be created.
   * @throws {FdMonUnavailableError} If a forced fd monitor cannot be set up
   * (its `code` names the errno), or io_uring fails for an `auto` context
   * while another context of the process has io_uring (QEMU's rule: then
   * every context must, so that user SQEs work on every thread).
   * @throws {TypeError} If the fd monitor name is unknown.
   *
   * @example Choosing the fd monitor
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext } from "@aioloop/aioloop";
   * using ctx = AioContext.create({ fdmon: "epoll" });
   * assertEquals(ctx.fdmon, "epoll");
   * ```
   */
  static create(options: AioContextOptions = {}): AioContext {
    return new AioContext(options);
  }

  /** Throws if the context was destroyed. */
  #checkAlive(): void {
    if (this.#destroyed) {
      throw new Deno.errors.BadResource(`AioContext '${this.name}' was destroyed`);
    }
  }

  /** aio_notify: any thread (remote threads use the handle's doorbell). */
  #notify(): void {
    const ctl = this.#ctl;
    Atomics.store(ctl, CTL_NOTIFIED, 1);
    if (Atomics.load(ctl, CTL_NOTIFY_ME) !== 0) {
      Atomics.add(ctl, CTL_KICKS, 1);
      this.#notifier.set();
    }
  }

  /**
   * Moves BHs scheduled by other threads onto the local list, oldest
   * schedule first. Called before every local change of the BH list
   * (schedule, cancel, delete) and before each BH pass, so that a remote
   * schedule takes the place a local one made at that moment would.
   */
  #drainRemote(): void {
    if (!remoteBhPending(this.#ctl)) return;
    drainRemoteBhs(this.#ctl, this.#remoteBhs.keys(), (slot) => {
      const bh = this.#remoteBhs.get(slot);
      if (bh !== undefined && !bh.deleted) this.#bhs.enqueue(bh, BH_SCHEDULED);
    });
  }

  #computeTimeout(): number {
    if (this.#remoteBhs.size !== 0 && remoteBhPending(this.#ctl)) return 0;
    const bh = this.#bhs.timeoutNs();
    if (bh === 0) return 0;
    const deadline = this.#tlg.deadlineNs();
    if (deadline === 0) return 0;
    if (bh < 0) return deadline;
    if (deadline < 0) return bh;
    return bh < deadline ? bh : deadline;
  }

  /** The fd monitor in use (it may change from "poll" to "epoll" at 64 fds). */
  get fdmon(): FdMonName {
    return this.#posix.fdmon.name;
  }

  /**
   * Which fd monitor the context has and why: `auto` takes io_uring where
   * the kernel allows it and otherwise falls back to poll (moving to epoll
   * at 64 fds), and `fallback` says why, in one line. A forced monitor
   * (`fdmon` option or `AIOLOOP_FDMON`) never falls back: creation throws
   * {@linkcode FdMonUnavailableError}.
   *
   * Counterpart: none in QEMU (its fallback is silent); the `fdmon` line of
   * `info aio` here.
   *
   * Thread: home thread.
   *
   * @returns The monitor's name, what was asked for, the fallback reason
   * and a one-line summary.
   *
   * @example Asking why a context got its fd monitor
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext } from "@aioloop/aioloop";
   * using ctx = AioContext.create({ fdmon: "auto" });
   * const info = ctx.fdmonInfo();
   * assertEquals(info.requested, "auto");
   * // io_uring, or poll with the reason io_uring could not be had:
   * assertEquals(info.name === "io_uring" || info.fallback !== null, true);
   * ```
   */
  fdmonInfo(): FdMonInfo {
    const s = this.#fdmonSetup;
    return {
      name: this.fdmon,
      requested: s.requested,
      fallback: s.fallback,
      detail: this.#posix.fdmon.detail ?? null,
      reason: setupReason(s),
    };
  }

  /** Whether {@linkcode AioContext.prototype.destroy} was called. */
  get destroyed(): boolean {
    return this.#destroyed;
  }

  /**
   * Runs one iteration: waits (if `blocking` and nothing is pending) for fd
   * events, a kick, or the next timer; then runs bottom halves, ready fd
   * handlers and expired timers, in that order. Returns whether any user
   * callback made progress: kicks, handler registration, and cancelled,
   * deleted or idle BHs do not count.
   *
   * An exception thrown by a callback leaves `poll()`; the context stays
   * consistent. The next `poll()` first finishes the interrupted round: the
   * fd handlers it had found ready but not yet called, then the expired
   * timers (it returns there if any of them ran). So a handler that throws
   * without draining its fd keeps the loop busy, as in QEMU, but starves no
   * other handler and no timer; nothing runs twice.
   *
   * Counterpart: `aio_poll()`.
   *
   * Thread: home thread only; not from inside a coroutine.
   *
   * @param blocking Whether to wait for something to happen.
   * @returns True if progress was made.
   *
   * @example A non-blocking poll with nothing to do
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext } from "@aioloop/aioloop";
   * using ctx = AioContext.create();
   * assertEquals(ctx.poll(false), false);
   * ```
   */
  poll(blocking: boolean): boolean {
    this.#checkAlive();
    if (coroutineHooks.inCoroutine()) {
      throw new Error("AioContext.poll() must not be called from a coroutine");
    }
    this.#polling++;
    if (tracing) traceBegin(K_LOOP, this.#traceName);
    try {
      return this.#posix.poll(blocking);
    } finally {
      this.#polling--;
      if (tracing) traceEnd(K_LOOP, this.#traceName);
    }
  }

  /**
   * Wakes the context if it is blocked in {@linkcode AioContext.prototype.poll}
   * (or makes its next blocking poll return at once). Not progress.
   *
   * Counterpart: `aio_notify()`.
   *
   * Thread: any code of the home isolate; other threads use the context's handle.
   *
   * @example A kick
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext } from "@aioloop/aioloop";
   * using ctx = AioContext.create();
   * ctx.notify();
   * assertEquals(ctx.poll(true), false); // woken, but nothing ran
   * ```
   */
  notify(): void {
    this.#checkAlive();
    this.#notify();
  }

  /**
   * Creates a bottom half (not scheduled).
   *
   * Counterpart: `aio_bh_new()` / `aio_bh_new_full()`.
   *
   * @param cb The callback.
   * @param options Debug name and reentrancy guard.
   * @returns The BH; delete it when done (a BH still alive at destroy is reported as leaked).
   *
   * @example A named BH
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext } from "@aioloop/aioloop";
   * using ctx = AioContext.create();
   * const bh = ctx.bhNew(() => {}, { name: "flush" });
   * assertEquals(bh.name, "flush");
   * bh.delete();
   * ```
   */
  bhNew(cb: () => void, options?: BhOptions): QEMUBH {
    this.#checkAlive();
    if (typeof cb !== "function") throw new TypeError("BH callback must be a function");
    const bh = new QEMUBH(this.#bhOwner, cb, options);
    if (options?.shared) {
      let slot = this.#freeSlots.pop();
      if (slot === undefined) {
        // Grow the shared block (other threads' views follow it).
        const cap = bhCapacity(this.#ctl);
        if (cap >= CTL_REMOTE_BH_MAX) {
          throw new RangeError(
            `At most ${CTL_REMOTE_BH_MAX} shared BHs per AioContext are live at once: ` +
              "delete() shared BHs that are no longer needed",
          );
        }
        const next = Math.min(cap * 2, CTL_REMOTE_BH_MAX);
        bhGrow(this.#ctl, next);
        for (let i = next - 1; i > cap; i--) this.#freeSlots.push(i);
        slot = cap;
      }
      const gen = bhSlotGeneration(this.#ctl, slot);
      bhSlotReset(this.#ctl, slot, gen);
      bh.remoteSlot = slot;
      bh.remoteGen = gen;
      this.#remoteBhs.set(slot, bh);
    }
    this.#bhs.live.add(bh);
    return bh;
  }

  /**
   * Schedules a one-time callback; it is freed after it runs.
   *
   * Counterpart: `aio_bh_schedule_oneshot()`.
   *
   * @param cb The callback.
   * @param name A debug name.
   *
   * @example One shot
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext } from "@aioloop/aioloop";
   * using ctx = AioContext.create();
   * let ran = false;
   * ctx.bhScheduleOneshot(() => ran = true);
   * ctx.poll(false);
   * assertEquals(ran, true);
   * ```
   */
  bhScheduleOneshot(cb: () => void, name?: string): void {
    this.#checkAlive();
    if (typeof cb !== "function") throw new TypeError("BH callback must be a function");
    const bh = new QEMUBH(this.#bhOwner, cb, { name }, true);
    this.#bhs.live.add(bh);
    this.#bhEnqueue(bh, BH_SCHEDULED);
  }

  #bhEnqueue(bh: QEMUBH, flags: number): void {
    if (this.#remoteBhs.size !== 0) {
      this.#drainRemote();
      if ((flags & BH_DELETED) !== 0 && bh.remoteSlot >= 0 && !bh.deleted) {
        // References made before the delete are stale from now on.
        const slot = bh.remoteSlot;
        bhSlotReset(this.#ctl, slot, (bhSlotGeneration(this.#ctl, slot) + 1) & 0x7fffffff);
      }
    }
    this.#bhs.enqueue(bh, flags);
    this.#notify();
  }

  #bhOwner = {
    bhEnqueue: (bh: QEMUBH, flags: number): void => this.#bhEnqueue(bh, flags),
    checkAlive: (): void => this.#checkAlive(),
    handle: (): AioContextHandle => this.handle(),
    bhSyncRemote: (): void => {
      if (this.#remoteBhs.size !== 0) this.#drainRemote();
    },
  };

  /**
   * The context's structured-cloneable handle: post it to a Worker, which
   * opens it with {@linkcode RemoteAioContext} to notify this context or
   * schedule its shared BHs.
   *
   * Counterpart: sharing the `AioContext *` with another thread.
   *
   * Thread: home thread; the handle itself may be used from any thread.
   *
   * @returns The handle.
   *
   * @example A handle survives structuredClone
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext, RemoteAioContext } from "@aioloop/aioloop";
   * using ctx = AioContext.create();
   * const h = structuredClone(ctx.handle());
   * assertEquals(new RemoteAioContext(h).id === ctx.id, true);
   * ```
   */
  handle(): AioContextHandle {
    this.#checkAlive();
    // The isolate may have adopted the process clock since.
    if (this.#handle.clock !== processClockBlock()) this.#handle = this.#makeHandle();
    return this.#handle;
  }

  /**
   * Registers, replaces or (with `null`, or no callbacks) removes the
   * handlers of an fd. Replacing always makes a new registration: a handler
   * replaced or removed during dispatch is never called again in that round,
   * and its busy-polling state starts afresh. Both reads and writes are
   * level-triggered.
   *
   * Counterpart: `aio_set_fd_handler()` (the returned Disposable is ours:
   * QEMU removes with NULL handlers only).
   *
   * Thread: home thread only.
   *
   * @param fd An open file descriptor.
   * @param handlers The callbacks, or null to remove.
   * @returns A Disposable for `using`: disposing it removes this
   * registration, unless it was already removed or replaced (or the context
   * destroyed), in which case it does nothing. Removal returns one that does
   * nothing. Ignoring it is fine: `setFdHandler(fd, null)` still removes.
   * @throws {TypeError} If `fd` is not a number, is the context's own
   * notifier, or `handlers` is neither an object of functions nor null.
   * @throws {RangeError} If `fd` is not an integer from 0 to 2^31 - 1.
   * @throws {SysError} EBADF if fd is not open (when registering).
   *
   * @example Reading a pipe
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext } from "@aioloop/aioloop";
   * import { close, pipe, read, write } from "@aioloop/aioloop/sys";
   * using ctx = AioContext.create();
   * const [r, w] = pipe();
   * const buf = new Uint8Array(16);
   * let got = 0;
   * ctx.setFdHandler(r, { read: () => got += read(r, buf) });
   * write(w, new Uint8Array([1, 2, 3]));
   * ctx.poll(true);
   * assertEquals(got, 3);
   * ctx.setFdHandler(r, null);
   * close(r);
   * close(w);
   * ```
   *
   * @example A registration scoped with `using`
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext } from "@aioloop/aioloop";
   * import { close, pipe } from "@aioloop/aioloop/sys";
   * using ctx = AioContext.create();
   * const [r, w] = pipe();
   * {
   *   using _reg = ctx.setFdHandler(r, { read: () => {} });
   *   assertEquals(ctx.info().handlers.some((h) => h.fd === r), true);
   * } // removed here
   * assertEquals(ctx.info().handlers.some((h) => h.fd === r), false);
   * close(r);
   * close(w);
   * ```
   */
  setFdHandler(fd: number, handlers: FdHandlers | null): Disposable {
    this.#checkAlive();
    checkFd(fd);
    if (fd === this.#notifier.fd) {
      throw new TypeError(
        `setFdHandler: fd ${fd} is the context's own notifier; register another fd`,
      );
    }
    if (handlers !== null && handlers !== undefined) {
      if (typeof handlers !== "object" || Array.isArray(handlers)) {
        throw new TypeError(
          `setFdHandler: handlers must be an object such as { read: () => {...} }, or null ` +
            `to remove the fd's handlers, got ${describe(handlers)}`,
        );
      }
      for (const k of ["read", "write", "poll", "pollReady"] as const) {
        checkCallback(`handlers.${k}`, handlers[k]);
      }
    }
    return this.#setFd(fd, handlers ?? {}, null);
  }

  /** aio_set_fd_handler after validation; `opaque` tags the registration. */
  #setFd(fd: number, h: FdHandlers, opaque: unknown): Disposable {
    const adding = !!(h.read || h.write || (h.poll && h.pollReady));
    if (adding && !isOpenFd(fd)) throw new SysError(9, "setFdHandler", `fd ${fd} is not open`);
    const node = this.#posix.setFdHandler(fd, h, false, opaque);
    if (node === null) return NO_REGISTRATION;
    // Disposing removes this registration only: not one that replaced it,
    // nor anything once it was removed or the context destroyed.
    return {
      [Symbol.dispose]: (): void => {
        if (!node.deleted && !this.#destroyed) this.setFdHandler(fd, null);
      },
    };
  }

  /**
   * Registers (or, with a null `read`, removes) an EventNotifier's handler.
   * The handler should call `notifier.testAndClear()`: a set notifier stays
   * readable.
   *
   * A notifier may be closed while registered and unregistered afterwards
   * (`setEventNotifier(n, null)` on the closed notifier removes what was
   * registered for it, and nothing else even if its fd number was reused).
   * Until then its dead fd stays watched: unregister it before or right
   * after `close()`. A closed notifier cannot be registered.
   *
   * Counterpart: `aio_set_event_notifier()`.
   *
   * Thread: home thread only.
   *
   * @param notifier The notifier.
   * @param read Called when it is set, or null to unregister.
   * @param poll Busy-poll check (optional).
   * @param pollReady Called when `poll` returned true (optional).
   * @throws {TypeError} If `notifier` is not an EventNotifier, a callback
   * is not a function or null, or a closed notifier is being registered.
   *
   * @example Waiting for a notifier
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext, EventNotifier } from "@aioloop/aioloop";
   * using ctx = AioContext.create();
   * using e = EventNotifier.create();
   * let n = 0;
   * ctx.setEventNotifier(e, () => { e.testAndClear(); n++; });
   * e.set();
   * ctx.poll(true);
   * assertEquals(n, 1);
   * ctx.setEventNotifier(e, null);
   * ```
   */
  setEventNotifier(
    notifier: EventNotifier,
    read: ((n: EventNotifier) => void) | null,
    poll?: ((n: EventNotifier) => boolean) | null,
    pollReady?: ((n: EventNotifier) => void) | null,
  ): void {
    this.#checkAlive();
    if (!(notifier instanceof EventNotifier)) {
      throw new TypeError(
        `setEventNotifier: notifier must be an EventNotifier (EventNotifier.create()), ` +
          `got ${describe(notifier)}`,
      );
    }
    checkCallback("read", read);
    checkCallback("poll", poll);
    checkCallback("pollReady", pollReady);
    const adding = !!(read || (poll && pollReady));
    if (notifier.closed) {
      if (adding) {
        throw new TypeError(
          "setEventNotifier: notifier is closed; register an open one " +
            "(EventNotifier.create()), or pass read = null to unregister a closed one",
        );
      }
      // Its fd number may name another file by now: only the registration
      // made for this notifier goes.
      const fd = this.#posix.fdOf(notifier);
      if (fd >= 0) this.#posix.setFdHandler(fd, {});
      return;
    }
    if (notifier.fd === this.#notifier.fd) {
      throw new TypeError("setEventNotifier: notifier is the context's own; use another one");
    }
    this.#setFd(notifier.fd, {
      read: read ? () => read(notifier) : null,
      poll: poll ? () => poll(notifier) : null,
      pollReady: pollReady ? () => pollReady(notifier) : null,
    }, notifier);
  }

  /**
   * Sets the busy-poll begin/end callbacks of a registered notifier (no-op
   * if it is not registered).
   *
   * Counterpart: `aio_set_event_notifier_poll()`.
   *
   * @param notifier The notifier.
   * @param begin Called when busy polling starts.
   * @param end Called when busy polling stops.
   *
   * @example Begin/end hooks
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext, EventNotifier } from "@aioloop/aioloop";
   * using ctx = AioContext.create();
   * using e = EventNotifier.create();
   * ctx.setEventNotifier(e, () => e.testAndClear(), () => false, () => {});
   * ctx.setEventNotifierPoll(e, () => {}, () => {});
   * ctx.setEventNotifier(e, null);
   * assertEquals(ctx.info().handlers.length, 1); // only the context's own notifier
   * ```
   */
  setEventNotifierPoll(
    notifier: EventNotifier,
    begin: ((n: EventNotifier) => void) | null,
    end: ((n: EventNotifier) => void) | null,
  ): void {
    this.#checkAlive();
    this.#posix.setFdPoll(
      notifier.fd,
      begin ? () => begin(notifier) : null,
      end ? () => end(notifier) : null,
    );
  }

  /**
   * Creates a timer on this context's timer lists. It fires inside
   * {@linkcode AioContext.prototype.poll}, never from `mod()`.
   *
   * Counterpart: `aio_timer_new()`.
   *
   * @param clock The clock (REALTIME, VIRTUAL, HOST, VIRTUAL_RT).
   * @param scale Units of `mod()`: SCALE_NS, SCALE_US or SCALE_MS.
   * @param cb The callback.
   * @param options A name and attributes.
   * @returns The (idle) timer.
   *
   * @example A 1 ms timer
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext, clockGetNs, QEMUClockType, SCALE_MS } from "@aioloop/aioloop";
   * using ctx = AioContext.create();
   * let fired = false;
   * const t = ctx.timerNew(QEMUClockType.REALTIME, SCALE_MS, () => fired = true);
   * t.mod(clockGetNs(QEMUClockType.REALTIME) / 1e6 + 1);
   * while (!fired) ctx.poll(true);
   * assertEquals(fired, true);
   * ```
   */
  timerNew(
    clock: QEMUClockType,
    scale: number,
    cb: () => void,
    options?: { name?: string; attributes?: number },
  ): QEMUTimer {
    this.#checkAlive();
    return new QEMUTimer(this.#tlg, clock, scale, cb, options);
  }

  /**
   * Sets adaptive polling: how long a poll may busy-wait on handlers that
   * have `poll` callbacks before blocking. Resets every handler's polling
   * time.
   *
   * Counterpart: `aio_context_set_poll_params()`.
   *
   * @param params `maxNs` (0 disables), `grow` (0 = double), `shrink` (0 = reset).
   * @throws {TypeError} If `params` is not an object, or a value is not a number.
   * @throws {RangeError} If a value is not an integer in [0, 2^53).
   *
   * @example Poll up to 32 µs
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext } from "@aioloop/aioloop";
   * using ctx = AioContext.create();
   * ctx.setPollParams({ maxNs: 32768 });
   * assertEquals(ctx.pollParams.maxNs, 32768);
   * ```
   */
  setPollParams(params: PollParams): void {
    this.#checkAlive();
    if (params === null || typeof params !== "object" || Array.isArray(params)) {
      throw new TypeError(
        `setPollParams: params must be an object such as { maxNs: 32768 }, ` +
          `got ${describe(params)}`,
      );
    }
    const check = (name: string, v: number | undefined): number => {
      if (v !== undefined && typeof v !== "number") {
        throw new TypeError(`setPollParams: params.${name} must be a number, got ${describe(v)}`);
      }
      const x = v ?? 0;
      if (!Number.isSafeInteger(x) || x < 0) {
        throw new RangeError(
          `setPollParams: params.${name} must be an integer in [0, ${Number.MAX_SAFE_INTEGER}], got ${v}`,
        );
      }
      return x;
    };
    const maxNs = check("maxNs", params.maxNs);
    const grow = check("grow", params.grow);
    const shrink = check("shrink", params.shrink);
    this.#posix.setPollParams(maxNs, grow, shrink);
  }

  /** The current adaptive polling parameters. */
  get pollParams(): Required<PollParams> {
    return this.#posix.pollParams;
  }

  /**
   * The context as a GLib source: attach it to a `GMainContext` and that
   * context's iterations run this context's BHs, fd handlers and timers,
   * polling its fds together with every other source. One live source per
   * context, created on first use, that can recurse. The context keeps a
   * reference: destroying the context destroys (detaches) the source;
   * destroying the source leaves the context working, and the next call
   * makes a new one. A callback set on the source is never called.
   *
   * Counterpart: `aio_get_g_source()` (no extra reference is taken: call
   * `ref()` to keep the source past the context's destroy).
   *
   * Thread: home thread only.
   *
   * @returns The context's source.
   * @throws {Deno.errors.BadResource} When the context is destroyed.
   *
   * @example Servicing a context from a GLib main context
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext } from "@aioloop/aioloop";
   * import { GMainContext } from "@aioloop/aioloop/glib";
   * using ctx = AioContext.create();
   * const gctx = new GMainContext();
   * ctx.getGSource().attach(gctx);
   * let ran = false;
   * ctx.bhScheduleOneshot(() => ran = true);
   * assertEquals(gctx.iteration(false), true);
   * assertEquals(ran, true);
   * gctx.destroy();
   * ```
   */
  getGSource(): GSource<GSourceFunc> {
    this.#checkAlive();
    return aioGetGSource(this);
  }

  /**
   * A snapshot of the context for introspection: handlers, queued BHs, the
   * fd monitor and polling parameters.
   *
   * Counterpart: none (what QEMU's `info` monitor commands and tracepoints show).
   *
   * @returns The snapshot.
   *
   * @example Inspecting a fresh context
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext } from "@aioloop/aioloop";
   * using ctx = AioContext.create({ fdmon: "poll" });
   * assertEquals(ctx.info().handlers.length, 1); // its own notifier
   * ```
   */
  info(): AioContextInfo {
    this.#checkAlive();
    return {
      id: this.id,
      name: this.name,
      fdmon: this.fdmon,
      fdmonReason: setupReason(this.#fdmonSetup),
      handlers: this.#posix.info(),
      bhs: this.#bhs.pending().map((b) => ({ name: b.name, scheduled: b.scheduled })),
      pollParams: this.pollParams,
    };
  }

  /**
   * Destroys the context: closes every fd it opened (its notifier, the fd
   * monitor's) and drops its handlers and timers. Idempotent. Registered
   * fds themselves are the caller's and stay open. A bottom half that was
   * never deleted is reported as leaked by a thrown Error, after cleanup.
   *
   * Counterpart: `aio_context_unref()` / `aio_ctx_finalize()`.
   *
   * @throws {Error} If called from inside this context's poll, or (after
   * cleanup) naming leaked bottom halves.
   *
   * @example Explicit destroy
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext } from "@aioloop/aioloop";
   * const ctx = AioContext.create();
   * ctx.destroy();
   * assertEquals(ctx.destroyed, true);
   * ```
   */
  destroy(): void {
    if (this.#destroyed) return;
    if (this.#polling > 0) throw new Error("Cannot destroy an AioContext while it is polling");
    const errors: unknown[] = [];
    for (const hook of this.#internals.destroyHooks.splice(0)) {
      try {
        hook();
      } catch (e) {
        errors.push(e);
      }
    }
    this.#destroyed = true;
    // No remote ringer may be between its check and its write when the
    // doorbell closes (its fd number could be reused).
    ctlShutdown(this.#ctl);
    const leaked = this.#bhs.drain();
    this.#tlg.destroy();
    this.#posix.destroy();
    unregisterClockWake(this.#clockWake);
    this.#notifier.close();
    if (errors.length > 0) throw errors[0];
    if (leaked.length > 0) {
      throw new Error(`BH '${leaked.join("', '")}' leaked: bhNew() without delete()`);
    }
  }

  /** Same as {@linkcode AioContext.prototype.destroy}. */
  [Symbol.dispose](): void {
    this.destroy();
  }
}

/**
 * QEMU's main loop (util/main-loop.c) on the default {@linkcode GMainContext}:
 * the main AioContext and the iohandler AioContext, each attached as a GLib
 * source, polled together with every other GLib source in one poll;
 * `qemu_set_fd_handler`-style handlers, `qemu_notify_event`, the global
 * main-loop timers, poll notifiers, and signals delivered inside the loop.
 *
 * Two ways to run it:
 *
 * - {@linkcode mainLoopWait} blocks the isolate in a synchronous ppoll(2),
 *   as QEMU's `main_loop_wait` blocks its thread. Nothing else of the
 *   isolate runs meanwhile (no promise, timer, fetch or signal listener).
 * - {@linkcode mainLoopRun} lives beside Deno's own event loop: ready work is
 *   dispatched at once, and when the loop would block, its wait is one
 *   `nonblocking: true` FFI poll on Deno's blocking pool, so timers,
 *   promises, `fetch` and `Deno.serve` keep running. Work that Deno-side
 *   callbacks hand to the loop (a BH, a timer, a handler change,
 *   {@linkcode qemuNotifyEvent}) rings an eventfd of the poll set and cuts
 *   the wait short.
 *
 * Everything here is per isolate and home-thread only. Other threads wake
 * the loop through a context handle (`qemuGetAioContext().handle()`).
 *
 * @example A BH, a main-loop timer and an fd handler
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import {
 *   mainLoopWait, qemuCleanupMainLoop, qemuGetAioContext, qemuInitMainLoop, qemuSetFdHandler,
 * } from "@aioloop/aioloop/main-loop";
 * import { QEMUClockType, timerNewMs } from "@aioloop/aioloop";
 * import { close, pipe, read, write } from "@aioloop/aioloop/sys";
 *
 * qemuInitMainLoop();
 * const log: string[] = [];
 * qemuGetAioContext().bhScheduleOneshot(() => log.push("bh"));
 * const t = timerNewMs(QEMUClockType.REALTIME, () => log.push("timer"));
 * t.mod(0);
 * const [r, w] = pipe();
 * qemuSetFdHandler(r, () => {
 *   read(r, new Uint8Array(8));
 *   log.push("fd");
 * });
 * write(w, new Uint8Array([1]));
 * while (log.length < 3) mainLoopWait(false);
 * assertEquals(log, [ "bh", "fd", "timer" ]);
 * qemuSetFdHandler(r, null);
 * close(r);
 * close(w);
 * qemuCleanupMainLoop();
 * ```
 *
 * @module
 */
import { AioContext } from "./aio/aio_context.ts";
import type { QEMUBH } from "./aio/bh.ts";
import type { EventNotifier } from "./aio/event_notifier.ts";
import { getCurrentAioContext, setCurrentAioContext } from "./aio/current.ts";
import { getMainAioContext, mainLoopWaitInfo, setMainAioContext } from "./aio/_main_context.ts";
import {
  clockRunAllTimers,
  mainLoopTlg,
  qemuSoonestTimeout,
  SCALE_MS,
  setMainLoopTimerNotify,
} from "./aio/timer.ts";
import { GMainContext } from "./glib/main_context.ts";
import type { GSource, GSourceFunc } from "./glib/source.ts";
import type { GPollFD } from "./glib/gpollfd.ts";
import type { FdMonName } from "./fdmon/fdmon_ops.ts";
import { PollFdArray, pollNs } from "./sys/poll.ts";
import {
  bqlIterationEnter,
  bqlIterationLeave,
  bqlPollReacquire,
  bqlPollRelease,
} from "./thread/_bql_state.ts";
import { SysError } from "./sys/errno.ts";
import { clockGettimeNs } from "./sys/clock.ts";
import {
  asyncWaitParked,
  parkedWaitMarginNs,
  parkTimerCreate,
  pollParkedUntil,
} from "./sys/_async_wait.ts";
import { getTimerSlackNs, setTimerSlackNs } from "./sys/_timer_slack.ts";
import { close } from "./sys/fd.ts";
import {
  K_LOOP,
  K_WAIT,
  traceBegin,
  traceEnd,
  traceName,
  traceWaitBegin,
  tracing,
} from "./trace/_state.ts";

const T_ITERATION = traceName("main_loop_wait");
const T_WAIT = traceName("main loop poll");

/**
 * The state of a {@linkcode MainLoopPoll} notification: before the poll
 * (fill in fds, lower the timeout).
 *
 * Counterpart: `MAIN_LOOP_POLL_FILL`.
 *
 * @example Telling the phases apart
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { MAIN_LOOP_POLL_FILL, type MainLoopPoll } from "@aioloop/aioloop/main-loop";
 * const filling = (p: MainLoopPoll): boolean => p.state === MAIN_LOOP_POLL_FILL;
 * assertEquals(filling({ state: MAIN_LOOP_POLL_FILL } as MainLoopPoll), true);
 * ```
 */
export const MAIN_LOOP_POLL_FILL = 0;

/**
 * The state of a {@linkcode MainLoopPoll} notification: the poll failed.
 *
 * Counterpart: `MAIN_LOOP_POLL_ERR`.
 *
 * @example Reacting to a failed poll
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { MAIN_LOOP_POLL_ERR, type MainLoopPoll } from "@aioloop/aioloop/main-loop";
 * const failed = (p: MainLoopPoll): boolean => p.state === MAIN_LOOP_POLL_ERR;
 * assertEquals(failed({ state: MAIN_LOOP_POLL_ERR } as MainLoopPoll), true);
 * ```
 */
export const MAIN_LOOP_POLL_ERR = 1;

/**
 * The state of a {@linkcode MainLoopPoll} notification: the poll returned;
 * the `revents` of the fds added at fill time are set.
 *
 * Counterpart: `MAIN_LOOP_POLL_OK`.
 *
 * @example Reading results
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { MAIN_LOOP_POLL_OK, type MainLoopPoll } from "@aioloop/aioloop/main-loop";
 * const done = (p: MainLoopPoll): boolean => p.state === MAIN_LOOP_POLL_OK;
 * assertEquals(done({ state: MAIN_LOOP_POLL_OK } as MainLoopPoll), true);
 * ```
 */
export const MAIN_LOOP_POLL_OK = 2;

/**
 * The phase a {@linkcode MainLoopPoll} notifier is called in.
 *
 * Counterpart: the `MAIN_LOOP_POLL_*` enum.
 *
 * @example A state value
 * ```ts
 * import { MAIN_LOOP_POLL_OK, type MainLoopPollState } from "@aioloop/aioloop/main-loop";
 * const s: MainLoopPollState = MAIN_LOOP_POLL_OK;
 * ```
 */
export type MainLoopPollState =
  | typeof MAIN_LOOP_POLL_FILL
  | typeof MAIN_LOOP_POLL_ERR
  | typeof MAIN_LOOP_POLL_OK;

/**
 * What a main-loop poll notifier sees: called with `state`
 * `MAIN_LOOP_POLL_FILL` before each poll (push fds on `pollfds`, lower
 * `timeout`), then with `MAIN_LOOP_POLL_OK` (the `revents` of those fds are
 * set) or `MAIN_LOOP_POLL_ERR` after it.
 *
 * Counterpart: `MainLoopPoll`.
 *
 * @example A notifier that caps every wait at 10 ms
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { MAIN_LOOP_POLL_FILL, type MainLoopPoll } from "@aioloop/aioloop/main-loop";
 * const cap = (p: MainLoopPoll): void => {
 *   if (p.state === MAIN_LOOP_POLL_FILL && p.timeout > 10) p.timeout = 10;
 * };
 * const p = { state: MAIN_LOOP_POLL_FILL, timeout: 1000 } as MainLoopPoll;
 * cap(p);
 * assertEquals(p.timeout, 10);
 * ```
 */
export interface MainLoopPoll {
  /** The phase. */
  state: MainLoopPollState;
  /**
   * The wait in ms, an integer from 0 to `UINT32_MAX` (0xffffffff, which
   * means no limit): 0 for a non-blocking iteration. The main-loop timers
   * and the GLib sources may shorten it further.
   */
  timeout: number;
  /** Extra fds to poll, emptied before each fill. */
  readonly pollfds: GPollFD[];
}

/**
 * A main-loop poll notifier.
 *
 * Counterpart: a `Notifier` on `main_loop_poll_notifiers`.
 *
 * @example A notifier counting iterations
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { MAIN_LOOP_POLL_FILL, type MainLoopPollNotifier } from "@aioloop/aioloop/main-loop";
 * let turns = 0;
 * const count: MainLoopPollNotifier = (p) => {
 *   if (p.state === MAIN_LOOP_POLL_FILL) turns++;
 * };
 * count({ state: MAIN_LOOP_POLL_FILL } as Parameters<MainLoopPollNotifier>[0]);
 * assertEquals(turns, 1);
 * ```
 */
export type MainLoopPollNotifier = (poll: MainLoopPoll) => void;

/**
 * Options of {@linkcode qemuInitMainLoop}.
 *
 * Counterpart: none (QEMU's `qemu_init_main_loop()` takes none; its fd
 * monitor is chosen by `aio_context_setup()`).
 *
 * @example Forcing the epoll fd monitor
 * ```ts
 * import type { MainLoopOptions } from "@aioloop/aioloop/main-loop";
 * const options: MainLoopOptions = { fdmon: "epoll" };
 * ```
 */
export interface MainLoopOptions {
  /**
   * The fd monitor of both AioContexts (see `AioContext.create`); default
   * `AIOLOOP_FDMON`, else automatic.
   */
  fdmon?: FdMonName | "auto";
}

/**
 * Options of {@linkcode mainLoopRun}.
 *
 * Counterpart: none (QEMU's loop stops when `main_loop_should_exit()` says
 * so; here an AbortSignal can say so too).
 *
 * @example Stopping after one second
 * ```ts
 * import type { MainLoopRunOptions } from "@aioloop/aioloop/main-loop";
 * const options: MainLoopRunOptions = { signal: AbortSignal.timeout(1000) };
 * ```
 */
export interface MainLoopRunOptions {
  /** Aborting it stops the loop, as {@linkcode mainLoopQuit} does. */
  signal?: AbortSignal;
}

/**
 * A signal handler of the main loop: called with the signal, from a BH of
 * the main AioContext.
 *
 * Counterpart: the `sigaction` handler that QEMU's `sigfd_handler()` calls.
 *
 * @example A handler
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import type { MainLoopSignalHandler } from "@aioloop/aioloop/main-loop";
 * const seen: Deno.Signal[] = [];
 * const h: MainLoopSignalHandler = (sig) => seen.push(sig);
 * h("SIGUSR1");
 * assertEquals(seen, ["SIGUSR1"]);
 * ```
 */
export type MainLoopSignalHandler = (signal: Deno.Signal) => void;
type SignalHandler = MainLoopSignalHandler;

/** What one iteration hands its driver: poll these, this long. */
interface WaitRequest {
  readonly fds: PollFdArray;
  /** The timeout as computed, ns (-1: none, 0: do not block). */
  timeoutNs: number;
  /**
   * The same as a CLOCK_MONOTONIC deadline (-1: none): the driver waits
   * until it, so the time spent between computing the timeout and entering
   * the poll does not make timers late.
   */
  deadlineNs: number;
}

/** The reusable buffers of one (possibly nested) iteration. */
interface Frame {
  readonly mlpoll: MainLoopPoll;
  readonly glibFds: GPollFD[];
  readonly wait: WaitRequest;
}

interface LoopState {
  readonly main: AioContext;
  readonly iohandler: AioContext;
  readonly notifyBh: QEMUBH;
  readonly signals: Map<Deno.Signal, Map<SignalHandler, () => void>>;
  /** mainLoopRun is active. */
  running: boolean;
  /** mainLoopQuit was called for the current run. */
  quit: boolean;
  /** The timerfd that ends a timed parked wait one hop early. */
  readonly parkTimer: number;
  /** The thread's timer slack before init, restored by cleanup (-1: unknown). */
  readonly slackNs: number;
}

/** `UINT32_MAX`: a MainLoopPoll timeout meaning "no limit". */
const UINT32_MAX = 0xffffffff;
/**
 * How long the async run may dispatch ready work back to back (synchronous
 * zero-timeout polls) before it lets Deno's own loop turn once.
 */
const YIELD_AFTER_NS = 1_000_000;

let state: LoopState | null = null;
/**
 * Set while step 5 of an iteration runs the main-loop timers: a timer they
 * re-arm needs no wake-up, since the next iteration computes its deadline
 * afresh (QEMU's notify would cost one empty iteration per re-arm).
 */
let runningTimers = false;
/** Newest first, as QEMU's notifier lists. */
const pollNotifiers: MainLoopPollNotifier[] = [];
/** One per nesting depth of mainLoopWait, so iterations allocate nothing. */
const frames: Frame[] = [];
let depth = 0;

/** The main-loop timers' notify hook (`qemu_timer_notify_cb`). */
function notifyFromTimers(): void {
  if (!runningTimers) qemuNotifyEvent();
}

function live(): LoopState {
  if (state === null) {
    throw new Error("The main loop is not initialized: call qemuInitMainLoop() first");
  }
  return state;
}

/**
 * Sets up the main loop of this isolate: creates the main AioContext (made
 * the main and the current context) and the iohandler AioContext, attaches
 * both contexts' GSources (named "aio-context" and "io-handler") to the
 * default {@linkcode GMainContext}, creates the BH behind
 * {@linkcode qemuNotifyEvent} and makes the global main-loop timers notify
 * the loop. It also sets the calling thread's timer slack to 1 ns
 * (`prctl(PR_SET_TIMERSLACK)`), so that a poll timeout ends when asked and
 * not up to 50 µs later, and opens a timerfd that ends the timed waits of
 * {@linkcode mainLoopRun} on time. Calling it again before
 * {@linkcode qemuCleanupMainLoop} throws.
 *
 * Counterpart: `qemu_init_main_loop()`, plus the timer slack that
 * `qemu_init_clocks()` sets (signals: see
 * {@linkcode mainLoopAddSignalHandler}).
 *
 * Thread: home thread only.
 *
 * @param options The fd monitor of the two contexts.
 * @returns A Disposable for `using loop = qemuInitMainLoop()`: disposing it
 * runs {@linkcode qemuCleanupMainLoop}, unless this main loop was already
 * cleaned up (then it does nothing). Ignoring it is fine: call
 * {@linkcode qemuCleanupMainLoop} yourself, as before.
 * @throws {Error} When the main loop is already initialized, or another
 * AioContext is current in this isolate.
 * @throws {SysError} When the contexts' fds cannot be created.
 *
 * @example Init and cleanup
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { qemuCleanupMainLoop, qemuGetAioContext, qemuInitMainLoop } from "@aioloop/aioloop/main-loop";
 * qemuInitMainLoop({ fdmon: "poll" });
 * assertEquals(qemuGetAioContext().fdmon, "poll");
 * qemuCleanupMainLoop();
 * ```
 *
 * @example Scoped with `using`
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { mainLoopIsRunning, qemuGetAioContext, qemuInitMainLoop } from "@aioloop/aioloop/main-loop";
 * {
 *   using _loop = qemuInitMainLoop();
 *   assertEquals(qemuGetAioContext().name, "aio-context");
 *   assertEquals(mainLoopIsRunning(), false);
 * } // qemuCleanupMainLoop() runs here
 * let initialized = true;
 * try {
 *   qemuGetAioContext();
 * } catch {
 *   initialized = false;
 * }
 * assertEquals(initialized, false);
 * ```
 */
export function qemuInitMainLoop(options: MainLoopOptions = {}): Disposable {
  if (state !== null) throw new Error("The main loop is already initialized");
  if (options === null || typeof options !== "object") {
    throw new TypeError("Main loop options must be an object");
  }
  const cur = getCurrentAioContext();
  if (cur !== null && cur !== getMainAioContext()) {
    throw new Error(`AioContext '${cur.name}' is already current in this isolate`);
  }
  const fdmon = options.fdmon;
  const main = AioContext.create({ fdmon, name: "aio-context" });
  let iohandler: AioContext | null = null;
  let parkTimer = -1;
  let slackNs = -1;
  try {
    parkTimer = parkTimerCreate();
    iohandler = AioContext.create({ fdmon, name: "io-handler" });
    const notifyBh = main.bhNew(() => {}, { name: "notify_event_cb" });
    setCurrentAioContext(null);
    setCurrentAioContext(main);
    setMainAioContext(main);
    const gctx = GMainContext.default();
    const src = main.getGSource();
    src.setName("aio-context");
    src.attach(gctx);
    const ioSrc = iohandler.getGSource();
    ioSrc.setName("io-handler");
    ioSrc.attach(gctx);
    // qemu_init_clocks: a 1 ns timer slack, so that a poll timeout ends
    // when asked, not up to 50 us later (the kernel's default).
    // It only sharpens timers: a kernel without it leaves the loop as is.
    try {
      slackNs = getTimerSlackNs();
      setTimerSlackNs(1);
    } catch {
      slackNs = -1;
    }
    state = {
      main,
      iohandler,
      notifyBh,
      signals: new Map(),
      running: false,
      quit: false,
      parkTimer,
      slackNs,
    };
    // qemu_init_clocks(qemu_timer_notify_cb): the global group exists from
    // now on, so every clock notification (a VIRTUAL clock step, say) kicks
    // the loop, as in QEMU.
    mainLoopTlg();
    setMainLoopTimerNotify(notifyFromTimers);
  } catch (e) {
    state = null;
    if (getCurrentAioContext() === main) setCurrentAioContext(null);
    if (getMainAioContext() === main) setMainAioContext(null);
    if (slackNs > 0) setTimerSlackNs(slackNs);
    if (parkTimer >= 0) close(parkTimer);
    iohandler?.destroy();
    // The notify BH would be reported as leaked: drop it quietly.
    try {
      main.destroy();
    } catch { /* the first error is the one to report */ }
    throw e;
  }
  const mine = state;
  // Disposing cleans up this main loop only: not a later one made after
  // an explicit cleanup and a new init.
  return {
    [Symbol.dispose](): void {
      if (state === mine) qemuCleanupMainLoop();
    },
  };
}

/**
 * Tears the main loop down: removes its signal listeners and poll
 * notifiers, stops the main-loop timers from notifying, destroys the two
 * AioContexts (their registered fds stay open: they are the caller's) and
 * the default {@linkcode GMainContext} (with any other source still attached
 * to it; `GMainContext.default()` then makes a fresh one), so that every fd
 * the main loop opened is closed and {@linkcode qemuInitMainLoop} may run
 * again. The thread's timer slack gets back the value it had before init.
 * Timers made with `timerNew*` (the global main-loop group) are left as
 * they are. Does nothing when the loop is not initialized.
 *
 * Counterpart: none (QEMU never tears its main loop down); the inverse of
 * `qemu_init_main_loop()`.
 *
 * Thread: home thread only.
 *
 * @throws {Error} While {@linkcode mainLoopRun} or
 * {@linkcode mainLoopWaitAsync} is active (quit it and await it first);
 * after the teardown, when a BH of the main contexts was never deleted
 * (reported as leaked by `AioContext.destroy`).
 *
 * @example Re-initializing with another fd monitor
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { qemuCleanupMainLoop, qemuGetAioContext, qemuInitMainLoop } from "@aioloop/aioloop/main-loop";
 * qemuInitMainLoop({ fdmon: "poll" });
 * assertEquals(qemuGetAioContext().fdmon, "poll");
 * qemuCleanupMainLoop();
 * qemuInitMainLoop({ fdmon: "epoll" });
 * assertEquals(qemuGetAioContext().fdmon, "epoll");
 * qemuCleanupMainLoop();
 * ```
 */
export function qemuCleanupMainLoop(): void {
  const s = state;
  if (s === null) return;
  if (s.running || asyncWaitParked()) {
    throw new Error("Cannot clean up the main loop while it runs: quit it and await it first");
  }
  if (depth > 0) throw new Error("Cannot clean up the main loop from inside mainLoopWait()");
  const errors: unknown[] = [];
  const run = (f: () => void): void => {
    try {
      f();
    } catch (e) {
      errors.push(e);
    }
  };
  for (const [signal, handlers] of s.signals) {
    for (const listener of handlers.values()) {
      run(() => Deno.removeSignalListener(signal, listener));
    }
  }
  s.signals.clear();
  setMainLoopTimerNotify(null);
  pollNotifiers.length = 0;
  run(() => s.notifyBh.delete());
  state = null;
  if (getCurrentAioContext() === s.main) setCurrentAioContext(null);
  if (getMainAioContext() === s.main) setMainAioContext(null);
  run(() => s.iohandler.destroy());
  run(() => s.main.destroy());
  run(() => GMainContext.default().destroy());
  run(() => close(s.parkTimer));
  if (s.slackNs > 0) run(() => setTimerSlackNs(s.slackNs));
  if (errors.length > 0) throw errors[0];
}

/**
 * The main AioContext: block-layer style work, BHs meant for the main loop
 * (`qemuGetAioContext().bhNew(...)`), nested `poll()` calls from the main
 * thread. It is also the isolate's main and current context.
 *
 * Counterpart: `qemu_get_aio_context()`.
 *
 * Thread: home thread only.
 *
 * @returns The main AioContext.
 * @throws {Error} When the main loop is not initialized.
 *
 * @example Scheduling work on the main loop
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { mainLoopWait, qemuCleanupMainLoop, qemuGetAioContext, qemuInitMainLoop } from "@aioloop/aioloop/main-loop";
 * qemuInitMainLoop();
 * let ran = false;
 * qemuGetAioContext().bhScheduleOneshot(() => ran = true);
 * mainLoopWait(true);
 * assertEquals(ran, true);
 * qemuCleanupMainLoop();
 * ```
 */
export function qemuGetAioContext(): AioContext {
  return live().main;
}

/**
 * The iohandler AioContext, where {@linkcode qemuSetFdHandler} and
 * {@linkcode eventNotifierSetHandler} register. Only the main loop services
 * it (through its GSource): a nested `poll()` of the main AioContext never
 * runs these handlers, and it is never the current context.
 *
 * Counterpart: `iohandler_get_aio_context()`.
 *
 * Thread: home thread only.
 *
 * @returns The iohandler AioContext.
 * @throws {Error} When the main loop is not initialized.
 *
 * @example Two distinct contexts
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { iohandlerGetAioContext, qemuCleanupMainLoop, qemuGetAioContext, qemuInitMainLoop } from "@aioloop/aioloop/main-loop";
 * qemuInitMainLoop();
 * assertEquals(iohandlerGetAioContext() !== qemuGetAioContext(), true);
 * qemuCleanupMainLoop();
 * ```
 */
export function iohandlerGetAioContext(): AioContext {
  return live().iohandler;
}

/**
 * The iohandler context's GSource (attached to the default GMainContext by
 * {@linkcode qemuInitMainLoop}).
 *
 * Counterpart: `iohandler_get_g_source()`.
 *
 * Thread: home thread only.
 *
 * @returns The source.
 * @throws {Error} When the main loop is not initialized.
 *
 * @example Its name
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { iohandlerGetGSource, qemuCleanupMainLoop, qemuInitMainLoop } from "@aioloop/aioloop/main-loop";
 * qemuInitMainLoop();
 * assertEquals(iohandlerGetGSource().getName(), "io-handler");
 * qemuCleanupMainLoop();
 * ```
 */
export function iohandlerGetGSource(): GSource<GSourceFunc> {
  return live().iohandler.getGSource();
}

/**
 * Registers (or, with both callbacks null, removes) the handlers of `fd` on
 * the iohandler context, with no busy-poll callbacks: they run from the main
 * loop only ({@linkcode mainLoopWait}, {@linkcode mainLoopRun}, or an
 * iteration of the default GMainContext), never from a nested `poll()` of the
 * main AioContext. Level-triggered: a handler is called again as long as
 * the condition holds.
 *
 * Counterpart: `qemu_set_fd_handler()` (the returned Disposable is ours).
 *
 * Thread: home thread only.
 *
 * @param fd An open file descriptor.
 * @param read Called when `fd` is readable (or on HUP/ERR), or null.
 * @param write Called when `fd` is writable (or on ERR), or null.
 * @returns A Disposable for `using`: disposing it removes this registration
 * unless it was already removed or replaced, or the main loop cleaned up
 * (see `AioContext.setFdHandler`). Passing null for both still removes.
 * @throws {Error} When the main loop is not initialized.
 * @throws {RangeError} When `fd` is not a non-negative integer.
 * @throws {TypeError} When a callback is neither a function nor null.
 * @throws {SysError} EBADF when registering an fd that is not open.
 *
 * @example Watching a pipe
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { mainLoopWait, qemuCleanupMainLoop, qemuInitMainLoop, qemuSetFdHandler } from "@aioloop/aioloop/main-loop";
 * import { close, pipe, read, write } from "@aioloop/aioloop/sys";
 * qemuInitMainLoop();
 * const [r, w] = pipe();
 * let got = 0;
 * qemuSetFdHandler(r, () => got += read(r, new Uint8Array(16)));
 * write(w, new Uint8Array([1, 2]));
 * mainLoopWait(false);
 * assertEquals(got, 2);
 * qemuSetFdHandler(r, null);
 * close(r);
 * close(w);
 * qemuCleanupMainLoop();
 * ```
 *
 * @example Everything scoped with `using`
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { iohandlerGetAioContext, mainLoopWait, qemuInitMainLoop, qemuSetFdHandler } from "@aioloop/aioloop/main-loop";
 * import { close, pipe, read, write } from "@aioloop/aioloop/sys";
 * using _loop = qemuInitMainLoop();
 * const [r, w] = pipe();
 * let got = 0;
 * {
 *   using _watch = qemuSetFdHandler(r, () => got += read(r, new Uint8Array(16)));
 *   write(w, new Uint8Array([1, 2]));
 *   mainLoopWait(false);
 * } // the handler is removed here, before the fds are closed
 * assertEquals(got, 2);
 * assertEquals(iohandlerGetAioContext().info().handlers.some((h) => h.fd === r), false);
 * close(r);
 * close(w);
 * ```
 */
export function qemuSetFdHandler(
  fd: number,
  read: (() => void) | null,
  write: (() => void) | null = null,
): Disposable {
  const s = live();
  if (read !== null && read !== undefined && typeof read !== "function") {
    throw new TypeError("Read handler must be a function or null");
  }
  if (write !== null && write !== undefined && typeof write !== "function") {
    throw new TypeError("Write handler must be a function or null");
  }
  return s.iohandler.setFdHandler(fd, { read: read ?? null, write: write ?? null });
}

/**
 * Registers (or, with null, removes) the handler of an EventNotifier on the
 * iohandler context, with no busy-poll callback. The handler should call
 * `e.testAndClear()`.
 *
 * Counterpart: `event_notifier_set_handler()`.
 *
 * Thread: home thread only.
 *
 * @param e The notifier.
 * @param handler Called (with `e`) when the notifier is set, or null.
 * @throws {Error} When the main loop is not initialized.
 *
 * @example A notifier on the main loop
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { EventNotifier } from "@aioloop/aioloop";
 * import { eventNotifierSetHandler, mainLoopWait, qemuCleanupMainLoop, qemuInitMainLoop } from "@aioloop/aioloop/main-loop";
 * qemuInitMainLoop();
 * using e = EventNotifier.create();
 * let n = 0;
 * eventNotifierSetHandler(e, (en) => {
 *   en.testAndClear();
 *   n++;
 * });
 * e.set();
 * mainLoopWait(false);
 * assertEquals(n, 1);
 * eventNotifierSetHandler(e, null);
 * qemuCleanupMainLoop();
 * ```
 */
export function eventNotifierSetHandler(
  e: EventNotifier,
  handler: ((e: EventNotifier) => void) | null,
): void {
  live().iohandler.setEventNotifier(e, handler);
}

/**
 * Wakes the main loop: schedules an empty BH on the main AioContext, so a
 * blocked (or parked) main-loop wait returns and runs an iteration. Does
 * nothing when the main loop is not initialized. The main-loop timers call
 * it when their deadline moves earlier.
 *
 * Counterpart: `qemu_notify_event()`.
 *
 * Thread: home thread only; other threads use the main context's handle
 * (`RemoteAioContext#notify`).
 *
 * @example A kick
 * ```ts
 * import { mainLoopWait, qemuCleanupMainLoop, qemuInitMainLoop, qemuNotifyEvent } from "@aioloop/aioloop/main-loop";
 * qemuInitMainLoop();
 * qemuNotifyEvent();
 * mainLoopWait(false); // returns at once
 * qemuCleanupMainLoop();
 * ```
 */
export function qemuNotifyEvent(): void {
  state?.notifyBh.schedule();
}

/**
 * Adds a poll notifier: called with a {@linkcode MainLoopPoll} before and
 * after the poll of every main-loop iteration. Notifiers run newest first;
 * adding one that is already there does nothing.
 * {@linkcode qemuCleanupMainLoop} removes them all.
 *
 * Counterpart: `main_loop_poll_add_notifier()`.
 *
 * Thread: home thread only.
 *
 * @param notifier The notifier.
 * @throws {TypeError} When `notifier` is not a function.
 *
 * @example Polling an extra fd from a notifier
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import {
 *   MAIN_LOOP_POLL_FILL, MAIN_LOOP_POLL_OK, type MainLoopPoll, mainLoopPollAddNotifier,
 *   mainLoopPollRemoveNotifier, mainLoopWait, qemuCleanupMainLoop, qemuInitMainLoop,
 * } from "@aioloop/aioloop/main-loop";
 * import { G_IO_IN } from "@aioloop/aioloop/glib";
 * import { close, eventfd } from "@aioloop/aioloop/sys";
 * qemuInitMainLoop();
 * const fd = eventfd(1);
 * let seen = 0;
 * const pfd = { fd, events: G_IO_IN, revents: 0 };
 * const notifier = (p: MainLoopPoll) => {
 *   if (p.state === MAIN_LOOP_POLL_FILL) p.pollfds.push(pfd);
 *   else if (p.state === MAIN_LOOP_POLL_OK) seen = pfd.revents;
 * };
 * mainLoopPollAddNotifier(notifier);
 * mainLoopWait(false);
 * assertEquals(seen & G_IO_IN, 1);
 * mainLoopPollRemoveNotifier(notifier);
 * close(fd);
 * qemuCleanupMainLoop();
 * ```
 */
export function mainLoopPollAddNotifier(notifier: MainLoopPollNotifier): void {
  if (typeof notifier !== "function") throw new TypeError("Notifier must be a function");
  if (!pollNotifiers.includes(notifier)) pollNotifiers.unshift(notifier);
}

/**
 * Removes a poll notifier (nothing happens if it is not there).
 *
 * Counterpart: `main_loop_poll_remove_notifier()`.
 *
 * Thread: home thread only.
 *
 * @param notifier The notifier passed to {@linkcode mainLoopPollAddNotifier}.
 *
 * @example Removing a notifier
 * ```ts
 * import { mainLoopPollAddNotifier, mainLoopPollRemoveNotifier } from "@aioloop/aioloop/main-loop";
 * const n = () => {};
 * mainLoopPollAddNotifier(n);
 * mainLoopPollRemoveNotifier(n);
 * ```
 */
export function mainLoopPollRemoveNotifier(notifier: MainLoopPollNotifier): void {
  const i = pollNotifiers.indexOf(notifier);
  if (i >= 0) pollNotifiers.splice(i, 1);
}

function notifyPoll(p: MainLoopPoll): void {
  if (pollNotifiers.length === 0) return;
  // A notifier may remove itself (or another) while the list is walked.
  for (const n of [...pollNotifiers]) n(p);
}

/**
 * One main-loop iteration, every phase in order. It yields once, for the
 * wait: the driver polls `wait.fds` for `wait.timeoutNs` and sends back the
 * ready count or the poll's error. `mainLoopWait` drives it synchronously,
 * the async run through the parked wait.
 */
function* iterate(nonblocking: boolean): Generator<WaitRequest, void, number | SysError> {
  const frame = frames[depth] ??= {
    mlpoll: { state: MAIN_LOOP_POLL_FILL, timeout: 0, pollfds: [] },
    glibFds: [],
    wait: { fds: new PollFdArray(), timeoutNs: -1, deadlineNs: -1 },
  };
  depth++;
  // A nested iteration (from a timer callback) computes its own deadline
  // before it polls, so it must see re-arms notify again.
  const outerRunningTimers = runningTimers;
  runningTimers = false;
  // Every phase runs under the BQL, as QEMU's main thread holds it across
  // main_loop_wait; taken here (and released at the end) only if the
  // caller does not hold it already.
  if (tracing) traceBegin(K_LOOP, T_ITERATION);
  const tookBql = bqlIterationEnter();
  try {
    // 1. Poll notifiers fill in fds and may shorten the wait (ms).
    const mlpoll = frame.mlpoll;
    mlpoll.state = MAIN_LOOP_POLL_FILL;
    mlpoll.timeout = nonblocking ? 0 : UINT32_MAX;
    mlpoll.pollfds.length = 0;
    notifyPoll(mlpoll);
    const t = mlpoll.timeout;
    if (!Number.isInteger(t) || t < 0 || t > UINT32_MAX) {
      throw new RangeError(
        `MainLoopPoll timeout must be an integer from 0 to ${UINT32_MAX}, got ${t}`,
      );
    }
    // 2. The global main-loop timers bound it too.
    let timeoutNs = t === UINT32_MAX ? -1 : t * SCALE_MS;
    timeoutNs = qemuSoonestTimeout(timeoutNs, mainLoopTlg().deadlineNs());
    // Relative timeouts made absolute with a clock read taken after them,
    // so never early (an early wake would cost an empty iteration).
    let deadlineNs = timeoutNs <= 0 ? timeoutNs : clockGettimeNs() + timeoutNs;

    // 3. The GLib phases around one poll (os_host_main_loop_wait).
    const gctx = GMainContext.default();
    const own = mlpoll.pollfds;
    let result: number | SysError;
    gctx.acquire();
    try {
      const { priority } = gctx.prepare();
      const glib = frame.glibFds;
      const q = gctx.query(priority, glib);
      // In ns, not GLib's rounded-up ms: the AioContexts' sources report
      // their timers' deadlines unrounded, so a 300 us timer waits 300 us.
      if (q.timeoutNs === 0 || deadlineNs === 0) {
        deadlineNs = timeoutNs = 0;
      } else if (q.timeoutNs > 0 || deadlineNs > 0) {
        const now = clockGettimeNs();
        const g = q.timeoutNs > 0 ? now + q.timeoutNs : -1;
        if (deadlineNs < 0 || (g >= 0 && g < deadlineNs)) deadlineNs = g;
        timeoutNs = Math.max(0, deadlineNs - now);
      }
      const fds = frame.wait.fds;
      fds.clear();
      for (let i = 0; i < own.length; i++) fds.push(own[i].fd, own[i].events);
      for (let i = 0; i < q.count; i++) fds.push(glib[i].fd, glib[i].events);
      frame.wait.timeoutNs = timeoutNs;
      frame.wait.deadlineNs = deadlineNs;
      mainLoopWaitInfo.timeoutNs = timeoutNs;
      mainLoopWaitInfo.iterations++;
      // os_host_main_loop_wait: the BQL is dropped only around the blocking
      // wait, so that vCPU threads run meanwhile; dispatch has it again.
      const dropped = bqlPollRelease();
      if (tracing) traceWaitBegin(T_WAIT, timeoutNs);
      try {
        result = yield frame.wait;
      } finally {
        if (tracing) traceEnd(K_WAIT, T_WAIT);
        bqlPollReacquire(dropped);
      }
      const ok = typeof result === "number";
      for (let i = 0; i < own.length; i++) own[i].revents = ok ? fds.revents(i) : 0;
      for (let i = 0; i < q.count; i++) glib[i].revents = ok ? fds.revents(own.length + i) : 0;
      if (gctx.check(priority, glib, q.count)) gctx.dispatch();
    } finally {
      if (!gctx.isDestroyed()) gctx.release();
    }

    // 4. Poll notifiers see the outcome.
    mlpoll.state = typeof result === "number" ? MAIN_LOOP_POLL_OK : MAIN_LOOP_POLL_ERR;
    notifyPoll(mlpoll);
    if (typeof result !== "number") throw result;

    // 5. The global main-loop timers (AioContext timers ran in dispatch).
    runningTimers = true;
    clockRunAllTimers();
  } finally {
    runningTimers = outerRunningTimers;
    bqlIterationLeave(tookBql);
    depth--;
    if (tracing) traceEnd(K_LOOP, T_ITERATION);
  }
}

/** ppoll(2) right now, for the synchronous driver. */
function pollSync(w: WaitRequest): number | SysError {
  try {
    const d = w.deadlineNs;
    return pollNs(w.fds, d <= 0 ? d : Math.max(0, d - clockGettimeNs()));
  } catch (e) {
    if (e instanceof SysError) return e;
    throw e;
  }
}

function checkNotParked(what: string): void {
  if (asyncWaitParked()) {
    throw new Error(`${what} cannot run while the main loop's parked wait is in flight`);
  }
}

/**
 * Runs one main-loop iteration: the poll notifiers fill in, the default
 * GMainContext prepares, then one ppoll(2) over the notifiers' fds and every
 * fd of the default GMainContext (which includes both AioContexts' fds),
 * bounded by the notifiers' timeout, the GLib sources' timeouts and the
 * main-loop timers; then check and dispatch (BHs, fd handlers and timers of
 * the two AioContexts, other GLib sources), the notifiers again, and the
 * expired main-loop timers. With `nonblocking` false it blocks the isolate
 * until something happens (an fd event, a due timer,
 * {@linkcode qemuNotifyEvent}, a ring of a context's doorbell from another
 * thread); Deno's own loop (promises, timers, signal listeners) does not run
 * meanwhile. Use {@linkcode mainLoopRun} to share the thread with it.
 *
 * An exception thrown by a callback leaves the call (the rest of that
 * iteration is skipped); the loop stays consistent.
 *
 * Counterpart: `main_loop_wait()`.
 *
 * Thread: home thread only.
 *
 * @param nonblocking True to poll without waiting.
 * @throws {Error} When the main loop is not initialized, or while the
 * async run's parked wait is in flight.
 * @throws {RangeError} When a poll notifier set an invalid timeout.
 * @throws {SysError} When the poll fails (after the notifiers saw
 * `MAIN_LOOP_POLL_ERR`; the main-loop timers then wait for the next call).
 *
 * @example Draining ready work without blocking
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { mainLoopWait, qemuCleanupMainLoop, qemuGetAioContext, qemuInitMainLoop } from "@aioloop/aioloop/main-loop";
 * qemuInitMainLoop();
 * let n = 0;
 * const bh = qemuGetAioContext().bhNew(() => {
 *   if (++n < 3) bh.schedule();
 * });
 * bh.schedule();
 * for (let i = 0; i < 3; i++) mainLoopWait(true);
 * assertEquals(n, 3);
 * bh.delete();
 * qemuCleanupMainLoop();
 * ```
 */
export function mainLoopWait(nonblocking: boolean): void {
  live();
  checkNotParked("mainLoopWait()");
  const it = iterate(!!nonblocking);
  let step = it.next();
  while (!step.done) step = it.next(pollSync(step.value));
}

/**
 * Drives one iteration; the wait is parked unless `syncIfReady` and the
 * timeout is 0 or shorter than the parked wait's hop (then a synchronous
 * wait is both cheaper and on time). Returns whether it parked, i.e. let
 * Deno's loop turn.
 */
async function iterateAsync(syncIfReady: boolean): Promise<boolean> {
  const it = iterate(false);
  let parked = false;
  try {
    let step = it.next();
    while (!step.done) {
      const w = step.value;
      let r: number | SysError;
      if (syncIfReady && w.timeoutNs >= 0 && w.timeoutNs <= parkedWaitMarginNs()) {
        r = pollSync(w);
      } else {
        parked = true;
        r = await pollParkedUntil(w.fds, w.timeoutNs, w.deadlineNs, state?.parkTimer ?? -1);
      }
      step = it.next(r);
    }
  } finally {
    // Only reached early if something threw between the generator's steps.
    it.return();
  }
  return parked;
}

/**
 * Runs one blocking main-loop iteration whose wait is parked: one
 * `nonblocking: true` FFI poll(2) on Deno's blocking pool (with timeout 0
 * when work is ready), so Deno's own loop turns while it waits. The wait is
 * cut short by whatever ends {@linkcode mainLoopWait}'s, including work
 * that Deno-side callbacks give the loop meanwhile. It ends at the same
 * nanosecond deadline as {@linkcode mainLoopWait}'s: a timed wait parks on
 * a timerfd that rings one estimated hop (50 to 500 µs) before the
 * deadline, then finishes in a short synchronous ppoll(2) on this thread,
 * so that neither the pool thread's timer slack nor the hop back to the
 * isolate makes timers late. A timeout shorter than that hop parks with
 * timeout 0 (one turn of Deno's loop), then waits out the rest
 * synchronously.
 *
 * At most one parked wait may be in flight per isolate (Deno's blocking pool
 * is small and shared with file I/O): a second call, or
 * {@linkcode mainLoopWait}, while one is in flight throws.
 *
 * Counterpart: `main_loop_wait(false)`, with the poll done off the thread.
 *
 * Thread: home thread only.
 *
 * @returns Resolves after the iteration.
 * @throws {Error} When the main loop is not initialized or a parked wait is
 * already in flight (the promise rejects).
 * @throws {SysError} When the poll fails.
 *
 * @example One parked iteration
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { mainLoopWaitAsync, qemuCleanupMainLoop, qemuGetAioContext, qemuInitMainLoop } from "@aioloop/aioloop/main-loop";
 * qemuInitMainLoop();
 * let ran = false;
 * setTimeout(() => qemuGetAioContext().bhScheduleOneshot(() => ran = true), 10);
 * while (!ran) await mainLoopWaitAsync();
 * assertEquals(ran, true);
 * qemuCleanupMainLoop();
 * ```
 */
export async function mainLoopWaitAsync(): Promise<void> {
  live();
  checkNotParked("mainLoopWaitAsync()");
  if (depth > 0) throw new Error("mainLoopWaitAsync() cannot run inside a main-loop iteration");
  await iterateAsync(false);
}

/**
 * Runs the main loop beside Deno's own event loop until
 * {@linkcode mainLoopQuit} is called or `options.signal` aborts. Each turn is
 * one main-loop iteration: when work is ready it is dispatched at once (a
 * zero-timeout poll), and when the loop would block, its wait is one parked
 * `nonblocking: true` FFI poll (never more than one in flight), during which
 * timers, promises, `fetch`, `Deno.serve` and signal listeners run. Work
 * they hand to the loop (a BH, a timer, a handler change,
 * {@linkcode qemuNotifyEvent}) cuts the wait short. A loop kept busy
 * dispatches for about 1 ms at a time, then lets Deno's loop turn once.
 * Timers end on time as in {@linkcode mainLoopWaitAsync}; next to a busy
 * `Deno.serve` they run late by however long Deno's loop takes to return
 * here (run precise timers on an IOThread then: see
 * docs/timer_precision.md).
 *
 * The promise settles only once no parked wait is left, so nothing of the
 * loop is pending afterwards. A callback that throws ends the run with that
 * error.
 *
 * Counterpart: `qemu_main_loop()` (`while (!main_loop_should_exit())
 * main_loop_wait(false)`), as `g_main_loop_run()` on Deno's terms.
 *
 * Thread: home thread only.
 *
 * @param options An AbortSignal that stops the loop.
 * @returns Resolves when the loop stopped.
 * @throws {Error} When the main loop is not initialized or already running.
 * @throws {TypeError} When `options.signal` is not an AbortSignal.
 *
 * @example Run until a timer quits
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { mainLoopQuit, mainLoopRun, qemuCleanupMainLoop, qemuInitMainLoop } from "@aioloop/aioloop/main-loop";
 * import { clockGetMs, QEMUClockType, timerNewMs } from "@aioloop/aioloop";
 * qemuInitMainLoop();
 * const t = timerNewMs(QEMUClockType.REALTIME, () => mainLoopQuit());
 * t.mod(clockGetMs(QEMUClockType.REALTIME) + 20);
 * await mainLoopRun();
 * assertEquals(t.pending, false); // it fired and quit the loop
 * qemuCleanupMainLoop();
 * ```
 */
export async function mainLoopRun(options: MainLoopRunOptions = {}): Promise<void> {
  const s = live();
  if (options === null || typeof options !== "object") {
    throw new TypeError("Main loop run options must be an object");
  }
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError("Option 'signal' must be an AbortSignal");
  }
  if (s.running) throw new Error("The main loop is already running");
  checkNotParked("mainLoopRun()");
  if (depth > 0) throw new Error("mainLoopRun() cannot run inside a main-loop iteration");
  if (signal?.aborted) return;
  s.running = true;
  s.quit = false;
  const onAbort = (): void => mainLoopQuit();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    let lastYield = clockGettimeNs();
    while (!s.quit) {
      const busy = clockGettimeNs() - lastYield < YIELD_AFTER_NS;
      if (await iterateAsync(busy)) lastYield = clockGettimeNs();
    }
  } finally {
    s.running = false;
    s.quit = false;
    signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * Stops {@linkcode mainLoopRun}: sets the stop flag and wakes the loop
 * ({@linkcode qemuNotifyEvent}); the run finishes its current iteration,
 * its parked wait returns, and its promise resolves. Does nothing when the
 * loop is not running.
 *
 * Counterpart: `qemu_system_shutdown_request()` as seen by
 * `main_loop_should_exit()`; `g_main_loop_quit()`.
 *
 * Thread: home thread only (another thread can ask the main loop, through a
 * shared BH, to call it).
 *
 * @example Quitting from a BH
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { mainLoopQuit, mainLoopRun, qemuCleanupMainLoop, qemuGetAioContext, qemuInitMainLoop } from "@aioloop/aioloop/main-loop";
 * qemuInitMainLoop();
 * let ran = false;
 * qemuGetAioContext().bhScheduleOneshot(() => (ran = true, mainLoopQuit()));
 * await mainLoopRun();
 * assertEquals(ran, true);
 * qemuCleanupMainLoop();
 * ```
 */
export function mainLoopQuit(): void {
  const s = state;
  if (s === null || !s.running) return;
  s.quit = true;
  qemuNotifyEvent();
}

/**
 * Whether {@linkcode mainLoopRun} is active.
 *
 * Counterpart: `g_main_loop_is_running()`.
 *
 * Thread: home thread only.
 *
 * @returns True while the async run is active.
 *
 * @example Not running
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { mainLoopIsRunning } from "@aioloop/aioloop/main-loop";
 * assertEquals(mainLoopIsRunning(), false);
 * ```
 */
export function mainLoopIsRunning(): boolean {
  return state?.running ?? false;
}

/**
 * Handles `signal` inside the main loop: a `Deno.addSignalListener`
 * listener schedules a oneshot BH on the main AioContext (which rings the
 * loop's doorbell), and `handler` runs from that BH, in a main-loop
 * iteration, like any other callback. Deno delivers signals while its own
 * loop turns, so use {@linkcode mainLoopRun} (a synchronous
 * {@linkcode mainLoopWait} delays delivery until it returns to Deno's loop).
 * Adding the same handler twice for a signal does nothing; SIGINT and
 * SIGTERM handlers replace Deno's default action (exit).
 * {@linkcode qemuCleanupMainLoop} removes every handler.
 *
 * Counterpart: `qemu_signal_init()` and `sigfd_handler()` (QEMU reads a
 * signalfd on the iohandler context; signalfd cannot work under Deno).
 *
 * Thread: home thread only.
 *
 * @param signal The signal, such as "SIGINT".
 * @param handler Called with the signal, inside the loop.
 * @throws {Error} When the main loop is not initialized.
 * @throws {TypeError} When `handler` is not a function, or Deno rejects
 * the signal (SIGKILL, SIGSTOP, an unknown name).
 *
 * @example Handling SIGUSR2
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import {
 *   mainLoopAddSignalHandler, mainLoopQuit, mainLoopRun, qemuCleanupMainLoop, qemuInitMainLoop,
 * } from "@aioloop/aioloop/main-loop";
 * qemuInitMainLoop();
 * mainLoopAddSignalHandler("SIGUSR2", (sig) => {
 *   assertEquals(sig, "SIGUSR2");
 *   mainLoopQuit();
 * });
 * setTimeout(() => Deno.kill(Deno.pid, "SIGUSR2"), 10);
 * await mainLoopRun();
 * qemuCleanupMainLoop();
 * ```
 */
export function mainLoopAddSignalHandler(
  signal: Deno.Signal,
  handler: MainLoopSignalHandler,
): void {
  const s = live();
  if (typeof handler !== "function") throw new TypeError("Signal handler must be a function");
  let handlers = s.signals.get(signal);
  if (handlers?.has(handler)) return;
  const listener = (): void => {
    // The loop may be gone by the time Deno delivers the signal.
    if (state === s) s.main.bhScheduleOneshot(() => handler(signal), `signal ${signal}`);
  };
  Deno.addSignalListener(signal, listener);
  if (handlers === undefined) {
    handlers = new Map();
    s.signals.set(signal, handlers);
  }
  handlers.set(handler, listener);
}

/**
 * Removes a handler added with {@linkcode mainLoopAddSignalHandler}
 * (nothing happens if it is not there). A signal already received still
 * runs its handler from the BH it scheduled.
 *
 * Counterpart: restoring a signal's disposition (QEMU has no removal).
 *
 * Thread: home thread only.
 *
 * @param signal The signal.
 * @param handler The handler.
 *
 * @example Add, then remove
 * ```ts
 * import {
 *   mainLoopAddSignalHandler, mainLoopRemoveSignalHandler, qemuCleanupMainLoop, qemuInitMainLoop,
 * } from "@aioloop/aioloop/main-loop";
 * qemuInitMainLoop();
 * const h = () => {};
 * mainLoopAddSignalHandler("SIGUSR1", h);
 * mainLoopRemoveSignalHandler("SIGUSR1", h);
 * qemuCleanupMainLoop();
 * ```
 */
export function mainLoopRemoveSignalHandler(
  signal: Deno.Signal,
  handler: MainLoopSignalHandler,
): void {
  const s = state;
  const handlers = s?.signals.get(signal);
  const listener = handlers?.get(handler);
  if (listener === undefined) return;
  handlers!.delete(handler);
  if (handlers!.size === 0) s!.signals.delete(signal);
  Deno.removeSignalListener(signal, listener);
}

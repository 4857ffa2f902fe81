// Runs a program against the real AioContext and the reference model in
// lockstep and fails at the first step whose callback trace or poll() result
// differs; checkModel() wraps that in a seeded fast-check run and reports the
// seed and the shrunk program readably.
import fc from "./fc.ts";
import { AioContext } from "../../aio/aio_context.ts";
import type { QEMUBH } from "../../aio/bh.ts";
import {
  clockAdvanceVirtualNs,
  clockEnable,
  clockGetNs,
  clockSetVirtualNs,
  QEMUClockType,
  type QEMUTimer,
  SCALE_NS,
} from "../../aio/timer.ts";
import type { FdMonName } from "../../fdmon/mod.ts";
import { GMainContext } from "../../glib/mod.ts";
import { close, pipe, read, write } from "../../sys/fd.ts";
import {
  AioModel,
  type FdMonKind,
  type LoopUnderTest,
  type ModelMutation,
  type PipeEnd,
} from "./aio_model.ts";
import { fmtOp, fmtProgram, Interpreter, type Op, type Program, programArb } from "./program.ts";

/** A blocking poll that outlives this wakes up and fails the program. */
const WATCHDOG_NS = 20_000_000_000;

/** The adapter from LoopUnderTest to a real AioContext. */
export class RealLoop implements LoopUnderTest {
  readonly ctx: AioContext;
  #pipes: [number, number][] = [];
  #bhs: QEMUBH[] = [];
  #timers: QEMUTimer[] = [];
  #watchdog: QEMUTimer;
  #buf = new Uint8Array(64);
  /** Called if the watchdog fires (a blocking poll that should have returned). */
  onWatchdog: () => void = () => {};

  constructor(fdmon: FdMonName, pipes: number) {
    this.ctx = AioContext.create({ fdmon });
    try {
      for (let i = 0; i < pipes; i++) this.#pipes.push(pipe());
    } catch (e) {
      this.close();
      throw e;
    }
    clockEnable(QEMUClockType.VIRTUAL, true);
    clockSetVirtualNs(0);
    // Armed once: arming it before each blocking poll would kick the context
    // (a new earliest timer notifies), so that poll would never block.
    this.#watchdog = this.ctx.timerNew(QEMUClockType.REALTIME, SCALE_NS, () => this.onWatchdog());
    this.#watchdog.modNs(clockGetNs(QEMUClockType.REALTIME) + WATCHDOG_NS);
  }

  bhNew(id: number, cb: () => void): void {
    this.#bhs[id] = this.ctx.bhNew(cb, { name: `b${id}` });
  }
  bhOneshot(id: number, cb: () => void): void {
    this.ctx.bhScheduleOneshot(cb, `o${id}`);
  }
  bhSchedule(id: number): void {
    this.#bhs[id].schedule();
  }
  bhScheduleIdle(id: number): void {
    this.#bhs[id].scheduleIdle();
  }
  bhCancel(id: number): void {
    this.#bhs[id].cancel();
  }
  bhDelete(id: number): void {
    this.#bhs[id].delete();
  }
  timerNew(id: number, cb: () => void): void {
    this.#timers[id] = this.ctx.timerNew(QEMUClockType.VIRTUAL, SCALE_NS, cb, { name: `t${id}` });
  }
  timerModNs(id: number, ns: number): void {
    this.#timers[id].modNs(ns);
  }
  timerModAnticipateNs(id: number, ns: number): void {
    this.#timers[id].modAnticipateNs(ns);
  }
  timerDel(id: number): void {
    this.#timers[id].del();
  }
  virtualNow(): number {
    return clockGetNs(QEMUClockType.VIRTUAL);
  }
  clockAdvance(ns: number): void {
    clockAdvanceVirtualNs(ns);
  }
  clockEnable(on: boolean): void {
    clockEnable(QEMUClockType.VIRTUAL, on);
  }
  notify(): void {
    this.ctx.notify();
  }
  pipeWrite(p: number, n: number): void {
    if (write(this.#pipes[p][1], this.#buf, n) !== n) throw new Error(`short write to pipe ${p}`);
  }
  pipeRead(p: number, n: number): number {
    return read(this.#pipes[p][0], this.#buf, n);
  }
  setFdHandler(p: number, end: PipeEnd, _nodeId: number, cb: (() => void) | null): void {
    const fd = this.#pipes[p][end === "r" ? 0 : 1];
    this.ctx.setFdHandler(fd, cb === null ? null : end === "r" ? { read: cb } : { write: cb });
  }
  poll(blocking: boolean): boolean {
    return this.ctx.poll(blocking);
  }
  #gctx: GMainContext | null = null;
  iterate(): boolean {
    if (this.#gctx === null) {
      this.#gctx = new GMainContext();
      this.ctx.getGSource().attach(this.#gctx);
    }
    return this.#gctx.iteration(false);
  }

  /**
   * Tears down: callbacks must already be quiesced. Deletes the BHs the
   * program left alive, lets pending oneshots run (a pending oneshot counts
   * as leaked at destroy, in QEMU too), destroys the context, closes the
   * pipes. Throws if the context reports a leak.
   */
  close(liveBhs: number[] = [], handlers: [number, PipeEnd][] = []): void {
    let err: unknown = null;
    try {
      if (!this.ctx.destroyed) {
        for (const [p, end] of handlers) this.setFdHandler(p, end, -1, null);
        for (const id of liveBhs) this.#bhs[id].delete();
        for (const t of this.#timers) t.del();
        this.#watchdog?.del();
        this.ctx.poll(false);
        this.ctx.poll(false);
      }
    } catch (e) {
      err = e;
    }
    try {
      this.#gctx?.destroy();
    } catch (e) {
      err ??= e;
    }
    try {
      this.ctx.destroy();
    } catch (e) {
      err ??= e;
    }
    for (const [r, w] of this.#pipes) {
      close(r);
      close(w);
    }
    this.#pipes.length = 0;
    clockEnable(QEMUClockType.VIRTUAL, true);
    clockSetVirtualNs(0);
    if (err !== null) throw err;
  }
}

/** A step where the real context and the model disagree. */
export class Divergence extends Error {
  constructor(
    readonly step: number,
    readonly op: Op,
    readonly model: { events: string[]; result: boolean | undefined },
    readonly real: { events: string[]; result: boolean | undefined },
  ) {
    const show = (x: { events: string[]; result: boolean | undefined }): string =>
      `[${x.events.join(" ")}]${x.result === undefined ? "" : ` -> ${x.result}`}`;
    super(
      `step ${step} (${fmtOp(op)}): model ${show(model)}, real ${show(real)}`,
    );
    this.name = "Divergence";
  }
}

/** Options for {@linkcode runProgram} and {@linkcode checkModel}. */
export interface RunOptions {
  fdmon: FdMonName;
  mutation?: ModelMutation;
  /**
   * Known bugs tracked elsewhere to steer around (see KNOWN_BUGS). Default:
   * all of them; pass [] to hit them.
   */
  avoid?: readonly KnownBug[];
}

/**
 * Bugs of the real context that the checker found, with how a run can steer
 * around each one while it is open. None is open now: the list is empty, and
 * the entry below is kept so the steering can be tried against old code.
 *
 * - "9.3-io_uring-reap-before-submit": on io_uring, a blocking poll that
 *   finds completions already posted reaps them first and then submits the
 *   queued POLL_ADDs together with the re-arms of the nodes it just reaped,
 *   leaving what that brings in for the next poll. QEMU's
 *   fdmon_io_uring_wait submits first and reaps everything, and re-arms a
 *   reaped node only in the next wait, after its handler ran. Seen as: a
 *   handler whose POLL_ADD completes at submission runs one poll() late;
 *   a read handler that drained its pipe runs again in the next poll() on
 *   the empty pipe (read gives EAGAIN) and that poll() reports progress.
 *   Steering: when the model says a blocking poll starts with a live
 *   completion posted, the step polls with blocking = false instead, which
 *   takes the wait path that submits first. Nothing else changes: a
 *   blocking and a non-blocking poll see the same events in a
 *   single-threaded program.
 */
export type KnownBug = "9.3-io_uring-reap-before-submit";

/** Every known bug. */
export const KNOWN_BUGS: readonly KnownBug[] = [];

/** Wall-clock cap per program: a runaway program fails instead of hanging the suite. */
const PROGRAM_WALL_MS = 60_000;

/** What the programs exercised: a guard against a generator that tests nothing. */
export interface Coverage {
  /** Trace events by first letter (b, o, t, r, w, p, n). */
  events: Record<string, number>;
  /** Top-level polls by kind, and their results. */
  polls: number;
  blockingPolls: number;
  progress: number;
  /** Blocking polls run non-blocking to steer around a known bug. */
  steered: number;
  /** GLib iterations, and how many dispatched. */
  iterations: number;
  dispatched: number;
}

/** Fresh, empty coverage counters. */
export function newCoverage(): Coverage {
  return {
    events: {},
    polls: 0,
    blockingPolls: 0,
    progress: 0,
    steered: 0,
    iterations: 0,
    dispatched: 0,
  };
}

/** Runs one program in lockstep; throws a Divergence at the first difference. */
export function runProgram(
  prog: Program,
  options: RunOptions,
  coverage: Coverage = newCoverage(),
): void {
  const started = Date.now();
  const avoid = options.avoid ?? KNOWN_BUGS;
  const real = new RealLoop(options.fdmon, prog.pipes);
  const ri = new Interpreter(real, prog.pipes);
  real.onWatchdog = () => ri.trace.push("WATCHDOG");
  // Where epoll and io_uring leave the dispatch order open, the model takes
  // the order the real context chose, if that is one of its candidates.
  let realEvents: string[] = [];
  let realResult: boolean | undefined;
  const model = new AioModel({
    fdmon: options.fdmon as FdMonKind,
    pipes: prog.pipes,
    mutation: options.mutation,
    resolveKick: () => realResult,
    chooseReady: (cands) => {
      const next = realEvents[mi.trace.length];
      const i = cands.findIndex((n) => n.name === next);
      return i < 0 ? 0 : i;
    },
  });
  const mi = new Interpreter(model, prog.pipes);
  let error: unknown = null;
  try {
    ri.setup(prog);
    mi.setup(prog);
    prog.ops.forEach((op0, i) => {
      let op = op0;
      if (Date.now() - started > PROGRAM_WALL_MS) {
        throw new Error(`program ran longer than ${PROGRAM_WALL_MS} ms (step ${i})`);
      }
      // Block only where the model says something is ready or a deadline is
      // near: otherwise the real context would wait forever.
      // No GSource model for io_uring (see AioModel.iterate).
      if (op.op === "iterate" && options.fdmon === "io_uring") return;
      if (op.op === "poll" && op.blocking) {
        if (model.wouldBlockForever()) return;
        if (avoid.includes("9.3-io_uring-reap-before-submit") && model.completionPosted()) {
          coverage.steered++;
          op = { op: "poll", blocking: false };
        }
      }
      ri.trace = [];
      const rr = ri.step(op);
      realEvents = ri.trace;
      realResult = rr;
      mi.trace = [];
      mi.maxEvents = ri.trace.length + 16;
      let mr: boolean | undefined;
      try {
        mr = mi.step(op);
      } catch (e) {
        // The model ran away where the real context did not: a difference.
        throw new Divergence(i, op, {
          events: [...mi.trace.slice(0, 40), `(${e})`],
          result: undefined,
        }, {
          events: ri.trace,
          result: rr,
        });
      }
      if (op.op === "iterate") {
        coverage.iterations++;
        if (rr) coverage.dispatched++;
      }
      if (op.op === "poll") {
        coverage.polls++;
        if (op.blocking) coverage.blockingPolls++;
        if (rr) coverage.progress++;
      }
      for (const e of ri.trace) coverage.events[e[0]] = (coverage.events[e[0]] ?? 0) + 1;
      const same = mr === rr && mi.trace.length === ri.trace.length &&
        mi.trace.every((e, k) => e === ri.trace[k]);
      if (!same) {
        throw new Divergence(i, op, { events: mi.trace, result: mr }, {
          events: ri.trace,
          result: rr,
        });
      }
    });
  } catch (e) {
    error = e;
  }
  ri.quiesced = true;
  mi.quiesced = true;
  try {
    real.close(ri.liveBhs(), ri.liveHandlers());
  } catch (e) {
    // A teardown error must not hide the divergence that caused it.
    error ??= e;
  }
  if (error !== null) throw error;
}

/** What {@linkcode checkModel} returns. */
export interface CheckResult {
  /** The fast-check run details. */
  details: fc.RunDetails<[Program]>;
  /** A readable report if it failed: seed, shrunk program, the first difference. */
  report: string | null;
  /** Programs run (shrinking included), and the wall time. */
  programs: number;
  /** What the programs exercised. */
  coverage: Coverage;
  ms: number;
}

/** Runs `numRuns` random programs from `seed`; never throws for a counterexample. */
export function checkModel(
  options: RunOptions & { seed: number; numRuns: number; maxOps?: number },
): CheckResult {
  let programs = 0;
  const coverage = newCoverage();
  const t0 = performance.now();
  const prop = fc.property(programArb(options.maxOps), (prog) => {
    programs++;
    runProgram(prog, options, coverage);
  });
  const details = fc.check(prop, { seed: options.seed, numRuns: options.numRuns });
  const ms = performance.now() - t0;
  let report: string | null = null;
  if (details.failed) {
    const prog = details.counterexample?.[0];
    report = [
      `model check failed on fd monitor ${options.fdmon}` +
      (options.mutation && options.mutation !== "none" ? ` (mutation ${options.mutation})` : ""),
      `seed: ${details.seed}, path: ${details.counterexamplePath}, after ${details.numRuns} runs` +
      ` and ${details.numShrinks} shrinks`,
      `reproduce: AIOLOOP_SOAK_SEED=${details.seed} AIOLOOP_SOAK_FDMON=${options.fdmon}` +
      `${
        (options.avoid ?? KNOWN_BUGS).length === 0 ? " AIOLOOP_SOAK_STRICT=1" : ""
      } deno task soak`,
      `shrunk program:`,
      prog ? fmtProgram(prog) : "(none)",
      `first difference: ${
        details.errorInstance instanceof Error
          ? details.errorInstance.message
          : String(details.error)
      }`,
    ].join("\n");
  }
  return { details, report, programs, ms, coverage };
}

/**
 * The loop timeline: an opt-in trace of every thread's loop iterations
 * (waits, bottom halves, fd handlers, timers, thread-pool jobs, IOThread
 * requests, vCPU work), exported in the Chrome trace-event JSON format that
 * Perfetto (ui.perfetto.dev) and chrome://tracing open.
 *
 * Thread: start, stop and export on the thread that made the trace buffer
 * (the main thread: the first one to trace or to start one of the
 * package's Workers); Workers started by the package record into the same
 * buffer, so one export holds all threads.
 *
 * @module
 */
import { clockGettimeNs } from "../sys/clock.ts";
import {
  blockView,
  createBlock,
  DEFAULT_CAPACITY,
  GEN_MASK,
  GEN_SHIFT,
  H_CAP,
  H_DROPPED,
  H_IDX,
  H_NAMES,
  IDX_MASK,
  K_USER,
  KINDS,
  MARK_BIT,
  MAX_CAPACITY,
  NAME_BYTES,
  NAME_CAP,
  namesOffset,
  ON,
  PH_B,
  PH_E,
  PH_FLOW_F,
  PH_FLOW_S,
  PH_I,
  PH_META,
  recordOffset,
  setTracing,
  traceInstant,
  traceName,
  tracing,
} from "./_state.ts";

/**
 * Thrown when tracing is driven from a thread that does not own the trace
 * buffer, when the buffer cannot take the size asked for, or when a
 * session's events were replaced by a newer session's.
 *
 * Counterpart: none (QEMU reports trace setup errors through `Error **`).
 *
 * Thread: any.
 *
 * @example A replaced session
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { startTrace, TraceError } from "@aioloop/aioloop/trace";
 * const old = startTrace();
 * old.stop();
 * startTrace().stop();
 * let err: unknown;
 * try {
 *   old.events();
 * } catch (e) {
 *   err = e;
 * }
 * assertEquals(err instanceof TraceError, true);
 * ```
 */
export class TraceError extends Error {
  /**
   * Builds the error.
   *
   * @param message What went wrong.
   */
  constructor(message: string) {
    super(message);
    this.name = "TraceError";
  }
}

/** Options of {@linkcode startTrace}. */
export interface TraceOptions {
  /**
   * Room for this many events (default 262144). Events past it are dropped
   * and counted (`otherData.dropped` in the export). The size is fixed once
   * a Worker of the package has been started with the buffer.
   */
  capacity?: number;
}

/** One event of the Chrome trace-event format, as {@linkcode traceEvents} returns it. */
export interface TraceEvent {
  /** The event's name ("aio_poll", "wait", a BH's name...). */
  name: string;
  /** Category: loop, wait, bh, fd, timer, thread_pool, iothread, cpus, user, __metadata. */
  cat: string;
  /** Phase: B (begin), E (end), i (instant), s / f (flow out / in), M (metadata). */
  ph: "B" | "E" | "i" | "s" | "f" | "M";
  /** Microseconds of CLOCK_MONOTONIC (the same clock on every thread). */
  ts: number;
  /** The process id. */
  pid: number;
  /** The OS thread id. */
  tid: number;
  /** Scope of an instant event ("t": the thread). */
  s?: "t";
  /** Flow id (s / f events). */
  id?: number;
  /** Flow binding ("e": the enclosing slice). */
  bp?: "e";
  /** Event arguments (the fd of an fd handler, a pool request...). */
  args?: Record<string, unknown>;
}

/** The exported document (Chrome's JSON object format). */
export interface TraceDocument {
  /** Every event, each thread's in order. */
  traceEvents: TraceEvent[];
  /** Always "ns": the viewer shows sub-microsecond durations. */
  displayTimeUnit: "ns";
  /** The clock and how many events did not fit. */
  otherData: { clock: "CLOCK_MONOTONIC"; dropped: number; version: string };
}

const PHASES = ["", "B", "E", "i", "s", "f", "M"] as const;

let current: Tracer | null = null;
/** The generation of the last session started (events of others are ignored). */
let sessionGen = -1;
let stopNs = 0;

function view(): ReturnType<typeof blockView> & object {
  const v = blockView();
  if (v === null) throw new TraceError("No trace buffer");
  if (!v.owner) {
    throw new TraceError(
      "Tracing is started, stopped and exported on the thread that owns the trace buffer " +
        "(the main thread); this Worker only records into it",
    );
  }
  return v;
}

function checkOptions(options: unknown): number | undefined {
  if (options === undefined) return undefined;
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Trace options must be an object, got ${String(options)}`);
  }
  const cap = (options as TraceOptions).capacity;
  if (cap === undefined) return undefined;
  if (typeof cap !== "number" || !Number.isInteger(cap) || cap < 1 || cap > MAX_CAPACITY) {
    throw new RangeError(
      `Trace capacity must be an integer from 1 to ${MAX_CAPACITY}, got ${String(cap)}`,
    );
  }
  return cap;
}

/**
 * A tracing session: what {@linkcode startTrace} returns. Disposing it (or
 * `using` it) stops the session; its events stay exportable until the next
 * session starts.
 *
 * Counterpart: QEMU's `-trace` backends (a "simple" trace file), in the
 * Chrome trace-event format.
 *
 * Thread: the thread that started it.
 *
 * @example A traced block
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext } from "@aioloop/aioloop";
 * import { startTrace } from "@aioloop/aioloop/trace";
 * using ctx = AioContext.create();
 * {
 *   using tracer = startTrace();
 *   ctx.bhScheduleOneshot(function hello() {});
 *   ctx.poll(false);
 *   tracer.stop();
 *   assertEquals(tracer.events().some((e) => e.name === "hello" && e.ph === "B"), true);
 * }
 * ```
 */
export class Tracer {
  #gen: number;

  /** @internal Use {@linkcode startTrace}. */
  constructor(gen: number) {
    this.#gen = gen;
  }

  /** Whether this session is still recording. */
  get active(): boolean {
    return current === this && tracing;
  }

  /** Stops this session (a no-op if it stopped already). */
  stop(): void {
    if (current === this) stopTrace();
  }

  /** This session's events (see {@linkcode traceEvents}). */
  events(): TraceEvent[] {
    return this.document().traceEvents;
  }

  /** This session as a trace document. */
  document(): TraceDocument {
    if (this.#gen !== sessionGen) {
      throw new TraceError("A newer tracing session replaced this one's events");
    }
    return buildDocument();
  }

  /** This session as Chrome trace-event JSON. */
  toJson(): string {
    return JSON.stringify(this.document());
  }

  /** Writes this session's JSON to `path` (see {@linkcode writeTraceFileSync}). */
  writeFileSync(path: string | URL): void {
    writeJson(path, this.toJson());
  }

  /** Stops the session. */
  [Symbol.dispose](): void {
    this.stop();
  }
}

/**
 * Starts recording every thread's loop events. A new session forgets the
 * events of the previous one. Calling it while a session records returns
 * that session (options are then ignored, except a different capacity,
 * which throws).
 *
 * Counterpart: QEMU's `trace_enable_events()` / `-trace` at start-up.
 *
 * Thread: the main thread (the owner of the trace buffer).
 *
 * @param options The buffer's size.
 * @returns The session; `using` it stops it at the end of the block.
 * @throws {TypeError} If `options` is not an object.
 * @throws {RangeError} If the capacity is not an integer in range.
 * @throws {TraceError} From a Worker, or when the capacity cannot change
 * because a Worker already has the buffer.
 *
 * @example Start, do something, stop, export
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext } from "@aioloop/aioloop";
 * import { startTrace, stopTrace, traceToJson } from "@aioloop/aioloop/trace";
 * using ctx = AioContext.create();
 * startTrace();
 * ctx.poll(false);
 * stopTrace();
 * const doc = JSON.parse(traceToJson());
 * assertEquals(doc.traceEvents.some((e: { name: string }) => e.name.startsWith("aio_poll")), true);
 * ```
 */
export function startTrace(options?: TraceOptions): Tracer {
  const cap = checkOptions(options);
  let v = blockView();
  if (v !== null && !v.owner) view();
  if (current !== null && tracing) {
    if (cap !== undefined && cap !== v!.hdr[H_CAP]) {
      throw new TraceError(
        `A session is recording with a capacity of ${v!.hdr[H_CAP]}; stop it first`,
      );
    }
    return current;
  }
  if (v === null || (cap !== undefined && cap !== v.hdr[H_CAP])) {
    if (v !== null && v.handedOut) {
      throw new TraceError(
        `The trace buffer holds ${v.hdr[H_CAP]} events and Workers already write into it; ` +
          `start the trace with that capacity before the first IOThread, pool or vCPU starts`,
      );
    }
    createBlock(cap ?? DEFAULT_CAPACITY);
    v = blockView()!;
  }
  const h = v.hdr;
  const gen = (((Atomics.load(h, H_IDX) >>> GEN_SHIFT) & GEN_MASK) + 1) & GEN_MASK;
  Atomics.store(h, H_DROPPED, 0);
  Atomics.store(h, H_IDX, (gen << GEN_SHIFT) | ON);
  sessionGen = gen;
  stopNs = 0;
  setTracing(true);
  current = new Tracer(gen);
  return current;
}

/**
 * Stops recording; the events stay exportable until the next
 * {@linkcode startTrace}. A no-op when nothing records.
 *
 * Counterpart: `trace_enable_events()` turning events off.
 *
 * Thread: the main thread.
 *
 * @throws {TraceError} From a Worker.
 *
 * @example Stopping twice is fine
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { isTracing, startTrace, stopTrace } from "@aioloop/aioloop/trace";
 * startTrace();
 * stopTrace();
 * stopTrace();
 * assertEquals(isTracing(), false);
 * ```
 */
export function stopTrace(): void {
  const v = blockView();
  if (v === null) return;
  view();
  const w = Atomics.and(v.hdr, H_IDX, ~ON);
  if ((w & ON) !== 0) stopNs = nowNs();
  setTracing(false);
  current = null;
}

/**
 * Whether this thread records now.
 *
 * Thread: any.
 *
 * @returns True between {@linkcode startTrace} and {@linkcode stopTrace}
 * (on a Worker: once it has seen the start).
 *
 * @example Off by default
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { isTracing } from "@aioloop/aioloop/trace";
 * assertEquals(isTracing(), false);
 * ```
 */
export function isTracing(): boolean {
  return tracing;
}

/**
 * Records a point in time on the calling thread's timeline (category
 * `user`), if it records; nothing otherwise.
 *
 * Counterpart: a QEMU trace event of the user's own.
 *
 * Thread: any thread of the package.
 *
 * @param name What happened.
 * @param arg A number shown with it.
 *
 * @example Marking a moment
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { startTrace, traceEvents, traceMark } from "@aioloop/aioloop/trace";
 * using _t = startTrace();
 * traceMark("checkpoint", 7);
 * const e = traceEvents().find((e) => e.name === "checkpoint");
 * assertEquals(e?.args, { arg: 7 });
 * ```
 */
export function traceMark(name: string, arg = 0): void {
  if (typeof name !== "string") throw new TypeError("Trace mark name must be a string");
  if (tracing) traceInstant(K_USER, traceName(name), arg);
}

/**
 * The events of the current (or last) session, each thread's in order, with
 * every begin matched by an end on its thread: a span still open (or left
 * open by a thread that stopped) ends at the stop; an end whose begin came
 * before the start is dropped.
 *
 * Thread: the main thread.
 *
 * @returns The events (empty if no session ran).
 * @throws {TraceError} From a Worker.
 *
 * @example Metadata names the threads
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { startTrace, traceEvents } from "@aioloop/aioloop/trace";
 * using _t = startTrace();
 * const meta = traceEvents().filter((e) => e.ph === "M" && e.name === "process_name");
 * assertEquals(meta.length, 1);
 * ```
 */
export function traceEvents(): TraceEvent[] {
  return buildDocument().traceEvents;
}

/**
 * The current (or last) session as Chrome trace-event JSON: an object with
 * `traceEvents` (see {@linkcode traceEvents}), `displayTimeUnit` and
 * `otherData` (`dropped`: events that did not fit). Open it in Perfetto.
 *
 * Thread: the main thread.
 *
 * @returns The JSON text.
 * @throws {TraceError} From a Worker.
 *
 * @example The document's shape
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { startTrace, stopTrace, traceToJson } from "@aioloop/aioloop/trace";
 * startTrace();
 * stopTrace();
 * const doc = JSON.parse(traceToJson());
 * assertEquals([Array.isArray(doc.traceEvents), doc.otherData.dropped], [true, 0]);
 * ```
 */
export function traceToJson(): string {
  return JSON.stringify(buildDocument());
}

/**
 * Writes {@linkcode traceToJson} to a file (created or truncated).
 *
 * Thread: the main thread.
 *
 * @param path Where to write.
 * @throws {TypeError} If `path` is not a string or URL.
 * @throws {Deno.errors.NotFound} If the directory does not exist (and the
 * other errors of `Deno.writeTextFileSync`).
 *
 * @example Writing a trace file
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { startTrace, stopTrace, writeTraceFileSync } from "@aioloop/aioloop/trace";
 * startTrace();
 * stopTrace();
 * const path = Deno.makeTempFileSync({ suffix: ".json" });
 * writeTraceFileSync(path);
 * assertEquals(Array.isArray(JSON.parse(Deno.readTextFileSync(path)).traceEvents), true);
 * Deno.removeSync(path);
 * ```
 */
export function writeTraceFileSync(path: string | URL): void {
  writeJson(path, traceToJson());
}

function writeJson(path: string | URL, json: string): void {
  if (typeof path !== "string" && !(path instanceof URL)) {
    throw new TypeError(`Trace file path must be a string or URL, got ${String(path)}`);
  }
  if (path === "") throw new TypeError("Trace file path must not be empty");
  Deno.writeTextFileSync(path, json);
}

function nowNs(): number {
  return clockGettimeNs();
}

function readNames(v: NonNullable<ReturnType<typeof blockView>>): string[] {
  const cap = v.hdr[H_CAP];
  const n = Math.min(Atomics.load(v.hdr, H_NAMES), NAME_CAP);
  const base = namesOffset(cap);
  const dec = new TextDecoder();
  const out: string[] = [];
  for (let id = 0; id < n; id++) {
    const off = base + id * NAME_BYTES;
    const len = Atomics.load(v.i32, off >> 2) - 1;
    out.push(len < 0 ? `(name ${id})` : dec.decode(v.u8.slice(off + 4, off + 4 + len)));
  }
  return out;
}

function buildDocument(): TraceDocument {
  const doc: TraceDocument = {
    traceEvents: [],
    displayTimeUnit: "ns",
    otherData: { clock: "CLOCK_MONOTONIC", dropped: 0, version: "aioloop trace 1" },
  };
  const v = blockView();
  if (v === null || sessionGen < 0) return doc;
  view();
  const h = v.hdr;
  const w = Atomics.load(h, H_IDX);
  const cap = h[H_CAP];
  const count = Math.min(w & IDX_MASK, cap);
  const on = (w & ON) !== 0 && ((w >>> GEN_SHIFT) & GEN_MASK) === sessionGen;
  doc.otherData.dropped = Atomics.load(h, H_DROPPED);
  const names = readNames(v);
  const pid = Deno.pid;
  const out = doc.traceEvents;
  out.push({
    name: "process_name",
    cat: "__metadata",
    ph: "M",
    ts: 0,
    pid,
    tid: 0,
    args: { name: "aioloop" },
  });
  // Per thread: the open spans (name id << 4 | kind), to pair ends with begins.
  const stacks = new Map<number, number[]>();
  const named = new Set<number>();
  let lastTs = 0;
  const mark = sessionGen | MARK_BIT;
  for (let i = 0; i < count; i++) {
    const off = recordOffset(i);
    const w32 = off >> 2;
    if (Atomics.load(v.i32, w32 + 5) !== mark) continue; // not written (yet)
    const tsNs = v.f64[off >> 3];
    const tid = v.i32[w32 + 2];
    const meta = v.i32[w32 + 3];
    const arg = v.i32[w32 + 4];
    const phase = meta & 7;
    const kind = (meta >>> 3) & 15;
    const nameId = meta >>> 7;
    const name = names[nameId] ?? `(name ${nameId})`;
    const ts = tsNs / 1000;
    if (ts > lastTs) lastTs = ts;
    if (phase === PH_META) {
      if (!named.has(tid)) {
        named.add(tid);
        out.push({
          name: "thread_name",
          cat: "__metadata",
          ph: "M",
          ts: 0,
          pid,
          tid,
          args: { name },
        });
      }
      continue;
    }
    const [cat, argName] = KINDS[kind] ?? ["loop", null];
    let stack = stacks.get(tid);
    if (stack === undefined) stacks.set(tid, stack = []);
    if (phase === PH_E) {
      const at = stack.lastIndexOf(nameId * 16 + kind);
      if (at < 0) continue; // began before the start
      // Spans an exception left open inside this one end with it.
      while (stack.length > at) out.push(endOf(stack.pop()!, names, ts, pid, tid));
      continue;
    }
    const e: TraceEvent = { name, cat, ph: PHASES[phase] as TraceEvent["ph"], ts, pid, tid };
    if (phase === PH_B) stack.push(nameId * 16 + kind);
    if (phase === PH_I) e.s = "t";
    if (phase === PH_FLOW_S || phase === PH_FLOW_F) {
      e.id = arg >>> 0;
      if (phase === PH_FLOW_F) e.bp = "e";
    } else if (argName !== null) e.args = { [argName]: arg };
    out.push(e);
  }
  // Spans still open end at the stop (or now, while recording).
  const endTs = on || stopNs === 0
    ? Math.max(lastTs, nowNs() / 1000)
    : Math.max(lastTs, stopNs / 1000);
  for (const [tid, stack] of stacks) {
    while (stack.length > 0) out.push(endOf(stack.pop()!, names, endTs, pid, tid));
  }
  return doc;
}

function endOf(open: number, names: string[], ts: number, pid: number, tid: number): TraceEvent {
  const id = Math.floor(open / 16);
  return { name: names[id] ?? `(name ${id})`, cat: KINDS[open % 16][0], ph: "E", ts, pid, tid };
}

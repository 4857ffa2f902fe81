// The recording side of the loop timeline: one SharedArrayBuffer per process
// (a header, a ring of fixed-size records, a table of names) that every
// thread of the package writes into, so one export holds all threads.
//
// Sites check the module binding `tracing` and call in only when it is true:
// with tracing off a site costs that one boolean test and allocates nothing.
// The isolate that made the buffer flips its own `tracing` at start/stop;
// Workers, which may be blocked in a synchronous poll when tracing starts,
// load the shared ON bit at their loop's wake points (traceRefresh), and any
// record made after a stop turns their `tracing` off again.
//
// Layout (little-endian Int32 words unless said):
//   header  H_WORDS words (see H_*)
//   ring    cap records of REC_BYTES: f64 ts (ns, CLOCK_MONOTONIC), i32 tid,
//           i32 meta (phase | kind << 3 | name << 7), i32 arg, i32 mark
//           (generation | MARK_BIT, stored last: 0 = not written yet)
//   names   NAME_CAP entries of NAME_BYTES: i32 length + 1 (stored last),
//           then the UTF-8 bytes
import { clockGettimeNs } from "../sys/clock.ts";
import { qemuGetThreadId } from "../thread/thread_self.ts";

const MAGIC = 0x54524331;
export const H_MAGIC = 0;
/** generation << 23 | ON | next record index (a CAS word). */
export const H_IDX = 1;
export const H_CAP = 2;
export const H_DROPPED = 3;
export const H_NAMES = 4;
const H_WORDS = 8;
const HEADER_BYTES = H_WORDS * 4;

export const REC_BYTES = 24;
export const REC_WORDS = REC_BYTES / 4;
export const NAME_BYTES = 64;
export const NAME_CAP = 4096;
export const IDX_MASK = (1 << 22) - 1;
export const ON = 1 << 22;
export const GEN_SHIFT = 23;
export const GEN_MASK = 0xff;
export const MARK_BIT = 0x100;
/** Largest ring, in records (the index field's range). */
export const MAX_CAPACITY = IDX_MASK;
/** Records of a ring made without a size (6 MiB; untouched pages cost no memory). */
export const DEFAULT_CAPACITY = 1 << 18;

// Phases (the trace-event format's `ph`).
export const PH_B = 1;
export const PH_E = 2;
export const PH_I = 3;
export const PH_FLOW_S = 4;
export const PH_FLOW_F = 5;
export const PH_META = 6;

// Kinds (the export's `cat`, and the name of the `arg`).
export const K_META = 0;
export const K_LOOP = 1;
export const K_WAIT = 2;
export const K_BH = 3;
export const K_FD = 4;
export const K_TIMER = 5;
export const K_POOL = 6;
export const K_REQUEST = 7;
export const K_CPU = 8;
export const K_USER = 9;
export const K_GSOURCE = 10;

/** Per kind: the export's category and what its argument is (null: none). */
export const KINDS: ReadonlyArray<readonly [string, string | null]> = [
  ["__metadata", null],
  ["loop", null],
  ["wait", "timeout_us"],
  ["bh", null],
  ["fd", "fd"],
  ["timer", "clock"],
  ["thread_pool", "request"],
  ["iothread", "slot"],
  ["cpus", "cpu"],
  ["user", "arg"],
  ["glib", null],
];

/** Whether this isolate records. The only thing a site tests. */
export let tracing = false;

let block: SharedArrayBuffer | null = null;
let hdr: Int32Array | null = null;
let i32: Int32Array | null = null;
let f64: Float64Array | null = null;
let u8: Uint8Array | null = null;
/** Whether this isolate made the buffer (only the owner starts and stops). */
let owner = false;
/** Whether the buffer was handed to a Worker (it can no longer be resized). */
let handedOut = false;

// Names: local ids (per isolate, no shared memory) and their shared ids.
const localIds = new Map<string, number>();
const localNames: string[] = [];
let sharedIds: number[] = [];
let threadName = "main";
let threadNameGen = -1;

/** The isolate's id for a name (no shared memory is touched). */
export function traceName(name: string): number {
  let id = localIds.get(name);
  if (id === undefined) {
    id = localNames.length;
    localNames.push(name);
    localIds.set(name, id);
  }
  return id;
}

/** Names this thread in the export (`thread_name` metadata). */
export function traceThreadName(name: string): void {
  threadName = name;
  threadNameGen = -1;
}

function bytesFor(cap: number): number {
  return HEADER_BYTES + cap * REC_BYTES + NAME_CAP * NAME_BYTES;
}

function attach(sab: SharedArrayBuffer): void {
  block = sab;
  hdr = new Int32Array(sab, 0, H_WORDS);
  i32 = new Int32Array(sab);
  f64 = new Float64Array(sab);
  u8 = new Uint8Array(sab);
  sharedIds = [];
}

/** Makes this isolate's buffer (the owner's) with room for `cap` records. */
export function createBlock(cap: number): void {
  const sab = new SharedArrayBuffer(bytesFor(cap));
  const h = new Int32Array(sab, 0, H_WORDS);
  h[H_CAP] = cap;
  h[H_MAGIC] = MAGIC;
  // Name 0 is the fallback once the table is full.
  h[H_NAMES] = 0;
  attach(sab);
  owner = true;
  handedOut = false;
  publishName("(name table full)");
}

/** The buffer, made if need be; called when a Worker is started with it. */
export function traceBlock(): SharedArrayBuffer {
  if (block === null) createBlock(DEFAULT_CAPACITY);
  handedOut = true;
  return block!;
}

/** Adopts the buffer a Worker was started with (undefined: none). */
export function traceAdopt(sab: SharedArrayBuffer | undefined, name?: string): void {
  if (name !== undefined) traceThreadName(name);
  if (sab === undefined || sab === block) return;
  if (!(sab instanceof SharedArrayBuffer) || new Int32Array(sab, 0, 1)[0] !== MAGIC) {
    throw new TypeError("Not a trace buffer: pass what traceBlock() returned");
  }
  attach(sab);
  owner = false;
  handedOut = true;
  traceRefresh();
}

/** Loads the shared ON bit into `tracing` (Workers, at their wake points). */
export function traceRefresh(): void {
  if (hdr !== null) tracing = (Atomics.load(hdr, H_IDX) & ON) !== 0;
}

/** Sets this isolate's flag (the owner, at start and stop). */
export function setTracing(on: boolean): void {
  tracing = on;
}

/** The owner's view: the buffer's state, for trace.ts. */
export interface BlockView {
  readonly hdr: Int32Array;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  readonly u8: Uint8Array;
  readonly owner: boolean;
  readonly handedOut: boolean;
}

/** The buffer as trace.ts reads it, or null if none was made. */
export function blockView(): BlockView | null {
  if (block === null) return null;
  return { hdr: hdr!, i32: i32!, f64: f64!, u8: u8!, owner, handedOut };
}

function publishName(name: string): number {
  const h = hdr!;
  const id = Atomics.add(h, H_NAMES, 1);
  if (id >= NAME_CAP) return 0;
  let bytes = new TextEncoder().encode(name);
  if (bytes.length > NAME_BYTES - 4) bytes = bytes.subarray(0, NAME_BYTES - 4);
  const off = HEADER_BYTES + h[H_CAP] * REC_BYTES + id * NAME_BYTES;
  u8!.set(bytes, off + 4);
  Atomics.store(i32!, off >> 2, bytes.length + 1);
  return id;
}

/** Byte offset of the name table. */
export function namesOffset(cap: number): number {
  return HEADER_BYTES + cap * REC_BYTES;
}

/** Byte offset of record `i`. */
export function recordOffset(i: number): number {
  return HEADER_BYTES + i * REC_BYTES;
}

function sharedName(local: number): number {
  let sid = sharedIds[local];
  if (sid === undefined) sid = sharedIds[local] = publishName(localNames[local]);
  return sid;
}

/**
 * Appends one record. Turns this isolate's `tracing` off if the session has
 * ended; counts a drop when the ring is full.
 */
export function traceRecord(phase: number, kind: number, name: number, arg: number): void {
  traceRecordPair(phase, kind, name, arg, 0, 0);
}

/**
 * traceRecord, then (if `phase2` is not 0) a second record of the same name
 * at the same instant: a flow's end point then sits on the event it binds to.
 */
function traceRecordPair(
  phase: number,
  kind: number,
  name: number,
  arg: number,
  phase2: number,
  arg2: number,
): void {
  const h = hdr;
  if (h === null) {
    tracing = false;
    return;
  }
  const ts = clockGettimeNs();
  const tid = qemuGetThreadId();
  const w0 = Atomics.load(h, H_IDX);
  if ((w0 & ON) === 0) {
    tracing = false;
    return;
  }
  const gen = (w0 >>> GEN_SHIFT) & GEN_MASK;
  if (threadNameGen !== gen) {
    threadNameGen = gen;
    put(h, gen, ts, tid, PH_META | (K_META << 3) | (sharedName(traceName(threadName)) << 7), 0);
  }
  const sid = sharedName(name);
  put(h, gen, ts, tid, phase | (kind << 3) | (sid << 7), arg);
  if (phase2 !== 0) put(h, gen, ts, tid, phase2 | (kind << 3) | (sid << 7), arg2);
}

function put(h: Int32Array, gen: number, ts: number, tid: number, meta: number, arg: number): void {
  const cap = h[H_CAP];
  let w = Atomics.load(h, H_IDX);
  let idx: number;
  for (;;) {
    if ((w & ON) === 0 || ((w >>> GEN_SHIFT) & GEN_MASK) !== gen) return;
    idx = w & IDX_MASK;
    if (idx >= cap) {
      Atomics.add(h, H_DROPPED, 1);
      return;
    }
    const seen = Atomics.compareExchange(h, H_IDX, w, w + 1);
    if (seen === w) break;
    w = seen;
  }
  const off = recordOffset(idx);
  const w32 = off >> 2;
  f64![off >> 3] = ts;
  const a = i32!;
  a[w32 + 2] = tid;
  a[w32 + 3] = meta;
  a[w32 + 4] = arg | 0;
  Atomics.store(a, w32 + 5, gen | MARK_BIT);
}

/** A span begins on this thread. */
export function traceBegin(kind: number, name: number, arg = 0): void {
  traceRecord(PH_B, kind, name, arg);
}

/** The innermost span named `name` ends on this thread. */
export function traceEnd(kind: number, name: number): void {
  traceRecord(PH_E, kind, name, 0);
}

/** A point in time on this thread. */
export function traceInstant(kind: number, name: number, arg = 0): void {
  traceRecord(PH_I, kind, name, arg);
}

/** Where a flow (an arrow in the viewer) leaves this thread; `id` pairs it. */
export function traceFlowOut(kind: number, name: number, id: number): void {
  traceRecord(PH_FLOW_S, kind, name, id);
}

/** Where a flow arrives on this thread. */
export function traceFlowIn(kind: number, name: number, id: number): void {
  traceRecord(PH_FLOW_F, kind, name, id);
}

/**
 * Calls `fn.call(self, a, b)` inside a span; the span ends even if it throws.
 * Sites call it only when tracing, and call `fn` directly otherwise.
 */
export function traceCall<A, B, R>(
  kind: number,
  name: number,
  arg: number,
  fn: (this: unknown, a: A, b: B) => R,
  self?: unknown,
  a?: A,
  b?: B,
): R {
  traceRecord(PH_B, kind, name, arg);
  try {
    return fn.call(self, a as A, b as B);
  } finally {
    traceRecord(PH_E, kind, name, 0);
  }
}

/** Like traceCall, naming the span with a string (interned here). */
export function traceCallNamed<A, B, R>(
  kind: number,
  name: string,
  arg: number,
  fn: (this: unknown, a: A, b: B) => R,
  self?: unknown,
  a?: A,
  b?: B,
): R {
  return traceCall(kind, traceName(name), arg, fn, self, a, b);
}

/** A point in time that a flow leaves from (a request sent, a reply written). */
export function traceSend(kind: number, name: number, arg: number, flowId: number): void {
  traceRecordPair(PH_I, kind, name, arg, PH_FLOW_S, flowId);
}

/** A point in time that a flow arrives at (a request taken, a reply read). */
export function traceReceive(kind: number, name: number, arg: number, flowId: number): void {
  traceRecordPair(PH_I, kind, name, arg, PH_FLOW_F, flowId);
}

/** The flow id of a request slot of a context's channel. */
export function requestFlowId(ctxId: number, slot: number): number {
  return ((ctxId & 0xffff) * 0x10000 + (slot & 0xffff)) | 0;
}

/** traceCallNamed whose span is where the flow `flowId` arrives. */
export function traceCallFlow<A, B, R>(
  kind: number,
  name: string,
  flowId: number,
  fn: (this: unknown, a: A, b: B) => R,
  self?: unknown,
  a?: A,
  b?: B,
): R {
  const id = traceName(name);
  traceRecordPair(PH_B, kind, id, flowId, PH_FLOW_F, flowId);
  try {
    return fn.call(self, a as A, b as B);
  } finally {
    traceRecord(PH_E, kind, id, 0);
  }
}

/**
 * A Worker takes a job: refreshes `tracing` (the Worker may have slept
 * through the start), then opens the job's span, where flow `flowId` arrives.
 */
export function traceJobStart(kind: number, name: string, flowId: number): void {
  if (hdr !== null) tracing = (Atomics.load(hdr, H_IDX) & ON) !== 0;
  if (!tracing) return;
  const id = traceName(name);
  traceRecordPair(PH_B, kind, id, flowId, PH_FLOW_F, flowId);
}

/** The job's span ends; flow `flowId` leaves it for the completion. */
export function traceJobEnd(kind: number, name: string, flowId: number): void {
  const id = traceName(name);
  traceRecord(PH_FLOW_S, kind, id, flowId);
  traceRecord(PH_E, kind, id, 0);
}

/** A wait of `timeoutNs` (-1: no limit) begins; the argument is in µs. */
export function traceWaitBegin(name: number, timeoutNs: number): void {
  traceRecord(PH_B, K_WAIT, name, timeoutNs < 0 ? -1 : Math.min(timeoutNs / 1000, 0x7fffffff));
}

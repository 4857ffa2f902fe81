// The thread pool's shared memory, used by the owner and by every worker:
// the control block (QEMU's ThreadPoolAio fields that threads share, under
// pool->lock), the lock and condition variables built on Atomics, and a
// growable shared heap holding request records, work names and serialized
// values. Nothing here allocates JS objects on the hot path.
import type { MessagePort } from "node:worker_threads";
import type { RemoteBH } from "../aio/handle.ts";
import { type SabRefReader, WireReader, type WireWriter } from "../_wire/codec.ts";

/** Control block slots (Int32). */
export const C_LOCK = 0;
/** cur_threads: workers counted as existing (starting, running or idle). */
export const C_CUR = 1;
/** idle_threads. */
export const C_IDLE = 2;
/** new_threads: workers asked for and not yet created. */
export const C_NEW = 3;
/** pending_threads: workers created and not yet running. */
export const C_PENDING = 4;
export const C_MIN = 5;
export const C_MAX = 6;
/** request_cond: a sequence number; waiters sleep while it is unchanged. */
export const C_REQ_COND = 7;
/** worker_stopped: a sequence number, bumped when a worker leaves. */
export const C_STOP_COND = 8;
/**
 * The submission ring (QEMU's request list, FIFO): indices into the ring
 * buffer, counting up and wrapping at 2^32. Workers take at HEAD (a CAS);
 * the owner alone fills at TAIL.
 */
export const C_SQ_HEAD = 64;
export const C_SQ_TAIL = 80;
/** Lock-free stack of DONE records (record offsets). */
export const C_DONE = 96;
/** Idle wait before a worker above min exits (ms). */
export const C_IDLE_MS = 12;
/** Heap bump pointer (bytes). */
export const C_TOP = 13;
/** Bumped whenever a worker exits or dies: the owner then reaps. */
export const C_REAP = 14;
/** 1 once the owner freed the pool: no worker may ring it any more. */
export const C_FREED = 15;
/** Idle workers spinning before they sleep (bounded: spinning needs a core). */
export const C_SPINNERS = 17;
/**
 * Owners sleeping on C_DONE (the generic ThreadPool's wait): while non-zero,
 * pushDone wakes them. The AIO pool never sets it (its doorbell is the BH).
 */
export const C_DONE_WAITERS = 31;
/** The heap's size in bytes: views are fixed-length and remade when it changes. */
export const C_HEAP_BYTES = 18;
/**
 * Completion doorbell: 1 from a worker's first completion after the owner's
 * last drain until the owner drains again. Only the 0 -> 1 change rings the
 * owner's context, so a stream of completions costs one wake-up.
 */
export const C_RUNG = 112;
/**
 * Workers about to sleep on the request condition: the owner bumps and
 * notifies it after a submit only when this is non-zero.
 */
export const C_SLEEPERS = 128;
/**
 * 1 from a wake-up of a sleeper until a woken worker looks at the ring
 * again: submits meanwhile do not wake more (the woken one drains the ring
 * and wakes the next if work is left).
 */
export const C_WAKING = 129;
/** Free-list heads of the heap, one per size class. */
export const C_FREE_BASE = 32;
export const MIN_CLASS = 5; // 32-byte blocks
export const MAX_CLASS = 30; // 1 GiB
/**
 * Words from 64 on are the hot ones, 16 words (64 bytes) apart so that no
 * two share a cache line: the ring's head (workers) and tail (owner), the
 * DONE stack, the completion ring flag, the sleepers.
 */
export const C_SLOTS = 144;

/** QEMU's THREAD_POOL_MAX_THREADS_DEFAULT. */
export const MAX_THREADS_DEFAULT = 64;
/** QEMU's idle wait in worker_thread (10 s). */
export const IDLE_TIMEOUT_MS = 10_000;

/** Request states (enum ThreadState). */
export const QUEUED = 1;
export const ACTIVE = 2;
export const DONE = 3;

// Request record: Int32 words from the payload start.
export const R_STATE = 0;
/**
 * Who owns a queued request: its ticket (> 0) while queued; the worker
 * that takes it, or the owner that cancels it, swaps the ticket out with
 * one CAS. The ticket names the ring position, so a worker holding a stale
 * position cannot take a record reused for a later request.
 */
export const R_CLAIM = 1;
export const R_DNEXT = 3;
/** Offset of the interned work name block. */
export const R_WORK = 4;
export const R_ARG_TAG = 5;
export const R_ARG_PTR = 6;
export const R_ARG_LEN = 7;
export const R_RES_TAG = 8;
export const R_RES_PTR = 9;
export const R_RES_LEN = 10;
/** Unused (kept for layout). */
export const R_SPARE = 11;
/** Slot offset of the worker that ran the request (for its SAB inbox). */
export const R_WORKER = 12;
/** Byte offsets of the inline f64 argument and result. */
export const R_ARG_F64_BYTE = 56;
export const R_RES_F64_BYTE = 64;
export const RECORD_BYTES = 72;

// Worker slot: Int32 words from the payload start.
export const W_STATE = 0;
/** Record offset of the request it runs, or 0. */
export const W_ACTIVE = 1;
export const WORKER_SLOT_BYTES = 8;
export const W_STARTING = 0;
export const W_RUNNING = 1;
/** Left its loop normally (idle timeout, pool shrunk or freed). */
export const W_EXITED = 2;
/** Died (exit, close, uncaught error) outside the normal path. */
export const W_DEAD = 3;

// What an argument or result word holds. Values other than numbers, booleans, null and
// undefined are bytes of the wire codec (_wire/codec.ts) in a heap block.
export const TAG_UNDEFINED = 0;
/** A number, inline in the record's f64 slot. */
export const TAG_NUMBER = 4;
/** Wire-codec bytes. */
export const TAG_WIRE = 6;
/** null, false and true, inline (no bytes). */
export const TAG_NULL = 7;
export const TAG_FALSE = 8;
export const TAG_TRUE = 9;
/** Whether a value or result tag keeps its data in a heap block. */
export function tagHasBytes(tag: number): boolean {
  return tag === TAG_WIRE || tag === TAG_THREW || tag === TAG_DIED_THREW;
}
/** Results only: the job threw; the bytes hold the thrown value. */
export const TAG_THREW = 16;
/** Results only: the worker died while running the request. */
export const TAG_DIED = 17;
/**
 * Results only: the worker died of an error the job left behind (a timer
 * callback of its own that threw while it ran); the bytes hold that error.
 */
export const TAG_DIED_THREW = 21;
/** Results only: cancelled while queued. */
export const TAG_CANCELED = 18;
/** Results only: no worker could be created; the owner holds the error. */
export const TAG_SPAWN_FAILED = 19;
/** Results only: the result (and even an error about it) did not fit in the heap. */
export const TAG_NO_ROOM = 20;

/** A value ready to be stored: a tag and, by tag, a number or bytes. */
export interface Encoded {
  tag: number;
  num: number;
  bytes: Uint8Array | null;
}

/**
 * Encodes a value with `w` (numbers, booleans, null and undefined stay inline). The bytes
 * are the writer's: store them before its next use.
 */
export function encodeValue(w: WireWriter, value: unknown): Encoded {
  if (typeof value === "number") return { tag: TAG_NUMBER, num: value, bytes: null };
  if (value === undefined) return { tag: TAG_UNDEFINED, num: 0, bytes: null };
  if (value === null) return { tag: TAG_NULL, num: 0, bytes: null };
  if (typeof value === "boolean") return { tag: value ? TAG_TRUE : TAG_FALSE, num: 0, bytes: null };
  w.value(value);
  return { tag: TAG_WIRE, num: 0, bytes: w.view() };
}

/** Decodes a stored value (bytes already copied out of the heap). */
export function decodeValue(
  tag: number,
  num: number,
  bytes: Uint8Array | null,
  sabs: SabRefReader,
): unknown {
  switch (tag) {
    case TAG_UNDEFINED:
      return undefined;
    case TAG_NUMBER:
      return num;
    case TAG_NULL:
      return null;
    case TAG_FALSE:
      return false;
    case TAG_TRUE:
      return true;
    case TAG_WIRE: {
      const r = new WireReader(bytes!);
      r.sabs = sabs;
      return r.value();
    }
  }
  throw new Error(`Unknown thread pool value tag ${tag}`);
}

const HEADER_BYTES = 8;
const MAGIC_USED = 0x7a11;
const MAGIC_FREE = 0x7a12;
const SPIN = 100;

/** Initial and maximum heap sizes. */
export const HEAP_INITIAL_BYTES = 64 * 1024;
export const HEAP_MAX_BYTES = 1 << 30;

export function newControlBlock(min: number, max: number): Int32Array {
  const ctl = new Int32Array(new SharedArrayBuffer(C_SLOTS * 4));
  ctl[C_MIN] = min;
  ctl[C_MAX] = max;
  ctl[C_IDLE_MS] = IDLE_TIMEOUT_MS;
  // Offset 0 means "none": the heap starts past it.
  ctl[C_TOP] = 32;
  ctl[C_HEAP_BYTES] = HEAP_INITIAL_BYTES;
  return ctl;
}

export function newHeapBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(HEAP_INITIAL_BYTES, { maxByteLength: HEAP_MAX_BYTES });
}

// A three-state futex mutex (0 free, 1 held, 2 held with waiters), as in
// Drepper's "Futexes Are Tricky". Atomics.wait is allowed on Deno's main
// thread, so the owner uses the same lock as the workers.
export function lock(ctl: Int32Array): void {
  let c = Atomics.compareExchange(ctl, C_LOCK, 0, 1);
  if (c === 0) return;
  for (let i = 0; i < SPIN; i++) {
    c = Atomics.compareExchange(ctl, C_LOCK, 0, 1);
    if (c === 0) return;
  }
  if (c !== 2) c = Atomics.exchange(ctl, C_LOCK, 2);
  while (c !== 0) {
    Atomics.wait(ctl, C_LOCK, 2);
    c = Atomics.exchange(ctl, C_LOCK, 2);
  }
}

export function unlock(ctl: Int32Array): void {
  if (Atomics.sub(ctl, C_LOCK, 1) !== 1) {
    Atomics.store(ctl, C_LOCK, 0);
    Atomics.notify(ctl, C_LOCK, 1);
  }
}

/** qemu_cond_signal / broadcast on a sequence-number condition word. */
export function condSignal(ctl: Int32Array, index: number, count: number = 1): void {
  Atomics.add(ctl, index, 1);
  Atomics.notify(ctl, index, count);
}

/**
 * Typed views over the growable heap SharedArrayBuffer. The views are
 * fixed-length (a length-tracking view over a growable buffer costs several
 * times more per element access) and are remade when the heap's size word
 * says it grew: {@linkcode SharedHeap.sync} after taking the lock or after
 * reading an offset another thread published.
 */
export class SharedHeap {
  readonly ctl: Int32Array;
  readonly buffer: SharedArrayBuffer;
  i32: Int32Array;
  u8: Uint8Array;
  f64: Float64Array;
  #bytes: number;

  constructor(ctl: Int32Array, buffer: SharedArrayBuffer) {
    this.ctl = ctl;
    this.buffer = buffer;
    this.#bytes = Atomics.load(ctl, C_HEAP_BYTES);
    this.i32 = new Int32Array(buffer, 0, this.#bytes >> 2);
    this.u8 = new Uint8Array(buffer, 0, this.#bytes);
    this.f64 = new Float64Array(buffer, 0, this.#bytes >> 3);
  }

  /** Remakes the views if another thread grew the heap. */
  sync(): void {
    const n = Atomics.load(this.ctl, C_HEAP_BYTES);
    if (n !== this.#bytes) this.#remake(n);
  }

  #remake(n: number): void {
    this.#bytes = n;
    this.i32 = new Int32Array(this.buffer, 0, n >> 2);
    this.u8 = new Uint8Array(this.buffer, 0, n);
    this.f64 = new Float64Array(this.buffer, 0, n >> 3);
  }

  /**
   * Allocates `bytes` of payload (8-byte aligned) and returns its byte
   * offset. Caller holds the pool lock.
   */
  alloc(bytes: number): number {
    let k = MIN_CLASS;
    const need = bytes + HEADER_BYTES;
    while ((1 << k) < need) {
      if (++k > MAX_CLASS) throw new RangeError(`Thread pool value too large: ${bytes} bytes`);
    }
    this.sync();
    const ctl = this.ctl;
    let block = ctl[C_FREE_BASE + k];
    if (block !== 0) {
      const i32 = this.i32;
      ctl[C_FREE_BASE + k] = i32[(block + HEADER_BYTES) >> 2];
    } else {
      block = ctl[C_TOP];
      const end = block + (1 << k);
      if (end > this.#bytes) this.#grow(end);
      ctl[C_TOP] = end;
      this.i32[block >> 2] = k;
    }
    this.i32[(block >> 2) + 1] = MAGIC_USED;
    return block + HEADER_BYTES;
  }

  /** Returns a payload to its free list. Caller holds the pool lock. */
  free(payload: number): void {
    const block = payload - HEADER_BYTES;
    this.sync();
    const i32 = this.i32;
    if (i32[(block >> 2) + 1] !== MAGIC_USED) {
      throw new Error(`Thread pool heap corrupted: bad free at ${payload}`);
    }
    const k = i32[block >> 2];
    i32[(block >> 2) + 1] = MAGIC_FREE;
    i32[payload >> 2] = this.ctl[C_FREE_BASE + k];
    this.ctl[C_FREE_BASE + k] = block;
  }

  #grow(end: number): void {
    const max = this.buffer.maxByteLength;
    if (end > max) throw new RangeError(`Thread pool shared heap is full (${max} bytes)`);
    let size = this.buffer.byteLength * 2;
    while (size < end) size *= 2;
    size = Math.min(size, max);
    this.buffer.grow(size);
    Atomics.store(this.ctl, C_HEAP_BYTES, size);
    this.#remake(size);
  }

  /** Copies bytes into a new block; returns its offset. Caller holds the lock. */
  store(bytes: Uint8Array): number {
    const p = this.alloc(bytes.length);
    this.u8.set(bytes, p);
    return p;
  }

  /** A copy of `len` bytes at `p` (node:v8 reads it after the block is freed). */
  copyOut(p: number, len: number): Uint8Array {
    if (p + len > this.u8.length) this.sync();
    return this.u8.slice(p, p + len);
  }
}

/** R_CLAIM values besides tickets. */
export const CLAIM_TAKEN = -1;
export const CLAIM_CANCELED = -2;
/** Queued in the owner's overflow list (the ring was full), no ticket yet. */
export const CLAIM_PENDING = 0x7fffffff;

/** Ring slots (record offsets); a power of two. */
export const SQ_SLOTS = 1 << 16;
const SQ_MASK = SQ_SLOTS - 1;

/** The ticket of ring position `index`. */
export function ticketOf(index: number): number {
  return (index & 0x3fffffff) + 1;
}

/** A fixed-length submission ring. */
export function newSubmitRing(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(SQ_SLOTS * 4));
}

/** Whether the ring holds no position to take. */
export function ringEmpty(ctl: Int32Array): boolean {
  return Atomics.load(ctl, C_SQ_HEAD) === Atomics.load(ctl, C_SQ_TAIL);
}

/**
 * Owner side: appends a record at the tail, or returns false when the ring
 * is full. The record's fields are published by the tail store.
 */
export function ringPush(heap: SharedHeap, sq: Int32Array, rec: number): boolean {
  const ctl = heap.ctl;
  const t = Atomics.load(ctl, C_SQ_TAIL);
  if (((t - Atomics.load(ctl, C_SQ_HEAD)) >>> 0) >= SQ_SLOTS) return false;
  heap.i32[(rec >> 2) + R_CLAIM] = ticketOf(t);
  sq[t & SQ_MASK] = rec;
  Atomics.store(ctl, C_SQ_TAIL, (t + 1) | 0);
  return true;
}

/**
 * Takes the oldest queued request (any thread, no lock); 0 when the ring
 * is empty. Cancelled positions are skipped.
 */
export function takeQueued(heap: SharedHeap, sq: Int32Array): number {
  const ctl = heap.ctl;
  for (;;) {
    const h = Atomics.load(ctl, C_SQ_HEAD);
    if (h === Atomics.load(ctl, C_SQ_TAIL)) return 0;
    // Read before the CAS: the owner refills this slot only once HEAD passed it.
    const rec = sq[h & SQ_MASK];
    if (Atomics.compareExchange(ctl, C_SQ_HEAD, h, (h + 1) | 0) !== h) continue;
    // The whole record must be in view (it may straddle an older heap end).
    if (rec + RECORD_BYTES > heap.i32.length << 2) heap.sync();
    const ticket = ticketOf(h);
    if (Atomics.compareExchange(heap.i32, (rec >> 2) + R_CLAIM, ticket, CLAIM_TAKEN) === ticket) {
      return rec;
    }
  }
}

/** How many ring positions still hold a request no one took or cancelled. */
export function ringQueued(heap: SharedHeap, sq: Int32Array): number {
  const ctl = heap.ctl;
  heap.sync();
  let n = 0;
  for (
    let h = Atomics.load(ctl, C_SQ_HEAD), t = Atomics.load(ctl, C_SQ_TAIL);
    h !== t;
    h = (h + 1) | 0
  ) {
    const rec = sq[h & SQ_MASK];
    if (Atomics.load(heap.i32, (rec >> 2) + R_CLAIM) === ticketOf(h)) n++;
  }
  return n;
}

/** Wakes one sleeping worker after a submit, if any sleeps. */
export function wakeOne(ctl: Int32Array): void {
  if (
    Atomics.load(ctl, C_SLEEPERS) > 0 && Atomics.load(ctl, C_WAKING) === 0 &&
    Atomics.exchange(ctl, C_WAKING, 1) === 0
  ) {
    Atomics.add(ctl, C_REQ_COND, 1);
    Atomics.notify(ctl, C_REQ_COND, 1);
  }
}

/**
 * Publishes a DONE record to the owner (any thread, lock not needed), and
 * wakes an owner sleeping on C_DONE if one said so (C_DONE_WAITERS).
 */
export function pushDone(heap: SharedHeap, rec: number): void {
  const ctl = heap.ctl, i32 = heap.i32;
  for (;;) {
    const head = Atomics.load(ctl, C_DONE);
    Atomics.store(i32, (rec >> 2) + R_DNEXT, head);
    if (Atomics.compareExchange(ctl, C_DONE, head, rec) === head) break;
  }
  // Seq-cst after the publishing CAS: an owner that set the flag and then
  // saw C_DONE empty is woken (or sees this record when it re-checks).
  if (Atomics.load(ctl, C_DONE_WAITERS) !== 0) Atomics.notify(ctl, C_DONE);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A work name block: [byte length] then UTF-8 `module\nname`. Caller holds the lock. */
export function storeWorkName(heap: SharedHeap, key: string): number {
  const bytes = encoder.encode(key);
  const p = heap.alloc(4 + bytes.length);
  heap.i32[p >> 2] = bytes.length;
  heap.u8.set(bytes, p + 4);
  return p;
}

export function loadWorkName(heap: SharedHeap, p: number): { module: string; name: string } {
  heap.sync();
  const len = heap.i32[p >> 2];
  const s = decoder.decode(heap.u8.slice(p + 4, p + 4 + len));
  const nl = s.indexOf("\n");
  return { module: s.slice(0, nl), name: s.slice(nl + 1) };
}

/** What a worker is started with (its workerData). */
export interface WorkerInit {
  readonly ctl: SharedArrayBuffer;
  readonly heap: SharedArrayBuffer;
  /** Byte offset of this worker's slot in the heap. */
  readonly slot: number;
  readonly completionBh: RemoteBH;
  readonly newThreadBh: RemoteBH;
  /** The submission ring. */
  readonly sq: SharedArrayBuffer;
  /** This worker's end of its channel with the owner (SharedArrayBuffers). */
  readonly port: MessagePort;
  /** SharedArrayBuffers the owner introduced before this worker existed. */
  readonly sabs: Array<[number, SharedArrayBuffer]>;
  /** The process's trace buffer (trace/_state.ts). */
  readonly trace?: SharedArrayBuffer;
}

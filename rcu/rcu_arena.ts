/**
 * Shared-memory records for RCU-protected data: JS objects cannot be shared
 * between Workers, so the records an RCU list links live in one
 * SharedArrayBuffer and an index is the pointer (0 is NULL).
 *
 * @module
 */
import { QemuMutex } from "../thread/mutex.ts";
import { callRcu } from "./call_rcu.ts";

const A_MAGIC = 0x52434141; // "RCAA"
// Header words.
const H_MAGIC = 0;
const H_NODES = 1;
const H_DATA = 2;
const H_FREE = 4;
const H_NFREE = 5;
/** The allocator's QemuMutex (two words). */
const H_LOCK = 6;
/** Words before node 0. */
export const ARENA_HEADER = 8;

// Node words. NEXT/PREV are the list links; GEN counts reclamations.
/** The forward link (index of the next node, 0 = none). */
export const N_NEXT = 0;
/** The back link (a word address or node index, by list type). */
export const N_PREV = 1;
const N_GEN = 2;
const N_STATE = 3;
const N_FREE_NEXT = 4;
const N_DATA = 5;

const ST_FREE = 0;
const ST_USED = 1;

/** Options for {@linkcode RcuArena.create}. */
export interface RcuArenaOptions {
  /** How many records the arena holds (list heads included). Default 1024. */
  nodes?: number;
  /** Int32 payload words per record. Default 2. */
  dataWords?: number;
}

/** A structured-cloneable handle on an {@linkcode RcuArena}. */
export interface RcuArenaHandle {
  /** The arena's shared memory. */
  readonly buffer: SharedArrayBuffer;
}

/**
 * A fixed pool of records in shared memory, each with two link words, a
 * generation word and `dataWords` Int32 payload words. Records are allocated
 * and freed from any isolate; {@linkcode RcuArena.prototype.freeRcu} frees
 * after a grace period, as `g_free_rcu` does. Freeing bumps the record's
 * generation, so a reader can detect that a record it holds was reclaimed
 * under it (a use-after-free that index reuse would otherwise mask).
 *
 * Counterpart: the heap (g_new / g_free) behind QEMU's RCU data.
 * Thread: any thread.
 *
 * @example Allocate, write, free
 * ```ts
 * import { RcuArena } from "@aioloop/aioloop/rcu";
 * import { assertEquals } from "@std/assert";
 * const arena = RcuArena.create({ nodes: 8, dataWords: 1 });
 * const n = arena.alloc();
 * arena.store(n, 0, 42);
 * assertEquals(arena.load(n, 0), 42);
 * const gen = arena.generation(n);
 * arena.free(n);
 * assertEquals(arena.generation(n), gen + 1);
 * ```
 */
export class RcuArena {
  /** The arena's words (header, then the records). */
  readonly words: Int32Array;
  readonly #nodeWords: number;
  readonly #dataWords: number;
  readonly #nodes: number;
  readonly #lock: QemuMutex;

  private constructor(words: Int32Array) {
    this.words = words;
    this.#lock = new QemuMutex({ sab: words.buffer as SharedArrayBuffer, index: H_LOCK });
    this.#nodes = words[H_NODES];
    this.#dataWords = words[H_DATA];
    this.#nodeWords = N_DATA + this.#dataWords;
  }

  /**
   * Makes an arena with every record free.
   *
   * @param options Size and payload width.
   * @returns The arena.
   * @throws {RangeError} If a size is not a positive integer.
   */
  static create(options: RcuArenaOptions = {}): RcuArena {
    const nodes = options.nodes ?? 1024;
    const data = options.dataWords ?? 2;
    if (!Number.isInteger(nodes) || nodes < 1 || nodes > 1 << 24) {
      throw new RangeError(`RcuArena.create: nodes must be an integer in 1..2^24, got ${nodes}`);
    }
    if (!Number.isInteger(data) || data < 0 || data > 64) {
      throw new RangeError(`RcuArena.create: dataWords must be an integer in 0..64, got ${data}`);
    }
    const nw = N_DATA + data;
    // Record 0 is NULL and never handed out.
    const w = new Int32Array(new SharedArrayBuffer((ARENA_HEADER + (nodes + 1) * nw) * 4));
    w[H_MAGIC] = A_MAGIC;
    w[H_NODES] = nodes;
    w[H_DATA] = data;
    // Free list in index order, so the first allocations are 1, 2, 3...
    for (let i = 1; i <= nodes; i++) {
      w[ARENA_HEADER + i * nw + N_FREE_NEXT] = i < nodes ? i + 1 : 0;
    }
    w[H_FREE] = 1;
    w[H_NFREE] = nodes;
    QemuMutex.create({ sab: w.buffer as SharedArrayBuffer, index: H_LOCK });
    return new RcuArena(w);
  }

  /**
   * Opens an arena from a handle (in a Worker).
   *
   * @param handle The handle from {@linkcode RcuArena.prototype.handle}.
   * @returns A view on the same records.
   * @throws {TypeError} If the handle is not an arena.
   */
  static fromHandle(handle: RcuArenaHandle): RcuArena {
    const b = handle?.buffer;
    if (!(b instanceof SharedArrayBuffer) || b.byteLength < ARENA_HEADER * 4) {
      throw new TypeError(
        "RcuArena.fromHandle: handle.buffer is not an RcuArena; pass arena.handle",
      );
    }
    const w = new Int32Array(b);
    if (w[H_MAGIC] !== A_MAGIC) {
      throw new TypeError(
        "RcuArena.fromHandle: handle.buffer is not an RcuArena; pass arena.handle",
      );
    }
    return new RcuArena(w);
  }

  /** The handle to post to a Worker. */
  get handle(): RcuArenaHandle {
    return { buffer: this.words.buffer as SharedArrayBuffer };
  }

  /** How many records the arena holds. */
  get capacity(): number {
    return this.#nodes;
  }

  /** How many records are free now. */
  get freeCount(): number {
    return Atomics.load(this.words, H_NFREE);
  }

  /**
   * The word address of a record's first word (links are read there).
   *
   * @param node A record index.
   * @returns Its base word in {@linkcode RcuArena.prototype.words}.
   */
  base(node: number): number {
    return ARENA_HEADER + node * this.#nodeWords;
  }

  #check(node: number, what: string): number {
    if (!Number.isInteger(node) || node < 1 || node > this.#nodes) {
      throw new RangeError(
        `${what}: node must be a record index in 1..${this.#nodes}, got ${node}`,
      );
    }
    return ARENA_HEADER + node * this.#nodeWords;
  }

  /**
   * Takes a free record; its links and payload are zero.
   *
   * @returns The record index.
   * @throws {RangeError} If no record is free.
   */
  alloc(): number {
    const w = this.words;
    this.#lock.lock();
    const n = w[H_FREE];
    if (n === 0) {
      this.#lock.unlock();
      throw new RangeError(
        `RcuArena.alloc: all ${this.#nodes} records are in use; free records or create a larger arena`,
      );
    }
    const b = ARENA_HEADER + n * this.#nodeWords;
    w[H_FREE] = w[b + N_FREE_NEXT];
    w[H_NFREE]--;
    this.#lock.unlock();
    Atomics.store(w, b + N_NEXT, 0);
    Atomics.store(w, b + N_PREV, 0);
    for (let k = 0; k < this.#dataWords; k++) Atomics.store(w, b + N_DATA + k, 0);
    Atomics.store(w, b + N_STATE, ST_USED);
    return n;
  }

  /**
   * Returns a record to the free list now and bumps its generation. Only
   * safe once no reader can hold it: after a grace period.
   *
   * @param node The record.
   * @throws {Error} If the record is already free (a double free).
   */
  free(node: number): void {
    const w = this.words;
    const b = this.#check(node, "RcuArena.free");
    if (Atomics.compareExchange(w, b + N_STATE, ST_USED, ST_FREE) !== ST_USED) {
      throw new Error(`RcuArena.free: record ${node} is already free (double free)`);
    }
    Atomics.add(w, b + N_GEN, 1);
    this.#lock.lock();
    w[b + N_FREE_NEXT] = w[H_FREE];
    w[H_FREE] = node;
    w[H_NFREE]++;
    this.#lock.unlock();
  }

  /**
   * Frees a record after a grace period, from this isolate's call_rcu queue.
   *
   * Counterpart: g_free_rcu().
   *
   * @param node The record, already unlinked from every RCU list.
   */
  freeRcu(node: number): void {
    this.#check(node, "RcuArena.freeRcu");
    callRcu(() => this.free(node));
  }

  /**
   * The record's generation: bumped by every free.
   *
   * @param node The record.
   * @returns The generation.
   */
  generation(node: number): number {
    return Atomics.load(this.words, this.#check(node, "RcuArena.generation") + N_GEN);
  }

  /**
   * Reads payload word `k` of a record.
   *
   * @param node The record.
   * @param k The payload word.
   * @returns Its value.
   */
  load(node: number, k: number): number {
    return Atomics.load(this.words, this.#data(node, k, "RcuArena.load"));
  }

  /**
   * Writes payload word `k` of a record.
   *
   * @param node The record.
   * @param k The payload word.
   * @param value The Int32 value.
   */
  store(node: number, k: number, value: number): void {
    Atomics.store(this.words, this.#data(node, k, "RcuArena.store"), value);
  }

  #data(node: number, k: number, what: string): number {
    const b = this.#check(node, what);
    if (!Number.isInteger(k) || k < 0 || k >= this.#dataWords) {
      throw new RangeError(
        `${what}: k must be a payload word in 0..${this.#dataWords - 1}, got ${k}`,
      );
    }
    return b + N_DATA + k;
  }
}

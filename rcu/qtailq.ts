/**
 * QTAILQ with RCU: a doubly linked tail queue; the back links form QEMU's
 * circular `tql_prev` chain through the head.
 *
 * @module
 */
import { elmBase, openHandle } from "./_list_util.ts";
import { N_NEXT, N_PREV, type RcuArena } from "./rcu_arena.ts";
import { RcuList, type RcuListHandle } from "./rcu_list.ts";

/**
 * An RCU-protected QTAILQ over arena records, with QEMU's publish order.
 * An element's back link is the index of the record before it (the head
 * for the first); the head's back link is the last element (the head itself
 * when empty), as `tqh_circ.tql_prev`. Removal clears the element's back
 * link, which {@linkcode RcuQTailQ.prototype.inUse} reads.
 *
 * Counterpart: QTAILQ_*_RCU of rcu_queue.h.
 * Thread: readers any thread (in a read section); writers one at a time.
 *
 * @example Both ends
 * ```ts
 * import { RcuArena, RcuQTailQ } from "@aioloop/aioloop/rcu";
 * import { assertEquals } from "@std/assert";
 * const arena = RcuArena.create({ nodes: 8 });
 * const q = RcuQTailQ.create(arena);
 * const a = arena.alloc(), b = arena.alloc(), c = arena.alloc();
 * q.insertTail(b);
 * q.insertHead(a);
 * q.insertAfter(b, c);
 * assertEquals([...q], [a, b, c]);
 * assertEquals(q.last(), c);
 * q.remove(c);
 * assertEquals(q.inUse(c), false);
 * assertEquals(q.verify(), 2);
 * ```
 */
export class RcuQTailQ extends RcuList {
  /**
   * Makes an empty queue whose head is a new record of `arena`.
   *
   * Counterpart: QTAILQ_INIT().
   *
   * @param arena The arena.
   * @returns The queue.
   */
  static create(arena: RcuArena): RcuQTailQ {
    const q = new RcuQTailQ(arena, arena.alloc());
    Atomics.store(arena.words, arena.base(q.head) + N_PREV, q.head);
    return q;
  }

  /**
   * Opens a queue from its handle (in a Worker).
   *
   * @param handle The handle from `q.handle`.
   * @returns A view on the same queue.
   */
  static fromHandle(handle: RcuListHandle): RcuQTailQ {
    return new RcuQTailQ(openHandle(handle, "RcuQTailQ.fromHandle"), handle.head);
  }

  #prevOf(node: number): number {
    return this.arena.base(node) + N_PREV;
  }

  /**
   * The last element (0 when empty). Writer side: back links are not safe
   * for readers.
   *
   * Counterpart: QTAILQ_LAST().
   *
   * @returns The element index or 0.
   */
  last(): number {
    const l = Atomics.load(this.arena.words, this.#prevOf(this.head));
    return l === this.head ? 0 : l;
  }

  /**
   * Whether `elm` is linked (its back link is set).
   *
   * Counterpart: QTAILQ_IN_USE().
   *
   * @param elm A record.
   * @returns True while the element is in a queue.
   */
  inUse(elm: number): boolean {
    const e = elmBase(this.arena, elm, "RcuQTailQ.inUse");
    return Atomics.load(this.arena.words, e + N_PREV) !== 0;
  }

  /**
   * Inserts `elm` at the head.
   *
   * Counterpart: QTAILQ_INSERT_HEAD_RCU().
   *
   * @param elm A record not in any list.
   */
  insertHead(elm: number): void {
    const w = this.arena.words;
    const e = elmBase(this.arena, elm, "RcuQTailQ.insertHead");
    const nx = Atomics.load(w, this.headLink);
    Atomics.store(w, e + N_NEXT, nx);
    Atomics.store(w, nx !== 0 ? this.#prevOf(nx) : this.#prevOf(this.head), elm);
    Atomics.store(w, this.headLink, elm); // publish
    Atomics.store(w, e + N_PREV, this.head);
  }

  /**
   * Inserts `elm` at the tail.
   *
   * Counterpart: QTAILQ_INSERT_TAIL_RCU().
   *
   * @param elm A record not in any list.
   */
  insertTail(elm: number): void {
    const w = this.arena.words;
    const e = elmBase(this.arena, elm, "RcuQTailQ.insertTail");
    const last = Atomics.load(w, this.#prevOf(this.head));
    Atomics.store(w, e + N_NEXT, 0);
    Atomics.store(w, e + N_PREV, last);
    Atomics.store(w, this.arena.base(last) + N_NEXT, elm); // publish
    Atomics.store(w, this.#prevOf(this.head), elm);
  }

  /**
   * Inserts `elm` after `listelm`.
   *
   * Counterpart: QTAILQ_INSERT_AFTER_RCU().
   *
   * @param listelm An element of this queue.
   * @param elm A record not in any list.
   */
  insertAfter(listelm: number, elm: number): void {
    const w = this.arena.words;
    const l = elmBase(this.arena, listelm, "RcuQTailQ.insertAfter");
    const e = elmBase(this.arena, elm, "RcuQTailQ.insertAfter");
    const nx = Atomics.load(w, l + N_NEXT);
    Atomics.store(w, e + N_NEXT, nx);
    Atomics.store(w, nx !== 0 ? this.#prevOf(nx) : this.#prevOf(this.head), elm);
    Atomics.store(w, l + N_NEXT, elm); // publish
    Atomics.store(w, e + N_PREV, listelm);
  }

  /**
   * Inserts `elm` before `listelm`.
   *
   * Counterpart: QTAILQ_INSERT_BEFORE_RCU().
   *
   * @param listelm An element of this queue.
   * @param elm A record not in any list.
   */
  insertBefore(listelm: number, elm: number): void {
    const w = this.arena.words;
    const l = elmBase(this.arena, listelm, "RcuQTailQ.insertBefore");
    const e = elmBase(this.arena, elm, "RcuQTailQ.insertBefore");
    const prev = Atomics.load(w, l + N_PREV);
    Atomics.store(w, e + N_PREV, prev);
    Atomics.store(w, e + N_NEXT, listelm);
    Atomics.store(w, this.arena.base(prev) + N_NEXT, elm); // publish
    Atomics.store(w, l + N_PREV, elm);
  }

  /**
   * Unlinks `elm` and clears its back link.
   *
   * Counterpart: QTAILQ_REMOVE_RCU().
   *
   * @param elm An element of this queue.
   * @throws {Error} If `elm` is not linked.
   */
  remove(elm: number): void {
    const w = this.arena.words;
    const e = elmBase(this.arena, elm, "RcuQTailQ.remove");
    const prev = Atomics.load(w, e + N_PREV);
    if (prev === 0) throw new Error(`RcuQTailQ.remove: record ${elm} is not in a queue`);
    const nx = Atomics.load(w, e + N_NEXT);
    Atomics.store(w, nx !== 0 ? this.#prevOf(nx) : this.#prevOf(this.head), prev);
    Atomics.store(w, this.arena.base(prev) + N_NEXT, nx);
    Atomics.store(w, e + N_PREV, 0);
  }

  /**
   * Checks the circular back links (each names its predecessor, the head's
   * names the last element) and returns the length. An aioloop extra for
   * tests.
   *
   * Thread: the writer (or with writers stopped).
   *
   * @returns The number of elements.
   * @throws {Error} If a back link is wrong or the queue has a cycle.
   */
  verify(): number {
    const w = this.arena.words;
    let prev = this.head;
    let n = 0;
    for (let e = this.first(); e !== 0; e = this.next(e)) {
      if (Atomics.load(w, this.#prevOf(e)) !== prev) {
        throw new Error(`RcuQTailQ.verify: tql_prev of record ${e} does not name its predecessor`);
      }
      prev = e;
      if (++n > this.arena.capacity) throw new Error("RcuQTailQ.verify: the queue has a cycle");
    }
    if (Atomics.load(w, this.#prevOf(this.head)) !== prev) {
      throw new Error("RcuQTailQ.verify: the head's tql_prev does not name the last element");
    }
    return n;
  }
}

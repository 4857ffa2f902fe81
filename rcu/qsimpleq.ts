/**
 * QSIMPLEQ with RCU: a singly linked queue whose head also keeps the address
 * of the last link (QEMU's `sqh_last`), for O(1) tail insertion.
 *
 * @module
 */
import { elmBase, openHandle } from "./_list_util.ts";
import { N_NEXT, N_PREV, type RcuArena } from "./rcu_arena.ts";
import { RcuList, type RcuListHandle } from "./rcu_list.ts";

/**
 * An RCU-protected QSIMPLEQ over arena records, with QEMU's publish order.
 * The head's back-link word holds `sqh_last`: the word address of the last
 * element's next link (the head's own link when empty).
 *
 * Counterpart: QSIMPLEQ_*_RCU of rcu_queue.h.
 * Thread: readers any thread (in a read section); writers one at a time.
 *
 * @example A FIFO
 * ```ts
 * import { RcuArena, RcuQSimpleQ } from "@aioloop/aioloop/rcu";
 * import { assertEquals } from "@std/assert";
 * const arena = RcuArena.create({ nodes: 8 });
 * const q = RcuQSimpleQ.create(arena);
 * const a = arena.alloc(), b = arena.alloc();
 * q.insertTail(a);
 * q.insertTail(b);
 * q.removeHead();
 * assertEquals([...q], [b]);
 * assertEquals(q.verify(), 1);
 * ```
 */
export class RcuQSimpleQ extends RcuList {
  /**
   * Makes an empty queue whose head is a new record of `arena`.
   *
   * Counterpart: QSIMPLEQ_INIT().
   *
   * @param arena The arena.
   * @returns The queue.
   */
  static create(arena: RcuArena): RcuQSimpleQ {
    const q = new RcuQSimpleQ(arena, arena.alloc());
    Atomics.store(arena.words, arena.base(q.head) + N_PREV, q.headLink);
    return q;
  }

  /**
   * Opens a queue from its handle (in a Worker).
   *
   * @param handle The handle from `q.handle`.
   * @returns A view on the same queue.
   */
  static fromHandle(handle: RcuListHandle): RcuQSimpleQ {
    return new RcuQSimpleQ(openHandle(handle, "RcuQSimpleQ.fromHandle"), handle.head);
  }

  get #lastIdx(): number {
    return this.arena.base(this.head) + N_PREV;
  }

  /**
   * Inserts `elm` at the head.
   *
   * Counterpart: QSIMPLEQ_INSERT_HEAD_RCU().
   *
   * @param elm A record not in any list.
   */
  insertHead(elm: number): void {
    const w = this.arena.words;
    const e = elmBase(this.arena, elm, "RcuQSimpleQ.insertHead");
    const nx = Atomics.load(w, this.headLink);
    Atomics.store(w, e + N_NEXT, nx);
    if (nx === 0) Atomics.store(w, this.#lastIdx, e + N_NEXT);
    Atomics.store(w, this.headLink, elm); // publish
  }

  /**
   * Inserts `elm` at the tail.
   *
   * Counterpart: QSIMPLEQ_INSERT_TAIL_RCU().
   *
   * @param elm A record not in any list.
   */
  insertTail(elm: number): void {
    const w = this.arena.words;
    const e = elmBase(this.arena, elm, "RcuQSimpleQ.insertTail");
    Atomics.store(w, e + N_NEXT, 0);
    Atomics.store(w, Atomics.load(w, this.#lastIdx), elm); // publish
    Atomics.store(w, this.#lastIdx, e + N_NEXT);
  }

  /**
   * Inserts `elm` after `listelm`.
   *
   * Counterpart: QSIMPLEQ_INSERT_AFTER_RCU().
   *
   * @param listelm An element of this queue.
   * @param elm A record not in any list.
   */
  insertAfter(listelm: number, elm: number): void {
    const w = this.arena.words;
    const l = elmBase(this.arena, listelm, "RcuQSimpleQ.insertAfter");
    const e = elmBase(this.arena, elm, "RcuQSimpleQ.insertAfter");
    const nx = Atomics.load(w, l + N_NEXT);
    Atomics.store(w, e + N_NEXT, nx);
    if (nx === 0) Atomics.store(w, this.#lastIdx, e + N_NEXT);
    Atomics.store(w, l + N_NEXT, elm); // publish
  }

  /**
   * Unlinks the first element (the queue must not be empty).
   *
   * Counterpart: QSIMPLEQ_REMOVE_HEAD_RCU().
   *
   * @throws {Error} If the queue is empty.
   */
  removeHead(): void {
    const w = this.arena.words;
    const first = Atomics.load(w, this.headLink);
    if (first === 0) throw new Error("RcuQSimpleQ.removeHead: the queue is empty");
    const nx = Atomics.load(w, this.arena.base(first) + N_NEXT);
    Atomics.store(w, this.headLink, nx);
    if (nx === 0) Atomics.store(w, this.#lastIdx, this.headLink);
  }

  /**
   * Unlinks `elm`, walking from the head to find its predecessor (O(n)).
   *
   * Counterpart: QSIMPLEQ_REMOVE_RCU().
   *
   * @param elm An element of this queue.
   * @throws {Error} If `elm` is not in the queue.
   */
  remove(elm: number): void {
    const w = this.arena.words;
    elmBase(this.arena, elm, "RcuQSimpleQ.remove");
    if (Atomics.load(w, this.headLink) === elm) return this.removeHead();
    let link = this.headLink;
    for (let c = Atomics.load(w, link); c !== 0; c = Atomics.load(w, link)) {
      const cl = this.arena.base(c) + N_NEXT;
      if (Atomics.load(w, cl) === elm) {
        const nx = Atomics.load(w, this.arena.base(elm) + N_NEXT);
        Atomics.store(w, cl, nx);
        if (nx === 0) Atomics.store(w, this.#lastIdx, cl);
        return;
      }
      link = cl;
    }
    throw new Error(`RcuQSimpleQ.remove: record ${elm} is not in this queue`);
  }

  /**
   * Checks that `sqh_last` names the last element's link and returns the
   * length. An aioloop extra for tests.
   *
   * Thread: the writer (or with writers stopped).
   *
   * @returns The number of elements.
   * @throws {Error} If `sqh_last` is wrong or the queue has a cycle.
   */
  verify(): number {
    const w = this.arena.words;
    let link = this.headLink;
    let n = 0;
    for (let e = Atomics.load(w, link); e !== 0; e = Atomics.load(w, link)) {
      link = this.arena.base(e) + N_NEXT;
      if (++n > this.arena.capacity) throw new Error("RcuQSimpleQ.verify: the queue has a cycle");
    }
    if (Atomics.load(w, this.#lastIdx) !== link) {
      throw new Error("RcuQSimpleQ.verify: sqh_last does not point at the last link");
    }
    return n;
  }
}

/**
 * QSLIST with RCU: a singly linked list.
 *
 * @module
 */
import { elmBase, openHandle } from "./_list_util.ts";
import { N_NEXT, type RcuArena } from "./rcu_arena.ts";
import { RcuList, type RcuListHandle } from "./rcu_list.ts";

/**
 * An RCU-protected QSLIST over arena records, with QEMU's publish order.
 *
 * Counterpart: QSLIST_*_RCU of rcu_queue.h.
 * Thread: readers any thread (in a read section); writers one at a time.
 *
 * @example A stack
 * ```ts
 * import { RcuArena, RcuQSList } from "@aioloop/aioloop/rcu";
 * import { assertEquals } from "@std/assert";
 * const arena = RcuArena.create({ nodes: 8 });
 * const list = RcuQSList.create(arena);
 * const a = arena.alloc(), b = arena.alloc();
 * list.insertHead(a);
 * list.insertHead(b);
 * list.remove(a);
 * assertEquals([...list], [b]);
 * ```
 */
export class RcuQSList extends RcuList {
  /**
   * Makes an empty list whose head is a new record of `arena`.
   *
   * Counterpart: QSLIST_INIT().
   *
   * @param arena The arena.
   * @returns The list.
   */
  static create(arena: RcuArena): RcuQSList {
    return new RcuQSList(arena, arena.alloc());
  }

  /**
   * Opens a list from its handle (in a Worker).
   *
   * @param handle The handle from `list.handle`.
   * @returns A view on the same list.
   */
  static fromHandle(handle: RcuListHandle): RcuQSList {
    return new RcuQSList(openHandle(handle, "RcuQSList.fromHandle"), handle.head);
  }

  /**
   * Inserts `elm` at the head.
   *
   * Counterpart: QSLIST_INSERT_HEAD_RCU().
   *
   * @param elm A record not in any list.
   */
  insertHead(elm: number): void {
    const w = this.arena.words;
    const e = elmBase(this.arena, elm, "RcuQSList.insertHead");
    Atomics.store(w, e + N_NEXT, Atomics.load(w, this.headLink));
    Atomics.store(w, this.headLink, elm); // publish
  }

  /**
   * Inserts `elm` after `listelm`.
   *
   * Counterpart: QSLIST_INSERT_AFTER_RCU().
   *
   * @param listelm An element of this list.
   * @param elm A record not in any list.
   */
  insertAfter(listelm: number, elm: number): void {
    const w = this.arena.words;
    const l = elmBase(this.arena, listelm, "RcuQSList.insertAfter");
    const e = elmBase(this.arena, elm, "RcuQSList.insertAfter");
    Atomics.store(w, e + N_NEXT, Atomics.load(w, l + N_NEXT));
    Atomics.store(w, l + N_NEXT, elm); // publish
  }

  /**
   * Unlinks the first element.
   *
   * Counterpart: QSLIST_REMOVE_HEAD_RCU().
   *
   * @throws {Error} If the list is empty.
   */
  removeHead(): void {
    const w = this.arena.words;
    const first = Atomics.load(w, this.headLink);
    if (first === 0) throw new Error("RcuQSList.removeHead: the list is empty");
    Atomics.store(w, this.headLink, Atomics.load(w, this.arena.base(first) + N_NEXT));
  }

  /**
   * Unlinks `elm`, walking from the head to find its predecessor (O(n)).
   *
   * Counterpart: QSLIST_REMOVE_RCU().
   *
   * @param elm An element of this list.
   * @throws {Error} If `elm` is not in the list.
   */
  remove(elm: number): void {
    const w = this.arena.words;
    elmBase(this.arena, elm, "RcuQSList.remove");
    if (Atomics.load(w, this.headLink) === elm) return this.removeHead();
    for (let c = Atomics.load(w, this.headLink); c !== 0;) {
      const cl = this.arena.base(c) + N_NEXT;
      const nx = Atomics.load(w, cl);
      if (nx === elm) {
        Atomics.store(w, cl, Atomics.load(w, this.arena.base(elm) + N_NEXT));
        return;
      }
      c = nx;
    }
    throw new Error(`RcuQSList.remove: record ${elm} is not in this list`);
  }

  /**
   * Counts the elements, checking for a cycle. An aioloop extra for tests.
   *
   * Thread: the writer (or with writers stopped).
   *
   * @returns The number of elements.
   * @throws {Error} If the list has a cycle.
   */
  verify(): number {
    let n = 0;
    for (const _ of this) {
      if (++n > this.arena.capacity) throw new Error("RcuQSList.verify: the list has a cycle");
    }
    return n;
  }
}

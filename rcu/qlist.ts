/**
 * QLIST with RCU: a doubly linked list whose back link is the address of the
 * link that points at the element (QEMU's `le_prev`).
 *
 * @module
 */
import { elmBase, openHandle } from "./_list_util.ts";
import { N_NEXT, N_PREV, type RcuArena } from "./rcu_arena.ts";
import { RcuList, type RcuListHandle } from "./rcu_list.ts";

/**
 * An RCU-protected QLIST over arena records. Insertion fills the element
 * first and publishes it with one RCU store; removal republishes the
 * predecessor's link and leaves the element's own next link intact, so a
 * reader standing on it keeps walking.
 *
 * Counterpart: QLIST_*_RCU of rcu_queue.h.
 * Thread: readers any thread (in a read section); writers one at a time.
 *
 * @example Insert and remove
 * ```ts
 * import { RcuArena, RcuQList } from "@aioloop/aioloop/rcu";
 * import { assertEquals } from "@std/assert";
 * const arena = RcuArena.create({ nodes: 8 });
 * const list = RcuQList.create(arena);
 * const a = arena.alloc(), b = arena.alloc(), c = arena.alloc();
 * list.insertHead(a);
 * list.insertAfter(a, c);
 * list.insertBefore(c, b);
 * assertEquals([...list], [a, b, c]);
 * list.remove(b);
 * assertEquals([...list], [a, c]);
 * assertEquals(list.verify(), 2);
 * ```
 */
export class RcuQList extends RcuList {
  /**
   * Makes an empty list whose head is a new record of `arena`.
   *
   * Counterpart: QLIST_INIT().
   *
   * @param arena The arena.
   * @returns The list.
   */
  static create(arena: RcuArena): RcuQList {
    return new RcuQList(arena, arena.alloc());
  }

  /**
   * Opens a list from its handle (in a Worker).
   *
   * @param handle The handle from `list.handle`.
   * @returns A view on the same list.
   */
  static fromHandle(handle: RcuListHandle): RcuQList {
    return new RcuQList(openHandle(handle, "RcuQList.fromHandle"), handle.head);
  }

  /**
   * Inserts `elm` at the head.
   *
   * Counterpart: QLIST_INSERT_HEAD_RCU().
   *
   * @param elm A record not in any list.
   */
  insertHead(elm: number): void {
    const w = this.arena.words;
    const e = elmBase(this.arena, elm, "RcuQList.insertHead");
    Atomics.store(w, e + N_PREV, this.headLink);
    const nx = Atomics.load(w, this.headLink);
    Atomics.store(w, e + N_NEXT, nx);
    Atomics.store(w, this.headLink, elm); // publish
    if (nx !== 0) Atomics.store(w, this.arena.base(nx) + N_PREV, e + N_NEXT);
  }

  /**
   * Inserts `elm` after `listelm`.
   *
   * Counterpart: QLIST_INSERT_AFTER_RCU().
   *
   * @param listelm An element of this list.
   * @param elm A record not in any list.
   */
  insertAfter(listelm: number, elm: number): void {
    const w = this.arena.words;
    const l = elmBase(this.arena, listelm, "RcuQList.insertAfter");
    const e = elmBase(this.arena, elm, "RcuQList.insertAfter");
    const nx = Atomics.load(w, l + N_NEXT);
    Atomics.store(w, e + N_NEXT, nx);
    Atomics.store(w, e + N_PREV, l + N_NEXT);
    Atomics.store(w, l + N_NEXT, elm); // publish
    if (nx !== 0) Atomics.store(w, this.arena.base(nx) + N_PREV, e + N_NEXT);
  }

  /**
   * Inserts `elm` before `listelm`.
   *
   * Counterpart: QLIST_INSERT_BEFORE_RCU().
   *
   * @param listelm An element of this list.
   * @param elm A record not in any list.
   */
  insertBefore(listelm: number, elm: number): void {
    const w = this.arena.words;
    const l = elmBase(this.arena, listelm, "RcuQList.insertBefore");
    const e = elmBase(this.arena, elm, "RcuQList.insertBefore");
    const prevLink = Atomics.load(w, l + N_PREV);
    Atomics.store(w, e + N_PREV, prevLink);
    Atomics.store(w, e + N_NEXT, listelm);
    Atomics.store(w, prevLink, elm); // publish
    Atomics.store(w, l + N_PREV, e + N_NEXT);
  }

  /**
   * Unlinks `elm`; free it only after a grace period (`arena.freeRcu`).
   *
   * Counterpart: QLIST_REMOVE_RCU().
   *
   * @param elm An element of this list.
   */
  remove(elm: number): void {
    const w = this.arena.words;
    const e = elmBase(this.arena, elm, "RcuQList.remove");
    const nx = Atomics.load(w, e + N_NEXT);
    const prevLink = Atomics.load(w, e + N_PREV);
    if (prevLink === 0) throw new Error(`RcuQList.remove: record ${elm} is not in a list`);
    if (nx !== 0) Atomics.store(w, this.arena.base(nx) + N_PREV, prevLink);
    Atomics.store(w, prevLink, nx);
  }

  /**
   * Checks the writer-side links (every back link names the link that points
   * at its element) and returns the length. An aioloop extra for tests.
   *
   * Thread: the writer (or with writers stopped).
   *
   * @returns The number of elements.
   * @throws {Error} If a link is inconsistent.
   */
  verify(): number {
    const w = this.arena.words;
    let link = this.headLink;
    let n = 0;
    for (let e = Atomics.load(w, link); e !== 0; e = Atomics.load(w, link)) {
      const b = this.arena.base(e);
      if (Atomics.load(w, b + N_PREV) !== link) {
        throw new Error(`RcuQList.verify: le_prev of record ${e} does not point at its link`);
      }
      link = b + N_NEXT;
      if (++n > this.arena.capacity) throw new Error("RcuQList.verify: the list has a cycle");
    }
    return n;
  }
}

/**
 * The read side shared by the four RCU list types: forward walks where
 * every link load is an RCU read (`qatomic_rcu_read`, here `Atomics.load`).
 *
 * @module
 */
import { N_NEXT, type RcuArena, type RcuArenaHandle } from "./rcu_arena.ts";

/** A structured-cloneable handle on an RCU list: its arena and head record. */
export interface RcuListHandle {
  /** The arena holding the head and the elements. */
  readonly arena: RcuArenaHandle;
  /** The head record's index. */
  readonly head: number;
}

/**
 * An RCU list whose head and elements are records of an {@linkcode RcuArena}.
 * Readers walk forward only, inside a read section; writers must be
 * serialised by the caller (QEMU's writers hold a mutex).
 *
 * Counterpart: the `*_FIRST_RCU`, `*_NEXT_RCU`, `*_EMPTY_RCU` and
 * `*_FOREACH_RCU` macros of rcu_queue.h.
 * Thread: readers any thread (in a read section); writers one at a time.
 *
 * @example Walk a list
 * ```ts
 * import { RcuArena, RcuQSList, rcuReadLock, rcuReadUnlock } from "@aioloop/aioloop/rcu";
 * import { assertEquals } from "@std/assert";
 * const arena = RcuArena.create({ nodes: 4 });
 * const list = RcuQSList.create(arena);
 * list.insertHead(arena.alloc());
 * rcuReadLock();
 * assertEquals([...list].length, 1);
 * rcuReadUnlock();
 * ```
 */
export class RcuList {
  /** The arena of the head and elements. */
  readonly arena: RcuArena;
  /** The head record. */
  readonly head: number;
  /** The word address of the head's first-element link. */
  protected readonly headLink: number;

  /**
   * Wraps an existing head record (use the subclasses' `create`/`fromHandle`).
   *
   * @param arena The arena.
   * @param head The head record.
   */
  constructor(arena: RcuArena, head: number) {
    this.arena = arena;
    this.head = head;
    this.headLink = arena.base(head) + N_NEXT;
  }

  /** The handle to post to a Worker. */
  get handle(): RcuListHandle {
    return { arena: this.arena.handle, head: this.head };
  }

  /**
   * The first element, read with an RCU read (0 when empty).
   *
   * @returns The element index or 0.
   */
  first(): number {
    return Atomics.load(this.arena.words, this.headLink);
  }

  /**
   * The element after `elm`, read with an RCU read (0 at the end).
   *
   * @param elm An element of this list.
   * @returns The next element index or 0.
   */
  next(elm: number): number {
    return Atomics.load(this.arena.words, this.arena.base(elm) + N_NEXT);
  }

  /**
   * Whether the list is empty.
   *
   * @returns True when no element is linked.
   */
  empty(): boolean {
    return this.first() === 0;
  }

  /**
   * Walks the list; the next link is read after the body ran.
   *
   * @returns The element indices in list order.
   */
  *[Symbol.iterator](): IterableIterator<number> {
    for (let e = this.first(); e !== 0; e = this.next(e)) yield e;
  }

  /**
   * Walks the list reading each next link before yielding the element, so
   * the caller may unlink the element it holds.
   *
   * Counterpart: `*_FOREACH_SAFE_RCU`.
   *
   * @returns The element indices in list order.
   */
  *entriesSafe(): IterableIterator<number> {
    for (let e = this.first(); e !== 0;) {
      const n = this.next(e);
      yield e;
      e = n;
    }
  }
}

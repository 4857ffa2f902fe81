// Argument checks shared by the RCU list types.
import { RcuArena } from "./rcu_arena.ts";
import type { RcuListHandle } from "./rcu_list.ts";

/** Opens a list handle's arena, checking the head index. */
export function openHandle(h: RcuListHandle, what: string): RcuArena {
  if (h === null || typeof h !== "object" || !Number.isInteger(h.head) || h.head < 1) {
    throw new TypeError(`${what}: handle must be list.handle of an RCU list`);
  }
  const a = RcuArena.fromHandle(h.arena);
  if (h.head > a.capacity) throw new TypeError(`${what}: handle.head is outside the arena`);
  return a;
}

/** The base word of an element, after checking the index. */
export function elmBase(a: RcuArena, elm: number, what: string): number {
  if (!Number.isInteger(elm) || elm < 1 || elm > a.capacity) {
    throw new RangeError(`${what}: element must be a record index in 1..${a.capacity}, got ${elm}`);
  }
  return a.base(elm);
}

/**
 * A per-isolate registry of coroutines by number, so that other threads can
 * name a coroutine of this isolate in a request (`remoteCoEnter` /
 * `remoteCoSchedule`): QEMU threads share `Coroutine *` pointers; isolates
 * share nothing but numbers.
 *
 * @module
 */
import { Coroutine } from "../aio/coroutine.ts";

const coroutines = new Map<number, Coroutine>();
const coIds = new WeakMap<Coroutine, number>();
let nextCoId = 1;

/**
 * Registers a coroutine of this isolate under a number that other threads
 * can name in {@linkcode remoteCoEnter} / {@linkcode remoteCoSchedule}.
 * Registering the same coroutine again returns the same id. Ids are
 * positive int32 values, unique within the isolate, so they fit an
 * `Int32Array` slot where 0 means "none".
 *
 * Counterpart: none (QEMU threads share `Coroutine *` pointers).
 *
 * Thread: the coroutine's isolate.
 *
 * @param co The coroutine.
 * @returns Its id.
 * @throws {TypeError} If `co` is not a Coroutine.
 *
 * @example Register and look up
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Coroutine } from "@aioloop/aioloop";
 * import { registerCoroutine, registeredCoroutine, unregisterCoroutine } from "@aioloop/aioloop/iothread";
 * const co = Coroutine.create(function* () {});
 * const id = registerCoroutine(co);
 * assertEquals([registeredCoroutine(id) === co, registerCoroutine(co) === id], [true, true]);
 * unregisterCoroutine(id);
 * ```
 */
export function registerCoroutine(co: Coroutine): number {
  if (!(co instanceof Coroutine)) throw new TypeError("Not a Coroutine");
  const have = coIds.get(co);
  if (have !== undefined && coroutines.get(have) === co) return have;
  let id = nextCoId;
  while (coroutines.has(id)) id = id >= 0x7fffffff ? 1 : id + 1;
  nextCoId = id >= 0x7fffffff ? 1 : id + 1;
  coroutines.set(id, co);
  coIds.set(co, id);
  return id;
}

/**
 * Removes a coroutine id from the registry. Requests naming it afterwards
 * fail with an error in the home context.
 *
 * Counterpart: none.
 *
 * Thread: the coroutine's isolate.
 *
 * @param id An id from {@linkcode registerCoroutine}.
 * @returns Whether the id was registered.
 *
 * @example Unregister twice
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Coroutine } from "@aioloop/aioloop";
 * import { registerCoroutine, unregisterCoroutine } from "@aioloop/aioloop/iothread";
 * const id = registerCoroutine(Coroutine.create(function* () {}));
 * assertEquals([unregisterCoroutine(id), unregisterCoroutine(id)], [true, false]);
 * ```
 */
export function unregisterCoroutine(id: number): boolean {
  const co = coroutines.get(id);
  if (co === undefined) return false;
  coroutines.delete(id);
  coIds.delete(co);
  return true;
}

/**
 * The coroutine registered under `id` in this isolate, if any.
 *
 * Counterpart: none.
 *
 * Thread: any (per isolate).
 *
 * @param id The id.
 * @returns The coroutine, or undefined.
 *
 * @example Unknown id
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { registeredCoroutine } from "@aioloop/aioloop/iothread";
 * assertEquals(registeredCoroutine(123456), undefined);
 * ```
 */
export function registeredCoroutine(id: number): Coroutine | undefined {
  return coroutines.get(id);
}

/**
 * The id under which `co` is registered in this isolate, if it is.
 *
 * Counterpart: none.
 *
 * Thread: the coroutine's isolate.
 *
 * @param co The coroutine.
 * @returns Its id, or undefined.
 *
 * @example Before and after registering
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Coroutine } from "@aioloop/aioloop";
 * import { registerCoroutine, registeredCoroutineId, unregisterCoroutine } from "@aioloop/aioloop/iothread";
 * const co = Coroutine.create(function* () {});
 * assertEquals(registeredCoroutineId(co), undefined);
 * const id = registerCoroutine(co);
 * assertEquals(registeredCoroutineId(co) === id, true);
 * unregisterCoroutine(id);
 * ```
 */
export function registeredCoroutineId(co: Coroutine): number | undefined {
  const id = coIds.get(co);
  return id !== undefined && coroutines.get(id) === co ? id : undefined;
}

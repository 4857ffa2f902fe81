/**
 * Read-copy-update across Workers (QEMU's util/rcu.c and
 * include/qemu/rcu_queue.h): read sections, grace periods, deferred
 * callbacks, and RCU lists whose nodes live in shared memory.
 *
 * @example A grace period and a callback
 * ```ts
 * import { callRcu, drainCallRcu, rcuReadLock, rcuReadUnlock, synchronizeRcu } from "@aioloop/aioloop/rcu";
 * import { assertEquals } from "@std/assert";
 * rcuReadLock();
 * rcuReadUnlock();
 * synchronizeRcu();
 * let freed = false;
 * callRcu(() => {
 *   freed = true;
 * });
 * drainCallRcu();
 * assertEquals(freed, true);
 * ```
 *
 * @module
 */
export * from "./rcu.ts";
export * from "./call_rcu.ts";
export * from "./rcu_arena.ts";
export * from "./rcu_list.ts";
export * from "./qlist.ts";
export * from "./qsimpleq.ts";
export * from "./qtailq.ts";
export * from "./qslist.ts";

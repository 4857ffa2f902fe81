/**
 * Read-copy-update across Workers (QEMU's util/rcu.c and
 * include/qemu/rcu_queue.h): read sections, grace periods, deferred
 * callbacks, and RCU lists whose nodes live in shared memory.
 *
 * How it maps onto isolates:
 *
 * - **The registry** of reader threads (QEMU's `registry` list, `rcu_gp_ctr`,
 *   `rcu_sync_lock`, `rcu_registry_lock`, `rcu_gp_event`) is one
 *   SharedArrayBuffer for the process. The main isolate creates it on first
 *   use; a Worker gets it like an AioContext handle: the parent posts
 *   `rcuHandle()`, the Worker calls `rcuAttach(handle)`, then
 *   `rcuRegisterThread()` if it will read. A Worker that skips the attach
 *   gets a TypeError, never a private registry of its own.
 * - **Read sections** cost one `Atomics.load` and one `Atomics.store` to
 *   enter, one store and one load to leave; the depth is isolate-local.
 * - **Grace periods** are QEMU's 64-bit-host scheme: one counter increment,
 *   one wait for the readers that were inside a section at that moment.
 *   Readers that enter meanwhile never delay it.
 * - **RCU-protected data** is shared memory too: JS objects cannot cross
 *   isolates, so list nodes are records of an {@linkcode RcuArena} and an
 *   index is a pointer. The list types keep QEMU's publish order (fill the
 *   node, then one RCU store of the link that makes it reachable).
 * - **callRcu** takes a closure, which cannot leave its isolate; so each
 *   isolate keeps its own FIFO and is its own call_rcu thread (see
 *   call_rcu.ts): batching and a polled grace period on its event loop,
 *   or `drainCallRcu()` where the loop never turns. Nothing is spawned.
 * - **Force-quiescent-state**: while `drainCallRcu` waits, readers stuck in
 *   a section see `rcuForceQuiescentRequested()` turn true and, if they set
 *   one, get their doorbell fd rung (QEMU's force-RCU notifiers, which run
 *   on the updater's thread and so cannot be closures here).
 * - **Stricter than QEMU**: `synchronizeRcu`/`drainCallRcu` inside a read
 *   section, an unbalanced unlock, registering twice, and unregistering
 *   inside a section all throw (QEMU deadlocks or asserts).
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

/**
 * QEMU's thread primitives (util/qemu-thread-posix.c, util/event.c) as
 * handles on SharedArrayBuffer words, usable from every isolate: create a
 * primitive, post its `handle` to a Worker, open it there with the
 * constructor. Blocking calls block the calling thread in `Atomics.wait`,
 * event loop included.
 *
 * @example A mutex shared with a Worker-like reopen
 * ```ts
 * import { QemuMutex } from "@aioloop/aioloop/thread";
 * import { assertEquals } from "@std/assert";
 * const m = QemuMutex.create();
 * const elsewhere = new QemuMutex(structuredClone(m.handle));
 * elsewhere.lock();
 * assertEquals(m.tryLock(), false);
 * elsewhere.unlock();
 * ```
 *
 * @module
 */
export * from "./shared_word.ts";
export * from "./mutex.ts";
export * from "./rec_mutex.ts";
export * from "./cond.ts";
export * from "./semaphore.ts";
export * from "./event.ts";
export * from "./spin.ts";
export * from "./thread_self.ts";
export * from "./defer_call.ts";

/**
 * The calling thread's id.
 *
 * @module
 */
import { libc } from "../sys/_libc.ts";

let tid = 0;

/**
 * The OS thread id of the calling isolate (the main thread and each Worker
 * run on their own OS thread). Cached after the first call.
 *
 * Counterpart: `qemu_get_thread_id()`.
 *
 * Thread: any; each thread gets its own id.
 *
 * @returns The thread id, a positive integer.
 *
 * @example The id is stable within a thread
 * ```ts
 * import { qemuGetThreadId } from "@aioloop/aioloop/thread";
 * import { assertEquals } from "@std/assert";
 * const id = qemuGetThreadId();
 * assertEquals(id > 0, true);
 * assertEquals(qemuGetThreadId(), id);
 * ```
 */
export function qemuGetThreadId(): number {
  if (tid === 0) tid = libc().gettid();
  return tid;
}

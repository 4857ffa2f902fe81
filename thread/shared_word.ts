/**
 * Where a thread primitive lives: a word offset in a SharedArrayBuffer.
 *
 * @module
 */

/**
 * The cloneable home of a thread primitive: an Int32 word index in a
 * SharedArrayBuffer. Post it to a Worker (structured clone keeps the
 * buffer shared) and open it there with the primitive's constructor.
 * Several primitives may share one buffer at different indices.
 *
 * Counterpart: the address of a `QemuMutex`/`QemuCond`/... in shared
 * memory; QEMU threads share one heap, isolates share only such buffers.
 *
 * Thread: any.
 *
 * @example A mutex handle crosses isolates as plain data
 * ```ts
 * import { QemuMutex, type SharedWordHandle } from "@aioloop/aioloop/thread";
 * import { assertEquals } from "@std/assert";
 * const m = QemuMutex.create();
 * const copy: SharedWordHandle = structuredClone(m.handle);
 * const again = new QemuMutex(copy);
 * m.lock();
 * assertEquals(again.locked, true);
 * m.unlock();
 * ```
 */
export interface SharedWordHandle {
  /** The shared memory. */
  readonly sab: SharedArrayBuffer;
  /** The Int32 index of the primitive's first word. */
  readonly index: number;
}

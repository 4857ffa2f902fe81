// Control blocks shared by a thread's owner and the thread itself: Int32
// words in a SharedArrayBuffer, read and written with Atomics. Each layout
// is declared once here and imported by both sides (importing a Worker's
// entry module from its owner would run the Worker's code), so the numbers
// can never drift apart. Layouts are plain frozen objects of word indices
// with a `WORDS` size; `newControlBlock` allocates one.

/** A control-block layout: word indices by name, and the size in words. */
export type ControlLayout<K extends string> = { readonly [P in K]: number } & {
  readonly WORDS: number;
};

/**
 * Declares a layout: each name gets the next word, in order.
 *
 * @param names The word names.
 * @returns The frozen layout.
 */
export function controlLayout<const K extends string>(names: readonly K[]): ControlLayout<K> {
  const out: Record<string, number> = {};
  names.forEach((n, i) => out[n] = i);
  out.WORDS = names.length;
  return Object.freeze(out) as ControlLayout<K>;
}

/** A zeroed control block for `layout`. */
export function newControlBlock(layout: { readonly WORDS: number }): Int32Array {
  return new Int32Array(new SharedArrayBuffer(layout.WORDS * 4));
}

/**
 * An IOThread's control block (iothread/iothread.ts and iothread/_worker.ts):
 * STOP is set by the owner to end the loop; STATE is the thread's state
 * (IOTHREAD_STARTING, IOTHREAD_RUNNING, IOTHREAD_EXITED); TID is the OS
 * thread id once running.
 */
export const IOTHREAD_CTL: ControlLayout<"STOP" | "STATE" | "TID"> = controlLayout([
  "STOP",
  "STATE",
  "TID",
]);
/** IOTHREAD_CTL.STATE values. */
export const IOTHREAD_STARTING = 0;
export const IOTHREAD_RUNNING = 1;
export const IOTHREAD_EXITED = 2;

// Job functions for the generic ThreadPool tests: each runs in a pool
// worker and reports through SharedArrayBuffer words the test reads.

/** Counts one run in word 0 and one run of job `id` in word 1 + id. */
export function countRun([runs, id]: [Int32Array, number]): void {
  Atomics.add(runs, 0, 1);
  Atomics.add(runs, 1 + id, 1);
}

/**
 * Word 0: jobs running now; word 1: the most seen at once; word 2: jobs
 * finished. Holds its place for `ms` milliseconds.
 */
export function overlap([c, ms]: [Int32Array, number]): void {
  const now = Atomics.add(c, 0, 1) + 1;
  for (;;) {
    const seen = Atomics.load(c, 1);
    if (now <= seen || Atomics.compareExchange(c, 1, seen, now) === seen) break;
  }
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  Atomics.sub(c, 0, 1);
  Atomics.add(c, 2, 1);
}

/**
 * Sets word `me`, then waits (up to `ms`) for word `other`: two of these
 * finish only if they run at the same time. Throws if left alone.
 */
export function rendezvous([g, me, other, ms]: [Int32Array, number, number, number]): void {
  Atomics.store(g, me, 1);
  Atomics.notify(g, me);
  const deadline = Date.now() + ms;
  while (Atomics.load(g, other) === 0) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`rendezvous ${me}: nobody came within ${ms} ms`);
    Atomics.wait(g, other, 0, left);
  }
}

/** Waits until word 0 is non-zero (the test's gate), counting itself in word 1. */
export function gate(g: Int32Array): void {
  Atomics.add(g, 1, 1);
  while (Atomics.load(g, 0) === 0) Atomics.wait(g, 0, 0, 1000);
}

/** Throws a RangeError naming its argument. */
export function failWith(x: number): void {
  throw new RangeError(`bad ${x}`);
}

/** Ends its worker with close(), as a crashing job would. */
export function closeWorker(): void {
  (globalThis as unknown as { close(): void }).close();
}

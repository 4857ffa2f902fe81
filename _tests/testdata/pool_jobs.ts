// Job functions for the thread pool tests: each runs in a pool worker.
// The parity jobs mirror tests/unit/test-thread-pool.c; `n` lives in an
// Int32Array over a SharedArrayBuffer so the owner sees the workers' updates.
import process from "node:process";

/** worker_cb: fetch-and-increment n, return the old value (0). */
export function workerCb(n: Int32Array): number {
  return Atomics.add(n, 0, 1);
}

/** long_cb: if it wins n 0 → 1, sleep 2 s (g_usleep) and OR 2 into n. */
export function longCb(n: Int32Array): number {
  if (Atomics.compareExchange(n, 0, 0, 1) === 0) {
    Atomics.wait(n, 1, 0, 2000);
    Atomics.or(n, 0, 2);
  }
  return 0;
}

/** Returns its argument. */
export function identity(x: unknown): unknown {
  return x;
}

/** Adds the two numbers of a pair. */
export function add([a, b]: [number, number]): number {
  return a + b;
}

/** Throws a TypeError. */
export function throws(message: string): never {
  throw new TypeError(message);
}

/** Throws an error carrying an errno, as SysError does. */
export function throwsErrno(errno: number): never {
  const e = new Error(`failed with errno ${errno}`) as Error & { errno: number; code: string };
  e.name = "SysError";
  e.errno = errno;
  e.code = "ESOMETHING";
  throw e;
}

/** Resolves after `ms` milliseconds of the worker's own event loop. */
export async function sleepAsync(ms: number): Promise<number> {
  await new Promise((r) => setTimeout(r, ms));
  return ms;
}

/** Ends its worker with close(), as a crashing job would. */
export function closeWorker(): number {
  (globalThis as unknown as { close(): void }).close();
  return 1;
}

/** Ends its worker with process.exit(). */
export function exitWorker(): number {
  process.exit(3);
  return 1;
}

/** Leaves an uncaught error behind and waits, so its worker dies mid-job. */
export async function crashLater(): Promise<number> {
  setTimeout(() => {
    throw new Error("uncaught in worker");
  }, 1);
  await new Promise((r) => setTimeout(r, 1000));
  return 1;
}

/** Returns a value that cannot be cloned. */
export function uncloneable(): unknown {
  return () => 1;
}

/** Counts up a shared word, then waits until the owner releases it (word 1). */
export function gated(n: Int32Array): number {
  const v = Atomics.add(n, 0, 1);
  while (Atomics.load(n, 1) === 0) Atomics.wait(n, 1, 0, 1000);
  return v;
}

/** Sums the bytes of a view (SharedArrayBuffer-backed or not) and writes 1 into byte 0. */
export function sumAndMark(v: Uint8Array): number {
  let s = 0;
  for (const b of v) s += b;
  v[0] = 1;
  return s;
}

/** Returns a fresh view over a new SharedArrayBuffer filled with `x`. */
export function makeShared(x: number): Int32Array {
  const a = new Int32Array(new SharedArrayBuffer(16));
  a.fill(x);
  return a;
}

/** Not a function: submitting it by name fails. */
export const notAFunction = 42;

/** The benchmark's trivial job. */
export function inc(x: number): number {
  return x + 1;
}

/** Leaves a timer that throws after the job has completed. */
export function leaveThrowingTimer(x: number): number {
  setTimeout(() => {
    throw new Error("thrown by a leftover timer");
  }, 1);
  return x;
}

const token = Math.random();

/** A number that differs between workers (module state is per worker). */
export function workerToken(): number {
  return token;
}

/**
 * Logs its start: log[0] counts starts, log[1 + n] is the id of the n-th
 * job to start. Returns its start position.
 */
export function ordered([log, id]: [Int32Array, number]): number {
  const n = Atomics.add(log, 0, 1);
  Atomics.store(log, 1 + n, id);
  return n;
}

/** Blocks its worker until gate[0] becomes non-zero (at most 10 s). */
export function gate(g: Int32Array): number {
  Atomics.wait(g, 0, 0, 10_000);
  return Atomics.load(g, 0);
}

/** Doubles every element (a new array of the same type). */
export function doubled(a: Float64Array): Float64Array {
  return a.map((x) => 2 * x);
}

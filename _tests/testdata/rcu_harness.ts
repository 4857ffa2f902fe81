// Main-side helpers for the RCU tests: spawn Workers that run one of the
// rcu_*.ts testdata modules, wait with a watchdog, and join them (each
// Worker raises its "exited" word before closing itself; then terminate).

/** The GO word of both stress harnesses (QEMU's `goflag`). */
export const GOFLAG_INIT = 0;
export const GOFLAG_RUN = 1;
export const GOFLAG_STOP = 2;

/**
 * Watchdog on the Workers' start. The first Worker of a file waits for Deno
 * to type-check its module graph, which took over a minute on a loaded
 * 2-core machine; later ones start in milliseconds to seconds.
 */
let startWatchdogMs = 240_000;

/** Sleeps without blocking the isolate. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `cond` until true; a watchdog turns a hang into a failure. */
export async function waitFor(
  cond: () => boolean,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`watchdog: ${what} not within ${timeoutMs} ms`);
    await sleep(1);
  }
}

/** A set of Workers started for one test, with their exit words and errors. */
export class WorkerSet {
  readonly exited: Int32Array = new Int32Array(new SharedArrayBuffer(4 * 64));
  readonly errors: string[] = [];
  readonly #workers: Worker[] = [];

  /** Starts `module` (a testdata file name) and posts it `msg` plus its index. */
  spawn(module: string, msg: Record<string, unknown>): number {
    const i = this.#workers.length;
    const w = new Worker(new URL(`./${module}`, import.meta.url), { type: "module" });
    w.onerror = (e) => {
      e.preventDefault();
      this.errors.push(`worker ${i}: ${e.message}`);
      Atomics.store(this.exited, i, 1);
    };
    w.postMessage({ ...msg, index: i, exited: this.exited.buffer });
    this.#workers.push(w);
    return i;
  }

  get count(): number {
    return this.#workers.length;
  }

  /** Waits until every Worker raised its exit word, then terminates them all. */
  async join(timeoutMs = 60_000): Promise<void> {
    try {
      await waitFor(
        () => this.#workers.every((_, i) => Atomics.load(this.exited, i) !== 0),
        `every Worker exiting (exit words ${
          this.#workers.map((_, i) => Atomics.load(this.exited, i)).join("")
        })`,
        timeoutMs,
      );
    } finally {
      for (const w of this.#workers) w.terminate();
      this.#workers.length = 0;
    }
    if (this.errors.length > 0) throw new Error(this.errors.join("\n"));
  }
}

/**
 * One timed stress phase: `spawn()` starts the Workers of `set`; once every
 * one of them counted itself in `words[running]`, GO is raised for `ms`,
 * then STOP, and the set is joined (whatever failed on the way). QEMU does
 * not wait for its threads to start; here a Worker can take seconds to, and
 * a run where nobody started would pass vacuously.
 */
export async function stressPhase(
  set: WorkerSet,
  spawn: () => void,
  words: Int32Array,
  at: { running: number; go: number },
  ms: number,
  what: string,
): Promise<void> {
  try {
    spawn();
    await waitFor(() => Atomics.load(words, at.running) === set.count, what, startWatchdogMs);
    startWatchdogMs = 60_000;
    Atomics.store(words, at.go, GOFLAG_RUN);
    await sleep(ms);
  } finally {
    Atomics.store(words, at.go, GOFLAG_STOP);
    await set.join();
  }
}

/** xorshift32: a seeded PRNG, so a failing run can be replayed. */
export function prng(seed: number): () => number {
  let s = seed | 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
}

/** DENO_SLOW=1 selects QEMU's slow durations. */
export function slowMode(): boolean {
  const p = Deno.permissions.querySync({ name: "env", variable: "DENO_SLOW" });
  return p.state === "granted" && Deno.env.get("DENO_SLOW") === "1";
}

// Test helpers for the thread and cpus suites: run a named function of a
// testdata module in a fresh Worker, and watchdogs that fail a test instead
// of letting it hang.

/** A running Worker call. */
export interface WorkerCall {
  readonly worker: Worker;
  /** Resolves with the function's result; rejects with its error. */
  readonly done: Promise<unknown>;
}

/** Starts a Worker on `module` and asks it to run `fn(arg)` once. */
export function runInWorker(module: URL, fn: string, arg: unknown): WorkerCall {
  const worker = new Worker(module, { type: "module" });
  const done = new Promise<unknown>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent) => {
      const r = e.data as { ok: boolean; value?: unknown; error?: string };
      if (r.ok) resolve(r.value);
      else reject(new Error(`${fn} failed in its Worker: ${r.error}`));
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      reject(new Error(`${fn}: Worker error ${e.message}`));
    };
  });
  worker.postMessage({ fn, arg });
  return { worker, done };
}

/** Fails with a clear message if `p` does not settle within `ms`. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const dog = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`watchdog: ${what} not done after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, dog]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `cond` every millisecond; fails if it stays false for `ms`. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`watchdog: ${what} still false after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** Sleeps `ms` milliseconds on the event loop. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Guards code that blocks the main thread (a sync run_on_cpu, say), where
 * no timer can fire: a Worker kills the process with a message if the
 * guard is not disposed within `ms`, so that a hang fails the run instead
 * of stalling it.
 */
export function hangGuard(ms: number, what: string): Disposable {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const src = `self.onmessage = (e) => {
    const { flag, ms, what } = e.data;
    if (Atomics.wait(flag, 0, 0, ms) === "timed-out") {
      console.error("watchdog: " + what + " still blocked after " + ms + " ms; killing the test run");
      Deno.kill(Deno.pid, "SIGKILL");
    }
    self.close();
  };`;
  const w = new Worker(`data:text/javascript,${encodeURIComponent(src)}`, { type: "module" });
  w.postMessage({ flag, ms, what });
  return {
    [Symbol.dispose]() {
      Atomics.store(flag, 0, 1);
      Atomics.notify(flag, 0);
      w.terminate();
    },
  };
}

// The SAB-ring anchor's layout and owner side (bench/thread_pool_bench.ts;
// the worker is bench/_sab_ring_worker.ts).

/** Slots per worker ring (a power of two). */
export const RING = 4096;
export const RING_MASK = RING - 1;
/** Global words: completions sequence, the owner sleeps. */
export const SEQ = 0;
export const WAIT = 1;
/** Per-worker words, from 4 + 4 * index. */
export const W_HEAD = 0;
export const W_DONE = 1;
export const W_SLEEP = 2;

/** Control words for `workers` rings. */
export function ringWords(workers: number): number {
  return 4 + workers * 4;
}

const WORKER_URL = new URL("./_sab_ring_worker.ts", import.meta.url);

/** Two workers fed through shared-memory rings; jobs are x => x + 1. */
export class SabRingPool {
  #sab = new SharedArrayBuffer(ringWords(2) * 4 + 2 * RING * 16);
  #ctl = new Int32Array(this.#sab, 0, ringWords(2));
  #data = [0, 1].map((i) =>
    new Float64Array(this.#sab, ringWords(2) * 4 + i * RING * 16, RING * 2)
  );
  #workers: Worker[] = [];
  #heads = [0, 0];
  #last = 0;

  #ensure(): void {
    // Workers leave after 2 s idle: make new ones after 1 s without use.
    if (this.#workers.length > 0 && performance.now() - this.#last < 1000) return;
    this.close();
    this.#sab = new SharedArrayBuffer(ringWords(2) * 4 + 2 * RING * 16);
    this.#ctl = new Int32Array(this.#sab, 0, ringWords(2));
    this.#data = [0, 1].map((i) =>
      new Float64Array(this.#sab, ringWords(2) * 4 + i * RING * 16, RING * 2)
    );
    this.#heads = [0, 0];
    for (let i = 0; i < 2; i++) {
      const w = new Worker(WORKER_URL, { type: "module" });
      w.postMessage({ sab: this.#sab, index: i });
      this.#workers.push(w);
    }
  }

  /** Runs n jobs (args 0..n-1) and returns the sum of the results. */
  run(n: number): number {
    this.#ensure();
    if (n > 2 * RING) throw new RangeError("batch larger than the rings");
    const ctl = this.#ctl, heads = this.#heads, data = this.#data;
    const start = [heads[0], heads[1]];
    for (let i = 0; i < n; i++) {
      const w = i & 1, b = 4 + w * 4;
      data[w][heads[w] & RING_MASK] = i;
      Atomics.store(ctl, b + W_HEAD, ++heads[w]);
      if (Atomics.load(ctl, b + W_SLEEP) !== 0) Atomics.notify(ctl, b + W_HEAD);
    }
    const got = [start[0], start[1]];
    let sum = 0;
    for (;;) {
      for (let w = 0; w < 2; w++) {
        const d = Atomics.load(ctl, 4 + w * 4 + W_DONE);
        for (; got[w] !== d; got[w]++) sum += data[w][RING + (got[w] & RING_MASK)];
      }
      if (got[0] === heads[0] && got[1] === heads[1]) break;
      const seq = Atomics.load(ctl, SEQ);
      Atomics.store(ctl, WAIT, 1);
      // Re-checked after announcing the wait: a completion published before
      // the announcement changed SEQ, one after it sees WAIT and notifies.
      if (
        Atomics.load(ctl, 4 + W_DONE) === got[0] && Atomics.load(ctl, 8 + W_DONE) === got[1]
      ) {
        Atomics.wait(ctl, SEQ, seq, 1000);
      }
      Atomics.store(ctl, WAIT, 0);
    }
    this.#last = performance.now();
    return sum;
  }

  close(): void {
    for (const w of this.#workers) w.terminate();
    this.#workers = [];
  }
}

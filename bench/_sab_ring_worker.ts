// The SAB-ring anchor's worker (bench/thread_pool_bench.ts): the floor of a
// shared-memory job queue with no pool semantics. One single-producer ring
// per worker: the owner writes f64 arguments and publishes HEAD; the worker
// drains everything published, writes x + 1 into the result slots,
// publishes DONE, and wakes the owner only when its WAIT word says it
// sleeps. The worker sleeps on HEAD only when its ring is empty.
import { RING, RING_MASK, ringWords, SEQ, W_DONE, W_HEAD, W_SLEEP, WAIT } from "./_sab_ring.ts";

interface Init {
  sab: SharedArrayBuffer;
  index: number;
}

const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent<Init>) => void) | null;
  close(): void;
};

scope.onmessage = (e: MessageEvent<Init>): void => {
  const { sab, index } = e.data;
  const ctl = new Int32Array(sab, 0, ringWords(2));
  const base = 4 + index * 4;
  const data = new Float64Array(sab, ringWords(2) * 4 + index * RING * 16, RING * 2);
  let t = 0;
  for (;;) {
    let h = Atomics.load(ctl, base + W_HEAD);
    if (h === t) {
      Atomics.store(ctl, base + W_SLEEP, 1);
      h = Atomics.load(ctl, base + W_HEAD);
      // Idle for 2 s: leave, so that `deno bench` can exit (the owner makes
      // a new worker when it needs one).
      if (h === t && Atomics.wait(ctl, base + W_HEAD, t, 2000) === "timed-out") {
        scope.close();
        return;
      }
      Atomics.store(ctl, base + W_SLEEP, 0);
      continue;
    }
    for (; t !== h; t++) {
      const i = t & RING_MASK;
      data[RING + i] = data[i] + 1;
    }
    Atomics.store(ctl, base + W_DONE, t);
    Atomics.add(ctl, SEQ, 1);
    if (Atomics.load(ctl, WAIT) !== 0) Atomics.notify(ctl, SEQ);
  }
};

// The thread pool (thread_pool/) next to two anchors measured in the same
// run, all with 2 workers and trivial jobs (x => x + 1, results checked):
// - a postMessage pool: one message per job and one reply per job;
// - a SAB ring (bench/_sab_ring.ts): shared-memory rings with no pool
//   semantics, the floor of any shared-memory queue.
//
//   deno run -A bench/thread_pool_bench.ts    # table: jobs/s, µs per job, ratios
//   deno bench -A bench/thread_pool_bench.ts  # the same cases as deno bench batches
//                                             # (bench/run.ts pairs them)
//
// Cases: throughput (BATCH jobs submitted at once, then every completion
// has run / reply arrived) and latency (one job in flight, submit to
// completion). The aioloop pool's owner blocks in ctx.poll(true); the
// postMessage anchor's owner awaits its replies on Deno's event loop; the
// SAB ring's owner sleeps in Atomics.wait.
import { AioContext } from "../aio/aio_context.ts";
import { getThreadPool, type ThreadPoolAio, type ThreadPoolWork } from "../thread_pool/mod.ts";
import { SabRingPool } from "./_sab_ring.ts";

const BATCH = 1000;
const LATENCY_JOBS = 300;
const WARMUP_JOBS = 20_000;
const ROUNDS = 15;
const INC: ThreadPoolWork = {
  module: new URL("../_tests/testdata/pool_jobs.ts", import.meta.url),
  name: "inc",
};

/** Sum of x + 1 for x in 0..n-1: every result is checked through it. */
function expected(n: number): number {
  return (n * (n - 1)) / 2 + n;
}

function check(got: number, n: number): void {
  if (got !== expected(n)) throw new Error(`wrong results: sum ${got}, want ${expected(n)}`);
}

// ---------------------------------------------------------------------------
// Anchor: 2 Workers, one postMessage per job and one reply per job.

// A worker closes itself after 2 s without jobs, so that `deno bench` can
// exit (plain Workers keep the process alive); the pool makes new ones
// after 1 s without use.
const ANCHOR_WORKER = `
let jobs = 0, seen = 0;
setInterval(() => { if (jobs === seen) self.close(); seen = jobs; }, 2000);
self.onmessage = (e) => { jobs++; self.postMessage(e.data + 1); };
`;

class PostMessagePool {
  #workers: Worker[] = [];
  #pending = 0;
  #sum = 0;
  #done: ((sum: number) => void) | null = null;
  #next = 0;
  #last = 0;

  #ensure(): void {
    if (this.#workers.length > 0 && performance.now() - this.#last < 1000) return;
    this.close();
    const url = `data:text/javascript,${encodeURIComponent(ANCHOR_WORKER)}`;
    for (let i = 0; i < 2; i++) {
      const w = new Worker(url, { type: "module" });
      w.onmessage = (e: MessageEvent<number>) => {
        this.#sum += e.data;
        if (--this.#pending === 0) this.#done?.(this.#sum);
      };
      this.#workers.push(w);
    }
  }

  /** Posts n jobs round-robin; resolves with the sum of the replies. */
  async run(n: number): Promise<number> {
    this.#ensure();
    const { promise, resolve } = Promise.withResolvers<number>();
    this.#pending = n;
    this.#sum = 0;
    this.#done = resolve;
    const ws = this.#workers;
    for (let i = 0; i < n; i++) ws[this.#next++ & 1].postMessage(i);
    const sum = await promise;
    this.#last = performance.now();
    return sum;
  }

  close(): void {
    for (const w of this.#workers) w.terminate();
    this.#workers = [];
  }
}

// ---------------------------------------------------------------------------
// aioloop: the pool of a context, 2 workers.

class AioPool {
  readonly ctx: AioContext = AioContext.create({ name: "bench" });
  readonly pool: ThreadPoolAio = getThreadPool(this.ctx);
  #count = 0;
  #sum = 0;
  #cb = (ret: unknown): void => {
    this.#count++;
    this.#sum += ret as number;
  };

  constructor(max: number) {
    this.pool.setParams(Math.min(2, max), max);
  }

  /** Submits n jobs, polls until every completion ran; returns the sum of results. */
  run(n: number): number {
    this.#count = 0;
    this.#sum = 0;
    for (let i = 0; i < n; i++) this.pool.submitAio(INC, i, this.#cb);
    while (this.#count < n) this.ctx.poll(true);
    return this.#sum;
  }

  close(): void {
    this.ctx.destroy();
  }
}

let aio: AioPool | null = null;
let anchor: PostMessagePool | null = null;
let ring: SabRingPool | null = null;

async function setUp(): Promise<{ aio: AioPool; anchor: PostMessagePool; ring: SabRingPool }> {
  if (aio === null) {
    aio = new AioPool(2);
    check(aio.run(WARMUP_JOBS), WARMUP_JOBS);
  }
  if (anchor === null) {
    anchor = new PostMessagePool();
    check(await anchor.run(WARMUP_JOBS), WARMUP_JOBS);
  }
  if (ring === null) {
    ring = new SabRingPool();
    for (let i = 0; i < 20; i++) check(ring.run(BATCH), BATCH);
  }
  return { aio, anchor, ring };
}

Deno.bench({
  name: `aioloop pool, 2 workers: ${BATCH} trivial jobs`,
  group: "thread pool throughput",
  async fn(b) {
    const { aio } = await setUp();
    b.start();
    const sum = aio.run(BATCH);
    b.end();
    check(sum, BATCH);
  },
});

Deno.bench({
  name: `postMessage pool, 2 Workers: ${BATCH} trivial jobs`,
  group: "thread pool throughput",
  baseline: true,
  async fn(b) {
    const { anchor } = await setUp();
    b.start();
    const sum = await anchor.run(BATCH);
    b.end();
    check(sum, BATCH);
  },
});

Deno.bench({
  name: `SAB ring anchor, 2 Workers: ${BATCH} trivial jobs`,
  group: "thread pool throughput",
  async fn(b) {
    const { ring } = await setUp();
    b.start();
    const sum = ring.run(BATCH);
    b.end();
    check(sum, BATCH);
  },
});

Deno.bench({
  name: "aioloop pool, 2 workers: one job in flight",
  group: "thread pool latency",
  async fn(b) {
    const { aio } = await setUp();
    b.start();
    aio.run(1);
    b.end();
  },
});

Deno.bench({
  name: "postMessage pool, 2 Workers: one job in flight",
  group: "thread pool latency",
  baseline: true,
  async fn(b) {
    const { anchor } = await setUp();
    b.start();
    await anchor.run(1);
    b.end();
  },
});

Deno.bench({
  name: "SAB ring anchor, 2 Workers: one job in flight",
  group: "thread pool latency",
  async fn(b) {
    const { ring } = await setUp();
    b.start();
    ring.run(1);
    b.end();
  },
});

// ---------------------------------------------------------------------------
// deno run: alternating rounds, medians and minima, from this one run.

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

async function main(): Promise<void> {
  const { aio, anchor, ring } = await setUp();
  type Case = { name: string; n: number; fn: () => number | Promise<number>; us: number[] };
  const mk = (name: string, n: number, fn: () => number | Promise<number>): Case => ({
    name,
    n,
    fn,
    us: [],
  });
  const through = [
    mk(`postMessage pool, 2 Workers: ${BATCH} jobs`, BATCH, () => anchor.run(BATCH)),
    mk(`aioloop pool, max 2: ${BATCH} jobs`, BATCH, () => aio.run(BATCH)),
    mk(`SAB ring anchor, 2 Workers: ${BATCH} jobs`, BATCH, () => ring.run(BATCH)),
  ];
  const lat = [
    mk("postMessage pool, 2 Workers: 1 job in flight", 1, () => anchor.run(1)),
    mk("aioloop pool, max 2: 1 job in flight", 1, () => aio.run(1)),
    mk("SAB ring anchor, 2 Workers: 1 job in flight", 1, () => ring.run(1)),
  ];
  // Rounds alternate between the cases, so load from other processes hits
  // them alike; latency rounds are the median of LATENCY_JOBS single jobs.
  for (let r = 0; r < ROUNDS; r++) {
    for (const c of through) {
      const t0 = performance.now();
      check(await c.fn(), c.n);
      c.us.push(((performance.now() - t0) * 1000) / c.n);
    }
    for (const c of lat) {
      const each: number[] = [];
      for (let i = 0; i < LATENCY_JOBS / ROUNDS + 5; i++) {
        const t0 = performance.now();
        check(await c.fn(), 1);
        each.push((performance.now() - t0) * 1000);
      }
      c.us.push(median(each));
    }
  }
  console.log(`thread pool, ${Deno.build.target}, ${ROUNDS} alternating rounds\n`);
  console.log("| case | jobs/s (median) | µs/job median | µs/job min | vs postMessage (median) |");
  console.log("| --- | ---: | ---: | ---: | ---: |");
  for (const group of [through, lat]) {
    const ref = median(group[0].us);
    for (const c of group) {
      const m = median(c.us);
      const ratio = c === group[0] ? "1.00 (anchor)" : `${(ref / m).toFixed(2)}× faster`;
      console.log(
        `| ${c.name} | ${Math.round(1e6 / m)} | ${m.toFixed(2)} | ${
          Math.min(...c.us).toFixed(2)
        } | ${ratio} |`,
      );
    }
  }
  const ratioOf = (a: Case, b: Case): string => (median(b.us) / median(a.us)).toFixed(2);
  console.log(
    `\naioloop / SAB ring (µs per job): throughput ${ratioOf(through[2], through[1])}×, ` +
      `latency ${ratioOf(lat[2], lat[1])}×`,
  );
  aio.close();
  anchor.close();
  ring.close();
}

if (import.meta.main) await main();

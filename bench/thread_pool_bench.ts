// The thread pool (thread_pool/) next to its anchor, measured in the same
// run: a pool of 2 plain Workers fed one postMessage per job (about 182 k
// jobs/s on a 2-vCPU guest, bench/README.md).
//
//   deno run -A bench/thread_pool_bench.ts    # table: jobs/s, µs per job, ratios
//   deno bench -A bench/thread_pool_bench.ts  # the same cases as deno bench batches
//
// Cases:
// - throughput: BATCH trivial jobs (x => x + 1) submitted at once, then
//   drained (every completion callback has run / every reply arrived);
// - latency: one job in flight, submit to completion.
// Both pools have 2 workers, started and warmed up before measuring. The
// aioloop pool's owner blocks in ctx.poll(true); the anchor's owner awaits
// its replies on Deno's event loop.
import { AioContext } from "../aio/aio_context.ts";
import { getThreadPool, type ThreadPoolAio, type ThreadPoolWork } from "../thread_pool/mod.ts";

const BATCH = 1000;
const LATENCY_JOBS = 2000;
const WARMUP_JOBS = 20_000;
const REPS = 7;
const INC: ThreadPoolWork = {
  module: new URL("../_tests/testdata/pool_jobs.ts", import.meta.url),
  name: "inc",
};

// ---------------------------------------------------------------------------
// Anchor: 2 Workers, one postMessage per job and one reply per job.

// A worker closes itself after a second without jobs, so that `deno bench`
// can exit (plain Workers keep the process alive); the pool makes new ones
// on demand.
const ANCHOR_WORKER = `
let jobs = 0, seen = 0;
setInterval(() => { if (jobs === seen) self.close(); seen = jobs; }, 1000);
self.onmessage = (e) => { jobs++; self.postMessage(e.data + 1); };
`;

class PostMessagePool {
  #workers: Worker[] = [];
  #pending = 0;
  #done: (() => void) | null = null;
  #next = 0;

  #ensure(): void {
    if (this.#workers.length > 0) return;
    const url = `data:text/javascript,${encodeURIComponent(ANCHOR_WORKER)}`;
    for (let i = 0; i < 2; i++) {
      const w = new Worker(url, { type: "module" });
      w.onmessage = () => {
        if (--this.#pending === 0) this.#done?.();
      };
      this.#workers.push(w);
    }
  }

  /** Posts n jobs round-robin and resolves when every reply arrived. */
  run(n: number): Promise<void> {
    this.#ensure();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#pending = n;
    this.#done = resolve;
    const ws = this.#workers;
    for (let i = 0; i < n; i++) ws[this.#next++ & 1].postMessage(i);
    return promise;
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
  #cb = (): void => {
    this.#count++;
  };

  constructor(max: number) {
    this.pool.setParams(Math.min(2, max), max);
  }

  /** Submits n jobs, then polls until every completion ran. */
  run(n: number): void {
    this.#count = 0;
    for (let i = 0; i < n; i++) this.pool.submitAio(INC, i, this.#cb);
    while (this.#count < n) this.ctx.poll(true);
  }

  close(): void {
    this.ctx.destroy();
  }
}

let aio: AioPool | null = null;
let anchor: PostMessagePool | null = null;

async function setUp(): Promise<{ aio: AioPool; anchor: PostMessagePool }> {
  if (aio === null) {
    aio = new AioPool(2);
    aio.run(WARMUP_JOBS);
  }
  if (anchor === null) {
    anchor = new PostMessagePool();
    await anchor.run(WARMUP_JOBS);
  }
  return { aio, anchor };
}

Deno.bench({
  name: `aioloop pool, 2 workers: ${BATCH} trivial jobs`,
  group: "thread pool throughput",
  async fn(b) {
    const { aio } = await setUp();
    b.start();
    aio.run(BATCH);
    b.end();
  },
});

Deno.bench({
  name: `postMessage pool, 2 Workers: ${BATCH} trivial jobs`,
  group: "thread pool throughput",
  baseline: true,
  async fn(b) {
    const { anchor } = await setUp();
    b.start();
    await anchor.run(BATCH);
    b.end();
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

// ---------------------------------------------------------------------------
// deno run: a table of medians over REPS repetitions, from this one run.

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

async function timeIt(fn: () => void | Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function main(): Promise<void> {
  const { aio, anchor } = await setUp();
  const wide = new AioPool(64);
  wide.run(WARMUP_JOBS);

  const rows: { name: string; jobsPerS: number; usPerJob: number }[] = [];
  const through = async (name: string, fn: () => void | Promise<void>): Promise<void> => {
    const ms: number[] = [];
    for (let r = 0; r < REPS; r++) ms.push(await timeIt(fn));
    const m = median(ms);
    rows.push({ name, jobsPerS: BATCH / (m / 1000), usPerJob: (m * 1000) / BATCH });
  };
  const latency = async (name: string, fn: () => void | Promise<void>): Promise<void> => {
    const us: number[] = [];
    for (let r = 0; r < REPS; r++) {
      const each: number[] = [];
      for (let i = 0; i < LATENCY_JOBS / REPS; i++) each.push((await timeIt(fn)) * 1000);
      us.push(median(each));
    }
    const m = median(us);
    rows.push({ name, jobsPerS: 1e6 / m, usPerJob: m });
  };

  await through(`postMessage pool, 2 Workers: ${BATCH} jobs (anchor 11a)`, () => anchor.run(BATCH));
  await through(`aioloop pool, max 2: ${BATCH} jobs`, () => aio.run(BATCH));
  await through(`aioloop pool, max 64 (QEMU default): ${BATCH} jobs`, () => wide.run(BATCH));
  const wideWorkers = wide.pool.stats().curThreads;
  // 64 more threads stay in the process otherwise.
  wide.close();
  await latency("postMessage pool, 2 Workers: 1 job in flight", () => anchor.run(1));
  await latency("aioloop pool, max 2: 1 job in flight", () => aio.run(1));

  const base = rows[0];
  const baseLat = rows[3];
  console.log(`thread pool, ${Deno.build.target}, medians of ${REPS}\n`);
  console.log("| case | jobs/s | µs per job | ratio to anchor |");
  console.log("| --- | ---: | ---: | ---: |");
  for (const [i, r] of rows.entries()) {
    const ref = i < 3 ? base : baseLat;
    const ratio = r === ref ? "1.00 (anchor)" : (ref.usPerJob / r.usPerJob).toFixed(2) + "× faster";
    console.log(`| ${r.name} | ${Math.round(r.jobsPerS)} | ${r.usPerJob.toFixed(2)} | ${ratio} |`);
  }
  console.log(`\nworkers of the max-64 pool after its runs: ${wideWorkers}`);
  aio.close();
  anchor.close();
}

if (import.meta.main) await main();

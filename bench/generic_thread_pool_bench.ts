// The generic ThreadPool (thread_pool/generic_pool.ts) next to the AIO pool
// it shares its workers with, measured in the same run: BATCH trivial jobs
// submitted at once, then waited for (generic: waitSync(); AIO: poll(true)
// until every completion callback ran). Both pools have 2 workers, started
// and warmed up before measuring. The AIO pool is the anchor.
//
//   deno run -A bench/generic_thread_pool_bench.ts    # table: jobs/s, ratio, alternating rounds
//   deno bench -A bench/generic_thread_pool_bench.ts  # the same cases as deno bench batches
import { AioContext } from "../aio/aio_context.ts";
import {
  getThreadPool,
  ThreadPool,
  type ThreadPoolAio,
  type ThreadPoolWork,
} from "../thread_pool/mod.ts";

const BATCH = 1000;
const WARMUP_JOBS = 20_000;
const ROUNDS = 15;
const LATENCY_JOBS = 1500;
const INC: ThreadPoolWork = {
  module: new URL("../_tests/testdata/pool_jobs.ts", import.meta.url),
  name: "inc",
};

class AioPool {
  readonly ctx: AioContext = AioContext.create({ name: "bench" });
  readonly pool: ThreadPoolAio = getThreadPool(this.ctx);
  #count = 0;
  #cb = (): void => {
    this.#count++;
  };

  constructor() {
    this.pool.setParams(2, 2);
  }

  run(n: number): void {
    this.#count = 0;
    for (let i = 0; i < n; i++) this.pool.submitAio(INC, i, this.#cb);
    while (this.#count < n) this.ctx.poll(true);
  }

  close(): void {
    this.ctx.destroy();
  }
}

class GenericPool {
  readonly pool: ThreadPool = new ThreadPool({ maxThreads: 2 });

  run(n: number): void {
    for (let i = 0; i < n; i++) this.pool.submit(INC, i);
    this.pool.waitSync();
  }

  close(): void {
    this.pool.free();
  }
}

let aio: AioPool | null = null;
let generic: GenericPool | null = null;

function setUp(): { aio: AioPool; generic: GenericPool } {
  if (aio === null) {
    aio = new AioPool();
    aio.run(WARMUP_JOBS);
  }
  if (generic === null) {
    generic = new GenericPool();
    generic.run(WARMUP_JOBS);
  }
  return { aio, generic };
}

Deno.bench({
  name: `generic ThreadPool, 2 workers: ${BATCH} trivial jobs + waitSync()`,
  group: "generic thread pool throughput",
  fn(b) {
    const { generic } = setUp();
    b.start();
    generic.run(BATCH);
    b.end();
  },
});

Deno.bench({
  name: `AIO pool, 2 workers: ${BATCH} trivial jobs + poll until completed`,
  group: "generic thread pool throughput",
  baseline: true,
  fn(b) {
    const { aio } = setUp();
    b.start();
    aio.run(BATCH);
    b.end();
  },
});

function timeIt(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

function main(): void {
  const { aio, generic } = setUp();
  // Alternating rounds, so both see the same machine noise; min and median of each.
  const a: number[] = [], g: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    a.push(timeIt(() => aio.run(BATCH)));
    g.push(timeIt(() => generic.run(BATCH)));
  }
  const sorted = (xs: number[]): number[] => [...xs].sort((x, y) => x - y);
  const row = (name: string, xs: number[], ref: number[]): string => {
    const s = sorted(xs), r = sorted(ref);
    const med = s[s.length >> 1], refMed = r[r.length >> 1];
    const ratio = xs === ref ? "1.00 (anchor)" : (refMed / med).toFixed(2);
    return `| ${name} | ${Math.round(BATCH / (s[0] / 1000))} | ${
      Math.round(BATCH / (med / 1000))
    } | ${ratio} |`;
  };
  console.log(`generic thread pool, ${Deno.build.target}, ${ROUNDS} alternating rounds\n`);
  console.log("| case | jobs/s (best) | jobs/s (median) | speed vs anchor (median) |");
  console.log("| --- | ---: | ---: | ---: |");
  console.log(row(`AIO pool, max 2: ${BATCH} jobs`, a, a));
  console.log(row(`generic ThreadPool, max 2: ${BATCH} jobs`, g, a));
  // One job in flight: submit to the end of the wait, medians of LATENCY_JOBS each.
  const la: number[] = [], lg: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const ea: number[] = [], eg: number[] = [];
    for (let i = 0; i < LATENCY_JOBS / ROUNDS; i++) {
      ea.push(timeIt(() => aio.run(1)));
      eg.push(timeIt(() => generic.run(1)));
    }
    la.push(sorted(ea)[ea.length >> 1]);
    lg.push(sorted(eg)[eg.length >> 1]);
  }
  const lrow = (name: string, xs: number[], ref: number[]): string => {
    const med = sorted(xs)[xs.length >> 1], refMed = sorted(ref)[ref.length >> 1];
    const ratio = xs === ref ? "1.00 (anchor)" : (refMed / med).toFixed(2);
    return `| ${name} | ${(sorted(xs)[0] * 1000).toFixed(1)} µs | ${
      (med * 1000).toFixed(1)
    } µs | ${ratio} |`;
  };
  console.log("\n| case | latency (best round) | latency (median) | speed vs anchor (median) |");
  console.log("| --- | ---: | ---: | ---: |");
  console.log(lrow("AIO pool: 1 job in flight", la, la));
  console.log(lrow("generic ThreadPool: 1 job, submit + waitSync()", lg, la));
  aio.close();
  generic.close();
}

if (import.meta.main) main();

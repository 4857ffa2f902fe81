// The long mixed-load run (`deno test -A _tests/aio_mixed_soak.ts`): random
// fd / BH / timer load on a default (`auto`) context of the main thread,
// thread-pool jobs completing into it, and an IOThread running bursts of the
// same load on contexts of its own, all at once for a while; then every
// invariant of _tests/testdata/mixed_load.ts, every job and burst accounted
// for, and no fd left open. Not part of `deno task test` (no _test.ts).
//
// Environment:
//   AIOLOOP_MIXED_SECONDS   how long the load runs (default 180)
//   AIOLOOP_MIXED_SEED      seed (default: random; printed either way)
import { assert, assertEquals } from "@std/assert";
import { AioContext } from "../aio/aio_context.ts";
import { fdmonIoUring } from "../fdmon/mod.ts";
import { IOThread } from "../iothread/iothread.ts";
import { getThreadPool } from "../thread_pool/thread_pool.ts";
import { openFdCount } from "./_fd_leak.ts";
import { type LoadStats, MixedLoad } from "./testdata/mixed_load.ts";

function fdList(): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    try {
      out.push(`${e.name}->${Deno.readLinkSync(`/proc/self/fd/${e.name}`)}`);
    } catch { /* closed meanwhile */ }
  }
  return out;
}

function envInt(name: string, fallback: number): number {
  const v = Deno.env.get(name);
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${name}: bad value '${v}'`);
  return n;
}

const seconds = envInt("AIOLOOP_MIXED_SECONDS", 180);
const seed = envInt("AIOLOOP_MIXED_SEED", Math.floor(Math.random() * 0x7fffffff));
const LOAD = new URL("./testdata/mixed_load.ts", import.meta.url).href;
const JOBS = new URL("./testdata/pool_jobs.ts", import.meta.url).href;

Deno.test(`aio mixed soak: ${seconds} s of fd/BH/timer load, pool jobs and an IOThread`, async () => {
  console.log(`mixed soak: ${seconds} s, seed ${seed}`);
  // The first Worker of a process makes Deno open a few fds for good:
  // start and end one before counting.
  {
    using warm = AioContext.create();
    let done = false;
    getThreadPool(warm).submitAio({ module: JOBS, name: "identity" }, 0, () => done = true);
    while (!done) {
      warm.poll(false);
      await new Promise((r) => setTimeout(r, 1));
    }
  }
  await (await IOThread.create({ id: "mixed-warm" })).stop();
  await new Promise((r) => setTimeout(r, 200));
  const before = openFdCount();
  const ctx = AioContext.create({ name: "mixed-main" });
  const uring = fdmonIoUring.supported();
  assertEquals(ctx.fdmon, uring ? "io_uring" : "poll", ctx.fdmonInfo().reason);
  const load = new MixedLoad(ctx, seed);
  const pool = getThreadPool(ctx);
  const io = await IOThread.create({ id: "mixed-io" });
  let jobsOut = 0;
  let jobsDone = 0;
  let burstsDone = 0;
  let burst: Promise<void> | null = null;
  const burstStats: LoadStats[] = [];
  let failure: unknown = null;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let nextReport = t0 + 30_000;
  try {
    while (performance.now() < end && failure === null) {
      for (let k = 0; k < 50; k++) {
        load.step();
        if (k % 5 === 0 && jobsOut - jobsDone < 64) {
          const a = jobsOut++;
          pool.submitAio({ module: JOBS, name: "add" }, [a, 1], (ret, err) => {
            if (err !== undefined && err !== null) failure ??= err;
            else if (ret !== a + 1) failure ??= new Error(`job ${a} returned ${ret}`);
            jobsDone++;
          });
        }
      }
      if (burst === null) {
        const s = seed + 1 + burstsDone;
        burst = io.run(LOAD, "iothreadBurst", [s, 200]).then(
          (r) => {
            const st = r as LoadStats & { fdmon: string; reason: string };
            if (st.fdmon !== ctx.fdmon) {
              failure ??= new Error(`IOThread context got ${st.fdmon}: ${st.reason}`);
            }
            burstStats.push(st);
            burstsDone++;
            burst = null;
          },
          (e) => {
            failure ??= e;
          },
        );
      }
      // Let the IOThread's replies in.
      await new Promise((r) => setTimeout(r, 0));
      if (performance.now() > nextReport) {
        nextReport += 30_000;
        const s = (performance.now() - t0) / 1000;
        console.log(
          `  ${s.toFixed(0)} s: ${
            JSON.stringify(load.stats)
          }, jobs ${jobsDone}, bursts ${burstsDone}`,
        );
      }
    }
    if (failure !== null) throw failure;
    load.drain(30_000);
    const stop = performance.now() + 30_000;
    while ((jobsDone < jobsOut || burst !== null) && failure === null) {
      assert(performance.now() < stop, `not drained: jobs ${jobsDone}/${jobsOut}, burst ${burst}`);
      ctx.poll(false);
      await new Promise((r) => setTimeout(r, 1));
    }
    if (failure !== null) throw failure;
  } finally {
    load.dispose();
    await io.stop();
    ctx.destroy();
  }
  const sum = burstStats.reduce(
    (a, b) => ({
      bytes: a.bytes + b.bytes,
      bhRuns: a.bhRuns + b.bhRuns,
      oneshots: a.oneshots + b.oneshots,
      timerFires: a.timerFires + b.timerFires,
      polls: a.polls + b.polls,
      blockingPolls: a.blockingPolls + b.blockingPolls,
    }),
    { bytes: 0, bhRuns: 0, oneshots: 0, timerFires: 0, polls: 0, blockingPolls: 0 },
  );
  const s = (performance.now() - t0) / 1000;
  console.log(
    `mixed soak done in ${s.toFixed(1)} s on ${uring ? "io_uring" : "poll"}: main ${
      JSON.stringify(load.stats)
    }; pool jobs ${jobsDone}; IOThread bursts ${burstsDone} ${JSON.stringify(sum)}`,
  );
  assert(load.stats.timerFires > 0 && load.stats.bytes > 0 && jobsDone > 0 && burstsDone > 0);
  // Worker threads close their runtime's fds as they end, shortly after.
  const fdDeadline = performance.now() + 10_000;
  while (openFdCount() !== before && performance.now() < fdDeadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assertEquals(openFdCount(), before, `fds leaked: ${fdList().join(", ")}`);
});

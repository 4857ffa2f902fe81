// The generic ThreadPool (thread_pool/generic_pool.ts): QEMU's
// thread_pool_new / submit / submit_immediate / wait / set_max_threads /
// adjust_max_threads_to_work / free, on the AIO pool's workers. Workers
// report through SharedArrayBuffer words (see testdata/generic_pool_jobs.ts).
import { assert, assertEquals, assertInstanceOf, assertRejects, assertThrows } from "@std/assert";
import { fdCountSteady, runScript as runInSubprocess } from "./_harness.ts";
import { AioContext } from "../aio/aio_context.ts";
import { getCurrentAioContext } from "../aio/current.ts";
import { getThreadPool, ThreadPool, type ThreadPoolWork } from "../thread_pool/mod.ts";
import { openFdCount } from "./_fd_leak.ts";
import fc from "./model/fc.ts";

const JOBS = new URL("./testdata/generic_pool_jobs.ts", import.meta.url);

function job(name: string): ThreadPoolWork {
  return { module: JOBS, name };
}

function words(n: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(4 * n));
}

const threadCount = (): number => [...Deno.readDirSync("/proc/self/task")].length;

/** Waits (up to 10 s, letting the event loop run) until `cond` holds. */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The failure a promise rejected with, or null if it resolved. */
function outcome(p: Promise<void>): Promise<unknown> {
  return p.then(() => null, (e) => e);
}

// The first Worker of a process makes Deno open fds and threads for good:
// make one before any test counts them.
{
  using pool = new ThreadPool();
  pool.submit(job("countRun"), [words(2), 0]);
  pool.waitSync();
}

Deno.test("ThreadPool: submit N jobs, then wait(): each ran exactly once", async () => {
  const n = 200;
  const runs = words(1 + n);
  using pool = new ThreadPool({ maxThreads: 3 });
  for (let i = 0; i < n; i++) pool.submit(job("countRun"), [runs, i]);
  await pool.wait();
  assertEquals(runs[0], n);
  assertEquals([...runs.subarray(1)], new Array(n).fill(1));
  assertEquals(pool.pendingWork, 0);
  assertEquals(pool.stats().requests, 0);
  assert(pool.stats().curThreads <= 3);
});

Deno.test("ThreadPool: waitSync() is a barrier between two batches", () => {
  const runs = words(1 + 20);
  using pool = new ThreadPool({ maxThreads: 2 });
  for (let i = 0; i < 10; i++) pool.submit(job("countRun"), [runs, i]);
  pool.waitSync();
  assertEquals(runs[0], 10, "first batch all done at the barrier");
  for (let i = 10; i < 20; i++) pool.submit(job("countRun"), [runs, i]);
  pool.waitSync();
  assertEquals(runs[0], 20);
  assertEquals([...runs.subarray(1)], new Array(20).fill(1));
});

Deno.test("ThreadPool: wait() with nothing submitted returns at once and starts no worker", async () => {
  using pool = new ThreadPool();
  const first = await Promise.race([
    pool.wait().then(() => "waited"),
    new Promise((r) => setTimeout(() => r("timer"), 1000)),
  ]);
  assertEquals(first, "waited");
  pool.waitSync();
  assertEquals(pool.stats().curThreads, 0);
  assertEquals(pool.stats().workers, 0);
});

Deno.test("ThreadPool: concurrent wait() calls all resolve; failures are reported once", async () => {
  const runs = words(1 + 4);
  using pool = new ThreadPool({ maxThreads: 2 });
  for (let i = 0; i < 4; i++) pool.submit(job("countRun"), [runs, i]);
  pool.submit(job("failWith"), 7);
  const [a, b] = await Promise.all([outcome(pool.wait()), outcome(pool.wait())]);
  assertEquals(runs[0], 4);
  const reported = [a, b].filter((e) => e !== null);
  assertEquals(reported.length, 1, "exactly one waiter reports the failure");
  assertInstanceOf(reported[0], AggregateError);
  assertEquals(await outcome(pool.wait()), null);
});

Deno.test("ThreadPool: setMaxThreads() bounds how many jobs run at once", async () => {
  const c = words(3);
  using pool = new ThreadPool({ maxThreads: 2 });
  for (let i = 0; i < 8; i++) pool.submit(job("overlap"), [c, 150]);
  await pool.wait();
  assertEquals(c[2], 8);
  assertEquals(c[1], 2, "the most jobs at once, with a limit of 2");
  assert(pool.stats().curThreads <= 2);

  c.fill(0);
  assertEquals(pool.setMaxThreads(3), true);
  for (let i = 0; i < 9; i++) pool.submit(job("overlap"), [c, 150]);
  await pool.wait();
  assertEquals([c[1], c[2]], [3, 9], "raised to 3");

  // Lowering it: the workers above the limit leave once idle.
  c.fill(0);
  pool.setMaxThreads(1);
  await until(() => pool.stats().curThreads === 1, "workers above the limit to leave");
  for (let i = 0; i < 4; i++) pool.submit(job("overlap"), [c, 30]);
  await pool.wait();
  assertEquals([c[1], c[2]], [1, 4], "lowered to 1");
});

Deno.test("ThreadPool: raising the limit starts workers for work already queued", async () => {
  const g = words(2);
  using pool = new ThreadPool({ maxThreads: 1 });
  for (let i = 0; i < 3; i++) pool.submit(job("gate"), g);
  await until(() => g[1] >= 1, "the first job to start");
  assertEquals(pool.stats().queued, 2);
  pool.setMaxThreads(3);
  await until(() => g[1] === 3, "all three gated jobs to run at once");
  Atomics.store(g, 0, 1);
  Atomics.notify(g, 0);
  await pool.wait();
});

Deno.test("ThreadPool: submitImmediate() gives each job a worker even under a lower limit", async () => {
  // Two jobs that each wait for the other: with one worker they cannot
  // both run, so the first gives up after its timeout and fails.
  {
    const g = words(2);
    using pool = new ThreadPool({ maxThreads: 1 });
    pool.submit(job("rendezvous"), [g, 0, 1, 300]);
    pool.submit(job("rendezvous"), [g, 1, 0, 300]);
    const e = await outcome(pool.wait());
    assertInstanceOf(e, AggregateError, "the control case must fail: one worker, two parties");
    assertEquals(e.errors.length, 1);
    assertEquals(pool.maxThreads, 1);
  }
  {
    const g = words(2);
    using pool = new ThreadPool({ maxThreads: 1 });
    pool.submitImmediate(job("rendezvous"), [g, 0, 1, 10_000]);
    pool.submitImmediate(job("rendezvous"), [g, 1, 0, 10_000]);
    assertEquals(pool.maxThreads, 2, "raised to the amount of unfinished work");
    await pool.wait();
    assertEquals([...g], [1, 1]);
  }
});

Deno.test("ThreadPool: submitImmediate() sets the limit to the work, lowering it too", async () => {
  const runs = words(2);
  using pool = new ThreadPool({ maxThreads: 8 });
  pool.submitImmediate(job("countRun"), [runs, 0]);
  assertEquals(pool.maxThreads, 1, "QEMU: exactly one thread per task");
  await pool.wait();
  assertEquals(runs[0], 1);
});

Deno.test("ThreadPool: adjustMaxThreadsToWork() follows the unfinished work", async () => {
  const g = words(2);
  using pool = new ThreadPool({ maxThreads: 1 });
  for (let i = 0; i < 3; i++) pool.submit(job("gate"), g);
  assertEquals(pool.pendingWork, 3);
  assertEquals(pool.adjustMaxThreadsToWork(), true);
  assertEquals(pool.maxThreads, 3);
  await until(() => g[1] === 3, "the three jobs to run at once");
  Atomics.store(g, 0, 1);
  Atomics.notify(g, 0);
  await pool.wait();
  assertEquals(pool.pendingWork, 0);
  // No work left: the limit becomes 1 (QEMU would assert 0 > 0).
  pool.adjustMaxThreadsToWork();
  assertEquals(pool.maxThreads, 1);
});

Deno.test("ThreadPool: failures are collected into an AggregateError, the rest still runs", async () => {
  const runs = words(1 + 5);
  using pool = new ThreadPool({ maxThreads: 2 });
  for (let i = 0; i < 5; i++) {
    pool.submit(job("countRun"), [runs, i]);
    if (i % 2 === 0) pool.submit(job("failWith"), i);
  }
  const e = await outcome(pool.wait());
  assertEquals(runs[0], 5);
  assertInstanceOf(e, AggregateError);
  assertEquals(e.errors.length, 3);
  for (const err of e.errors) assertInstanceOf(err, RangeError);
  assertEquals(e.errors.map((x: Error) => x.message).sort(), ["bad 0", "bad 2", "bad 4"]);
  assert(e.message.startsWith("3 thread pool work item(s) failed"), e.message);
  // Reported once.
  pool.waitSync();
});

Deno.test("ThreadPool: a worker that dies fails its job only; a new worker takes the rest", async () => {
  const runs = words(1 + 3);
  using pool = new ThreadPool({ maxThreads: 1 });
  pool.submit(job("closeWorker"));
  for (let i = 0; i < 3; i++) pool.submit(job("countRun"), [runs, i]);
  const e = await outcome(pool.wait());
  assertInstanceOf(e, AggregateError);
  assertEquals(e.errors.length, 1);
  assert(/exited while running 'closeWorker'/.test(e.errors[0].message), e.errors[0].message);
  assertEquals([...runs], [3, 1, 1, 1]);
});

Deno.test("ThreadPool: bad input throws typed errors and queues nothing", async () => {
  assertThrows(() => new ThreadPool({ maxThreads: 0 }), RangeError);
  assertThrows(() => new ThreadPool({ maxThreads: -1 }), RangeError);
  assertThrows(() => new ThreadPool({ maxThreads: 1.5 }), RangeError);
  assertThrows(() => new ThreadPool({ maxThreads: NaN }), RangeError);
  assertThrows(() => new ThreadPool({ maxThreads: 2 ** 31 }), RangeError);
  using pool = new ThreadPool({ maxThreads: 2 });
  assertThrows(() => pool.setMaxThreads(0), RangeError);
  assertThrows(() => pool.setMaxThreads(-3), RangeError);
  assertThrows(() => pool.setMaxThreads(Infinity), RangeError);
  assertEquals(pool.maxThreads, 2, "a refused limit changes nothing");
  assertThrows(() => pool.submit(null as unknown as ThreadPoolWork), TypeError);
  assertThrows(() => pool.submit({ module: JOBS, name: "" }), TypeError);
  assertThrows(() => pool.submit({ module: "./relative.ts", name: "x" }), TypeError);
  assertThrows(() => pool.submit(job("countRun"), () => 1));
  assertThrows(() => pool.submitImmediate({ module: JOBS, name: "" }), TypeError);
  assertEquals(pool.pendingWork, 0);
  assertEquals(pool.maxThreads, 2, "a refused submitImmediate does not adjust");
  // An unknown export is found by the worker: a TypeError in the report.
  pool.submit(job("noSuchJob"), 1);
  const e = await outcome(pool.wait());
  assertInstanceOf(e, AggregateError);
  assertInstanceOf(e.errors[0], TypeError);
  assert(/no exported function 'noSuchJob'/.test(e.errors[0].message), e.errors[0].message);
  // A missing module too.
  pool.submit({ module: new URL("./testdata/no_such_module.ts", import.meta.url), name: "x" });
  const m = await outcome(pool.wait());
  assertInstanceOf(m, AggregateError);
  assertEquals(m.errors.length, 1);
});

Deno.test("ThreadPool: free() waits for the work; every use afterwards throws BadResource", async () => {
  const c = words(3);
  const pool = new ThreadPool({ maxThreads: 2 });
  for (let i = 0; i < 4; i++) pool.submit(job("overlap"), [c, 50]);
  pool.free();
  assertEquals(c[2], 4, "free() waited for all of it");
  assertEquals(pool.freed, true);
  pool.free(); // idempotent
  pool[Symbol.dispose]();
  await assertRejects(() => pool.wait(), Deno.errors.BadResource, "freed");
  assertThrows(() => pool.waitSync(), Deno.errors.BadResource, "freed");
  assertThrows(() => pool.submit(job("countRun"), [words(2), 0]), Deno.errors.BadResource);
  assertThrows(() => pool.submitImmediate(job("countRun"), [words(2), 0]), Deno.errors.BadResource);
  assertThrows(() => pool.setMaxThreads(2), Deno.errors.BadResource);
  assertThrows(() => pool.adjustMaxThreadsToWork(), Deno.errors.BadResource);
  assertEquals(c[2], 4);
});

Deno.test("ThreadPool: using / await using free the pool; unreported failures are thrown", async () => {
  let kept: ThreadPool | undefined;
  {
    using pool = new ThreadPool();
    kept = pool;
  }
  await assertRejects(() => kept!.wait(), Deno.errors.BadResource);

  const runs = words(2);
  {
    await using pool = new ThreadPool();
    kept = pool;
    pool.submit(job("countRun"), [runs, 0]);
  }
  assertEquals([kept.freed, runs[0]], [true, 1]);

  const pool = new ThreadPool();
  pool.submit(job("failWith"), 1);
  const e = assertThrows(() => pool.free(), AggregateError) as AggregateError;
  assertEquals(e.errors[0].message, "bad 1");
  assertEquals(pool.freed, true, "freed all the same");
});

Deno.test("ThreadPool: needs no current AioContext and leaves a context's AIO pool alone", async () => {
  assertEquals(getCurrentAioContext(), null);
  using ctx = AioContext.create();
  const aio = getThreadPool(ctx);
  const runs = words(2);
  using pool = new ThreadPool();
  pool.submit(job("countRun"), [runs, 0]);
  await pool.wait();
  assertEquals(runs[0], 1);
  assertEquals([aio.stats().curThreads, aio.stats().requests], [0, 0]);
});

Deno.test("ThreadPool: wait() leaves the event loop running (a timer opens the gate)", async () => {
  const g = words(2);
  using pool = new ThreadPool({ maxThreads: 2 });
  pool.submit(job("gate"), g);
  pool.submit(job("gate"), g);
  let fired = false;
  setTimeout(() => {
    fired = true;
    Atomics.store(g, 0, 1);
    Atomics.notify(g, 0);
  }, 50);
  await pool.wait();
  assert(fired, "the jobs could only finish after the timer ran");
  assertEquals(g[1], 2);
});

const ROOT = new URL("../", import.meta.url);
const ROOT_PATH = decodeURIComponent(ROOT.pathname);
const MOD = JSON.stringify(new URL("thread_pool/mod.ts", ROOT).href);

/** Runs `source` in a subprocess with `flags`: exit code and all output. */
async function runScript(source: string, flags: string[]): Promise<{ code: number; out: string }> {
  const r = await runInSubprocess(source, flags);
  return { code: r.code, out: r.stdout + r.stderr };
}

Deno.test("ThreadPool: a pending wait() keeps the process alive; idle or busy workers do not", async () => {
  const waits = await runScript(
    `import { ThreadPool } from ${MOD};
const pool = new ThreadPool();
pool.submit({ module: "data:text/javascript,export function nap(ms) { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms); }", name: "nap" }, 300);
await pool.wait();
console.log("waited");
`,
    ["--allow-ffi", `--allow-read=${ROOT_PATH}`],
  );
  assertEquals([waits.code, waits.out.trim()], [0, "waited"]);
  // Never freed, a job that never ends: the script still exits.
  const leaves = await runScript(
    `import { ThreadPool } from ${MOD};
const pool = new ThreadPool();
pool.submit({ module: "data:text/javascript,export function forever() { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); }", name: "forever" });
console.log("submitted", pool.pendingWork);
`,
    ["--allow-ffi", `--allow-read=${ROOT_PATH}`],
  );
  assertEquals([leaves.code, leaves.out.trim()], [0, "submitted 1"]);
});

Deno.test("ThreadPool: without read permission for the worker module, wait() reports NotCapable", async () => {
  const { code, out } = await runScript(
    `import { ThreadPool } from ${MOD};
using pool = new ThreadPool();
pool.submit({ module: "data:text/javascript,export function f() {}", name: "f" });
try {
  await pool.wait();
  console.log("no error");
} catch (e) {
  const errors = (e as AggregateError).errors ?? [];
  console.log((e as Error).name, errors.length, errors[0]?.name, errors[0]?.message);
}
`,
    ["--allow-ffi"],
  );
  assertEquals(code, 0, out);
  assert(out.startsWith("AggregateError 1 NotCapable"), out);
  assert(out.includes(`--allow-read=${ROOT_PATH}`), out);
});

type Op =
  | { op: "submit" | "submitImmediate"; fail: boolean }
  | { op: "setMaxThreads"; n: number }
  | { op: "adjust" | "wait" | "waitSync" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant("submit" as const), fail: fc.boolean() }) },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant("submitImmediate" as const), fail: fc.boolean() }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("setMaxThreads" as const),
      n: fc.integer({ min: 1, max: 3 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("adjust" as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("wait" as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("waitSync" as const) }) },
);

Deno.test("ThreadPool: any sequence of operations runs each job once and reports each failure once", async () => {
  const MAX_OPS = 30;
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 3 }),
      fc.array(opArb, { maxLength: MAX_OPS }),
      async (max, ops) => {
        const runs = words(1 + MAX_OPS);
        const ran: number[] = [];
        let failuresSubmitted = 0, failuresReported = 0;
        const take = (e: unknown): void => {
          assertInstanceOf(e, AggregateError);
          for (const x of e.errors) assertInstanceOf(x, RangeError);
          failuresReported += e.errors.length;
        };
        const barrier = (): void => {
          assertEquals(pool.pendingWork, 0);
          for (const id of ran) assertEquals(runs[1 + id], 1, `job ${id} ran once at the barrier`);
          assertEquals(failuresReported, failuresSubmitted);
        };
        const pool = new ThreadPool({ maxThreads: max });
        try {
          for (const [i, o] of ops.entries()) {
            switch (o.op) {
              case "submit":
              case "submitImmediate":
                if (o.fail) {
                  failuresSubmitted++;
                  pool[o.op](job("failWith"), i);
                } else {
                  ran.push(i);
                  pool[o.op](job("countRun"), [runs, i]);
                }
                if (o.op === "submitImmediate") assert(pool.maxThreads >= 1);
                break;
              case "setMaxThreads":
                pool.setMaxThreads(o.n);
                assertEquals(pool.maxThreads, o.n);
                break;
              case "adjust":
                pool.adjustMaxThreadsToWork();
                assert(pool.maxThreads >= 1);
                break;
              case "wait": {
                const e = await outcome(pool.wait());
                if (e !== null) take(e);
                barrier();
                break;
              }
              case "waitSync":
                try {
                  pool.waitSync();
                } catch (e) {
                  take(e);
                }
                barrier();
                break;
            }
          }
        } finally {
          try {
            pool.free();
          } catch (e) {
            take(e);
          }
        }
        assertEquals(runs[0], ran.length);
        for (const id of ran) assertEquals(runs[1 + id], 1, `job ${id} ran once`);
        assertEquals(failuresReported, failuresSubmitted);
      },
    ),
    { numRuns: 5, seed: 20251207 },
  );
});

async function useAndFree(): Promise<void> {
  const c = words(3);
  const pool = new ThreadPool({ maxThreads: 3 });
  for (let i = 0; i < 6; i++) pool.submitImmediate(job("overlap"), [c, 20]);
  await pool.wait();
  pool.submit(job("failWith"), 0);
  assertThrows(() => pool.free(), AggregateError);
  assertEquals(c[2], 6);
}

Deno.test("ThreadPool: no fd and no Worker thread is left after free()", async () => {
  // The first round lets Deno make what it keeps for good.
  await useAndFree();
  await fdCountSteady();
  const fds = openFdCount();
  const threads = threadCount();
  for (let i = 0; i < 3; i++) await useAndFree();
  const deadline = performance.now() + 5000;
  while ((openFdCount() !== fds || threadCount() > threads) && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assertEquals(openFdCount(), fds, "fd count after the pools were freed");
  assert(threadCount() <= threads, `threads after free: ${threadCount()} > ${threads}`);
});

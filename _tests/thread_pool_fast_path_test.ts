// The thread pool's shared-memory fast path (thread_pool/): the submission
// ring, lock-free taking and cancelling, coalesced completion rings, inline
// values. Each case checks a QEMU semantic of util/thread-pool.c under
// batching: FIFO start order, newest-first completion, cancellation of
// queued requests, and that no wake-up, result, fd or Worker is lost.
import { assert, assertEquals, assertInstanceOf, assertStrictEquals } from "@std/assert";
import { pollUntil, sleepMs } from "./_harness.ts";
import { AioContext } from "../aio/aio_context.ts";
import { withCurrentAioContext } from "../aio/current.ts";
import { QEMUClockType, SCALE_MS } from "../aio/timer.ts";
import { errnoValue } from "../sys/errno.ts";
import { getThreadPool, type ThreadPoolRequest, type ThreadPoolWork } from "../thread_pool/mod.ts";
import { SQ_SLOTS } from "../thread_pool/_shared.ts";
import { openFdCount } from "./_fd_leak.ts";

const JOBS = new URL("./testdata/pool_jobs.ts", import.meta.url);
const ECANCELED = errnoValue("ECANCELED");
const EIO = errnoValue("EIO");

function job(name: string): ThreadPoolWork {
  return { module: JOBS, name };
}
const INC = job("inc");
const ORDERED = job("ordered");
const GATE = job("gate");

/** A pool of exactly n workers, all up. */
function poolOf(ctx: AioContext, n: number) {
  const pool = getThreadPool(ctx);
  pool.setParams(n, n);
  let done = false;
  pool.submitAio(INC, 0, () => done = true);
  pollUntil(ctx, () => done && pool.stats().pendingThreads === 0, "workers up");
  return pool;
}

function startLog(n: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(4 * (n + 1)));
}

// The first Worker of a process makes Deno open a few fds and threads for
// good: make one before any test counts them.
{
  const ctx = AioContext.create();
  poolOf(ctx, 1);
  ctx.destroy();
}

Deno.test("fast path: jobs start in submission order under batching (one worker)", () => {
  using ctx = AioContext.create();
  const pool = poolOf(ctx, 1);
  const N = 2000;
  const log = startLog(N);
  let completed = 0;
  for (let i = 0; i < N; i++) pool.submitAio(ORDERED, [log, i], () => completed++);
  pollUntil(ctx, () => completed === N, "the batch");
  assertEquals(log[0], N);
  for (let i = 0; i < N; i++) assertEquals(log[1 + i], i, `start #${i}`);
});

Deno.test("fast path: two workers, every result of a batch is right", () => {
  using ctx = AioContext.create();
  const pool = poolOf(ctx, 2);
  const N = 3000;
  let wrong = 0, sum = 0, completed = 0;
  const results: number[] = new Array(N);
  for (let i = 0; i < N; i++) {
    pool.submitAio(INC, i, (ret) => {
      results[i] = ret as number;
      sum += ret as number;
      completed++;
    });
  }
  pollUntil(ctx, () => completed === N, "the batch");
  for (let i = 0; i < N; i++) if (results[i] !== i + 1) wrong++;
  assertEquals(wrong, 0);
  assertEquals(sum, (N * (N + 1)) / 2);
});

Deno.test("fast path: requests finished before a poll complete newest first", () => {
  using ctx = AioContext.create();
  const pool = poolOf(ctx, 2);
  const N = 500;
  const order: number[] = [];
  const reqs: ThreadPoolRequest[] = [];
  for (let i = 0; i < N; i++) reqs.push(pool.submitAio(INC, i, () => order.push(i)));
  // Every request finishes before the completion BH runs.
  const deadline = performance.now() + 20_000;
  while (reqs.some((r) => r.state !== "done")) {
    assert(performance.now() < deadline, "requests did not finish");
    sleepMs(1);
  }
  pollUntil(ctx, () => order.length === N, "the completions");
  assertEquals(order, [...Array(N).keys()].reverse());
});

Deno.test("fast path: cancelAsync() of queued requests in a batch", () => {
  using ctx = AioContext.create();
  const pool = poolOf(ctx, 1);
  const g = new Int32Array(new SharedArrayBuffer(4));
  const N = 1000;
  const log = startLog(N);
  let gateDone = false;
  pool.submitAio(GATE, g, () => gateDone = true);
  pollUntil(ctx, () => pool.stats().queued === 0, "the gate job to start");
  const rets: unknown[] = new Array(N);
  const errors: (Error | undefined)[] = new Array(N);
  const reqs: ThreadPoolRequest[] = [];
  for (let i = 0; i < N; i++) {
    reqs.push(pool.submitAio(ORDERED, [log, i], (ret, error) => {
      rets[i] = ret;
      errors[i] = error;
    }));
  }
  assertEquals(pool.stats().queued, N);
  for (let i = 1; i < N; i += 2) reqs[i].cancelAsync();
  assertEquals(pool.stats().queued, N / 2);
  // Cancelling twice, or a cancelled request, changes nothing.
  reqs[1].cancelAsync();
  Atomics.store(g, 0, 1);
  Atomics.notify(g, 0);
  pollUntil(ctx, () => gateDone && reqs.every((r) => r.state === "completed"), "the batch");
  assertEquals(log[0], N / 2, "only the requests left queued ran");
  for (let n = 0; n < N / 2; n++) assertEquals(log[1 + n], 2 * n, "start order");
  for (let i = 0; i < N; i++) {
    if (i % 2 === 1) {
      assertEquals(rets[i], -ECANCELED);
      assertEquals(errors[i]?.name, "SysError");
    } else {
      assertStrictEquals(errors[i], undefined);
    }
  }
});

Deno.test("fast path: cancel() waits, and cancelAsync() of a running job does nothing", () => {
  using ctx = AioContext.create();
  const pool = poolOf(ctx, 1);
  const g = new Int32Array(new SharedArrayBuffer(4));
  let gateRet: unknown;
  const running = pool.submitAio(GATE, g, (ret) => gateRet = ret);
  pollUntil(ctx, () => running.state === "active", "the gate job to start");
  let queuedRet: unknown;
  const queued = pool.submitAio(INC, 1, (ret) => queuedRet = ret);
  assertEquals(queued.state, "queued");
  withCurrentAioContext(ctx, () => queued.cancel());
  assertEquals([queued.state, queuedRet], ["completed", -ECANCELED]);
  running.cancelAsync();
  assertEquals(running.state, "active");
  Atomics.store(g, 0, 7);
  Atomics.notify(g, 0);
  withCurrentAioContext(ctx, () => running.cancel());
  assertEquals([running.state, gateRet], ["completed", 7]);
});

Deno.test("fast path: 10^4 jobs in flight, every result checked", () => {
  using ctx = AioContext.create();
  const pool = poolOf(ctx, 2);
  const N = 10_000;
  const got = new Float64Array(N).fill(NaN);
  let completed = 0;
  for (let i = 0; i < N; i++) {
    pool.submitAio(INC, i * 0.5, (ret, error) => {
      if (error !== undefined) throw new Error(`job ${i} failed`, { cause: error });
      got[i] = ret as number;
      completed++;
    });
  }
  pollUntil(ctx, () => completed === N, "the batch");
  for (let i = 0; i < N; i++) assertEquals(got[i], i * 0.5 + 1);
  assertEquals(pool.stats().requests, 0);
});

Deno.test("fast path: more queued requests than ring slots keep FIFO order", () => {
  using ctx = AioContext.create();
  const pool = poolOf(ctx, 1);
  const g = new Int32Array(new SharedArrayBuffer(4));
  pool.submitAio(GATE, g, null);
  pollUntil(ctx, () => pool.stats().queued === 0, "the gate job to start");
  const N = SQ_SLOTS + 5000;
  const log = startLog(N);
  const reqs: ThreadPoolRequest[] = [];
  let completed = 0;
  for (let i = 0; i < N; i++) reqs.push(pool.submitAio(ORDERED, [log, i], () => completed++));
  // Cancel some in the ring and some in the overflow.
  const cancelled = new Set([3, SQ_SLOTS - 1, SQ_SLOTS, SQ_SLOTS + 10, N - 1]);
  for (const i of cancelled) reqs[i].cancelAsync();
  Atomics.store(g, 0, 1);
  Atomics.notify(g, 0);
  pollUntil(ctx, () => completed === N, "the batch", 60_000);
  assertEquals(log[0], N - cancelled.size);
  let n = 0;
  for (let i = 0; i < N; i++) {
    if (cancelled.has(i)) continue;
    if (log[1 + n] !== i) throw new Error(`start #${n}: ${log[1 + n]}, want ${i}`);
    n++;
  }
});

Deno.test("fast path: results stay right while the shared heap grows under the workers", () => {
  // Records allocated across the heap's old end must be fully visible to
  // workers whose views predate the growth.
  using ctx = AioContext.create();
  const pool = poolOf(ctx, 2);
  const N = 4000;
  const got: unknown[] = new Array(N);
  let completed = 0;
  for (let i = 0; i < N; i++) {
    const arg = i % 4 === 0 ? "x".repeat(64 + (i % 3000)) : i;
    pool.submitAio(job("identity"), arg, (ret, error) => {
      got[i] = error ?? ret;
      completed++;
    });
  }
  pollUntil(ctx, () => completed === N, "the batch");
  for (let i = 0; i < N; i++) {
    assertEquals(got[i], i % 4 === 0 ? "x".repeat(64 + (i % 3000)) : i, `job ${i}`);
  }
});

Deno.test("fast path: inline and typed-array values", () => {
  using ctx = AioContext.create();
  const pool = poolOf(ctx, 2);
  const outs: unknown[] = [];
  const values = [null, true, false, undefined, 0, -0.25, Infinity, "s", 10n];
  for (const v of values) pool.submitAio(job("identity"), v, (ret) => outs.push([v, ret]));
  const f = new Float64Array([1.5, -2, 3]);
  let doubled: unknown;
  pool.submitAio(job("doubled"), f, (ret) => doubled = ret);
  const shared = new Int32Array(new SharedArrayBuffer(8));
  let n: unknown;
  pool.submitAio(job("workerCb"), shared, (ret) => n = ret);
  pollUntil(ctx, () => outs.length === values.length && doubled !== undefined && n === 0, "values");
  for (const [v, ret] of outs as [unknown, unknown][]) assertStrictEquals(ret, v);
  assertInstanceOf(doubled, Float64Array);
  assertEquals([...(doubled as Float64Array)], [3, -4, 6]);
  assertEquals([...f], [1.5, -2, 3], "the argument was copied");
  assertEquals(shared[0], 1, "a SharedArrayBuffer view shares memory");
});

Deno.test("fast path: errors thrown in work, mixed in a batch", () => {
  using ctx = AioContext.create();
  const pool = poolOf(ctx, 2);
  const N = 400;
  const outs: { ret: unknown; error: Error | undefined }[] = new Array(N);
  let completed = 0;
  for (let i = 0; i < N; i++) {
    const work = i % 3 === 0 ? job("throws") : INC;
    const arg = i % 3 === 0 ? `bad ${i}` : i;
    pool.submitAio(work, arg, (ret, error) => {
      outs[i] = { ret, error };
      completed++;
    });
  }
  pollUntil(ctx, () => completed === N, "the batch");
  for (let i = 0; i < N; i++) {
    if (i % 3 === 0) {
      assertInstanceOf(outs[i].error, TypeError);
      assertEquals(outs[i].error?.message, `bad ${i}`);
      assertEquals(outs[i].ret, -EIO);
    } else {
      assertEquals(outs[i], { ret: i + 1, error: undefined });
    }
  }
});

Deno.test("fast path: no completion is lost while the owner sleeps in poll(true)", () => {
  // A lost wake-up leaves poll(true) asleep with a finished request: the
  // watchdog timer then ends the poll, and the test counts it as a loss.
  using ctx = AioContext.create();
  const pool = poolOf(ctx, 2);
  let rescued = 0;
  using watchdog = ctx.timerNew(QEMUClockType.REALTIME, SCALE_MS, () => rescued++);
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  let total = 0;
  for (let round = 0; round < 3000; round++) {
    const k = 1 + rand(6);
    let completed = 0;
    for (let i = 0; i < k; i++) {
      pool.submitAio(INC, i, (ret) => {
        assertEquals(ret, i + 1);
        completed++;
      });
    }
    // Sometimes the owner is busy while the completions arrive.
    if (rand(4) === 0) { for (let spin = rand(20_000); spin > 0; spin--); }
    watchdog.modIn(2000);
    while (completed < k) ctx.poll(true);
    watchdog.del();
    total += k;
  }
  assertEquals(rescued, 0, "polls that only the watchdog ended");
  assert(total >= 3000);
});

Deno.test("fast path: no fd and no Worker thread is left after destroy", async () => {
  const count = (dir: string): number => [...Deno.readDirSync(dir)].length;
  const round = (): void => {
    const ctx = AioContext.create();
    const pool = poolOf(ctx, 2);
    let completed = 0;
    for (let i = 0; i < 5000; i++) pool.submitAio(INC, i, () => completed++);
    pollUntil(ctx, () => completed === 5000, "the batch");
    ctx.destroy();
  };
  round();
  await new Promise((r) => setTimeout(r, 200));
  const fds = openFdCount(), threads = count("/proc/self/task");
  round();
  round();
  const deadline = performance.now() + 5000;
  let f = openFdCount(), t = count("/proc/self/task");
  while ((f !== fds || t > threads) && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
    f = openFdCount();
    t = count("/proc/self/task");
  }
  assertEquals(f, fds, "fds after destroy");
  assert(t <= threads, `threads after destroy: ${t} > ${threads}`);
});

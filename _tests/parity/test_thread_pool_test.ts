// deno-lint-ignore-file require-yield -- a coroutine body need not yield, as in QEMU
// Parity with QEMU tests/unit/test-thread-pool.c, run on every
// fd monitor this machine supports. As in QEMU, one context per backend is
// shared by that backend's cases: the main AioContext, current on this
// (main) thread; every submission goes to the current context's pool.
//
// Adaptations (docs/parity.md): the job functions live in testdata/pool_jobs.ts
// and run in Workers, so each job's `n` is an Int32Array over one
// SharedArrayBuffer (slot 0 is n, slot 1 a word nobody notifies, for
// long_cb's 2 s sleep); the owner's 1 s g_usleep is Atomics.wait on the
// main thread. The pool maximum stays at QEMU's 64, so 100 jobs leave some
// queued.
import { assert, assertEquals, assertGreater, assertLess, assertStrictEquals } from "@std/assert";
import { AioContext } from "../../aio/aio_context.ts";
import { Coroutine } from "../../aio/coroutine.ts";
import { getCurrentAioContext } from "../../aio/current.ts";
import { getMainAioContext, setMainAioContext } from "../../aio/_main_context.ts";
import { errnoValue } from "../../sys/errno.ts";
import {
  getThreadPool,
  type ThreadPoolRequest,
  threadPoolSubmitAio,
  threadPoolSubmitCo,
  type ThreadPoolWork,
} from "../../thread_pool/mod.ts";
import type { FdMonName } from "../../fdmon/mod.ts";
import { openFdCount, supportedFdMons } from "../_fd_leak.ts";

const EINPROGRESS = errnoValue("EINPROGRESS");
const ECANCELED = errnoValue("ECANCELED");
const JOBS = new URL("../testdata/pool_jobs.ts", import.meta.url);
const WORKER_CB: ThreadPoolWork = { module: JOBS, name: "workerCb" };
const LONG_CB: ThreadPoolWork = { module: JOBS, name: "longCb" };

interface WorkerTestData {
  aiocb: ThreadPoolRequest<number> | null;
  /** [n, a word long_cb sleeps on]. */
  n: Int32Array;
  ret: number;
}

/** Callbacks run serialized on the context's thread, as in QEMU. */
let active = 0;

function nOf(data: WorkerTestData): number {
  return Atomics.load(data.n, 0);
}

function doneCb(data: WorkerTestData): (ret: number) => void {
  return (ret) => {
    assert(
      data.ret === -EINPROGRESS || data.ret === -ECANCELED,
      `done_cb: previous ret ${data.ret}`,
    );
    data.ret = ret;
    data.aiocb = null;
    active--;
  };
}

/** `count` test records whose `n` words share one SharedArrayBuffer. */
function makeData(count: number): WorkerTestData[] {
  const sab = new SharedArrayBuffer(count * 8);
  return Array.from({ length: count }, (_, i) => ({
    aiocb: null,
    n: new Int32Array(sab, i * 8, 2),
    ret: -EINPROGRESS,
  }));
}

// The first Worker of a process makes Deno open a few fds for good: make
// one before any case counts fds.
{
  const ctx = AioContext.create();
  let done = false;
  getThreadPool(ctx).submitAio({ module: JOBS, name: "identity" }, 0, () => done = true);
  while (!done) ctx.poll(true);
  ctx.destroy();
}

/** Waits (up to 5 s) until the process holds `fds` fds again. */
async function assertFdsSettle(fds: number): Promise<void> {
  // Each Worker thread owns a few fds of its own runtime, closed as the
  // thread ends, shortly after free() saw the worker leave.
  const deadline = performance.now() + 5000;
  let after = openFdCount();
  while (after !== fds && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
    after = openFdCount();
  }
  if (after !== fds) throw new Error(`fd leak: ${fds} fds before, ${after} after`);
}

type ThreadPoolCase = (ctx: AioContext) => void;

/** The backend whose context is alive now (at most one at a time). */
let activeSuite: ThreadPoolSuite | null = null;

/**
 * The cases of one fd monitor, sharing one context as test-thread-pool's
 * main() sets it up: a main context, current on this thread, whose pool
 * every case uses (so the workers one case asked for serve the next). The
 * first case to run makes it; the last case destroys it (which frees the
 * pool) and checks /proc/self/fd. With --filter the last case may not run:
 * the next suite to start, or a failing case, tears it down instead.
 */
class ThreadPoolSuite {
  readonly fdmon: FdMonName;
  #ctx: AioContext | null = null;
  #saved: AioContext | null = null;
  #fdsBefore = 0;

  constructor(fdmon: FdMonName) {
    this.fdmon = fdmon;
  }

  #setup(): AioContext {
    if (this.#ctx !== null) return this.#ctx;
    if (activeSuite !== null && activeSuite !== this) activeSuite.#teardown();
    this.#fdsBefore = openFdCount();
    this.#saved = getMainAioContext();
    const ctx = AioContext.create({ fdmon: this.fdmon, name: "main" });
    setMainAioContext(ctx);
    this.#ctx = ctx;
    activeSuite = this;
    assertStrictEquals(getCurrentAioContext(), ctx);
    return ctx;
  }

  #teardown(): void {
    const ctx = this.#ctx;
    if (ctx === null) return;
    this.#ctx = null;
    if (activeSuite === this) activeSuite = null;
    setMainAioContext(this.#saved);
    ctx.destroy();
  }

  /** Registers the cases, in QEMU's order, as `"<path> [<fdmon>]"`. */
  register(cases: [string, ThreadPoolCase][]): void {
    for (const [i, [path, fn]] of cases.entries()) {
      const last = i === cases.length - 1;
      Deno.test(`${path} [${this.fdmon}]`, async () => {
        const ctx = this.#setup();
        let ok = false;
        try {
          active = 0;
          fn(ctx);
          // Completions still pending (requests without a callback) run
          // before the next case.
          const pool = getThreadPool(ctx);
          while (pool.stats().requests > 0) ctx.poll(true);
          ok = true;
        } finally {
          if (last || !ok) this.#teardown();
        }
        if (last) await assertFdsSettle(this.#fdsBefore);
      });
    }
  }
}

// QEMU registers this case as "/thread-pool/submit-no-complete": a request with no
// completion callback.
function testSubmit(ctx: AioContext): void {
  const [data] = makeData(1);
  threadPoolSubmitAio(WORKER_CB, data.n, null);
  while (nOf(data) === 0) ctx.poll(true);
  assertEquals(nOf(data), 1);
}

function testSubmitAio(ctx: AioContext): void {
  const [data] = makeData(1);
  data.aiocb = threadPoolSubmitAio(WORKER_CB, data.n, doneCb(data));
  // The callbacks are not called until after the first wait.
  active = 1;
  assertEquals(data.ret, -EINPROGRESS);
  while (data.ret === -EINPROGRESS) ctx.poll(true);
  assertEquals(active, 0);
  assertEquals(nOf(data), 1);
  assertEquals(data.ret, 0);
}

function testSubmitCo(ctx: AioContext): void {
  const [data] = makeData(1);
  const co = Coroutine.create(function* (d: WorkerTestData) {
    active = 1;
    Atomics.store(d.n, 0, 0);
    d.ret = -EINPROGRESS;
    yield* threadPoolSubmitCo(WORKER_CB, d.n);
    // Resumed by the completion, from aio_poll.
    assertEquals(nOf(d), 1);
    d.ret = 0;
    active--;
  }, data);
  co.enter();
  // Back here once the request is submitted and the coroutine yielded.
  assertEquals(active, 1);
  assertEquals(data.ret, -EINPROGRESS);
  // aio_poll runs the rest of the coroutine.
  while (data.ret === -EINPROGRESS) ctx.poll(true);
  assertEquals(active, 0);
  assertEquals(data.ret, 0);
}

function testSubmitMany(ctx: AioContext): void {
  // More work items than there will be workers.
  const data = makeData(100);
  for (const d of data) {
    d.ret = -EINPROGRESS;
    threadPoolSubmitAio(WORKER_CB, d.n, doneCb(d));
  }
  active = 100;
  while (active > 0) ctx.poll(true);
  for (const d of data) {
    assertEquals(nOf(d), 1);
    assertEquals(d.ret, 0);
  }
}

/**
 * Makes sure the pool is full: every one of its `max` workers up and idle.
 * QEMU's test_submit_many has that effect ("more work items than there
 * will be threads, to ensure the pool is full"): its threads exist within
 * microseconds, each new thread creating the next. A Worker takes tens of
 * milliseconds to create, on this thread, one per spawn BH run; and with
 * the context shared between cases, a worker left idle by an earlier case
 * takes the whole burst, so nothing is spawned at all. Were the pool still
 * growing in the cancel phase, a worker coming up could take a request
 * between the test's compare-and-swap and its cancel, a window QEMU's
 * timing closes. So: raise min to max (thread_pool_update_params spawns up
 * to min), poll until all are idle, and put min back.
 */
function fillPool(ctx: AioContext): void {
  const pool = getThreadPool(ctx);
  const { minThreads, maxThreads } = pool.stats();
  pool.setParams(maxThreads, maxThreads);
  const nap = new Int32Array(new SharedArrayBuffer(4));
  // The last worker up rings nothing: do not block.
  while (pool.stats().idleThreads < maxThreads) {
    if (!ctx.poll(false)) Atomics.wait(nap, 0, 0, 1);
  }
  pool.setParams(minThreads, maxThreads);
}

function doTestCancel(ctx: AioContext, sync: boolean): void {
  // Fill the pool first.
  testSubmitMany(ctx);
  fillPool(ctx);

  // Start long running jobs, to be sure some can be cancelled.
  const data = makeData(100);
  for (const d of data) {
    d.ret = -EINPROGRESS;
    d.aiocb = threadPoolSubmitAio(LONG_CB, d.n, doneCb(d));
  }

  // Starting the workers may be left to a bottom half: let it run once.
  active = 100;
  ctx.notify();
  ctx.poll(false);

  // Give the workers time to start (g_usleep(1 s) without polling).
  assertEquals(active, 100);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
  assertGreater(active, 50);

  // Cancel the jobs that have not started yet.
  let numCanceled = 0;
  for (const d of data) {
    if (Atomics.compareExchange(d.n, 0, 0, 4) === 0) {
      d.ret = -ECANCELED;
      if (sync) d.aiocb!.cancel();
      else d.aiocb!.cancelAsync();
      numCanceled++;
    }
  }
  assertGreater(active, 0);
  assertLess(numCanceled, 100);

  for (const d of data) {
    if (d.aiocb !== null && nOf(d) < 4) {
      // Cancelling the others is a blocking operation when sync.
      if (sync) d.aiocb.cancel();
      else d.aiocb.cancelAsync();
    }
  }

  // Finish execution and run the remaining callbacks.
  while (active > 0) ctx.poll(true);
  assertEquals(active, 0);
  for (const [i, d] of data.entries()) {
    assertStrictEquals(d.aiocb, null, `job ${i}: callback never ran`);
    switch (nOf(d)) {
      case 0:
        throw new Error(`job ${i}: callback not cancelled but never started`);
      case 3:
        // Could not be cancelled: it ran to completion.
        assertEquals(d.ret, 0, `job ${i}`);
        break;
      case 4:
        // Cancelled while queued: it never started.
        assertEquals(d.ret, -ECANCELED, `job ${i}`);
        break;
      default:
        throw new Error(`job ${i}: callback aborted while running (n = ${nOf(d)})`);
    }
  }
}

for (const fdmon of supportedFdMons()) {
  new ThreadPoolSuite(fdmon).register([
    ["/thread-pool/submit-no-complete", testSubmit],
    ["/thread-pool/submit-aio", testSubmitAio],
    ["/thread-pool/submit-co", testSubmitCo],
    ["/thread-pool/submit-many", testSubmitMany],
    ["/thread-pool/cancel", (ctx) => doTestCancel(ctx, true)],
    ["/thread-pool/cancel-async", (ctx) => doTestCancel(ctx, false)],
  ]);
}

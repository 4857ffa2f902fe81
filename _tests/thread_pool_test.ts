// Our own tests of the thread pool (thread_pool/): errors, dying workers,
// completion order, the promise form, parameters, cleanup, process exit.
// The parity cases of QEMU's test-thread-pool.c are in
// test_thread_pool_test.ts.
import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { fdCountSteady, pollUntil, sleepMs } from "./_harness.ts";
import { AioContext } from "../aio/aio_context.ts";
import { Coroutine } from "../aio/coroutine.ts";
import { withCurrentAioContext } from "../aio/current.ts";
import { errnoValue, SysError } from "../sys/errno.ts";
import {
  getThreadPool,
  setThreadPoolParams,
  type ThreadPoolAio,
  threadPoolSubmit,
  threadPoolSubmitAio,
  threadPoolSubmitCo,
  type ThreadPoolWork,
} from "../thread_pool/mod.ts";
import { setPoolIdleTimeoutMs } from "../thread_pool/_internal.ts";
import { openFdCount } from "./_fd_leak.ts";

const JOBS = new URL("./testdata/pool_jobs.ts", import.meta.url);
const EIO = errnoValue("EIO");
const ECANCELED = errnoValue("ECANCELED");

function job(name: string): ThreadPoolWork {
  return { module: JOBS, name };
}

interface Outcome {
  ret: unknown;
  error: Error | undefined;
}

/** Submits and polls until the callback ran. */
function runJob(ctx: AioContext, work: ThreadPoolWork, arg: unknown): Outcome {
  let out: Outcome | undefined;
  getThreadPool(ctx).submitAio(work, arg, (ret, error) => out = { ret, error });
  while (out === undefined) ctx.poll(true);
  return out;
}

/** Waits (up to 5 s) until the fd count and the thread count are back. */
async function assertSettled(fds: number, threads: number): Promise<void> {
  const count = (dir: string): number => [...Deno.readDirSync(dir)].length;
  const deadline = performance.now() + 5000;
  let f = openFdCount(), t = count("/proc/self/task");
  while ((f !== fds || t > threads) && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
    f = openFdCount();
    t = count("/proc/self/task");
  }
  assertEquals(f, fds, "fd count after the pool was freed");
  assert(t <= threads, `threads after the pool was freed: ${t} > ${threads}`);
}

// The first Worker of a process makes Deno open a few fds and threads for
// good: make one before any test counts them.
{
  const ctx = AioContext.create();
  runJob(ctx, job("identity"), 0);
  ctx.destroy();
}

Deno.test("ThreadPoolAio.submitAio() returns values of every kind", () => {
  using ctx = AioContext.create();
  for (
    const v of [undefined, null, true, false, 0, -1.5, NaN, "", "héllo", 10n, [1, "a"], {
      a: { b: [2] },
    }]
  ) {
    const out = runJob(ctx, job("identity"), v);
    assertStrictEquals(out.error, undefined);
    assertEquals(out.ret, v);
  }
  const bytes = runJob(ctx, job("identity"), new Uint8Array([1, 2, 3])).ret;
  assertInstanceOf(bytes, Uint8Array);
  assertEquals([...bytes], [1, 2, 3]);
  const map = runJob(ctx, job("identity"), new Map([[1, new Date(0)]])).ret as Map<number, Date>;
  assertEquals(map.get(1)?.getTime(), 0);
});

Deno.test("ThreadPoolAio.submitAio() shares SharedArrayBuffer memory, copies the rest", () => {
  using ctx = AioContext.create();
  const shared = new Uint8Array(new SharedArrayBuffer(8), 2, 4);
  shared.set([5, 6, 7, 8]);
  assertEquals(runJob(ctx, job("sumAndMark"), shared).ret, 26);
  assertEquals(shared[0], 1, "the worker wrote through the view");

  const plain = new Uint8Array([5, 6, 7, 8]);
  assertEquals(runJob(ctx, job("sumAndMark"), plain).ret, 26);
  assertEquals(plain[0], 5, "a plain buffer is copied");

  // A buffer that went to a worker comes back as the same object.
  const bare = new SharedArrayBuffer(4);
  assertStrictEquals(runJob(ctx, job("identity"), bare).ret, bare);
  const view = new Int32Array(new SharedArrayBuffer(8));
  const back = runJob(ctx, job("identity"), { view }).ret as { view: Int32Array };
  assertStrictEquals(back.view.buffer, view.buffer);

  // A bare buffer nested in a value travels as well (one codec for every path).
  const nested = { s: new SharedArrayBuffer(4), d: new DataView(new SharedArrayBuffer(8), 2) };
  const again = runJob(ctx, job("identity"), nested).ret as typeof nested;
  assertStrictEquals(again.s, nested.s);
  assertStrictEquals(again.d.buffer, nested.d.buffer);
  assertEquals(again.d.byteOffset, 2);

  const made = runJob(ctx, job("makeShared"), 9).ret as Int32Array;
  assertInstanceOf(made.buffer, SharedArrayBuffer);
  assertEquals([...made], [9, 9, 9, 9]);
});

Deno.test("ThreadPoolAio.submitAio() carries large values (the shared heap grows)", () => {
  using ctx = AioContext.create();
  const big = new Uint8Array(5 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff;
  const back = runJob(ctx, job("identity"), big).ret as Uint8Array;
  assertEquals(back.length, big.length);
  for (let i = 0; i < big.length; i += 4096) assertEquals(back[i], i & 0xff);
  assertEquals(runJob(ctx, job("identity"), "x".repeat(100_000)).ret, "x".repeat(100_000));
});

Deno.test("ThreadPoolAio.submitAio() rejects bad input at the call", () => {
  using ctx = AioContext.create();
  const pool = getThreadPool(ctx);
  assertThrows(
    () => pool.submitAio({ module: "./jobs.ts", name: "x" }, 0),
    TypeError,
    "absolute URL",
  );
  assertThrows(() => pool.submitAio({ module: JOBS, name: "" }, 0), TypeError, "name");
  assertThrows(() => pool.submitAio(null as unknown as ThreadPoolWork, 0), TypeError);
  assertThrows(() => pool.submitAio(job("identity"), 0, 5 as never), TypeError, "callback");
  assertThrows(() => pool.submitAio(job("identity"), () => 1), TypeError, "cannot be cloned");
  assertEquals(pool.stats().requests, 0);
  assertEquals(pool.stats().curThreads, 0, "no worker asked for");
  assertThrows(
    () => withCurrentAioContext(null, () => threadPoolSubmitAio(job("identity"), 0)),
    Error,
  );
});

Deno.test("a job that throws completes with its error and the pool keeps working", () => {
  using ctx = AioContext.create();
  const out = runJob(ctx, job("throws"), "boom");
  assertInstanceOf(out.error, TypeError);
  assertEquals(out.error.message, "boom");
  assertEquals(out.ret, -EIO);

  const withErrno = runJob(ctx, job("throwsErrno"), 28);
  assertEquals(withErrno.ret, -28);
  assertEquals(withErrno.error?.name, "SysError");
  assertEquals((withErrno.error as Error & { code: string }).code, "ESOMETHING");

  const bad = runJob(ctx, job("uncloneable"), 0);
  assertInstanceOf(bad.error, TypeError);
  assertEquals(bad.ret, -EIO);

  assertEquals(runJob(ctx, job("add"), [2, 3]), { ret: 5, error: undefined });
  assertEquals(runJob(ctx, job("sleepAsync"), 5), { ret: 5, error: undefined });
});

Deno.test("a job name the module lacks completes with a clear error", () => {
  using ctx = AioContext.create();
  const missing = runJob(ctx, job("noSuchFunction"), 0);
  assertInstanceOf(missing.error, TypeError);
  assert(
    missing.error.message.includes("has no exported function 'noSuchFunction'"),
    missing.error.message,
  );
  const notFn = runJob(ctx, job("notAFunction"), 0);
  assert(notFn.error?.message.includes("has no exported function 'notAFunction'"));
  const noModule = runJob(ctx, {
    module: new URL("./testdata/no_such_module.ts", import.meta.url),
    name: "f",
  }, 0);
  assertInstanceOf(noModule.error, Error);
  assertEquals(noModule.ret, -EIO);
  assertEquals(runJob(ctx, job("add"), [1, 1]).ret, 2);
});

for (const how of ["closeWorker", "exitWorker", "crashLater"]) {
  Deno.test(`a worker that dies (${how}) fails its request and is replaced`, () => {
    using ctx = AioContext.create();
    const pool = getThreadPool(ctx);
    pool.setParams(0, 1);
    assertEquals(runJob(ctx, job("identity"), 1).ret, 1);
    const outs: Outcome[] = [];
    pool.submitAio(job(how), 0, (ret, error) => outs.push({ ret, error }));
    // Queued behind the dying job: only a replacement worker can run it.
    pool.submitAio(job("add"), [40, 2], (ret, error) => outs.push({ ret, error }));
    pollUntil(ctx, () => outs.length === 2, "both completions");
    const died = outs.find((o) => o.error !== undefined)!;
    assert(died.error!.message.includes(`exited while running '${how}'`), died.error!.message);
    assertEquals(died.ret, -EIO);
    if (how === "crashLater") {
      // The job's own timer threw while it ran: the job carries that error.
      assertEquals((died.error!.cause as Error).message, "uncaught in worker");
    }
    assert(outs.some((o) => o.ret === 42 && o.error === undefined));
    assertEquals(pool.stats().curThreads, 1);
    assertEquals(pool.stats().workers, 1);
  });
}

Deno.test("a timer a finished job left behind fails no later job; its worker is replaced", () => {
  using ctx = AioContext.create();
  const pool = getThreadPool(ctx);
  pool.setParams(0, 1);
  const first = runJob(ctx, job("workerToken"), 0).ret as number;
  assertEquals(runJob(ctx, job("leaveThrowingTimer"), 7), { ret: 7, error: undefined });
  // The next job awaits, so the worker's event loop runs the leftover timer
  // (it throws) in the middle of this innocent job, which still succeeds.
  assertEquals(runJob(ctx, job("sleepAsync"), 50), { ret: 50, error: undefined });
  // The worker that held the bad timer left; a clean one runs the next job.
  const second = runJob(ctx, job("workerToken"), 0);
  assertEquals(second.error, undefined);
  assert(second.ret !== first, "a new worker ran the job after");
  assertEquals(pool.stats().curThreads, 1);
  assertEquals(runJob(ctx, job("add"), [1, 2]).ret, 3);
});

Deno.test("workers are created one per spawn BH run, each once the previous is up", () => {
  using ctx = AioContext.create();
  const pool = getThreadPool(ctx);
  const gate = new Int32Array(new SharedArrayBuffer(8));
  for (let i = 0; i < 3; i++) pool.submitAio(job("gated"), gate);
  // No idle worker at each submit: three asked for, none created yet.
  let s = pool.stats();
  assertEquals([s.curThreads, s.newThreads, s.pendingThreads, s.workers], [3, 3, 0, 0]);
  ctx.poll(false); // the spawn BH creates one
  s = pool.stats();
  assertEquals([s.newThreads, s.workers], [2, 1]);
  pollUntil(ctx, () => pool.stats().workers === 3, "the chain to create all three");
  s = pool.stats();
  assertEquals([s.curThreads, s.newThreads], [3, 0]);
  Atomics.store(gate, 1, 1);
  Atomics.notify(gate, 1, 3);
  pollUntil(ctx, () => pool.stats().requests === 0, "the three completions");
});

Deno.test("completions run newest-submitted first, after a rescan per callback", () => {
  using ctx = AioContext.create();
  const pool = getThreadPool(ctx);
  pool.setParams(0, 1);
  runJob(ctx, job("identity"), 0); // the worker exists
  const log: string[] = [];
  const reqs = ["A", "B", "C"].map((name) =>
    pool.submitAio(job("identity"), name, (ret) => {
      log.push(`${ret} start`);
      // A nested poll still sees the other completions (QEMU reschedules
      // the completion BH before each callback for this).
      if (ret === "C") ctx.poll(false);
      log.push(`${ret} end`);
    })
  );
  // All three finish before the context polls once.
  const deadline = performance.now() + 10_000;
  while (!reqs.every((r) => r.state === "done")) {
    assert(performance.now() < deadline, "jobs did not finish");
    sleepMs(1);
  }
  assertEquals(log, []);
  ctx.poll(false);
  assertEquals(log, ["C start", "B start", "B end", "A start", "A end", "C end"]);
  assert(reqs.every((r) => r.state === "completed"));
});

Deno.test("a completion callback that throws leaves poll() and the rest still complete", () => {
  using ctx = AioContext.create();
  const pool = getThreadPool(ctx);
  pool.setParams(0, 1);
  runJob(ctx, job("identity"), 0);
  const got: unknown[] = [];
  const reqs = [1, 2, 3].map((v) =>
    pool.submitAio(job("identity"), v, (ret) => {
      got.push(ret);
      if (ret === 2) throw new Error("callback failed");
    })
  );
  while (!reqs.every((r) => r.state === "done")) sleepMs(1);
  assertThrows(() => ctx.poll(false), Error, "callback failed");
  assertEquals(got, [3, 2]);
  ctx.poll(false);
  assertEquals(got, [3, 2, 1]);
  assertEquals(pool.stats().requests, 0);
});

Deno.test("ThreadPoolRequest.cancelAsync() completes a queued request with -ECANCELED once", () => {
  using ctx = AioContext.create();
  const pool = getThreadPool(ctx);
  pool.setParams(0, 1);
  const gate = new Int32Array(new SharedArrayBuffer(8));
  const outs: Outcome[] = [];
  const running = pool.submitAio(job("gated"), gate, (ret, error) => outs.push({ ret, error }));
  const queued = pool.submitAio(job("identity"), "q", (ret, error) => outs.push({ ret, error }));
  pollUntil(ctx, () => running.state === "active", "the gated job to start");
  assertEquals(queued.state, "queued");
  queued.cancelAsync();
  running.cancelAsync(); // running: not affected
  assertEquals(outs.length, 0, "never completed from the cancel call");
  ctx.poll(true);
  assertEquals(outs.length, 1);
  assertInstanceOf(outs[0].error, SysError);
  assertEquals(outs[0].ret, -ECANCELED);
  queued.cancelAsync(); // again: no second callback
  // A blocking cancel polls the pool's context, so it must be current.
  assertThrows(() => running.cancel(), Error, "current");
  Atomics.store(gate, 1, 1);
  Atomics.notify(gate, 1);
  while (outs.length < 2) ctx.poll(true);
  assertEquals(outs[1], { ret: 0, error: undefined });
  ctx.poll(false);
  assertEquals(outs.length, 2);
});

Deno.test("threadPoolSubmitCo() throws a job's error into the coroutine", () => {
  using ctx = AioContext.create();
  let caught: unknown;
  withCurrentAioContext(ctx, () => {
    const co = Coroutine.create(function* () {
      try {
        yield* threadPoolSubmitCo(job("throws"), "in co");
      } catch (e) {
        caught = e;
      }
    });
    co.enter();
    while (!co.done) ctx.poll(true);
  });
  assertInstanceOf(caught, TypeError);
  assertThrows(() => threadPoolSubmitCo(job("identity"), 0).next(), Error, "coroutine");
});

Deno.test("threadPoolSubmit() settles while the context is polled", async () => {
  using ctx = AioContext.create();
  const ok = withCurrentAioContext(ctx, () => threadPoolSubmit<number>(job("add"), [20, 22]));
  const bad = withCurrentAioContext(ctx, () => threadPoolSubmit(job("throws"), "rejected"));
  let settled = 0;
  ok.finally(() => settled++);
  bad.catch(() => {}).finally(() => settled++);
  while (settled < 2) {
    ctx.poll(true);
    await new Promise((r) => setTimeout(r, 0));
  }
  assertEquals(await ok, 42);
  await assertRejects(() => bad, TypeError, "rejected");
  await assertRejects(
    () => withCurrentAioContext(null, () => threadPoolSubmit(job("add"), [1, 2])),
    Error,
  );
});

Deno.test("ThreadPoolAio.setParams() validates as aio_context_set_thread_pool_params", () => {
  using ctx = AioContext.create();
  const pool = getThreadPool(ctx);
  for (const [min, max] of [[3, 2], [0, 0], [-1, 2], [0, -1], [0, 2 ** 31], [0.5, 2], [0, NaN]]) {
    assertThrows(() => pool.setParams(min, max), RangeError, "min/max");
    assertThrows(() => setThreadPoolParams(ctx, min, max), RangeError, "min/max");
  }
  assertEquals(pool.stats().maxThreads, 64);
  pool.setParams(2, 2 ** 31 - 1);
  assertEquals(pool.stats().curThreads, 2, "min workers asked for at once");
  pollUntil(ctx, () => pool.stats().idleThreads === 2, "two idle workers");
  setThreadPoolParams(ctx, 0, 1);
  assertEquals(pool.stats().maxThreads, 1);
  pollUntil(ctx, () => pool.stats().workers === 1, "the extra worker to leave");
});

Deno.test("setThreadPoolParams() applies to a pool made later", () => {
  using ctx = AioContext.create();
  setThreadPoolParams(ctx, 1, 3);
  const s = getThreadPool(ctx).stats();
  assertEquals([s.minThreads, s.maxThreads], [1, 3]);
});

Deno.test("a new pool starts its min workers before any submit (thread_pool_init_one)", () => {
  using ctx = AioContext.create();
  setThreadPoolParams(ctx, 2, 4);
  const pool = getThreadPool(ctx);
  const s = pool.stats();
  assertEquals([s.curThreads, s.workers, s.requests], [2, 0, 0], "asked for, not yet created");
  // Nothing is submitted: the context's polls alone create them.
  pollUntil(ctx, () => pool.stats().idleThreads === 2, "two idle workers");
  assertEquals(pool.stats().workers, 2);
  // The first job finds a worker up: none is created for it.
  assertEquals(runJob(ctx, job("add"), [1, 2]).ret, 3);
  assertEquals(pool.stats().workers, 2);
});

Deno.test("idle workers above min leave after the idle timeout", () => {
  using ctx = AioContext.create();
  const pool = getThreadPool(ctx);
  setPoolIdleTimeoutMs(pool, 50);
  runJob(ctx, job("identity"), 0);
  assertEquals(pool.stats().curThreads, 1);
  pollUntil(ctx, () => pool.stats().workers === 0, "the idle worker to leave");
  assertEquals(pool.stats().curThreads, 0);
  assertEquals(runJob(ctx, job("add"), [1, 2]).ret, 3, "a new worker is made on demand");
});

Deno.test("ThreadPoolAio.free() refuses while requests are outstanding, then frees", () => {
  using ctx = AioContext.create();
  const pool = getThreadPool(ctx);
  const gate = new Int32Array(new SharedArrayBuffer(8));
  let done = false;
  pool.submitAio(job("gated"), gate, () => done = true);
  assertThrows(() => pool.free(), Error, "outstanding");
  assertEquals(pool.freed, false);
  Atomics.store(gate, 1, 1);
  Atomics.notify(gate, 1);
  while (!done) ctx.poll(true);
  pool.free();
  assertEquals(pool.freed, true);
  assertThrows(() => pool.submitAio(job("identity"), 0), Deno.errors.BadResource);
  const again = getThreadPool(ctx);
  assert(again !== pool);
  assertEquals(runJob(ctx, job("identity"), 7).ret, 7);
});

Deno.test("destroying a context frees its pool; outstanding requests are reported", () => {
  const ctx = AioContext.create();
  const pool = getThreadPool(ctx);
  const gate = new Int32Array(new SharedArrayBuffer(8));
  let called = false;
  const req = pool.submitAio(job("gated"), gate, () => called = true);
  pollUntil(ctx, () => req.state === "active", "the job to start");
  Atomics.store(gate, 1, 1);
  Atomics.notify(gate, 1);
  assertThrows(() => ctx.destroy(), Error, "outstanding");
  assert(ctx.destroyed);
  assert(pool.freed);
  assertEquals(called, false);
  assertEquals(req.state, "completed");
  assertEquals(pool.stats().workers, 0);
});

/** Two workers, free, a new pool, destroy. */
function freeAndDestroy(): void {
  {
    using ctx = AioContext.create();
    const pool = getThreadPool(ctx);
    let n = 0;
    for (let i = 0; i < 20; i++) pool.submitAio(job("add"), [i, 1], () => n++);
    while (n < 20) ctx.poll(true);
    pollUntil(ctx, () => pool.stats().workers >= 2, "a second worker");
    pool.free();
    assertEquals(pool.stats().workers, 0);
    assertEquals(pool.stats().curThreads, 0);
    const again = getThreadPool(ctx);
    assertEquals(runJob(ctx, job("identity"), 1).ret, 1);
    assertEquals(again.stats().workers, 1);
  } // destroy frees the second pool
}

Deno.test("no fd and no Worker thread is left after free() or context destroy", async () => {
  // The first round lets Deno make what it keeps for good once two Workers
  // have lived at once.
  freeAndDestroy();
  await fdCountSteady();
  const fds = openFdCount();
  const threads = [...Deno.readDirSync("/proc/self/task")].length;
  freeAndDestroy();
  await assertSettled(fds, threads);
});

Deno.test({
  name: "a process with a live pool exits when its main module ends",
  permissions: { run: true, read: true, write: true, ffi: true, env: true },
  async fn() {
    const root = new URL("../", import.meta.url);
    const script = await Deno.makeTempFile({ suffix: ".ts" });
    try {
      await Deno.writeTextFile(
        script,
        `import { AioContext } from ${JSON.stringify(new URL("aio/aio_context.ts", root).href)};
import { getThreadPool } from ${JSON.stringify(new URL("thread_pool/mod.ts", root).href)};
const jobs = ${JSON.stringify(JOBS.href)};
const ctx = AioContext.create();
const pool = getThreadPool(ctx);
let got = 0;
for (let i = 0; i < 8; i++) pool.submitAio({ module: jobs, name: "add" }, [i, 1], () => got++);
while (got < 8) ctx.poll(true);
if (Deno.args[0] === "busy") {
  // A worker stays in a job (and the others idle in Atomics.wait).
  const req = pool.submitAio({ module: jobs, name: "gated" }, new Int32Array(new SharedArrayBuffer(8)));
  while (req.state !== "active") ctx.poll(false);
}
console.log("done", got, pool.stats().workers > 0);
// Falls off the end: no destroy, no Deno.exit().
`,
      );
      for (const mode of ["idle", "busy"]) {
        const ac = new AbortController();
        const timer = setTimeout(() => ac.abort(), 20_000);
        const out = await new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", script, mode],
          stdout: "piped",
          stderr: "piped",
          signal: ac.signal,
        }).output();
        clearTimeout(timer);
        const stdout = new TextDecoder().decode(out.stdout);
        assertEquals(out.signal, null, `${mode}: killed after 20 s`);
        assertEquals(out.code, 0, `${mode}: ${new TextDecoder().decode(out.stderr)}`);
        assertEquals(stdout.trim(), "done 8 true", mode);
      }
    } finally {
      await Deno.remove(script);
    }
  },
});

Deno.test("stats() of a pool in use", () => {
  using ctx = AioContext.create();
  const pool: ThreadPoolAio = getThreadPool(ctx);
  const gate = new Int32Array(new SharedArrayBuffer(8));
  pool.setParams(0, 1);
  const a = pool.submitAio(job("gated"), gate);
  pool.submitAio(job("identity"), 0);
  pollUntil(ctx, () => a.state === "active", "the first job to run");
  const s = pool.stats();
  assertEquals([s.curThreads, s.workers, s.requests, s.queued], [1, 1, 2, 1]);
  Atomics.store(gate, 1, 1);
  Atomics.notify(gate, 1);
  pollUntil(ctx, () => pool.stats().requests === 0, "both completions");
});

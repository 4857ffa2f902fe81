// deno-lint-ignore-file require-yield -- a coroutine body need not yield, as in QEMU
// IOThreads (iothread.c and the test helper tests/unit/iothread.c) and the
// named remote requests they are driven by, including the Worker form of
// /aio/coroutine/worker-thread-co-enter (docs/parity.md).
import {
  assert,
  assertEquals,
  assertFalse,
  assertGreater,
  assertInstanceOf,
  assertRejects,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { AioContext } from "../aio/aio_context.ts";
import { Coroutine } from "../aio/coroutine.ts";
import { getCurrentAioContext } from "../aio/current.ts";
import { getMainAioContext, setMainAioContext } from "../aio/_main_context.ts";
import { IOThread } from "../iothread/iothread.ts";
import { QEMUClockType, SCALE_MS } from "../aio/timer.ts";
import { clockGetNs } from "../aio/timer.ts";
import { CTL_KICKS } from "../aio/_ctl_block.ts";
import { internals } from "../aio/_internal.ts";
import { bqlMutex } from "../thread/_bql_state.ts";
import {
  closeRemoteRequestChannel,
  loadRequestModule,
  registerCoroutine,
  remoteCall,
  remoteCallSync,
  remoteCoEnter,
  remotePost,
  remoteRequestChannel,
  remoteRequestsPending,
  requestChannelKey,
  unregisterCoroutine,
} from "../iothread/mod.ts";
import { libc } from "../sys/_libc.ts";
import { openFdCount, supportedFdMons } from "./_fd_leak.ts";

const FNS = new URL("./testdata/multithread_fns.ts", import.meta.url);

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitUntil(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await delay(5);
  }
}

function taskExists(tid: number): boolean {
  try {
    Deno.statSync(`/proc/self/task/${tid}`);
    return true;
  } catch {
    return false;
  }
}

/** Polls ctx from the event loop (poll(false) + a timer tick) until p settles. */
async function pumpUntil<T>(ctx: AioContext, p: Promise<T>): Promise<T> {
  let settled = false;
  p.then(() => settled = true, () => settled = true);
  while (!settled) {
    ctx.poll(false);
    await delay(1);
  }
  return p;
}

Deno.test("IOThread.create() starts a Worker whose current context runs named requests", async () => {
  const errors: unknown[] = [];
  await using t = await IOThread.create({ id: "basic", onError: (e) => errors.push(e) });
  assertEquals(t.id, "basic");
  assertFalse(t.stopped);
  const who = await t.run(FNS, "whoAmI") as Record<string, unknown>;
  assert(who.hasCtx, "getCurrentAioContext() inside the IOThread returns its context");
  assertEquals(who.ctxName, "IO basic");
  assertEquals(who.pollMaxNs, 32768, "IOTHREAD_POLL_MAX_NS_DEFAULT");
  assertEquals(who.pollGrow, 0);
  assertEquals(who.pollShrink, 0);
  assertEquals(who.threadPool, { min: 0, max: 64 });
  assertStrictEquals(who.tid, t.threadId);
  assert(who.tid !== libc().gettid(), "runs on another OS thread");
  assertEquals(t.pollParams, { maxNs: 32768, grow: 0, shrink: 0 });
  assertEquals(t.threadPoolParams, { min: 0, max: 64 });

  const value = {
    n: 1.5,
    i: -7,
    big: 2n ** 70n,
    s: "héllo",
    list: [1, null, undefined, true, [2, { deep: "x" }]],
    bytes: new Uint8Array([1, 2, 3]),
    map: new Map([["k", 1]]),
    date: new Date(0),
  };
  assertEquals(await t.run(FNS, "echo", value), value);
  assertEquals(t.runSync(FNS, "echo", "sync"), "sync");
  assertEquals(await t.run(FNS, "later", 21), 42, "a returned promise is awaited in the thread");

  // SharedArrayBuffers travel beside the request.
  const arr = new Int32Array(new SharedArrayBuffer(4));
  assertEquals(await t.run(FNS, "bump", { arr }), 1);
  assertEquals(t.runSync(FNS, "bump", { arr }), 2);
  assertEquals(arr[0], 2);

  await t.stop();
  assert(t.stopped);
  assertEquals(errors, []);
});

Deno.test("IOThread.create() passes poll and thread-pool parameters and the fd monitor down", async () => {
  for (const fdmon of supportedFdMons()) {
    await using t = await IOThread.create({
      fdmon,
      pollMaxNs: 1000,
      pollGrow: 3,
      pollShrink: 4,
      threadPoolMin: 2,
      threadPoolMax: 8,
    });
    const who = await t.run(FNS, "whoAmI") as Record<string, unknown>;
    assertEquals(who.fdmon, fdmon);
    assertEquals([who.pollMaxNs, who.pollGrow, who.pollShrink], [1000, 3, 4]);
    assertEquals(who.threadPool, { min: 2, max: 8 });
  }
});

Deno.test("an IOThread shares the process's one BQL", async () => {
  await using t = await IOThread.create({ pollMaxNs: 0 });
  const m = bqlMutex()!;
  // Free: the IOThread can take it (and gives it back).
  assertEquals(await t.run(FNS, "tryBql"), true);
  // Held here: the same lock, so the IOThread cannot.
  m.lock();
  try {
    assertEquals(await t.run(FNS, "tryBql"), false);
  } finally {
    m.unlock();
  }
  assertEquals(await t.run(FNS, "tryBql"), true);
});

Deno.test("IOThread threadPoolMin starts that many pool workers with the thread", async () => {
  await using none = await IOThread.create({ pollMaxNs: 0 });
  assertEquals(await none.run(FNS, "existingPoolStats"), null, "no pool without a min");
  await using t = await IOThread.create({ pollMaxNs: 0, threadPoolMin: 2, threadPoolMax: 4 });
  type Stats = { curThreads: number; idleThreads: number; workers: number };
  const first = await t.run(FNS, "existingPoolStats") as Stats | null;
  assert(first !== null, "the pool exists before any job");
  assertEquals(first.curThreads, 2);
  // The thread's own polls create them; no job is ever submitted here.
  let s = first;
  const end = performance.now() + 10_000;
  while (s.idleThreads < 2 && performance.now() < end) {
    await delay(20);
    s = await t.run(FNS, "existingPoolStats") as Stats;
  }
  assertEquals([s.idleThreads, s.workers], [2, 2]);
});

Deno.test("IOThread.run() and module() are typed by the called export", async () => {
  await using t = await IOThread.create({ pollMaxNs: 0 });
  type Fns = typeof import("./testdata/multithread_fns.ts");
  const n: number = await t.run<Fns["ping"]>(FNS, "ping", 41);
  assertEquals(n, 42);
  const fns = t.module<Fns>(FNS);
  const m: number = await fns.run("ping", 1);
  assertEquals(m, 2);
  const s: number = fns.runSync("ping", 2);
  assertEquals(s, 3);
  const never = performance.now() < 0;
  if (never) {
    // Compile-time checks (deno check fails if any line is accepted).
    // @ts-expect-error ping takes a number
    await fns.run("ping", "x");
    // @ts-expect-error ping's argument is required
    await fns.run("ping");
    // @ts-expect-error no such export
    await fns.run("noSuchExport", 1);
    // @ts-expect-error the result is a number
    const bad: string = await t.run<Fns["ping"]>(FNS, "ping", 1);
    void bad;
  }
});

Deno.test("IOThread.create() rejects bad parameters with the valid range", async () => {
  for (const key of ["pollMaxNs", "pollGrow", "pollShrink", "threadPoolMin", "threadPoolMax"]) {
    const e = await assertRejects(
      () => IOThread.create({ [key]: -1 }),
      RangeError,
      "must be in range [0, 9007199254740991]",
    );
    assert(e.message.startsWith(key), e.message);
  }
  await assertRejects(() => IOThread.create({ pollMaxNs: 1.5 }), RangeError);
  await assertRejects(() => IOThread.create({ threadPoolMin: 9, threadPoolMax: 8 }), RangeError);
  await assertRejects(() => IOThread.create({ threadPoolMax: 0 }), RangeError, "thread-pool");
  await assertRejects(() => IOThread.create({ id: "" }), TypeError);
  // The Worker fails to create its context: create() rejects, nothing leaks.
  await assertRejects(() => IOThread.create({ fdmon: "bogus" as "poll" }), Error, "bogus");
});

Deno.test("IOThread.run() reports a missing export, a missing module and a throw clearly", async () => {
  await using t = await IOThread.create({ pollMaxNs: 0 });
  const e = await assertRejects(() => t.run(FNS, "noSuchFunction"), TypeError);
  assertEquals(e.message, `Module '${FNS.href}' has no exported function 'noSuchFunction'`);
  await assertRejects(() => t.run(FNS, "SH"), TypeError, "has no exported function 'SH'");
  await assertRejects(
    () => t.run(new URL("./testdata/no_such_module.ts", import.meta.url), "f"),
    TypeError,
    "no_such_module.ts",
  );
  await assertRejects(() => t.run(FNS, "fail", "bad input"), RangeError, "bad input");
  assertThrows(() => t.runSync(FNS, "fail", "sync bad"), RangeError, "sync bad");
  await assertRejects(() => t.run("relative/path.ts", "f"), TypeError, "absolute URL");
  await assertRejects(() => t.run(FNS, "echo", () => 1), TypeError, "cannot be cloned");
  // The thread carries on.
  assertEquals(await t.run(FNS, "echo", 5), 5);
});

Deno.test("IOThread.stop() is idempotent and later requests fail with BadResource", async () => {
  const t = await IOThread.create({ pollMaxNs: 0 });
  const handle = t.handle;
  const a = t.stop();
  const b = t.stop();
  assertStrictEquals(a, b);
  await Promise.all([a, b]);
  assert(t.stopped);
  await t.stop();
  await assertRejects(() => t.run(FNS, "echo", 1), Deno.errors.BadResource);
  assertThrows(() => t.runSync(FNS, "echo", 1), Deno.errors.BadResource);
  assertThrows(() => remoteCoEnter(handle, 1), Deno.errors.BadResource);
  await assertRejects(() => remoteCall(handle, FNS, "echo", 1), Deno.errors.BadResource);
});

Deno.test("IOThread.stop() waits for a running function, then the thread leaves its loop", async () => {
  const t = await IOThread.create({ pollMaxNs: 0 });
  await t.run(FNS, "echo", 0);
  const long = t.run(FNS, "sleepMs", 200);
  await delay(20);
  await t.stop();
  assertEquals(await long, 200);
  await waitUntil(() => !taskExists(t.threadId), 5000, "the Worker thread to exit");
});

Deno.test("IOThread: an error leaving the thread's poll goes to onError and the loop carries on", async () => {
  const errors: unknown[] = [];
  await using t = await IOThread.create({ pollMaxNs: 0, onError: (e) => errors.push(e) });
  await t.run(FNS, "throwInBh", "bh failed");
  await waitUntil(() => errors.length > 0, 5000, "onError");
  assertInstanceOf(errors[0], Error);
  assertEquals((errors[0] as Error).message, "bh failed");
  assertEquals(await t.run(FNS, "echo", "still alive"), "still alive");
});

Deno.test("IOThread.stop() on a thread blocked in poll(true) returns and the process exits", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/iothread_exit.ts`;
    await Deno.writeTextFile(
      script,
      `import { IOThread } from ${
        JSON.stringify(new URL("../iothread/iothread.ts", import.meta.url).href)
      };
const t = await IOThread.create({ id: "sub", pollMaxNs: 0 });
const r = await t.run(${JSON.stringify(FNS.href)}, "echo", 41);
if (r !== 41) Deno.exit(3);
await t.stop();
console.log("stopped");
`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", "--no-check", script],
      stdout: "piped",
      stderr: "piped",
      // Generous: a Worker stuck in FFI would keep the process alive forever.
      signal: AbortSignal.timeout(60_000),
    }).output();
    const err = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, `exit code ${out.code}, stderr: ${err}`);
    assertEquals(new TextDecoder().decode(out.stdout).trim(), "stopped");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a process whose script returns without IOThread.stop() exits, idle or busy", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/iothread_fall_off.ts`;
    await Deno.writeTextFile(
      script,
      `import { IOThread, remotePost } from ${
        JSON.stringify(new URL("../iothread/mod.ts", import.meta.url).href)
      };
const t = await IOThread.create({ id: "left", pollMaxNs: 0 });
if (await t.run(${JSON.stringify(FNS.href)}, "echo", 5) !== 5) Deno.exit(3);
if (Deno.args[0] === "busy") {
  // The thread is inside a function that never returns, blocking it (a
  // pending run() would keep the process alive as any awaited call does).
  const gate = new Int32Array(new SharedArrayBuffer(8));
  await t.run(${JSON.stringify(FNS.href)}, "holdGate", gate);
  remotePost(t.handle, ${JSON.stringify(FNS.href)}, "blockOnGate");
  while (Atomics.load(gate, 1) === 0) await new Promise((r) => setTimeout(r, 1));
}
console.log("returning", Deno.args[0]);
// Falls off the end: no stop(), no Deno.exit().
`,
    );
    for (const mode of ["idle", "busy"]) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--quiet", "--no-check", script, mode],
        stdout: "piped",
        stderr: "piped",
        // The watchdog: a live IOThread used to hang the process forever.
        signal: AbortSignal.timeout(30_000),
      }).output();
      const err = new TextDecoder().decode(out.stderr);
      assertEquals(out.signal, null, `${mode}: killed by the watchdog; stderr: ${err}`);
      assertEquals(out.code, 0, `${mode}: exit code ${out.code}, stderr: ${err}`);
      assertEquals(new TextDecoder().decode(out.stdout).trim(), `returning ${mode}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("IOThread.stop() leaks no fd and no Worker thread", async () => {
  // Deno keeps the last terminated Worker's runtime fds until the next
  // Worker is made; one warm-up cycle reaches that steady state.
  const warm = await IOThread.create({ pollMaxNs: 0 });
  await warm.run(FNS, "echo", 0);
  await warm.stop();
  await waitUntil(() => !taskExists(warm.threadId), 5000, "the warm-up Worker to exit");
  await delay(50);
  const before = openFdCount();
  for (const fdmon of [...supportedFdMons(), ...supportedFdMons()]) {
    const t = await IOThread.create({ pollMaxNs: 0, fdmon });
    const tid = t.threadId;
    assert(taskExists(tid));
    await t.run(FNS, "echo", 1);
    await t.stop();
    await waitUntil(() => !taskExists(tid), 5000, `Worker thread ${tid} to exit`);
  }
  await waitUntil(() => openFdCount() <= before, 2000, `fd count to return to ${before}`).catch(
    () => {},
  );
  assertEquals(openFdCount(), before, "fds before and after");
});

for (const fdmon of supportedFdMons()) {
  Deno.test(`notify() storm from 4 Workers loses no wake-up of poll(true) [${fdmon}]`, async () => {
    const WORKERS = 4;
    const PER_WORKER = 250_000;
    const threads = await Promise.all(
      Array.from({ length: WORKERS }, (_, i) => IOThread.create({ id: `storm${i}`, pollMaxNs: 0 })),
    );
    try {
      for (const t of threads) await t.run(FNS, "echo", 0);
      using home = AioContext.create({ fdmon, name: "storm-home" });
      const counter = new Int32Array(new SharedArrayBuffer(4));
      const bhRuns = new Array(WORKERS).fill(0);
      const bhs = bhRuns.map((_, i) =>
        home.bhNew(() => bhRuns[i]++, { name: `last${i}`, shared: true })
      );
      // A lost wake-up would block poll(true) forever: the watchdog bounds
      // the test and fails it.
      let watchdog = false;
      const wd = home.timerNew(QEMUClockType.REALTIME, SCALE_MS, () => watchdog = true);
      wd.mod(clockGetNs(QEMUClockType.REALTIME) / 1e6 + 60_000);
      const kicks0 = Atomics.load(internals(home).ctl, CTL_KICKS);
      const runs = threads.map((t, i) =>
        t.run(FNS, "notifyStorm", {
          handle: home.handle(),
          counter,
          count: PER_WORKER,
          bh: bhs[i].remote(),
        })
      );
      let polls = 0;
      while (Atomics.load(counter, 0) < WORKERS * PER_WORKER || bhRuns.some((n) => n === 0)) {
        home.poll(true);
        polls++;
        if (watchdog) break;
      }
      assertFalse(watchdog, "poll(true) was not woken by the last notify()");
      assertEquals(Atomics.load(counter, 0), WORKERS * PER_WORKER);
      assertEquals(bhRuns, [1, 1, 1, 1]);
      assertEquals(await Promise.all(runs), new Array(WORKERS).fill(PER_WORKER));
      assertGreater(Atomics.load(internals(home).ctl, CTL_KICKS) - kicks0, 0, "the doorbell rang");
      assertGreater(polls, 1);
      wd.del();
      for (const bh of bhs) bh.delete();
    } finally {
      await Promise.all(threads.map((t) => t.stop()));
    }
  });
}

Deno.test("/aio/coroutine/worker-thread-co-enter (Worker form)", async () => {
  await using t = await IOThread.create({ pollMaxNs: 0 });
  await t.run(FNS, "echo", 0);
  const saved = getMainAioContext();
  using ctx = AioContext.create({ name: "main" });
  setMainAioContext(ctx);
  try {
    while (ctx.poll(false)) { /* drain, as test-aio's main() does */ }
    const channel = remoteRequestChannel(ctx);
    let ranIn: AioContext | null | undefined = undefined;
    const co = Coroutine.create(function* () {
      // QEMU asserts the coroutine runs in the main thread's context.
      ranIn = getCurrentAioContext();
    });
    const coId = registerCoroutine(co);
    try {
      // The Worker (no context of ours) asks for the coroutine to be entered.
      await t.run(FNS, "coEnter", { channel, coId });
      assertStrictEquals(ranIn, undefined, "not entered synchronously");
      assertFalse(co.entered);
      assert(ctx.poll(true));
      assertStrictEquals(ranIn, ctx);
      assert(co.done);
      assertFalse(ctx.poll(false));
    } finally {
      unregisterCoroutine(coId);
    }
  } finally {
    setMainAioContext(saved);
  }
});

Deno.test("remote request: an IOThread blocks on a reply from the main thread's context", async () => {
  await using t = await IOThread.create({ pollMaxNs: 0 });
  using ctx = AioContext.create({ name: "main-home" });
  const channel = remoteRequestChannel(ctx);
  await loadRequestModule(FNS);
  // The IOThread blocks in remoteCallSync into our context: we must poll.
  const got = await pumpUntil(ctx, t.run(FNS, "callHome", { channel, x: { hello: "main" } }));
  assertEquals(got, { hello: "main" });
  assertFalse(ctx.poll(false));
});

Deno.test("remote request: an unknown coroutine id fails in the home's poll, not the sender's", async () => {
  await using t = await IOThread.create({ pollMaxNs: 0 });
  using ctx = AioContext.create({ name: "co-home" });
  const channel = remoteRequestChannel(ctx);
  await t.run(FNS, "coEnter", { channel, coId: 0x7fffffff });
  assertThrows(() => ctx.poll(true), Error, "No coroutine is registered under id 2147483647");
  assertFalse(ctx.poll(false));
});

Deno.test("remote request: requests queued when the context is destroyed fail, none hangs", async () => {
  const ctx = AioContext.create({ name: "doomed" });
  const channel = remoteRequestChannel(ctx);
  await loadRequestModule(FNS);
  const p = remoteCall(channel, FNS, "echo", 1);
  remotePost(channel, FNS, "echo", 2);
  ctx.destroy();
  await assertRejects(() => p, Deno.errors.BadResource, "destroyed");
  assertThrows(() => remotePost(channel, FNS, "echo", 3), Deno.errors.BadResource);
  assertFalse(remoteRequestsPending());
});

Deno.test("remote request: channel keys, limits and closed channels", async () => {
  using ctx = AioContext.create();
  const channel = remoteRequestChannel(ctx, { slots: 2, slotBytes: 256 });
  assertStrictEquals(remoteRequestChannel(ctx), channel);
  assertEquals(requestChannelKey(structuredClone(channel)), requestChannelKey(channel));
  // A plain handle resolves once the channel was seen in this isolate.
  assertEquals(requestChannelKey(ctx.handle()), requestChannelKey(channel));
  await assertRejects(() => remoteCall(channel, FNS, "echo", "x".repeat(300)), RangeError, "256");
  assertThrows(() => remoteCallSync(channel, FNS, "echo", 1), Error, "calling thread");
  assertThrows(() => remoteCoEnter(channel, 0), RangeError);
  // Two slots: a third queued request from the home thread is refused.
  remotePost(channel, FNS, "echo", 1);
  remotePost(channel, FNS, "echo", 2);
  assertThrows(() => remotePost(channel, FNS, "echo", 3), Error, "full");
  await loadRequestModule(FNS);
  assert(ctx.poll(true));
  using other = AioContext.create();
  assertThrows(() => remoteRequestChannel(other, { slots: 3 }), RangeError);
  const ch2 = remoteRequestChannel(other);
  closeRemoteRequestChannel(ch2);
  assertThrows(() => remoteCoEnter(ch2, 1), Deno.errors.BadResource);
});

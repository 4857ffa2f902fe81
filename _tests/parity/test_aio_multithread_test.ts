// Parity with QEMU tests/unit/test-aio-multithread.c, in its quick
// (g_test_quick) form, with the adaptations of docs/parity.md: IOThreads are
// Workers that each own an AioContext; ctx_run is IOThread.run (a named
// function run as a BH in the thread's context); coroutines never leave
// their isolate, so "schedule coroutine X on ctx n" is a remote request to
// ctx n naming X's id, and the CoMutex shared by several threads is the
// cross-isolate CrossCoMutex. Each case runs once per fd monitor.
//
// As in the C test there is no main loop and no main context: the test's
// own thread only sleeps, sets flags and calls ctx_run.
import { assert, assertEquals, assertGreater } from "@std/assert";
import { AioContext } from "../../aio/aio_context.ts";
import { Coroutine, type CoroutineFn } from "../../aio/coroutine.ts";
import { CoMutex } from "../../aio/coroutine_lock.ts";
import { aioCoRescheduleSelf, aioCoSchedule } from "../../aio/co_schedule.ts";
import { CrossCoMutex, McsLock } from "../_cross_lock.ts";
import { QemuMutex } from "../../thread/mutex.ts";
import { IOThread } from "../../iothread/iothread.ts";
import { remoteRequestChannel } from "../../iothread/mod.ts";
import type { FdMonName } from "../../fdmon/fdmon_ops.ts";
import { supportedFdMons } from "../_fd_leak.ts";
import { SH } from "../testdata/multithread_fns.ts";

const FNS = new URL("../testdata/multithread_fns.ts", import.meta.url);
const NUM_CONTEXTS = 5;
// Quick durations of the C test, in ms.
const SCHEDULE_MS = 1000;
/** The token-passing form keeps threads busy; half a second is plenty. */
const PASSING_MS = 500;
const CONTENDED_MS = 1000;
const HANDOFF_MS = 3000;
const MCS_MS = 1000;
const PTHREAD_MS = 1000;
/** How long stopping may take before a lost wake-up is assumed. */
const STOP_TIMEOUT_MS = 20_000;

/** g_test_message: printed when AIOLOOP_TEST_VERBOSE is set. */
function testMessage(msg: string): void {
  const granted = Deno.permissions.querySync({ name: "env", variable: "AIOLOOP_TEST_VERBOSE" });
  if (granted.state === "granted" && Deno.env.get("AIOLOOP_TEST_VERBOSE")) console.log(msg);
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitUntil(cond: () => boolean, ms: number, what: () => string): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`Timed out after ${ms} ms: ${what()}`);
    await delay(10);
  }
}

interface Contexts {
  threads: IOThread[];
  /** Errors that left an IOThread's poll (a double schedule, say). */
  errors: unknown[];
}

/**
 * create_aio_contexts: NUM_CONTEXTS IOThreads (adaptive polling off, as the
 * test helper leaves it), each told its index by ctx_run(set_id_cb).
 */
async function createAioContexts(fdmon: FdMonName): Promise<Contexts> {
  const errors: unknown[] = [];
  const threads: IOThread[] = [];
  // One after another, as iothread_new() does (Worker start-up is serialized
  // anyway, and under `deno test` the first start type-checks the entry).
  for (let i = 0; i < NUM_CONTEXTS; i++) {
    threads.push(
      await IOThread.create({
        id: `multi${i}`,
        fdmon,
        pollMaxNs: 0,
        onError: (e) => errors.push(e),
      }),
    );
    const r = await threads[i].run(FNS, "setId", i) as { id: number; ctxName: string };
    assertEquals(r.id, i);
    assertEquals(r.ctxName, `IO multi${i}`);
  }
  return { threads, errors };
}

/** join_aio_contexts: stop every IOThread (flag, doorbell, wait, terminate). */
async function joinAioContexts(c: Contexts): Promise<void> {
  await Promise.all(c.threads.map((t) => t.stop()));
  assert(c.threads.every((t) => t.stopped));
}

function newShared(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(SH.WORDS * 4));
}

async function testMultiCoSchedule(fdmon: FdMonName, ms: number, passing: boolean): Promise<void> {
  const c = await createAioContexts(fdmon);
  try {
    const sh = newShared();
    const channels = c.threads.map((t) => t.handle);
    // Each thread creates its coroutine and aio_co_schedules it on its own
    // context (the C test does this from the main thread, which is the same
    // thing for the coroutine: it first runs in ctx[i]).
    for (const t of c.threads) await t.run(FNS, "scheduleStart", { sh, channels, passing });
    await delay(ms);
    for (let i = 0; i < NUM_CONTEXTS; i++) {
      await c.threads[i].run(FNS, "finishCb");
      assertEquals(Atomics.load(sh, SH.TO_SCHEDULE + i), 0, `to_schedule[${i}] after finish_cb`);
    }
    // Every coroutine terminates (finish_cb woke the parked ones; the
    // others were in flight): none was lost on the way.
    for (let i = 0; i < NUM_CONTEXTS; i++) {
      const end = performance.now() + STOP_TIMEOUT_MS;
      while (!(await c.threads[i].run(FNS, "scheduleDone"))) {
        if (performance.now() > end) throw new Error(`The coroutine of ctx ${i} never terminated`);
        await delay(10);
      }
      assertEquals(await c.threads[i].run(FNS, "scheduleEnd"), { done: true });
    }
    for (let i = 0; i < NUM_CONTEXTS; i++) assertEquals(Atomics.load(sh, SH.TO_SCHEDULE + i), 0);
    testMessage(
      `scheduled ${Atomics.load(sh, SH.COUNT_HERE)} here, ${
        Atomics.load(sh, SH.COUNT_OTHER)
      } other, ${Atomics.load(sh, SH.COUNT_RETRY)} retries`,
    );
    if (passing) {
      assertGreater(Atomics.load(sh, SH.COUNT_OTHER), 0, "coroutines moved between threads");
    }
  } finally {
    await joinAioContexts(c);
  }
  assertEquals(c.errors, [], "no double scheduling, nothing thrown in an IOThread");
}

type LockKind = "comutex" | "futex" | "mcs";

async function testMultiMutex(
  fdmon: FdMonName,
  kind: LockKind,
  threads: number,
  ms: number,
): Promise<void> {
  const c = await createAioContexts(fdmon);
  let contended = (): number => 0;
  try {
    const sh = newShared();
    const arg: Record<string, unknown> = { sh, kind };
    if (kind === "comutex") {
      const m = CrossCoMutex.create(c.threads.map((t) => t.handle));
      arg.comutex = m.handle;
      contended = () => m.contended;
    } else if (kind === "futex") {
      const m = QemuMutex.create();
      arg.futex = m.handle;
      contended = () => m.contended;
    } else {
      const m = McsLock.create(NUM_CONTEXTS);
      assertEquals(m.head, -1, "mutex_head starts at -1");
      arg.mcs = m.handle;
      contended = () => m.contended;
    }
    Atomics.store(sh, SH.RUNNING, threads);
    for (let i = 0; i < threads; i++) await c.threads[i].run(FNS, "mutexStart", arg);
    await delay(ms);
    Atomics.store(sh, SH.NOW_STOPPING, 1);
    // Every coroutine reaches running--: no waiter was left without its wake-up.
    await waitUntil(
      () => Atomics.load(sh, SH.RUNNING) === 0,
      STOP_TIMEOUT_MS,
      () => `${Atomics.load(sh, SH.RUNNING)} coroutine(s) never finished (lost wake-up?)`,
    );
    const counter = Atomics.load(sh, SH.COUNTER);
    testMessage(
      `${kind}, ${threads} threads: ${
        Math.round(counter * 1000 / ms)
      } iterations/second, ${contended()} contended`,
    );
    assertEquals(counter, Atomics.load(sh, SH.ATOMIC_COUNTER), "counter == atomic_counter");
    assertGreater(counter, 0);
    assertGreater(contended(), 0, "the lock was contended at least once");
  } finally {
    await joinAioContexts(c);
  }
  assertEquals(c.errors, []);
}

/**
 * The single-isolate variant (docs/parity.md): N contexts in one isolate, one
 * coroutine each, and every critical section also moves its coroutine to
 * another context through aio_co_schedule (aio_co_reschedule_self) while
 * it holds the lock, so that the others find it locked.
 */
function testSingleIsolateMutex(fdmon: FdMonName, kind: "comutex" | "cross"): void {
  const N = 4;
  const ITERATIONS = 2000;
  const ctxs = Array.from({ length: N }, (_, i) => AioContext.create({ fdmon, name: `iso${i}` }));
  try {
    const cross = kind === "cross"
      ? CrossCoMutex.create(ctxs.map((x) => remoteRequestChannel(x)))
      : null;
    const comutex = cross === null ? new CoMutex() : null;
    const lock = () => cross?.lock() ?? comutex!.lock();
    const unlock = () => cross ? cross.unlock() : comutex!.unlock();
    let counter = 0, atomicCounter = 0, running = N, stopping = false, sawLocked = 0;
    const entry = function* (i: number): CoroutineFn {
      while (!stopping) {
        if (cross?.locked ?? comutex!.locked) sawLocked++;
        yield* lock();
        const before = counter;
        // Hold the lock across a hop to another context.
        yield* aioCoRescheduleSelf(ctxs[(i + 1) % N]);
        counter = before + 1;
        unlock();
        atomicCounter++;
        yield* aioCoRescheduleSelf(ctxs[i]);
      }
      running--;
    };
    const cos = ctxs.map((x, i) => {
      const co = Coroutine.create(entry, i);
      aioCoSchedule(x, co);
      return co;
    });
    let rounds = 0;
    while (atomicCounter < ITERATIONS) {
      for (const x of ctxs) x.poll(false);
      if (++rounds > ITERATIONS * 100) throw new Error(`No progress: counter ${atomicCounter}`);
    }
    stopping = true;
    for (rounds = 0; running > 0; rounds++) {
      if (rounds > 100_000) throw new Error(`${running} coroutine(s) never finished`);
      for (const x of ctxs) x.poll(false);
    }
    assert(cos.every((co) => co.done));
    assertEquals(counter, atomicCounter, "counter == atomic_counter");
    assertGreater(sawLocked, 0, "the lock was contended");
    if (cross !== null) assertGreater(cross.contended, 0);
  } finally {
    for (const x of ctxs) x.destroy();
  }
}

for (const fdmon of supportedFdMons()) {
  Deno.test(`/aio/multi/lifecycle [${fdmon}]`, async () => {
    const c = await createAioContexts(fdmon);
    await joinAioContexts(c);
    assertEquals(c.errors, []);
  });

  Deno.test(`/aio/multi/schedule [${fdmon}]`, async () => {
    await testMultiCoSchedule(fdmon, SCHEDULE_MS, false);
  });

  Deno.test(`/aio/multi/schedule (token passing) [${fdmon}]`, async () => {
    await testMultiCoSchedule(fdmon, PASSING_MS, true);
  });

  Deno.test(`/aio/multi/mutex/contended [${fdmon}]`, async () => {
    await testMultiMutex(fdmon, "comutex", NUM_CONTEXTS, CONTENDED_MS);
  });

  Deno.test(`/aio/multi/mutex/handoff [${fdmon}]`, async () => {
    await testMultiMutex(fdmon, "comutex", 2, HANDOFF_MS);
  });

  Deno.test(`/aio/multi/mutex/contended (single isolate, CoMutex) [${fdmon}]`, () => {
    testSingleIsolateMutex(fdmon, "comutex");
  });

  Deno.test(`/aio/multi/mutex/contended (single isolate, CrossCoMutex) [${fdmon}]`, () => {
    testSingleIsolateMutex(fdmon, "cross");
  });

  Deno.test({
    name: `/aio/multi/mutex/mcs [${fdmon}]`,
    ignore: Deno.build.os !== "linux",
    fn: async () => {
      await testMultiMutex(fdmon, "mcs", NUM_CONTEXTS, MCS_MS);
    },
  });

  Deno.test(`/aio/multi/mutex/pthread [${fdmon}]`, async () => {
    await testMultiMutex(fdmon, "futex", NUM_CONTEXTS, PTHREAD_MS);
  });
}

// The thread primitives (util/qemu-thread-posix.c, util/event.c). QEMU has
// no unit tests for them; these check the behaviour QEMU's users rely on,
// across real Workers, with mutation tests where a plausible bug would
// otherwise pass unnoticed.
import { assert, assertEquals, assertGreaterOrEqual, assertThrows } from "@std/assert";
import {
  QemuCond,
  QemuEvent,
  QemuMutex,
  QemuRecMutex,
  QemuSemaphore,
  QemuSpin,
  qemuSpinTrylock,
  type SharedWordHandle,
} from "../thread/mod.ts";
import { SH } from "./testdata/cpus_thread_fns.ts";
import { runInWorker, sleep, until, within, type WorkerCall } from "./_workers.ts";

const FNS = new URL("./testdata/cpus_thread_fns.ts", import.meta.url);
const DOG = 20_000;

function shared(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(SH.SIZE * 4));
}

function word(h: SharedWordHandle): Int32Array {
  return new Int32Array(h.sab, h.index * 4, 1);
}

async function withWorkers(
  fn: (start: (f: string, arg: unknown) => WorkerCall) => Promise<void>,
): Promise<void> {
  const calls: WorkerCall[] = [];
  try {
    await fn((f, arg) => {
      const c = runInWorker(FNS, f, arg);
      calls.push(c);
      return c;
    });
  } finally {
    for (const c of calls) c.worker.terminate();
  }
}

// ---------------------------------------------------------------------------
// QemuEvent

Deno.test("/thread/event/set-before-wait", () => {
  const ev = QemuEvent.create(false);
  ev.set();
  ev.wait(); // returns at once: the test would hang otherwise
  assertEquals(ev.isSet, true);
});

Deno.test("/thread/event/init", () => {
  assertEquals(QemuEvent.create(true).isSet, true);
  assertEquals(QemuEvent.create(false).isSet, false);
  QemuEvent.create(true).wait();
});

Deno.test("/thread/event/reset-then-wait-blocks", async () => {
  await withWorkers(async (start) => {
    const sh = shared();
    const ev = QemuEvent.create(true);
    ev.reset();
    const w = start("eventWait", { sh, h: ev.handle });
    await until(() => Atomics.load(word(ev.handle), 0) === -1, DOG, "waiter announced (BUSY)");
    await sleep(20);
    assertEquals(Atomics.load(sh, SH.RETURNED), 0, "a reset event holds its waiter");
    ev.set();
    await within(w.done, DOG, "waiter released by set");
    assertEquals(Atomics.load(sh, SH.RETURNED), 1);
  });
});

Deno.test("/thread/event/set-releases-all", async () => {
  await withWorkers(async (start) => {
    const sh = shared();
    const ev = QemuEvent.create(false);
    const ws = [0, 1, 2].map(() => start("eventWait", { sh, h: ev.handle }));
    await until(() => Atomics.load(word(ev.handle), 0) === -1, DOG, "a waiter announced");
    await sleep(20);
    ev.set();
    await within(Promise.all(ws.map((w) => w.done)), DOG, "one set releases every waiter");
    assertEquals(Atomics.load(sh, SH.RETURNED), 3);
  });
});

Deno.test("/thread/event/set-then-reset-is-a-level", async () => {
  await withWorkers(async (start) => {
    const sh = shared();
    const ev = QemuEvent.create(false);
    // A set undone before the waiter looks: waiting is on a level, not a pulse.
    ev.set();
    ev.reset();
    const w = start("eventWait", { sh, h: ev.handle });
    await until(() => Atomics.load(word(ev.handle), 0) === -1, DOG, "waiter announced");
    await sleep(20);
    assertEquals(Atomics.load(sh, SH.RETURNED), 0, "the undone set released nobody");
    ev.set();
    await within(w.done, DOG, "waiter released");
  });
});

/** Reset with a plain store of FREE: the one-word bug QEMU's OR avoids. */
class ResetStoresFree extends QemuEvent {
  override reset(): void {
    Atomics.store(word(this.handle), 0, 1);
  }
}

/** Set that changes the word but forgets to wake the sleepers. */
class SetWithoutWake extends QemuEvent {
  override set(): void {
    Atomics.store(word(this.handle), 0, 0);
  }
}

/**
 * The harness of the two tests below: a waiter sleeps (BUSY), the main
 * thread resets then sets. Resolves true if the waiter came back.
 */
async function resetKeepsBusyWaiter(ev: QemuEvent): Promise<boolean> {
  let released = false;
  await withWorkers(async (start) => {
    const sh = shared();
    ev.reset();
    const w = start("eventWait", { sh, h: ev.handle });
    await until(() => Atomics.load(word(ev.handle), 0) === -1, DOG, "waiter announced");
    // Give the waiter time to reach its futex wait; QEMU's event does not
    // depend on it, a broken one is caught either way only once asleep.
    await sleep(30);
    ev.reset();
    ev.set();
    try {
      await within(w.done, 1500, "waiter released");
      released = true;
    } catch {
      // Rescue the sleeper so that the Worker can be terminated cleanly.
      Atomics.notify(word(ev.handle), 0);
    }
  });
  return released;
}

Deno.test("/thread/event/reset-never-loses-busy-waiter", async () => {
  assertEquals(await resetKeepsBusyWaiter(QemuEvent.create(false)), true);
});

Deno.test("/thread/event/mutation/reset-store-free-must-fail", async () => {
  assertEquals(
    await resetKeepsBusyWaiter(new ResetStoresFree(QemuEvent.create(false).handle)),
    false,
    "the harness must catch a reset that hides the sleeper",
  );
});

Deno.test("/thread/event/mutation/set-without-wake-must-fail", async () => {
  assertEquals(
    await resetKeepsBusyWaiter(new SetWithoutWake(QemuEvent.create(false).handle)),
    false,
  );
});

Deno.test("/thread/event/set-reset-wait-loop", async () => {
  await withWorkers(async (start) => {
    const n = 100_000;
    const a = QemuEvent.create(true), b = QemuEvent.create(false);
    const sh = shared();
    const x = start("eventPingPong", { sh, h: a.handle, h2: b.handle, n });
    const y = start("eventPingPong", { sh, h: b.handle, h2: a.handle, n });
    const r = await within(Promise.all([x.done, y.done]), 60_000, "100k set/reset/wait rounds");
    assertEquals(r, [n, n]);
  });
});

// ---------------------------------------------------------------------------
// QemuSemaphore

Deno.test("/thread/semaphore/counting", () => {
  const s = QemuSemaphore.create(2);
  s.wait();
  s.wait();
  assertEquals(s.timedWait(0), -1, "timedwait(0) is a try-wait");
  s.post();
  s.post();
  s.post();
  assertEquals(s.value, 3);
  assertEquals(s.timedWait(0), 0);
  assertEquals(s.value, 2);
});

Deno.test("/thread/semaphore/timedwait-times-out", () => {
  const s = QemuSemaphore.create(0);
  const t0 = performance.now();
  assertEquals(s.timedWait(20), -1);
  assertGreaterOrEqual(performance.now() - t0, 19.5, "a timed wait sleeps at least its timeout");
});

Deno.test("/thread/semaphore/n-posts-release-n-waits", async () => {
  await withWorkers(async (start) => {
    const sh = shared();
    const s = QemuSemaphore.create(0);
    const ws = [0, 1, 2].map(() => start("semWait", { sh, h: s.handle }));
    await until(() => Atomics.load(sh, SH.STARTED) === 3, DOG, "three waiters started");
    s.post();
    s.post();
    await until(() => Atomics.load(sh, SH.RETURNED) === 2, DOG, "two waits returned");
    await sleep(30);
    assertEquals(Atomics.load(sh, SH.RETURNED), 2, "two posts release exactly two waits");
    assertEquals(s.value, 0);
    s.post();
    await within(Promise.all(ws.map((w) => w.done)), DOG, "third wait released");
    assertEquals(Atomics.load(sh, SH.RETURNED), 3);
  });
});

Deno.test("/thread/semaphore/bad-input", () => {
  assertThrows(() => QemuSemaphore.create(-1), RangeError, "value");
  assertThrows(() => QemuSemaphore.create(0).timedWait(-5), RangeError, "ms");
});

// ---------------------------------------------------------------------------
// QemuCond

Deno.test("/thread/cond/timedwait-returns-false", () => {
  const m = QemuMutex.create(), c = QemuCond.create();
  m.lock();
  assertEquals(c.timedWait(m, 5), false);
  assert(m.locked, "the mutex is retaken after the wait");
  m.unlock();
});

Deno.test("/thread/cond/broadcast-wakes-all", async () => {
  await withWorkers(async (start) => {
    const sh = shared();
    const m = QemuMutex.create(), c = QemuCond.create();
    const ws = [0, 1, 2, 3].map(() => start("condWaitFlag", { sh, h: m.handle, h2: c.handle }));
    await until(() => Atomics.load(sh, SH.STARTED) === 4, DOG, "four waiters started");
    m.lock();
    sh[SH.FLAG] = 1;
    c.broadcast();
    m.unlock();
    await within(Promise.all(ws.map((w) => w.done)), DOG, "broadcast wakes every waiter");
    assertEquals(Atomics.load(sh, SH.RETURNED), 4);
  });
});

Deno.test("/thread/cond/no-lost-wake", async () => {
  await withWorkers(async (start) => {
    const n = 20_000;
    const sh = shared();
    const m = QemuMutex.create(), c = QemuCond.create();
    const x = start("condPingPong", { sh, h: m.handle, h2: c.handle, n, me: 0 });
    const y = start("condPingPong", { sh, h: m.handle, h2: c.handle, n, me: 1 });
    assertEquals(await within(Promise.all([x.done, y.done]), 60_000, "ping-pong"), [n, n]);
  });
});

// ---------------------------------------------------------------------------
// QemuMutex, QemuRecMutex, QemuSpin

async function hammer(fn: string, h: SharedWordHandle, n: number): Promise<number> {
  let total = 0;
  await withWorkers(async (start) => {
    const sh = shared();
    const ws = [0, 1, 2, 3].map(() => start(fn, { sh, h, n }));
    await within(Promise.all(ws.map((w) => w.done)), 60_000, `${fn} by 4 Workers`);
    total = sh[SH.COUNTER];
  });
  return total;
}

Deno.test("/thread/mutex/exclusion", async () => {
  const m = QemuMutex.create();
  assertEquals(await hammer("mutexHammer", m.handle, 20_000), 80_000);
  assert(!m.locked);
});

Deno.test("/thread/mutex/trylock-and-errors", () => {
  const m = QemuMutex.create();
  assertEquals(m.tryLock(), true);
  assertEquals(m.tryLock(), false);
  m.unlock();
  assertThrows(() => m.unlock(), Error, "not locked");
  {
    using _g = m.guard();
    assert(m.locked);
  }
  assert(!m.locked, "the guard unlocks at scope end");
  assertThrows(() => new QemuMutex({ sab: new ArrayBuffer(8) as never, index: 0 }), TypeError);
  assertThrows(() => new QemuMutex({ sab: new SharedArrayBuffer(8), index: 1 }), RangeError);
});

Deno.test("/thread/rec-mutex/depth", async () => {
  const m = QemuRecMutex.create();
  m.lock();
  assertEquals(m.tryLock(), true);
  assertEquals(m.depth, 2);
  m.unlock();
  assert(m.locked, "still held after the inner unlock");
  m.unlock();
  assert(!m.locked);
  assertThrows(() => m.unlock(), Error, "does not hold");
  assertEquals(await hammer("recMutexHammer", m.handle, 10_000), 80_000);
});

Deno.test("/thread/spin/exclusion", async () => {
  const s = QemuSpin.create();
  assertEquals(await hammer("spinHammer", s.handle, 20_000), 80_000);
});

Deno.test("/thread/spin/trylock-returns-true-when-busy", () => {
  const s = QemuSpin.create();
  assertEquals(qemuSpinTrylock(s), false, "free: taken, so false");
  assertEquals(qemuSpinTrylock(s), true, "busy: true");
  assert(s.locked);
  s.unlock();
  assertThrows(() => s.unlock(), Error, "not locked");
});

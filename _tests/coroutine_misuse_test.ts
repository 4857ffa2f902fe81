// A coroutine operation called without yield* is not a silent no-op:
// `yield op()` throws at once; `op();` as a plain statement throws a
// TypeError naming the operation at the coroutine's next operation, yield
// or end. What is not detected is pinned down too (the documented limits).
import { assert, assertEquals, assertInstanceOf, assertThrows } from "@std/assert";
import {
  AioContext,
  CoMutex,
  CoQueue,
  Coroutine,
  type CoroutineFn,
  coroutineYield,
  CoRwlock,
  coSleepNs,
  QEMUClockType,
  withCurrentAioContext,
} from "../mod.ts";
import { supportedFdMons } from "./_fd_leak.ts";

/** Enters `co` and returns what it threw (or null). */
function enterCatching(co: Coroutine): unknown {
  try {
    co.enter();
    return null;
  } catch (e) {
    return e;
  }
}

function assertMisuse(e: unknown, what: string): void {
  assertInstanceOf(e, TypeError);
  assert(e.message.startsWith(`${what} was called but never run`), e.message);
  assert(e.message.includes("yield*"), e.message);
}

Deno.test("coroutine misuse: `m.lock();` then a bare yield throws into the body, lock untaken", () => {
  const m = new CoMutex();
  let caught: unknown = null;
  const co = Coroutine.create(function* () {
    m.lock(); // missing yield*
    try {
      yield;
    } catch (e) {
      caught = e;
    }
  });
  assertEquals(enterCatching(co), null);
  assertMisuse(caught, "mutex.lock()");
  assertEquals(m.locked, false);
  assertEquals(co.done, true);
});

Deno.test("coroutine misuse: `m.lock();` then m.unlock() names the missing yield*", () => {
  const m = new CoMutex();
  const co = Coroutine.create(function* () {
    m.lock();
    m.unlock();
  });
  assertMisuse(enterCatching(co), "mutex.lock()");
  assertEquals(m.locked, false);
});

Deno.test("coroutine misuse: an operation never run is reported when the body ends", () => {
  const rw = new CoRwlock();
  const co = Coroutine.create(function* () {
    yield* rw.wrlock();
    rw.unlock(); // a generator too: without yield* it unlocks nothing
  });
  const e = enterCatching(co);
  // The write lock is still held, so QEMU's lock check wraps the misuse.
  assertInstanceOf(e, Error);
  assertEquals(e.message, "Co-routine threw with 1 lock held");
  assertMisuse(e.cause, "rwlock.unlock()");
  assertEquals(co.done, true);
  // The coroutine failed; its promise carries the same error.
  return co.promise.then(() => assert(false, "resolved"), (err) => assertEquals(err, e));
});

Deno.test("coroutine misuse: `yield m.lock()` (no star) says to write yield*", () => {
  const m = new CoMutex();
  const co = Coroutine.create(function* () {
    yield m.lock() as unknown as undefined;
  });
  const e = enterCatching(co);
  assertInstanceOf(e, TypeError);
  assert(e.message.includes("`yield* op()`, not `yield op()`"), e.message);
  assertEquals(m.locked, false);
});

Deno.test("coroutine misuse: `coroutineYield();` as a statement is caught at the next yield", () => {
  let after = false;
  const co = Coroutine.create(function* () {
    coroutineYield();
    after = true;
    yield;
  });
  assertMisuse(enterCatching(co), "coroutineYield()");
  assert(after, "the body ran on to its next yield");
});

Deno.test("coroutine misuse: a body that catches the error carries on correctly", () => {
  const m = new CoMutex();
  const q = new CoQueue();
  const log: string[] = [];
  const co = Coroutine.create(function* () {
    q.wait();
    try {
      yield* m.lock(); // the pending wait is reported here, before locking
    } catch (e) {
      log.push((e as Error).message.split(" ")[0]);
    }
    yield* m.lock();
    log.push("locked");
    yield* q.wait();
    m.unlock();
    log.push("done");
  });
  co.enter();
  assertEquals(log, ["queue.wait(lock)", "locked"]);
  assert(m.locked);
  q.next();
  assertEquals(log, ["queue.wait(lock)", "locked", "done"]);
  assert(co.done);
});

Deno.test("coroutine misuse: correct yield* use under contention raises nothing", () => {
  const m = new CoMutex();
  const rw = new CoRwlock();
  const log: string[] = [];
  const body = function* (name: string): CoroutineFn {
    yield* m.lock();
    yield* rw.rdlock();
    log.push(`${name} in`);
    yield* coroutineYield();
    yield* rw.unlock();
    m.unlock();
    log.push(`${name} out`);
  };
  const a = Coroutine.create(body, "a");
  const b = Coroutine.create(body, "b");
  a.enter();
  b.enter();
  a.enter();
  b.enter();
  assertEquals(log, ["a in", "a out", "b in", "b out"]);
  assert(a.done && b.done);
});

Deno.test("coroutine misuse: limits: outside a coroutine, and your own generators, are not tracked", () => {
  const m = new CoMutex();
  // Outside any coroutine: not tracked, and it poisons no later coroutine.
  m.lock();
  function* mine(): CoroutineFn {
    yield* m.lock();
  }
  const co = Coroutine.create(function* () {
    mine(); // its body never starts: nothing can notice (documented)
    yield* m.lock();
    m.unlock();
  });
  assertEquals(enterCatching(co), null);
  assert(co.done);
});

for (const fdmon of supportedFdMons()) {
  Deno.test(`coroutine misuse: a forgotten lock is reported at the next sleep, before it arms a timer [${fdmon}]`, () => {
    using ctx = AioContext.create({ fdmon });
    const m = new CoMutex();
    withCurrentAioContext(ctx, () => {
      const co = Coroutine.create(function* () {
        m.lock();
        yield* coSleepNs(QEMUClockType.REALTIME, 1_000_000);
      });
      assertMisuse(enterCatching(co), "mutex.lock()");
      assert(co.done);
    });
    // No timer or BH was left behind by the refused sleep.
    assertEquals(ctx.poll(false), false);
    assertEquals(ctx.info().bhs.length, 0);
    assertEquals(m.locked, false);
  });

  Deno.test(`coroutine misuse: a forgotten sleep is reported at the next yield [${fdmon}]`, () => {
    using ctx = AioContext.create({ fdmon });
    withCurrentAioContext(ctx, () => {
      const co = Coroutine.create(function* () {
        coSleepNs(QEMUClockType.REALTIME, 1_000_000);
        yield;
      });
      assertMisuse(enterCatching(co), "coSleepNs(clock, ns)");
    });
    assertEquals(ctx.poll(false), false);
  });
}

Deno.test("coroutine misuse: enterNext refuses a CoMutex, as a coroutine lock", () => {
  const q = new CoQueue();
  assertThrows(() => q.enterNext(new CoMutex()), TypeError, "plain lock");
});

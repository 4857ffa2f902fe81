// deno-lint-ignore-file require-yield -- a coroutine body need not yield, as in QEMU
// Our own coroutine tests: misuse errors, error propagation, lock ordering
// details, deep queue chaining, promise adapters, and the context-dependent
// helpers (aio_co_schedule, aio_co_wake, reschedule, sleep, AioWait).
import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertRejects,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { AioContext } from "../aio/aio_context.ts";
import {
  Coroutine,
  type CoroutineFn,
  coroutineYield,
  inCoroutine,
  qemuAioCoroutineEnter,
} from "../aio/coroutine.ts";
import {
  CoMutex,
  CoQueue,
  CoQueueWaitFlags,
  CoRwlock,
  type Lockable,
} from "../aio/coroutine_lock.ts";
import { aioCoEnter, aioCoRescheduleSelf, aioCoSchedule, aioCoWake } from "../aio/co_schedule.ts";
import { coSleep, coSleepNs, coSleepNsWakeable, CoSleepTicket } from "../aio/co_sleep.ts";
import { aioWaitBhOneshot, aioWaitKick, aioWaitWhile } from "../aio/aio_wait.ts";
import { coAwait, coroutineToPromise } from "../aio/co_promise.ts";
import { getCurrentAioContext, withCurrentAioContext } from "../aio/current.ts";
import { getMainAioContext, setMainAioContext } from "../aio/_main_context.ts";
import {
  clockAdvanceVirtualNs,
  clockEnable,
  clockGetNs,
  clockSetVirtualNs,
  QEMUClockType,
} from "../aio/timer.ts";
import { assertNoFdLeak } from "./_fd_leak.ts";
import { withContext } from "./_harness.ts";

// ---------------------------------------------------------------------------
// Context-free
// ---------------------------------------------------------------------------

Deno.test("coroutineYield() outside a coroutine throws", () => {
  assertThrows(() => coroutineYield().next(), Error, "Co-routine is yielding to no one");
  assertFalse(inCoroutine());
});

Deno.test("lock functions that must block refuse to outside a coroutine", () => {
  const m = new CoMutex();
  let holder: Coroutine | null = null;
  const a = Coroutine.create(function* () {
    yield* m.lock();
    holder = Coroutine.self();
    yield;
    m.unlock();
  });
  a.enter();
  assertStrictEquals(holder, a);
  // Contended lock outside a coroutine: nobody to yield to, state untouched.
  assertThrows(() => m.lock().next(), Error, "Co-routine is yielding to no one");
  a.enter();
  assertFalse(m.locked);
});

Deno.test("entering a running coroutine throws and leaves it running", () => {
  let msg = "";
  let after = false;
  const co = Coroutine.create(function* () {
    try {
      Coroutine.self().enter();
    } catch (e) {
      msg = (e as Error).message;
    }
    assert(Coroutine.self().entered);
    yield;
    after = true;
  });
  co.enter();
  assertEquals(msg, "Co-routine re-entered recursively");
  co.enter();
  assert(after);
  assert(co.done);
});

Deno.test("a child cannot enter the parent that entered it", () => {
  let msg = "";
  const parent: Coroutine = Coroutine.create(function* () {
    Coroutine.create(function* () {
      try {
        parent.enter();
      } catch (e) {
        msg = (e as Error).message;
      }
    }).enter();
  });
  parent.enter();
  assertEquals(msg, "Co-routine re-entered recursively");
  assert(parent.done);
});

Deno.test("entering a terminated coroutine throws BadResource", () => {
  const co = Coroutine.create(function* () {});
  co.enter();
  assertThrows(() => co.enter(), Deno.errors.BadResource, "Co-routine has terminated");
});

Deno.test("the leader pseudo-coroutine cannot be entered", () => {
  const leader = Coroutine.self();
  assertFalse(leader.entered);
  assertThrows(() => leader.enter(), TypeError, "leader");
  assertStrictEquals(Coroutine.self(), leader);
});

Deno.test("create() rejects a non-function; a non-generator entry fails at enter", () => {
  assertThrows(() => Coroutine.create(42 as never), TypeError, "generator function");
  const co = Coroutine.create((() => 1) as never);
  assertThrows(() => co.enter(), TypeError, "generator function");
  assert(co.done);
  const asyncGen = Coroutine.create((async function* () {}) as never);
  assertThrows(() => asyncGen.enter(), TypeError, "generator function");
  assert(asyncGen.done);
});

Deno.test("yielding a value throws a TypeError into the body", () => {
  let caught: unknown = null;
  const m = new CoMutex();
  const co = Coroutine.create(function* () {
    try {
      // The classic slip: yield instead of yield*.
      yield m.lock() as unknown as void;
    } catch (e) {
      caught = e;
    }
    yield;
  });
  co.enter();
  assertInstanceOf(caught, TypeError);
  assertFalse(co.done);
  co.enter();
  assert(co.done);
});

Deno.test("a throwing body: error reaches the enterer, coroutine ends, links cleared", () => {
  const co = Coroutine.create(function* () {
    yield;
    throw new RangeError("boom");
  });
  co.enter();
  assertThrows(() => co.enter(), RangeError, "boom");
  assert(co.done);
  assertFalse(co.entered);
  assertFalse(inCoroutine());
  assertStrictEquals(Coroutine.self().entered, false);
});

Deno.test("a throwing body: wake-ups it queued still run before the error propagates", () => {
  const log: string[] = [];
  const b = Coroutine.create(function* () {
    log.push("b");
  });
  const a = Coroutine.create(function* () {
    aioCoEnter(null, b);
    log.push("a");
    throw new Error("a failed");
  });
  assertThrows(() => a.enter(), Error, "a failed");
  assertEquals(log, ["a", "b"]);
  assert(b.done);
});

Deno.test("a throwing child reaches the parent's enter() call", () => {
  let caught = "";
  const parent = Coroutine.create(function* () {
    try {
      Coroutine.create(function* () {
        throw new Error("child failed");
      }).enter();
    } catch (e) {
      caught = (e as Error).message;
    }
  });
  parent.enter();
  assertEquals(caught, "child failed");
  assert(parent.done);
});

Deno.test("two failures in one enter loop become an AggregateError", () => {
  const b = Coroutine.create(function* () {
    throw new Error("b");
  });
  const a = Coroutine.create(function* () {
    aioCoEnter(null, b);
    throw new Error("a");
  });
  const e = assertThrows(() => a.enter(), AggregateError);
  assertEquals((e as AggregateError).errors.map((x: Error) => x.message), ["a", "b"]);
});

Deno.test("termination with locks held is reported", () => {
  const m = new CoMutex();
  const co = Coroutine.create(function* () {
    yield* m.lock();
  });
  assertThrows(() => co.enter(), Error, "Co-routine terminated with 1 lock held");
  assert(co.done);

  const rw = new CoRwlock();
  const m2 = new CoMutex();
  const co2 = Coroutine.create(function* () {
    yield* m2.lock();
    yield* rw.rdlock();
    throw new TypeError("inner");
  });
  const e = assertThrows(() => co2.enter(), Error, "Co-routine threw with 2 locks held");
  assertInstanceOf(e.cause, TypeError);
});

Deno.test("try/finally releases a lock when the body throws", () => {
  const m = new CoMutex();
  const co = Coroutine.create(function* () {
    yield* m.lock();
    try {
      throw new Error("oops");
    } finally {
      m.unlock();
    }
  });
  assertThrows(() => co.enter(), Error, "oops");
  assertFalse(m.locked);
});

Deno.test("enterIfInactive() enters only a coroutine that is not entered", () => {
  let n = 0;
  const co = Coroutine.create(function* () {
    n++;
    Coroutine.self().enterIfInactive();
    yield;
    n++;
  });
  co.enterIfInactive();
  assertEquals(n, 1);
  co.enterIfInactive();
  assertEquals(n, 2);
});

Deno.test("wake-up queues run depth-first after the waker yields", () => {
  const log: string[] = [];
  const d = Coroutine.create(function* () {
    log.push("d");
  });
  const b = Coroutine.create(function* () {
    aioCoEnter(null, d);
    log.push("b");
  });
  const c = Coroutine.create(function* () {
    log.push("c");
  });
  const a = Coroutine.create(function* () {
    aioCoEnter(null, b);
    aioCoEnter(null, c);
    log.push("a yields");
    yield;
    log.push("a again");
  });
  a.enter();
  // b's own wake-up (d) runs before the older pending entry c.
  assertEquals(log, ["a yields", "b", "d", "c"]);
  a.enter();
  assertEquals(log.at(-1), "a again");
});

Deno.test("aioCoEnter() of the running coroutine itself throws", () => {
  let msg = "";
  Coroutine.create(function* () {
    try {
      aioCoEnter(null, Coroutine.self());
    } catch (e) {
      msg = (e as Error).message;
    }
  }).enter();
  assertEquals(msg, "A coroutine cannot wake itself");
});

Deno.test("queue chaining: 25000-deep ping-pong without a context, no stack growth", () => {
  assertStrictEquals(getCurrentAioContext(), null);
  const max = 25000;
  interface Chain {
    i: number;
    other: Coroutine | null;
  }
  function* chain(d: Chain): CoroutineFn {
    for (d.i = 0; d.i < max; d.i++) {
      aioCoEnter(null, d.other!);
      yield;
    }
  }
  const da: Chain = { i: 0, other: null };
  const db: Chain = { i: 0, other: null };
  const coA = Coroutine.create(chain, da);
  const coB = Coroutine.create(chain, db);
  da.other = coB;
  db.other = coA;
  coA.enter();
  assertEquals(da.i, max);
  assertEquals(db.i, max - 1);
  assert(coA.done);
  coB.enter();
  assertEquals(db.i, max);
  assert(coB.done);
});

Deno.test("sleeping coroutine is marked scheduled; entering it throws", () => {
  const w = new CoSleepTicket();
  const co = Coroutine.create(function* () {
    yield* coSleep(w);
  });
  co.enter();
  assertEquals(co.scheduled, "qemu_co_sleep_ns");
  assert(w.sleeping);
  assertThrows(
    () => co.enter(),
    Error,
    "Co-routine was already scheduled in 'qemu_co_sleep_ns'",
  );
  assertFalse(co.done);
  w.wake();
  assert(co.done);
  assertEquals(co.scheduled, null);
  w.wake(); // no-op
});

Deno.test("a sleep ticket holds one sleeper at a time", () => {
  const w = new CoSleepTicket();
  let msg = "";
  const a = Coroutine.create(function* () {
    yield* coSleep(w);
  });
  a.enter();
  Coroutine.create(function* () {
    try {
      yield* coSleep(w);
    } catch (e) {
      msg = (e as Error).message;
    }
  }).enter();
  assertEquals(msg, "CoSleepTicket already has a sleeper");
  w.wake();
  assert(a.done);
});

Deno.test("CoMutex: unlock by a non-holder throws and changes nothing", () => {
  const m = new CoMutex();
  const a = Coroutine.create(function* () {
    yield* m.lock();
    yield;
    m.unlock();
  });
  let msg = "";
  const b = Coroutine.create(function* () {
    try {
      m.unlock();
    } catch (e) {
      msg = (e as Error).message;
    }
  });
  a.enter();
  b.enter();
  assertEquals(msg, "CoMutex unlocked by a coroutine that does not hold it");
  assert(m.locked);
  assertThrows(() => m.unlock(), Error, "does not hold it");
  assertEquals(a.locksHeld, 1);
  a.enter();
  assertFalse(m.locked);
  assertEquals(a.locksHeld, 0);
});

Deno.test("CoMutex: waiters are served FIFO; assertLocked", () => {
  const m = new CoMutex();
  const order: string[] = [];
  const body = function* (name: string): CoroutineFn {
    yield* m.lock();
    m.assertLocked();
    order.push(name);
    yield;
    m.unlock();
  };
  const cos = ["a", "b", "c", "d"].map((n) => Coroutine.create(body, n));
  for (const co of cos) co.enter();
  assertEquals(order, ["a"]);
  for (let i = 0; i < cos.length; i++) cos[i].enter();
  assertEquals(order, ["a", "b", "c", "d"]);
  assert(cos.every((co) => co.done));
  assertFalse(m.locked);
  assertThrows(() => m.assertLocked(), Error, "not held");
});

Deno.test("CoMutex: locking twice from one coroutine throws", () => {
  const m = new CoMutex();
  let msg = "";
  Coroutine.create(function* () {
    yield* m.lock();
    try {
      yield* m.lock();
    } catch (e) {
      msg = (e as Error).message;
    }
    m.unlock();
  }).enter();
  assertEquals(msg, "CoMutex locked twice by the same coroutine");
  assertFalse(m.locked);
});

Deno.test("CoQueue: WAIT_FRONT inserts at the head; next() wakes after the waker yields", () => {
  const q = new CoQueue();
  const order: string[] = [];
  const waiter = (name: string, flags: number) =>
    Coroutine.create(function* () {
      yield* q.waitFlags(null, flags);
      order.push(name);
    });
  waiter("t1", CoQueueWaitFlags.NONE).enter();
  waiter("t2", CoQueueWaitFlags.NONE).enter();
  waiter("f1", CoQueueWaitFlags.WAIT_FRONT).enter();
  waiter("f2", CoQueueWaitFlags.WAIT_FRONT).enter();
  assertFalse(q.empty);
  const waker = Coroutine.create(function* () {
    assert(q.next());
    order.push("waker");
    q.restartAll();
    order.push("waker done");
  });
  waker.enter();
  assertEquals(order, ["waker", "waker done", "f2", "f1", "t1", "t2"]);
  assert(q.empty);
  assertFalse(q.next());
});

Deno.test("CoQueue: wait(lock) drops and retakes a CoMutex", () => {
  const m = new CoMutex();
  const q = new CoQueue();
  let ready = false;
  let sawLocked = false;
  const consumer = Coroutine.create(function* () {
    yield* m.lock();
    while (!ready) yield* q.wait(m);
    sawLocked = m.locked;
    m.assertLocked();
    m.unlock();
  });
  consumer.enter();
  assertFalse(m.locked);
  const producer = Coroutine.create(function* () {
    yield* m.lock();
    ready = true;
    q.next();
    yield; // consumer wakes, then queues on the mutex
    m.unlock();
  });
  producer.enter();
  assertFalse(consumer.done);
  producer.enter();
  assert(consumer.done);
  assert(sawLocked);
  assertFalse(m.locked);
});

Deno.test("CoQueue: enterNext() releases a plain lock around the wake-up", () => {
  const q = new CoQueue();
  let held = true;
  const events: string[] = [];
  const lock: Lockable = {
    lock() {
      held = true;
      events.push("lock");
    },
    unlock() {
      held = false;
      events.push("unlock");
    },
  };
  Coroutine.create(function* () {
    yield* q.wait();
    events.push(`woken, held=${held}`);
  }).enter();
  assert(q.enterNext(lock));
  assertEquals(events, ["unlock", "woken, held=false", "lock"]);
  assert(held);
  assertFalse(q.enterNext(lock));
  assertThrows(() => q.enterAll(new CoMutex()), TypeError, "plain lock");
});

Deno.test("CoRwlock: a reader does not overtake a queued writer", () => {
  const rw = new CoRwlock();
  const order: string[] = [];
  const r1 = Coroutine.create(function* () {
    yield* rw.rdlock();
    order.push("r1");
    yield;
    yield* rw.unlock();
  });
  const w = Coroutine.create(function* () {
    yield* rw.wrlock();
    order.push("w");
    yield;
    yield* rw.unlock();
  });
  const r2 = Coroutine.create(function* () {
    yield* rw.rdlock();
    order.push("r2");
    yield* rw.unlock();
  });
  r1.enter();
  w.enter();
  r2.enter(); // readers hold the lock, but a writer waits: r2 queues
  assertEquals(order, ["r1"]);
  assertEquals(rw.owners, 1);
  r1.enter(); // r1 unlocks: the writer gets it, r2 still waits
  assertEquals(order, ["r1", "w"]);
  assertEquals(rw.owners, -1);
  w.enter();
  assertEquals(order, ["r1", "w", "r2"]);
  assertEquals(rw.owners, 0);
  assert([r1, w, r2].every((co) => co.done && co.locksHeld === 0));
});

Deno.test("CoRwlock: queued readers wake in a chain", () => {
  const rw = new CoRwlock();
  const order: string[] = [];
  const w = Coroutine.create(function* () {
    yield* rw.wrlock();
    yield;
    yield* rw.unlock();
  });
  const reader = (name: string) =>
    Coroutine.create(function* () {
      yield* rw.rdlock();
      order.push(name);
      yield;
      yield* rw.unlock();
    });
  const rs = [reader("a"), reader("b"), reader("c")];
  w.enter();
  for (const r of rs) r.enter();
  w.enter();
  assertEquals(order, ["a", "b", "c"]);
  assertEquals(rw.owners, 3);
  for (const r of rs) r.enter();
  assertEquals(rw.owners, 0);
});

Deno.test("CoRwlock: misuse throws", () => {
  const rw = new CoRwlock();
  const errors: string[] = [];
  Coroutine.create(function* () {
    for (const op of [() => rw.unlock(), () => rw.downgrade(), () => rw.upgrade()]) {
      try {
        yield* op();
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
  }).enter();
  assertEquals(errors, [
    "CoRwlock unlocked while not held",
    "CoRwlock downgraded while not write-locked",
    "CoRwlock upgraded while not read-locked",
  ]);
});

Deno.test("promise adapters: termination promise resolves and rejects", async () => {
  const ok = Coroutine.create(function* () {
    yield;
  });
  const p = coroutineToPromise(ok);
  ok.enter();
  ok.enter();
  await p;
  await ok.promise; // also after the fact

  const bad = Coroutine.create(function* () {
    throw new Error("bad");
  });
  const pb = bad.promise;
  assertThrows(() => bad.enter(), Error, "bad");
  await assertRejects(() => pb, Error, "bad");
  await assertRejects(() => bad.promise, Error, "bad");
});

Deno.test("promise adapters: coAwait without a context resumes from the callback", async () => {
  const log: string[] = [];
  const co = Coroutine.create(function* () {
    log.push("start");
    const v = yield* coAwait(Promise.resolve(7));
    log.push(`got ${v}`);
    const plain = yield* coAwait(8);
    log.push(`got ${plain}`);
    try {
      yield* coAwait(Promise.reject(new Error("no")));
    } catch (e) {
      log.push(`caught ${(e as Error).message}`);
    }
  });
  co.enter();
  assertEquals(log, ["start"]);
  assertFalse(co.done);
  await co.promise;
  assertEquals(log, ["start", "got 7", "got 8", "caught no"]);
  assertThrows(() => coAwait(1).next(), Error, "must be called from a coroutine");
});

// ---------------------------------------------------------------------------
// With AioContexts
// ---------------------------------------------------------------------------

Deno.test("aioCoSchedule: FIFO order, not synchronous, one progress", async () => {
  await withContext((ctx) => {
    const order: number[] = [];
    const cos = [1, 2, 3, 4].map((i) =>
      Coroutine.create(function* () {
        order.push(i);
        assertStrictEquals(getCurrentAioContext(), ctx);
      })
    );
    for (const co of cos) aioCoSchedule(ctx, co);
    assertEquals(order, []);
    assert(cos.every((co) => co.scheduled === "aio_co_schedule"));
    assert(ctx.poll(true));
    assertEquals(order, [1, 2, 3, 4]);
    assert(cos.every((co) => co.scheduled === null && co.done && co.ctx === ctx));
    assertFalse(ctx.poll(false));
  });
});

Deno.test("aioCoSchedule: double schedule throws; enter of a scheduled coroutine throws", async () => {
  await withContext((ctx) => {
    let n = 0;
    const co = Coroutine.create(function* () {
      n++;
    });
    aioCoSchedule(ctx, co);
    assertThrows(
      () => aioCoSchedule(ctx, co),
      Error,
      "Co-routine was already scheduled in 'aio_co_schedule'",
    );
    assertThrows(() => co.enter(), Error, "already scheduled in 'aio_co_schedule'");
    assert(ctx.poll(true));
    assertEquals(n, 1);
    assertFalse(ctx.poll(false));
  });
});

Deno.test("aioCoSchedule: a throwing coroutine leaves the rest scheduled for the next poll", async () => {
  await withContext((ctx) => {
    const order: string[] = [];
    aioCoSchedule(
      ctx,
      Coroutine.create(function* () {
        order.push("a");
      }),
    );
    aioCoSchedule(
      ctx,
      Coroutine.create(function* () {
        throw new Error("b");
      }),
    );
    const c = Coroutine.create(function* () {
      order.push("c");
    });
    aioCoSchedule(ctx, c);
    assertThrows(() => ctx.poll(true), Error, "b");
    assertEquals(order, ["a"]);
    assertEquals(c.scheduled, "aio_co_schedule");
    assert(ctx.poll(true));
    assertEquals(order, ["a", "c"]);
    assertFalse(ctx.poll(false));
  });
});

Deno.test("aioCoSchedule: destroying a context with a scheduled coroutine is reported", async () => {
  await assertNoFdLeak(() => {
    const ctx = AioContext.create();
    aioCoSchedule(ctx, Coroutine.create(function* () {}));
    assertThrows(() => ctx.destroy(), Error, "1 coroutine(s) still scheduled");
    assert(ctx.destroyed);
    assertThrows(
      () => aioCoSchedule(ctx, Coroutine.create(function* () {})),
      Deno.errors.BadResource,
    );
  });
});

Deno.test("aioCoWake: a coroutine of another context is scheduled there", async () => {
  await assertNoFdLeak(() => {
    using a = AioContext.create({ name: "a" });
    using b = AioContext.create({ name: "b" });
    const seen: (string | undefined)[] = [];
    const co = Coroutine.create(function* () {
      seen.push(getCurrentAioContext()?.name);
      yield;
      seen.push(getCurrentAioContext()?.name);
    });
    withCurrentAioContext(b, () => co.enter());
    assertStrictEquals(co.ctx, b);
    // Woken from context a: b is not current, so it is scheduled in b.
    withCurrentAioContext(a, () => aioCoWake(co));
    assertEquals(co.scheduled, "aio_co_schedule");
    assertFalse(withCurrentAioContext(a, () => a.poll(false)));
    assertEquals(seen, ["b"]);
    assert(b.poll(true));
    assertEquals(seen, ["b", "b"]);
    assert(co.done);
  });
});

Deno.test("aioCoEnter: same context outside a coroutine enters at once", async () => {
  await withContext((ctx) => {
    let ran = false;
    withCurrentAioContext(ctx, () =>
      aioCoEnter(
        ctx,
        Coroutine.create(function* () {
          ran = true;
        }),
      ));
    assert(ran);
    assertFalse(ctx.poll(false));
  });
});

Deno.test("CoMutex: a waiter of another context is scheduled in its own context", async () => {
  await assertNoFdLeak(() => {
    using a = AioContext.create();
    using b = AioContext.create();
    const m = new CoMutex();
    const log: string[] = [];
    const holder = Coroutine.create(function* () {
      yield* m.lock();
      yield;
      m.unlock();
      log.push("holder out");
    });
    const waiter = Coroutine.create(function* () {
      yield* m.lock();
      log.push("waiter in");
      m.unlock();
    });
    withCurrentAioContext(a, () => holder.enter());
    assertStrictEquals(m.ctx, a);
    withCurrentAioContext(b, () => waiter.enter());
    withCurrentAioContext(a, () => holder.enter());
    assertEquals(log, ["holder out"]);
    assertEquals(waiter.scheduled, "aio_co_schedule");
    assertStrictEquals(m.ctx, b);
    assert(b.poll(true));
    assertEquals(log, ["holder out", "waiter in"]);
    assertFalse(m.locked);
  });
});

Deno.test("aioCoRescheduleSelf: moves through a BH in the old context", async () => {
  await assertNoFdLeak(() => {
    using a = AioContext.create({ name: "a" });
    using b = AioContext.create({ name: "b" });
    const seen: (string | undefined)[] = [];
    const co = Coroutine.create(function* () {
      seen.push(getCurrentAioContext()?.name);
      yield* aioCoRescheduleSelf(b);
      seen.push(getCurrentAioContext()?.name);
      yield* aioCoRescheduleSelf(b); // already there: no-op
      seen.push("still b");
    });
    withCurrentAioContext(a, () => co.enter());
    assertEquals(seen, ["a"]);
    assertEquals(co.scheduled, null); // not yet: the BH in a does it
    assertFalse(b.poll(false));
    assert(withCurrentAioContext(a, () => a.poll(true)));
    assertEquals(co.scheduled, "aio_co_schedule");
    assertEquals(seen, ["a"]);
    assert(b.poll(true));
    assertEquals(seen, ["a", "b", "still b"]);
    assertStrictEquals(co.ctx, b);
    assert(co.done);
    assertThrows(() => aioCoRescheduleSelf(a).next(), Error, "from a coroutine");
  });
});

Deno.test("coSleepNs on the VIRTUAL clock wakes only when virtual time passes", async () => {
  await withContext((ctx) => {
    clockSetVirtualNs(0);
    clockEnable(QEMUClockType.VIRTUAL, true);
    try {
      const co = Coroutine.create(function* () {
        yield* coSleepNs(QEMUClockType.VIRTUAL, 1_000_000);
      });
      withCurrentAioContext(ctx, () => {
        co.enter();
        assertEquals(co.scheduled, "qemu_co_sleep_ns");
        assertFalse(ctx.poll(false));
        clockAdvanceVirtualNs(999_999);
        assertFalse(ctx.poll(false));
        assertFalse(co.done);
        clockAdvanceVirtualNs(1);
        assert(ctx.poll(false));
        assert(co.done);
        assertEquals(clockGetNs(QEMUClockType.VIRTUAL), 1_000_000);
        assertFalse(ctx.poll(false));
      });
    } finally {
      clockEnable(QEMUClockType.VIRTUAL, false);
      clockSetVirtualNs(0);
    }
  });
});

Deno.test("coSleepNsWakeable: woken early, the timer is gone", async () => {
  await withContext((ctx) => {
    const w = new CoSleepTicket();
    const co = Coroutine.create(function* () {
      yield* coSleepNsWakeable(w, QEMUClockType.REALTIME, 3_600_000_000_000);
    });
    withCurrentAioContext(ctx, () => {
      co.enter();
      assert(w.sleeping);
      w.wake();
      assert(co.done);
      assertFalse(ctx.poll(false));
      assertEquals(ctx.info().bhs.length, 0);
    });
  });
});

Deno.test("coSleepNs: realtime sleep never wakes early", async () => {
  await withContext((ctx) => {
    const ns = 2_000_000;
    let t0 = 0, t1 = 0;
    const co = Coroutine.create(function* () {
      t0 = clockGetNs(QEMUClockType.REALTIME);
      yield* coSleepNs(QEMUClockType.REALTIME, ns);
      t1 = clockGetNs(QEMUClockType.REALTIME);
    });
    withCurrentAioContext(ctx, () => {
      co.enter();
      while (!co.done) ctx.poll(true);
    });
    assert(t1 - t0 >= ns, `woke after ${t1 - t0} ns`);
  });
});

Deno.test("coSleepNs: needs a current context and an integer time", () => {
  const errors: string[] = [];
  withCurrentAioContext(null, () => {
    Coroutine.create(function* () {
      for (const ns of [1, 1.5]) {
        try {
          yield* coSleepNs(QEMUClockType.REALTIME, ns);
        } catch (e) {
          errors.push((e as Error).constructor.name);
        }
      }
    }).enter();
  });
  assertEquals(errors, ["Error", "RangeError"]);
});

Deno.test("aioWaitWhile: polls the current context until the condition clears", async () => {
  await withContext((ctx) => {
    let n = 0;
    const bh = ctx.bhNew(() => {
      if (++n < 3) bh.schedule();
    });
    bh.schedule();
    withCurrentAioContext(ctx, () => {
      assert(aioWaitWhile(ctx, () => n < 3));
      assertFalse(aioWaitWhile(ctx, () => n < 3));
    });
    assertEquals(n, 3);
    bh.delete();
  });
});

Deno.test("aioWaitWhile: a foreign context waits on the main one; aioWaitKick wakes it", async () => {
  await assertNoFdLeak(() => {
    using main = AioContext.create({ name: "main" });
    using other = AioContext.create({ name: "other" });
    const saved = getMainAioContext();
    setMainAioContext(main);
    try {
      let cond = true;
      // A coroutine on main flips the condition, then kicks.
      const co = Coroutine.create(function* () {
        cond = false;
        aioWaitKick();
      });
      aioCoSchedule(main, co);
      assert(aioWaitWhile(other, () => cond));
      assert(co.done);
      // The kick made during the wait left its empty BH on main, as in QEMU.
      assert(main.poll(false));
      // Nobody waits now: a kick schedules nothing.
      aioWaitKick();
      assertFalse(main.poll(false));
      // Off the main thread it refuses.
      assertThrows(
        () => withCurrentAioContext(other, () => aioWaitWhile(null, () => false)),
        Error,
        "main context's thread",
      );
      // Never inside a coroutine.
      let msg = "";
      Coroutine.create(function* () {
        try {
          aioWaitWhile(main, () => false);
        } catch (e) {
          msg = (e as Error).message;
        }
      }).enter();
      assertEquals(msg, "aioWaitWhile() must not be called from a coroutine");
    } finally {
      setMainAioContext(saved);
    }
  });
});

Deno.test("aioWaitBhOneshot: runs the callback in the context and waits for it", async () => {
  await assertNoFdLeak(() => {
    using main = AioContext.create({ name: "main" });
    using other = AioContext.create({ name: "other" });
    const saved = getMainAioContext();
    setMainAioContext(main);
    try {
      const where: (string | undefined)[] = [];
      aioWaitBhOneshot(main, () => where.push(getCurrentAioContext()?.name));
      aioWaitBhOneshot(other, () => where.push(getCurrentAioContext()?.name));
      assertEquals(where, ["main", "other"]);
      assertThrows(
        () =>
          aioWaitBhOneshot(main, () => {
            throw new Error("cb");
          }),
        Error,
        "cb",
      );
      // Nothing left behind: no stray kick BH on either context.
      assertFalse(main.poll(false));
      assertFalse(other.poll(false));
      assertThrows(
        () => withCurrentAioContext(null, () => aioWaitBhOneshot(main, () => {})),
        Error,
        "main context's thread",
      );
    } finally {
      setMainAioContext(saved);
    }
  });
});

Deno.test("coAwait: resumed through a BH in the coroutine's context", async () => {
  await withContext(async (ctx) => {
    const { promise, resolve } = Promise.withResolvers<string>();
    let got = "";
    const co = Coroutine.create(function* () {
      got = yield* coAwait(promise);
      assertStrictEquals(getCurrentAioContext(), ctx);
    });
    withCurrentAioContext(ctx, () => co.enter());
    resolve("v");
    await promise;
    await Promise.resolve();
    assertEquals(co.scheduled, "aio_co_schedule");
    assertEquals(got, "");
    assert(ctx.poll(true));
    assertEquals(got, "v");
    assert(co.done);
  });
});

Deno.test("qemuAioCoroutineEnter records the context given", async () => {
  await withContext((ctx) => {
    let seen: AioContext | null = null;
    const co = Coroutine.create(function* () {
      yield;
      seen = Coroutine.self().ctx;
    });
    qemuAioCoroutineEnter(ctx, co);
    assertStrictEquals(co.ctx, ctx);
    qemuAioCoroutineEnter(null, co);
    assertStrictEquals(seen, null);
    assertThrows(() => qemuAioCoroutineEnter(ctx, {} as Coroutine), TypeError);
  });
});

Deno.test("AioContext.poll() refuses to run inside a coroutine", async () => {
  await withContext((ctx) => {
    let msg = "";
    Coroutine.create(function* () {
      try {
        ctx.poll(false);
      } catch (e) {
        msg = (e as Error).message;
      }
    }).enter();
    assert(msg.includes("coroutine"), msg);
  });
});

// deno-lint-ignore-file require-yield -- a coroutine body need not yield, as in QEMU
// Parity with QEMU tests/unit/test-coroutine.c: the 12 default cases, under
// QEMU's paths, in GLib's execution order (a suite's cases before its child
// suites; here that equals registration order). As in QEMU, no AioContext
// exists, so every wake-up resolves to "same context (null)".
import { assert, assertEquals, assertFalse, assertStrictEquals } from "@std/assert";
import { Coroutine, type CoroutineFn, inCoroutine } from "../../aio/coroutine.ts";
import {
  CoMutex,
  CoRwlock,
  type Lockable,
  lockableLock,
  lockableUnlock,
  makeLockable,
} from "../../aio/coroutine_lock.ts";
import { getCurrentAioContext } from "../../aio/current.ts";

// --- /basic -----------------------------------------------------------------

Deno.test("/basic/no-dangling-access", () => {
  // test-coroutine.c runs with no AioContext at all.
  assertStrictEquals(getCurrentAioContext(), null);
  const c2 = Coroutine.create(function* () {
    yield;
  });
  const c1 = Coroutine.create(function* (other: Coroutine) {
    other.enter();
  }, c2);
  c1.enter();
  assert(c1.done);
  assert(!c2.done);

  // Poison c1: every property, getter or method looked up on it now throws
  // (its prototype becomes a throwing Proxy). Coroutine state lives in
  // #private fields, so this catches any use through the object's API; the
  // stale back-link itself is c2's caller, which must be gone.
  const proto = Object.getPrototypeOf(c1);
  let touched = 0;
  Object.setPrototypeOf(
    c1,
    new Proxy(proto, {
      get() {
        touched++;
        throw new Error("c1 used after termination");
      },
    }),
  );
  try {
    assertFalse(c2.entered, "c2 keeps a caller link after c1 terminated");
    c2.enter();
    assert(c2.done);
    assertEquals(touched, 0);
  } finally {
    // Restore c1, as QEMU does for its pool.
    Object.setPrototypeOf(c1, proto);
  }
  assertFalse(c1.entered);
});

Deno.test("/basic/lifecycle", () => {
  let done = false;
  const setAndExit = function* (): CoroutineFn {
    done = true;
  };
  let co = Coroutine.create(setAndExit);
  co.enter();
  assert(done);

  done = false;
  co = Coroutine.create(setAndExit);
  co.enter();
  assert(done);
});

Deno.test("/basic/yield", () => {
  const state = { done: false };
  const co = Coroutine.create(function* (s: { done: boolean }) {
    for (let i = 0; i < 5; i++) yield;
    s.done = true;
  }, state);
  let i = -1;
  while (!state.done) {
    co.enter();
    i++;
  }
  assertEquals(i, 5);
});

Deno.test("/basic/nesting", () => {
  interface NestData {
    nEnter: number;
    nReturn: number;
    max: number;
  }
  function* nest(nd: NestData): CoroutineFn {
    nd.nEnter++;
    if (nd.nEnter < nd.max) Coroutine.create(nest, nd).enter();
    nd.nReturn++;
  }
  const nd: NestData = { nEnter: 0, nReturn: 0, max: 128 };
  Coroutine.create(nest, nd).enter();
  assertEquals(nd.nEnter, 128);
  assertEquals(nd.nReturn, 128);
});

Deno.test("/basic/self", () => {
  const holder: { co: Coroutine | null } = { co: null };
  let same = false;
  holder.co = Coroutine.create(function* (h: { co: Coroutine | null }) {
    same = Coroutine.self() === h.co;
  }, holder);
  holder.co.enter();
  assert(same);
});

Deno.test("/basic/entered", () => {
  const checks: boolean[] = [];
  function* step2(caller: Coroutine): CoroutineFn {
    checks.push(caller.entered, Coroutine.self().entered);
    yield;
    // Once more after being re-entered.
    checks.push(caller.entered, Coroutine.self().entered);
  }
  function* step1(): CoroutineFn {
    const self = Coroutine.self();
    checks.push(self.entered);
    const co = Coroutine.create(step2, self);
    checks.push(!co.entered);
    co.enter();
    checks.push(!co.entered);
    co.enter();
  }
  const co = Coroutine.create(step1);
  assertFalse(co.entered);
  co.enter();
  assertEquals(checks, [true, true, true, true, true, true, true]);
});

Deno.test("/basic/in_coroutine", () => {
  assertFalse(inCoroutine());
  let inside = false;
  Coroutine.create(function* () {
    inside = inCoroutine();
  }).enter();
  assert(inside);
});

Deno.test("/basic/order", () => {
  const records: [number, number][] = [];
  const inCo: boolean[] = [];
  const co = Coroutine.create(function* () {
    records.push([2, 1]);
    inCo.push(inCoroutine());
    yield;
    records.push([2, 2]);
    inCo.push(inCoroutine());
  });
  records.push([1, 1]);
  co.enter();
  records.push([1, 2]);
  assertFalse(inCoroutine());
  co.enter();
  records.push([1, 3]);
  assertFalse(inCoroutine());
  assertEquals(records, [[1, 1], [2, 1], [1, 2], [2, 2], [1, 3]]);
  assertEquals(inCo, [true, true]);
});

// --- /locking ----------------------------------------------------------------
// Shared between cases, as QEMU's statics.
let locked = false;
let doneCount = 0;

function* mutexFn(m: CoMutex): CoroutineFn {
  yield* m.lock();
  assertFalse(locked);
  locked = true;
  yield;
  locked = false;
  m.unlock();
  doneCount++;
}

function* lockableFn(x: Lockable): CoroutineFn {
  yield* lockableLock(x);
  assertFalse(locked);
  locked = true;
  yield;
  locked = false;
  lockableUnlock(x);
  doneCount++;
}

function doTestCoMutex<A>(entry: (a: A) => CoroutineFn, arg: A): void {
  const c1 = Coroutine.create(entry, arg);
  const c2 = Coroutine.create(entry, arg);
  doneCount = 0;
  c1.enter();
  assert(locked);
  c2.enter();
  // The unlock only queues c2; it runs by itself when c1 terminates.
  c1.enter();
  assertEquals(doneCount, 1);
  assert(locked);
  c2.enter();
  assertEquals(doneCount, 2);
  assertFalse(locked);
}

Deno.test("/locking/co-mutex", () => {
  const m = new CoMutex();
  doTestCoMutex(mutexFn, m);
  assertFalse(m.locked);
});

Deno.test("/locking/co-mutex/lockable", () => {
  const m = new CoMutex();
  doTestCoMutex(lockableFn, makeLockable(m)!);
  assertFalse(m.locked);
  const nullPointer: CoMutex | null = null;
  assertStrictEquals(makeLockable(nullPointer), null);
});

let rwlock = new CoRwlock();

Deno.test("/locking/co-rwlock/upgrade", () => {
  rwlock = new CoRwlock();
  const done = { c1: false, c2: false };
  const c1 = Coroutine.create(function* () {
    yield* rwlock.rdlock();
    yield;
    yield* rwlock.upgrade();
    yield* rwlock.unlock();
    done.c1 = true;
  });
  const c2 = Coroutine.create(function* () {
    yield* rwlock.wrlock();
    yield;
    yield* rwlock.unlock();
    done.c2 = true;
  });
  c1.enter();
  c2.enter();
  // c1 now gives up its read hold, queues as a writer and sleeps; c2 gets
  // the lock and yields inside its critical section.
  c1.enter();
  assertFalse(done.c1);
  c2.enter();
  assert(done.c1);
  assert(done.c2);
});

Deno.test("/locking/co-rwlock/downgrade", () => {
  rwlock = new CoRwlock();
  const done = { c1: false, c2: false, c3: false, c4: false };
  const c1 = Coroutine.create(function* () {
    yield* rwlock.rdlock();
    yield;
    yield* rwlock.unlock();
    yield;
    done.c1 = true;
  });
  const c2 = Coroutine.create(function* () {
    yield* rwlock.wrlock();
    yield* rwlock.downgrade();
    yield* rwlock.unlock();
    done.c2 = true;
  });
  const c3 = Coroutine.create(function* () {
    yield* rwlock.rdlock();
    yield* rwlock.unlock();
    done.c3 = true;
  });
  const c4 = Coroutine.create(function* () {
    yield* rwlock.wrlock();
    yield* rwlock.unlock();
    done.c4 = true;
  });
  c1.enter();
  c2.enter();
  c3.enter();
  c4.enter();
  c1.enter();
  assert(done.c2);
  assert(done.c3);
  assert(done.c4);
  c1.enter();
  assert(done.c1);
});

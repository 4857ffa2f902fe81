// deno-lint-ignore-file require-yield -- a coroutine body need not yield, as in QEMU
// Parity with the two coroutine cases of QEMU tests/unit/test-aio.c
// (parity §1.1 rows 13-14). They belong in test_aio_test.ts; they live here
// until that file takes them. As in test-aio.c, the context is the main
// AioContext, current on this (main) thread.
import { assert, assertEquals, assertFalse, assertStrictEquals } from "@std/assert";
import { AioContext } from "../aio/async.ts";
import { Coroutine, type CoroutineFn } from "../aio/coroutine.ts";
import { aioCoEnter } from "../aio/co_schedule.ts";
import {
  getCurrentAioContext,
  getMainAioContext,
  setMainAioContext,
  withCurrentAioContext,
} from "../aio/current.ts";
import { assertNoFdLeak } from "./_fd_leak.ts";

/** Runs fn with a fresh main context installed, drained first as test-aio's main() does. */
async function withMainContext(fn: (ctx: AioContext) => void): Promise<void> {
  await assertNoFdLeak(() => {
    const saved = getMainAioContext();
    using ctx = AioContext.create({ name: "main" });
    setMainAioContext(ctx);
    try {
      while (ctx.poll(false)) { /* drain */ }
      assertStrictEquals(getCurrentAioContext(), ctx);
      fn(ctx);
    } finally {
      setMainAioContext(saved);
    }
  });
}

interface ChainData {
  other: Coroutine | null;
  i: number;
  max: number;
}

Deno.test("/aio/coroutine/queue-chaining", async () => {
  await withMainContext((ctx) => {
    function* chain(data: ChainData): CoroutineFn {
      for (data.i = 0; data.i < data.max; data.i++) {
        // Queue the other coroutine, then give control to it.
        aioCoEnter(ctx, data.other!);
        yield;
      }
    }
    const dataA: ChainData = { other: null, i: 0, max: 25000 };
    const dataB: ChainData = { other: null, i: 0, max: 25000 };
    dataB.other = Coroutine.create(chain, dataA);
    dataA.other = Coroutine.create(chain, dataB);

    dataB.other.enter();
    assertEquals(dataA.i, dataA.max);
    assertEquals(dataB.i, dataB.max - 1);

    // Let the second coroutine terminate.
    dataA.other.enter();
    assertEquals(dataB.i, dataB.max);
  });
});

Deno.test("/aio/coroutine/worker-thread-co-enter", async () => {
  await withMainContext((ctx) => {
    let ranIn: AioContext | null | undefined = undefined;
    const co = Coroutine.create(function* () {
      // QEMU asserts the coroutine runs on the main thread.
      ranIn = getCurrentAioContext();
    });
    // The worker thread: no current context and no big lock, so aio_co_enter
    // must schedule the coroutine rather than enter it.
    withCurrentAioContext(null, () => {
      assertStrictEquals(getCurrentAioContext(), null);
      aioCoEnter(getMainAioContext()!, co);
    });
    assertStrictEquals(ranIn, undefined);
    assertEquals(co.scheduled, "aio_co_schedule");

    assert(ctx.poll(true));
    assertStrictEquals(ranIn, ctx);
    assert(co.done);
    assertFalse(ctx.poll(false));
  });
});

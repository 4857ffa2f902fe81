// timer_mod / timer_del of a context's timer from another thread (a real
// Worker), through a RemoteTimer (shareTimer): the request is applied at the
// home's next poll, before that poll's timers run, and a blocked home wakes.
import { assert, assertEquals, assertFalse, assertThrows } from "@std/assert";
import { AioContext } from "../aio/aio_context.ts";
import { RemoteAioContext, type RemoteTimer } from "../aio/handle.ts";
import { shareTimer } from "../aio/remote_timer.ts";
import {
  clockEnable,
  clockGetNs,
  clockSetVirtualNs,
  QEMUClockType,
  SCALE_US,
} from "../aio/timer.ts";
import { openFdCount, supportedFdMons } from "./_fd_leak.ts";

const WORKER = new URL("./testdata/remote_timer_worker.ts", import.meta.url);

type Op = ["mod", number] | ["modNs", number] | ["del"];

/** The requesting Worker; `send` resolves with its per-request results. */
class Requester {
  #w: Worker = new Worker(WORKER, { type: "module" });

  send(timer: RemoteTimer, ops: Op[], delayMs = 0): Promise<string[]> {
    const { promise, resolve, reject } = Promise.withResolvers<string[]>();
    const dog = setTimeout(() => reject(new Error("watchdog: the Worker never answered")), 60_000);
    this.#w.onmessage = (e: MessageEvent<string[]>) => {
      clearTimeout(dog);
      resolve(e.data);
    };
    this.#w.postMessage({ timer, ops, delayMs });
    return promise;
  }

  [Symbol.dispose](): void {
    this.#w.terminate();
  }
}

for (const fdmon of supportedFdMons()) {
  Deno.test(`remote timer: a Worker arms, re-arms and disarms a timer of this context [${fdmon}]`, async () => {
    using w = new Requester();
    await w.send({ request: new SharedArrayBuffer(8) } as RemoteTimer, []);
    const fds = openFdCount();
    try {
      using ctx = AioContext.create({ fdmon });
      clockSetVirtualNs(0);
      clockEnable(QEMUClockType.VIRTUAL, true);
      let fired = 0;
      const t = ctx.timerNew(QEMUClockType.VIRTUAL, SCALE_US, () => fired++, { name: "vt" });
      const ref = shareTimer(ctx, t);
      assertEquals(shareTimer(ctx, t), ref, "one reference per timer");
      // Armed in the future: applied by the next poll, not fired.
      assertEquals(await w.send(ref, [["mod", 5]]), ["ok"]);
      assert(ctx.poll(false), "the request's BH ran");
      assert(t.pending);
      assertEquals(t.expireTimeNs, 5_000);
      assertEquals(fired, 0);
      clockSetVirtualNs(5_000);
      assert(ctx.poll(false));
      assertEquals(fired, 1);
      // Already due: fires in the poll that applies it.
      assertEquals(await w.send(ref, [["modNs", 1_000]]), ["ok"]);
      assert(ctx.poll(false));
      assertEquals(fired, 2);
      assertFalse(t.pending);
      // Several requests before the home looks: the last one wins.
      assertEquals(await w.send(ref, [["modNs", 9_000], ["modNs", 7_000], ["del"]]), [
        "ok",
        "ok",
        "ok",
      ]);
      t.modNs(8_000);
      ctx.poll(false);
      assertFalse(t.pending, "the remote del came last");
      assertEquals(await w.send(ref, [["modNs", 9_000], ["del"], ["modNs", 6_000]]), [
        "ok",
        "ok",
        "ok",
      ]);
      ctx.poll(false);
      assertEquals(t.expireTimeNs, 6_000);
      // Bad input: a typed error in the Worker, nothing applied.
      const bad = await w.send(ref, [["modNs", 1.5], ["mod", 2 ** 60]]);
      assert(bad[0].startsWith("RangeError: Timer 'vt'"), bad[0]);
      assert(bad[1].startsWith("RangeError: Timer 'vt'"), bad[1]);
      assertFalse(ctx.poll(false));
      assertEquals(t.expireTimeNs, 6_000);
      assertThrows(() => RemoteAioContext.timerDel({} as RemoteTimer), TypeError);
      t.del();
    } finally {
      clockSetVirtualNs(0);
      clockEnable(QEMUClockType.VIRTUAL, false);
    }
    assertEquals(openFdCount(), fds);
  });

  Deno.test(`remote timer: a blocked poll wakes for a Worker's timer_mod and fires the timer [${fdmon}]`, async () => {
    using w = new Requester();
    await w.send({ request: new SharedArrayBuffer(8) } as RemoteTimer, []);
    using ctx = AioContext.create({ fdmon });
    let fired = false;
    let dog = false;
    const t = ctx.timerNew(QEMUClockType.REALTIME, 1, () => fired = true);
    const watchdog = ctx.timerNew(QEMUClockType.REALTIME, 1, () => dog = true);
    watchdog.modNs(clockGetNs(QEMUClockType.REALTIME) + 30e9);
    const answer = w.send(shareTimer(ctx, t), [["modNs", 0]], 100);
    // Nothing else is due for 30 s: only the Worker's request ends this.
    while (!fired && !dog) ctx.poll(true);
    assertFalse(dog, "watchdog: the blocked poll never woke");
    assert(fired);
    assertEquals(await answer, ["ok"]);
    watchdog.del();
    // The reference of a destroyed context is refused.
    const ref = shareTimer(ctx, t);
    ctx.destroy();
    const [gone] = await w.send(ref, [["modNs", 0]]);
    assert(gone.startsWith("BadResource"), gone);
  });
}

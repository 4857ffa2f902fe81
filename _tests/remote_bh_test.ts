// Bottom halves scheduled from other threads (real Workers), against
// util/async.c: qemu_bh_schedule from any thread pushes the BH on the
// context's list at once, so a later qemu_bh_cancel at home wins and BHs run
// newest schedule first whichever thread scheduled them; references to a
// deleted BH are refused; the number of shared BHs is not fixed.
import { assert, assertEquals, assertFalse, assertThrows } from "@std/assert";
import { AioContext } from "../aio/aio_context.ts";
import type { QEMUBH } from "../aio/bh.ts";
import { RemoteAioContext, type RemoteBH } from "../aio/handle.ts";
import { CTL_REMOTE_BH_MAX } from "../aio/_ctl_block.ts";
import { openFdCount, supportedFdMons } from "./_fd_leak.ts";

const WORKER = new URL("./testdata/remote_bh_worker.ts", import.meta.url);

/** A scheduling Worker; `schedule` resolves with its per-reference results. */
class Scheduler {
  #w: Worker = new Worker(WORKER, { type: "module" });

  /** Schedules the references in order from the Worker; fails after 10 s. */
  schedule(...refs: RemoteBH[]): Promise<string[]> {
    const { promise, resolve, reject } = Promise.withResolvers<string[]>();
    const dog = setTimeout(() => reject(new Error("watchdog: the Worker never answered")), 60_000);
    this.#w.onmessage = (e: MessageEvent<string[]>) => {
      clearTimeout(dog);
      resolve(e.data);
    };
    this.#w.postMessage(refs);
    return promise;
  }

  [Symbol.dispose](): void {
    this.#w.terminate();
  }
}

/** Polls without blocking until nothing runs; returns how many polls made progress. */
function drain(ctx: AioContext): number {
  let n = 0;
  while (ctx.poll(false)) if (++n > 1000) throw new Error("context never drains");
  return n;
}

for (const fdmon of supportedFdMons()) {
  Deno.test(`remote BH: a cancel at home after a Worker's schedule wins [${fdmon}]`, async () => {
    using w = new Scheduler();
    // Count fds once the Worker runs: its own come and go with the Worker.
    assertEquals(await w.schedule(), []);
    const fds = openFdCount();
    {
      using ctx = AioContext.create({ fdmon });
      const log: string[] = [];
      const a = ctx.bhNew(() => log.push("a"), { name: "a", shared: true });
      const b = ctx.bhNew(() => log.push("b"), { name: "b", shared: true });
      assertEquals(await w.schedule(a.remote(), b.remote()), ["ok", "ok"]);
      // The home sees the Worker's schedule, and can cancel it.
      assert(a.scheduled);
      a.cancel();
      assertFalse(a.scheduled);
      assert(ctx.poll(false));
      assertEquals(log, ["b"]);
      assertFalse(ctx.poll(false));
      // Cancelled without the home ever looking at the flag first.
      assertEquals(await w.schedule(a.remote()), ["ok"]);
      a.cancel();
      assertFalse(ctx.poll(false));
      assertEquals(log, ["b"]);
      // A schedule after the cancel runs.
      assertEquals(await w.schedule(a.remote()), ["ok"]);
      assert(ctx.poll(true));
      assertEquals(log, ["b", "a"]);
      // delete() after a remote schedule: not run either.
      assertEquals(await w.schedule(b.remote()), ["ok"]);
      b.delete();
      drain(ctx);
      assertEquals(log, ["b", "a"]);
      a.delete();
    }
    assertEquals(openFdCount(), fds);
  });

  Deno.test(`remote BH: schedules from a Worker run newest first, merged with local ones [${fdmon}]`, async () => {
    using w = new Scheduler();
    // Count fds once the Worker runs: its own come and go with the Worker.
    assertEquals(await w.schedule(), []);
    const fds = openFdCount();
    {
      using ctx = AioContext.create({ fdmon });
      const log: string[] = [];
      const bhs: Record<string, QEMUBH> = {};
      // Shared BHs whose slot order differs from the schedule order.
      for (const name of ["c", "b", "x", "y"]) {
        bhs[name] = ctx.bhNew(() => log.push(name), { name, shared: true });
      }
      bhs.a = ctx.bhNew(() => log.push("a"), { name: "a" });
      bhs.d = ctx.bhNew(() => log.push("d"), { name: "d" });
      bhs.a.schedule();
      assertEquals(await w.schedule(bhs.b.remote(), bhs.c.remote()), ["ok", "ok"]);
      bhs.d.schedule();
      // QEMU's list after a, b, c, d pushed at the head: d c b a.
      assert(ctx.poll(false));
      assertEquals(log, ["d", "c", "b", "a"]);
      // Only remote ones, scheduled y then x then c (slots 3, 2, 0): c x y.
      log.length = 0;
      assertEquals(await w.schedule(bhs.y.remote(), bhs.x.remote(), bhs.c.remote()), [
        "ok",
        "ok",
        "ok",
      ]);
      assert(ctx.poll(false));
      assertEquals(log, ["c", "x", "y"]);
      // A BH scheduled again while pending keeps its place: x, then y, then
      // x again from the home (still pending) gives y x.
      log.length = 0;
      assertEquals(await w.schedule(bhs.x.remote(), bhs.y.remote()), ["ok", "ok"]);
      bhs.x.schedule();
      assert(ctx.poll(false));
      assertEquals(log, ["y", "x"]);
      for (const bh of Object.values(bhs)) bh.delete();
      drain(ctx);
    }
    assertEquals(openFdCount(), fds);
  });

  Deno.test(`remote BH: a stale reference to a deleted shared BH is refused, even once its slot is reused [${fdmon}]`, async () => {
    using w = new Scheduler();
    // Count fds once the Worker runs: its own come and go with the Worker.
    assertEquals(await w.schedule(), []);
    const fds = openFdCount();
    {
      using ctx = AioContext.create({ fdmon });
      const log: string[] = [];
      const old = ctx.bhNew(() => log.push("old"), { name: "old", shared: true });
      const stale = old.remote();
      old.delete();
      // Refused at once, before the slot is even freed.
      const [early] = await w.schedule(stale);
      assert(/^BadResource: Stale RemoteBH .*deleted/.test(early), early);
      drain(ctx);
      const reused = ctx.bhNew(() => log.push("new"), { name: "new", shared: true });
      const fresh = reused.remote();
      assertEquals(fresh.slot, stale.slot, "the slot was reused");
      assert(fresh.generation !== stale.generation);
      const [late] = await w.schedule(stale);
      assert(/^BadResource: Stale RemoteBH/.test(late), late);
      assertFalse(ctx.poll(false), "the stale reference scheduled nothing");
      assertEquals(log, []);
      assertEquals(await w.schedule(fresh), ["ok"]);
      assert(ctx.poll(false));
      assertEquals(log, ["new"]);
      // Not a RemoteBH at all: a TypeError at home too.
      assertThrows(() => RemoteAioContext.scheduleBh({ slot: 0 } as RemoteBH), TypeError);
      reused.delete();
      drain(ctx);
    }
    assertEquals(openFdCount(), fds);
  });

  Deno.test(`remote BH: more than 1024 shared BHs; a Worker sees slots added after it got the handle [${fdmon}]`, async () => {
    using w = new Scheduler();
    // Count fds once the Worker runs: its own come and go with the Worker.
    assertEquals(await w.schedule(), []);
    const fds = openFdCount();
    {
      using ctx = AioContext.create({ fdmon });
      let ran = 0;
      const first = ctx.bhNew(() => ran++, { name: "first", shared: true });
      // The Worker holds the block from before the growth.
      assertEquals(await w.schedule(first.remote()), ["ok"]);
      assert(ctx.poll(false));
      const many: QEMUBH[] = [];
      for (let i = 0; i < 1500; i++) many.push(ctx.bhNew(() => ran++, { shared: true }));
      assertEquals(new Set(many.map((b) => b.remote().slot)).size, 1500);
      const last = many[many.length - 1];
      assert(last.remote().slot >= 1024);
      assertEquals(await w.schedule(first.remote(), last.remote()), ["ok", "ok"]);
      assert(ctx.poll(false));
      assertEquals(ran, 3);
      for (const b of many) b.delete();
      first.delete();
      drain(ctx);
    }
    assertEquals(openFdCount(), fds);
  });

  Deno.test(`remote BH: past the shared-BH limit, bhNew says so and the context keeps working [${fdmon}]`, () => {
    using ctx = AioContext.create({ fdmon });
    const many: QEMUBH[] = [];
    for (let i = 0; i < CTL_REMOTE_BH_MAX; i++) many.push(ctx.bhNew(() => {}, { shared: true }));
    assertThrows(
      () => ctx.bhNew(() => {}, { shared: true }),
      RangeError,
      `At most ${CTL_REMOTE_BH_MAX} shared BHs`,
    );
    // A deleted one frees its slot for the next.
    many.pop()!.delete();
    drain(ctx);
    let ran = false;
    const again = ctx.bhNew(() => ran = true, { shared: true });
    again.schedule();
    assert(ctx.poll(false));
    assert(ran);
    for (const b of many) b.delete();
    again.delete();
    drain(ctx);
  });
}

// The AioContext as a GSource (aio/aio_gsource.ts; docs/parity.md, "The main
// loop and the GSource contract"): the prepare / check / dispatch contract on a private
// GMainContext, the poll set kept in step with the fd handlers, the
// notify_me bit 0 handshake, and the lifetimes of source and context.
import {
  assert,
  assertEquals,
  assertFalse,
  assertGreater,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { AioContext } from "../aio/aio_context.ts";
import { internals } from "../aio/_internal.ts";
import { CTL_KICKS, CTL_NOTIFY_ME } from "../aio/_ctl_block.ts";
import {
  clockEnable,
  clockGetNs,
  clockSetVirtualNs,
  QEMUClockType,
  SCALE_NS,
} from "../aio/timer.ts";
import { GMainContext } from "../glib/main_context.ts";
import type { GPollFD } from "../glib/gpollfd.ts";
import type { FdMonName } from "../fdmon/mod.ts";
import { close, pipe, read, write } from "../sys/fd.ts";
import { PollFdArray, pollNs } from "../sys/poll.ts";
import { assertNoFdLeak, supportedFdMons } from "./_fd_leak.ts";

const ONE = new Uint8Array([1]);
const buf = new Uint8Array(64);

/** A context of `fdmon` whose GSource is attached to a private GMainContext. */
function withAttached(
  fdmon: FdMonName,
  fn: (ctx: AioContext, gctx: GMainContext) => void,
): Promise<void> {
  return assertNoFdLeak(() => {
    const ctx = AioContext.create({ fdmon });
    const gctx = new GMainContext();
    try {
      ctx.getGSource().attach(gctx);
      while (gctx.iteration(false));
      fn(ctx, gctx);
    } finally {
      ctx.destroy();
      gctx.destroy();
    }
  });
}

/** One split iteration: prepare, query, poll(0), check; returns both verdicts. */
function prepareAndCheck(
  gctx: GMainContext,
): { ready: boolean; timeoutMs: number; timeoutNs: number; check: boolean } {
  const { ready, priority } = gctx.prepare();
  const fds: GPollFD[] = [];
  const { timeoutMs, timeoutNs, count } = gctx.query(priority, fds);
  // No poll: revents stay 0, so only prepare-time state and BHs/timers count.
  const check = gctx.check(priority, fds, count);
  return { ready, timeoutMs, timeoutNs, check };
}

Deno.test("getGSource() returns one recursive source per context, destroyed with it", async () => {
  await assertNoFdLeak(() => {
    const ctx = AioContext.create();
    const gctx = new GMainContext();
    const src = ctx.getGSource();
    assertStrictEquals(ctx.getGSource(), src);
    assert(src.getCanRecurse());
    const id = src.attach(gctx);
    assertStrictEquals(gctx.findSourceById(id), src);
    ctx.destroy();
    assert(src.isDestroyed());
    assertStrictEquals(gctx.findSourceById(id), null);
    assertThrows(() => ctx.getGSource(), Deno.errors.BadResource);
    gctx.destroy();
  });
});

Deno.test("destroying the source (or its GMainContext) leaves the context working", async () => {
  await assertNoFdLeak(() => {
    using ctx = AioContext.create();
    const g1 = new GMainContext();
    const s1 = ctx.getGSource();
    s1.attach(g1);
    s1.destroy();
    let n = 0;
    ctx.bhScheduleOneshot(() => n++);
    assertFalse(g1.iteration(false));
    assertStrictEquals(ctx.poll(false), true);
    assertStrictEquals(n, 1);

    // A destroyed source cannot be attached again: the next call makes a new one.
    const s2 = ctx.getGSource();
    assert(s2 !== s1);
    s2.attach(g1);
    ctx.bhScheduleOneshot(() => n++);
    assert(g1.iteration(false));
    assertStrictEquals(n, 2);

    // Destroying the GMainContext destroys the source, not the context.
    g1.destroy();
    assert(s2.isDestroyed());
    assertFalse(ctx.destroyed);
    const g2 = new GMainContext();
    ctx.getGSource().attach(g2);
    ctx.bhScheduleOneshot(() => n++);
    assert(g2.iteration(false));
    assertStrictEquals(n, 3);
    g2.destroy();
  });
});

for (const fdmon of supportedFdMons()) {
  Deno.test(`prepare is ready iff the timeout is 0 (ms rounded up) [${fdmon}]`, async () => {
    await withAttached(fdmon, (ctx, gctx) => {
      // Nothing to do: not ready, no timeout.
      let r = prepareAndCheck(gctx);
      assertEquals([r.ready, r.timeoutMs, r.check], [false, -1, false]);

      // A scheduled BH: timeout 0, ready.
      let n = 0;
      const bh = ctx.bhNew(() => n++);
      bh.schedule();
      r = prepareAndCheck(gctx);
      assertEquals([r.ready, r.timeoutMs], [true, 0]);
      gctx.dispatch();
      assertStrictEquals(n, 1);
      bh.delete();
      while (gctx.iteration(false));

      // A timer 5 ms + 1 ns ahead on the (frozen) virtual clock: 6 ms.
      clockEnable(QEMUClockType.VIRTUAL, true);
      try {
        clockSetVirtualNs(1_000_000_000);
        while (gctx.iteration(false));
        const t = ctx.timerNew(QEMUClockType.VIRTUAL, SCALE_NS, () => n++);
        t.mod(clockGetNs(QEMUClockType.VIRTUAL) + 5_000_001);
        while (gctx.iteration(false)); // arming kicked the context
        r = prepareAndCheck(gctx);
        assertEquals([r.ready, r.timeoutMs, r.check], [false, 6, false]);
        // The query's ns timeout is exact, for the main loop's ppoll.
        assertEquals(r.timeoutNs, 5_000_001);
        // Due: ready at prepare, and dispatch runs it.
        clockSetVirtualNs(1_005_000_001);
        r = prepareAndCheck(gctx);
        assertEquals([r.ready, r.timeoutMs, r.check], [true, 0, true]);
        gctx.dispatch();
        assertStrictEquals(n, 2);
        t.del();
      } finally {
        clockEnable(QEMUClockType.VIRTUAL, false);
        clockSetVirtualNs(0);
      }
    });
  });

  Deno.test(`check counts idle BHs (prepare only bounds the wait) [${fdmon}]`, async () => {
    await withAttached(fdmon, (ctx, gctx) => {
      let n = 0;
      const bh = ctx.bhNew(() => n++);
      bh.scheduleIdle();
      const r = prepareAndCheck(gctx);
      assertEquals([r.ready, r.timeoutMs, r.check], [false, 10, true]);
      gctx.dispatch();
      assertStrictEquals(n, 1);
      // An idle BH is not progress for poll(), but it is a dispatch here.
      bh.scheduleIdle();
      assertStrictEquals(gctx.iteration(false), true);
      assertStrictEquals(n, 2);
      assertStrictEquals(gctx.iteration(false), false);
      bh.delete();
    });
  });

  Deno.test(`fds registered after the GSource exists are polled; removal stops it [${fdmon}]`, async () => {
    await withAttached(fdmon, (ctx, gctx) => {
      const [r, w] = pipe();
      const [r2, w2] = pipe();
      try {
        let n = 0;
        // One byte per call, so a second byte keeps the fd readable.
        ctx.setFdHandler(r, { read: () => (read(r, buf, 1), n++) });
        write(w, ONE);
        // A blocking iteration returns because the pipe is in the poll set
        // (its own fd with fdmon-poll, the epoll or io_uring fd otherwise).
        assertStrictEquals(gctx.iteration(true), true);
        assertStrictEquals(n, 1);
        assertStrictEquals(gctx.iteration(false), false);

        // Level-triggered: a second byte is seen again.
        write(w, ONE);
        write(w, ONE);
        assertStrictEquals(gctx.iteration(true), true);
        assertStrictEquals(n, 2);
        assertStrictEquals(gctx.iteration(false), true);
        assertStrictEquals(n, 3);

        // Removed: a readable fd no longer makes the source ready.
        ctx.setFdHandler(r, null);
        while (gctx.iteration(false));
        write(w, ONE);
        assertStrictEquals(gctx.iteration(false), false);
        assertStrictEquals(n, 3);

        // A write handler, and a second fd, through the same source.
        let wrote = 0;
        ctx.setFdHandler(w2, { write: () => (wrote++, ctx.setFdHandler(w2, null)) });
        assertStrictEquals(gctx.iteration(true), true);
        assertStrictEquals(wrote, 1);
        // (io_uring reports the removal's completion through the source: one
        // more dispatch, with no handler call.)
        while (gctx.iteration(false));
        assertStrictEquals(wrote, 1);
      } finally {
        close(r);
        close(w);
        close(r2);
        close(w2);
      }
    });
  });

  Deno.test(`fds registered before the GSource exists are handed over [${fdmon}]`, async () => {
    await assertNoFdLeak(() => {
      const [r, w] = pipe();
      const ctx = AioContext.create({ fdmon });
      const gctx = new GMainContext();
      try {
        let n = 0;
        ctx.setFdHandler(r, { read: () => (read(r, buf), n++) });
        ctx.getGSource().attach(gctx);
        while (gctx.iteration(false));
        write(w, ONE);
        assertStrictEquals(gctx.iteration(true), true);
        assertStrictEquals(n, 1);
        ctx.setFdHandler(r, null);
      } finally {
        ctx.destroy();
        gctx.destroy();
        close(r);
        close(w);
      }
    });
  });

  Deno.test(`dispatch runs BHs, then fd handlers, then timers [${fdmon}]`, async () => {
    await withAttached(fdmon, (ctx, gctx) => {
      const [r, w] = pipe();
      try {
        const order: string[] = [];
        ctx.setFdHandler(r, { read: () => (read(r, buf), order.push("fd")) });
        const t = ctx.timerNew(QEMUClockType.REALTIME, SCALE_NS, () => order.push("timer"));
        t.mod(0);
        write(w, ONE);
        ctx.bhScheduleOneshot(() => order.push("bh"));
        assertStrictEquals(gctx.iteration(false), true);
        assertEquals(order, ["bh", "fd", "timer"]);
        ctx.setFdHandler(r, null);
      } finally {
        close(r);
        close(w);
      }
    });
  });

  Deno.test(`notify_me bit 0 spans prepare..check; notify() rings only inside it [${fdmon}]`, async () => {
    await withAttached(fdmon, (ctx, gctx) => {
      const ctl = internals(ctx).ctl;
      const kicks = () => Atomics.load(ctl, CTL_KICKS);
      assertStrictEquals(Atomics.load(ctl, CTL_NOTIFY_ME) & 1, 0);
      let k = kicks();
      ctx.notify();
      assertStrictEquals(kicks(), k); // nobody may be polling: no eventfd write

      const { priority } = gctx.prepare();
      assertStrictEquals(Atomics.load(ctl, CTL_NOTIFY_ME) & 1, 1);
      const fds: GPollFD[] = [];
      const { count } = gctx.query(priority, fds);
      k = kicks();
      ctx.notify(); // as a Deno callback would while the poll is parked
      assertStrictEquals(kicks(), k + 1);
      gctx.check(priority, fds, count);
      assertStrictEquals(Atomics.load(ctl, CTL_NOTIFY_ME) & 1, 0);
      gctx.dispatch();
      k = kicks();
      ctx.notify();
      assertStrictEquals(kicks(), k);
      while (gctx.iteration(false));
    });
  });
}

Deno.test("work scheduled between query and check rings the polled fds", async () => {
  for (const fdmon of supportedFdMons()) {
    await withAttached(fdmon, (ctx, gctx) => {
      const { priority } = gctx.prepare();
      const fds: GPollFD[] = [];
      const { count, timeoutMs } = gctx.query(priority, fds);
      assertStrictEquals(timeoutMs, -1);
      // What a Deno callback does while the main loop's poll is parked.
      let ran = false;
      ctx.bhScheduleOneshot(() => ran = true);
      // The poll over the queried set returns because of that (were the fd
      // not rung, it would return 0 after 5 s and fail, not hang).
      const pfa = new PollFdArray();
      for (let i = 0; i < count; i++) pfa.push(fds[i].fd, fds[i].events);
      assertGreater(pollNs(pfa, 5_000_000_000), 0);
      for (let i = 0; i < count; i++) fds[i].revents = pfa.revents(i);
      assert(gctx.check(priority, fds, count));
      gctx.dispatch();
      assert(ran);
    });
  }
});

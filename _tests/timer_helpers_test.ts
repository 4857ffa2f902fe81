// Relative and periodic arming (QEMUTimer.modIn / modPeriodic) beside QEMU's
// absolute mod(), on an AioContext of every fd monitor.
import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  AioContext,
  clockEnable,
  clockGetNs,
  clockSetVirtualNs,
  QEMUClockType,
  SCALE_MS,
  SCALE_US,
} from "../mod.ts";
import { assertNoFdLeak, supportedFdMons } from "./_fd_leak.ts";

/** Polls until `done()`, failing instead of hanging. */
function pollUntil(ctx: AioContext, done: () => boolean, what: string): void {
  const deadline = Date.now() + 10_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`watchdog: ${what} never happened`);
    ctx.poll(true);
  }
}

/** Runs `fn` with the VIRTUAL clock enabled at 0, restoring it after. */
function withVirtualClock(fn: () => void): void {
  clockSetVirtualNs(0);
  clockEnable(QEMUClockType.VIRTUAL, true);
  try {
    fn();
  } finally {
    clockEnable(QEMUClockType.VIRTUAL, false);
    clockSetVirtualNs(0);
  }
}

for (const fdmon of supportedFdMons()) {
  Deno.test(`timer helpers: modIn(20) arms 20 ms from now, not at 20 ms [${fdmon}]`, async () => {
    await assertNoFdLeak(() => {
      using ctx = AioContext.create({ fdmon });
      let fired = 0;
      const t = ctx.timerNew(QEMUClockType.REALTIME, SCALE_MS, () => fired++);
      const before = clockGetNs(QEMUClockType.REALTIME);
      t.modIn(20);
      const after = clockGetNs(QEMUClockType.REALTIME);
      assert(t.expireTimeNs >= before + 20 * SCALE_MS, `${t.expireTimeNs} < ${before} + 20 ms`);
      assert(t.expireTimeNs <= after + 20 * SCALE_MS, `${t.expireTimeNs} > ${after} + 20 ms`);
      // The absolute mod(20) is "at 20 ms of CLOCK_MONOTONIC": long past.
      const abs = ctx.timerNew(QEMUClockType.REALTIME, SCALE_MS, () => {});
      abs.mod(20);
      assertEquals(abs.expireTimeNs, 20 * SCALE_MS);
      abs.del();
      pollUntil(ctx, () => fired === 1, "the modIn timer");
      // It never fires before its expiry.
      assert(clockGetNs(QEMUClockType.REALTIME) >= before + 20 * SCALE_MS);
      assertEquals(t.pending, false);
    });
  });

  Deno.test(`timer helpers: modIn(0) is due at once, bad delays throw and change nothing [${fdmon}]`, () => {
    using ctx = AioContext.create({ fdmon });
    let fired = 0;
    const t = ctx.timerNew(QEMUClockType.REALTIME, SCALE_US, () => fired++);
    t.modIn(0);
    assert(ctx.poll(false));
    assertEquals(fired, 1);
    t.modIn(1_000_000);
    const armed = t.expireTimeNs;
    assertThrows(() => t.modIn(-1), RangeError, "mod()");
    assertThrows(() => t.modIn(Infinity), RangeError);
    assertThrows(() => t.modIn(NaN), RangeError);
    assertThrows(() => t.modIn("5" as unknown as number), TypeError);
    assertEquals(t.expireTimeNs, armed);
    t.del();
  });

  Deno.test(`timer helpers: modPeriodic fires every period on the virtual clock, skipping missed periods [${fdmon}]`, () => {
    using ctx = AioContext.create({ fdmon });
    withVirtualClock(() => {
      const at: number[] = [];
      const t = ctx.timerNew(QEMUClockType.VIRTUAL, SCALE_MS, () => {
        at.push(clockGetNs(QEMUClockType.VIRTUAL) / SCALE_MS);
      });
      t.modPeriodic(10);
      assertEquals(t.expireTimeNs, 10 * SCALE_MS);
      assertEquals(t.periodNs, 10 * SCALE_MS);
      for (const ms of [5, 10, 20, 25, 30]) {
        clockSetVirtualNs(ms * SCALE_MS);
        ctx.poll(false);
      }
      assertEquals(at, [10, 20, 30]);
      // Late by 3.5 periods: one call, then the next period boundary.
      clockSetVirtualNs(75 * SCALE_MS);
      ctx.poll(false);
      assertEquals(at, [10, 20, 30, 75]);
      assertEquals(t.expireTimeNs, 80 * SCALE_MS);
      // Late by less than a period: no drift, the grid stays.
      clockSetVirtualNs(83 * SCALE_MS);
      ctx.poll(false);
      assertEquals(t.expireTimeNs, 90 * SCALE_MS);
      t.del();
      assertEquals(t.periodNs, 0);
      clockSetVirtualNs(200 * SCALE_MS);
      assertEquals(ctx.poll(false), false);
      assertEquals(at.length, 5);
    });
  });

  Deno.test(`timer helpers: a periodic callback can stop it, make it one-shot, or throw [${fdmon}]`, () => {
    using ctx = AioContext.create({ fdmon });
    withVirtualClock(() => {
      const step = (ms: number): void => {
        clockSetVirtualNs(ms * SCALE_MS);
        try {
          ctx.poll(false);
        } catch (e) {
          if (!(e instanceof Error && e.message === "boom")) throw e;
        }
      };
      // del() from the callback: no more firings.
      let a = 0;
      const ta = ctx.timerNew(QEMUClockType.VIRTUAL, SCALE_MS, () => {
        if (++a === 2) ta.del();
      });
      ta.modPeriodic(10);
      // mod() from the callback: one-shot at that time, then idle.
      let b = 0;
      const tb = ctx.timerNew(QEMUClockType.VIRTUAL, SCALE_MS, () => {
        if (++b === 1) tb.mod(45);
      });
      tb.modPeriodic(10);
      // A throwing callback stays armed for the next period.
      let c = 0;
      const tc = ctx.timerNew(QEMUClockType.VIRTUAL, SCALE_MS, () => {
        c++;
        throw new Error("boom");
      });
      tc.modPeriodic(10);
      for (let ms = 10; ms <= 60; ms += 10) step(ms);
      // Each poll stops at the first throw; the rest run on the next polls.
      for (let i = 0; i < 4; i++) step(60);
      assertEquals(a, 2);
      assertEquals(ta.pending, false);
      assertEquals(b, 2);
      assertEquals(tb.pending, false);
      assertEquals(tc.pending, true);
      assert(c >= 4, `the throwing periodic timer fired ${c} times`);
      tc.del();
    });
  });

  Deno.test(`timer helpers: a periodic REALTIME timer keeps waking a blocking poll [${fdmon}]`, async () => {
    await assertNoFdLeak(() => {
      using ctx = AioContext.create({ fdmon });
      let ticks = 0;
      const t = ctx.timerNew(QEMUClockType.REALTIME, SCALE_MS, () => ticks++);
      const start = clockGetNs(QEMUClockType.REALTIME);
      t.modPeriodic(5);
      pollUntil(ctx, () => ticks === 3, "three periodic ticks");
      // Never early: three periods have passed at least.
      assert(clockGetNs(QEMUClockType.REALTIME) - start >= 15 * SCALE_MS);
      assertEquals(t.pending, true);
      t.del();
    });
  });

  Deno.test(`timer helpers: a bad period throws and leaves the timer as it was [${fdmon}]`, () => {
    using ctx = AioContext.create({ fdmon });
    const t = ctx.timerNew(QEMUClockType.REALTIME, SCALE_MS, () => {});
    t.modIn(1000);
    const armed = t.expireTimeNs;
    assertThrows(() => t.modPeriodic(0), RangeError, "period");
    assertThrows(() => t.modPeriodic(-5), RangeError, "period");
    assertThrows(() => t.modPeriodic(Infinity), RangeError);
    assertThrows(() => t.modPeriodic(null as unknown as number), TypeError);
    assertEquals(t.expireTimeNs, armed);
    assertEquals(t.periodNs, 0);
    t.del();
  });
}

Deno.test("timer helpers: a destroyed context's periodic timer throws on re-arm and stays idle", () => {
  const ctx = AioContext.create();
  const t = ctx.timerNew(QEMUClockType.REALTIME, SCALE_MS, () => {});
  t.modPeriodic(1);
  ctx.destroy();
  assertEquals(t.pending, false);
  assertThrows(() => t.modPeriodic(1), Deno.errors.BadResource);
  assertThrows(() => t.modIn(1), Deno.errors.BadResource);
});

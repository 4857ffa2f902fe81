// One clock state per process (util/qemu-timer.c keeps one QEMUClock per
// clock type; util/async.c numbers contexts process-wide): the VIRTUAL
// clock, the enable flags and the context ids are shared by the main
// isolate, IOThreads and Workers that opened a context handle; moving the
// clock in one isolate wakes the contexts of the others.
import { assert, assertEquals, assertNotEquals } from "@std/assert";
import { AioContext } from "../aio/aio_context.ts";
import {
  clockEnable,
  clockGetNs,
  clockIsEnabled,
  clockSetVirtualNs,
  QEMUClockType,
} from "../aio/timer.ts";
import { IOThread } from "../iothread/iothread.ts";
import { supportedFdMons } from "./_fd_leak.ts";

const FNS = new URL("./testdata/process_clock_fns.ts", import.meta.url);
const WORKER = new URL("./testdata/process_clock_worker.ts", import.meta.url);

interface ClockState {
  virtualNs: number;
  virtualEnabled: boolean;
  ctxId: number;
}

/** Leaves the clocks as every other test expects them. */
function resetClocks(): void {
  clockSetVirtualNs(0);
  clockEnable(QEMUClockType.VIRTUAL, false);
}

Deno.test("process clock: a Worker that opens a handle shares VIRTUAL time and enable flags both ways", async () => {
  using ctx = AioContext.create();
  try {
    clockSetVirtualNs(123_456);
    clockEnable(QEMUClockType.VIRTUAL, true);
    const w = new Worker(WORKER, { type: "module" });
    try {
      const { promise, resolve, reject } = Promise.withResolvers<
        { before: ClockState; opened: ClockState }
      >();
      const dog = setTimeout(() => reject(new Error("watchdog: no answer")), 60_000);
      w.onmessage = (e) => {
        clearTimeout(dog);
        resolve(e.data);
      };
      w.postMessage({ handle: ctx.handle(), setVirtualNs: 777_000, enableVirtual: false });
      const { before, opened } = await promise;
      // Before it had any handle the Worker ran on a clock of its own.
      assertEquals([before.virtualNs, before.virtualEnabled], [0, false]);
      assertEquals([opened.virtualNs, opened.virtualEnabled], [123_456, true]);
      // What the Worker set is what this isolate reads.
      assertEquals(clockGetNs(QEMUClockType.VIRTUAL), 777_000);
      assertEquals(clockIsEnabled(QEMUClockType.VIRTUAL), false);
    } finally {
      w.terminate();
    }
  } finally {
    resetClocks();
  }
});

Deno.test("process clock: a Worker whose context predates the handle moves to the process clock, and clock changes here wake it", async () => {
  using ctx = AioContext.create();
  const w = new Worker(new URL("./testdata/process_clock_early_worker.ts", import.meta.url), {
    type: "module",
  });
  try {
    // The Worker's messages in order; next() waits for the n-th (watchdog 60 s).
    const msgs: Record<string, unknown>[] = [];
    let arrived: (() => void) | null = null;
    w.onmessage = (e) => {
      msgs.push(e.data);
      arrived?.();
    };
    const next = async (n: number): Promise<Record<string, unknown>> => {
      const deadline = Date.now() + 60_000;
      while (msgs.length < n) {
        if (Date.now() > deadline) throw new Error(`watchdog: no message ${n} from the Worker`);
        const { promise, resolve } = Promise.withResolvers<void>();
        arrived = resolve;
        const dog = setTimeout(resolve, 1_000);
        await promise;
        clearTimeout(dog);
      }
      return msgs[n - 1];
    };
    w.postMessage(ctx.handle());
    const adopted = await next(1);
    assertEquals(adopted.adopted, true);
    // Its context was numbered from a block of its own, clear of ours.
    assertNotEquals(adopted.ownId, ctx.id);
    // The Worker now blocks in poll(true) on its VIRTUAL timer at 5000 ns.
    clockEnable(QEMUClockType.VIRTUAL, true);
    clockSetVirtualNs(5_000);
    const end = await next(2);
    assertEquals(end, { fired: true, dog: false, virtualNs: 5_000 });
  } finally {
    w.terminate();
    resetClocks();
  }
});

Deno.test("process clock: context ids are unique across the main isolate and IOThreads", async () => {
  const a = AioContext.create();
  await using t = await IOThread.create();
  const b = AioContext.create();
  try {
    const there = await t.run(FNS, "clockState") as ClockState;
    assertEquals(there.ctxId, t.handle.id);
    // One counter: the IOThread's context was numbered between a and b.
    assert(a.id < there.ctxId && there.ctxId < b.id, `${a.id} < ${there.ctxId} < ${b.id}`);
    assertNotEquals(there.ctxId, a.id);
  } finally {
    a.destroy();
    b.destroy();
  }
});

for (const fdmon of supportedFdMons()) {
  Deno.test(`process clock: an IOThread's VIRTUAL timer fires when the main isolate moves the clock [${fdmon}]`, async () => {
    await using t = await IOThread.create({ fdmon });
    const counter = new Int32Array(new SharedArrayBuffer(4));
    try {
      clockSetVirtualNs(1_000);
      clockEnable(QEMUClockType.VIRTUAL, true);
      // The thread sees the time set here, and its enable flag.
      const seen = await t.run(FNS, "clockState") as ClockState;
      assertEquals([seen.virtualNs, seen.virtualEnabled], [1_000, true]);
      await t.run(FNS, "armVirtual", { counter: counter.buffer, expireNs: 5_000 });
      // Not due yet: the IOThread's poll blocks (no other wake-up is due).
      clockSetVirtualNs(4_999);
      await new Promise((r) => setTimeout(r, 50));
      assertEquals(Atomics.load(counter, 0), 0);
      // Due: moving the clock here wakes the thread's blocked poll.
      clockSetVirtualNs(5_000);
      // Atomics.waitAsync alone does not keep Deno's loop alive, and the
      // IOThread's Worker does not either (it is unref'd): hold a timer.
      const keep = setTimeout(() => {}, 10_000);
      const r = await Atomics.waitAsync(counter, 0, 0, 10_000).value;
      clearTimeout(keep);
      assertEquals(r === "timed-out" ? "watchdog: the timer never fired" : "fired", "fired");
      assertEquals(Atomics.load(counter, 0), 1);
      await t.run(FNS, "disarm");
    } finally {
      resetClocks();
    }
  });
}

// Adaptive polling of EventNotifiers (aio_set_event_notifier with io_poll),
// and polling on both sides of a cross-thread round trip: the main context
// busy-polls its notifier while an IOThread answers, and a synchronous
// request spins on its reply. Whether a wake-up was found by polling is read
// from the isolate's poll counters, never from timings.
import { assert, assertEquals, assertGreater, assertInstanceOf, assertRejects } from "@std/assert";
import { AioContext } from "../aio/aio_context.ts";
import { setCurrentAioContext } from "../aio/current.ts";
import { EventNotifier } from "../aio/event_notifier.ts";
import { pollCounters } from "../aio/_poll_counters.ts";
import { RemoteAioContext, type RemoteBH } from "../aio/handle.ts";
import { adjustPollNs } from "../iothread/_channel.ts";
import { IOThread } from "../iothread/iothread.ts";
import { clockGettimeNs } from "../sys/clock.ts";
import { assertNoFdLeak, openFdCount } from "./_fd_leak.ts";
import { fdCountSettles, settleDenoFds, testOnEachFdMon, watchdog } from "./_harness.ts";

const FNS = new URL("./testdata/multithread_fns.ts", import.meta.url);

// Deno keeps the last terminated Worker's runtime fds until the next Worker
// is made: one IOThread cycle first reaches that steady state for fd counts.
let warm: Promise<void> | null = null;
function warmUp(): Promise<void> {
  return warm ??= (async () => {
    await settleDenoFds();
    const t = await IOThread.create({ pollMaxNs: 0 });
    await t.run(FNS, "ping", 0);
    await t.stop();
    await new Promise((r) => setTimeout(r, 50));
  })();
}

function busyUntil(ns: number): void {
  while (clockGettimeNs() < ns) { /* spin */ }
}

/** The adaptive poll time of the handler of `fd`. */
function pollNsOf(ctx: AioContext, fd: number): number {
  const h = ctx.info().handlers.find((x) => x.fd === fd);
  if (h === undefined) throw new Error(`fd ${fd} is not registered`);
  return h.pollNs;
}

testOnEachFdMon(
  "io_poll of an EventNotifier is busy-polled and its handler runs",
  (fdmon) =>
    assertNoFdLeak(() => {
      using ctx = AioContext.create({ fdmon });
      using n = EventNotifier.create();
      ctx.setPollParams({ maxNs: 50_000_000 });
      let reads = 0, readies = 0, polls = 0;
      let pending = false;
      ctx.setEventNotifier(
        n,
        () => {
          n.testAndClear();
          reads++;
        },
        () => {
          polls++;
          return pending;
        },
        () => {
          pending = false;
          readies++;
        },
      );
      // A first real event puts the handler on the polling list. (The kick
      // of the registration may end the first poll before any fd is looked
      // at: with every handler pollable, a zero timeout needs no syscall.)
      n.set();
      while (reads === 0) ctx.poll(true);
      assertEquals([reads, readies], [1, 0]);
      assertGreater(pollNsOf(ctx, n.fd), 0);
      // Now an event only io_poll can see: no fd is set, so a blocking wait
      // would hang (the watchdog would end it, and the test fail).
      const dog = watchdog(ctx, 10_000);
      const waits = pollCounters.blockingWaits;
      const hits = pollCounters.pollHits;
      pending = true;
      assertEquals(ctx.poll(true), true);
      assertEquals(dog.fired, false);
      dog.timer.del();
      assertEquals([reads, readies], [1, 1]);
      assertGreater(polls, 0);
      assertEquals(pollCounters.blockingWaits, waits);
      assertGreater(pollCounters.pollHits, hits);
      ctx.setEventNotifier(n, null);
    }),
);

testOnEachFdMon(
  "the poll window of a notifier grows and shrinks by QEMU's rules",
  (fdmon) =>
    assertNoFdLeak(() => {
      for (const [grow, shrink] of [[0, 0], [4, 2]]) {
        using ctx = AioContext.create({ fdmon });
        using n = EventNotifier.create();
        // Room above every event below, even on a loaded machine.
        const max = 200_000_000;
        ctx.setPollParams({ maxNs: max, grow, shrink });
        // The next event arrives once io_poll has been asked for `delay` ns.
        let delay = 0;
        let armed = false;
        ctx.setEventNotifier(n, () => reads += Number(n.testAndClear()), () => {
          if (!armed) return false;
          busyUntil(clockGettimeNs() + delay);
          return true;
        }, () => armed = false);
        // First event through the fd: it joins the list at 0 and starts at 4 µs.
        let reads = 0;
        n.set();
        while (reads === 0) ctx.poll(true);
        const seen = [pollNsOf(ctx, n.fd)];
        assertEquals(seen[0], 4000);
        // Events later than the window but within the maximum: it grows.
        let ns = 4000;
        const factor = grow || 2;
        while (ns < max) {
          delay = ns + 1_000_000;
          armed = true;
          ctx.poll(true);
          ns = Math.min(ns * factor, max);
          seen.push(pollNsOf(ctx, n.fd));
          assertEquals(seen.at(-1), ns, `grow=${grow}: ${seen.join(" ")}`);
          if (ns * factor > max * 2) break; // the next events would take too long
        }
        // An event inside the window leaves it alone (the sweet spot).
        delay = 0;
        armed = true;
        ctx.poll(true);
        assertEquals(pollNsOf(ctx, n.fd), ns);
        // One later than the maximum: reset (shrink 0) or divided.
        delay = max + 1_000_000;
        armed = true;
        ctx.poll(true);
        assertEquals(pollNsOf(ctx, n.fd), shrink ? Math.floor(ns / shrink) : 0);
        ctx.setEventNotifier(n, null);
      }
    }),
);

Deno.test("adjustPollNs follows adjust_polling_time", () => {
  const p = { maxNs: 32768, grow: 0, shrink: 0 };
  assertEquals(adjustPollNs(0, 100, p), 4000);
  assertEquals(adjustPollNs(4000, 3000, p), 4000);
  assertEquals(adjustPollNs(4000, 5000, p), 8000);
  assertEquals(adjustPollNs(16000, 20000, p), 32000);
  assertEquals(adjustPollNs(32000, 32100, p), 32768);
  assertEquals(adjustPollNs(32768, 40000, p), 0);
  assertEquals(adjustPollNs(32768, 40000, { ...p, shrink: 4 }), 8192);
  assertEquals(adjustPollNs(4000, 5000, { ...p, grow: 3 }), 12000);
});

testOnEachFdMon("IOThread.setPollParams applies in the thread and rejects bad values", async (
  fdmon,
) => {
  await warmUp();
  const before = openFdCount();
  const t = await IOThread.create({ fdmon });
  try {
    const bad: [unknown, ErrorConstructor | TypeErrorConstructor | RangeErrorConstructor][] = [
      [null, TypeError],
      [[], TypeError],
      [{ maxNs: "1" }, TypeError],
      [{ grow: -1 }, RangeError],
      [{ shrink: 1.5 }, RangeError],
      [{ maxNs: 2 ** 53 }, RangeError],
    ];
    for (const [params, E] of bad) {
      await assertRejects(
        // deno-lint-ignore no-explicit-any
        () => t.setPollParams(params as any),
        E,
      );
    }
    // Nothing was applied by the failures.
    assertEquals(t.pollParams, { maxNs: 32768, grow: 0, shrink: 0 });
    assertEquals(await t.setPollParams({ maxNs: 0 }), { maxNs: 0, grow: 0, shrink: 0 });
    assertEquals(await t.setPollParams({ grow: 3 }), { maxNs: 0, grow: 3, shrink: 0 });
    const who = await t.run(FNS, "whoAmI") as { pollMaxNs: number; pollGrow: number };
    assertEquals([who.pollMaxNs, who.pollGrow], [0, 3]);
    assertEquals(t.pollParams, { maxNs: 0, grow: 3, shrink: 0 });
  } finally {
    await t.stop();
  }
  await assertRejects(() => t.setPollParams({ maxNs: 1 }), Deno.errors.BadResource);
  await fdCountSettles(before);
  // At most as many: a Worker runtime of before may be gone by now.
  assert(openFdCount() <= before, `fd leak: ${before} fds before, ${openFdCount()} after`);
});

/** Shared-BH ping-pong with an IOThread: main waits in poll(true). */
async function pingPong(
  fdmon: "poll" | "epoll" | "io_uring",
  mainNs: number,
  rounds: number,
): Promise<{ hits: number; waits: number }> {
  const t = await IOThread.create({ fdmon, pollMaxNs: 10_000_000 });
  const ctx = AioContext.create({ fdmon, name: "main-poller" });
  try {
    ctx.setPollParams({ maxNs: mainNs });
    let got = 0;
    const back = ctx.bhNew(() => got++, { name: "back", shared: true });
    const slot = await t.run(FNS, "pongSetup", { peer: back.remote() }) as number;
    const pong: RemoteBH = { handle: t.handle, slot, generation: 0, name: "pong" };
    const dog = watchdog(ctx, 20_000);
    const hits = pollCounters.pollHits;
    const waits = pollCounters.blockingWaits;
    for (let i = 0; i < rounds && !dog.fired; i++) {
      RemoteAioContext.scheduleBh(pong);
      while (got <= i && !dog.fired) ctx.poll(true);
    }
    const out = { hits: pollCounters.pollHits - hits, waits: pollCounters.blockingWaits - waits };
    assertEquals([dog.fired, got], [false, rounds]);
    dog.timer.del();
    await t.run(FNS, "pongTeardown");
    back.delete();
    return out;
  } finally {
    ctx.destroy();
    await t.stop();
  }
}

testOnEachFdMon("a reply is picked up by the main context's polling when it polls", async (
  fdmon,
) => {
  await warmUp();
  const before = openFdCount();
  // Polling on: with a 10 ms window, replies are found by polling (a loaded
  // machine may still make some wait).
  const on = await pingPong(fdmon, 10_000_000, 200);
  assertGreater(on.hits, 0);
  // Polling off: none is polled; replies are waited for (but for those
  // already there when the main context looks).
  const off = await pingPong(fdmon, 0, 50);
  assertEquals(off.hits, 0);
  assertGreater(off.waits, 0);
  await fdCountSettles(before);
  // At most as many: a Worker runtime of before may be gone by now.
  assert(openFdCount() <= before, `fd leak: ${before} fds before, ${openFdCount()} after`);
});

testOnEachFdMon("runSync spins on its reply when the caller's context polls", async (fdmon) => {
  await warmUp();
  const before = openFdCount();
  const t = await IOThread.create({ fdmon, pollMaxNs: 10_000_000 });
  const ctx = AioContext.create({ fdmon, name: "caller" });
  try {
    await t.run(FNS, "ping", 0); // the module is loaded in the thread
    setCurrentAioContext(ctx);
    ctx.setPollParams({ maxNs: 10_000_000 });
    let polled = pollCounters.replyPolled;
    for (let i = 0; i < 200; i++) assertEquals(t.runSync(FNS, "ping", i), i + 1);
    assertGreater(pollCounters.replyPolled, polled);
    // Polling off: every reply is waited for in Atomics.wait.
    ctx.setPollParams({ maxNs: 0 });
    polled = pollCounters.replyPolled;
    const slept = pollCounters.replySlept;
    for (let i = 0; i < 50; i++) assertEquals(t.runSync(FNS, "ping", i), i + 1);
    assertEquals(pollCounters.replyPolled, polled);
    assertEquals(pollCounters.replySlept - slept, 50);
  } finally {
    setCurrentAioContext(null);
    ctx.destroy();
    await t.stop();
  }
  // A stopped thread's channel refuses, spin or not.
  let err: unknown;
  try {
    t.runSync(FNS, "ping", 0);
  } catch (e) {
    err = e;
  }
  assertInstanceOf(err, Deno.errors.BadResource);
  await fdCountSettles(before);
  // At most as many: a Worker runtime of before may be gone by now.
  assert(openFdCount() <= before, `fd leak: ${before} fds before, ${openFdCount()} after`);
});

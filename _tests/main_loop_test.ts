// The main loop (main_loop.ts; docs/parity.md, "The main loop ..."): the two
// AioContexts on the default GMainContext, qemuSetFdHandler vs a nested
// poll(), qemuNotifyEvent and cross-thread wakes, poll notifiers, and the
// async run beside Deno's own loop (timers, fetch, signals, clean stop, one
// parked wait at most).
import {
  assert,
  assertEquals,
  assertFalse,
  assertGreater,
  assertRejects,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import {
  eventNotifierSetHandler,
  iohandlerGetAioContext,
  iohandlerGetGSource,
  MAIN_LOOP_POLL_ERR,
  MAIN_LOOP_POLL_FILL,
  MAIN_LOOP_POLL_OK,
  mainLoopAddSignalHandler,
  mainLoopIsRunning,
  type MainLoopPoll,
  mainLoopPollAddNotifier,
  mainLoopPollRemoveNotifier,
  mainLoopQuit,
  mainLoopRemoveSignalHandler,
  mainLoopRun,
  mainLoopWait,
  mainLoopWaitAsync,
  qemuCleanupMainLoop,
  qemuGetAioContext,
  qemuInitMainLoop,
  qemuNotifyEvent,
  qemuSetFdHandler,
} from "../main_loop.ts";
import { asyncWaitStats, parkedWaitMarginNs } from "../sys/_async_wait.ts";
import { getTimerSlackNs, setTimerSlackNs } from "../sys/_timer_slack.ts";
import { getCurrentAioContext } from "../aio/current.ts";
import { getMainAioContext, mainLoopWaitInfo } from "../aio/_main_context.ts";
import { EventNotifier } from "../aio/event_notifier.ts";
import type { QEMUBH } from "../aio/bh.ts";
import { clockGetNs, QEMUClockType, SCALE_NS, timerNewNs } from "../aio/timer.ts";
import { GMainContext } from "../glib/main_context.ts";
import { G_IO_IN } from "../glib/constants.ts";
import { idleAdd } from "../glib/idle_source.ts";
import type { GPollFD } from "../glib/gpollfd.ts";
import { close, eventfd, pipe, read, write } from "../sys/fd.ts";
import { getrlimit, RLIMIT_NOFILE } from "../sys/rlimit.ts";
import { SysError } from "../sys/errno.ts";
import { openFdCount, supportedFdMons } from "./_fd_leak.ts";
import {
  fdCountSettles,
  settleDenoFds,
  testOnEachFdMon,
  watchdog,
  withMainLoop,
} from "./_harness.ts";

const ONE = new Uint8Array([1]);
const buf = new Uint8Array(64);

await settleDenoFds();

/** A Worker (from a Blob URL) that sleeps, then schedules a shared BH of ours. */
async function ringFromWorker(bh: QEMUBH, delayMs: number): Promise<void> {
  const fdsBefore = openFdCount();
  const handleUrl = new URL("../aio/handle.ts", import.meta.url).href;
  const code = `import { RemoteAioContext } from "${handleUrl}";
self.onmessage = (e) => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, e.data.delayMs);
  RemoteAioContext.scheduleBh(e.data.bh);
  self.postMessage("rung");
};`;
  const url = URL.createObjectURL(new Blob([code], { type: "application/javascript" }));
  const w = new Worker(url, { type: "module" });
  const { promise, resolve } = Promise.withResolvers<void>();
  w.onmessage = () => {
    w.terminate();
    URL.revokeObjectURL(url);
    resolve();
  };
  w.postMessage({ bh: bh.remote(), delayMs });
  await promise;
  await fdCountSettles(fdsBefore);
}

// ---------------------------------------------------------------------------
// Setup and teardown
// ---------------------------------------------------------------------------

Deno.test("qemuInitMainLoop makes the main and iohandler contexts; cleanup closes every fd", async () => {
  assertThrows(() => qemuGetAioContext(), Error, "not initialized");
  assertThrows(() => mainLoopWait(true), Error, "not initialized");
  for (const fdmon of supportedFdMons()) {
    await withMainLoop(() => {
      const main = qemuGetAioContext();
      const io = iohandlerGetAioContext();
      assert(main !== io);
      assertStrictEquals(main.fdmon, fdmon);
      assertStrictEquals(io.fdmon, fdmon);
      assertStrictEquals(getMainAioContext(), main);
      assertStrictEquals(getCurrentAioContext(), main);
      assertStrictEquals(main.getGSource().getName(), "aio-context");
      assertStrictEquals(iohandlerGetGSource().getName(), "io-handler");
      assertStrictEquals(main.getGSource().getContext(), GMainContext.default());
      assertStrictEquals(iohandlerGetGSource().getContext(), GMainContext.default());
      assertThrows(() => qemuInitMainLoop(), Error, "already initialized");
      while (GMainContext.default().iteration(false));
    }, fdmon);
    assertStrictEquals(getMainAioContext(), null);
    assertStrictEquals(getCurrentAioContext(), null);
  }
  qemuCleanupMainLoop(); // not initialized: nothing to do
});

// ---------------------------------------------------------------------------
// The iohandler context vs a nested poll() of the main context
// ---------------------------------------------------------------------------

testOnEachFdMon(
  "qemuSetFdHandler runs from mainLoopWait, never from a nested poll()",
  async (fdmon) => {
    await withMainLoop(() => {
      const main = qemuGetAioContext();
      const [r, w] = pipe();
      try {
        let n = 0;
        qemuSetFdHandler(r, () => (read(r, buf), n++));
        write(w, ONE);
        // The main context never sees the iohandler's fds.
        main.bhScheduleOneshot(() => {});
        assertStrictEquals(main.poll(true), true);
        assertStrictEquals(main.poll(false), false);
        assertStrictEquals(n, 0);

        // Inside the loop: a BH of the main context polls it (as
        // AIO_WAIT_WHILE does); the handler runs after, from the loop.
        let nestedSaw = -1;
        main.bhScheduleOneshot(() => {
          while (main.poll(false));
          nestedSaw = n;
        });
        mainLoopWait(false);
        assertStrictEquals(nestedSaw, 0);
        assertStrictEquals(n, 1);

        // Event notifiers too.
        using e = EventNotifier.create();
        let en = 0;
        eventNotifierSetHandler(e, (x) => (x.testAndClear(), en++));
        e.set();
        assertStrictEquals(main.poll(false), false);
        assertStrictEquals(en, 0);
        mainLoopWait(true);
        assertStrictEquals(en, 1);
        eventNotifierSetHandler(e, null);

        // Removal.
        qemuSetFdHandler(r, null);
        write(w, ONE);
        mainLoopWait(true);
        assertStrictEquals(n, 1);
        assertThrows(() => qemuSetFdHandler(-1, () => {}), RangeError);
        assertThrows(() => qemuSetFdHandler(r, 5 as unknown as () => void), TypeError);
      } finally {
        close(r);
        close(w);
      }
    }, fdmon);
  },
);

// ---------------------------------------------------------------------------
// Waking a blocked mainLoopWait
// ---------------------------------------------------------------------------

testOnEachFdMon(
  "a blocked mainLoopWait(false) wakes for qemuNotifyEvent, a Worker, a timer",
  async (fdmon) => {
    await withMainLoop(async () => {
      const wd = watchdog();
      // Nothing to do: a non-blocking wait returns.
      mainLoopWait(true);
      // A pending kick: the blocking wait returns at once.
      qemuNotifyEvent();
      mainLoopWait(false);
      assertFalse(wd.fired);

      // Another thread rings the main context's doorbell (a shared BH
      // scheduled through its handle) while this thread blocks in ppoll.
      let ran = false;
      const bh = qemuGetAioContext().bhNew(() => ran = true, { shared: true });
      const rung = ringFromWorker(bh, 30);
      while (!ran && !wd.fired) mainLoopWait(false);
      assert(ran);
      assertFalse(wd.fired);
      await rung;
      bh.delete();

      // A main-loop timer bounds the wait (its deadline joins the timeout).
      let fired = 0;
      const t = timerNewNs(QEMUClockType.REALTIME, () => fired++);
      const expire = clockGetNs(QEMUClockType.REALTIME) + 20e6;
      t.modNs(expire);
      while (fired === 0 && !wd.fired) mainLoopWait(false);
      assertStrictEquals(fired, 1);
      assert(clockGetNs(QEMUClockType.REALTIME) >= expire, "a main-loop timer fired early");
      assertFalse(wd.fired);
      wd.timer.del();
    }, fdmon);
  },
);

// ---------------------------------------------------------------------------
// MainLoopPoll notifiers
// ---------------------------------------------------------------------------

Deno.test("MainLoopPoll notifiers: fill, ok, timeout, order, removal", async () => {
  await withMainLoop(() => {
    const seen: string[] = [];
    const fd = eventfd(1);
    try {
      const pfd: GPollFD = { fd, events: G_IO_IN, revents: 0 };
      let revents = -1;
      const a = (p: MainLoopPoll) => {
        seen.push(`a${p.state}:${p.timeout}`);
        if (p.state === MAIN_LOOP_POLL_FILL) p.pollfds.push(pfd);
        if (p.state === MAIN_LOOP_POLL_OK) revents = pfd.revents;
      };
      const b = (p: MainLoopPoll) => seen.push(`b${p.state}`);
      mainLoopPollAddNotifier(a);
      mainLoopPollAddNotifier(b);
      mainLoopPollAddNotifier(b); // already there
      mainLoopWait(true);
      // Newest first; a non-blocking iteration fills with timeout 0.
      assertEquals(seen, [
        `b${MAIN_LOOP_POLL_FILL}`,
        `a${MAIN_LOOP_POLL_FILL}:0`,
        `b${MAIN_LOOP_POLL_OK}`,
        `a${MAIN_LOOP_POLL_OK}:0`,
      ]);
      assertStrictEquals(revents & G_IO_IN, G_IO_IN);

      // A blocking one fills with UINT32_MAX (no limit); the eventfd is
      // readable, so it returns at once.
      seen.length = 0;
      mainLoopWait(false);
      assertStrictEquals(seen[1], `a${MAIN_LOOP_POLL_FILL}:${0xffffffff}`);
      mainLoopPollRemoveNotifier(a);
      mainLoopPollRemoveNotifier(b);
      mainLoopPollRemoveNotifier(b);

      // A notifier may shorten a blocking wait (nothing else would end it).
      let turns = 0;
      const cap = (p: MainLoopPoll) => {
        if (p.state === MAIN_LOOP_POLL_FILL) {
          turns++;
          p.timeout = 5;
        }
      };
      mainLoopPollAddNotifier(cap);
      while (GMainContext.default().iteration(false));
      mainLoopWait(false);
      assertStrictEquals(turns, 1);
      mainLoopPollRemoveNotifier(cap);

      const bad = (p: MainLoopPoll) => {
        if (p.state === MAIN_LOOP_POLL_FILL) p.timeout = -1;
      };
      mainLoopPollAddNotifier(bad);
      assertThrows(() => mainLoopWait(true), RangeError);
      mainLoopPollRemoveNotifier(bad);
      mainLoopWait(true);
    } finally {
      close(fd);
    }
  });
});

Deno.test("a failed poll reaches the notifiers as MAIN_LOOP_POLL_ERR, then throws", async () => {
  await withMainLoop(async () => {
    // More entries than RLIMIT_NOFILE: poll(2) fails with EINVAL.
    const limit = getrlimit(RLIMIT_NOFILE).soft;
    if (!Number.isFinite(limit) || limit > 1 << 20) return;
    const states: number[] = [];
    const flood = (p: MainLoopPoll) => {
      states.push(p.state);
      if (p.state === MAIN_LOOP_POLL_FILL) {
        for (let i = 0; i <= limit; i++) p.pollfds.push({ fd: -1, events: 0, revents: 0 });
      }
    };
    mainLoopPollAddNotifier(flood);
    const e = assertThrows(() => mainLoopWait(true), SysError) as SysError;
    assertStrictEquals(e.code, "EINVAL");
    assertEquals(states, [MAIN_LOOP_POLL_FILL, MAIN_LOOP_POLL_ERR]);
    // The parked wait loses errno on the pool thread; it is found again.
    states.length = 0;
    const e2 = await assertRejects(() => mainLoopWaitAsync(), SysError) as SysError;
    assertStrictEquals(e2.code, "EINVAL");
    assertEquals(states, [MAIN_LOOP_POLL_FILL, MAIN_LOOP_POLL_ERR]);
    mainLoopPollRemoveNotifier(flood);
    mainLoopWait(true);
  });
});

// ---------------------------------------------------------------------------
// The async run beside Deno's loop
// ---------------------------------------------------------------------------

testOnEachFdMon(
  "mainLoopRun interleaves with Deno timers and fetch, busy or idle",
  async (fdmon) => {
    await withMainLoop(async () => {
      const client = Deno.createHttpClient({});
      const server = Deno.serve(
        { hostname: "127.0.0.1", port: 0, onListen: () => {} },
        () => new Response("pong"),
      );
      try {
        const url = `http://127.0.0.1:${server.addr.port}/`;
        const before = asyncWaitStats.calls;
        for (const busy of [true, false]) {
          const main = qemuGetAioContext();
          let bhRuns = 0;
          let timerRuns = 0;
          let loopTurns = 0;
          const turns = (p: MainLoopPoll) => {
            if (p.state === MAIN_LOOP_POLL_FILL) loopTurns++;
          };
          mainLoopPollAddNotifier(turns);
          // Busy: a BH that always reschedules itself keeps the loop's
          // timeout at 0. A main-loop timer ticks every 2 ms either way.
          const bh = main.bhNew(() => {
            bhRuns++;
            if (busy) bh.schedule();
          });
          bh.schedule();
          const t = timerNewNs(QEMUClockType.REALTIME, () => {
            timerRuns++;
            t.modNs(clockGetNs(QEMUClockType.REALTIME) + 2e6);
          });
          t.modNs(clockGetNs(QEMUClockType.REALTIME) + 2e6);

          let denoTicks = 0;
          let fetches = 0;
          let loopTurnsAtFirstTick = -1;
          const deno = (async () => {
            try {
              for (let i = 0; i < 10; i++) {
                await new Promise((r) => setTimeout(r, 1));
                if (loopTurnsAtFirstTick < 0) loopTurnsAtFirstTick = loopTurns;
                denoTicks++;
                const res = await fetch(url, { client });
                assertStrictEquals(await res.text(), "pong");
                fetches++;
              }
            } finally {
              mainLoopQuit();
            }
          })();
          await mainLoopRun();
          await deno;
          mainLoopPollRemoveNotifier(turns);
          t.del();
          bh.delete();
          assertStrictEquals(denoTicks, 10);
          assertStrictEquals(fetches, 10);
          assertGreater(bhRuns, 0);
          assertGreater(timerRuns, 0);
          assertGreater(loopTurns, loopTurnsAtFirstTick);
          if (busy) assertGreater(bhRuns, 10);
        }
        // Parked waits happened, one at a time, and none is left.
        assertGreater(asyncWaitStats.calls, before);
        assertStrictEquals(asyncWaitStats.maxInFlight, 1);
        assertStrictEquals(asyncWaitStats.inFlight, 0);
      } finally {
        await server.shutdown();
        client.close();
        // The client's socket is closed by a task of Deno's loop.
        await new Promise((r) => setTimeout(r, 10));
      }
    }, fdmon);
  },
);

Deno.test("work from Deno callbacks cuts the parked wait short (BH, timers, handler, notify, GLib)", async () => {
  await withMainLoop(async () => {
    const main = qemuGetAioContext();
    const log: string[] = [];
    const [r, w] = pipe();
    try {
      const wd = watchdog();
      const steps = [
        () => main.bhScheduleOneshot(() => log.push("bh")),
        () => {
          // Arming a main-loop timer notifies the loop, which recomputes
          // its timeout.
          const t = timerNewNs(QEMUClockType.REALTIME, () => log.push("timer"));
          t.modNs(clockGetNs(QEMUClockType.REALTIME) + 1e6);
        },
        () => {
          qemuSetFdHandler(r, () => {
            read(r, buf);
            log.push("fd");
            qemuSetFdHandler(r, null);
          });
          write(w, ONE);
        },
        () => {
          const t = main.timerNew(QEMUClockType.REALTIME, 1, () => log.push("ctx timer"));
          t.mod(clockGetNs(QEMUClockType.REALTIME) + 1e6);
        },
        () => {
          qemuNotifyEvent();
          log.push("notify");
        },
        // A plain GLib source: only the GMainContext's wakeup fd can end
        // the wait for it, so that fd is in the parked poll set.
        () => idleAdd(() => (log.push("glib idle"), false)),
      ];
      const done = (async () => {
        for (const step of steps) {
          await new Promise((res) => setTimeout(res, 5));
          const n = log.length;
          step();
          // The parked wait returned for that work (or the watchdog fired
          // after 10 s, which the test rejects).
          while (log.length === n) await new Promise((res) => setTimeout(res, 1));
        }
        mainLoopQuit();
      })();
      await mainLoopRun();
      await done;
      assertEquals(log, ["bh", "timer", "fd", "ctx timer", "notify", "glib idle"]);
      assertFalse(wd.fired);
      wd.timer.del();
    } finally {
      close(r);
      close(w);
    }
  });
});

Deno.test("mainLoopRun stops cleanly on quit and on abort, leaving no parked wait", async () => {
  await withMainLoop(async () => {
    // Quit from a Deno timer while the loop is parked (idle).
    setTimeout(() => mainLoopQuit(), 20);
    await mainLoopRun();
    assertStrictEquals(asyncWaitStats.inFlight, 0);
    assertFalse(mainLoopIsRunning());

    // Abort.
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 20);
    await mainLoopRun({ signal: ac.signal });
    assertStrictEquals(asyncWaitStats.inFlight, 0);
    // Already aborted: returns without running.
    await mainLoopRun({ signal: ac.signal });
    await mainLoopRun({ signal: AbortSignal.abort() });

    // Quit from inside the loop (a BH).
    qemuGetAioContext().bhScheduleOneshot(() => mainLoopQuit());
    await mainLoopRun();

    // A callback that throws ends the run with its error; the loop stays usable.
    qemuGetAioContext().bhScheduleOneshot(() => {
      throw new Error("boom");
    });
    await assertRejects(() => mainLoopRun(), Error, "boom");
    assertFalse(mainLoopIsRunning());
    assertStrictEquals(asyncWaitStats.inFlight, 0);
    let ran = false;
    qemuGetAioContext().bhScheduleOneshot(() => ran = true);
    mainLoopWait(true);
    assert(ran);

    // While it runs (parked): no second run, no second parked wait, no
    // synchronous wait, no cleanup.
    const run = mainLoopRun();
    await new Promise((res) => setTimeout(res, 5));
    assert(mainLoopIsRunning());
    assertStrictEquals(asyncWaitStats.inFlight, 1);
    await assertRejects(() => mainLoopRun(), Error, "already running");
    await assertRejects(() => mainLoopWaitAsync(), Error, "parked");
    assertThrows(() => mainLoopWait(true), Error, "parked");
    assertThrows(() => qemuCleanupMainLoop(), Error, "while it runs");
    await assertRejects(
      () => mainLoopRun({ signal: 5 as unknown as AbortSignal }),
      TypeError,
    );
    mainLoopQuit();
    await run;
    assertStrictEquals(asyncWaitStats.inFlight, 0);
    assertStrictEquals(asyncWaitStats.maxInFlight, 1);
  });
});

Deno.test("mainLoopWaitAsync parks one wait per iteration and is woken like the run", async () => {
  await withMainLoop(async () => {
    const calls = asyncWaitStats.calls;
    let ran = false;
    setTimeout(() => qemuGetAioContext().bhScheduleOneshot(() => ran = true), 10);
    while (!ran) await mainLoopWaitAsync();
    assertGreater(asyncWaitStats.calls, calls);
    // Ready work: the iteration still goes through one parked poll
    // (timeout 0), so a loop of these never starves Deno's loop.
    const c2 = asyncWaitStats.calls;
    qemuGetAioContext().bhScheduleOneshot(() => {});
    await mainLoopWaitAsync();
    assertStrictEquals(asyncWaitStats.calls, c2 + 1);
    assertStrictEquals(asyncWaitStats.inFlight, 0);
  });
});

// ---------------------------------------------------------------------------
// Timer precision
// ---------------------------------------------------------------------------

Deno.test("qemuInitMainLoop sets a 1 ns timer slack; cleanup restores the previous one", async () => {
  const original = getTimerSlackNs();
  try {
    setTimerSlackNs(77_000);
    await withMainLoop(() => {
      assertStrictEquals(getTimerSlackNs(), 1);
    });
    assertStrictEquals(getTimerSlackNs(), 77_000);
    // A failed init restores it too.
    const cur = qemuInitMainLoop();
    try {
      assertThrows(() => qemuInitMainLoop(), Error, "already initialized");
      assertStrictEquals(getTimerSlackNs(), 1);
    } finally {
      cur[Symbol.dispose]();
    }
    assertStrictEquals(getTimerSlackNs(), 77_000);
  } finally {
    setTimerSlackNs(original);
  }
});

Deno.test("an AioContext timer's wait reaches the main loop in ns, not rounded up to ms", async () => {
  await withMainLoop(() => {
    const main = qemuGetAioContext();
    const gctx = GMainContext.default();
    const RT = QEMUClockType.REALTIME;
    const t = main.timerNew(RT, SCALE_NS, () => {});
    // 5.5 ms: rounded up, the wait would be 6 ms; whatever the machine's
    // delays, the unrounded one is at most 5.5 ms.
    for (let i = 0; i < 3; i++) mainLoopWait(true);
    t.mod(clockGetNs(RT) + 5_500_000);
    const fds: GPollFD[] = [];
    gctx.acquire();
    try {
      const { priority } = gctx.prepare();
      const q = gctx.query(priority, fds);
      assert(q.timeoutNs <= 5_500_000, `timeout ${q.timeoutNs} ns`);
      assert(q.timeoutNs > 0);
      assertStrictEquals(q.timeoutMs, q.timeoutNs === 0 ? 0 : Math.ceil(q.timeoutNs / 1e6));
      gctx.check(priority, fds, q.count);
    } finally {
      gctx.release();
    }
    t.del();
  });
});

Deno.test("a 300 us timer makes mainLoopWait poll for under 1 ms, not a rounded-up 1 ms", async () => {
  // The timeout the iteration hands its poll, as recorded by the loop: a
  // wall-clock duration would be at the mercy of a loaded machine.
  await withMainLoop(() => {
    const RT = QEMUClockType.REALTIME;
    const main = qemuGetAioContext();
    let fired = false;
    const onMain = main.timerNew(RT, SCALE_NS, () => fired = true);
    const global = timerNewNs(RT, () => fired = true);
    for (const t of [onMain, global]) {
      for (let i = 0; i < 3; i++) mainLoopWait(true);
      fired = false;
      const waits: number[] = [];
      t.modNs(clockGetNs(RT) + 300_000);
      while (!fired) {
        mainLoopWait(false);
        waits.push(mainLoopWaitInfo.timeoutNs);
      }
      // Every wait is below 300 us; rounded up to ms, the first would be
      // 1 ms (or 0 if the machine stalled past the deadline).
      for (const ns of waits) assert(ns >= 0 && ns <= 300_000, `waits ${waits}`);
    }
    onMain.del();
    global.del();
  });
});

/** Counts the iterations (fill-phase notifications) while `fn` runs. */
async function countIterations(fn: () => unknown | Promise<unknown>): Promise<number> {
  let n = 0;
  const counter = (p: MainLoopPoll): void => {
    if (p.state === MAIN_LOOP_POLL_FILL) n++;
  };
  mainLoopPollAddNotifier(counter);
  try {
    await fn();
  } finally {
    mainLoopPollRemoveNotifier(counter);
  }
  return n;
}

Deno.test("a main-loop timer re-armed from its callback costs no extra iteration", async () => {
  await withMainLoop(async () => {
    const RT = QEMUClockType.REALTIME;
    const FIRES = 5;
    let fires = 0;
    const t = timerNewNs(RT, () => {
      if (++fires < FIRES) t.modNs(clockGetNs(RT) + 2_000_000);
      else if (mainLoopIsRunning()) mainLoopQuit();
    });
    // Synchronous loop: one iteration per fire (the old wake-up made two).
    t.modNs(clockGetNs(RT) + 2_000_000);
    const sync = await countIterations(() => {
      while (fires < FIRES) mainLoopWait(false);
    });
    assert(sync <= FIRES + 1, `${sync} iterations for ${FIRES} fires`);
    // The parked run: the same.
    fires = 0;
    t.modNs(clockGetNs(RT) + 2_000_000);
    const parked = await countIterations(() => mainLoopRun());
    assertStrictEquals(fires, FIRES);
    assert(parked <= FIRES + 1, `${parked} iterations for ${FIRES} fires`);
    // Re-armed from outside an iteration, the timer still wakes the loop
    // (qemu_notify_event): this wait returns at once, not in 60 s.
    const w = watchdog();
    t.modNs(clockGetNs(RT) + 60_000_000_000);
    mainLoopWait(false);
    assertFalse(w.fired);
    w.timer.del();
    t.del();
  });
});

Deno.test("the parked wait ends timers on time: never early, short and long, and still cut short", async () => {
  await withMainLoop(async () => {
    const RT = QEMUClockType.REALTIME;
    const w = watchdog();
    const log: string[] = [];
    const early: number[] = [];
    const at = (name: string, delayNs: number) => {
      const expire = clockGetNs(RT) + delayNs;
      const t = timerNewNs(RT, () => {
        if (clockGetNs(RT) < expire) early.push(expire);
        log.push(name);
        t.del();
        if (name === "long") mainLoopQuit();
      });
      t.modNs(expire);
      return t;
    };
    // Below the margin (a synchronous wait), above it (timerfd + tail),
    // and one that a Deno timer's BH must cut short long before it is due.
    assertGreater(parkedWaitMarginNs(), 20_000);
    at("short", 20_000);
    at("mid", 5_000_000);
    // 1 s: far enough that a Deno timer on a loaded machine still comes first.
    const long = at("long", 1_000_000_000);
    setTimeout(() => qemuGetAioContext().bhScheduleOneshot(() => log.push("bh")), 30);
    const calls = asyncWaitStats.calls;
    await mainLoopRun();
    assertEquals(log, ["short", "mid", "bh", "long"]);
    assertEquals(early, []);
    assertGreater(asyncWaitStats.calls, calls);
    assertStrictEquals(asyncWaitStats.inFlight, 0);
    assertFalse(long.pending);
    assertFalse(w.fired);
    w.timer.del();
  });
});

Deno.test("timers due sooner than the parked wait's hop never keep Deno's loop from turning", async () => {
  // Such short waits are synchronous while the run is busy, but it still
  // parks (a turn of Deno's loop) at least once per ms of work: a Deno
  // timer runs within a few parked waits.
  await withMainLoop(async () => {
    const RT = QEMUClockType.REALTIME;
    let denoRan = false;
    let parksAtStart = 0;
    let parksWhenDenoRan = -1;
    const t = timerNewNs(RT, () => {
      if (denoRan || asyncWaitStats.calls - parksAtStart > 200) return mainLoopQuit();
      t.modNs(clockGetNs(RT) + 20_000);
    });
    setTimeout(() => {
      denoRan = true;
      parksWhenDenoRan = asyncWaitStats.calls - parksAtStart;
    }, 0);
    parksAtStart = asyncWaitStats.calls;
    t.modNs(clockGetNs(RT) + 20_000);
    await mainLoopRun();
    t.del();
    assert(denoRan, "a Deno timer never ran while the loop ran short timers");
    assert(parksWhenDenoRan <= 200);
  });
});

// ---------------------------------------------------------------------------
// Signals
// ---------------------------------------------------------------------------

Deno.test("a signal sent while the async run is active is handled inside the loop", async () => {
  await withMainLoop(async () => {
    const got: { sig: string; source: string | null; depth: number }[] = [];
    const handler = (sig: Deno.Signal) => {
      got.push({
        sig,
        source: GMainContext.currentSource()?.getName() ?? null,
        depth: GMainContext.depth(),
      });
      mainLoopQuit();
    };
    mainLoopAddSignalHandler("SIGUSR2", handler);
    mainLoopAddSignalHandler("SIGUSR2", handler); // once only
    setTimeout(() => Deno.kill(Deno.pid, "SIGUSR2"), 10);
    await mainLoopRun();
    // Run from a BH of the main context, dispatched by its GSource.
    assertEquals(got, [{ sig: "SIGUSR2", source: "aio-context", depth: 1 }]);

    // Removed: a later signal is not handled by it (a second listener
    // keeps the signal from killing the process meanwhile).
    mainLoopRemoveSignalHandler("SIGUSR2", handler);
    let other = 0;
    const h2 = () => {
      other++;
      mainLoopQuit();
    };
    mainLoopAddSignalHandler("SIGUSR2", h2);
    setTimeout(() => Deno.kill(Deno.pid, "SIGUSR2"), 10);
    await mainLoopRun();
    assertStrictEquals(got.length, 1);
    assertStrictEquals(other, 1);
    // Cleanup removes the rest (h2).
  });
});

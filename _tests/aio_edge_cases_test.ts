// Edge cases of the AioContext loop where QEMU's behaviour is easy to miss,
// each run on every fd monitor this machine supports: the shared ending of
// aio_poll and aio_dispatch, io_uring's submit-then-reap wait, far-future
// deadlines, throwing fd handlers, closed EventNotifiers, adaptive polling
// order, and bad input.
import {
  assert,
  assertEquals,
  assertFalse,
  assertGreaterOrEqual,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import type { AioContext } from "../aio/aio_context.ts";
import { EventNotifier } from "../aio/event_notifier.ts";
import { clockGetNs, QEMUClockType, type QEMUTimer, SCALE_MS, SCALE_NS } from "../aio/timer.ts";
import { GMainContext } from "../glib/main_context.ts";
import { close, eventfd, read, write } from "../sys/fd.ts";
import { PollFdArray, POLLIN, pollNs } from "../sys/poll.ts";
import { clockGettimeNs } from "../sys/clock.ts";
import { supportedFdMons } from "./_fd_leak.ts";
import { onCtx } from "./_harness.ts";

const ONE = new Uint8Array([1]);
const BUF = new Uint8Array(4096);

/** Reads everything an fd holds right now; returns the byte count. */
function drain(fd: number): number {
  let total = 0;
  for (;;) {
    const n = read(fd, BUF);
    if (n <= 0) return total;
    total += n;
  }
}

/**
 * A HOST-clock timer five seconds out: a poll that blocks when it should
 * not is ended by it (and `fired` shows it), so a broken wake-up fails the
 * test instead of hanging it.
 */
function watchdog(ctx: AioContext): { fired: boolean; timer: QEMUTimer } {
  const w = { fired: false, timer: null as unknown as QEMUTimer };
  w.timer = ctx.timerNew(QEMUClockType.HOST, SCALE_MS, () => w.fired = true, { name: "watchdog" });
  w.timer.mod(clockGetNs(QEMUClockType.HOST) / SCALE_MS + 5000);
  return w;
}

for (const fdmon of supportedFdMons()) {
  const tag = `[${fdmon}]`;

  // ---- issue 8 item 4: one ending for aio_poll and aio_dispatch ----

  Deno.test(
    `AioContext edge: poll() and the GSource dispatch both end BHs, fd handlers, timers ${tag}`,
    onCtx(fdmon, (ctx, fds) => {
      const [r, w] = fds.pipe();
      const log: string[] = [];
      ctx.setFdHandler(r, { read: () => (drain(r), log.push("fd")) });
      const t = ctx.timerNew(QEMUClockType.REALTIME, SCALE_NS, () => log.push("timer"));
      const arm = (): void => {
        write(w, ONE);
        ctx.bhScheduleOneshot(() => log.push("bh"));
        t.mod(clockGetNs(QEMUClockType.REALTIME) - 1);
      };
      assertFalse(ctx.poll(false));
      arm();
      assert(ctx.poll(false));
      assertEquals(log, ["bh", "fd", "timer"]);
      log.length = 0;
      const gctx = new GMainContext();
      try {
        ctx.getGSource().attach(gctx);
        arm();
        // One GLib iteration: prepare sees the due BH and timer, the poll
        // sees the fd, dispatch is aio_dispatch.
        assert(gctx.iteration(false));
        assertEquals(log, ["bh", "fd", "timer"]);
        assertFalse(ctx.poll(false), "nothing left, nothing runs twice");
      } finally {
        gctx.destroy();
      }
      ctx.setFdHandler(r, null);
    }),
  );

  // ---- issue 9 item 3: io_uring submits before it reaps ----

  Deno.test(
    `AioContext edge: a drained pipe's handler is not called again after a blocking poll ${tag}`,
    onCtx(fdmon, (ctx, fds) => {
      const [r, w] = fds.pipe();
      const wd = watchdog(ctx);
      const reads: number[] = [];
      ctx.setFdHandler(r, { read: () => reads.push(drain(r)) });
      assertFalse(ctx.poll(false), "arms the fd; nothing ready");
      write(w, ONE);
      // On io_uring the completion is posted before this wait begins.
      assert(ctx.poll(true));
      assertEquals(reads, [1]);
      // The pipe is empty: its handler must not run (it would read nothing).
      assertFalse(ctx.poll(false), "an empty pipe reported as progress");
      assertFalse(ctx.poll(false));
      assertEquals(reads, [1]);
      assertFalse(wd.fired);
      wd.timer.del();
      ctx.setFdHandler(r, null);
    }),
  );

  Deno.test(
    `AioContext edge: a handler still ready at its re-arm runs in the same blocking poll ${tag}`,
    onCtx(fdmon, (ctx, fds) => {
      const [ra, wa] = fds.pipe();
      const [rb, wb] = fds.pipe();
      const wd = watchdog(ctx);
      const log: string[] = [];
      // A reads one byte per call, so its fd stays readable after a call.
      ctx.setFdHandler(ra, { read: () => log.push(`a${read(ra, BUF, 1)}`) });
      ctx.setFdHandler(rb, { read: () => log.push(`b${drain(rb)}`) });
      assertFalse(ctx.poll(false));
      write(wa, new Uint8Array([1, 2]));
      assert(ctx.poll(true));
      assertEquals(log, ["a1"]);
      // A is still readable; B's completion is posted before the next wait
      // (io_uring), whose re-arm of A must be submitted and reaped with it.
      write(wb, ONE);
      assert(ctx.poll(true));
      assertEquals(log.slice(1).sort(), ["a1", "b1"]);
      assertFalse(ctx.poll(false));
      assertEquals(log.length, 3);
      assertFalse(wd.fired);
      wd.timer.del();
      ctx.setFdHandler(ra, null);
      ctx.setFdHandler(rb, null);
    }),
  );

  // ---- issue 9 item 6: a throwing fd handler does not starve the loop ----

  Deno.test(
    `AioContext edge: a handler that throws without draining starves neither a ready handler nor a due timer ${tag}`,
    onCtx(fdmon, (ctx, fds) => {
      const [ra, wa] = fds.pipe();
      const [rb, wb] = fds.pipe();
      const wd = watchdog(ctx);
      let aCalls = 0;
      let bCalls = 0;
      let bBytes = 0;
      let timerRuns = 0;
      // Registered first: fdmon-poll dispatches it first; on epoll and
      // io_uring the order is the kernel's, and the timer starves either way.
      ctx.setFdHandler(ra, {
        read: () => {
          aCalls++;
          throw new Error("a boom");
        },
      });
      ctx.setFdHandler(rb, { read: () => (bCalls++, bBytes += drain(rb)) });
      const t = ctx.timerNew(QEMUClockType.REALTIME, SCALE_NS, () => timerRuns++);
      write(wa, ONE);
      write(wb, ONE);
      t.modNs(clockGetNs(QEMUClockType.REALTIME) - 1);
      let throws = 0;
      for (let i = 0; i < 6; i++) {
        try {
          ctx.poll(true);
        } catch (e) {
          assertEquals((e as Error).message, "a boom");
          throws++;
        }
      }
      assertEquals([bCalls, bBytes], [1, 1], "the second handler runs once, and only once");
      assertEquals(timerRuns, 1, "the due timer runs once, and only once");
      assertEquals(aCalls, throws, "every call of the thrower threw out of poll()");
      assertGreaterOrEqual(throws, 2, "the undrained fd keeps its handler busy, as in QEMU");
      assertFalse(wd.fired);
      // Once the thrower is gone the context is quiet: nothing was left over.
      ctx.setFdHandler(ra, null);
      assertFalse(ctx.poll(false));
      assertEquals([bCalls, timerRuns], [1, 1]);
      wd.timer.del();
      ctx.setFdHandler(rb, null);
    }),
  );

  Deno.test(
    `AioContext edge: beside a throwing handler, handlers and timers keep their rate ${tag}`,
    onCtx(fdmon, (ctx, fds) => {
      const [ra, wa] = fds.pipe();
      const [rb, wb] = fds.pipe();
      const wd = watchdog(ctx);
      let bBytes = 0;
      let bCalls = 0;
      let timerRuns = 0;
      ctx.setFdHandler(ra, {
        read: () => {
          throw new Error("a boom");
        },
      });
      ctx.setFdHandler(rb, { read: () => (bCalls++, bBytes += drain(rb)) });
      // A periodic timer, due again as soon as it ran.
      const t = ctx.timerNew(QEMUClockType.REALTIME, SCALE_NS, () => {
        timerRuns++;
        t.modNs(clockGetNs(QEMUClockType.REALTIME) - 1);
      });
      t.modNs(clockGetNs(QEMUClockType.REALTIME) - 1);
      write(wa, ONE);
      const polls = 20;
      for (let i = 0; i < polls; i++) {
        write(wb, ONE);
        try {
          ctx.poll(true);
        } catch (e) {
          assertEquals((e as Error).message, "a boom");
        }
      }
      // Every round either throws or finishes the one that threw: the
      // others get at least every second poll.
      assertGreaterOrEqual(timerRuns, polls / 2 - 1);
      assertGreaterOrEqual(bCalls, polls / 2 - 1);
      t.del();
      ctx.setFdHandler(ra, null);
      while (ctx.poll(false));
      assertEquals(bBytes, polls, "no byte of the second pipe was lost");
      assertFalse(wd.fired);
      wd.timer.del();
      ctx.setFdHandler(rb, null);
    }),
  );

  Deno.test(
    `AioContext edge: through the GSource, a throwing handler starves no other handler or timer ${tag}`,
    onCtx(fdmon, (ctx, fds) => {
      const [ra, wa] = fds.pipe();
      const [rb, wb] = fds.pipe();
      let bBytes = 0;
      let timerRuns = 0;
      ctx.setFdHandler(ra, {
        read: () => {
          throw new Error("a boom");
        },
      });
      ctx.setFdHandler(rb, { read: () => bBytes += drain(rb) });
      const t = ctx.timerNew(QEMUClockType.REALTIME, SCALE_NS, () => timerRuns++);
      write(wa, ONE);
      write(wb, ONE);
      t.modNs(clockGetNs(QEMUClockType.REALTIME) - 1);
      const gctx = new GMainContext();
      try {
        ctx.getGSource().attach(gctx);
        for (let i = 0; i < 6; i++) {
          try {
            gctx.iteration(false);
          } catch (e) {
            assertEquals((e as Error).message, "a boom");
          }
        }
        assertEquals([bBytes, timerRuns], [1, 1]);
      } finally {
        gctx.destroy();
      }
      ctx.setFdHandler(ra, null);
      ctx.setFdHandler(rb, null);
    }),
  );

  // ---- issue 9 item 7: a closed EventNotifier can be unregistered ----

  Deno.test(
    `AioContext edge: a notifier closed while registered is unregistered afterwards ${tag}`,
    onCtx(fdmon, (ctx, fds) => {
      const n = EventNotifier.create();
      const oldFd = n.fd;
      let calls = 0;
      ctx.setEventNotifier(n, () => (calls++, n.testAndClear()));
      n.set();
      assert(ctx.poll(false));
      assertEquals(calls, 1);
      n.close();
      ctx.setEventNotifier(n, null);
      assertEquals(ctx.info().handlers.map((h) => h.notifier), [true], "the dead fd is gone");
      assertStrictEquals(ctx.fdmon, fdmon, "unregistering a closed fd kept the fd monitor");
      ctx.setEventNotifier(n, null); // a second time: nothing left, nothing thrown
      // No dead fd makes a blocking poll return early (fdmon-poll would get
      // POLLNVAL at once): the first poll takes the kick of the timer's
      // arming, the second waits for the timer.
      let fired = false;
      const t = ctx.timerNew(QEMUClockType.REALTIME, SCALE_MS, () => fired = true);
      t.mod(clockGetNs(QEMUClockType.REALTIME) / SCALE_MS + 20);
      for (let i = 0; i < 2 && !fired; i++) ctx.poll(true);
      assert(fired, "a blocking poll returned before its only deadline");
      // The fd number is free again and may be reused; a new registration
      // on it is not the closed notifier's and survives its unregistering.
      const [r, w] = fds.pipe();
      let got = 0;
      ctx.setFdHandler(r, { read: () => got += drain(r) });
      ctx.setEventNotifier(n, null);
      write(w, ONE);
      assert(ctx.poll(false));
      assertEquals(got, 1, `the pipe (fd ${r}, notifier had ${oldFd}) kept its handler`);
      assertEquals(calls, 1);
      ctx.setFdHandler(r, null);
    }),
  );

  Deno.test(
    `AioContext edge: a notifier closed while registered, its fd reused and registered ${tag}`,
    onCtx(fdmon, (ctx, fds) => {
      const n = EventNotifier.create();
      ctx.setEventNotifier(n, () => n.testAndClear());
      const oldFd = n.fd;
      n.close();
      // The lowest free fd is the notifier's old one (unless another thread
      // took it): registering it replaces the stale registration.
      const [r, w] = fds.pipe();
      let got = 0;
      ctx.setFdHandler(r, { read: () => got += drain(r) });
      ctx.setEventNotifier(n, null);
      write(w, ONE);
      assert(ctx.poll(false));
      assertEquals(got, 1, `fd ${r} (notifier had ${oldFd}) kept its handler`);
      ctx.setFdHandler(r, null);
      assertEquals(ctx.info().handlers.length, 1);
    }),
  );

  // ---- issue 9 item 12: bad input gets typed errors, the context works on ----

  Deno.test(
    `AioContext edge: bad fd handler, notifier and poll parameters are refused clearly ${tag}`,
    onCtx(fdmon, (ctx, fds) => {
      const [r, w] = fds.pipe();
      const log: string[] = [];
      const bh = ctx.bhNew(() => log.push("bh"));
      const before = ctx.info().handlers.length;
      for (const fd of [2 ** 31, 2 ** 32 + 3, 2 ** 53]) {
        assertThrows(
          () => ctx.setFdHandler(fd, { read: () => {} }),
          RangeError,
          "fd must be an open file descriptor, an integer from 0 to 2147483647",
        );
        assertThrows(() => ctx.setFdHandler(fd, null), RangeError, "fd");
      }
      assertThrows(
        () => ctx.setFdHandler("3" as unknown as number, { read: () => {} }),
        TypeError,
        "fd must be a file descriptor number",
      );
      // A string instead of the handlers object is not a removal.
      ctx.setFdHandler(r, { read: () => log.push(`r${drain(r)}`) });
      for (const bad of ["read", 42, true, [() => {}], () => {}]) {
        const e = assertThrows(
          () => ctx.setFdHandler(r, bad as unknown as null),
          TypeError,
          "handlers must be an object such as { read: () => {...} }, or null",
        );
        assert((e as Error).message.startsWith("setFdHandler:"));
      }
      assertEquals(ctx.info().handlers.length, before + 1, "r is still registered");
      assertThrows(
        () => ctx.setPollParams(null as unknown as { maxNs: number }),
        TypeError,
        "params must be an object such as { maxNs: 32768 }, got null",
      );
      assertThrows(() => ctx.setPollParams(5 as unknown as { maxNs: number }), TypeError, "params");
      assertThrows(
        () => ctx.setPollParams({ maxNs: "1000" as unknown as number }),
        TypeError,
        "params.maxNs must be a number",
      );
      assertEquals(ctx.pollParams, { maxNs: 0, grow: 0, shrink: 0 });
      const closed = EventNotifier.create();
      closed.close();
      assertThrows(
        () => ctx.setEventNotifier(closed, () => {}),
        TypeError,
        "notifier is closed; register an open one (EventNotifier.create())",
      );
      assertThrows(
        () => ctx.setEventNotifier({ fd: r } as unknown as EventNotifier, () => {}),
        TypeError,
        "notifier must be an EventNotifier",
      );
      using open = EventNotifier.create();
      assertThrows(
        () => ctx.setEventNotifier(open, "x" as unknown as null),
        TypeError,
        "read must be a function, or null",
      );
      assertEquals(ctx.info().handlers.length, before + 1, "nothing was registered or removed");
      // The context works on: the fd handler, a BH, a notifier.
      let notified = 0;
      ctx.setEventNotifier(open, () => (notified++, open.testAndClear()));
      write(w, ONE);
      open.set();
      bh.schedule();
      assert(ctx.poll(false));
      assertEquals(log.sort(), ["bh", "r1"]);
      assertEquals(notified, 1);
      ctx.setEventNotifier(open, null);
      ctx.setFdHandler(r, null);
      bh.delete();
    }),
  );

  // ---- issue 9 item 10: adaptive polling as upstream has it today ----

  Deno.test(
    `AioContext edge: busy polling walks the newest polled handler first ${tag}`,
    onCtx(fdmon, (ctx) => {
      using n1 = EventNotifier.create();
      using n2 = EventNotifier.create();
      const wd = watchdog(ctx);
      ctx.setPollParams({ maxNs: 1_000_000_000 });
      const log: string[] = [];
      let armed = false;
      const reg = (n: EventNotifier, name: string): void => {
        ctx.setEventNotifier(
          n,
          () => (log.push(`read ${name}`), n.testAndClear()),
          () => (armed && log.push(`io_poll ${name}`), armed),
          () => log.push(`ready ${name}`),
        );
      };
      reg(n1, "1");
      reg(n2, "2");
      assertFalse(ctx.poll(false), "takes the registration kicks");
      // A first real event puts each on the polling list: n1, then n2.
      n1.set();
      assert(ctx.poll(true));
      n2.set();
      assert(ctx.poll(true));
      assertEquals(log, ["read 1", "read 2"]);
      assertFalse(ctx.poll(false), "io_uring submits its re-arms here");
      log.length = 0;
      armed = true;
      assert(ctx.poll(true));
      armed = false;
      // poll_aio_handlers is newest first (QLIST_INSERT_HEAD), so n2's
      // io_poll runs first. Each ready one is inserted at the head of the
      // ready list too, which reverses the order again: io_poll_ready runs
      // for n1 first, exactly as util/aio-posix.c does.
      assertEquals(log, ["io_poll 2", "io_poll 1", "ready 1", "ready 2"]);
      assertFalse(wd.fired);
      wd.timer.del();
      ctx.setEventNotifier(n1, null);
      ctx.setEventNotifier(n2, null);
    }),
  );

  Deno.test(
    `AioContext edge: busy polling stops on need_wait before looking at the time ${tag}`,
    onCtx(fdmon, (ctx, fds) => {
      using n = EventNotifier.create();
      const [rx, wx] = fds.pipe();
      const wd = watchdog(ctx);
      ctx.setPollParams({ maxNs: 1_000_000_000 });
      let spin = false;
      let begins = 0;
      let ends = 0;
      let xBytes = 0;
      ctx.setEventNotifier(n, () => n.testAndClear(), () => {
        if (spin) {
          // Outlast the polling time, then make the other fd ready: on
          // io_uring its completion is there when the round ends.
          spin = false;
          const t0 = clockGettimeNs();
          while (clockGettimeNs() - t0 < 200_000);
          write(wx, ONE);
        }
        return false;
      }, () => {});
      ctx.setEventNotifierPoll(n, () => begins++, () => ends++);
      // With io_poll callbacks on every handler, poll and epoll never need
      // to wait, so they poll until the time is up.
      ctx.setFdHandler(rx, {
        read: () => xBytes += drain(rx),
        poll: () => false,
        pollReady: () => {},
      });
      assertFalse(ctx.poll(false));
      n.set();
      assert(ctx.poll(true), "n's first event puts it on the polling list");
      assertFalse(ctx.poll(false), "io_uring submits its re-arms here");
      begins = 0;
      ends = 0;
      spin = true;
      assert(ctx.poll(true));
      assertEquals(xBytes, 1);
      assertEquals(begins, 1);
      // io_uring: the completion makes need_wait true, which upstream checks
      // first: timeout 0, poll mode stays on, io_poll_end is not called.
      // poll, epoll: the time is up, poll mode ends before the blocking wait.
      assertEquals(ends, ctx.fdmon === "io_uring" ? 0 : 1);
      assertFalse(wd.fired);
      wd.timer.del();
      ctx.setEventNotifier(n, null);
      ctx.setFdHandler(rx, null);
    }),
  );

  // ---- issue 9 item 5: far-future deadlines ----

  const farAhead: [string, number][] = [["2^31 s + 0.5 s", 2 ** 31 * 1e9 + 5e8], [
    "2^62 ns",
    2 ** 62,
  ]];
  for (const [what, aheadNs] of farAhead) {
    Deno.test(
      `AioContext edge: a timer ${what} ahead leaves blocking polls working ${tag}`,
      onCtx(fdmon, (ctx, fds) => {
        const [r, w] = fds.pipe();
        let fired = false;
        const far = ctx.timerNew(QEMUClockType.REALTIME, SCALE_NS, () => fired = true);
        far.modNs(clockGetNs(QEMUClockType.REALTIME) + aheadNs);
        let got = 0;
        ctx.setFdHandler(r, { read: () => got += drain(r) });
        // The far timer is the only deadline: the wait gets its timeout
        // (ppoll on poll and epoll, a TIMEOUT SQE on io_uring). The fd is
        // ready, so the wait returns at once, if the timeout is valid. No
        // watchdog timer: it would be the earliest deadline instead; every
        // blocking poll below has work waiting (a readable fd, a BH), so
        // none can block.
        write(w, ONE);
        assert(ctx.poll(true));
        assertEquals(got, 1);
        ctx.bhScheduleOneshot(() => {});
        assert(ctx.poll(true));
        write(w, ONE);
        assert(ctx.poll(true));
        assertEquals(got, 2);
        assertFalse(fired);
        assert(far.pending);
        far.del();
        ctx.setFdHandler(r, null);
      }),
    );
  }
}

Deno.test("pollNs(): a timeout past 2^31 s is capped with a valid nanosecond part", () => {
  const fd = eventfd(1);
  try {
    const fds = new PollFdArray();
    fds.push(fd, POLLIN);
    for (const ns of [2 ** 31 * 1e9 + 5e8, 2 ** 31 * 1e9 - 1, 2 ** 62, 2 ** 63]) {
      assertEquals(pollNs(fds, ns), 1, `timeout ${ns}`);
    }
  } finally {
    close(fd);
  }
});

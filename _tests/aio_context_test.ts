// The AioContext core (util/async.c, util/aio-posix.c) on real fds, run once
// per fd monitor this machine supports: fd handlers on pipes and sockets,
// HUP/ERR delivery, removal and replacement during dispatch, the 64-fd epoll
// upgrade, BH order, idle BHs, timers, exceptions thrown by callbacks, bad
// input, adaptive polling, notify, and fd leaks.
import {
  assert,
  assertEquals,
  assertFalse,
  assertGreaterOrEqual,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { AioContext } from "../aio/aio_context.ts";
import { EventNotifier } from "../aio/event_notifier.ts";
import {
  clockAdvanceVirtualNs,
  clockEnable,
  clockGetNs,
  clockIsEnabled,
  clockSetVirtualNs,
  QEMUClockType,
  type QEMUTimer,
  SCALE_MS,
  SCALE_NS,
} from "../aio/timer.ts";
import { SysError } from "../sys/errno.ts";
import { close, pipe, read, write } from "../sys/fd.ts";
import { assertNoFdLeak, openFdCount, supportedFdMons } from "./_fd_leak.ts";
import { Fds, onCtx } from "./_harness.ts";

const noop = (): void => {};
const ONE = new Uint8Array(new BigUint64Array([1n]).buffer);
const BUF = new Uint8Array(4096);
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Reads everything an fd holds right now; returns the bytes as text. */
function drain(fd: number): string {
  let out = "";
  for (;;) {
    const n = read(fd, BUF);
    if (n <= 0) return out;
    out += dec.decode(BUF.subarray(0, n));
  }
}

/**
 * A HOST-clock timer five seconds out: if the poll under test blocked when
 * it should not, the watchdog ends the wait (and its run counts as progress
 * and shows in `fired`), so a broken wake-up fails the test instead of
 * hanging it. HOST is used so that REALTIME and VIRTUAL lists stay empty.
 */
function watchdog(ctx: AioContext): { fired: boolean; timer: QEMUTimer } {
  const w = { fired: false, timer: null as unknown as QEMUTimer };
  w.timer = ctx.timerNew(QEMUClockType.HOST, SCALE_MS, () => w.fired = true, { name: "watchdog" });
  w.timer.mod(clockGetNs(QEMUClockType.HOST) / SCALE_MS + 5000);
  return w;
}

/** The soft RLIMIT_NOFILE of this process, from /proc/self/limits. */
function fdSoftLimit(): number {
  const line = Deno.readTextFileSync("/proc/self/limits").split("\n")
    .find((l) => l.startsWith("Max open files"));
  const soft = line?.split(/\s+/)[3];
  return soft === undefined || soft === "unlimited" ? Infinity : Number(soft);
}

/** Fills a non-blocking pipe or socket until write would block. */
function fill(fd: number): void {
  const chunk = new Uint8Array(65536);
  while (write(fd, chunk) > 0);
}

for (const fdmon of supportedFdMons()) {
  const tag = `[${fdmon}]`;

  // ---- fd handlers on real pipes and sockets ----

  Deno.test(
    `AioContext: a pipe's read handler reads what was written ${tag}`,
    onCtx(fdmon, (ctx, fds) => {
      const [r, w] = fds.pipe();
      const got: string[] = [];
      ctx.setFdHandler(r, { read: () => got.push(drain(r)) });
      assertFalse(ctx.poll(false), "an idle pipe is no progress");
      write(w, enc.encode("hello"));
      assert(ctx.poll(false));
      assertEquals(got, ["hello"]);
      assertFalse(ctx.poll(false), "a drained pipe is not reported again");
      ctx.setFdHandler(r, null);
    }),
  );

  Deno.test(
    `AioContext: a write handler fires on a writable socket ${tag}`,
    onCtx(fdmon, (ctx, fds) => {
      const [a, b] = fds.socketpair();
      let writes = 0;
      ctx.setFdHandler(a, {
        write: () => {
          writes++;
          write(a, enc.encode("ping"));
        },
      });
      assert(ctx.poll(false));
      assertStrictEquals(writes, 1);
      assertEquals(drain(b), "ping");
      // Level-triggered: still writable, so it fires again.
      assert(ctx.poll(false));
      assertStrictEquals(writes, 2);
      ctx.setFdHandler(a, null);
      assertFalse(ctx.poll(false));
      assertStrictEquals(writes, 2);
    }),
  );

  Deno.test(
    `AioContext: read and write handlers on the same socket both run ${tag}`,
    onCtx(fdmon, (ctx, fds) => {
      const [a, b] = fds.socketpair();
      const log: string[] = [];
      ctx.setFdHandler(a, {
        read: () => log.push(`read ${drain(a)}`),
        write: () => {
          log.push("write");
          write(a, enc.encode("world"));
          // Keep reading only: an always-writable socket would fire forever.
          ctx.setFdHandler(a, { read: () => log.push(`read ${drain(a)}`) });
        },
      });
      write(b, enc.encode("hello"));
      assert(ctx.poll(false));
      assertEquals(log, ["read hello", "write"]);
      assertEquals(drain(b), "world");
      write(b, enc.encode("again"));
      assert(ctx.poll(false));
      assertEquals(log, ["read hello", "write", "read again"]);
      ctx.setFdHandler(a, null);
    }),
  );

  // ---- HUP and ERR ----

  Deno.test(
    `AioContext: HUP of a pipe runs the read handler and read returns 0 ${tag}`,
    onCtx(fdmon, (ctx, fds) => {
      const [r, w] = fds.pipe();
      const reads: number[] = [];
      ctx.setFdHandler(r, {
        read: () => {
          reads.push(read(r, BUF));
          ctx.setFdHandler(r, null); // EOF is level-triggered too
        },
      });
      fds.close(w);
      assert(ctx.poll(false));
      assertEquals(reads, [0]);
      assertFalse(ctx.poll(false));
    }),
  );

  Deno.test(
    `AioContext: a closed socket peer runs the read handler and read returns 0 ${tag}`,
    onCtx(fdmon, (ctx, fds) => {
      const [a, b] = fds.socketpair();
      const reads: number[] = [];
      let writes = 0;
      ctx.setFdHandler(a, {
        read: () => {
          reads.push(read(a, BUF));
          ctx.setFdHandler(a, null);
        },
        write: () => writes++,
      });
      write(b, enc.encode("x"));
      fds.close(b);
      assert(ctx.poll(false));
      // The data first, then EOF on the next round (the handler removed itself).
      assertEquals(reads, [1]);
      ctx.setFdHandler(a, { read: () => reads.push(read(a, BUF)) });
      assert(ctx.poll(false));
      assertEquals(reads, [1, 0]);
      ctx.setFdHandler(a, null);
    }),
  );

  Deno.test(
    `AioContext: ERR (pipe writer with its reader closed) calls both read and write ${tag}`,
    onCtx(fdmon, (ctx, fds) => {
      const [r, w] = fds.pipe();
      // A full pipe is not writable, so what reaches the handlers is POLLERR
      // alone; QEMU calls io_read and io_write on ERR.
      fill(w);
      const log: string[] = [];
      ctx.setFdHandler(w, { read: () => log.push("read"), write: () => log.push("write") });
      assertFalse(ctx.poll(false), "a full pipe with a reader is neither readable nor writable");
      fds.close(r);
      assert(ctx.poll(false));
      assertEquals(log, ["read", "write"]);
      ctx.setFdHandler(w, null);
    }),
  );

  // ---- removal and replacement during dispatch ----

  Deno.test(
    `AioContext: a handler removed by another's callback in the same round is not called ${tag}`,
    onCtx(fdmon, (ctx, fds) => {
      const [r1, w1] = fds.pipe();
      const [r2, w2] = fds.pipe();
      const ran: number[] = [];
      ctx.setFdHandler(r1, {
        read: () => {
          ran.push(1);
          drain(r1);
          ctx.setFdHandler(r2, null);
        },
      });
      ctx.setFdHandler(r2, {
        read: () => {
          ran.push(2);
          drain(r2);
          ctx.setFdHandler(r1, null);
        },
      });
      write(w1, ONE);
      write(w2, ONE);
      assert(ctx.poll(false));
      assertStrictEquals(ran.length, 1, `both ran in one round: ${ran}`);
      // The survivor's fd is drained and the victim's is no longer watched.
      assertFalse(ctx.poll(false));
      assertStrictEquals(ran.length, 1);
      const survivor = ran[0] === 1 ? r1 : r2;
      assertEquals(ctx.info().handlers.filter((h) => !h.notifier).map((h) => h.fd), [survivor]);
      ctx.setFdHandler(survivor, null);
    }),
  );

  Deno.test(
    `AioContext: a handler replaced during dispatch never runs its old callbacks ${tag}`,
    onCtx(fdmon, (ctx, fds) => {
      const [r1, w1] = fds.pipe();
      const [r2, w2] = fds.pipe();
      const log: string[] = [];
      let replaced = false;
      const old = (me: number, other: number, name: string) => () => {
        log.push(name);
        drain(me);
        if (replaced) return;
        replaced = true;
        ctx.setFdHandler(other, {
          read: () => {
            log.push(`new ${other === r1 ? "A" : "B"}`);
            drain(other);
          },
        });
      };
      ctx.setFdHandler(r1, { read: old(r1, r2, "A") });
      ctx.setFdHandler(r2, { read: old(r2, r1, "B") });
      write(w1, ONE);
      write(w2, ONE);
      assert(ctx.poll(false));
      assertStrictEquals(log.length, 1, `round 1: ${log}`);
      const first = log[0];
      const other = first === "A" ? "B" : "A";
      // Round 2: the replacement sees the still-readable fd; the old
      // callback never runs again.
      assert(ctx.poll(false));
      assertEquals(log, [first, `new ${other}`]);
      write(w1, ONE);
      write(w2, ONE);
      assert(ctx.poll(false));
      assertFalse(log.includes(other), `old callback ${other} ran: ${log}`);
      ctx.setFdHandler(r1, null);
      ctx.setFdHandler(r2, null);
    }),
  );

  Deno.test(
    `AioContext: a handler removed by its own read callback skips its write callback ${tag}`,
    onCtx(fdmon, (ctx, fds) => {
      const [a, b] = fds.socketpair();
      const log: string[] = [];
      ctx.setFdHandler(a, {
        read: () => {
          log.push("read");
          drain(a);
          ctx.setFdHandler(a, { write: () => log.push("new write") });
        },
        write: () => log.push("old write"),
      });
      write(b, enc.encode("x")); // readable and writable at once
      assert(ctx.poll(false));
      assertEquals(log, ["read"]);
      assert(ctx.poll(false));
      assertEquals(log, ["read", "new write"]);
      ctx.setFdHandler(a, null);
    }),
  );

  // ---- many fds ----

  Deno.test(
    `AioContext: 1000 registered fds with one ready runs only that handler ${tag}`,
    async () => {
      // Room for 1000 eventfds plus what the process already holds.
      const want = 1000;
      const room = fdSoftLimit() - openFdCount() - 64;
      const count = Math.min(want, room);
      assert(count >= 100, `too few fds allowed (${room}) for this test`);
      if (count < want) console.warn(`fd limit: using ${count} fds instead of ${want}`);
      await assertNoFdLeak(() => {
        using fds = new Fds();
        const ctx = AioContext.create({ fdmon });
        const efds: number[] = [];
        const hits = new Map<number, number>();
        for (let i = 0; i < count; i++) {
          const fd = fds.eventfd();
          efds.push(fd);
          ctx.setFdHandler(fd, {
            read: () => {
              hits.set(fd, (hits.get(fd) ?? 0) + 1);
              drain(fd);
            },
          });
        }
        assertStrictEquals(ctx.fdmon, fdmon, "no upgrade before a wait");
        assertFalse(ctx.poll(false));
        // fdmon-poll switches to epoll at its first wait with >= 64 fds;
        // the other backends keep themselves.
        assertStrictEquals(ctx.fdmon, fdmon === "poll" ? "epoll" : fdmon);
        const ready = efds[Math.floor(count / 2)];
        write(ready, ONE);
        assert(ctx.poll(false));
        assertEquals([...hits], [[ready, 1]]);
        assertFalse(ctx.poll(false));
        for (const fd of efds) ctx.setFdHandler(fd, null);
        assertStrictEquals(ctx.info().handlers.length, 1, "only the notifier is left");
        ctx.destroy();
      });
    },
  );

  // ---- bottom halves ----

  Deno.test(
    `AioContext: a BH scheduled from a BH runs in the next poll ${tag}`,
    onCtx(fdmon, (ctx) => {
      const log: string[] = [];
      const b = ctx.bhNew(() => log.push("b"));
      const a = ctx.bhNew(() => {
        log.push("a");
        b.schedule();
      });
      a.schedule();
      assert(ctx.poll(false));
      assertEquals(log, ["a"]);
      assert(ctx.poll(false));
      assertEquals(log, ["a", "b"]);
      assertFalse(ctx.poll(false));
      a.delete();
      b.delete();
    }),
  );

  Deno.test(
    `AioContext: BHs scheduled together run last-scheduled first ${tag}`,
    onCtx(fdmon, (ctx) => {
      const log: string[] = [];
      const bhs = ["A", "B", "C"].map((n) => ctx.bhNew(() => log.push(n), { name: n }));
      for (const bh of bhs) bh.schedule();
      assert(ctx.poll(false));
      assertEquals(log, ["C", "B", "A"]);
      for (const bh of bhs) bh.delete();
    }),
  );

  Deno.test(
    `AioContext: rescheduling a pending BH keeps its place ${tag}`,
    onCtx(fdmon, (ctx) => {
      const log: string[] = [];
      const [a, b, c] = ["A", "B", "C"].map((n) => ctx.bhNew(() => log.push(n), { name: n }));
      a.schedule();
      b.schedule();
      c.schedule();
      a.schedule(); // still queued: not moved to the head
      assert(ctx.poll(false));
      assertEquals(log, ["C", "B", "A"]);
      assertFalse(ctx.poll(false), "it ran once");
      for (const bh of [a, b, c]) bh.delete();
    }),
  );

  Deno.test(
    `AioContext: cancel then reschedule keeps the BH's place; cancel alone skips it ${tag}`,
    onCtx(fdmon, (ctx) => {
      const log: string[] = [];
      const [a, b, c] = ["A", "B", "C"].map((n) => ctx.bhNew(() => log.push(n), { name: n }));
      a.schedule();
      b.schedule();
      c.schedule();
      a.cancel();
      b.cancel();
      a.schedule();
      assertFalse(b.scheduled);
      assert(a.scheduled);
      assert(ctx.poll(false));
      assertEquals(log, ["C", "A"]);
      assertFalse(ctx.poll(false));
      b.schedule();
      b.cancel();
      assertFalse(ctx.poll(false), "a cancelled BH is no progress");
      assertEquals(log, ["C", "A"]);
      for (const bh of [a, b, c]) bh.delete();
    }),
  );

  Deno.test(
    `AioContext: an idle BH runs in a non-blocking poll without progress ${tag}`,
    onCtx(fdmon, (ctx) => {
      let n = 0;
      const bh = ctx.bhNew(() => n++);
      bh.scheduleIdle();
      assertFalse(ctx.poll(false));
      assertStrictEquals(n, 1);
      assertFalse(ctx.poll(false));
      assertStrictEquals(n, 1);
      bh.delete();
    }),
  );

  Deno.test(
    `AioContext: a blocking poll with only an idle BH returns and runs it ${tag}`,
    onCtx(fdmon, (ctx) => {
      const w = watchdog(ctx);
      let n = 0;
      const idle = ctx.bhNew(() => n++, { name: "idle" });
      // Scheduling notifies (aio_bh_enqueue always does), so this poll
      // does not block at all.
      idle.scheduleIdle();
      assertFalse(ctx.poll(true));
      assertStrictEquals(n, 1);
      // With the kick already consumed, the idle BH alone bounds the wait
      // (10 ms): a BH that throws leaves the idle one queued after the
      // poll accepted the notification.
      const thrower = ctx.bhNew(() => {
        throw new Error("stop the BH pass");
      }, { name: "thrower" });
      idle.scheduleIdle();
      thrower.schedule(); // runs first (LIFO) and leaves "idle" queued
      assertThrows(() => ctx.poll(false), Error, "stop the BH pass");
      assertStrictEquals(n, 1);
      const t0 = performance.now();
      assertFalse(ctx.poll(true));
      assertGreaterOrEqual(performance.now() - t0, 0);
      assertStrictEquals(n, 2);
      assertFalse(w.fired, "the poll waited for the watchdog, not the idle BH's 10 ms");
      idle.delete();
      thrower.delete();
      w.timer.del();
    }),
  );

  // ---- timers ----

  Deno.test(
    `AioContext: timers fire in expiry order, equal expiries in arming order ${tag}`,
    onCtx(fdmon, (ctx) => {
      const w = watchdog(ctx);
      const log: string[] = [];
      const now = clockGetNs(QEMUClockType.REALTIME);
      const mk = (name: string, delayNs: number) => {
        const t = ctx.timerNew(QEMUClockType.REALTIME, SCALE_NS, () => {
          assertGreaterOrEqual(clockGetNs(QEMUClockType.REALTIME), now + delayNs);
          log.push(name);
        });
        t.mod(now + delayNs);
        return t;
      };
      mk("3ms", 3e6);
      mk("1ms", 1e6);
      mk("2ms-a", 2e6);
      mk("2ms-b", 2e6);
      while (log.length < 4 && !w.fired) ctx.poll(true);
      assertEquals(log, ["1ms", "2ms-a", "2ms-b", "3ms"]);
      w.timer.del();
    }),
  );

  Deno.test(
    `AioContext: a timer re-armed from its callback fires again, never early ${tag}`,
    onCtx(fdmon, (ctx) => {
      const w = watchdog(ctx);
      let fires = 0;
      let expiry = 0;
      const t = ctx.timerNew(QEMUClockType.REALTIME, SCALE_NS, () => {
        assertGreaterOrEqual(clockGetNs(QEMUClockType.REALTIME), expiry);
        if (++fires < 3) {
          expiry = clockGetNs(QEMUClockType.REALTIME) + 500_000;
          t.mod(expiry);
        }
      });
      expiry = clockGetNs(QEMUClockType.REALTIME) + 500_000;
      t.mod(expiry);
      while (fires < 3 && !w.fired) ctx.poll(true);
      assertStrictEquals(fires, 3);
      assertFalse(t.pending);
      w.timer.del();
    }),
  );

  Deno.test(
    `AioContext: VIRTUAL timers fire only when the enabled clock is advanced ${tag}`,
    onCtx(fdmon, (ctx) => {
      const wasEnabled = clockIsEnabled(QEMUClockType.VIRTUAL);
      const base = clockGetNs(QEMUClockType.VIRTUAL);
      try {
        clockEnable(QEMUClockType.VIRTUAL, false);
        let fired = 0;
        const t = ctx.timerNew(QEMUClockType.VIRTUAL, SCALE_NS, () => fired++);
        t.mod(base + 1000);
        clockAdvanceVirtualNs(5000);
        assertFalse(ctx.poll(false), "a disabled clock runs no timers");
        assertStrictEquals(fired, 0);
        clockEnable(QEMUClockType.VIRTUAL, true);
        assert(ctx.poll(false));
        assertStrictEquals(fired, 1);
        t.mod(clockGetNs(QEMUClockType.VIRTUAL) + 1000);
        clockAdvanceVirtualNs(999);
        assertFalse(ctx.poll(false));
        assertStrictEquals(fired, 1);
        clockAdvanceVirtualNs(1);
        // Advancing notified the context, and the deadline is now 0: a
        // blocking poll runs the timer at once.
        assert(ctx.poll(true));
        assertStrictEquals(fired, 2);
      } finally {
        clockEnable(QEMUClockType.VIRTUAL, wasEnabled);
        clockSetVirtualNs(base);
      }
    }),
  );

  Deno.test(
    `AioContext: a timer armed from a callback as the new head wakes the next blocking poll ${tag}`,
    onCtx(fdmon, (ctx) => {
      const w = watchdog(ctx);
      let fired = false;
      const far = ctx.timerNew(QEMUClockType.REALTIME, SCALE_MS, () => fired = true);
      ctx.bhScheduleOneshot(() => {
        // The REALTIME list was empty: this becomes its head and notifies.
        far.mod(clockGetNs(QEMUClockType.REALTIME) / SCALE_MS + 3_600_000);
      });
      assert(ctx.poll(false));
      assert(far.pending);
      // Without the notify this would sleep until the watchdog.
      assertFalse(ctx.poll(true));
      assertFalse(w.fired);
      assertFalse(fired);
      // And a near timer armed from a callback is waited for.
      const near = ctx.timerNew(QEMUClockType.REALTIME, SCALE_NS, () => fired = true);
      let expiry = 0;
      ctx.bhScheduleOneshot(() => {
        expiry = clockGetNs(QEMUClockType.REALTIME) + 2_000_000;
        near.mod(expiry);
      });
      while (!fired && !w.fired) ctx.poll(true);
      assert(fired);
      assertFalse(w.fired);
      assertGreaterOrEqual(clockGetNs(QEMUClockType.REALTIME), expiry);
      far.del();
      w.timer.del();
    }),
  );

  // ---- callbacks that throw ----

  Deno.test(
    `AioContext: a throwing BH leaves poll and the other BHs run once later ${tag}`,
    onCtx(fdmon, (ctx) => {
      const log: string[] = [];
      let throwNext = true;
      const a = ctx.bhNew(() => log.push("A"), { name: "A" });
      const b = ctx.bhNew(() => {
        log.push("B");
        if (throwNext) {
          throwNext = false;
          throw new Error("boom");
        }
      }, { name: "B" });
      const c = ctx.bhNew(() => log.push("C"), { name: "C" });
      a.schedule();
      b.schedule();
      c.schedule();
      assertThrows(() => ctx.poll(false), Error, "boom");
      assertEquals(log, ["C", "B"]);
      assert(ctx.poll(false), "A is still queued");
      assertEquals(log, ["C", "B", "A"]);
      assertFalse(ctx.poll(false), "nothing runs twice");
      // Everything still works: BHs, handlers, and destroy (not "polling").
      b.schedule();
      assert(ctx.poll(false));
      assertEquals(log, ["C", "B", "A", "B"]);
      for (const bh of [a, b, c]) bh.delete();
    }),
  );

  Deno.test(
    `AioContext: a throwing oneshot BH is freed and not run again ${tag}`,
    onCtx(fdmon, (ctx) => {
      let n = 0;
      ctx.bhScheduleOneshot(() => {
        n++;
        throw new Error("oneshot boom");
      }, "thrower");
      assertThrows(() => ctx.poll(false), Error, "oneshot boom");
      assertFalse(ctx.poll(false));
      assertStrictEquals(n, 1);
      assertEquals(ctx.info().bhs, []);
    }),
  );

  Deno.test(
    `AioContext: a throwing read handler leaves poll, state stays consistent ${tag}`,
    onCtx(fdmon, (ctx, fds) => {
      const [r1, w1] = fds.pipe();
      const [r2, w2] = fds.pipe();
      const [r3, w3] = fds.pipe();
      const ran = new Map<number, number>();
      const count = (fd: number) => ran.set(fd, (ran.get(fd) ?? 0) + 1);
      let thrown = false;
      let lateR3 = 0;
      // Whichever of r1/r2 runs first removes r3 (marked deleted while the
      // walk is on) and throws once. r3 may have run earlier in that round
      // (the order is the backend's); it must not run after its removal.
      const h = (me: number) => () => {
        count(me);
        drain(me);
        if (!thrown) {
          thrown = true;
          ctx.setFdHandler(r3, null);
          throw new Error(`read boom ${me}`);
        }
      };
      ctx.setFdHandler(r1, { read: h(r1) });
      ctx.setFdHandler(r2, { read: h(r2) });
      ctx.setFdHandler(r3, {
        read: () => {
          if (thrown) lateR3++;
          drain(r3);
        },
      });
      const bh = ctx.bhNew(() => count(-1));
      write(w1, ONE);
      write(w2, ONE);
      write(w3, ONE);
      assertThrows(() => ctx.poll(false), Error, "read boom");
      assert(thrown);
      // The other ready handler is not lost: its fd is still readable.
      while (ctx.poll(false));
      assertStrictEquals(ran.get(r1), 1);
      assertStrictEquals(ran.get(r2), 1);
      assertStrictEquals(lateR3, 0, "the removed handler ran after its removal");
      // Registering again works and the new handler is called.
      ctx.setFdHandler(r3, { read: () => (count(r3), drain(r3)) });
      write(w3, ONE);
      bh.schedule();
      assert(ctx.poll(false));
      assertStrictEquals(ran.get(r3), 1);
      assertStrictEquals(ran.get(-1), 1);
      // Removal outside a poll frees at once: nothing of r1..r3 is reported.
      for (const fd of [r1, r2, r3]) ctx.setFdHandler(fd, null);
      assertStrictEquals(ctx.info().handlers.length, 1);
      write(w1, ONE);
      assertFalse(ctx.poll(false));
      bh.delete();
    }),
  );

  Deno.test(
    `AioContext: a throwing timer leaves poll and the other due timer runs once later ${tag}`,
    onCtx(fdmon, (ctx) => {
      const log: string[] = [];
      const t1 = ctx.timerNew(QEMUClockType.REALTIME, SCALE_NS, () => {
        log.push("t1");
        throw new Error("timer boom");
      });
      const t2 = ctx.timerNew(QEMUClockType.REALTIME, SCALE_NS, () => log.push("t2"));
      const now = clockGetNs(QEMUClockType.REALTIME);
      t1.mod(now - 2);
      t2.mod(now - 1);
      assertThrows(() => ctx.poll(false), Error, "timer boom");
      assertEquals(log, ["t1"]);
      assertFalse(t1.pending);
      assert(ctx.poll(false));
      assertEquals(log, ["t1", "t2"]);
      assertFalse(ctx.poll(false));
      assertEquals(log, ["t1", "t2"]);
    }),
  );

  Deno.test(
    `AioContext: a throw inside a nested poll unwinds both levels consistently ${tag}`,
    onCtx(fdmon, (ctx, fds) => {
      const log: string[] = [];
      const inner = ctx.bhNew(() => {
        log.push("inner");
        throw new Error("inner boom");
      }, { name: "inner" });
      const outer = ctx.bhNew(() => {
        log.push("outer");
        inner.schedule();
        ctx.poll(false); // nested aio_poll
      }, { name: "outer" });
      const later = ctx.bhNew(() => log.push("later"), { name: "later" });
      later.schedule();
      outer.schedule(); // runs first (LIFO), "later" stays in the outer slice
      assertThrows(() => ctx.poll(false), Error, "inner boom");
      // The nested poll finished the outer slice first, as QEMU's does.
      assertEquals(log, ["outer", "later", "inner"]);
      assertFalse(ctx.poll(false), "nothing left, nothing runs twice");
      // The walker count is back to zero: only the outermost walker may
      // switch a poll context to epoll, and 64 fds still make it switch.
      for (let i = 0; i < 70; i++) ctx.setFdHandler(fds.eventfd(), { read: noop });
      assertFalse(ctx.poll(false));
      assertStrictEquals(ctx.fdmon, fdmon === "poll" ? "epoll" : fdmon);
      for (const h of ctx.info().handlers) if (!h.notifier) ctx.setFdHandler(h.fd, null);
      for (const bh of [inner, outer, later]) bh.delete();
      // onCtx's destroy() then checks that the context is not "polling".
    }),
  );

  // ---- bad input ----

  Deno.test(
    `AioContext: bad fds and handlers get typed errors and leave the context usable ${tag}`,
    onCtx(fdmon, (ctx, fds) => {
      const [r, w] = fds.pipe();
      for (const fd of [-1, 1.5, NaN, Infinity]) {
        assertThrows(() => ctx.setFdHandler(fd, { read: noop }), RangeError);
      }
      const [cr, cw] = pipe();
      close(cr);
      close(cw);
      const e = assertThrows(() => ctx.setFdHandler(cr, { read: noop }), SysError);
      assertStrictEquals((e as SysError).code, "EBADF");
      assertThrows(() => ctx.setFdHandler(1_000_000, { read: noop }), SysError, "EBADF");
      assertThrows(
        () => ctx.setFdHandler(r, { read: 42 as unknown as () => void }),
        TypeError,
      );
      assertThrows(
        () => ctx.setFdHandler(r, { write: "x" as unknown as () => void }),
        TypeError,
      );
      assertThrows(() => ctx.bhNew(42 as unknown as () => void), TypeError);
      assertThrows(() => ctx.bhScheduleOneshot(null as unknown as () => void), TypeError);
      assertThrows(
        () => ctx.timerNew(QEMUClockType.REALTIME, SCALE_NS, 1 as unknown as () => void),
        TypeError,
      );
      assertStrictEquals(ctx.info().handlers.length, 1, "nothing was registered");
      // Still usable.
      let got = "";
      ctx.setFdHandler(r, { read: () => got = drain(r) });
      write(w, enc.encode("ok"));
      assert(ctx.poll(false));
      assertStrictEquals(got, "ok");
      ctx.setFdHandler(r, null);
    }),
  );

  Deno.test(
    `AioContext: a deleted BH throws BadResource on use ${tag}`,
    onCtx(fdmon, (ctx) => {
      const bh = ctx.bhNew(noop, { name: "gone" });
      bh.delete();
      assert(bh.deleted);
      assertThrows(() => bh.schedule(), Deno.errors.BadResource, "gone");
      assertThrows(() => bh.scheduleIdle(), Deno.errors.BadResource);
      assertThrows(() => bh.cancel(), Deno.errors.BadResource);
      assertThrows(() => bh.delete(), Deno.errors.BadResource);
      assertFalse(ctx.poll(false));
    }),
  );

  Deno.test(
    `AioContext: a destroyed context throws BadResource on every use ${tag}`,
    async () => {
      await assertNoFdLeak(() => {
        using fds = new Fds();
        const [r] = fds.pipe();
        const ctx = AioContext.create({ fdmon });
        const t = ctx.timerNew(QEMUClockType.REALTIME, SCALE_NS, noop);
        const bh = ctx.bhNew(noop);
        bh.delete();
        ctx.destroy();
        assert(ctx.destroyed);
        ctx.destroy(); // twice: no-op
        const B = Deno.errors.BadResource;
        assertThrows(() => ctx.poll(false), B);
        assertThrows(() => ctx.poll(true), B);
        assertThrows(() => ctx.bhNew(noop), B);
        assertThrows(() => ctx.bhScheduleOneshot(noop), B);
        assertThrows(() => ctx.setFdHandler(r, { read: noop }), B);
        assertThrows(() => ctx.setFdHandler(r, null), B);
        assertThrows(() => ctx.timerNew(QEMUClockType.REALTIME, SCALE_NS, noop), B);
        assertThrows(() => ctx.notify(), B);
        assertThrows(() => ctx.info(), B);
        assertThrows(() => ctx.setPollParams({ maxNs: 0 }), B);
        assertThrows(() => t.mod(0), B);
        assertThrows(() => t.modNs(0), B);
        t.del(); // harmless
      });
    },
  );

  Deno.test(
    `AioContext: destroy from inside a poll callback throws and the context lives on ${tag}`,
    onCtx(fdmon, (ctx, fds) => {
      ctx.bhScheduleOneshot(() => ctx.destroy());
      assertThrows(() => ctx.poll(false), Error, "polling");
      assertFalse(ctx.destroyed);
      const [r, w] = fds.pipe();
      ctx.setFdHandler(r, { read: () => ctx.destroy() });
      write(w, ONE);
      assertThrows(() => ctx.poll(false), Error, "polling");
      assertFalse(ctx.destroyed);
      ctx.setFdHandler(r, null);
      let ran = false;
      ctx.bhScheduleOneshot(() => ran = true);
      assert(ctx.poll(false));
      assert(ran);
    }),
  );

  Deno.test(
    `AioContext: a BH never deleted is reported by destroy after every fd is released ${tag}`,
    () => {
      const before = openFdCount();
      const ctx = AioContext.create({ fdmon });
      ctx.bhNew(noop, { name: "forgotten-bh" });
      const kept = ctx.bhNew(noop, { name: "deleted-bh" });
      kept.delete();
      const e = assertThrows(() => ctx.destroy(), Error, "forgotten-bh");
      assertFalse(e.message.includes("deleted-bh"), e.message);
      assert(ctx.destroyed);
      assertStrictEquals(openFdCount(), before, "destroy released its fds before reporting");
      ctx.destroy(); // no-op, no second report
    },
  );

  // ---- adaptive polling ----

  Deno.test(
    `AioContext: adaptive polling joins after a real event, grows, and dispatches pollReady ${tag}`,
    onCtx(fdmon, (ctx) => {
      const w = watchdog(ctx);
      using n = EventNotifier.create();
      let flag = false;
      const log: string[] = [];
      ctx.setPollParams({ maxNs: 1_000_000 });
      ctx.setEventNotifier(
        n,
        () => {
          n.testAndClear();
          log.push("read");
        },
        () => flag,
        () => {
          flag = false;
          log.push("pollReady");
        },
      );
      const mine = () => ctx.info().handlers.find((h) => h.fd === n.fd)!;
      assertFalse(mine().polling, "not polled before its first real event");
      assertStrictEquals(mine().pollNs, 0);
      // Real events (the eventfd written) until the polling time moves; a
      // wait slower than maxNs on a noisy machine leaves it at 0, so retry.
      const seen: number[] = [];
      for (let i = 0; i < 20 && seen.filter((x) => x > 4000).length === 0; i++) {
        n.set();
        // The registration (and setPollParams) notified the context: with
        // every handler pollable, the first blocking poll returns on that
        // kick without looking at fds (need_wait false), as in QEMU.
        const reads = log.length;
        while (log.length === reads && !w.fired) ctx.poll(true);
        assertStrictEquals(log.length, reads + 1);
        assert(mine().polling, "on the polling list after a real event");
        const ns = mine().pollNs;
        if (ns !== 0 && seen.at(-1) !== ns) seen.push(ns);
      }
      assertStrictEquals(seen[0], 4000, `first polling time: ${seen}`);
      assert(seen.some((x) => x > 4000), `polling time never grew: ${seen}`);
      for (const x of seen) {
        assert(x === 1_000_000 || Number.isInteger(Math.log2(x / 4000)), `odd polling time ${x}`);
      }
      assert(log.every((x) => x === "read"));
      // io_uring re-arms its one-shot POLL_ADD after each completion, and
      // while that SQE is unsubmitted need_wait is true and aio_poll does
      // not busy-poll (QEMU's rule): a non-blocking poll submits it. On
      // poll and epoll this poll does nothing.
      assertFalse(ctx.poll(false));
      // Busy polling finds the work without the fd being written.
      log.length = 0;
      flag = true;
      assert(ctx.poll(true));
      assertEquals(log, ["pollReady"]);
      assertFalse(w.fired);
      // New parameters reset every handler's polling time.
      ctx.setPollParams({ maxNs: 1_000_000 });
      assertStrictEquals(mine().pollNs, 0);
      assertEquals(ctx.pollParams, { maxNs: 1_000_000, grow: 0, shrink: 0 });
      ctx.setEventNotifier(n, null);
      w.timer.del();
    }),
  );

  Deno.test(
    `AioContext: bad polling parameters throw RangeError and change nothing ${tag}`,
    onCtx(fdmon, (ctx) => {
      ctx.setPollParams({ maxNs: 32768, grow: 3, shrink: 2 });
      assertThrows(() => ctx.setPollParams({ maxNs: -1 }), RangeError);
      assertThrows(() => ctx.setPollParams({ maxNs: 1, grow: -2 }), RangeError);
      assertThrows(() => ctx.setPollParams({ maxNs: 1, shrink: -3 }), RangeError);
      assertThrows(() => ctx.setPollParams({ maxNs: 0.5 }), RangeError);
      assertEquals(ctx.pollParams, { maxNs: 32768, grow: 3, shrink: 2 });
      ctx.setPollParams({ maxNs: 0 });
      assertEquals(ctx.pollParams, { maxNs: 0, grow: 0, shrink: 0 });
    }),
  );

  // ---- notify ----

  Deno.test(
    `AioContext: notify then a blocking poll returns false at once ${tag}`,
    onCtx(fdmon, (ctx) => {
      const w = watchdog(ctx);
      ctx.notify();
      assertFalse(ctx.poll(true));
      assertFalse(w.fired);
      // Twice in a row is the same single kick.
      ctx.notify();
      ctx.notify();
      assertFalse(ctx.poll(true));
      assertFalse(w.fired);
      w.timer.del();
    }),
  );

  // ---- fd leaks ----

  Deno.test(
    `AioContext: 1000 create/destroy cycles leave /proc/self/fd unchanged ${tag}`,
    () => {
      const before = openFdCount();
      for (let i = 0; i < 1000; i++) {
        const ctx = AioContext.create({ fdmon });
        ctx.bhScheduleOneshot(noop);
        ctx.poll(false);
        ctx.destroy();
      }
      assertStrictEquals(openFdCount(), before);
    },
  );
}

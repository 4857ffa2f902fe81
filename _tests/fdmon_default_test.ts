// io_uring by default: `auto` takes io_uring where the kernel allows it and
// says so; where io_uring cannot be had it falls back to poll and says why;
// once one context of the process has io_uring every context must (QEMU's
// aio_context_setup rule), across isolates too; a forced io_uring that
// fails throws FdMonUnavailableError naming the errno; timed waits pass
// their timeout to io_uring_enter (IORING_ENTER_EXT_ARG) and fire on time;
// nothing leaks fds. Failures are injected with the test hook of
// fdmon/_io_uring_hooks.ts; the cases that need a process where no context
// has had io_uring yet run in a subprocess.
import { assert, assertEquals, assertThrows } from "@std/assert";
import { LateEventfdWriter, runScript } from "./_harness.ts";
import { AioContext } from "../aio/aio_context.ts";
import { clockGetNs, QEMUClockType, SCALE_NS } from "../aio/timer.ts";
import { fdmonIoUring, FdMonUnavailableError } from "../fdmon/mod.ts";
import { ioUringHooks } from "../fdmon/_io_uring_hooks.ts";
import { IoUringRing } from "../fdmon/_io_uring_ring.ts";
import { IOThread } from "../iothread/iothread.ts";
import { IORING_FEAT_EXT_ARG } from "../sys/io_uring.ts";
import { close, eventfd, read } from "../sys/fd.ts";
import { assertNoFdLeak, openFdCount } from "./_fd_leak.ts";

const URING = fdmonIoUring.supported();
const EXT_ARG = URING && (() => {
  const ring = IoUringRing.create(1);
  try {
    return (ring.features & IORING_FEAT_EXT_ARG) !== 0;
  } finally {
    ring.close();
  }
})();
const EMFILE = 24;

/** Runs `body` with the io_uring test hooks set, and restores them. */
function withHooks<T>(set: Partial<typeof ioUringHooks>, body: () => T): T {
  const saved = { ...ioUringHooks };
  Object.assign(ioUringHooks, set);
  try {
    return body();
  } finally {
    Object.assign(ioUringHooks, saved);
  }
}

// ---- in this process: some context has io_uring ----------------------------

Deno.test({
  name: "fdmon default: auto takes io_uring where the kernel allows it, and reports it",
  ignore: !URING,
  fn: () =>
    assertNoFdLeak(() => {
      using ctx = AioContext.create({ fdmon: "auto" });
      assertEquals(ctx.fdmon, "io_uring");
      const info = ctx.fdmonInfo();
      assertEquals(info, {
        name: "io_uring",
        requested: "auto",
        fallback: null,
        detail: EXT_ARG
          ? "timed waits: IORING_ENTER_EXT_ARG"
          : "timed waits: IORING_OP_TIMEOUT (the kernel lacks IORING_FEAT_EXT_ARG)",
        reason: "io_uring (auto): chosen by the caller",
      });
      assertEquals(ctx.info().fdmonReason, info.reason);
    }),
});

Deno.test("fdmon default: a forced monitor never falls back, and says so", () =>
  assertNoFdLeak(() => {
    using ctx = AioContext.create({ fdmon: "poll" });
    assertEquals(ctx.fdmonInfo(), {
      name: "poll",
      requested: "poll",
      fallback: null,
      detail: null,
      reason: "poll: chosen by the caller",
    });
  }));

Deno.test({
  name: "fdmon default: one context has io_uring, so an auto context whose ring fails throws",
  ignore: !URING,
  fn: () =>
    assertNoFdLeak(() => {
      using first = AioContext.create({ fdmon: "auto" });
      assertEquals(first.fdmon, "io_uring");
      withHooks({ setupErrno: EMFILE }, () => {
        const e = assertThrows(() => AioContext.create({ fdmon: "auto" }), FdMonUnavailableError);
        const err = e as FdMonUnavailableError;
        assertEquals([err.fdmon, err.errno, err.code], ["io_uring", EMFILE, "EMFILE"]);
        assert(err.message.includes("io_uring_setup: EMFILE"), err.message);
        assert(err.message.includes("another context"), err.message);
        assert(err instanceof Deno.errors.NotSupported);
        // A monitor chosen outright is not bound by the rule.
        using p = AioContext.create({ fdmon: "poll" });
        assertEquals(p.fdmon, "poll");
      });
    }),
});

Deno.test({
  name: "fdmon default: a forced io_uring whose ring fails throws, naming the errno",
  ignore: !URING,
  fn: () =>
    assertNoFdLeak(() => {
      withHooks({ setupErrno: EMFILE }, () => {
        const e = assertThrows(
          () => AioContext.create({ fdmon: "io_uring" }),
          FdMonUnavailableError,
          "io_uring_setup: EMFILE",
        ) as FdMonUnavailableError;
        assertEquals(e.code, "EMFILE");
      });
    }),
});

// ---- timed waits ------------------------------------------------------------

for (const extArg of [true, false]) {
  const how = extArg ? "EXT_ARG" : "TIMEOUT SQE";
  Deno.test({
    name: `fdmon default: timed waits fire on time, never early [io_uring, ${how}]`,
    ignore: !URING || (extArg && !EXT_ARG),
    fn: () =>
      assertNoFdLeak(() => {
        using ctx = withHooks({ extArg }, () => AioContext.create({ fdmon: "io_uring" }));
        assertEquals(ctx.fdmonInfo().detail?.includes(extArg ? "EXT_ARG" : "TIMEOUT"), true);
        const fired: number[] = [];
        const t = ctx.timerNew(QEMUClockType.REALTIME, SCALE_NS, () => {
          fired.push(clockGetNs(QEMUClockType.REALTIME));
        });
        for (const delay of [1, 1000, 50_000, 2_000_000, 20_000_000]) {
          fired.length = 0;
          const due = clockGetNs(QEMUClockType.REALTIME) + delay;
          t.mod(due);
          // Each blocking poll either runs the timer or wakes for nothing;
          // the timer runs once, at or after its expiry.
          let polls = 0;
          while (fired.length === 0) {
            ctx.poll(true);
            polls++;
            assert(polls < 1000, `timer of ${delay} ns never fired`);
          }
          assertEquals(fired.length, 1);
          assert(fired[0] >= due, `fired ${due - fired[0]} ns early`);
          assertEquals(ctx.poll(false), false);
        }
        // With handlers watched and churned (POLL_REMOVE results of our own
        // come back during the wait), a timed wait still ends by the timer.
        const efds = [eventfd(), eventfd()];
        try {
          for (const fd of efds) ctx.setFdHandler(fd, { read: () => read(fd, new Uint8Array(8)) });
          ctx.poll(false);
          ctx.setFdHandler(efds[0], null);
          const due = clockGetNs(QEMUClockType.REALTIME) + 5_000_000;
          t.mod(due);
          while (fired.length < 2) ctx.poll(true);
          assert(fired[1] >= due, `fired ${due - fired[1]} ns early`);
          ctx.setFdHandler(efds[1], null);
        } finally {
          for (const fd of efds) close(fd);
        }
        t.del();
      }),
  });
}

// Worker threads next: their runtime fds close on their own schedule.
for (const extArg of [true, false]) {
  const how = extArg ? "EXT_ARG" : "TIMEOUT SQE";
  Deno.test({
    name: `fdmon default: an fd made ready by another thread ends a timed wait [io_uring, ${how}]`,
    ignore: !URING || (extArg && !EXT_ARG),
    fn: async () => {
      using writer = new LateEventfdWriter();
      {
        await writer.ready;
        const before = openFdCount();
        {
          using ctx = withHooks({ extArg }, () => AioContext.create({ fdmon: "io_uring" }));
          const fd = eventfd();
          let timerRan = false;
          let reads = 0;
          const t = ctx.timerNew(QEMUClockType.REALTIME, SCALE_NS, () => timerRan = true);
          try {
            ctx.setFdHandler(fd, { read: () => (read(fd, new Uint8Array(8)), reads++) });
            ctx.poll(false);
            // 30 s out: only the fd can end this wait in a passing test.
            t.mod(clockGetNs(QEMUClockType.REALTIME) + 30e9);
            const done = writer.write(fd);
            while (reads === 0) ctx.poll(true);
            assertEquals([reads, timerRan], [1, false]);
            await done;
          } finally {
            t.del();
            ctx.setFdHandler(fd, null);
            close(fd);
          }
        }
        assertEquals(openFdCount(), before);
      }
    },
  });
}

// ---- in a fresh process: no context has had io_uring yet --------------------

const PROGRAM = (body: string): string => `
import { AioContext } from "${new URL("../aio/aio_context.ts", import.meta.url).href}";
import { FdMonUnavailableError, supportedFdMons } from "${
  new URL("../fdmon/mod.ts", import.meta.url).href
}";
import { ioUringHooks } from "${new URL("../fdmon/_io_uring_hooks.ts", import.meta.url).href}";
import { openFdCount } from "${new URL("./_fd_leak.ts", import.meta.url).href}";
const out = {};
const error = (f) => {
  try { using _c = f(); return null; }
  catch (e) { return { name: e.name, code: e.code, fdmon: e.fdmon, message: e.message,
    notSupported: e instanceof Deno.errors.NotSupported }; }
};
${body}
console.log(JSON.stringify(out));
`;

async function runFresh(body: string, env: Record<string, string> = {}): Promise<any> {
  const r = await runScript(PROGRAM(body), ["-A"], { AIOLOOP_FDMON: "", ...env });
  assertEquals(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

for (const [errno, code] of [[1, "EPERM"], [38, "ENOSYS"]] as const) {
  Deno.test(`fdmon default: io_uring_setup failing with ${code} falls back to poll, with the reason`, async () => {
    const r = await runFresh(`
      ioUringHooks.setupErrno = ${errno};
      const before = openFdCount();
      {
        using ctx = AioContext.create();
        out.info = ctx.fdmonInfo();
        out.infoAio = ctx.info().fdmonReason;
      }
      out.supported = supportedFdMons();
      out.forced = error(() => AioContext.create({ fdmon: "io_uring" }));
      out.leak = openFdCount() - before;
    `);
    const why = `io_uring unavailable: io_uring_setup: ${code} (errno ${errno})`;
    assertEquals(r.info, {
      name: "poll",
      requested: "auto",
      fallback: why,
      detail: null,
      reason: `poll, moving to epoll at 64 fds (auto; ${why}): AIOLOOP_FDMON not set`,
    });
    assertEquals(r.infoAio, r.info.reason);
    assertEquals(r.supported.includes("io_uring"), false);
    assertEquals(r.forced.name, "FdMonUnavailableError");
    assertEquals([r.forced.code, r.forced.fdmon, r.forced.notSupported], [code, "io_uring", true]);
    assert(r.forced.message.includes(`io_uring_setup: ${code}`), r.forced.message);
    assertEquals(r.leak, 0);
  });
}

Deno.test("fdmon default: AIOLOOP_FDMON=io_uring that fails throws, naming the errno", async () => {
  const r = await runFresh(
    `
      ioUringHooks.setupErrno = 1;
      out.env = error(() => AioContext.create());
    `,
    { AIOLOOP_FDMON: "io_uring" },
  );
  assertEquals([r.env.name, r.env.code, r.env.fdmon], [
    "FdMonUnavailableError",
    "EPERM",
    "io_uring",
  ]);
});

Deno.test({
  name: "fdmon default: QEMU's rule in order: fall back while none has io_uring, then all must",
  ignore: !URING,
  fn: async () => {
    const r = await runFresh(`
      const before = openFdCount();
      // EMFILE says nothing about the kernel: not cached, a later ring may work.
      ioUringHooks.setupErrno = 24;
      const a = AioContext.create();
      out.first = [a.fdmon, a.fdmonInfo().fallback];
      ioUringHooks.setupErrno = null;
      const b = AioContext.create();
      out.second = b.fdmon;
      ioUringHooks.setupErrno = 24;
      out.third = error(() => AioContext.create());
      out.forcedPoll = error(() => AioContext.create({ fdmon: "poll" }));
      ioUringHooks.setupErrno = null;
      a.destroy();
      b.destroy();
      out.leak = openFdCount() - before;
    `);
    assertEquals(r.first, ["poll", "io_uring unavailable: io_uring_setup: EMFILE (errno 24)"]);
    assertEquals(r.second, "io_uring");
    assertEquals([r.third.name, r.third.code], ["FdMonUnavailableError", "EMFILE"]);
    assert(r.third.message.includes("every context must have it"), r.third.message);
    assertEquals(r.forcedPoll, null);
    assertEquals(r.leak, 0);
  },
});

// Last: the IOThread's runtime fds close on their own schedule after it ends.
Deno.test({
  name: "fdmon default: an IOThread's auto context is bound by the rule of the whole process",
  ignore: !URING,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    using main = AioContext.create();
    assertEquals(main.fdmon, "io_uring");
    await using t = await IOThread.create({ id: "fdmon-default" });
    const mod = new URL("./testdata/fdmon_default_fns.ts", import.meta.url).href;
    // Its own context took io_uring; a new one in that isolate whose ring
    // fails must throw, since this isolate's contexts have io_uring.
    assertEquals(await t.run(mod, "threadContextFdMon"), "io_uring");
    assertEquals(await t.run(mod, "failingAutoContext", EMFILE), {
      name: "FdMonUnavailableError",
      code: "EMFILE",
    });
  },
});

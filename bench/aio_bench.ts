// Benchmarks of the AioContext core (util/async.c, util/aio-posix.c):
// bottom-half dispatch, an empty poll, notify round trips and a poll over
// 10 000 fds, per fd monitor where the monitor matters.
//
//   deno bench -A bench/aio_bench.ts        (aioloop and in-process floors)
//   deno run -A bench/run.ts                (plus the C/GLib anchors, as ratios)
//
// Each group has an in-process `baseline` (the same work done with the
// least machinery JS and FFI allow), so `deno bench` alone shows the
// overhead of the context; bench/run.ts adds C programs doing the same work
// (bench/anchors/*.c) and prints both side by side. bench/README.md says
// what each case measures.
import { AioContext } from "../aio/aio_context.ts";
import { EventNotifier } from "../aio/event_notifier.ts";
import { supportedFdMons } from "../fdmon/mod.ts";
import type { FdMonName } from "../fdmon/fdmon_ops.ts";
import { EPOLL_CTL_ADD, epollCreate, epollCtl, EpollEvents, epollWait } from "../sys/epoll.ts";
import { eventfd, read, write } from "../sys/fd.ts";
import { POLLERR, PollFdArray, POLLHUP, POLLIN, pollNs } from "../sys/poll.ts";
import { ensureNofile } from "../sys/rlimit.ts";
import { clockGetNs, QEMUClockType, SCALE_NS } from "../aio/timer.ts";
import { ioUringHooks } from "../fdmon/_io_uring_hooks.ts";

// Every fd monitor this machine supports.
const BACKENDS: FdMonName[] = supportedFdMons();
const ONE = new Uint8Array(new BigUint64Array([1n]).buffer);
const SCRATCH = new Uint8Array(8);
const noop = (): void => {};

function fail(what: string): never {
  throw new Error(`Benchmark invariant broken: ${what}`);
}

// ---- bh: schedule one BH and run it with a non-blocking poll ----

/**
 * The floor for "schedule a callback, then run what is scheduled": a
 * pending flag and an array used as a stack, with no context around it.
 * It does what BhList does minus flags for cancel/delete/idle, slices,
 * the notify and the rest of aio_poll.
 */
class MinimalBh {
  pending = false;
  constructor(readonly cb: () => void) {}
}
const minimalQueue: MinimalBh[] = [];
function minimalSchedule(bh: MinimalBh): void {
  if (!bh.pending) {
    bh.pending = true;
    minimalQueue.push(bh);
  }
}
function minimalRun(): boolean {
  let ran = false;
  let bh: MinimalBh | undefined;
  while ((bh = minimalQueue.pop()) !== undefined) {
    bh.pending = false;
    bh.cb();
    ran = true;
  }
  return ran;
}
{
  let n = 0;
  const bh = new MinimalBh(() => n++);
  Deno.bench(
    { name: "JS floor: minimal BH queue, schedule + run", group: "bh", baseline: true },
    () => {
      minimalSchedule(bh);
      if (!minimalRun()) fail("the minimal BH did not run");
    },
  );
}
for (const fdmon of BACKENDS) {
  const ctx = AioContext.create({ fdmon, name: `bench-bh-${fdmon}` });
  let n = 0;
  const bh = ctx.bhNew(() => n++, { name: "bench" });
  Deno.bench({ name: `BH schedule + poll(false) [${fdmon}]`, group: "bh" }, () => {
    bh.schedule();
    if (!ctx.poll(false)) fail("the BH did not run");
  });
  const once = (): void => {
    n++;
  };
  Deno.bench({ name: `oneshot BH + poll(false) [${fdmon}]`, group: "bh" }, () => {
    ctx.bhScheduleOneshot(once);
    if (!ctx.poll(false)) fail("the oneshot BH did not run");
  });
}

// ---- empty poll ----

for (const fdmon of BACKENDS) {
  const ctx = AioContext.create({ fdmon, name: `bench-empty-${fdmon}` });
  Deno.bench({ name: `poll(false), empty context [${fdmon}]`, group: "empty poll" }, () => {
    if (ctx.poll(false)) fail("an empty poll made progress");
  });
}

// ---- notify ----

{
  // The raw FFI round trip the context's EventNotifier case makes: write
  // the eventfd, wait on two fds (the idle notifier and this one) with an
  // infinite timeout that returns at once, read it clear.
  const idle = eventfd();
  const efd = eventfd();
  const fds = new PollFdArray(2);
  fds.push(idle, POLLIN | POLLHUP | POLLERR);
  fds.push(efd, POLLIN | POLLHUP | POLLERR);
  Deno.bench(
    { name: "raw FFI: eventfd write + poll + read", group: "notify", baseline: true },
    () => {
      write(efd, ONE);
      if (pollNs(fds, -1) !== 1) fail("poll did not see the eventfd");
      if (read(efd, SCRATCH) !== 8) fail("the eventfd was not readable");
    },
  );
  const epfd = epollCreate();
  const evs = new EpollEvents(128);
  epollCtl(epfd, EPOLL_CTL_ADD, idle, POLLIN | POLLHUP | POLLERR, 0);
  epollCtl(epfd, EPOLL_CTL_ADD, efd, POLLIN | POLLHUP | POLLERR, 1);
  Deno.bench({ name: "raw FFI: eventfd write + epoll_wait + read", group: "notify" }, () => {
    write(efd, ONE);
    if (epollWait(epfd, evs, -1) !== 1) fail("epoll_wait did not see the eventfd");
    if (read(efd, SCRATCH) !== 8) fail("the eventfd was not readable");
  });
}
for (const fdmon of BACKENDS) {
  const ctx = AioContext.create({ fdmon, name: `bench-notify-${fdmon}` });
  // aio_notify writes the eventfd only when a poller is inside its wait
  // window (notify_me != 0); here nobody is, so this measures the flag
  // handshake: notified is seen and the blocking poll does not block.
  Deno.bench({ name: `notify() + poll(true) [${fdmon}]`, group: "notify" }, () => {
    ctx.notify();
    if (ctx.poll(true)) fail("a bare kick made progress");
  });
  // The real eventfd round trip: set, a blocking poll that wakes on it and
  // runs the handler, which clears it.
  const ctx2 = AioContext.create({ fdmon, name: `bench-notifier-${fdmon}` });
  const e = EventNotifier.create();
  ctx2.setEventNotifier(e, () => {
    e.testAndClear();
  });
  ctx2.poll(false); // consume the registration's kick
  Deno.bench({ name: `EventNotifier set + poll(true) [${fdmon}]`, group: "notify" }, () => {
    e.set();
    if (!ctx2.poll(true)) fail("the notifier handler did not run");
  });
}

// ---- timed waits: the io_uring monitor with and without EXT_ARG ----
//
// Both io_uring contexts are made here, one with IORING_ENTER_EXT_ARG (the
// timeout goes to io_uring_enter) and one forced onto the IORING_OP_TIMEOUT
// SQE path, so the two rows compare in one run.

/** The io_uring timed-wait variants this kernel can run, by label. */
function timedWaitVariants(): { label: string; fdmon: FdMonName; extArg: boolean }[] {
  const out: { label: string; fdmon: FdMonName; extArg: boolean }[] = [];
  for (const fdmon of BACKENDS) {
    if (fdmon !== "io_uring") out.push({ label: fdmon, fdmon, extArg: true });
  }
  if (BACKENDS.includes("io_uring")) {
    out.push({ label: "io_uring, TIMEOUT SQE", fdmon: "io_uring", extArg: false });
    out.push({ label: "io_uring, EXT_ARG", fdmon: "io_uring", extArg: true });
  }
  return out;
}

function makeTimedCtx(fdmon: FdMonName, extArg: boolean, name: string): AioContext {
  const saved = ioUringHooks.extArg;
  ioUringHooks.extArg = extArg;
  try {
    const ctx = AioContext.create({ fdmon, name });
    const detail = ctx.fdmonInfo().detail ?? "";
    if (fdmon === "io_uring" && extArg !== detail.includes("EXT_ARG")) {
      fail(`the ${name} context's timed waits are not what the row says: ${detail}`);
    }
    return ctx;
  } finally {
    ioUringHooks.extArg = saved;
  }
}
{
  // A ready fd ends a timed wait (a timer is pending 1 s out): on io_uring
  // the handler's one-shot poll is re-armed by each wait and completes at
  // once, so every poll(true) is a timed io_uring_enter that a completion
  // ends; with a TIMEOUT SQE that SQE, and its own CQE, come on top.
  const efd = eventfd(1); // stays readable: nobody reads it
  const fds = new PollFdArray(1);
  fds.push(efd, POLLIN | POLLHUP | POLLERR);
  Deno.bench(
    { name: "raw FFI: ppoll on a ready eventfd, 1 s timeout", group: "timed wait", baseline: true },
    () => {
      if (pollNs(fds, 1e9) !== 1) fail("ppoll did not see the ready eventfd");
    },
  );
  for (const v of timedWaitVariants()) {
    const ctx = makeTimedCtx(v.fdmon, v.extArg, `bench-timed-fd-${v.label}`);
    let hits = 0;
    ctx.setFdHandler(efd, { read: () => hits++ });
    const t = ctx.timerNew(QEMUClockType.REALTIME, SCALE_NS, noop);
    t.mod(clockGetNs(QEMUClockType.REALTIME) + 3600e9);
    ctx.poll(false);
    Deno.bench({
      name: `ready fd ends a timed poll(true) [${v.label}]`,
      group: "timed wait",
    }, () => {
      const before = hits;
      if (!ctx.poll(true) || hits !== before + 1) fail("the ready handler did not run once");
    });
  }
  // A timed wait that expires: a timer 20 us out, then a blocking poll that
  // runs it. This is mostly the kernel's timer: poll and epoll_wait sleep
  // with the thread's timer slack (50 us by default), io_uring waits without.
  const idle = eventfd();
  const ifds = new PollFdArray(1);
  ifds.push(idle, POLLIN | POLLHUP | POLLERR);
  Deno.bench(
    { name: "raw FFI: ppoll on an idle eventfd, 20 us timeout", group: "timed wait expiry" },
    () => {
      if (pollNs(ifds, 20_000) !== 0) fail("ppoll saw the idle eventfd");
    },
  );
  for (const v of timedWaitVariants()) {
    const ctx = makeTimedCtx(v.fdmon, v.extArg, `bench-timed-expiry-${v.label}`);
    let fired = 0;
    const t = ctx.timerNew(QEMUClockType.REALTIME, SCALE_NS, () => fired++);
    Deno.bench({
      name: `timer 20 us out + poll(true) until it runs [${v.label}]`,
      group: "timed wait expiry",
    }, () => {
      const before = fired;
      t.mod(clockGetNs(QEMUClockType.REALTIME) + 20_000);
      while (fired === before) ctx.poll(true);
    });
  }
}

// ---- 10 000 fds: one iteration with many idle fds and one ready ----

/** The fd count the 10k case uses: AIOLOOP_BENCH_FDS, else 10 000, within the fd limit. */
function manyFdCount(): number {
  let want = 10_000;
  try {
    const v = Deno.env.get("AIOLOOP_BENCH_FDS");
    if (v !== undefined && v !== "") want = Number(v);
  } catch {
    // no env permission: keep the default
  }
  if (!Number.isSafeInteger(want) || want < 1) fail(`AIOLOOP_BENCH_FDS=${want}`);
  // Room for the idle fds, the ready one and the contexts' own fds.
  const soft = ensureNofile(want + 256);
  if (soft < want + 256) {
    const scaled = Math.max(64, soft - 256);
    console.error(`fd limit ${soft}: the many-fds case uses ${scaled} idle fds, not ${want}`);
    return scaled;
  }
  return want;
}
{
  const n = manyFdCount();
  const idle: number[] = [];
  for (let i = 0; i < n; i++) idle.push(eventfd());
  const ready = eventfd(1); // stays readable: nobody reads it
  const all = [...idle.slice(0, n >> 1), ready, ...idle.slice(n >> 1)];

  // Floors: the raw syscalls over the same fds.
  const epfd = epollCreate();
  const evs = new EpollEvents(128);
  all.forEach((fd, i) => epollCtl(epfd, EPOLL_CTL_ADD, fd, POLLIN | POLLHUP | POLLERR, i));
  Deno.bench({
    name: `raw FFI: epoll_wait, ${n} idle + 1 ready`,
    group: "10k fds",
    baseline: true,
  }, () => {
    if (epollWait(epfd, evs, 0) !== 1) fail("epoll_wait did not report exactly one fd");
  });
  const pfds = new PollFdArray(all.length);
  for (const fd of all) pfds.push(fd, POLLIN | POLLHUP | POLLERR);
  Deno.bench({ name: `raw FFI: pollNs, ${n} idle + 1 ready`, group: "10k fds" }, () => {
    if (pollNs(pfds, 0) !== 1) fail("poll did not report exactly one fd");
  });

  for (const fdmon of BACKENDS) {
    const ctx = AioContext.create({ fdmon, name: `bench-many-${fdmon}` });
    let hits = 0;
    for (const fd of idle) ctx.setFdHandler(fd, { read: noop });
    ctx.setFdHandler(ready, { read: () => hits++ });
    ctx.poll(false); // the first wait moves a poll context to epoll
    const now = ctx.fdmon === fdmon ? fdmon : `${fdmon}→${ctx.fdmon}`;
    Deno.bench({ name: `poll(false), ${n} idle + 1 ready [${now}]`, group: "10k fds" }, () => {
      const before = hits;
      if (!ctx.poll(false) || hits !== before + 1) fail("the ready handler did not run once");
    });
  }
}

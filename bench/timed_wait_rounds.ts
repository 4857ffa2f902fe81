// Timed waits on io_uring with and without IORING_ENTER_EXT_ARG, in
// alternating rounds in one process (the machine is noisy: each variant
// runs a round in turn, and the median and minimum of the per-round ns/op
// are printed, with the in-process ppoll floor measured the same way).
//
//   deno run -A bench/timed_wait_rounds.ts [rounds] [iterations per round]
//
// Cases (as the "timed wait" group of bench/aio_bench.ts):
// - ready fd: a timer pends 1 h out and a never-drained eventfd is watched;
//   each poll(true) is a timed wait that the fd's re-armed one-shot poll
//   ends at once. With a TIMEOUT SQE that SQE and its CQE come on top.
// - expiry: a timer 20 us out and poll(true) until it runs.
import { AioContext } from "../aio/aio_context.ts";
import { clockGetNs, QEMUClockType, SCALE_NS } from "../aio/timer.ts";
import { ioUringHooks } from "../fdmon/_io_uring_hooks.ts";
import { supportedFdMons } from "../fdmon/select.ts";
import type { FdMonName } from "../fdmon/fdmon_ops.ts";
import { eventfd } from "../sys/fd.ts";
import { POLLERR, PollFdArray, POLLHUP, POLLIN, pollNs } from "../sys/poll.ts";

const rounds = Number(Deno.args[0] ?? 31);
const iters = Number(Deno.args[1] ?? 5000);

interface Variant {
  label: string;
  run: (n: number) => void;
}

function fail(what: string): never {
  throw new Error(`Benchmark invariant broken: ${what}`);
}

function makeCtx(fdmon: FdMonName, extArg: boolean, name: string): AioContext {
  const saved = ioUringHooks.extArg;
  ioUringHooks.extArg = extArg;
  try {
    const ctx = AioContext.create({ fdmon, name });
    const detail = ctx.fdmonInfo().detail ?? "";
    if (fdmon === "io_uring" && extArg !== detail.includes("EXT_ARG")) fail(detail);
    return ctx;
  } finally {
    ioUringHooks.extArg = saved;
  }
}

const monitors: { label: string; fdmon: FdMonName; extArg: boolean }[] = [];
for (const fdmon of supportedFdMons()) {
  if (fdmon !== "io_uring") monitors.push({ label: fdmon, fdmon, extArg: true });
}
if (supportedFdMons().includes("io_uring")) {
  monitors.push({ label: "io_uring, TIMEOUT SQE", fdmon: "io_uring", extArg: false });
  monitors.push({ label: "io_uring, EXT_ARG", fdmon: "io_uring", extArg: true });
}

function readyFdVariants(): Variant[] {
  const efd = eventfd(1);
  const fds = new PollFdArray(1);
  fds.push(efd, POLLIN | POLLHUP | POLLERR);
  const out: Variant[] = [{
    label: "floor: ppoll on a ready eventfd, 1 s timeout",
    run: (n) => {
      for (let i = 0; i < n; i++) if (pollNs(fds, 1e9) !== 1) fail("ppoll");
    },
  }];
  for (const m of monitors) {
    const ctx = makeCtx(m.fdmon, m.extArg, `rounds-fd-${m.label}`);
    let hits = 0;
    ctx.setFdHandler(efd, { read: () => hits++ });
    const t = ctx.timerNew(QEMUClockType.REALTIME, SCALE_NS, () => {});
    t.mod(clockGetNs(QEMUClockType.REALTIME) + 3600e9);
    ctx.poll(false);
    out.push({
      label: `ready fd ends a timed poll(true) [${m.label}]`,
      run: (n) => {
        const before = hits;
        for (let i = 0; i < n; i++) ctx.poll(true);
        if (hits !== before + n) fail("the ready handler did not run once per poll");
      },
    });
  }
  return out;
}

function expiryVariants(): Variant[] {
  const idle = eventfd();
  const fds = new PollFdArray(1);
  fds.push(idle, POLLIN | POLLHUP | POLLERR);
  const out: Variant[] = [{
    label: "floor: ppoll on an idle eventfd, 20 us timeout",
    run: (n) => {
      for (let i = 0; i < n; i++) if (pollNs(fds, 20_000) !== 0) fail("ppoll");
    },
  }];
  for (const m of monitors) {
    const ctx = makeCtx(m.fdmon, m.extArg, `rounds-expiry-${m.label}`);
    let fired = 0;
    const t = ctx.timerNew(QEMUClockType.REALTIME, SCALE_NS, () => fired++);
    out.push({
      label: `timer 20 us out + poll(true) until it runs [${m.label}]`,
      run: (n) => {
        for (let i = 0; i < n; i++) {
          const before = fired;
          t.mod(clockGetNs(QEMUClockType.REALTIME) + 20_000);
          while (fired === before) ctx.poll(true);
        }
      },
    });
  }
  return out;
}

function measure(title: string, variants: Variant[], n: number): void {
  const samples: number[][] = variants.map(() => []);
  for (const v of variants) v.run(Math.min(n, 500)); // warm-up
  for (let r = 0; r < rounds; r++) {
    // Alternate the order too, so no variant always follows the same one.
    const order = variants.map((_, i) => i);
    if (r % 2 === 1) order.reverse();
    for (const i of order) {
      const t0 = performance.now();
      variants[i].run(n);
      samples[i].push(((performance.now() - t0) * 1e6) / n);
    }
  }
  console.log(`\n${title}: ${rounds} alternating rounds of ${n} iterations; ns/op`);
  const floor = median(samples[0]);
  for (let i = 0; i < variants.length; i++) {
    const s = samples[i];
    const med = median(s);
    console.log(
      `  ${variants[i].label.padEnd(64)} median ${med.toFixed(0).padStart(7)}  min ${
        Math.min(...s).toFixed(0).padStart(7)
      }  x floor ${(med / floor).toFixed(2)}`,
    );
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

console.log(`timed-wait rounds, ${new Date().toISOString()}, Deno ${Deno.version.deno}`);
measure("ready fd ends a timed wait", readyFdVariants(), iters);
measure("timed wait that expires", expiryVariants(), Math.max(1, Math.floor(iters / 10)));

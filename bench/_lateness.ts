// How late a 1 ms REALTIME timer fires, for each way of running aioloop's
// loops, next to GLib's g_timeout_add(1) (bench/anchors/glib_timeout_lateness.c)
// measured in the same run. The machine is shared and noisy, so the cases
// take turns for many rounds and the report gives, per case, the median of
// the per-round p50/mean/p99 and its ratio to GLib's.
//
//   deno run -A bench/_lateness.ts [--rounds N] [--samples N]
//
// Lateness = fire time - (arm time + 1 ms), both from CLOCK_MONOTONIC.
// Cases:
// - glib: the C anchor (a separate process), with the kernel's default
//   50 us timer slack (the reference: what a plain GLib program gets), and
//   with QEMU's 1 ns;
// - raw FFI ppoll: pollNs() over no fds for 1 ms, on this thread (1 ns
//   slack): the floor of any wait of a Deno thread, no loop at all;
// - ctx.poll(true): a timer of the main AioContext, its own poll only;
// - mainLoopWait(false): a main-loop timer (timerNewNs), synchronous loop;
// - mainLoopRun(): the same timer under the run whose wait is parked.
import {
  mainLoopQuit,
  mainLoopRun,
  mainLoopWait,
  qemuCleanupMainLoop,
  qemuGetAioContext,
  qemuInitMainLoop,
} from "../main_loop.ts";
import { clockGetNs, QEMUClockType, SCALE_NS, timerNewNs } from "../aio/timer.ts";
import { buildAnchors } from "./_anchor.ts";
import { PollFdArray, pollNs } from "../sys/poll.ts";

const RT = QEMUClockType.REALTIME;
const PERIOD = 1_000_000;

function arg(name: string, def: number): number {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Number(Deno.args[i + 1]) : def;
}
const ROUNDS = arg("--rounds", 15);
const SAMPLES = arg("--samples", 200);

/** p50, mean and p99 of one round, ns. */
interface Stats {
  p50: number;
  mean: number;
  p99: number;
}

export function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return { p50: s[s.length >> 1], mean, p99: s[Math.floor((s.length - 1) * 0.99)] };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

function rawPpollCase(n: number): number[] {
  const out: number[] = [];
  const none = new PollFdArray();
  for (let i = 0; i < n; i++) {
    const t0 = clockGetNs(RT);
    pollNs(none, PERIOD);
    out.push(clockGetNs(RT) - t0 - PERIOD);
  }
  return out;
}

function ctxPollCase(n: number): number[] {
  const ctx = qemuGetAioContext();
  const out: number[] = [];
  let fired = 0;
  const t = ctx.timerNew(RT, SCALE_NS, () => fired = clockGetNs(RT));
  for (let i = 0; i < n; i++) {
    fired = 0;
    const t0 = clockGetNs(RT);
    t.mod(t0 + PERIOD);
    while (fired === 0) ctx.poll(true);
    out.push(fired - t0 - PERIOD);
  }
  t.del();
  return out;
}

function mainLoopWaitCase(n: number): number[] {
  const out: number[] = [];
  let fired = 0;
  const t = timerNewNs(RT, () => fired = clockGetNs(RT));
  for (let i = 0; i < n; i++) {
    fired = 0;
    const t0 = clockGetNs(RT);
    t.mod(t0 + PERIOD);
    while (fired === 0) mainLoopWait(false);
    out.push(fired - t0 - PERIOD);
  }
  t.del();
  return out;
}

async function mainLoopRunCase(n: number): Promise<number[]> {
  const out: number[] = [];
  let t0 = 0;
  // Re-armed from its own callback, as a periodic device timer is.
  const t = timerNewNs(RT, () => {
    const now = clockGetNs(RT);
    out.push(now - t0 - PERIOD);
    if (out.length >= n) return mainLoopQuit();
    t0 = clockGetNs(RT);
    t.mod(t0 + PERIOD);
  });
  t0 = clockGetNs(RT);
  t.mod(t0 + PERIOD);
  await mainLoopRun();
  t.del();
  return out;
}

if (import.meta.main) {
  await using build = await buildAnchors();
  const glibProg = build.programs.find((p) => p.name === "glib_timeout_lateness");
  qemuInitMainLoop();
  const cases: [string, () => Promise<Stats>][] = [
    ["raw FFI ppoll (Deno floor)", () => Promise.resolve(stats(rawPpollCase(SAMPLES)))],
    ["ctx.poll(true)", () => Promise.resolve(stats(ctxPollCase(SAMPLES)))],
    ["mainLoopWait(false)", () => Promise.resolve(stats(mainLoopWaitCase(SAMPLES)))],
    ["mainLoopRun() (parked)", async () => stats(await mainLoopRunCase(SAMPLES))],
  ];
  if (glibProg !== undefined) {
    const glib = (slack: number) => async (): Promise<Stats> => {
      const args = [String(SAMPLES), String(slack)];
      const r = await new Deno.Command(glibProg.path, { args, stdout: "piped" }).output();
      const j = JSON.parse(new TextDecoder().decode(r.stdout));
      return { p50: j.ns, mean: j.mean, p99: j.p99 };
    };
    cases.unshift(["glib g_timeout_add(1), 1 ns slack", glib(1)]);
    cases.unshift(["glib g_timeout_add(1)", glib(50_000)]);
  }
  const per = new Map<string, Stats[]>(cases.map(([n]) => [n, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, run] of cases) per.get(name)!.push(await run());
  }
  qemuCleanupMainLoop();
  const g = per.get("glib g_timeout_add(1)");
  const base = g === undefined ? null : {
    p50: median(g.map((s) => s.p50)),
    mean: median(g.map((s) => s.mean)),
    p99: median(g.map((s) => s.p99)),
  };
  const us = (ns: number): string => (ns / 1000).toFixed(1);
  const x = (v: number, b: number | undefined): string =>
    b === undefined ? "" : ` (${(v / b).toFixed(2)}x)`;
  console.log(`1 ms timer lateness, us: median over ${ROUNDS} rounds of ${SAMPLES} samples`);
  console.log("case | p50 | mean | p99");
  for (const [name] of cases) {
    const ss = per.get(name)!;
    const p50 = median(ss.map((s) => s.p50));
    const mean = median(ss.map((s) => s.mean));
    const p99 = median(ss.map((s) => s.p99));
    console.log(
      `${name} | ${us(p50)}${x(p50, base?.p50)} | ${us(mean)}${x(mean, base?.mean)} | ` +
        `${us(p99)}${x(p99, base?.p99)}`,
    );
  }
}

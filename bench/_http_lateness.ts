// How late a 10 ms main-loop timer fires while Deno.serve, on the same
// isolate, answers 200 concurrent HTTP requests that each hop through the
// loop (a oneshot BH on the main AioContext, awaited), next to the same
// timer with no load, and to a timer on an IOThread (a Worker with its own
// loop) with and without the same load.
//
//   deno run -A bench/_http_lateness.ts [--rounds N] [--samples N]
//
// The load generator is a second Deno process (bench/_http_load.ts)
// keeping 200 requests in flight. GLib's g_timeout_add(10) in a C process
// of its own, idle and under the same load, shows what the machine alone
// costs. Cases take turns for several rounds; the report gives, per case,
// lateness p50/mean/p99/max over all its samples, requests/s, and the CPU
// share of this isolate's thread. To see where a loaded loop's time goes
// it also reports, for the main loop's own parked waits, the hop of the
// timed waits (timerfd ringing to the isolate resuming) and how early the
// timerfd rang, and how long zero-timeout parked waits (yields to Deno's
// loop) stayed parked. Add `--v8-flags=--trace-gc` to see the collector's
// pauses.
import {
  mainLoopQuit,
  mainLoopRun,
  qemuCleanupMainLoop,
  qemuGetAioContext,
  qemuInitMainLoop,
} from "../main_loop.ts";
import { clockGetNs, QEMUClockType, timerNewNs } from "../aio/timer.ts";
import { IOThread } from "../iothread/iothread.ts";
import { asyncWaitStats, parkedWaitMarginNs, setParkObserver } from "../sys/_async_wait.ts";
import type { TimerJob } from "./_lateness_iothread.ts";
import { buildAnchors } from "./_anchor.ts";

const RT = QEMUClockType.REALTIME;
const PERIOD = 10_000_000;

function arg(name: string, def: number): number {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Number(Deno.args[i + 1]) : def;
}
const ROUNDS = arg("--rounds", 3);
const SAMPLES = arg("--samples", 150);
const CONCURRENCY = arg("--concurrency", 200);

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length - 1) * p))];
}
const us = (ns: number): string => (ns / 1000).toFixed(0);
function row(name: string, xs: number[], extra = ""): string {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return `${name} | ${us(pct(xs, 0.5))} | ${us(mean)} | ${us(pct(xs, 0.99))} | ` +
    `${us(Math.max(...xs))}${extra}`;
}

qemuInitMainLoop();
const main = qemuGetAioContext();
let served = 0;
const server = Deno.serve(
  { port: 0, hostname: "127.0.0.1", onListen() {} },
  async (): Promise<Response> => {
    // Each request hops through the loop: a BH it awaits.
    const { promise, resolve } = Promise.withResolvers<void>();
    main.bhScheduleOneshot(() => resolve(), "http-hop");
    await promise;
    served++;
    return new Response("ok");
  },
);
const url = `http://127.0.0.1:${server.addr.port}/`;
const running = mainLoopRun();

/** `n` fires of a 10 ms main-loop timer re-armed from its callback. */
function loopTimer(n: number): Promise<number[]> {
  const out: number[] = [];
  const { promise, resolve } = Promise.withResolvers<number[]>();
  let expire = clockGetNs(RT) + PERIOD;
  const t = timerNewNs(RT, () => {
    const now = clockGetNs(RT);
    out.push(now - expire);
    hops.push(asyncWaitStats.lastHopNs);
    margins.push(parkedWaitMarginNs());
    if (out.length >= n) {
      t.del();
      return resolve(out);
    }
    expire = now + PERIOD;
    t.modNs(expire);
  });
  t.modNs(expire);
  return promise;
}

const io = await IOThread.create({ id: "timers" });
const ioMod = new URL("./_lateness_iothread.ts", import.meta.url).href;
/** `n` fires of a 10 ms timer on the IOThread's own context. */
async function ioTimer(n: number): Promise<number[]> {
  const job: TimerJob = {
    periodNs: PERIOD,
    samples: new Float64Array(new SharedArrayBuffer(8 * n)),
    count: new Int32Array(new SharedArrayBuffer(4)),
  };
  await io.run(ioMod, "startTimer", job);
  while (Atomics.load(job.count, 0) < n) await new Promise((r) => setTimeout(r, 20));
  return [...job.samples];
}

await using build = await buildAnchors();
const glibProg = build.programs.find((p) => p.name === "glib_timeout_lateness");
/**
 * `n` fires of GLib's g_timeout_add(10) in a C process of its own (1 ns
 * timer slack, as this isolate's thread has): the same machine and load,
 * without Deno.
 */
async function glibTimer(n: number): Promise<number[]> {
  const args = [String(n), "1", "10", "raw"];
  const r = await new Deno.Command(glibProg!.path, { args, stdout: "piped" }).output();
  return JSON.parse(new TextDecoder().decode(r.stdout)) as number[];
}

function mainThreadCpuNs(): number {
  const f = Deno.readTextFileSync(`/proc/self/task/${Deno.pid}/stat`);
  const fields = f.slice(f.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 Hz).
  return (Number(fields[11]) + Number(fields[12])) * 1e7;
}
const cpuShare = new Map<string, number[]>();

/** Runs `fn` with the load generator hammering the server. */
async function loaded<T>(fn: () => Promise<T>): Promise<{ r: T; rps: number }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      new URL("./_http_load.ts", import.meta.url).pathname,
      "--url",
      url,
      "--concurrency",
      String(CONCURRENCY),
    ],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  await new Promise((r) => setTimeout(r, 500)); // warm-up
  const s0 = served, t0 = performance.now();
  const r = await fn();
  const rps = (served - s0) / ((performance.now() - t0) / 1000);
  await child.stdin.close();
  await child.output();
  return { r, rps };
}

const cases = [
  "GLib g_timeout_add(10) process, idle",
  "GLib g_timeout_add(10) process, HTTP load",
  "loop timer, idle",
  "loop timer, HTTP load",
  "IOThread timer, idle",
  "IOThread timer, HTTP load",
];
const lat = new Map<string, number[]>(cases.map((c) => [c, []]));
const rps = new Map<string, number[]>(cases.map((c) => [c, []]));
let hops: number[] = [];
let margins: number[] = [];
const marginsBy = new Map<string, number[]>();
const hopsBy = new Map<string, number[]>();
const zeroParks = new Map<string, number[]>(cases.map((c) => [c, []]));
let curZero: number[] = [];
setParkObserver((timeoutNs, parkedNs) => {
  if (timeoutNs === 0) curZero.push(parkedNs);
});
for (let round = 0; round < ROUNDS; round++) {
  for (const c of cases) {
    hops = [];
    margins = [];
    curZero = zeroParks.get(c)!;
    const cpu0 = mainThreadCpuNs(), wall0 = clockGetNs(RT);
    if (c.startsWith("GLib")) {
      if (glibProg === undefined) continue;
      if (c.endsWith("idle")) lat.get(c)!.push(...await glibTimer(SAMPLES));
      else {
        const { r, rps: q } = await loaded(() => glibTimer(SAMPLES));
        lat.get(c)!.push(...r);
        rps.get(c)!.push(q);
      }
    } else if (c === "loop timer, idle") {
      lat.get(c)!.push(...await loopTimer(SAMPLES));
    } else if (c === "loop timer, HTTP load") {
      const { r, rps: q } = await loaded(() => loopTimer(SAMPLES));
      lat.get(c)!.push(...r);
      rps.get(c)!.push(q);
    } else if (c === "IOThread timer, idle") {
      lat.get(c)!.push(...await ioTimer(SAMPLES));
    } else {
      const { r, rps: q } = await loaded(() => ioTimer(SAMPLES));
      lat.get(c)!.push(...r);
      rps.get(c)!.push(q);
    }
    hopsBy.set(c, [...(hopsBy.get(c) ?? []), ...hops]);
    marginsBy.set(c, [...(marginsBy.get(c) ?? []), ...margins]);
    const share = (mainThreadCpuNs() - cpu0) / (clockGetNs(RT) - wall0);
    cpuShare.set(c, [...(cpuShare.get(c) ?? []), share]);
  }
}
setParkObserver(null);
console.log(
  `10 ms timer lateness, us (${ROUNDS} rounds x ${SAMPLES} fires per case; ` +
    `${CONCURRENCY} concurrent requests, each awaiting a BH of the main loop; ` +
    `${navigator.hardwareConcurrency} CPUs, load ${Deno.loadavg()[0].toFixed(1)})`,
);
console.log("case | p50 | mean | p99 | max | requests/s | main thread busy");
const avg = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
for (const c of cases) {
  const q = rps.get(c)!;
  const busy = `${(100 * avg(cpuShare.get(c)!)).toFixed(0)}%`;
  console.log(row(c, lat.get(c)!, ` | ${q.length ? avg(q).toFixed(0) : "-"} | ${busy}`));
}
console.log("\nwhere a loop timer's time goes, us: p50 | mean | p99 | max");
for (const c of cases.filter((c) => c.startsWith("loop"))) {
  const z = zeroParks.get(c)!;
  if (z.length > 0) {
    console.log(row(`${c}: zero-timeout parked wait (yield)`, z, ` | n=${z.length}`));
  }
  const h = hopsBy.get(c)!.filter((x) => x > 0);
  if (h.length > 0) console.log(row(`${c}: timed wait hop (timerfd to resume)`, h));
  const m = marginsBy.get(c)!;
  if (m.length > 0) console.log(row(`${c}: how early the timerfd rang`, m));
}
await io.stop();
mainLoopQuit();
await running;
await server.shutdown();
qemuCleanupMainLoop();

// Cross-thread round trips: the main thread and an IOThread waking each
// other, next to the floors measured in the same run.
//
//   deno run -A bench/iothread_bench.ts [rounds [rtts]] [--pin]  # table: µs per round trip, ratios
//   deno bench -A bench/iothread_bench.ts         # the same cases as deno bench batches
//
// Cases (one round trip = main wakes the other thread, which wakes main):
// - raw FFI eventfd ping-pong, main <-> plain Worker, both blocked in a
//   synchronous FFI poll();
// - the spin floor: main and a plain Worker ping-pong one shared word with
//   Atomics, neither ever sleeping;
// - main <-> IOThread through shared BHs: main schedules the IOThread's
//   shared BH, whose callback schedules main's; main waits in
//   ctx.poll(true). Adaptive polling (pollMaxNs 32768) on both sides (the
//   main context busy-polls its notifier: the reply costs no syscall), on
//   the IOThread only (main sleeps), and off;
// - a named request answered at once: IOThread.runSync (the caller spins on
//   the reply for its adaptive window, or sleeps at once) and IOThread.run.
//
// Run mode also runs the C anchors bench/anchors/efd_pingpong_threads.c
// (two pthreads asleep in poll()) and spin_pingpong_threads.c, once per
// round, between the aioloop cases: rounds alternate, and each ratio is
// taken within its round. The machine is shared and both sides of a
// polling round trip need a CPU each, so the figures are bimodal: the table
// gives the min and the median over the rounds.
//
// Under `deno bench`, one iteration is a batch of BATCH round trips (each
// case must start and stop its Worker inside the bench function), compared
// with the raw floor as baseline; bench/run.ts divides by BATCH.
import { AioContext } from "../aio/aio_context.ts";
import { setCurrentAioContext } from "../aio/current.ts";
import { pollCounters } from "../aio/_poll_counters.ts";
import { RemoteAioContext, type RemoteBH } from "../aio/handle.ts";
import { IOThread } from "../iothread/iothread.ts";
import { libc } from "../sys/_libc.ts";
import { close, eventfd } from "../sys/fd.ts";
import { buildAnchors, runAnchor } from "./_anchor.ts";

const FNS = new URL("../_tests/testdata/multithread_fns.ts", import.meta.url);
const BATCH = 1000;
const POSITIONAL = Deno.args.filter((a) => !a.startsWith("--"));
// Many short rounds: the quiet moments of a shared machine are short.
const ROUNDS = Number(POSITIONAL[0] ?? 15);
const RUN_RTTS = Number(POSITIONAL[1] ?? 5000);
/** Pin main to CPU 0 and the other thread to CPU 1 (taskset; the C anchors pin themselves). */
const PIN = Deno.args.includes("--pin");
const LAT_RTTS = 2000;
const POLLIN = 1;
const POLL_NS = 32768;

interface Session {
  /**
   * Runs n round trips; returns µs per round trip. With `lat`, also times
   * each one (ms, into lat[i]).
   */
  run(n: number, lat?: Float64Array): Promise<number>;
  /** The OS thread id of the other side (for --pin). */
  peerTid: number;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------
// Raw floor: eventfd ping-pong with a plain Worker, both in sync FFI poll().

const RAW_WORKER = `
const lib = Deno.dlopen("libc.so.6", {
  poll: { parameters: ["buffer", "u32", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  gettid: { parameters: [], result: "i32" },
});
self.onmessage = (e) => {
  const { mine, peer, ctl } = e.data;
  const quit = new Int32Array(ctl);
  const pfd = new Uint8Array(8);
  const dv = new DataView(pfd.buffer);
  dv.setInt32(0, mine, true);
  dv.setInt16(4, ${POLLIN}, true);
  const buf = new Uint8Array(8);
  const one = new Uint8Array(new BigUint64Array([1n]).buffer);
  self.postMessage(lib.symbols.gettid());
  for (;;) {
    while (lib.symbols.poll(pfd, 1, -1) < 1);
    lib.symbols.read(mine, buf, 8);
    if (Atomics.load(quit, 0) !== 0) break;
    lib.symbols.write(peer, one, 8);
  }
  lib.close();
  self.postMessage("done");
};`;

async function rawSession(): Promise<Session> {
  const c = libc();
  const mine = eventfd();
  const peer = eventfd();
  const quit = new Int32Array(new SharedArrayBuffer(4));
  const w = new Worker(`data:text/javascript,${encodeURIComponent(RAW_WORKER)}`, {
    type: "module",
  });
  const ready = new Promise<MessageEvent>((r) => w.onmessage = r);
  w.postMessage({ mine: peer, peer: mine, ctl: quit.buffer });
  const peerTid = (await ready).data as number;
  const pfd = new Uint8Array(8);
  const dv = new DataView(pfd.buffer);
  dv.setInt32(0, mine, true);
  dv.setInt16(4, POLLIN, true);
  const buf = new Uint8Array(8);
  const one = new Uint8Array(new BigUint64Array([1n]).buffer);
  return {
    peerTid,
    run(n, lat) {
      const t0 = performance.now();
      let prev = t0;
      for (let i = 0; i < n; i++) {
        c.write(peer, one, 8);
        while (c.poll(pfd, 1, -1) < 1);
        c.read(mine, buf, 8);
        if (lat) lat[i] = -prev + (prev = performance.now());
      }
      return Promise.resolve((performance.now() - t0) * 1000 / n);
    },
    async close() {
      const done = new Promise((r) => w.onmessage = r);
      Atomics.store(quit, 0, 1);
      c.write(peer, one, 8);
      await done;
      w.terminate();
      close(mine);
      close(peer);
    },
  };
}

// ---------------------------------------------------------------------------
// Spin floor: one shared word, main and a plain Worker both spinning.

const SPIN_WORKER = `
const lib = Deno.dlopen("libc.so.6", { gettid: { parameters: [], result: "i32" } });
self.onmessage = (e) => {
  const w = new Int32Array(e.data);
  self.postMessage(lib.symbols.gettid());
  let seen = 0;
  for (;;) {
    let v;
    while ((v = Atomics.load(w, 0)) === seen || (v & 1) === 0) {
      if (Atomics.load(w, 1) !== 0) { self.postMessage("done"); return; }
    }
    seen = v + 1;
    Atomics.store(w, 0, seen);
  }
};`;

async function spinSession(): Promise<Session> {
  const w = new Int32Array(new SharedArrayBuffer(8));
  const worker = new Worker(`data:text/javascript,${encodeURIComponent(SPIN_WORKER)}`, {
    type: "module",
  });
  const ready = new Promise<MessageEvent>((r) => worker.onmessage = r);
  worker.postMessage(w.buffer);
  const peerTid = (await ready).data as number;
  return {
    peerTid,
    run(n, lat) {
      const t0 = performance.now();
      let prev = t0;
      for (let i = 0; i < n; i++) {
        const next = (Atomics.load(w, 0) + 1) | 0;
        Atomics.store(w, 0, next);
        while (Atomics.load(w, 0) !== next + 1);
        if (lat) lat[i] = -prev + (prev = performance.now());
      }
      return Promise.resolve((performance.now() - t0) * 1000 / n);
    },
    async close() {
      const done = new Promise((r) => worker.onmessage = r);
      Atomics.store(w, 1, 1);
      await done;
      worker.terminate();
    },
  };
}

// ---------------------------------------------------------------------------
// aioloop: BH ping-pong through context handles.

async function bhSession(mainNs: number, threadNs: number): Promise<Session> {
  const t = await IOThread.create({ id: `bench-bh-${mainNs}-${threadNs}`, pollMaxNs: threadNs });
  const ctx = AioContext.create({ name: "bench-main" });
  ctx.setPollParams({ maxNs: mainNs });
  let got = 0;
  const back = ctx.bhNew(() => got++, { name: "ping_back", shared: true });
  const slot = await t.run(FNS, "pongSetup", { peer: back.remote() }) as number;
  // The first shared BH of a fresh IOThread context: slot generation 0.
  const pong: RemoteBH = { handle: t.handle, slot, generation: 0, name: "pong" };
  return {
    peerTid: t.threadId,
    run(n, lat) {
      const t0 = performance.now();
      let prev = t0;
      for (let i = 0; i < n; i++) {
        const want = got + 1;
        RemoteAioContext.scheduleBh(pong);
        while (got < want) ctx.poll(true);
        if (lat) lat[i] = -prev + (prev = performance.now());
      }
      return Promise.resolve((performance.now() - t0) * 1000 / n);
    },
    async close() {
      await t.run(FNS, "pongTeardown");
      back.delete();
      ctx.destroy();
      await t.stop();
    },
  };
}

// ---------------------------------------------------------------------------
// aioloop: named requests with a reply.

async function callSession(blocking: boolean, mainNs: number): Promise<Session> {
  const t = await IOThread.create({ id: `bench-call-${blocking}-${mainNs}`, pollMaxNs: POLL_NS });
  // The calling thread's current context sets how long runSync spins.
  const ctx = AioContext.create({ name: "bench-caller" });
  ctx.setPollParams({ maxNs: mainNs });
  await t.run(FNS, "ping", 0); // import the module in the thread
  return {
    peerTid: t.threadId,
    async run(n, lat) {
      setCurrentAioContext(ctx);
      try {
        const t0 = performance.now();
        let prev = t0;
        for (let i = 0; i < n; i++) {
          if (blocking) t.runSync(FNS, "ping", i);
          else await t.run(FNS, "ping", i);
          if (lat) lat[i] = -prev + (prev = performance.now());
        }
        return (performance.now() - t0) * 1000 / n;
      } finally {
        setCurrentAioContext(null);
      }
    },
    async close() {
      ctx.destroy();
      await t.stop();
    },
  };
}

// ---------------------------------------------------------------------------

interface Case {
  name: string;
  open: () => Promise<Session>;
  baseline?: boolean;
}

/** Bench names; bench/run.ts pairs them with the C anchors by prefix. */
export const ROW = {
  raw: "raw FFI eventfd ping-pong, main <-> Worker, sync poll()",
  spin: "spin floor: Atomics ping-pong, main <-> Worker",
  bhBoth: "IOThread shared-BH ping-pong, polling both sides",
  bhThread: "IOThread shared-BH ping-pong, IOThread polls, main sleeps",
  bhOff: "IOThread shared-BH ping-pong, polling off",
  syncBoth: "IOThread.runSync(), polling both sides",
  syncThread: "IOThread.runSync(), IOThread polls, main sleeps",
  run: "IOThread.run() named request, awaited",
} as const;

const CASES: Case[] = [
  { name: ROW.raw, open: rawSession, baseline: true },
  { name: ROW.spin, open: spinSession },
  { name: ROW.bhBoth, open: () => bhSession(POLL_NS, POLL_NS) },
  { name: ROW.bhThread, open: () => bhSession(0, POLL_NS) },
  { name: ROW.bhOff, open: () => bhSession(0, 0) },
  { name: ROW.syncBoth, open: () => callSession(true, POLL_NS) },
  { name: ROW.syncThread, open: () => callSession(true, 0) },
  { name: ROW.run, open: () => callSession(false, 0) },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const C_EFD = "efd_pingpong_threads";
const C_SPIN = "spin_pingpong_threads";

/** Pins thread `tid` to `cpu` with taskset(1). */
async function pin(tid: number, cpu: number): Promise<void> {
  const r = await new Deno.Command("taskset", {
    args: ["-p", "-c", String(cpu), String(tid)],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!r.success) throw new Error(`taskset ${tid}: ${new TextDecoder().decode(r.stderr)}`);
}

async function runMode(): Promise<void> {
  if (PIN) {
    Deno.env.set("AIOLOOP_PIN", "1"); // read by the C anchors
    await pin(libc().gettid(), 0);
  }
  await using build = await buildAnchors([C_EFD, C_SPIN]);
  for (const sk of build.skipped) console.error(`anchor ${sk.name} skipped: ${sk.reason}`);
  const prog = (name: string) => build.programs.find((p) => p.name === name);
  // The plain run of the anchor (main + peer; the .mt line adds an idle
  // third thread), and its median single round trip (the .p50 line).
  const anchorUs = async (name: string): Promise<[number, number]> => {
    const p = prog(name);
    if (p === undefined) return [NaN, NaN];
    const rs = await runAnchor(p);
    const get = (a: string) => (rs.find((x) => x.anchor === a)?.ns ?? NaN) / 1000;
    return [get(`c.${name}`), get(`c.${name}.p50`)];
  };
  const lat = new Float64Array(LAT_RTTS);
  const sessions: Session[] = [];
  const rows = CASES.map((c) => ({
    name: c.name,
    us: [] as number[],
    vsC: [] as number[],
    vsSpin: [] as number[],
    p50: [] as number[],
    p50vsC: [] as number[],
    polled: 0,
    slept: 0,
  }));
  for (const c of CASES) {
    console.error(`${c.name} ...`);
    sessions.push(await c.open());
    if (PIN) await pin(sessions.at(-1)!.peerTid, 1);
    await sessions.at(-1)!.run(1000); // warm-up
  }
  const cEfd = {
    name: "C pthreads eventfd ping-pong, poll() (anchor)",
    us: [] as number[],
    p50: [] as number[],
  };
  const cSpin = {
    name: "C pthreads spin ping-pong (anchor)",
    us: [] as number[],
    p50: [] as number[],
  };
  for (let round = 0; round < ROUNDS; round++) {
    // Each round measures every case, so ratios compare neighbours in time.
    const [c, cP50] = await anchorUs(C_EFD);
    cEfd.us.push(c);
    cEfd.p50.push(cP50);
    const [sp, spP50] = await anchorUs(C_SPIN);
    cSpin.us.push(sp);
    cSpin.p50.push(spP50);
    let spin = NaN;
    for (let i = 0; i < CASES.length; i++) {
      const h0 = pollCounters.pollHits + pollCounters.replyPolled;
      const w0 = pollCounters.blockingWaits + pollCounters.replySlept;
      const us = await sessions[i].run(RUN_RTTS);
      rows[i].polled += pollCounters.pollHits + pollCounters.replyPolled - h0;
      rows[i].slept += pollCounters.blockingWaits + pollCounters.replySlept - w0;
      if (CASES[i].name === ROW.spin) spin = us;
      rows[i].us.push(us);
      rows[i].vsC.push(us / c);
      rows[i].vsSpin.push(us / spin);
      // A separate pass timing each round trip: its median is the typical
      // round trip, which the rare long stalls of a busy machine leave alone.
      await sessions[i].run(LAT_RTTS, lat);
      const p50 = median([...lat]) * 1000;
      rows[i].p50.push(p50);
      rows[i].p50vsC.push(p50 / cP50);
    }
    console.error(`round ${round + 1}/${ROUNDS}: C eventfd ${c.toFixed(2)} µs`);
  }
  for (const s of sessions) await s.close();
  const fmt = (x: number, d = 2) => Number.isNaN(x) ? "-" : x.toFixed(d);
  const table = [[
    "case",
    "µs median",
    "µs min",
    "÷ C eventfd, median",
    "÷ C eventfd, min",
    "÷ spin floor, median",
    "one rtt, µs p50",
    "÷ C one rtt p50",
    "main woken by polling",
  ]];
  for (const a of [cEfd, cSpin]) {
    const vs = a.us.map((u, i) => u / cEfd.us[i]);
    const p50vs = a.p50.map((u, i) => u / cEfd.p50[i]);
    table.push([
      a.name,
      fmt(median(a.us)),
      fmt(Math.min(...a.us)),
      fmt(median(vs)),
      fmt(Math.min(...vs)),
      "-",
      fmt(median(a.p50)),
      fmt(median(p50vs)),
      "-",
    ]);
  }
  for (const r of rows) {
    table.push([
      r.name,
      fmt(median(r.us)),
      fmt(Math.min(...r.us)),
      fmt(median(r.vsC)),
      fmt(Math.min(...r.vsC)),
      fmt(median(r.vsSpin)),
      fmt(median(r.p50)),
      fmt(median(r.p50vsC)),
      r.polled + r.slept === 0 ? "-" : `${(100 * r.polled / (r.polled + r.slept)).toFixed(0)}%`,
    ]);
  }
  const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
  console.log(
    `main <-> other thread round trips: ${ROUNDS} alternating rounds of ${RUN_RTTS}` +
      (PIN ? "; main pinned to CPU 0, the other thread to CPU 1" : ""),
  );
  console.log("(C: anchor median per round); ratios taken within each round.");
  for (const row of table) {
    console.log(
      `| ${row.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join(" | ")} |`,
    );
  }
  console.log(
    `one rtt p50: the median of ${LAT_RTTS} single round trips timed one by one, per round ` +
      "(then the median over rounds); the C anchors time theirs the same way.",
  );
  console.log(
    "main woken by polling: the share of the main side's wake-ups that busy polling found " +
      "(io_poll of its notifier, or runSync's spin) rather than a blocking wait.",
  );
}

if (import.meta.main) {
  await runMode();
} else {
  for (const c of CASES) {
    Deno.bench({
      name: `${c.name} ×${BATCH}`,
      group: "main <-> thread round trip",
      baseline: c.baseline ?? false,
      n: 10,
      warmup: 2,
      async fn(b) {
        const s = await c.open();
        try {
          await s.run(1000); // warm the new thread's code paths
          b.start();
          await s.run(BATCH);
          b.end();
        } finally {
          await s.close();
        }
      },
    });
  }
}

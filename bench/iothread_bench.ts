// Cross-thread round trips: the main thread and an IOThread waking each
// other, next to the raw floors measured in the same run.
//
//   deno run -A bench/iothread_bench.ts    # table: µs per round trip, ratios
//   deno bench -A bench/iothread_bench.ts  # the same cases as deno bench batches
//
// Cases (one round trip = main wakes the other thread, which wakes main):
// - raw FFI eventfd ping-pong, main <-> plain Worker, both blocked in a
//   synchronous FFI poll() (about 13 µs on a 2-vCPU guest, bench/README.md): the floor;
// - C pthreads eventfd ping-pong, both in poll() (about 12.5 µs there),
//   compiled with cc when it exists (run mode only);
// - main <-> IOThread through handles and shared BHs: main schedules the
//   IOThread's shared BH, whose callback schedules main's; main blocks in
//   ctx.poll(true). Adaptive polling off, then pollMaxNs = 32768 on both;
// - a named request answered at once: IOThread.runSync (blocking reply)
//   and IOThread.run (awaited reply).
//
// Under `deno bench`, one iteration is a batch of BATCH round trips (each
// case must start and stop its Worker inside the bench function), compared
// with the raw floor as baseline.
import { AioContext } from "../aio/aio_context.ts";
import { RemoteAioContext, type RemoteBH } from "../aio/handle.ts";
import { IOThread } from "../iothread/iothread.ts";
import { libc } from "../sys/_libc.ts";
import { close, eventfd } from "../sys/fd.ts";

const FNS = new URL("../_tests/testdata/multithread_fns.ts", import.meta.url);
const BATCH = 1000;
const RUN_RTTS = 20_000;
const REPS = 5;
const POLLIN = 1;

interface Session {
  /** Runs n round trips; returns µs per round trip. */
  run(n: number): Promise<number>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------
// Raw floor: eventfd ping-pong with a plain Worker, both in sync FFI poll().

const RAW_WORKER = `
const lib = Deno.dlopen("libc.so.6", {
  poll: { parameters: ["buffer", "u32", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "u32"], result: "i32" },
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
  self.postMessage("ready");
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
  const ready = new Promise((r) => w.onmessage = r);
  w.postMessage({ mine: peer, peer: mine, ctl: quit.buffer });
  await ready;
  const pfd = new Uint8Array(8);
  const dv = new DataView(pfd.buffer);
  dv.setInt32(0, mine, true);
  dv.setInt16(4, POLLIN, true);
  const buf = new Uint8Array(8);
  const one = new Uint8Array(new BigUint64Array([1n]).buffer);
  return {
    run(n) {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        c.write(peer, one, 8);
        while (c.poll(pfd, 1, -1) < 1);
        c.read(mine, buf, 8);
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
// aioloop: BH ping-pong through context handles.

async function bhSession(pollMaxNs: number): Promise<Session> {
  const t = await IOThread.create({ id: `bench-bh-${pollMaxNs}`, pollMaxNs });
  const ctx = AioContext.create({ name: "bench-main" });
  ctx.setPollParams({ maxNs: pollMaxNs });
  let got = 0;
  const back = ctx.bhNew(() => got++, { name: "ping_back", shared: true });
  const slot = await t.run(FNS, "pongSetup", { peer: back.remote() }) as number;
  // The first shared BH of a fresh IOThread context: slot generation 0.
  const pong: RemoteBH = { handle: t.handle, slot, generation: 0, name: "pong" };
  return {
    run(n) {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        const want = got + 1;
        RemoteAioContext.scheduleBh(pong);
        while (got < want) ctx.poll(true);
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

async function callSession(blocking: boolean): Promise<Session> {
  const t = await IOThread.create({ id: `bench-call-${blocking}`, pollMaxNs: 0 });
  await t.run(FNS, "ping", 0); // import the module in the thread
  return {
    async run(n) {
      const t0 = performance.now();
      if (blocking) { for (let i = 0; i < n; i++) t.runSync(FNS, "ping", i); }
      else for (let i = 0; i < n; i++) await t.run(FNS, "ping", i);
      return (performance.now() - t0) * 1000 / n;
    },
    close: () => t.stop(),
  };
}

// ---------------------------------------------------------------------------
// C anchor: two pthreads ping-pong through eventfds, each blocked in poll().

const C_SOURCE = `
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static int to_peer, to_main;
static long rounds;

static void sleep_on(int fd) {
  struct pollfd p = { .fd = fd, .events = POLLIN };
  uint64_t v;
  while (poll(&p, 1, -1) < 1) {}
  if (read(fd, &v, sizeof v) != sizeof v) abort();
}

static void ring(int fd) {
  uint64_t one = 1;
  if (write(fd, &one, sizeof one) != sizeof one) abort();
}

static void *peer(void *arg) {
  (void)arg;
  for (long i = 0; i < rounds; i++) {
    sleep_on(to_peer);
    ring(to_main);
  }
  return NULL;
}

int main(int argc, char **argv) {
  rounds = argc > 1 ? atol(argv[1]) : 100000;
  to_peer = eventfd(0, EFD_NONBLOCK);
  to_main = eventfd(0, EFD_NONBLOCK);
  pthread_t t;
  pthread_create(&t, NULL, peer, NULL);
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < rounds; i++) {
    ring(to_peer);
    sleep_on(to_main);
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  pthread_join(t, NULL);
  double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
  printf("%.3f\\n", ns / rounds / 1000.0);
  return 0;
}
`;

async function buildC(dir: string): Promise<string | null> {
  const src = `${dir}/efd_pingpong.c`;
  const exe = `${dir}/efd_pingpong`;
  await Deno.writeTextFile(src, C_SOURCE);
  try {
    const r = await new Deno.Command("cc", {
      args: ["-O2", "-pthread", "-o", exe, src],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!r.success) {
      console.error(new TextDecoder().decode(r.stderr));
      return null;
    }
    return exe;
  } catch {
    return null; // no cc
  }
}

async function runC(exe: string, n: number): Promise<number> {
  const r = await new Deno.Command(exe, { args: [String(n)], stdout: "piped" }).output();
  if (!r.success) throw new Error(`${exe} failed`);
  return Number(new TextDecoder().decode(r.stdout).trim());
}

// ---------------------------------------------------------------------------

interface Case {
  name: string;
  open: () => Promise<Session>;
  baseline?: boolean;
}

const CASES: Case[] = [
  {
    name: "raw FFI eventfd ping-pong, main <-> Worker, sync poll()",
    open: rawSession,
    baseline: true,
  },
  { name: "IOThread shared-BH ping-pong, poll(true), pollMaxNs 0", open: () => bhSession(0) },
  {
    name: "IOThread shared-BH ping-pong, poll(true), pollMaxNs 32768",
    open: () => bhSession(32768),
  },
  { name: "IOThread.runSync() named request", open: () => callSession(true) },
  { name: "IOThread.run() named request, awaited", open: () => callSession(false) },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function runMode(): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    const exe = await buildC(dir);
    const rows: { name: string; us: number[]; vsRaw: number[]; vsC: number[] }[] = [];
    const sessions: Session[] = [];
    for (const c of CASES) {
      console.error(`${c.name} ...`);
      sessions.push(await c.open());
      rows.push({ name: c.name, us: [], vsRaw: [], vsC: [] });
      await sessions.at(-1)!.run(1000); // warm-up
    }
    const cRow = { name: "C pthreads eventfd ping-pong, poll() (anchor 4)", us: [] as number[] };
    for (let rep = 0; rep < REPS; rep++) {
      // One repetition measures every case, so ratios compare neighbours in time.
      const c = exe === null ? NaN : await runC(exe, RUN_RTTS * 5);
      cRow.us.push(c);
      let raw = NaN;
      for (let i = 0; i < CASES.length; i++) {
        const us = await sessions[i].run(RUN_RTTS);
        if (i === 0) raw = us;
        rows[i].us.push(us);
        rows[i].vsRaw.push(us / raw);
        rows[i].vsC.push(us / c);
      }
    }
    for (const s of sessions) await s.close();
    const fmt = (x: number, d = 2) => Number.isNaN(x) ? "-" : x.toFixed(d);
    const table = [["case", "µs/round trip", "min - max", "÷ raw Worker (9a)", "÷ C pthreads (4)"]];
    table.push([
      cRow.name,
      fmt(median(cRow.us)),
      `${fmt(Math.min(...cRow.us))} - ${fmt(Math.max(...cRow.us))}`,
      "-",
      "1.00",
    ]);
    for (const r of rows) {
      table.push([
        r.name,
        fmt(median(r.us)),
        `${fmt(Math.min(...r.us))} - ${fmt(Math.max(...r.us))}`,
        fmt(median(r.vsRaw)),
        fmt(median(r.vsC)),
      ]);
    }
    const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
    console.log(`main <-> other thread round trips, median of ${REPS} repetitions of ${RUN_RTTS}`);
    console.log(`(C: ${RUN_RTTS * 5}); ratios computed within each repetition, then the median.`);
    for (const row of table) {
      console.log(
        `| ${
          row.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join(" | ")
        } |`,
      );
    }
    if (exe === null) console.log("note: no C compiler, anchor 4 skipped");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
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

// vCPU and BQL costs, next to anchors measured in the same run.
//
//   deno run -A bench/cpus_bench.ts    # table with ratios
//   deno bench -A bench/cpus_bench.ts  # the in-process cases as deno bench
//
// Cases:
// - runOnCpu round trip, main -> vCPU -> main: the main thread holds the
//   BQL, queues a named work item on a `dummy` vCPU and sleeps on the work
//   condition with the BQL released; the vCPU wakes on its kick, takes the
//   BQL, runs the item, broadcasts. Anchor: two C pthreads ping-ponging
//   through eventfds, each blocked in poll() (run mode only, needs cc), and
//   a raw Atomics.wait/notify ping-pong with a plain Worker (the floor of
//   any Worker-to-Worker wake).
// - uncontended bqlLock + bqlUnlock, next to a bare compareExchange + sub
//   on a SharedArrayBuffer word (what the futex fast path is).
// - one empty mainLoopWait(true) iteration with the caller holding the BQL
//   (the iteration drops and retakes it around its poll: two uncontended
//   atomic operations), to show the BQL's share of an idle iteration.
import {
  bqlLock,
  bqlUnlock,
  cpuRemoveSync,
  type CPUState,
  qemuInitVcpu,
  runOnCpu,
  withBql,
} from "../cpus/mod.ts";
import { mainLoopWait, qemuCleanupMainLoop, qemuInitMainLoop } from "../main_loop.ts";

const WORK = new URL("data:text/javascript,export const ping = (cpu, v) => v;");
const PING = { module: WORK, name: "ping" };
const REPS = 5;

function startCpu(): CPUState {
  return withBql(() => qemuInitVcpu({ accel: "dummy", modules: [WORK] }));
}

/** µs per runOnCpu round trip over n calls. */
function runOnCpuUs(cpu: CPUState, n: number): number {
  bqlLock();
  try {
    const t = performance.now();
    for (let i = 0; i < n; i++) runOnCpu(cpu, PING, i);
    return (performance.now() - t) * 1000 / n;
  } finally {
    bqlUnlock();
  }
}

// The floor: a plain Worker answering Atomics.notify with Atomics.notify.
const PONG = `self.onmessage = (e) => {
  const a = e.data;
  postMessage(0);
  for (;;) {
    Atomics.wait(a, 0, 0);
    if (Atomics.load(a, 2) === 1) break;
    Atomics.store(a, 0, 0);
    Atomics.store(a, 1, 1);
    Atomics.notify(a, 1);
  }
  close();
};`;

async function atomicsPingPong(): Promise<{ run(n: number): number; close(): void }> {
  const a = new Int32Array(new SharedArrayBuffer(12));
  const w = new Worker(`data:text/javascript,${encodeURIComponent(PONG)}`, { type: "module" });
  await new Promise((r) => {
    w.onmessage = r;
    w.postMessage(a);
  });
  return {
    run(n: number): number {
      const t = performance.now();
      for (let i = 0; i < n; i++) {
        Atomics.store(a, 0, 1);
        Atomics.notify(a, 0);
        while (Atomics.load(a, 1) === 0) Atomics.wait(a, 1, 0);
        Atomics.store(a, 1, 0);
      }
      return (performance.now() - t) * 1000 / n;
    },
    close() {
      Atomics.store(a, 2, 1);
      Atomics.store(a, 0, 1);
      Atomics.notify(a, 0);
      w.terminate();
    },
  };
}

/** ns per pair over n pairs. */
function bqlPairNs(n: number): number {
  const t = performance.now();
  for (let i = 0; i < n; i++) {
    bqlLock();
    bqlUnlock();
  }
  return (performance.now() - t) * 1e6 / n;
}

function rawPairNs(n: number): number {
  const a = new Int32Array(new SharedArrayBuffer(4));
  const t = performance.now();
  for (let i = 0; i < n; i++) {
    Atomics.compareExchange(a, 0, 0, 1);
    Atomics.sub(a, 0, 1);
  }
  return (performance.now() - t) * 1e6 / n;
}

/** An empty iteration, the caller holding the BQL as QEMU's main thread does. */
function emptyIterationNs(n: number): number {
  bqlLock();
  try {
    const t = performance.now();
    for (let i = 0; i < n; i++) mainLoopWait(true);
    return (performance.now() - t) * 1e6 / n;
  } finally {
    bqlUnlock();
  }
}

const C_SOURCE = `
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
static int a_fd, b_fd;
static long n;
static void wait_fd(int fd) {
  struct pollfd p = { .fd = fd, .events = POLLIN };
  uint64_t v;
  while (poll(&p, 1, -1) < 1) {}
  if (read(fd, &v, 8) != 8) abort();
}
static void ring(int fd) { uint64_t one = 1; if (write(fd, &one, 8) != 8) abort(); }
static void *peer(void *x) { (void)x; for (long i = 0; i < n; i++) { wait_fd(a_fd); ring(b_fd); } return NULL; }
int main(int argc, char **argv) {
  n = argc > 1 ? atol(argv[1]) : 100000;
  a_fd = eventfd(0, EFD_NONBLOCK); b_fd = eventfd(0, EFD_NONBLOCK);
  pthread_t t; pthread_create(&t, NULL, peer, NULL);
  struct timespec s, e; clock_gettime(CLOCK_MONOTONIC, &s);
  for (long i = 0; i < n; i++) { ring(a_fd); wait_fd(b_fd); }
  clock_gettime(CLOCK_MONOTONIC, &e); pthread_join(t, NULL);
  printf("%.3f\\n", ((e.tv_sec - s.tv_sec) * 1e9 + (e.tv_nsec - s.tv_nsec)) / n / 1000.0);
  return 0;
}
`;

async function cPingPongUs(dir: string, n: number): Promise<number> {
  const exe = `${dir}/cpus_pingpong`;
  try {
    await Deno.stat(exe);
  } catch {
    await Deno.writeTextFile(`${exe}.c`, C_SOURCE);
    try {
      const r = await new Deno.Command("cc", { args: ["-O2", "-pthread", "-o", exe, `${exe}.c`] })
        .output();
      if (!r.success) return NaN;
    } catch {
      return NaN; // no cc
    }
  }
  const r = await new Deno.Command(exe, { args: [String(n)], stdout: "piped" }).output();
  return r.success ? Number(new TextDecoder().decode(r.stdout).trim()) : NaN;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function runMode(): Promise<void> {
  const dir = await Deno.makeTempDir();
  const cpu = startCpu();
  const pong = await atomicsPingPong();
  qemuInitMainLoop();
  try {
    runOnCpuUs(cpu, 2000);
    pong.run(2000);
    const rows: Record<string, number[]> = {
      rtt: [],
      c: [],
      atomics: [],
      bql: [],
      raw: [],
      iter: [],
      rttVsC: [],
      rttVsAtomics: [],
      bqlVsRaw: [],
      bqlShare: [],
    };
    for (let rep = 0; rep < REPS; rep++) {
      // Each repetition measures every case, so ratios compare neighbours in time.
      const c = await cPingPongUs(dir, 100_000);
      const atomics = pong.run(20_000);
      const rtt = runOnCpuUs(cpu, 20_000);
      const bql = bqlPairNs(2_000_000);
      const raw = rawPairNs(2_000_000);
      const iter = emptyIterationNs(200_000);
      rows.rtt.push(rtt);
      rows.c.push(c);
      rows.atomics.push(atomics);
      rows.bql.push(bql);
      rows.raw.push(raw);
      rows.iter.push(iter);
      rows.rttVsC.push(rtt / c);
      rows.rttVsAtomics.push(rtt / atomics);
      rows.bqlVsRaw.push(bql / raw);
      rows.bqlShare.push(bql / iter);
    }
    const f = (k: string, d = 2) => {
      const m = median(rows[k]);
      return Number.isNaN(m) ? "-" : m.toFixed(d);
    };
    console.log(`median of ${REPS} repetitions; ratios taken within each repetition`);
    console.log(`| case | figure | ratio |`);
    console.log(`| --- | ---: | ---: |`);
    console.log(`| C pthreads eventfd ping-pong, poll() (anchor) | ${f("c")} µs | 1.00 |`);
    console.log(
      `| Atomics.wait/notify ping-pong, main <-> Worker (floor) | ${f("atomics")} µs | - |`,
    );
    console.log(
      `| runOnCpu round trip, main -> dummy vCPU -> main | ${f("rtt")} µs | ${f("rttVsC")} × C, ${
        f("rttVsAtomics")
      } × floor |`,
    );
    console.log(`| bare compareExchange + sub on a SAB word (floor) | ${f("raw", 1)} ns | 1.00 |`);
    console.log(
      `| uncontended bqlLock + bqlUnlock | ${f("bql", 1)} ns | ${f("bqlVsRaw")} × floor |`,
    );
    console.log(
      `| empty mainLoopWait(true) iteration, BQL held (dropped + retaken around the poll) | ${
        f("iter", 0)
      } ns | BQL pair = ${(median(rows.bqlShare) * 100).toFixed(1)} % of it |`,
    );
  } finally {
    qemuCleanupMainLoop();
    pong.close();
    withBql(() => cpuRemoveSync(cpu));
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  await runMode();
} else {
  Deno.bench({
    name: "uncontended bqlLock + bqlUnlock",
    group: "bql",
    fn() {
      bqlLock();
      bqlUnlock();
    },
  });
  const floor = new Int32Array(new SharedArrayBuffer(4));
  Deno.bench({
    name: "bare compareExchange + sub on a SAB word",
    group: "bql",
    baseline: true,
    fn() {
      Atomics.compareExchange(floor, 0, 0, 1);
      Atomics.sub(floor, 0, 1);
    },
  });
  Deno.bench({
    name: "runOnCpu round trip ×1000, main -> dummy vCPU -> main",
    group: "run_on_cpu",
    n: 10,
    warmup: 2,
    fn(b) {
      const cpu = startCpu();
      try {
        runOnCpuUs(cpu, 200);
        b.start();
        runOnCpuUs(cpu, 1000);
        b.end();
      } finally {
        withBql(() => cpuRemoveSync(cpu));
      }
    },
  });
}

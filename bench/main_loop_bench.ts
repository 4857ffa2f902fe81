// The cost of one cross-thread wake of the main loop (main_loop.ts): a
// Worker, blocked in a synchronous FFI poll(2) on its own eventfd, is rung
// by the main thread and answers by scheduling a shared BH of the main
// AioContext through its handle; the main thread waits for that BH to run.
// One bench iteration is one round trip.
//
//   deno bench -A bench/main_loop_bench.ts
//
// Cases, in group "main loop wake":
// - raw FFI, both sides in sync poll (perf anchor 9a): the floor for a round
//   trip between two threads through eventfds.
// - raw FFI, main awaits a nonblocking poll (anchor 9b): the floor for a
//   wait parked on Deno's blocking pool.
// - mainLoopWait(false): the synchronous main loop (blocks the isolate).
// - mainLoopWaitAsync(): one main-loop iteration whose wait is parked, as
//   mainLoopRun() does when idle; Deno's loop keeps turning meanwhile.
// - mainLoopRun(): 100 round trips per bench iteration under one run, the
//   BH itself pinging the Worker again (divide by 100 for one wake).
// The async/sync ratio is what sharing the thread with Deno's loop costs.
import {
  mainLoopQuit,
  mainLoopRun,
  mainLoopWait,
  mainLoopWaitAsync,
  qemuCleanupMainLoop,
  qemuGetAioContext,
  qemuInitMainLoop,
} from "../main_loop.ts";
import { eventfd, read, write } from "../sys/fd.ts";
import { libc } from "../sys/_libc.ts";
import { PollFdArray, POLLIN, pollNs } from "../sys/poll.ts";

const ONE = new Uint8Array(new BigUint64Array([1n]).buffer);
const SCRATCH = new Uint8Array(8);

// Shared with the Worker: [0] the mode (1: raw eventfd answer, 2: schedule
// the shared BH), [1] stop.
const MODE_RAW = 1;
const MODE_BH = 2;
const ctl = new Int32Array(new SharedArrayBuffer(8));

qemuInitMainLoop();
const mainCtx = qemuGetAioContext();
let done = false;
// Round trips left for the mainLoopRun case (0: just flag completion).
let batch = 0;
const bh = mainCtx.bhNew(() => {
  if (batch > 0 && --batch > 0) ping(MODE_BH);
  else if (batch === 0 && mainLoopRunning) mainLoopQuit();
  done = true;
}, { shared: true, name: "bench-pong" });
let mainLoopRunning = false;
const workerEfd = eventfd(0);
const mainEfd = eventfd(0);
const mainFds = new PollFdArray(1);
mainFds.push(mainEfd, POLLIN);

const sysUrl = new URL("../sys/_libc.ts", import.meta.url).href;
const handleUrl = new URL("../aio/handle.ts", import.meta.url).href;
const workerCode = `
import { libc } from "${sysUrl}";
import { RemoteAioContext } from "${handleUrl}";
self.onmessage = (e) => {
  const { ctl, workerEfd, mainEfd, bh } = e.data;
  const c = libc();
  const fds = new Int32Array(2);
  fds[0] = workerEfd;
  fds[1] = 1; // events = POLLIN, revents = 0
  const buf = new Uint8Array(8);
  const one = new Uint8Array(new BigUint64Array([1n]).buffer);
  self.postMessage("ready");
  for (;;) {
    c.poll(new Uint8Array(fds.buffer), 1, -1);
    c.read(workerEfd, buf, 8);
    if (Atomics.load(ctl, 1) !== 0) break;
    if (Atomics.load(ctl, 0) === ${MODE_RAW}) c.write(mainEfd, one, 8);
    else RemoteAioContext.scheduleBh(bh);
  }
  self.postMessage("stopped");
};`;
const workerUrl = URL.createObjectURL(new Blob([workerCode], { type: "application/javascript" }));
const worker = new Worker(workerUrl, { type: "module" });
await new Promise((resolve) => {
  worker.onmessage = resolve;
  worker.postMessage({ ctl, workerEfd, mainEfd, bh: bh.remote() });
});

// Stop the Worker (it blocks in poll: terminate() alone would keep the
// process alive) and tear the loop down when the bench run ends.
globalThis.addEventListener("unload", () => {
  Atomics.store(ctl, 1, 1);
  write(workerEfd, ONE);
  worker.terminate();
  URL.revokeObjectURL(workerUrl);
  bh.delete();
  qemuCleanupMainLoop();
});

function ping(mode: number): void {
  Atomics.store(ctl, 0, mode);
  write(workerEfd, ONE);
}

Deno.bench(
  {
    name: "raw FFI: eventfd round trip, both in sync poll (anchor 9a)",
    group: "main loop wake",
    baseline: true,
  },
  () => {
    ping(MODE_RAW);
    pollNs(mainFds, -1);
    read(mainEfd, SCRATCH);
  },
);

Deno.bench(
  {
    name: "raw FFI: eventfd round trip, main awaits a nonblocking poll (anchor 9b)",
    group: "main loop wake",
  },
  async () => {
    ping(MODE_RAW);
    await libc().poll_nb(mainFds.buffer, 1, -1);
    read(mainEfd, SCRATCH);
  },
);

Deno.bench({ name: "mainLoopWait(false): woken by a Worker's BH", group: "main loop wake" }, () => {
  done = false;
  ping(MODE_BH);
  while (!done) mainLoopWait(false);
});

Deno.bench(
  { name: "mainLoopWaitAsync(): parked wait woken by a Worker's BH", group: "main loop wake" },
  async () => {
    done = false;
    ping(MODE_BH);
    while (!done) await mainLoopWaitAsync();
  },
);

Deno.bench(
  {
    name: "mainLoopRun(): 100 round trips, each a Worker's BH waking the parked wait",
    group: "main loop run",
  },
  async () => {
    batch = 100;
    mainLoopRunning = true;
    ping(MODE_BH);
    await mainLoopRun();
    mainLoopRunning = false;
  },
);

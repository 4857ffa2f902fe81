// RCU costs beside an anchor measured in the same run:
// - group rcu-read: rcuReadLock + rcuReadUnlock against a bare
//   Atomics.load + Atomics.store pair, and against the two loads and two
//   stores that any read section needs (entry and exit each publish);
// - group synchronize: synchronizeRcu with no reader registered, with one
//   idle registered reader, and with 10 Worker readers running rcutorture's
//   read loop (outer + nested section around 100 increments) nonstop. The
//   last one's rate is the grace periods per second under
//   rcutorture/10readers (1e9 / ns per op).
import {
  rcuHandle,
  rcuIsRegistered,
  rcuReadLock,
  rcuReadUnlock,
  rcuRegisterThread,
  rcuUnregisterThread,
  synchronizeRcu,
} from "../rcu/mod.ts";
import { GOFLAG_RUN, GOFLAG_STOP } from "../_tests/testdata/rcu_harness.ts";
import { T_GOFLAG, T_MBTEST, T_RUNNING, T_WORDS } from "../_tests/testdata/rcu_torture.ts";

const PAIRS = 1000;
const words = new Int32Array(new SharedArrayBuffer(64));

Deno.bench({
  name: "Atomics.load + Atomics.store ×1000",
  group: "rcu-read",
  baseline: true,
  fn() {
    for (let i = 0; i < PAIRS; i++) Atomics.store(words, 2, Atomics.load(words, 1));
  },
});

// What any read section must do: store a snapshot on entry, store 0 and
// load the updater's flag on exit (QEMU's rcu_read_lock/unlock minimum).
Deno.bench({
  name: "2 Atomics.load + 2 Atomics.store ×1000 (a section's minimum)",
  group: "rcu-read",
  fn() {
    for (let i = 0; i < PAIRS; i++) {
      Atomics.store(words, 2, Atomics.load(words, 1));
      Atomics.store(words, 2, 0);
      if (Atomics.load(words, 3) !== 0) throw new Error("unexpected flag");
    }
  },
});

Deno.bench({
  name: "rcuReadLock + rcuReadUnlock ×1000",
  group: "rcu-read",
  fn() {
    for (let i = 0; i < PAIRS; i++) {
      rcuReadLock();
      rcuReadUnlock();
    }
  },
});

Deno.bench({
  name: "synchronizeRcu, no reader registered",
  group: "synchronize",
  baseline: true,
  fn() {
    if (rcuIsRegistered()) rcuUnregisterThread();
    synchronizeRcu();
  },
});

Deno.bench({
  name: "synchronizeRcu, 1 idle reader (this thread)",
  group: "synchronize",
  fn() {
    if (!rcuIsRegistered()) rcuRegisterThread();
    synchronizeRcu();
  },
});

// Ten rcutorture readers as Workers (the parity test's reader threads),
// started once for the whole file.
const READERS = 10;
const t = new Int32Array(new SharedArrayBuffer(4 * (T_WORDS + 1)));
Atomics.store(t, T_MBTEST, 1);
const exited = new Int32Array(new SharedArrayBuffer(4 * 64));
const workers: Worker[] = [];

async function startReaders(): Promise<void> {
  for (let i = 0; i < READERS; i++) {
    const w = new Worker(new URL("../_tests/testdata/rcu_torture.ts", import.meta.url), {
      type: "module",
    });
    w.postMessage({
      role: "reader",
      data: t.buffer,
      rcu: rcuHandle(),
      noop: false,
      index: i,
      exited: exited.buffer,
    });
    workers.push(w);
  }
  const end = performance.now() + 240_000;
  while (Atomics.load(t, T_RUNNING) < READERS) {
    if (performance.now() > end) throw new Error("readers did not start");
    await new Promise((r) => setTimeout(r, 5));
  }
  Atomics.store(t, T_GOFLAG, GOFLAG_RUN);
}

let started: Promise<void> | null = null;

Deno.bench({
  name: "synchronizeRcu, 10 rcutorture readers (Workers)",
  group: "synchronize",
  async fn(b) {
    started ??= startReaders();
    await started;
    if (rcuIsRegistered()) rcuUnregisterThread();
    b.start();
    synchronizeRcu();
    b.end();
  },
});

globalThis.addEventListener("unload", () => {
  Atomics.store(t, T_GOFLAG, GOFLAG_STOP);
  for (const w of workers) w.terminate();
});

// Parity with QEMU tests/unit/rcutorture.c (gtest mode): readers, one
// updater and five fake updaters, each a Worker registered with RCU, over a
// ring of 10 records in shared memory. The assertions are QEMU's (no
// ordering error; no reader saw a record aged twice, i.e. buckets 2..10 are
// 0) plus progress (at least one update). A copy of the harness whose
// synchronizeRcu is a no-op must fail the same oracle.
//
// Quick durations are shorter than QEMU's 1 s (the whole RCU suite must fit
// a shared 2-core machine); DENO_SLOW=1 selects QEMU's slow 5 s.
import { assert, assertEquals, assertGreater } from "@std/assert";
import { rcuHandle } from "../../rcu/mod.ts";
import { openFdCount } from "../_fd_leak.ts";
import { slowMode, stressPhase, waitFor, WorkerSet } from "../testdata/rcu_harness.ts";
import {
  PIPE_LEN,
  T_AGE,
  T_COUNT,
  T_CURRENT,
  T_GOFLAG,
  T_MBERROR,
  T_MBTEST,
  T_READS,
  T_RUNNING,
  T_UPDATES,
  T_WORDS,
} from "../testdata/rcu_torture.ts";

const DURATION_MS = slowMode() ? 5000 : 400;
const FAKE_UPDATERS = 5;

interface StressResult {
  mberror: number;
  counts: number[];
  updates: number;
  reads: number;
}

/** gtest_stress(nreaders, duration), with a real or a no-op synchronize. */

async function stress(nreaders: number, ms: number, noop: boolean): Promise<StressResult> {
  const t = new Int32Array(new SharedArrayBuffer(4 * (T_WORDS + 1)));
  // Record 0 is current, age 0, mbtest 1 (QEMU's per-test setup).
  Atomics.store(t, T_CURRENT, 0);
  Atomics.store(t, T_AGE, 0);
  Atomics.store(t, T_MBTEST, 1);
  const set = new WorkerSet();
  const msg = { data: t.buffer, rcu: rcuHandle(), noop };
  await stressPhase(
    set,
    () => {
      for (let i = 0; i < nreaders; i++) set.spawn("rcu_torture.ts", { ...msg, role: "reader" });
      set.spawn("rcu_torture.ts", { ...msg, role: "updater" });
      for (let i = 0; i < FAKE_UPDATERS; i++) set.spawn("rcu_torture.ts", { ...msg, role: "fake" });
    },
    t,
    { running: T_RUNNING, go: T_GOFLAG },
    ms,
    "every Worker starting",
  );
  const counts: number[] = [];
  for (let i = 0; i <= PIPE_LEN; i++) counts.push(Atomics.load(t, T_COUNT + i));
  return {
    mberror: Atomics.load(t, T_MBERROR),
    counts,
    updates: Atomics.load(t, T_UPDATES),
    reads: Atomics.load(t, T_READS),
  };
}

function failsOracle(r: StressResult): boolean {
  return r.mberror !== 0 || r.counts.slice(2).some((n) => n !== 0);
}

let baseline = -1;
async function checkFds(): Promise<void> {
  await waitFor(() => openFdCount() <= baseline, `fds back to ${baseline}`, 5000);
}

async function torture(nreaders: number): Promise<void> {
  if (baseline < 0) {
    // Deno keeps a few fds after its first Worker: warm up before counting.
    await stress(1, 1, false);
    baseline = openFdCount();
  }
  const r = await stress(nreaders, DURATION_MS, false);
  assertEquals(r.mberror, 0, `ordering errors: ${JSON.stringify(r)}`);
  for (let i = 2; i <= PIPE_LEN; i++) {
    assertEquals(r.counts[i], 0, `a reader saw a record aged ${i}: ${JSON.stringify(r)}`);
  }
  assertGreater(r.updates, 0, "no grace period completed");
  assertGreater(r.reads, 0, "no reader ran");
  await checkFds();
}

Deno.test("/rcu/torture/1reader", () => torture(1));
Deno.test("/rcu/torture/10readers", () => torture(10));

Deno.test("/rcu/torture/oracle-catches-noop", async () => {
  // The same harness with synchronizeRcu a no-op: the oracle must see it.
  let caught = false;
  let last: StressResult | null = null;
  for (let attempt = 0; attempt < 3 && !caught; attempt++) {
    last = await stress(2, DURATION_MS, true);
    caught = failsOracle(last);
  }
  assert(caught, `a no-op synchronizeRcu passed the oracle: ${JSON.stringify(last)}`);
  if (baseline >= 0) await checkFds();
});

// Parity with QEMU tests/unit/test-rcu-list.c and its twins
// test-rcu-simpleq.c, test-rcu-tailq.c, test-rcu-slist.c: for each list type,
// single-threaded (1 reader), short-few (5) and long-many (20), plus one
// updater, all Workers. The updater removes and inserts at random positions
// (seeded PRNG; the seed is in every failure message) and reclaims through
// callRcu; then the test thread empties the list itself and waits for every
// reclaim. QEMU's assertion is removed == reclaimed (here within a deadline);
// in addition: the generation oracle saw no reclaimed record inside a read
// section, the writer-side links (sqh_last, tql_prev, le_prev) are right,
// and every record went back to the arena.
//
// Extras: keep-populated mode (QEMU's rules drain the list; this one holds
// it at 100 so readers walk real lists) and a mutation that frees with no
// grace period, which the generation oracle must catch.
//
// Quick durations are shorter than QEMU's 1/1/2 s (the RCU suite must fit a
// shared 2-core machine); DENO_SLOW=1 selects QEMU's slow 5/5/10 s.
import { assert, assertEquals, assertGreater } from "@std/assert";
import { RcuArena, rcuHandle, synchronizeRcu } from "../../rcu/mod.ts";
import { openFdCount } from "../_fd_leak.ts";
import { sleep, slowMode, stressPhase, waitFor, WorkerSet } from "../testdata/rcu_harness.ts";
import {
  createList,
  L_GOFLAG,
  L_MINLEN,
  L_READS,
  L_RECLAIMS,
  L_REMOVED,
  L_RUNNING,
  L_VIOLATIONS,
  L_WORDS,
  type ListType,
  Q_LEN,
  reclaimRcu,
} from "../testdata/rcu_list.ts";

const SLOW = slowMode();
const DRAIN_DEADLINE_MS = 5000;

interface RunOptions {
  keepPopulated?: boolean;
  noGracePeriod?: boolean;
}

interface RunResult {
  seed: number;
  removed: number;
  reclaims: number;
  violations: number;
  reads: number;
  minLen: number;
  left: number;
}

let fdBaseline = -1;

/** rcu_qtest(test, duration, nreaders). */
async function rcuQtest(
  type: ListType,
  ms: number,
  nreaders: number,
  opts: RunOptions = {},
): Promise<RunResult> {
  const seed = (Math.random() * 2 ** 31) | 0 || 1;
  const arena = RcuArena.create({ nodes: 4096, dataWords: 0 });
  const list = createList(type, arena);
  const c = new Int32Array(new SharedArrayBuffer(4 * (L_WORDS + 1)));
  for (let i = 0; i < Q_LEN; i++) list.insertHead(arena.alloc());
  const set = new WorkerSet();
  const msg = {
    type,
    list: list.handle,
    ctl: c.buffer,
    rcu: rcuHandle(),
    seed,
    keepPopulated: opts.keepPopulated ?? false,
    noGracePeriod: opts.noGracePeriod ?? false,
  };
  await stressPhase(
    set,
    () => {
      for (let i = 0; i < nreaders; i++) set.spawn("rcu_list.ts", { ...msg, role: "reader" });
      set.spawn("rcu_list.ts", { ...msg, role: "updater" });
    },
    c,
    { running: L_RUNNING, go: L_GOFLAG },
    ms,
    `threads starting (seed ${seed})`,
  );
  // Writer-side links hold after the run (throws with the reason if not).
  const left = list.verify();
  // The test thread empties the list and reclaims through callRcu.
  let removed = Atomics.load(c, L_REMOVED);
  for (const e of list.entriesSafe()) {
    list.remove(e);
    reclaimRcu(arena, c, e);
    removed++;
  }
  synchronizeRcu();
  const end = performance.now() + DRAIN_DEADLINE_MS;
  while (removed > Atomics.load(c, L_RECLAIMS) && performance.now() < end) {
    await sleep(1); // this isolate's call_rcu batching runs meanwhile
    synchronizeRcu();
  }
  const r: RunResult = {
    seed,
    removed,
    reclaims: Atomics.load(c, L_RECLAIMS),
    violations: Atomics.load(c, L_VIOLATIONS),
    reads: Atomics.load(c, L_READS),
    minLen: Atomics.load(c, L_MINLEN),
    left,
  };
  if (!opts.noGracePeriod) {
    assertEquals(arena.freeCount, arena.capacity - 1, `records lost: ${JSON.stringify(r)}`);
  }
  return r;
}

async function parity(type: ListType, ms: number, nreaders: number, opts: RunOptions = {}) {
  if (fdBaseline < 0) {
    // Deno keeps a few fds after its first Worker: warm up before counting.
    await rcuQtest(type, 1, 1);
    fdBaseline = openFdCount();
  }
  const r = await rcuQtest(type, ms, nreaders, opts);
  const info = JSON.stringify(r);
  assertEquals(r.removed, r.reclaims, `removed != reclaimed: ${info}`);
  assertEquals(r.violations, 0, `a record was reclaimed inside a read section: ${info}`);
  assertGreater(r.reads, 0, `no reader walked the list: ${info}`);
  if (opts.keepPopulated) assertGreater(r.minLen, 0, `the list ran empty: ${info}`);
  await waitFor(() => openFdCount() <= fdBaseline, `fds back to ${fdBaseline}`, 5000);
}

const TYPES: ListType[] = ["qlist", "qsimpleq", "qtailq", "qslist"];
// QEMU's gtest_seconds: quick 4 → 1/1/2 s; slow 20 → 5/5/10 s.
const PATHS: [string, number, number][] = [
  ["single-threaded", SLOW ? 5000 : 250, 1],
  ["short-few", SLOW ? 5000 : 250, 5],
  ["long-many", SLOW ? 10000 : 500, 20],
];

for (const type of TYPES) {
  for (const [name, ms, nreaders] of PATHS) {
    Deno.test(`/rcu/${type}/${name}`, () => parity(type, ms, nreaders));
  }
}

for (const type of TYPES) {
  Deno.test(`/rcu/${type}/keep-populated`, () =>
    parity(type, SLOW ? 5000 : 250, 5, { keepPopulated: true }));
}

Deno.test("/rcu/qlist/oracle-catches-no-grace-period", async () => {
  // Freeing at once instead of after a grace period must be seen.
  let last: RunResult | null = null;
  for (let attempt = 0; attempt < 3; attempt++) {
    last = await rcuQtest("qlist", 300, 5, { noGracePeriod: true, keepPopulated: true });
    if (last.violations > 0) break;
  }
  assert(last !== null && last.violations > 0, `no violation seen: ${JSON.stringify(last)}`);
});

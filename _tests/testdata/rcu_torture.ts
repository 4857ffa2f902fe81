// The threads of QEMU's tests/unit/rcutorture.c stress mode, as Workers:
// readers, one updater and fake updaters, over a ring of records in shared
// memory. `noop` swaps synchronizeRcu for a no-op: the oracle must then fail.
import {
  rcuAttach,
  type RcuHandle,
  rcuReadLock,
  rcuReadUnlock,
  rcuRegisterThread,
  rcuUnregisterThread,
  synchronizeRcu,
} from "../../rcu/mod.ts";

/** RCU_STRESS_PIPE_LEN. */
export const PIPE_LEN = 10;
// Shared words.
export const T_GOFLAG = 0; // 0 INIT, 1 RUN, 2 STOP
export const T_CURRENT = 1; // rcu_stress_current: ring index
export const T_MBERROR = 2;
export const T_UPDATES = 3;
export const T_READS = 4;
/** Workers registered and about to wait for GO (nthreadsrunning). */
export const T_RUNNING = 5;
export const T_COUNT = 8; // rcu_stress_count[0..PIPE_LEN]
export const T_AGE = T_COUNT + PIPE_LEN + 1; // ring[i].age
export const T_MBTEST = T_AGE + PIPE_LEN; // ring[i].mbtest
export const T_WORDS = T_MBTEST + PIPE_LEN;

import { GOFLAG_INIT, GOFLAG_RUN } from "./rcu_harness.ts";

interface Start {
  index: number;
  exited: SharedArrayBuffer;
  role: "reader" | "updater" | "fake";
  data: SharedArrayBuffer;
  rcu: RcuHandle;
  noop: boolean;
}

function sleepMs(t: Int32Array, ms: number): void {
  Atomics.wait(t, T_WORDS, 0, ms);
}

function reader(t: Int32Array): void {
  const local = new Float64Array(PIPE_LEN + 1);
  let reads = 0;
  let dummy = 0;
  while (Atomics.load(t, T_GOFLAG) === GOFLAG_INIT) sleepMs(t, 1);
  while (Atomics.load(t, T_GOFLAG) === GOFLAG_RUN) {
    rcuReadLock();
    const p = Atomics.load(t, T_CURRENT); // qatomic_rcu_read
    if (Atomics.load(t, T_MBTEST + p) === 0) Atomics.add(t, T_MBERROR, 1);
    rcuReadLock();
    for (let i = 0; i < 100; i++) dummy++;
    rcuReadUnlock();
    const age = Atomics.load(t, T_AGE + p);
    rcuReadUnlock();
    local[age > PIPE_LEN || age < 0 ? PIPE_LEN : age]++;
    reads++;
  }
  for (let i = 0; i <= PIPE_LEN; i++) Atomics.add(t, T_COUNT + i, local[i]);
  Atomics.add(t, T_READS, reads + (dummy & 0));
}

function updater(t: Int32Array, sync: () => void): void {
  let i = 0;
  while (Atomics.load(t, T_GOFLAG) === GOFLAG_INIT) sleepMs(t, 1);
  while (Atomics.load(t, T_GOFLAG) === GOFLAG_RUN) {
    const old = i;
    i = (i + 1) % PIPE_LEN;
    if (i === Atomics.load(t, T_CURRENT) && i !== old) throw new Error("the ring caught up");
    Atomics.store(t, T_MBTEST + i, 0);
    Atomics.store(t, T_AGE + i, 0);
    Atomics.store(t, T_MBTEST + i, 1);
    Atomics.store(t, T_CURRENT, i); // qatomic_rcu_set
    for (let j = 0; j < PIPE_LEN; j++) if (j !== i) Atomics.add(t, T_AGE + j, 1);
    sync();
    Atomics.add(t, T_UPDATES, 1);
  }
}

function fake(t: Int32Array, sync: () => void): void {
  while (Atomics.load(t, T_GOFLAG) === GOFLAG_INIT) sleepMs(t, 1);
  while (Atomics.load(t, T_GOFLAG) === GOFLAG_RUN) {
    sync();
    sleepMs(t, 1);
  }
}

// deno-lint-ignore no-explicit-any
const scope = self as any;

scope.onmessage = (ev: MessageEvent<Start>) => {
  const { role, rcu, noop, index } = ev.data;
  const t = new Int32Array(ev.data.data);
  const exited = new Int32Array(ev.data.exited);
  rcuAttach(rcu);
  rcuRegisterThread();
  Atomics.add(t, T_RUNNING, 1);
  const sync = noop ? () => {} : synchronizeRcu;
  try {
    if (role === "reader") reader(t);
    else if (role === "updater") updater(t, sync);
    else fake(t, sync);
  } finally {
    rcuUnregisterThread();
    Atomics.store(exited, index, 1);
  }
  scope.close();
};

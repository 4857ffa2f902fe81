// Work functions and a test accelerator for _tests/cpus_test.ts; they run
// on vCPU threads. Shared state is the Int32Array `sh` of the CPUs' data.
import { type AccelOps, EXCP_HLT, EXCP_INTERRUPT } from "../../cpus/accel.ts";
import type { CPUState } from "../../cpus/cpu_state.ts";
import { currentCpu, qemuCpuIsSelf, qemuGetCpu } from "../../cpus/current_cpu.ts";
import { bqlLocked } from "../../cpus/bql.ts";
import { rcuIsRegistered, rcuReadLock, rcuReadUnlock } from "../../rcu/rcu.ts";
import { asyncRunOnCpu, runOnCpu } from "../../cpus/run_on_cpu.ts";
import { endExclusive, startExclusive } from "../../cpus/exclusive.ts";
import { QemuCond } from "../../thread/cond.ts";
import { RemoteAioContext } from "../../aio/handle.ts";
import type { RemoteBH } from "../../aio/handle.ts";

/** Indices of `sh`. */
export const W = {
  /** Set by exclusive work while inside its section. */
  IN_EXCL: 0,
  /** Guest steps that saw IN_EXCL set. */
  STEP_SAW_EXCL: 1,
  /** Sections during which another CPU's counter moved. */
  EXCL_MOVED: 2,
  /** Exclusive sections completed. */
  SECTIONS: 3,
  /** Set by takeBql. */
  TOOK: 4,
  /** bqlLocked() as the vCPU saw it in takeBql. */
  VCPU_BQL: 5,
  /** Generic marks. */
  MARK: 6,
  /** A word to pause on. */
  SLEEP: 7,
  /** Per-CPU halt requests (index + HALT). */
  HALT: 8,
  SIZE: 48,
} as const;

/** The CPUs' data. */
export interface TestData {
  sh: Int32Array;
  cond?: { sab: SharedArrayBuffer; index: number };
  bh?: RemoteBH;
}

function sh(cpu: CPUState): Int32Array {
  return (cpu.data as TestData).sh;
}

/**
 * Counts in guest[0]; halts on request; flags steps taken during a
 * section. Like TCG, it checks exit_request only at "block" boundaries
 * (every 16384 steps), so a CPU that is not waited for keeps running a while.
 */
export const testAccel: AccelOps = {
  execSlice(cpu: CPUState): number {
    const s = sh(cpu);
    const g = cpu.guest;
    for (;;) {
      if (cpu.exitRequest) return EXCP_INTERRUPT;
      if (Atomics.load(s, W.HALT + cpu.cpuIndex) !== 0) return EXCP_HLT;
      for (let n = 0; n < 16384; n++) {
        if (Atomics.load(s, W.IN_EXCL) !== 0) Atomics.add(s, W.STEP_SAW_EXCL, 1);
        Atomics.add(g, 0, 1);
      }
      Atomics.wait(s, W.SLEEP, 0, 0.05);
    }
  },
};

const log: unknown[] = [];

export function logValue(_cpu: CPUState, v: unknown): void {
  log.push(v);
}

export function getLog(): unknown[] {
  return log;
}

export function clearLog(): void {
  log.length = 0;
}

const SELF = { module: import.meta.url, name: "logValue" };

/** Logs v, then queues v + "-nested" on the same CPU. */
export function nested(cpu: CPUState, v: string): void {
  log.push(v);
  asyncRunOnCpu(cpu, SELF, `${v}-nested`);
}

/** Queues "queued", then runs "inline" with a sync call on its own thread. */
export function selfInline(cpu: CPUState): unknown[] {
  asyncRunOnCpu(cpu, SELF, "queued");
  runOnCpu(cpu, SELF, "inline");
  return [...log];
}

export function counter(cpu: CPUState): number {
  return Atomics.load(cpu.guest, 0);
}

export function add(_cpu: CPUState, [a, b]: [number, number]): number {
  return a + b;
}

export function fail(_cpu: CPUState, msg: string): never {
  throw new RangeError(msg);
}

export function whoami(cpu: CPUState): Record<string, unknown> {
  return {
    index: cpu.cpuIndex,
    isSelf: qemuCpuIsSelf(cpu),
    current: currentCpu()?.cpuIndex ?? null,
    bql: bqlLocked(),
  };
}

/**
 * Inside an exclusive section: no other CPU's guest counter may move for
 * `ms` (spinning), and no guest step may see the section's flag.
 */
export function exclCheck(cpu: CPUState, ms: number): void {
  const s = sh(cpu);
  Atomics.store(s, W.IN_EXCL, 1);
  const others: CPUState[] = [];
  for (let i = 0; i < 32; i++) {
    const c = qemuGetCpu(i);
    if (c !== null && c !== cpu && c.created) others.push(c);
  }
  const before = others.map((c) => Atomics.load(c.guest, 0));
  const end = performance.now() + ms;
  while (performance.now() < end) { /* spin: the others must stay still */ }
  const after = others.map((c) => Atomics.load(c.guest, 0));
  Atomics.store(s, W.IN_EXCL, 0);
  if (after.some((v, k) => v !== before[k])) Atomics.add(s, W.EXCL_MOVED, 1);
  Atomics.add(s, W.SECTIONS, 1);
}

/**
 * Inside a section (safe work): opens and closes a nested one, then checks
 * that the others still stay still (only the outermost end resumes them).
 */
export function exclNested(cpu: CPUState, ms: number): void {
  startExclusive();
  endExclusive();
  exclCheck(cpu, ms);
}

/** Runs with the BQL (as work does): marks it, records bqlLocked(), signals. */
export function takeBql(cpu: CPUState): void {
  const s = sh(cpu);
  Atomics.store(s, W.VCPU_BQL, bqlLocked() ? 1 : 0);
  Atomics.store(s, W.TOOK, 1);
  const h = (cpu.data as TestData).cond;
  if (h !== undefined) new QemuCond(h).broadcast();
  const bh = (cpu.data as TestData).bh;
  if (bh !== undefined) RemoteAioContext.scheduleBh(bh);
}

export function mark(cpu: CPUState, v: number): void {
  Atomics.store(sh(cpu), W.MARK, v);
}

/** Whether the vCPU thread is a registered RCU reader, and a read section works there. */
export function rcuReader(_cpu: CPUState): boolean {
  rcuReadLock();
  rcuReadUnlock();
  return rcuIsRegistered();
}

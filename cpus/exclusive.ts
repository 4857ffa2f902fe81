/**
 * Exclusive sections: run while no other vCPU executes guest code.
 *
 * @module
 */
import {
  C_EXCL_COUNT,
  C_HAS_WAITER,
  C_RUNNING,
  C_USED,
  cpusBlock,
  cpuWord,
  G_PENDING_CPUS,
  MAX_CPUS,
} from "./_layout.ts";
import { getCurrentCpu } from "./_views.ts";
import type { CPUState } from "./cpu_state.ts";
import { cpuView } from "./_views.ts";
import { qemuCpuKick } from "./kick.ts";
import { cpusMutation, MUT_EXEC_START_IGNORES_PENDING, MUT_STARTER_NO_WAIT } from "./_testing.ts";

function exclusiveIdle(): void {
  // List lock held: wait for any section in progress to end.
  const b = cpusBlock();
  while (Atomics.load(b.w, G_PENDING_CPUS) !== 0) b.exclResume.wait(b.listLock);
}

/**
 * Starts an exclusive section on the calling vCPU thread: waits until no
 * other CPU is between {@linkcode cpuExecStart} and {@linkcode cpuExecEnd}
 * (kicking those that are), and keeps them out until
 * {@linkcode endExclusive}. Sections nest. Exclusion covers guest execution
 * only: other CPUs may still process their work queues meanwhile.
 *
 * Counterpart: `start_exclusive()`.
 *
 * Thread: a vCPU thread, outside `cpuExecStart`/`cpuExecEnd`, without the
 * BQL (a CPU blocked on the BQL inside its exec loop could never leave).
 *
 * @throws {Error} Outside a vCPU thread, or between `cpuExecStart` and
 * `cpuExecEnd`.
 *
 * @example Only vCPU threads start sections
 * ```ts
 * import { startExclusive } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * let threw = false;
 * try {
 *   startExclusive();
 * } catch {
 *   threw = true;
 * }
 * assertEquals(threw, true);
 * ```
 */
export function startExclusive(): void {
  const self = getCurrentCpu();
  if (self === null) {
    throw new Error(
      "startExclusive() must run on a vCPU thread (the main thread uses pauseAllVcpus)",
    );
  }
  const b = cpusBlock();
  const w = b.w;
  const me = self.cpuIndex;
  if (Atomics.load(w, cpuWord(me, C_RUNNING)) !== 0) {
    throw new Error("startExclusive() called between cpuExecStart() and cpuExecEnd()");
  }
  const depth = cpuWord(me, C_EXCL_COUNT);
  if (w[depth] !== 0) {
    w[depth]++;
    return;
  }
  b.listLock.lock();
  exclusiveIdle();
  // Publish the section before reading `running`: pairs with the store of
  // `running` then the read of pending_cpus in cpuExecStart (SC atomics).
  Atomics.store(w, G_PENDING_CPUS, 1);
  let running = 0;
  for (let i = 0; i < MAX_CPUS; i++) {
    if (i === me || Atomics.load(w, cpuWord(i, C_USED)) === 0) continue;
    if (Atomics.load(w, cpuWord(i, C_RUNNING)) !== 0) {
      Atomics.store(w, cpuWord(i, C_HAS_WAITER), 1);
      running++;
      qemuCpuKick(cpuView(b, i));
    }
  }
  Atomics.store(w, G_PENDING_CPUS, running + 1);
  if (cpusMutation() !== MUT_STARTER_NO_WAIT) {
    while (Atomics.load(w, G_PENDING_CPUS) > 1) b.exclCond.wait(b.listLock);
  }
  b.listLock.unlock();
  w[depth] = 1;
}

/**
 * Ends the calling thread's exclusive section; the outermost end lets the
 * other CPUs run again.
 *
 * Counterpart: `end_exclusive()`.
 *
 * Thread: the vCPU thread that started the section.
 *
 * @throws {Error} If no section is open on this thread.
 *
 * @example Unbalanced ends throw
 * ```ts
 * import { endExclusive } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * let threw = false;
 * try {
 *   endExclusive();
 * } catch {
 *   threw = true;
 * }
 * assertEquals(threw, true);
 * ```
 */
export function endExclusive(): void {
  const self = getCurrentCpu();
  const b = self === null ? null : cpusBlock();
  const depth = self === null ? -1 : cpuWord(self.cpuIndex, C_EXCL_COUNT);
  if (b === null || b.w[depth] === 0) {
    throw new Error("endExclusive() without a matching startExclusive() on this thread");
  }
  if (--b.w[depth] !== 0) return;
  b.listLock.lock();
  Atomics.store(b.w, G_PENDING_CPUS, 0);
  b.exclResume.broadcast();
  b.listLock.unlock();
}

/**
 * Marks `cpu` as executing guest code. If an exclusive section is starting
 * or running and did not count this CPU, waits for it to end first.
 *
 * Counterpart: `cpu_exec_start()`.
 *
 * Thread: `cpu`'s thread, without the BQL.
 *
 * @param cpu The CPU about to run guest code.
 *
 * @example Used by accelerators around a slice (see the vCPU thread loop)
 * ```ts
 * import { cpuExecEnd, cpuExecStart, cpuRemoveSync, qemuInitVcpu, withBql } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * const cpu = withBql(() => qemuInitVcpu({ accel: "dummy" }));
 * assertEquals(typeof cpuExecStart, "function");
 * assertEquals(typeof cpuExecEnd, "function");
 * withBql(() => cpuRemoveSync(cpu));
 * ```
 */
export function cpuExecStart(cpu: CPUState): void {
  const b = cpusBlock();
  const w = b.w;
  const i = cpu.cpuIndex;
  Atomics.store(w, cpuWord(i, C_RUNNING), 1);
  // Publish `running` before reading pending_cpus (startExclusive does the
  // converse), so that one of the two always sees the other.
  if (Atomics.load(w, G_PENDING_CPUS) !== 0 && cpusMutation() !== MUT_EXEC_START_IGNORES_PENDING) {
    b.listLock.lock();
    if (Atomics.load(w, cpuWord(i, C_HAS_WAITER)) === 0) {
      // Not counted by the starter: keep out until the section ends.
      Atomics.store(w, cpuWord(i, C_RUNNING), 0);
      exclusiveIdle();
      Atomics.store(w, cpuWord(i, C_RUNNING), 1);
    }
    // Counted: go on; the kick makes this CPU leave soon.
    b.listLock.unlock();
  }
}

/**
 * Marks `cpu` as no longer executing guest code; if an exclusive section
 * is waiting for it, counts it out and wakes the starter when it was the
 * last.
 *
 * Counterpart: `cpu_exec_end()`.
 *
 * Thread: `cpu`'s thread, without the BQL.
 *
 * @param cpu The CPU that left guest code.
 *
 * @example See {@linkcode cpuExecStart}
 * ```ts
 * import { cpuExecEnd } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * assertEquals(cpuExecEnd.length, 1);
 * ```
 */
export function cpuExecEnd(cpu: CPUState): void {
  const b = cpusBlock();
  const w = b.w;
  const i = cpu.cpuIndex;
  Atomics.store(w, cpuWord(i, C_RUNNING), 0);
  if (Atomics.load(w, G_PENDING_CPUS) !== 0) {
    b.listLock.lock();
    if (Atomics.load(w, cpuWord(i, C_HAS_WAITER)) !== 0) {
      Atomics.store(w, cpuWord(i, C_HAS_WAITER), 0);
      const left = Atomics.sub(w, G_PENDING_CPUS, 1) - 1;
      if (left === 1) b.exclCond.signal();
    }
    b.listLock.unlock();
  }
}

/**
 * Whether `cpu` is inside an exclusive section it started.
 *
 * Counterpart: `cpu_in_exclusive_context()`.
 *
 * Thread: any (the depth is written by `cpu`'s thread only).
 *
 * @param cpu The CPU.
 * @returns Whether its section depth is non-zero.
 *
 * @example
 * ```ts
 * import { cpuInExclusiveContext, cpuRemoveSync, qemuInitVcpu, withBql } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * const cpu = withBql(() => qemuInitVcpu({ accel: "dummy" }));
 * assertEquals(cpuInExclusiveContext(cpu), false);
 * withBql(() => cpuRemoveSync(cpu));
 * ```
 */
export function cpuInExclusiveContext(cpu: CPUState): boolean {
  return Atomics.load(cpusBlock().w, cpuWord(cpu.cpuIndex, C_EXCL_COUNT)) !== 0;
}

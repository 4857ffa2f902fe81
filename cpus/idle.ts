/**
 * Whether vCPU threads have anything to do.
 *
 * @module
 */
import { C_CREATED, C_USED, cpusBlock, cpuWord, hasCpusBlock, MAX_CPUS } from "./_layout.ts";
import { cpuThreadIsIdleAt } from "./_idle.ts";
import type { CPUState } from "./cpu_state.ts";

/**
 * Whether `cpu`'s thread may sleep. In QEMU's order: a stop request or
 * queued work means busy (so work wakes even a stopped CPU); a stopped CPU
 * (or a stopped VM) is idle; a running, non-halted CPU, or a halted one
 * with an interrupt pending, is busy; a halted one is idle.
 *
 * Counterpart: `cpu_thread_is_idle()`.
 *
 * Thread: any (a snapshot; the vCPU thread checks it under the BQL).
 *
 * @param cpu The CPU.
 * @returns Whether its thread may sleep.
 *
 * @example A stopped CPU is idle
 * ```ts
 * import { cpuRemoveSync, cpuThreadIsIdle, qemuInitVcpu, withBql } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * const cpu = withBql(() => qemuInitVcpu({ accel: "dummy", start: false }));
 * assertEquals(cpuThreadIsIdle(cpu), true);
 * withBql(() => cpuRemoveSync(cpu));
 * ```
 */
export function cpuThreadIsIdle(cpu: CPUState): boolean {
  return cpuThreadIsIdleAt(cpusBlock().w, cpu.cpuIndex);
}

/**
 * Whether every vCPU thread may sleep (true when there is none).
 *
 * Counterpart: `all_cpu_threads_idle()`.
 *
 * Thread: any.
 *
 * @returns Whether all CPUs are idle.
 *
 * @example No CPUs: all idle
 * ```ts
 * import { allCpuThreadsIdle } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * assertEquals(allCpuThreadsIdle(), true);
 * ```
 */
export function allCpuThreadsIdle(): boolean {
  if (!hasCpusBlock()) return true;
  const w = cpusBlock().w;
  for (let i = 0; i < MAX_CPUS; i++) {
    if (Atomics.load(w, cpuWord(i, C_USED)) === 0) continue;
    if (Atomics.load(w, cpuWord(i, C_CREATED)) === 0) continue;
    if (!cpuThreadIsIdleAt(w, i)) return false;
  }
  return true;
}

/**
 * Which CPU is which: `qemu_get_cpu()`, `current_cpu` and
 * `qemu_cpu_is_self()`.
 *
 * @module
 */
import { C_USED, cpusBlock, cpuWord, hasCpusBlock, MAX_CPUS } from "./_layout.ts";
import type { CPUState } from "./cpu_state.ts";
import { cpuView, getCurrentCpu } from "./_views.ts";
import { qemuGetThreadId } from "../thread/thread_self.ts";
import { IN_WORKER } from "../thread/_isolate.ts";

/**
 * The CPU with index `index`, or null if no vCPU was ever created there.
 *
 * Counterpart: `qemu_get_cpu()`.
 *
 * Thread: any thread that has the vCPU block (the main isolate, vCPU
 * threads).
 *
 * @param index The CPU index.
 * @returns The CPU or null.
 *
 * @example
 * ```ts
 * import { qemuGetCpu } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * assertEquals(qemuGetCpu(31), null);
 * ```
 */
export function qemuGetCpu(index: number): CPUState | null {
  if (!Number.isInteger(index) || index < 0 || index >= MAX_CPUS) return null;
  if (!hasCpusBlock() && IN_WORKER) return null;
  const b = cpusBlock();
  if (Atomics.load(b.w, cpuWord(index, C_USED)) === 0) return null;
  return cpuView(b, index);
}

/**
 * The CPU this thread is running, or null outside vCPU threads. In `rr`
 * mode it is the CPU whose slice or work is running.
 *
 * Counterpart: `current_cpu`.
 *
 * Thread: any.
 *
 * @returns The current CPU or null.
 *
 * @example Not a vCPU thread
 * ```ts
 * import { currentCpu } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * assertEquals(currentCpu(), null);
 * ```
 */
export function currentCpu(): CPUState | null {
  return getCurrentCpu();
}

/**
 * Whether the calling thread is `cpu`'s vCPU thread (in `rr` mode, the one
 * thread of every CPU).
 *
 * Counterpart: `qemu_cpu_is_self()`.
 *
 * Thread: any.
 *
 * @param cpu The CPU.
 * @returns Whether this is its thread.
 *
 * @example The main thread is no vCPU's
 * ```ts
 * import { qemuCpuIsSelf, qemuInitVcpu, cpuRemoveSync, withBql } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * const cpu = withBql(() => qemuInitVcpu({ accel: "dummy" }));
 * assertEquals(qemuCpuIsSelf(cpu), false);
 * withBql(() => cpuRemoveSync(cpu));
 * ```
 */
export function qemuCpuIsSelf(cpu: CPUState): boolean {
  const tid = cpu.threadId;
  return tid !== 0 && tid === qemuGetThreadId();
}

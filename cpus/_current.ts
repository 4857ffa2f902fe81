// current_cpu: the CPU this thread is running (null outside vCPU threads),
// and each isolate's CPUState objects by index (one per CPU, so identity
// comparisons work).
import type { CPUState } from "./cpu_state.ts";

let current: CPUState | null = null;

export function getCurrentCpu(): CPUState | null {
  return current;
}

export function setCurrentCpu(cpu: CPUState | null): void {
  current = cpu;
}

/** Isolate-local per-CPU data given to qemuInitVcpu (vCPU threads only). */
export const cpuData = new Map<number, unknown>();

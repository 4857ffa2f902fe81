// Each isolate's one CPUState object per CPU index (identity comparisons
// of CPUs work within an isolate), and current_cpu: the CPU this thread is
// running (null outside vCPU threads).
import type { Block } from "./_layout.ts";
import { CPUState } from "./cpu_state.ts";

const views = new Map<number, CPUState>();
let current: CPUState | null = null;

/** The isolate's one view of CPU `index`. */
export function cpuView(b: Block, index: number): CPUState {
  let c = views.get(index);
  if (c === undefined) {
    c = new CPUState({ sab: b.sab, cpuIndex: index });
    views.set(index, c);
  }
  return c;
}

/** current_cpu. */
export function getCurrentCpu(): CPUState | null {
  return current;
}

/** Sets current_cpu (the vCPU thread loop, around slices and work). */
export function setCurrentCpu(cpu: CPUState | null): void {
  current = cpu;
}

// Each isolate's one CPUState object per CPU index (identity comparisons
// of CPUs work within an isolate).
import type { Block } from "./_layout.ts";
import { CPUState } from "./cpu_state.ts";

const views = new Map<number, CPUState>();

/** The isolate's one view of CPU `index`. */
export function cpuView(b: Block, index: number): CPUState {
  let c = views.get(index);
  if (c === undefined) {
    c = new CPUState({ sab: b.sab, cpuIndex: index });
    views.set(index, c);
  }
  return c;
}

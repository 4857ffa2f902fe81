// Test-only faults for the mutation tests of the exclusive-section code:
// a word in the vCPU block that every isolate reads on the slow paths. 0
// (the default) means the real behaviour.
import { cpusBlock, G_MUTATION } from "./_layout.ts";

/** start_exclusive does not wait for the running CPUs to leave. */
export const MUT_STARTER_NO_WAIT = 1;
/** cpu_exec_start ignores pending_cpus. */
export const MUT_EXEC_START_IGNORES_PENDING = 2;

/** Sets the fault (0 for none) for every thread of the process. */
export function setCpusMutation(m: number): void {
  Atomics.store(cpusBlock().w, G_MUTATION, m);
}

/** The fault in force. */
export function cpusMutation(): number {
  return Atomics.load(cpusBlock().w, G_MUTATION);
}

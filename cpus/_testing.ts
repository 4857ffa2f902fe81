// Test-only faults for the mutation tests of the exclusive-section code:
// a word in the vCPU block that every isolate reads on the slow paths. 0
// (the default) means the real behaviour.
import {
  C_HAS_WAITER,
  cpusBlock,
  cpuWord,
  G_MUTATION,
  G_PENDING_CPUS,
  MAX_CPUS,
} from "./_layout.ts";

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

/**
 * After a mutation test: the broken protocol can leave pending_cpus off
 * (a starter that did not wait ends its section before the counted CPUs
 * leave, and their decrements take it below 0), which would keep every
 * CPU out of guest code forever. Resets it and wakes the waiters.
 */
export function repairExclusiveState(): void {
  const b = cpusBlock();
  b.listLock.lock();
  Atomics.store(b.w, G_PENDING_CPUS, 0);
  for (let i = 0; i < MAX_CPUS; i++) Atomics.store(b.w, cpuWord(i, C_HAS_WAITER), 0);
  b.exclResume.broadcast();
  b.exclCond.broadcast();
  b.listLock.unlock();
}

// Isolate-local per-CPU data given to qemuInitVcpu (vCPU threads only);
// index -1 holds the thread's own, for every CPU it runs.

/** Isolate-local per-CPU data given to qemuInitVcpu (vCPU threads only). */
export const cpuData = new Map<number, unknown>();

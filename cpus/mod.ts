/**
 * QEMU's vCPU world (system/cpus.c, cpu-common.c): the Big QEMU Lock, vCPU
 * threads on Workers, run_on_cpu and exclusive sections. The BQL is one
 * process-wide lock; the main loop drops it only around its blocking wait.
 *
 * @example A vCPU, some work, and removal
 * ```ts
 * import { cpuRemoveSync, qemuInitVcpu, runOnCpu, withBql } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * const work = new URL("data:text/javascript,export const who = (cpu) => cpu.cpuIndex;");
 * const cpu = withBql(() => qemuInitVcpu({ accel: "loop", modules: [work] }));
 * assertEquals(withBql(() => runOnCpu(cpu, { module: work, name: "who" })), cpu.cpuIndex);
 * withBql(() => cpuRemoveSync(cpu));
 * ```
 *
 * @module
 */
export * from "./bql.ts";
export * from "./cpu_state.ts";
export * from "./current_cpu.ts";
export * from "./accel.ts";
export * from "./kick.ts";
export * from "./idle.ts";
export * from "./pause.ts";
export * from "./exclusive.ts";
export * from "./run_on_cpu.ts";
export * from "./vcpu.ts";

/**
 * Accelerators: what a vCPU thread runs as guest code.
 *
 * @module
 */
import type { CPUState } from "./cpu_state.ts";

/** The slice ended because `exit_request` was raised (a kick, work, a stop). */
export const EXCP_INTERRUPT: number = 0x10000;
/** The guest halted: the CPU sleeps until work, an interrupt or a resume. */
export const EXCP_HLT: number = 0x10001;

/**
 * An accelerator: `execSlice` runs guest code for `cpu` on its vCPU thread,
 * with the BQL released and between `cpuExecStart` and `cpuExecEnd`, until
 * the guest halts or `cpu.exitRequest` reads true (check it between steps,
 * as TCG does at translation-block boundaries). Export an object of this
 * shape from a module and name it in `qemuInitVcpu`'s `accel`.
 *
 * Counterpart: `AccelOpsClass` (`create_vcpu_thread` is aioloop's; the
 * slice is `tcg_cpu_exec()` / `kvm_cpu_exec()`).
 *
 * Thread: the vCPU thread.
 *
 * @example A guest that halts at once
 * ```ts
 * import { type AccelOps, EXCP_HLT } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * const halting: AccelOps = { execSlice: () => EXCP_HLT };
 * assertEquals(halting.execSlice(null as never), EXCP_HLT);
 * ```
 */
export interface AccelOps {
  /**
   * Runs guest code until it halts or an exit is requested.
   *
   * @param cpu The CPU (also `currentCpu()`).
   * @returns {@linkcode EXCP_INTERRUPT} or {@linkcode EXCP_HLT}.
   */
  execSlice(cpu: CPUState): number;
}

/** An accelerator by name: an export of a module. */
export interface AccelName {
  /** The module's absolute URL. */
  readonly module: string | URL;
  /** The export holding the {@linkcode AccelOps}. */
  readonly name: string;
}

/**
 * Which accelerator runs a vCPU: `"dummy"` (no guest code; the thread
 * sleeps until kicked, like qtest's), `"loop"` (the guest counts in
 * `cpu.guest[0]`, in batches of 1024 steps with a pause of up to 1 ms
 * between batches, checking `exit_request` at every step), or your own.
 */
export type Accel = "dummy" | "loop" | AccelName;

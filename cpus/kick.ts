/**
 * Kicking a vCPU out of guest code or out of its idle sleep.
 *
 * @module
 */
import {
  C_DOORBELL,
  C_EXIT_REQUEST,
  C_MODE,
  C_THREAD_CPU,
  C_THREAD_KICKED,
  cpusBlock,
  cpuWord,
  G_RR_CURRENT,
  MODE_RR,
} from "./_layout.ts";
import type { CPUState } from "./cpu_state.ts";

function raiseExit(w: Int32Array, i: number): void {
  const at = cpuWord(i, C_EXIT_REQUEST);
  Atomics.store(w, at, 1);
  // A guest pausing between steps sleeps on this word.
  Atomics.notify(w, at);
}

/**
 * Wakes `cpu`'s thread: broadcasts its `halt_cond` (an idle vCPU re-checks
 * its state), then does the accelerator kick: unless a kick is already
 * pending (`thread_kicked`, the dedup of QEMU's signal kick), it raises
 * `exit_request` so that guest code leaves at its next step and rings the
 * thread's doorbell. In `rr` mode the kick lands on the CPU the single
 * thread is running (`rr_current_cpu`).
 *
 * Counterpart: `qemu_cpu_kick()` (with `cpus_kick_thread()` and TCG's
 * `exit_request` kick).
 *
 * Thread: any.
 *
 * @param cpu The CPU to kick.
 *
 * @example Kicking a CPU
 * ```ts
 * import { cpuRemoveSync, qemuCpuKick, qemuInitVcpu, withBql } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * const cpu = withBql(() => qemuInitVcpu({ accel: "dummy" }));
 * qemuCpuKick(cpu);
 * assertEquals(cpu.created, true);
 * withBql(() => cpuRemoveSync(cpu));
 * ```
 */
export function qemuCpuKick(cpu: CPUState): void {
  const b = cpusBlock();
  const i = cpu.cpuIndex;
  const t = Atomics.load(b.w, cpuWord(i, C_THREAD_CPU));
  b.haltCond[t].broadcast();
  if (Atomics.load(b.w, cpuWord(i, C_MODE)) === MODE_RR) {
    // TCG RR: whichever CPU the one thread runs leaves its slice.
    const cur = Atomics.load(b.w, G_RR_CURRENT);
    if (cur >= 0) raiseExit(b.w, cur);
  } else {
    raiseExit(b.w, i);
  }
  if (Atomics.exchange(b.w, cpuWord(t, C_THREAD_KICKED), 1) === 0) {
    Atomics.add(b.w, cpuWord(t, C_DOORBELL), 1);
    Atomics.notify(b.w, cpuWord(t, C_THREAD_KICKED));
  }
}

/**
 * Asks `cpu` to leave guest code: raises `exit_request`, then kicks.
 *
 * Counterpart: `cpu_exit()`.
 *
 * Thread: any.
 *
 * @param cpu The CPU.
 *
 * @example
 * ```ts
 * import { cpuExit, cpuRemoveSync, qemuInitVcpu, withBql } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * const cpu = withBql(() => qemuInitVcpu({ accel: "dummy" }));
 * cpuExit(cpu);
 * withBql(() => cpuRemoveSync(cpu));
 * assertEquals(cpu.created, false);
 * ```
 */
export function cpuExit(cpu: CPUState): void {
  raiseExit(cpusBlock().w, cpu.cpuIndex);
  qemuCpuKick(cpu);
}

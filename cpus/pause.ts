/**
 * Stopping and restarting vCPUs.
 *
 * @module
 */
import { bqlLocked, qemuCondWaitBql } from "./bql.ts";
import {
  C_CREATED,
  C_STOP,
  C_STOPPED,
  C_USED,
  cpusBlock,
  cpuWord,
  G_VM_RUNNING,
  hasCpusBlock,
  MAX_CPUS,
} from "./_layout.ts";
import type { CPUState } from "./cpu_state.ts";
import { qemuCpuIsSelf } from "./current_cpu.ts";
import { cpuView } from "./_views.ts";
import { qemuCpuStop } from "./_events.ts";
import { cpuExit, qemuCpuKick } from "./kick.ts";
import { clockEnable, QEMUClockType } from "../aio/timer.ts";

function live(): CPUState[] {
  if (!hasCpusBlock()) return [];
  const b = cpusBlock();
  const out: CPUState[] = [];
  for (let i = 0; i < MAX_CPUS; i++) {
    if (Atomics.load(b.w, cpuWord(i, C_USED)) === 0) continue;
    if (Atomics.load(b.w, cpuWord(i, C_CREATED)) === 0) continue;
    out.push(cpuView(b, i));
  }
  return out;
}

/**
 * Asks `cpu` to stop: on its own thread it stops at once; otherwise it
 * raises `stop` and makes the CPU leave guest code, and the CPU's thread
 * marks itself `stopped` when it next processes its events. Does not wait.
 *
 * Counterpart: `cpu_pause()`.
 *
 * Thread: any; with the BQL.
 *
 * @param cpu The CPU.
 *
 * @example Pausing one CPU
 * ```ts
 * import { cpuPause, cpuRemoveSync, cpuResume, qemuInitVcpu, withBql } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * const cpu = withBql(() => qemuInitVcpu({ accel: "dummy" }));
 * withBql(() => cpuPause(cpu));
 * while (!cpu.stopped) await new Promise((r) => setTimeout(r, 1));
 * withBql(() => cpuResume(cpu));
 * assertEquals(cpu.stopped, false);
 * withBql(() => cpuRemoveSync(cpu));
 * ```
 */
export function cpuPause(cpu: CPUState): void {
  const b = cpusBlock();
  if (qemuCpuIsSelf(cpu)) {
    qemuCpuStop(b, cpu.cpuIndex, true);
  } else {
    Atomics.store(b.w, cpuWord(cpu.cpuIndex, C_STOP), 1);
    cpuExit(cpu);
  }
}

/**
 * Lets `cpu` run again: clears `stop` and `stopped`, then kicks it.
 *
 * Counterpart: `cpu_resume()`.
 *
 * Thread: any; with the BQL.
 *
 * @param cpu The CPU.
 *
 * @example See {@linkcode cpuPause}
 * ```ts
 * import { cpuResume } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * assertEquals(cpuResume.length, 1);
 * ```
 */
export function cpuResume(cpu: CPUState): void {
  const b = cpusBlock();
  Atomics.store(b.w, cpuWord(cpu.cpuIndex, C_STOP), 0);
  Atomics.store(b.w, cpuWord(cpu.cpuIndex, C_STOPPED), 0);
  qemuCpuKick(cpu);
}

/**
 * Stops every vCPU and returns once all are `stopped` (no guest code runs
 * any more). Disables the virtual clock. Waits on `qemu_pause_cond` with
 * the BQL, kicking every CPU again after each wakeup.
 *
 * Counterpart: `pause_all_vcpus()`.
 *
 * Thread: any thread holding the BQL (typically the main thread).
 *
 * @throws {Error} If the calling thread does not hold the BQL.
 *
 * @example Pause and resume a machine
 * ```ts
 * import { cpuRemoveSync, pauseAllVcpus, qemuInitVcpu, resumeAllVcpus, withBql } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * const cpu = withBql(() => qemuInitVcpu({ accel: "loop" }));
 * withBql(() => pauseAllVcpus());
 * assertEquals(cpu.stopped, true);
 * withBql(() => resumeAllVcpus());
 * withBql(() => cpuRemoveSync(cpu));
 * ```
 */
export function pauseAllVcpus(): void {
  if (!bqlLocked()) throw new Error("pauseAllVcpus() needs the BQL (call it inside withBql())");
  if (!hasCpusBlock()) return;
  const b = cpusBlock();
  clockEnable(QEMUClockType.VIRTUAL, false);
  for (const cpu of live()) {
    if (qemuCpuIsSelf(cpu)) {
      qemuCpuStop(b, cpu.cpuIndex, true);
    } else {
      Atomics.store(b.w, cpuWord(cpu.cpuIndex, C_STOP), 1);
      qemuCpuKick(cpu);
    }
  }
  for (;;) {
    const cpus = live();
    if (cpus.every((c) => c.stopped)) break;
    qemuCondWaitBql(b.pauseCond);
    for (const c of live()) qemuCpuKick(c);
  }
}

/**
 * Resumes every vCPU, if the VM is running; re-enables the virtual clock.
 *
 * Counterpart: `resume_all_vcpus()`.
 *
 * Thread: any thread holding the BQL.
 *
 * @example With no vCPUs it does nothing
 * ```ts
 * import { resumeAllVcpus, withBql } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * assertEquals(withBql(() => resumeAllVcpus()), undefined);
 * ```
 */
export function resumeAllVcpus(): void {
  if (!hasCpusBlock()) return;
  const b = cpusBlock();
  if (Atomics.load(b.w, G_VM_RUNNING) === 0) return;
  clockEnable(QEMUClockType.VIRTUAL, true);
  for (const cpu of live()) cpuResume(cpu);
}

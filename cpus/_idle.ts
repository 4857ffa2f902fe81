// cpu_thread_is_idle() on a raw CPU index (shared by idle.ts and the
// vCPU thread loops).
import {
  C_HALTED,
  C_INTERRUPT,
  C_STOP,
  C_STOPPED,
  C_WORK_HEAD,
  cpuWord,
  G_VM_RUNNING,
} from "./_layout.ts";

export function cpuThreadIsIdleAt(w: Int32Array, i: number): boolean {
  if (Atomics.load(w, cpuWord(i, C_STOP)) !== 0) return false;
  if (Atomics.load(w, cpuWord(i, C_WORK_HEAD)) !== -1) return false;
  if (Atomics.load(w, cpuWord(i, C_STOPPED)) !== 0 || Atomics.load(w, G_VM_RUNNING) === 0) {
    return true;
  }
  if (Atomics.load(w, cpuWord(i, C_HALTED)) === 0) return false;
  return Atomics.load(w, cpuWord(i, C_INTERRUPT)) === 0;
}

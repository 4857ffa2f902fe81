// The built-in "loop" accelerator (see accel.ts's Accel type).
import { type AccelOps, EXCP_INTERRUPT } from "./accel.ts";
import type { CPUState } from "./cpu_state.ts";
import { C_EXIT_REQUEST, cpusBlock, cpuWord } from "./_layout.ts";

export const loopAccel: AccelOps = {
  execSlice(cpu: CPUState): number {
    const g = cpu.guest;
    const w = cpusBlock().w;
    const exit = cpuWord(cpu.cpuIndex, C_EXIT_REQUEST);
    for (;;) {
      // Check exit_request at every step, as TCG does at block boundaries.
      for (let n = 0; n < 1024; n++) {
        if (Atomics.load(w, exit) !== 0) return EXCP_INTERRUPT;
        Atomics.add(g, 0, 1);
      }
      // A pause per batch keeps an endless guest off a whole core; a kick
      // (which notifies this word) cuts it short.
      Atomics.wait(w, exit, 0, 1);
    }
  },
};

// The vCPU Worker's start-up data (vcpu.ts → _vcpu_worker.ts).
import type { MessagePort } from "node:worker_threads";
import type { VcpuMode } from "./vcpu.ts";

/** What the vCPU Worker gets (see _vcpu_worker.ts). */
export interface VcpuInit {
  sab: SharedArrayBuffer;
  bql: { sab: SharedArrayBuffer; index: number };
  cpuIndex: number;
  mode: VcpuMode;
  accel: "dummy" | "loop" | { module: string; name: string };
  modules: string[];
  data: unknown;
  port: MessagePort;
}

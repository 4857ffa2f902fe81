// The vCPU Worker's start-up data (vcpu.ts → _vcpu_worker.ts).
import type { MessagePort } from "node:worker_threads";

/** What the vCPU Worker gets (see _vcpu_worker.ts). */
import type { RcuHandle } from "../rcu/rcu.ts";

export interface VcpuInit {
  sab: SharedArrayBuffer;
  bql: { sab: SharedArrayBuffer; index: number };
  /** The process's RCU registry: the thread registers as a reader, as QEMU's do. */
  rcu: RcuHandle;
  cpuIndex: number;
  mode: "mt" | "rr";
  accel: "dummy" | "loop" | { module: string; name: string };
  modules: string[];
  data: unknown;
  port: MessagePort;
  /** The process's trace buffer (trace/_state.ts). */
  trace: SharedArrayBuffer;
}

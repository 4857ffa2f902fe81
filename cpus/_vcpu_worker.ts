// The vCPU Worker: attaches the BQL and the vCPU block, loads the
// accelerator and the listed work modules, then runs the mt or rr thread
// function (_events.ts). A failed start is reported on the port and by
// marking the thread gone, so that qemuInitVcpu's wait ends.
import { workerData } from "node:worker_threads";
import { traceAdopt } from "../trace/_state.ts";
import { bqlAttach, bqlLock, bqlUnlock } from "./bql.ts";
import {
  attachCpusBlock,
  C_EXITED,
  C_MODE,
  C_THREAD_CPU,
  C_THREAD_GONE,
  C_THREAD_ID,
  C_USED,
  cpuWord,
  MAX_CPUS,
  MODE_RR,
} from "./_layout.ts";
import type { VcpuInit } from "./_vcpu_init.ts";
import type { AccelOps } from "./accel.ts";
import { loopAccel } from "./_loop_accel.ts";
import { loadModule } from "./_work.ts";
import { cpuData } from "./_current.ts";
import { mtThreadFn, rrThreadFn } from "./_events.ts";
import { qemuGetThreadId } from "../thread/thread_self.ts";
import { rcuAttach, rcuRegisterThread, rcuUnregisterThread } from "../rcu/rcu.ts";
import { useBqlForCallRcu } from "./_rcu_bql.ts";

const init = workerData as VcpuInit;
traceAdopt(init.trace, `vCPU ${init.cpuIndex}`);
bqlAttach(init.bql);
// rcu_register_thread() first thing in the thread function, as QEMU's vCPU
// threads do; the thread stays registered until it ends.
rcuAttach(init.rcu);
rcuRegisterThread();
useBqlForCallRcu();
const b = attachCpusBlock(init.sab);
const w = b.w;
const me = init.cpuIndex;

async function start(): Promise<AccelOps | null> {
  for (const m of init.modules) await loadModule(m);
  if (init.accel === "dummy") return null;
  if (init.accel === "loop") return loopAccel;
  const { module, name } = init.accel;
  const ops = (await loadModule(module))[name] as AccelOps | undefined;
  if (ops === null || typeof ops !== "object" || typeof ops.execSlice !== "function") {
    throw new TypeError(`accel ${name} of ${module} is not an object with an execSlice function`);
  }
  return ops;
}

/** The CPUs of this (rr) thread. */
function rrCpus(): number[] {
  const out: number[] = [];
  for (let i = 0; i < MAX_CPUS; i++) {
    if (Atomics.load(w, cpuWord(i, C_USED)) === 0) continue;
    if (Atomics.load(w, cpuWord(i, C_MODE)) !== MODE_RR) continue;
    if (Atomics.load(w, cpuWord(i, C_THREAD_CPU)) !== me) continue;
    out.push(i);
  }
  return out;
}

let accel: AccelOps | null;
try {
  Atomics.store(w, cpuWord(me, C_THREAD_ID), qemuGetThreadId());
  cpuData.set(-1, init.data);
  accel = await start();
} catch (e) {
  init.port.postMessage({ error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  bqlLock();
  Atomics.store(w, cpuWord(me, C_EXITED), 1);
  Atomics.store(w, cpuWord(me, C_THREAD_GONE), 1);
  b.cpuCond.broadcast();
  bqlUnlock();
  init.port.close();
  throw e;
}
try {
  if (init.mode === "rr") await rrThreadFn(b, me, rrCpus, accel);
  else await mtThreadFn(b, me, accel);
} finally {
  rcuUnregisterThread();
  init.port.close();
}

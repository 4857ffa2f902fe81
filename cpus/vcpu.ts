/**
 * Creating and removing vCPU threads.
 *
 * @module
 */
import {
  MessageChannel,
  type MessagePort,
  receiveMessageOnPort,
  Worker,
} from "node:worker_threads";
import { bqlHandle, bqlLock, bqlLocked, bqlUnlock, qemuCondWaitBql } from "./bql.ts";
import { traceBlock } from "../trace/_state.ts";
import {
  C_CREATED,
  C_EXITED,
  C_MODE,
  C_STOP,
  C_STOPPED,
  C_THREAD_CPU,
  C_THREAD_GONE,
  C_THREAD_ID,
  C_THREAD_STATE,
  C_UNPLUG,
  C_USED,
  C_WORK_HEAD,
  C_WORK_TAIL,
  CPU_WORDS,
  cpusBlock,
  cpuWord,
  G_NCPUS,
  G_RR_CURRENT,
  G_RR_KICK_ON,
  G_VM_RUNNING,
  MAX_CPUS,
  MODE_MT,
  MODE_RR,
  THREAD_STARTING,
} from "./_layout.ts";
import type { CPUState } from "./cpu_state.ts";
import { qemuCpuIsSelf } from "./current_cpu.ts";
import { cpuView } from "./_views.ts";
import type { Accel } from "./accel.ts";
import { cpuExit } from "./kick.ts";
import { cpuResume } from "./pause.ts";
import { clockGetNs, QEMUClockType, type QEMUTimer, timerNewNs } from "../aio/timer.ts";
import type { VcpuInit } from "./_vcpu_init.ts";
import { rcuHandle } from "../rcu/rcu.ts";
import { useBqlForCallRcu } from "./_rcu_bql.ts";

/** How vCPUs map to threads. */
export type VcpuMode = "mt" | "rr";

/** Options of {@linkcode qemuInitVcpu}. */
export interface VcpuOptions {
  /** What runs as guest code (default `"dummy"`). */
  accel?: Accel;
  /**
   * `"mt"` (default): one Worker per vCPU, as MTTCG and KVM. `"rr"`: one
   * Worker runs every `rr` vCPU in turn, rotated by a kick timer of 100 ms
   * on the main loop's virtual clock (TCG's single-threaded mode). The
   * first `rr` vCPU's `accel`, `modules` and `data` serve them all.
   */
  mode?: VcpuMode;
  /**
   * Modules of work functions to load before the thread starts (others
   * load on first use, with the BQL dropped meanwhile).
   */
  modules?: readonly (string | URL)[];
  /**
   * A structured-cloneable value (SharedArrayBuffers stay shared) that the
   * vCPU thread sees as `cpu.data`.
   */
  data?: unknown;
  /** Resume the CPU once created, as a hot-plugged CPU on a running VM (default true). */
  start?: boolean;
}

interface Thread {
  worker: Worker;
  port: MessagePort;
  anchor: number;
}

const WORKER_URL = new URL("./_vcpu_worker.ts", import.meta.url);
const TCG_KICK_PERIOD_NS = 100_000_000;
/** Threads by their first CPU. */
const threads = new Map<number, Thread>();
let rrThread: Thread | null = null;
let rrKickTimer: QEMUTimer | null = null;

function url(m: string | URL, what: string): string {
  if (m instanceof URL) return m.href;
  if (typeof m === "string" && URL.canParse(m)) return new URL(m).href;
  throw new TypeError(
    `${what} must be an absolute URL (new URL("./accel.ts", import.meta.url)), got ${String(m)}`,
  );
}

function checkAccel(a: Accel | undefined): VcpuInit["accel"] {
  if (a === undefined || a === "dummy" || a === "loop") return a ?? "dummy";
  if (a !== null && typeof a === "object" && typeof a.name === "string") {
    return { module: url(a.module, "accel.module"), name: a.name };
  }
  throw new TypeError(
    `accel must be "dummy", "loop" or { module: URL, name: string }, got ${String(a)}`,
  );
}

function resetSlot(w: Int32Array, i: number): void {
  for (let f = 0; f < CPU_WORDS; f++) Atomics.store(w, cpuWord(i, f), 0);
  w[cpuWord(i, C_WORK_HEAD)] = -1;
  w[cpuWord(i, C_WORK_TAIL)] = -1;
}

/** rr_kick_thread: exit the CPU the rr thread runs, re-arm. */
function rrKick(): void {
  const w = cpusBlock().w;
  rrKickTimer?.modNs(clockGetNs(QEMUClockType.VIRTUAL) + TCG_KICK_PERIOD_NS);
  if (Atomics.load(w, G_RR_KICK_ON) === 0) return;
  const cur = Atomics.load(w, G_RR_CURRENT);
  if (cur >= 0) cpuExit(cpuView(cpusBlock(), cur));
}

/**
 * Creates a vCPU and its thread (a Worker), and returns once the thread is
 * up (`created`): the calling thread waits on the creation condition with
 * the BQL released, since the new thread needs the BQL to start. The
 * thread runs QEMU's vCPU loop: take the BQL, process events (sleeping on
 * `halt_cond` while idle, running queued work), and, while the CPU may
 * run, drop the BQL around one accelerator slice between `cpuExecStart`
 * and `cpuExecEnd`. The CPU starts `stopped`; unless `start` is false it is
 * resumed at once when the VM runs. The Worker never keeps the process
 * alive; remove the CPU with {@linkcode cpuRemoveSync}.
 *
 * Counterpart: `qemu_init_vcpu()` (with the accelerator's
 * `create_vcpu_thread`).
 *
 * Thread: the main isolate, holding the BQL.
 *
 * @param options Accelerator, mode, work modules, data.
 * @returns The CPU.
 * @throws {Error} Without the BQL, off the main isolate, when all 32 CPU
 * slots are used, or when the thread fails to start (its error inside).
 * @throws {TypeError} For a bad `accel` or module URL.
 *
 * @example A dummy vCPU
 * ```ts
 * import { cpuRemoveSync, qemuInitVcpu, withBql } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * const cpu = withBql(() => qemuInitVcpu());
 * assertEquals(cpu.created, true);
 * withBql(() => cpuRemoveSync(cpu));
 * assertEquals(cpu.created, false);
 * ```
 */
export function qemuInitVcpu(options: VcpuOptions = {}): CPUState {
  if (options === null || typeof options !== "object") {
    throw new TypeError("qemuInitVcpu options must be an object");
  }
  if (!bqlLocked()) throw new Error("qemuInitVcpu() needs the BQL (call it inside withBql())");
  const mode = options.mode ?? "mt";
  if (mode !== "mt" && mode !== "rr") {
    throw new TypeError(`mode must be "mt" or "rr", got ${String(mode)}`);
  }
  const accel = checkAccel(options.accel);
  const modules = (options.modules ?? []).map((m, k) => url(m, `modules[${k}]`));
  const b = cpusBlock();
  const w = b.w;
  let i = -1;
  b.listLock.lock();
  try {
    for (let k = 0; k < MAX_CPUS; k++) {
      if (Atomics.load(w, cpuWord(k, C_USED)) === 0) {
        i = k;
        break;
      }
    }
    if (i < 0) throw new Error(`qemuInitVcpu(): all ${MAX_CPUS} vCPU slots are in use`);
    resetSlot(w, i);
    Atomics.store(w, cpuWord(i, C_USED), 1);
    if (i + 1 > w[G_NCPUS]) w[G_NCPUS] = i + 1;
  } finally {
    b.listLock.unlock();
  }
  Atomics.store(w, cpuWord(i, C_STOPPED), 1);
  Atomics.store(w, cpuWord(i, C_MODE), mode === "rr" ? MODE_RR : MODE_MT);
  Atomics.store(w, cpuWord(i, C_THREAD_STATE), THREAD_STARTING);
  const cpu = cpuView(b, i);
  const rr = mode === "rr" ? liveRrThread() : null;
  if (rr !== null) {
    // Later rr CPUs share the thread (and its halt_cond); created at once.
    Atomics.store(w, cpuWord(i, C_THREAD_CPU), rr.anchor);
    Atomics.store(w, cpuWord(i, C_THREAD_ID), Atomics.load(w, cpuWord(rr.anchor, C_THREAD_ID)));
    Atomics.store(w, cpuWord(i, C_CREATED), 1);
  } else {
    Atomics.store(w, cpuWord(i, C_THREAD_CPU), i);
    spawn(i, { mode, accel, modules, data: options.data });
  }
  if (options.start !== false && Atomics.load(w, G_VM_RUNNING) !== 0) cpuResume(cpu);
  return cpu;
}

function liveRrThread(): Thread | null {
  if (rrThread === null) return null;
  const w = cpusBlock().w;
  if (Atomics.load(w, cpuWord(rrThread.anchor, C_THREAD_GONE)) !== 0) return null;
  return rrThread;
}

function spawn(
  i: number,
  o: Pick<VcpuInit, "mode" | "accel" | "modules" | "data">,
): void {
  const b = cpusBlock();
  const w = b.w;
  const { port1, port2 } = new MessageChannel();
  // The process now has vCPUs: call_rcu callbacks run under the BQL.
  useBqlForCallRcu();
  const init: VcpuInit = {
    sab: b.sab,
    bql: bqlHandle(),
    rcu: rcuHandle(),
    cpuIndex: i,
    ...o,
    port: port2,
    trace: traceBlock(),
  };
  let worker: Worker;
  try {
    worker = new Worker(WORKER_URL, { workerData: init, transferList: [port2] });
  } catch (e) {
    port1.close();
    Atomics.store(w, cpuWord(i, C_USED), 0);
    throw e;
  }
  // A vCPU never keeps the process alive on its own.
  worker.unref();
  worker.on("error", () => {});
  const t: Thread = { worker, port: port1, anchor: i };
  threads.set(i, t);
  // Wait for `created` (or a failed start) with the BQL released.
  while (
    Atomics.load(w, cpuWord(i, C_CREATED)) === 0 &&
    Atomics.load(w, cpuWord(i, C_THREAD_GONE)) === 0
  ) {
    qemuCondWaitBql(b.cpuCond);
  }
  if (Atomics.load(w, cpuWord(i, C_CREATED)) === 0) {
    const m = receiveMessageOnPort(port1) as { message: { error: string } } | undefined;
    reap(t);
    Atomics.store(w, cpuWord(i, C_USED), 0);
    throw new Error(`vCPU ${i} thread failed to start: ${m?.message.error ?? "unknown error"}`);
  }
  if (o.mode === "rr") {
    rrThread = t;
    if (rrKickTimer === null) {
      rrKickTimer = timerNewNs(QEMUClockType.VIRTUAL, rrKick, { name: "rr_kick" });
      rrKickTimer.modNs(clockGetNs(QEMUClockType.VIRTUAL) + TCG_KICK_PERIOD_NS);
    }
  }
}

function reap(t: Thread): void {
  threads.delete(t.anchor);
  if (rrThread === t) {
    rrThread = null;
    rrKickTimer?.del();
    rrKickTimer = null;
  }
  t.port.close();
  void t.worker.terminate().catch(() => {});
}

/**
 * Removes `cpu`: asks its thread to stop and leave (`stop`, `unplug`,
 * `cpu_exit`), waits with the BQL released until the thread let go of the
 * CPU, then ends the Worker (in `rr` mode, once its last CPU is gone).
 * Afterwards `cpu.created` is false, work for it throws, and its index may
 * be reused.
 *
 * Counterpart: `cpu_remove_sync()`.
 *
 * Thread: the main isolate, holding the BQL; not the CPU's own thread.
 *
 * @param cpu The CPU.
 * @throws {Error} Without the BQL, or from the CPU's own thread.
 *
 * @example See {@linkcode qemuInitVcpu}
 * ```ts
 * import { cpuRemoveSync, qemuInitVcpu, withBql } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * const cpu = withBql(() => qemuInitVcpu({ accel: "loop" }));
 * withBql(() => cpuRemoveSync(cpu));
 * assertEquals(cpu.threadState, "exited");
 * ```
 */
export function cpuRemoveSync(cpu: CPUState): void {
  if (!bqlLocked()) throw new Error("cpuRemoveSync() needs the BQL (call it inside withBql())");
  if (qemuCpuIsSelf(cpu)) throw new Error("cpuRemoveSync() cannot join the calling thread");
  const b = cpusBlock();
  const w = b.w;
  const i = cpu.cpuIndex;
  if (Atomics.load(w, cpuWord(i, C_USED)) === 0) return;
  const anchor = Atomics.load(w, cpuWord(i, C_THREAD_CPU));
  Atomics.store(w, cpuWord(i, C_STOP), 1);
  Atomics.store(w, cpuWord(i, C_UNPLUG), 1);
  cpuExit(cpu);
  bqlUnlock();
  try {
    const exited = cpuWord(i, C_EXITED);
    while (Atomics.load(w, exited) === 0) Atomics.wait(w, exited, 0);
    const t = threads.get(anchor);
    if (t !== undefined && !hasLiveCpus(anchor)) {
      const gone = cpuWord(anchor, C_THREAD_GONE);
      while (Atomics.load(w, gone) === 0) Atomics.wait(w, gone, 0, 10);
    }
  } finally {
    bqlLock();
  }
  const t = threads.get(anchor);
  if (t !== undefined && Atomics.load(w, cpuWord(anchor, C_THREAD_GONE)) !== 0) {
    reap(t);
    Atomics.store(w, cpuWord(anchor, C_USED), 0);
  }
  if (i !== anchor || t === undefined) Atomics.store(w, cpuWord(i, C_USED), 0);
}

/** Whether CPUs other than joined ones remain on the thread of `anchor`. */
function hasLiveCpus(anchor: number): boolean {
  const w = cpusBlock().w;
  for (let k = 0; k < MAX_CPUS; k++) {
    if (Atomics.load(w, cpuWord(k, C_USED)) === 0) continue;
    if (Atomics.load(w, cpuWord(k, C_THREAD_CPU)) !== anchor) continue;
    if (Atomics.load(w, cpuWord(k, C_EXITED)) === 0) return true;
  }
  return false;
}

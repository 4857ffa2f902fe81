/**
 * Running named work on a vCPU's thread.
 *
 * @module
 */
import { bqlLocked, qemuCondWaitBql } from "./bql.ts";
import {
  C_CREATED,
  C_WORK_CLOSED,
  C_WORK_HEAD,
  C_WORK_TAIL,
  cpusBlock,
  cpuWord,
  I_DONE,
  I_NEXT,
  ITEM_EXCLUSIVE,
  ITEM_FAILED,
  ITEM_FREE,
  ITEM_PENDING,
  itemWord,
} from "./_layout.ts";
import {
  allocItem,
  fillItem,
  freeItem,
  loadedModule,
  splitKey,
  takeResult,
  workKey,
  type WorkName,
} from "./_work.ts";
import type { CPUState } from "./cpu_state.ts";
import { qemuCpuIsSelf } from "./current_cpu.ts";
import { getCurrentCpu, setCurrentCpu } from "./_views.ts";
import { cpuExit } from "./kick.ts";
import { processQueuedWorkAt } from "./_events.ts";
import { K_CPU, traceName, traceSend, tracing } from "../trace/_state.ts";

const T_QUEUE = traceName("queue_work_on_cpu");

export type { WorkName };

/**
 * A work function: runs on the vCPU's thread with the CPU and the
 * (structured-cloned) argument; a sync caller gets its return value.
 */
export type CpuWorkFn = (cpu: CPUState, arg: unknown) => unknown;

function noThread(cpu: CPUState, what: string): Error {
  return new Error(
    `${what}: CPU ${cpu.cpuIndex} has no vCPU thread (it exited or was removed); the work would never run`,
  );
}

/** queue_work_on_cpu(): append under work_mutex, then cpu_exit. */
function queue(cpu: CPUState, work: WorkName, arg: unknown, flags: number, what: string): number {
  const key = workKey(work, what);
  const b = cpusBlock();
  const i = cpu.cpuIndex;
  if (Atomics.load(b.w, cpuWord(i, C_CREATED)) === 0) throw noThread(cpu, what);
  const k = allocItem(b);
  try {
    fillItem(b, k, i, key, arg, flags);
  } catch (e) {
    freeItem(b, k);
    throw e;
  }
  const mu = b.workMutex[i];
  mu.lock();
  if (b.w[cpuWord(i, C_WORK_CLOSED)] !== 0) {
    mu.unlock();
    freeItem(b, k);
    throw noThread(cpu, what);
  }
  if (tracing) traceSend(K_CPU, T_QUEUE, i, k);
  const tail = b.w[cpuWord(i, C_WORK_TAIL)];
  if (tail === -1) Atomics.store(b.w, cpuWord(i, C_WORK_HEAD), k);
  else b.w[itemWord(tail, I_NEXT)] = k;
  b.w[cpuWord(i, C_WORK_TAIL)] = k;
  mu.unlock();
  cpuExit(cpu);
  return k;
}

/**
 * Runs the named function on `cpu`'s thread and returns its result (an
 * aioloop extra: QEMU's returns nothing). On the CPU's own thread it runs
 * at once, ahead of any queued work (as QEMU's does); otherwise it is
 * queued and the caller sleeps on the global work condition with the BQL
 * released until it ran. Work wakes even a halted or paused CPU, without
 * letting its guest run.
 *
 * Stricter than QEMU: work for a CPU with no thread (it exited or was
 * removed, even while the caller waited) throws instead of hanging.
 *
 * Counterpart: `run_on_cpu()`.
 *
 * Thread: any thread holding the BQL (the CPU's own thread need not).
 *
 * @param cpu The CPU.
 * @param work The function: `{ module: URL, name }`; its module is loaded
 * in the vCPU thread on first use.
 * @param arg A structured-cloneable argument (no SharedArrayBuffers: share
 * memory through `qemuInitVcpu`'s `data`).
 * @returns What the function returned (structured-cloned).
 * @throws {Error} Without the BQL; when the CPU has no thread; what the
 * function threw.
 * @throws {TypeError} For a bad `work` or an argument that cannot be cloned.
 * @throws {RangeError} When the argument or the result is too large
 * (about 4 KiB encoded) or every work item is in use.
 *
 * @example A round trip
 * ```ts
 * import { cpuRemoveSync, qemuInitVcpu, runOnCpu, withBql } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * const work = new URL("data:text/javascript,export const add = (cpu, [a, b]) => a + b + cpu.cpuIndex * 0;");
 * const cpu = withBql(() => qemuInitVcpu({ accel: "dummy", modules: [work] }));
 * assertEquals(withBql(() => runOnCpu(cpu, { module: work, name: "add" }, [2, 3])), 5);
 * withBql(() => cpuRemoveSync(cpu));
 * ```
 */
export function runOnCpu(cpu: CPUState, work: WorkName, arg?: unknown): unknown {
  if (qemuCpuIsSelf(cpu)) {
    const { url, name } = splitKey(workKey(work, "runOnCpu()"));
    const fn = loadedModule(url)?.[name];
    if (typeof fn !== "function") {
      throw new TypeError(
        `runOnCpu(): ${name} of ${url} is not loaded in this vCPU thread; list the module in qemuInitVcpu's modules`,
      );
    }
    return (fn as CpuWorkFn)(cpu, structuredClone(arg));
  }
  if (!bqlLocked()) {
    throw new Error("runOnCpu() needs the BQL: call it inside withBql() or after bqlLock()");
  }
  const b = cpusBlock();
  const k = queue(cpu, work, arg, 0, "runOnCpu()");
  const done = itemWord(k, I_DONE);
  try {
    while (Atomics.load(b.w, done) === ITEM_PENDING) {
      const self = getCurrentCpu();
      qemuCondWaitBql(b.workCond);
      setCurrentCpu(self);
    }
    if (Atomics.load(b.w, done) === ITEM_FAILED) throw noThread(cpu, "runOnCpu()");
    return takeResult(b, k);
  } finally {
    freeItem(b, k);
  }
}

/**
 * Queues the named function on `cpu`'s thread and returns at once; nothing
 * reports its completion. A throw in it is logged and counted on the vCPU
 * thread.
 *
 * Counterpart: `async_run_on_cpu()`.
 *
 * Thread: any.
 *
 * @param cpu The CPU.
 * @param work The function, as for {@linkcode runOnCpu}.
 * @param arg A structured-cloneable argument.
 * @throws {Error} When the CPU has no thread.
 * @throws {TypeError} For a bad `work` or argument.
 * @throws {RangeError} As for {@linkcode runOnCpu}.
 *
 * @example Fire and forget, then a sync item runs after it
 * ```ts
 * import { asyncRunOnCpu, cpuRemoveSync, qemuInitVcpu, runOnCpu, withBql } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * const work = new URL("data:text/javascript,let n = 0; export const inc = () => { n++; }; export const get = () => n;");
 * const cpu = withBql(() => qemuInitVcpu({ accel: "dummy", modules: [work] }));
 * asyncRunOnCpu(cpu, { module: work, name: "inc" });
 * assertEquals(withBql(() => runOnCpu(cpu, { module: work, name: "get" })), 1);
 * withBql(() => cpuRemoveSync(cpu));
 * ```
 */
export function asyncRunOnCpu(cpu: CPUState, work: WorkName, arg?: unknown): void {
  queue(cpu, work, arg, ITEM_FREE, "asyncRunOnCpu()");
}

/**
 * As {@linkcode asyncRunOnCpu}, but the function runs inside an exclusive
 * section (no other vCPU executes guest code meanwhile) and without the
 * BQL.
 *
 * Counterpart: `async_safe_run_on_cpu()`.
 *
 * Thread: any.
 *
 * @param cpu The CPU.
 * @param work The function.
 * @param arg A structured-cloneable argument.
 * @throws {Error} When the CPU has no thread.
 * @throws {TypeError} For a bad `work` or argument.
 * @throws {RangeError} As for {@linkcode runOnCpu}.
 *
 * @example
 * ```ts
 * import { asyncSafeRunOnCpu, cpuRemoveSync, qemuInitVcpu, runOnCpu, withBql } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * const work = new URL("data:text/javascript,let n = 0; export const inc = () => { n++; }; export const get = () => n;");
 * const cpu = withBql(() => qemuInitVcpu({ accel: "dummy", modules: [work] }));
 * asyncSafeRunOnCpu(cpu, { module: work, name: "inc" });
 * assertEquals(withBql(() => runOnCpu(cpu, { module: work, name: "get" })), 1);
 * withBql(() => cpuRemoveSync(cpu));
 * ```
 */
export function asyncSafeRunOnCpu(cpu: CPUState, work: WorkName, arg?: unknown): void {
  queue(cpu, work, arg, ITEM_FREE | ITEM_EXCLUSIVE, "asyncSafeRunOnCpu()");
}

/**
 * Runs every item queued on `cpu`, in order, including items queued
 * meanwhile; exclusive ones with the BQL dropped inside an exclusive
 * section. Then wakes every sync caller once. The vCPU thread calls it as
 * part of processing its events; an accelerator may call it too. Items
 * whose module is not loaded in this thread yet stay queued (the thread
 * loop loads it).
 *
 * Counterpart: `process_queued_cpu_work()`.
 *
 * Thread: `cpu`'s thread, holding the BQL.
 *
 * @param cpu The CPU.
 * @throws {Error} Off the CPU's thread, or without the BQL.
 *
 * @example Only on the vCPU's own thread
 * ```ts
 * import { cpuRemoveSync, processQueuedCpuWork, qemuInitVcpu, withBql } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * const cpu = withBql(() => qemuInitVcpu({ accel: "dummy" }));
 * let threw = false;
 * try {
 *   processQueuedCpuWork(cpu);
 * } catch {
 *   threw = true;
 * }
 * assertEquals(threw, true);
 * withBql(() => cpuRemoveSync(cpu));
 * ```
 */
export function processQueuedCpuWork(cpu: CPUState): void {
  if (!qemuCpuIsSelf(cpu)) {
    throw new Error("processQueuedCpuWork() must run on the CPU's own thread");
  }
  if (!bqlLocked()) throw new Error("processQueuedCpuWork() needs the BQL");
  processQueuedWorkAt(cpusBlock(), cpu.cpuIndex);
}

// The vCPU thread side of system/cpus.c and cpu-common.c: event
// processing (qemu_process_cpu_events), the work queue drain
// (process_queued_cpu_work), stopping, and the two thread functions (mt:
// one thread per CPU; rr: one thread for all). Runs with the BQL held
// except where noted, as in QEMU.
import { bqlLock, bqlUnlock } from "./bql.ts";
import { K_CPU, traceCallFlow, traceRefresh, tracing } from "../trace/_state.ts";
import { bqlMutex, bqlSetOwned } from "../thread/_bql_state.ts";
import {
  type Block,
  C_CREATED,
  C_EXIT_REQUEST,
  C_EXITED,
  C_FAILED,
  C_HALT_COND,
  C_HALTED,
  C_INTERRUPT,
  C_STOP,
  C_STOPPED,
  C_THREAD_GONE,
  C_THREAD_KICKED,
  C_THREAD_STATE,
  C_UNPLUG,
  C_WORK_CLOSED,
  C_WORK_ERRORS,
  C_WORK_HEAD,
  C_WORK_TAIL,
  cpuWord,
  G_RR_CURRENT,
  G_RR_KICK_ON,
  G_VM_RUNNING,
  I_DONE,
  I_FLAGS,
  I_NEXT,
  ITEM_DONE,
  ITEM_EXCLUSIVE,
  ITEM_FAILED,
  ITEM_FREE,
  itemWord,
  THREAD_EXITED,
  THREAD_IDLE,
  THREAD_RUNNING,
  THREAD_WORK,
} from "./_layout.ts";
import {
  freeItem,
  itemArg,
  itemKey,
  loadedModule,
  loadModule,
  splitKey,
  storeResult,
} from "./_work.ts";
import type { CPUState } from "./cpu_state.ts";
import { cpuView } from "./_views.ts";
import { setCurrentCpu } from "./_views.ts";
import { cpuThreadIsIdleAt } from "./_idle.ts";
import { type AccelOps, EXCP_HLT } from "./accel.ts";
import { cpuExecEnd, cpuExecStart, endExclusive, startExclusive } from "./exclusive.ts";
import { cpuExit } from "./kick.ts";

type WorkFn = (cpu: CPUState, arg: unknown) => unknown;

function get(b: Block, i: number, f: number): number {
  return Atomics.load(b.w, cpuWord(i, f));
}

function set(b: Block, i: number, f: number, v: number): void {
  Atomics.store(b.w, cpuWord(i, f), v);
}

/** cpu_can_run(). */
export function cpuCanRunAt(b: Block, i: number): boolean {
  return get(b, i, C_STOP) === 0 && get(b, i, C_STOPPED) === 0 &&
    Atomics.load(b.w, G_VM_RUNNING) !== 0;
}

/** qemu_cpu_stop(): honour a stop on the CPU's own thread. */
export function qemuCpuStop(b: Block, i: number, exit: boolean): void {
  set(b, i, C_STOP, 0);
  set(b, i, C_STOPPED, 1);
  if (exit) cpuExit(cpuView(b, i));
  b.pauseCond.broadcast();
}

/**
 * Sleeps on `haltCond` with the BQL while `idle()` holds. The condition's
 * sequence is read before each check, so a broadcast that comes between
 * the check and the sleep (from a thread without the BQL, say) is never
 * lost: stricter than a plain condvar wait.
 */
function idleWait(b: Block, t: number, idle: () => boolean): void {
  const word = cpuWord(t, C_HALT_COND);
  const m = bqlMutex()!;
  for (;;) {
    const seq = Atomics.load(b.w, word);
    if (!idle()) return;
    set(b, t, C_THREAD_STATE, THREAD_IDLE);
    bqlSetOwned(false);
    m.unlock();
    Atomics.wait(b.w, word, seq);
    m.lock();
    bqlSetOwned(true);
  }
}

/**
 * process_queued_cpu_work(): runs every queued item of CPU `i`, then
 * broadcasts qemu_work_cond once. Returns the URL of a module the next
 * item needs and this thread has not loaded (that item stays queued), or
 * null.
 */
export function processQueuedWorkAt(b: Block, i: number): string | null {
  const mu = b.workMutex[i];
  const w = b.w;
  const head = cpuWord(i, C_WORK_HEAD);
  mu.lock();
  if (w[head] === -1) {
    mu.unlock();
    return null;
  }
  let needs: string | null = null;
  const cpu = cpuView(b, i);
  set(b, i, C_THREAD_STATE, THREAD_WORK);
  while (w[head] !== -1) {
    const k = w[head];
    const { url, name } = splitKey(itemKey(b, k));
    const mod = loadedModule(url);
    if (mod === undefined) {
      needs = url;
      break;
    }
    w[head] = w[itemWord(k, I_NEXT)];
    if (w[head] === -1) w[cpuWord(i, C_WORK_TAIL)] = -1;
    mu.unlock();
    const flags = w[itemWord(k, I_FLAGS)];
    // A vCPU that slept through the start of a trace learns of it here.
    traceRefresh();
    let result: unknown, threw = false;
    try {
      const fn = mod[name];
      if (typeof fn !== "function") {
        throw new TypeError(`cpu work '${name}' is not a function exported by ${url}`);
      }
      const arg = itemArg(b, k);
      if (flags & ITEM_EXCLUSIVE) {
        // Outside the BQL: a CPU blocked on the BQL in its exec loop could
        // never leave for start_exclusive.
        bqlUnlock();
        try {
          startExclusive();
          try {
            result = tracing
              ? traceCallFlow(K_CPU, `run_on_cpu ${name}`, k, fn as WorkFn, null, cpu, arg)
              : fn(cpu, arg);
          } finally {
            endExclusive();
          }
        } finally {
          bqlLock();
        }
      } else {
        result = tracing
          ? traceCallFlow(K_CPU, `run_on_cpu ${name}`, k, fn as WorkFn, null, cpu, arg)
          : fn(cpu, arg);
      }
    } catch (e) {
      result = e;
      threw = true;
    }
    mu.lock();
    if (flags & ITEM_FREE) {
      if (threw) {
        Atomics.add(w, cpuWord(i, C_WORK_ERRORS), 1);
        console.error(`async work ${name} on CPU ${i} threw:`, result);
      }
      freeItem(b, k);
    } else {
      storeResult(b, k, result, threw);
      Atomics.store(w, itemWord(k, I_DONE), ITEM_DONE);
    }
  }
  mu.unlock();
  b.workCond.broadcast();
  return needs;
}

/**
 * free_queued_cpu_work(), stricter: closes the queue, frees async items
 * and fails sync ones (their callers throw instead of waiting forever).
 */
export function freeQueuedWorkAt(b: Block, i: number): void {
  const mu = b.workMutex[i];
  const w = b.w;
  const head = cpuWord(i, C_WORK_HEAD);
  mu.lock();
  w[cpuWord(i, C_WORK_CLOSED)] = 1;
  while (w[head] !== -1) {
    const k = w[head];
    w[head] = w[itemWord(k, I_NEXT)];
    if (w[itemWord(k, I_FLAGS)] & ITEM_FREE) freeItem(b, k);
    else Atomics.store(w, itemWord(k, I_DONE), ITEM_FAILED);
  }
  w[cpuWord(i, C_WORK_TAIL)] = -1;
  mu.unlock();
  b.workCond.broadcast();
}

/** Fails the head item (its module would not load). */
function failHead(b: Block, i: number, url: string, err: unknown): void {
  const mu = b.workMutex[i];
  const w = b.w;
  const head = cpuWord(i, C_WORK_HEAD);
  mu.lock();
  const k = w[head];
  if (k !== -1 && splitKey(itemKey(b, k)).url === url) {
    w[head] = w[itemWord(k, I_NEXT)];
    if (w[head] === -1) w[cpuWord(i, C_WORK_TAIL)] = -1;
    if (w[itemWord(k, I_FLAGS)] & ITEM_FREE) {
      console.error(`async work module ${url} failed to load on CPU ${i}:`, err);
      freeItem(b, k);
    } else {
      storeResult(b, k, err, true);
      Atomics.store(w, itemWord(k, I_DONE), ITEM_DONE);
    }
  }
  mu.unlock();
  b.workCond.broadcast();
}

/** Loads what a work item needs, with the BQL dropped meanwhile. */
async function loadFor(b: Block, i: number, url: string): Promise<void> {
  bqlUnlock();
  let err: unknown = null;
  try {
    await loadModule(url);
  } catch (e) {
    err = e;
  }
  bqlLock();
  if (err !== null) failHead(b, i, url, err);
}

/** qemu_process_cpu_events_common(). Returns a module URL to load, or null. */
function processEventsCommon(b: Block, i: number): string | null {
  Atomics.store(b.w, cpuWord(i, C_THREAD_KICKED), 0);
  if (get(b, i, C_STOP) !== 0) qemuCpuStop(b, i, false);
  return processQueuedWorkAt(b, i);
}

/** qemu_process_cpu_events() of the mt thread. */
function processEvents(b: Block, i: number): string | null {
  set(b, i, C_EXIT_REQUEST, 0);
  idleWait(b, i, () => cpuThreadIsIdleAt(b.w, i));
  return processEventsCommon(b, i);
}

/** Runs one slice with the BQL dropped, between cpu_exec_start and _end. */
function execSlice(b: Block, cpu: CPUState, accel: AccelOps): void {
  const i = cpu.cpuIndex;
  // cpu_handle_halt: a halted guest stays halted until it has work (an
  // interrupt pending); run_on_cpu work alone does not resume it.
  if (get(b, i, C_HALTED) !== 0) {
    if (get(b, i, C_INTERRUPT) === 0) return;
    set(b, i, C_HALTED, 0);
  }
  set(b, i, C_THREAD_STATE, THREAD_RUNNING);
  bqlUnlock();
  let r: number;
  try {
    cpuExecStart(cpu);
    try {
      r = accel.execSlice(cpu);
    } finally {
      cpuExecEnd(cpu);
    }
  } finally {
    bqlLock();
  }
  if (r === EXCP_HLT) set(b, i, C_HALTED, 1);
}

/** The dummy accelerator's wait: no guest code, sleep until kicked. */
function dummyWait(b: Block, i: number): void {
  set(b, i, C_THREAD_STATE, THREAD_IDLE);
  bqlUnlock();
  const at = cpuWord(i, C_THREAD_KICKED);
  while (Atomics.load(b.w, at) === 0) Atomics.wait(b.w, at, 0);
  bqlLock();
}

/** cpu_thread_signal_created(). */
function signalCreated(b: Block, i: number): void {
  set(b, i, C_CREATED, 1);
  b.cpuCond.broadcast();
}

/** Teardown of one CPU: queue closed, `created` cleared, waiters told. */
function signalDestroyed(b: Block, i: number): void {
  freeQueuedWorkAt(b, i);
  set(b, i, C_CREATED, 0);
  set(b, i, C_THREAD_STATE, THREAD_EXITED);
  b.cpuCond.broadcast();
}

/** Marks the thread of CPU `i` gone (the join point) and wakes the joiner. */
function signalExited(b: Block, i: number): void {
  set(b, i, C_EXITED, 1);
  Atomics.notify(b.w, cpuWord(i, C_EXITED));
}

/** The mt thread function (one vCPU per thread): KVM's and MTTCG's shape. */
export async function mtThreadFn(b: Block, i: number, accel: AccelOps | null): Promise<void> {
  const cpu = cpuView(b, i);
  bqlLock();
  setCurrentCpu(cpu);
  signalCreated(b, i);
  try {
    do {
      if (cpuCanRunAt(b, i)) {
        if (accel !== null) execSlice(b, cpu, accel);
        else dummyWait(b, i);
      }
      // A work item whose module this thread has not loaded stays queued
      // while it loads; run it (and any behind it) before the guest again:
      // a slice would not end until the next kick.
      let needs = processEvents(b, i);
      while (needs !== null) {
        await loadFor(b, i, needs);
        needs = processEventsCommon(b, i);
      }
    } while (get(b, i, C_UNPLUG) === 0 || cpuCanRunAt(b, i));
  } catch (e) {
    set(b, i, C_FAILED, 1);
    console.error(`vCPU ${i} thread failed:`, e);
    throw e;
  } finally {
    setCurrentCpu(null);
    signalDestroyed(b, i);
    bqlUnlock();
    signalExited(b, i);
    set(b, i, C_THREAD_GONE, 1);
  }
}

/**
 * The rr thread function: one thread runs every CPU listed by `cpus()`
 * (it grows when CPUs are added to this thread), TCG RR's shape.
 */
export async function rrThreadFn(
  b: Block,
  first: number,
  cpus: () => number[],
  accel: AccelOps | null,
): Promise<void> {
  const w = b.w;
  bqlLock();
  signalCreated(b, first);
  // rr_start_kick_timer: the kick timer runs whenever the thread is not idle.
  Atomics.store(w, G_RR_KICK_ON, 1);
  const reaped = (i: number) => get(b, i, C_EXITED) !== 0;
  const live = () => cpus().filter((i) => !reaped(i));
  /** CPU_NEXT over the live list (which grows as CPUs are added). */
  const nextOf = (i: number) => live().find((k) => k > i) ?? -1;
  let cursor = -1;
  try {
    for (;;) {
      const list = live();
      if (list.length === 0) break;
      const cur = cursor !== -1 && list.includes(cursor) ? cursor : list[0];
      set(b, cur, C_EXIT_REQUEST, 0);
      // rr_wait_io_event: sleep while every CPU is idle, kick timer off.
      const allIdle = () => live().every((i) => cpuThreadIsIdleAt(w, i));
      if (allIdle()) {
        Atomics.store(w, G_RR_KICK_ON, 0);
        idleWait(b, first, allIdle);
        Atomics.store(w, G_RR_KICK_ON, 1);
      }
      for (const i of live()) {
        setCurrentCpu(cpuView(b, i));
        const needs = processEventsCommon(b, i);
        if (needs !== null) await loadFor(b, i, needs);
      }
      // Reap unplugged CPUs.
      for (const i of live()) {
        if (get(b, i, C_UNPLUG) !== 0 && !cpuCanRunAt(b, i)) {
          signalDestroyed(b, i);
          signalExited(b, i);
        }
      }
      // Walk from the current CPU; queued work on any CPU stops the walk
      // (stricter than QEMU, which looks at the walked CPU only), so that
      // work never waits for a kick period.
      const anyWork = () => live().some((i) => get(b, i, C_WORK_HEAD) !== -1);
      let i = reaped(cur) ? nextOf(cur) : cur;
      while (i !== -1 && !anyWork()) {
        Atomics.store(w, G_RR_CURRENT, i);
        if (get(b, i, C_EXIT_REQUEST) !== 0) break;
        const cpu = cpuView(b, i);
        setCurrentCpu(cpu);
        if (cpuCanRunAt(b, i)) {
          if (accel !== null) execSlice(b, cpu, accel);
          else {
            dummyWait(b, first);
            break;
          }
        } else if (get(b, i, C_STOP) !== 0) {
          if (get(b, i, C_UNPLUG) !== 0) i = nextOf(i);
          break;
        }
        i = nextOf(i);
      }
      Atomics.store(w, G_RR_CURRENT, -1);
      if (i !== -1) set(b, i, C_EXIT_REQUEST, 0);
      cursor = i;
    }
  } finally {
    setCurrentCpu(null);
    Atomics.store(w, G_RR_KICK_ON, 0);
    const left = live();
    for (const i of left) signalDestroyed(b, i);
    bqlUnlock();
    for (const i of left) signalExited(b, i);
    set(b, first, C_THREAD_GONE, 1);
    Atomics.notify(b.w, cpuWord(first, C_THREAD_GONE));
  }
}

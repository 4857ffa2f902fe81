// The process-wide control block of the vCPU world, one SharedArrayBuffer
// of Int32 words: global state (QEMU's statics in system/cpus.c and
// cpu-common.c), one record per CPU (the threading fields of CPUState),
// then a pool of run_on_cpu work items with room for their encoded
// argument and result. The main isolate creates it on first use; vCPU
// Workers attach it at start-up.
import { QemuCond } from "../thread/cond.ts";
import { QemuMutex } from "../thread/mutex.ts";
import { IN_WORKER } from "../thread/_isolate.ts";

export const MAX_CPUS = 32;

// Global words.
/** qemu_cpu_list_lock (a QemuMutex, 2 words). */
export const G_LIST_LOCK = 0;
/** qemu_cpu_cond: creation and destruction of vCPU threads. */
export const G_CPU_COND = 2;
/** qemu_pause_cond. */
export const G_PAUSE_COND = 3;
/** qemu_work_cond: sync run_on_cpu waiters. */
export const G_WORK_COND = 4;
/** exclusive_cond: the starter of an exclusive section waits there. */
export const G_EXCL_COND = 5;
/** exclusive_resume: everyone else waits there for the section to end. */
export const G_EXCL_RESUME = 6;
/** pending_cpus. */
export const G_PENDING_CPUS = 7;
/** 1 while the VM runs (runstate_is_running()). */
export const G_VM_RUNNING = 8;
/** How many CPU slots were ever used. */
export const G_NCPUS = 9;
/** rr_current_cpu, or -1. */
export const G_RR_CURRENT = 10;
/** 1 while the rr thread wants its kick timer. */
export const G_RR_KICK_ON = 11;
/** The work item pool's lock (a QemuMutex, 2 words). */
export const G_ITEMS_LOCK = 12;
/** Head of the free work item list, or -1. */
export const G_ITEMS_FREE = 14;
/** Test-only faults (see _testing.ts); 0 in normal use. */
export const G_MUTATION = 15;
export const G_WORDS = 32;

// Per-CPU record.
export const C_USED = 0;
export const C_CREATED = 1;
/** The thread has left its function (the join point). */
export const C_EXITED = 2;
export const C_HALTED = 3;
export const C_STOP = 4;
export const C_STOPPED = 5;
export const C_UNPLUG = 6;
export const C_RUNNING = 7;
export const C_HAS_WAITER = 8;
export const C_EXIT_REQUEST = 9;
export const C_THREAD_KICKED = 10;
export const C_INTERRUPT = 11;
export const C_EXCL_COUNT = 12;
/** work_mutex (a QemuMutex, 2 words). */
export const C_WORK_MUTEX = 13;
/** halt_cond. */
export const C_HALT_COND = 15;
export const C_WORK_HEAD = 16;
export const C_WORK_TAIL = 17;
/** The kick doorbell: bumped (and notified) once per delivered kick. */
export const C_DOORBELL = 18;
export const C_THREAD_ID = 19;
/** The CPU whose thread runs this one (itself in mt mode, the first in rr). */
export const C_THREAD_CPU = 20;
/** Thread state for "info cpus": see THREAD_* below. */
export const C_THREAD_STATE = 21;
/** MODE_MT or MODE_RR. */
export const C_MODE = 22;
/** The async work of this CPU that threw, counted (the error is logged). */
export const C_WORK_ERRORS = 23;
/** Set (under work_mutex) once the thread stopped taking work. */
export const C_WORK_CLOSED = 24;
/** Set when the thread died of an error (an accelerator that threw). */
export const C_FAILED = 25;
/** On a thread's first CPU: the thread function returned. */
export const C_THREAD_GONE = 26;
/** Guest-visible words (the loop accelerator counts in the first). */
export const C_GUEST = 32;
export const GUEST_WORDS = 8;
export const CPU_WORDS = 40;

export const MODE_MT = 0;
export const MODE_RR = 1;

export const THREAD_NONE = 0;
export const THREAD_STARTING = 1;
export const THREAD_IDLE = 2;
export const THREAD_RUNNING = 3;
export const THREAD_WORK = 4;
export const THREAD_EXITED = 5;

// Work items.
export const MAX_ITEMS = 256;
export const I_NEXT = 0;
/** ITEM_FREE | ITEM_EXCLUSIVE. */
export const I_FLAGS = 1;
/** ITEM_PENDING, ITEM_DONE or ITEM_FAILED. */
export const I_DONE = 2;
export const I_NAME_LEN = 3;
export const I_ARG_TAG = 4;
export const I_ARG_LEN = 5;
export const I_RES_TAG = 6;
export const I_RES_LEN = 7;
/** Float64 at word 8 (byte 32): a numeric argument. */
export const I_ARG_NUM_WORD = 8;
/** Float64 at word 10: a numeric result. */
export const I_RES_NUM_WORD = 10;
export const I_CPU = 12;
export const I_BYTES_WORD = 16;
export const ITEM_BYTES_MAX = 4096 - I_BYTES_WORD * 4;
export const ITEM_WORDS = 1024;

export const ITEM_FREE = 1;
export const ITEM_EXCLUSIVE = 2;
export const ITEM_PENDING = 0;
export const ITEM_DONE = 1;
export const ITEM_FAILED = 2;

export const CPU_BASE = G_WORDS;
export const ITEMS_BASE = CPU_BASE + MAX_CPUS * CPU_WORDS;
export const TOTAL_WORDS = ITEMS_BASE + MAX_ITEMS * ITEM_WORDS;

/** This isolate's view of the block. */
export interface Block {
  readonly sab: SharedArrayBuffer;
  readonly w: Int32Array;
  readonly f64: Float64Array;
  readonly u8: Uint8Array;
  readonly listLock: QemuMutex;
  readonly cpuCond: QemuCond;
  readonly pauseCond: QemuCond;
  readonly workCond: QemuCond;
  readonly exclCond: QemuCond;
  readonly exclResume: QemuCond;
  readonly itemsLock: QemuMutex;
  readonly workMutex: QemuMutex[];
  readonly haltCond: QemuCond[];
}

let block: Block | null = null;

function open(sab: SharedArrayBuffer): Block {
  const at = (index: number) => ({ sab, index });
  const workMutex: QemuMutex[] = [];
  const haltCond: QemuCond[] = [];
  for (let i = 0; i < MAX_CPUS; i++) {
    workMutex.push(new QemuMutex(at(cpuWord(i, C_WORK_MUTEX))));
    haltCond.push(new QemuCond(at(cpuWord(i, C_HALT_COND))));
  }
  return {
    sab,
    w: new Int32Array(sab),
    f64: new Float64Array(sab),
    u8: new Uint8Array(sab),
    listLock: new QemuMutex(at(G_LIST_LOCK)),
    cpuCond: new QemuCond(at(G_CPU_COND)),
    pauseCond: new QemuCond(at(G_PAUSE_COND)),
    workCond: new QemuCond(at(G_WORK_COND)),
    exclCond: new QemuCond(at(G_EXCL_COND)),
    exclResume: new QemuCond(at(G_EXCL_RESUME)),
    itemsLock: new QemuMutex(at(G_ITEMS_LOCK)),
    workMutex,
    haltCond,
  };
}

/** The word index of field `f` of CPU `i`. */
export function cpuWord(i: number, f: number): number {
  return CPU_BASE + i * CPU_WORDS + f;
}

/** The word index of field `f` of work item `k`. */
export function itemWord(k: number, f: number): number {
  return ITEMS_BASE + k * ITEM_WORDS + f;
}

/** The block of this isolate, created on first use in the main isolate. */
export function cpusBlock(): Block {
  if (block !== null) return block;
  if (IN_WORKER) {
    throw new Error("This Worker is not a vCPU thread: the vCPU state lives in the main isolate");
  }
  const sab = new SharedArrayBuffer(TOTAL_WORDS * 4);
  const b = open(sab);
  const w = b.w;
  w[G_VM_RUNNING] = 1;
  w[G_RR_CURRENT] = -1;
  for (let i = 0; i < MAX_CPUS; i++) {
    w[cpuWord(i, C_WORK_HEAD)] = -1;
    w[cpuWord(i, C_WORK_TAIL)] = -1;
  }
  for (let k = 0; k < MAX_ITEMS; k++) w[itemWord(k, I_NEXT)] = k + 1 < MAX_ITEMS ? k + 1 : -1;
  w[G_ITEMS_FREE] = 0;
  block = b;
  return b;
}

/** Whether this isolate has the block (without creating it). */
export function hasCpusBlock(): boolean {
  return block !== null;
}

/** Attaches the main isolate's block in a vCPU Worker. */
export function attachCpusBlock(sab: SharedArrayBuffer): Block {
  if (block === null) block = open(sab);
  else if (block.sab !== sab) throw new Error("A different vCPU block is attached already");
  return block;
}

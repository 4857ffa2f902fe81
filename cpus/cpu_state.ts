/**
 * CPUState: one vCPU's threading state in shared memory.
 *
 * @module
 */
import {
  attachCpusBlock,
  type Block,
  C_CREATED,
  C_DOORBELL,
  C_EXIT_REQUEST,
  C_GUEST,
  C_HALTED,
  C_RUNNING,
  C_STOP,
  C_STOPPED,
  C_THREAD_ID,
  C_THREAD_KICKED,
  C_THREAD_STATE,
  C_UNPLUG,
  cpuWord,
  GUEST_WORDS,
  MAX_CPUS,
} from "./_layout.ts";
import { cpuData } from "./_current.ts";

/** The cloneable handle of a CPU: the process's vCPU block and the CPU index. */
export interface CPUStateHandle {
  /** The vCPU control block. */
  readonly sab: SharedArrayBuffer;
  /** The CPU index. */
  readonly cpuIndex: number;
}

/** What a vCPU thread is doing, as `info cpus` shows it. */
export type CpuThreadState = "none" | "starting" | "idle" | "running" | "work" | "exited";

const STATES: CpuThreadState[] = ["none", "starting", "idle", "running", "work", "exited"];

/**
 * One vCPU: its threading fields live in the process-wide vCPU block, so
 * every isolate sees the same state; this object is the calling isolate's
 * view (one per CPU index per isolate). Get one from `qemuInitVcpu`,
 * {@linkcode qemuGetCpu} or, on a vCPU thread, {@linkcode currentCpu}; post
 * its `handle` to other Workers.
 *
 * Counterpart: `CPUState` (the fields of include/hw/core/cpu.h used for
 * threading: `created`, `halted`, `stop`, `stopped`, `unplug`, `running`,
 * `exit_request`, `thread_kicked`, ...).
 *
 * Thread: any; the flags are read with atomic loads.
 *
 * @example A CPU slot before any thread exists
 * ```ts
 * import { qemuGetCpu } from "@aioloop/aioloop/cpus";
 * import { assertEquals } from "@std/assert";
 * assertEquals(qemuGetCpu(0), null);
 * ```
 */
export class CPUState {
  readonly #b: Block;
  readonly #index: number;
  readonly #guest: Int32Array;

  /**
   * Opens a CPU from its handle. Prefer {@linkcode qemuGetCpu}, which keeps
   * one object per CPU.
   *
   * @param handle What {@linkcode CPUState.prototype.handle} returned.
   * @throws {RangeError} If the index is out of range.
   * @throws {TypeError} If the handle holds no SharedArrayBuffer.
   */
  constructor(handle: CPUStateHandle) {
    if (!(handle?.sab instanceof SharedArrayBuffer)) {
      throw new TypeError("CPUState: handle.sab must be the vCPU block (pass cpu.handle)");
    }
    const i = handle.cpuIndex;
    if (!Number.isInteger(i) || i < 0 || i >= MAX_CPUS) {
      throw new RangeError(
        `CPUState: cpuIndex must be an integer in [0, ${MAX_CPUS - 1}], got ${i}`,
      );
    }
    this.#b = attachCpusBlock(handle.sab);
    this.#index = i;
    this.#guest = new Int32Array(handle.sab, cpuWord(i, C_GUEST) * 4, GUEST_WORDS);
  }

  #get(f: number): number {
    return Atomics.load(this.#b.w, cpuWord(this.#index, f));
  }

  /** The cloneable handle to post to other threads. */
  get handle(): CPUStateHandle {
    return { sab: this.#b.sab, cpuIndex: this.#index };
  }

  /** The CPU index (`cpu_index`). */
  get cpuIndex(): number {
    return this.#index;
  }

  /** The vCPU thread is up (`created`). */
  get created(): boolean {
    return this.#get(C_CREATED) !== 0;
  }

  /** The guest is halted (`halted`). */
  get halted(): boolean {
    return this.#get(C_HALTED) !== 0;
  }

  /** A stop was requested and not yet honoured (`stop`). */
  get stop(): boolean {
    return this.#get(C_STOP) !== 0;
  }

  /** The CPU is artificially stopped (`stopped`). */
  get stopped(): boolean {
    return this.#get(C_STOPPED) !== 0;
  }

  /** The CPU is being removed (`unplug`). */
  get unplug(): boolean {
    return this.#get(C_UNPLUG) !== 0;
  }

  /** Between `cpuExecStart` and `cpuExecEnd` (`running`). */
  get running(): boolean {
    return this.#get(C_RUNNING) !== 0;
  }

  /** Another thread asked the vCPU to leave guest code (`exit_request`). */
  get exitRequest(): boolean {
    return this.#get(C_EXIT_REQUEST) !== 0;
  }

  /** A kick is pending (`thread_kicked`). */
  get threadKicked(): boolean {
    return this.#get(C_THREAD_KICKED) !== 0;
  }

  /** How many kicks rang the thread's doorbell (deduplicated ones do not). */
  get kicks(): number {
    return this.#get(C_DOORBELL);
  }

  /** The vCPU thread's OS thread id (`thread_id`), 0 before it started. */
  get threadId(): number {
    return this.#get(C_THREAD_ID);
  }

  /** What the vCPU thread is doing. */
  get threadState(): CpuThreadState {
    return STATES[this.#get(C_THREAD_STATE)] ?? "none";
  }

  /**
   * Guest-visible shared words (8 Int32s); the `loop` accelerator counts
   * its steps in word 0.
   */
  get guest(): Int32Array {
    return this.#guest;
  }

  /**
   * The `data` given to `qemuInitVcpu`, in the vCPU thread (undefined in
   * other threads).
   */
  get data(): unknown {
    return cpuData.has(this.#index) ? cpuData.get(this.#index) : cpuData.get(-1);
  }
}

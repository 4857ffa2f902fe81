// One io_uring instance with its rings mapped into this isolate: the part of
// liburing that fdmon-io_uring needs (queue init/exit, get_sqe, submit,
// peek/advance CQEs), written over raw syscalls and typed-array views.
//
// Every index into the kernel-shared words goes through Atomics: the views
// are non-shared ArrayBuffers over mmap'd memory, where Atomics.load/store
// still compile to the ordered accesses the ring protocol needs (the kernel
// side uses smp_load_acquire / smp_store_release).
//
// Layout note: user_data, addr and off are u64 fields written as two u32
// words, low word first; the package targets little-endian Linux only.
import {
  IO_URING_CQE_SIZE,
  IO_URING_GETEVENTS_ARG_SIZE,
  IO_URING_PARAMS_SIZE,
  IO_URING_SQE_SIZE,
  IORING_ENTER_GETEVENTS,
  IORING_FEAT_SINGLE_MMAP,
  IORING_OFF_CQ_RING,
  IORING_OFF_SQ_RING,
  IORING_OFF_SQES,
  IORING_OP_NOP,
  IORING_OP_POLL_ADD,
  IORING_OP_POLL_REMOVE,
  IORING_OP_TIMEOUT,
  IORING_SQ_CQ_OVERFLOW,
  ioUringEnter,
  ioUringEnterArg,
  ioUringMmap,
  ioUringMunmap,
  ioUringSetup,
} from "../sys/io_uring.ts";
import { close } from "../sys/fd.ts";
import { SysError } from "../sys/errno.ts";
import { timespecNsec, timespecSec } from "../sys/_timespec.ts";
import { ioUringHooks } from "./_io_uring_hooks.ts";
import { IORING_OP_ASYNC_CANCEL } from "./io_uring_sqe.ts";

const SQE_WORDS = IO_URING_SQE_SIZE / 4;
const CQE_WORDS = IO_URING_CQE_SIZE / 4;
const EMPTY = new Uint32Array(0);

interface Mapping {
  ptr: Deno.PointerObject;
  length: number;
}

/** An io_uring with mapped SQ/CQ rings; home thread only. */
export class IoUringRing {
  /** The ring fd (close-on-exec). */
  readonly fd: number;
  /** IORING_FEAT_* bits the kernel reported. */
  readonly features: number;
  /** SQ ring size. */
  readonly sqEntries: number;
  /** CQ ring size. */
  readonly cqEntries: number;

  #maps: Mapping[];
  // Word views of the SQ ring, CQ ring and SQE array (the two rings may
  // share one mapping).
  #sq: Uint32Array;
  #cq: Uint32Array;
  #cqI32: Int32Array;
  #sqes: Uint32Array;
  // Word indices of the ring fields.
  #sqHeadW: number;
  #sqTailW: number;
  #sqFlagsW: number;
  #sqMask: number;
  #cqHeadW: number;
  #cqTailW: number;
  #cqMask: number;
  #cqesW: number;
  // Where the next SQE goes (liburing's sqe_tail); published to the
  // kernel's tail at submit.
  #sqeTail = 0;
  // Our copy of the CQ head: only we move it.
  #cqHead = 0;
  #closed = false;
  // struct io_uring_getevents_arg (words 0..5) followed by the
  // __kernel_timespec its ts field points to (words 6..9), off-heap so the
  // addresses hold; made on first use of submitTimed().
  #extArg: Uint32Array | null = null;
  #extArgPtr: Deno.PointerObject | null = null;

  private constructor(fd: number, params: DataView, maps: Mapping[], views: Uint32Array[]) {
    this.fd = fd;
    this.sqEntries = params.getUint32(0, true);
    this.cqEntries = params.getUint32(4, true);
    this.features = params.getUint32(20, true);
    this.#maps = maps;
    [this.#sq, this.#cq, this.#sqes] = views;
    this.#cqI32 = new Int32Array(this.#cq.buffer);
    // struct io_sqring_offsets at byte 40, struct io_cqring_offsets at 80.
    const sq = (i: number): number => params.getUint32(40 + 4 * i, true) / 4;
    const cq = (i: number): number => params.getUint32(80 + 4 * i, true) / 4;
    this.#sqHeadW = sq(0);
    this.#sqTailW = sq(1);
    this.#sqMask = this.#sq[sq(2)];
    this.#sqFlagsW = sq(4);
    this.#cqHeadW = cq(0);
    this.#cqTailW = cq(1);
    this.#cqMask = this.#cq[cq(2)];
    this.#cqesW = cq(5);
    // The SQ index array maps ring slots to SQEs: make it the identity once,
    // so SQE i is always ring slot i (liburing does the same).
    const array = sq(6);
    for (let i = 0; i < this.sqEntries; i++) this.#sq[array + i] = i;
    this.#sqeTail = Atomics.load(this.#sq, this.#sqTailW);
    this.#cqHead = Atomics.load(this.#cq, this.#cqHeadW);
  }

  /**
   * Sets up a ring of `entries` and maps it; nothing stays open on failure.
   * Throws SysError.
   */
  static create(entries: number): IoUringRing {
    if (ioUringHooks.setupErrno !== null) {
      throw new SysError(ioUringHooks.setupErrno, "io_uring_setup");
    }
    const paramsBuf = new Uint8Array(IO_URING_PARAMS_SIZE);
    const fd = ioUringSetup(entries, paramsBuf);
    const maps: Mapping[] = [];
    try {
      const p = new DataView(paramsBuf.buffer);
      const sqEntries = p.getUint32(0, true);
      const cqEntries = p.getUint32(4, true);
      const features = p.getUint32(20, true);
      const sqLen = p.getUint32(40 + 4 * 6, true) + sqEntries * 4; // sq_off.array
      const cqLen = p.getUint32(80 + 4 * 5, true) + cqEntries * IO_URING_CQE_SIZE; // cq_off.cqes
      const map = (offset: number, length: number): Uint32Array => {
        const ptr = ioUringMmap(fd, offset, length);
        maps.push({ ptr, length });
        return new Uint32Array(Deno.UnsafePointerView.getArrayBuffer(ptr, length));
      };
      let sq: Uint32Array;
      let cq: Uint32Array;
      if ((features & IORING_FEAT_SINGLE_MMAP) !== 0) {
        sq = cq = map(IORING_OFF_SQ_RING, Math.max(sqLen, cqLen));
      } else {
        sq = map(IORING_OFF_SQ_RING, sqLen);
        cq = map(IORING_OFF_CQ_RING, cqLen);
      }
      const sqes = map(IORING_OFF_SQES, sqEntries * IO_URING_SQE_SIZE);
      return new IoUringRing(fd, p, maps, [sq, cq, sqes]);
    } catch (e) {
      for (const m of maps) ioUringMunmap(m.ptr, m.length);
      close(fd);
      throw e;
    }
  }

  /** Whether {@linkcode close} ran. */
  get closed(): boolean {
    return this.#closed;
  }

  /** SQEs filled but not yet consumed by the kernel (io_uring_sq_ready). */
  sqReady(): number {
    return (this.#sqeTail - Atomics.load(this.#sq, this.#sqHeadW)) >>> 0;
  }

  /** CQEs waiting in the CQ ring (io_uring_cq_ready). */
  cqReady(): number {
    return (Atomics.load(this.#cq, this.#cqTailW) - this.#cqHead) >>> 0;
  }

  /** Whether completions wait in the kernel's overflow list. */
  cqOverflowed(): boolean {
    return (Atomics.load(this.#sq, this.#sqFlagsW) & IORING_SQ_CQ_OVERFLOW) !== 0;
  }

  /**
   * Word index of a zeroed free SQE, submitting what is queued first when
   * the ring is full (fdmon-io_uring's get_sqe()).
   */
  #getSqe(zero = true): number {
    if (this.sqReady() >= this.sqEntries) {
      let r: number;
      do r = this.submit(0); while (r === -1);
      if (this.sqReady() >= this.sqEntries) {
        throw new Error(`io_uring consumed ${r} of ${this.sqEntries} queued SQEs`);
      }
    }
    const base = (this.#sqeTail & this.#sqMask) * SQE_WORDS;
    if (zero) this.#sqes.fill(0, base, base + SQE_WORDS);
    this.#sqeTail = (this.#sqeTail + 1) >>> 0;
    return base;
  }

  #prep(op: number, fd: number, udLo: number, udHi: number): number {
    const w = this.#getSqe();
    const s = this.#sqes;
    s[w] = op; // opcode; flags and ioprio 0
    s[w + 1] = fd >>> 0;
    s[w + 8] = udLo >>> 0;
    s[w + 9] = udHi >>> 0;
    return w;
  }

  /** Queues a one-shot IORING_OP_POLL_ADD (io_uring_prep_poll_add). */
  prepPollAdd(fd: number, events: number, udLo: number, udHi: number): void {
    const w = this.#prep(IORING_OP_POLL_ADD, fd, udLo, udHi);
    this.#sqes[w + 7] = events >>> 0; // poll32_events
  }

  /** Queues an IORING_OP_POLL_REMOVE of the POLL_ADD tagged (targetLo, targetHi). */
  prepPollRemove(targetLo: number, targetHi: number, udLo: number, udHi: number): void {
    const w = this.#prep(IORING_OP_POLL_REMOVE, -1, udLo, udHi);
    this.#sqes[w + 4] = targetLo >>> 0; // addr
    this.#sqes[w + 5] = targetHi >>> 0;
  }

  /**
   * Queues an IORING_OP_TIMEOUT on the `__kernel_timespec` at (tsLo, tsHi)
   * that also completes after `count` other completions. The kernel reads
   * the timespec when the SQE is submitted.
   */
  prepTimeout(tsLo: number, tsHi: number, count: number, udLo: number, udHi: number): void {
    const w = this.#prep(IORING_OP_TIMEOUT, -1, udLo, udHi);
    this.#sqes[w + 2] = count >>> 0; // off
    this.#sqes[w + 4] = tsLo >>> 0; // addr
    this.#sqes[w + 5] = tsHi >>> 0;
    this.#sqes[w + 6] = 1; // len: one timespec
  }

  /**
   * Queues an SQE filled by the caller (16 words) under the given
   * user_data, which overrides words 8 and 9.
   */
  prepWords(words: Uint32Array, udLo: number, udHi: number): void {
    // Every word is overwritten: no zeroing first.
    const w = this.#getSqe(false);
    const s = this.#sqes;
    for (let i = 0; i < SQE_WORDS; i++) s[w + i] = words[i];
    s[w + 8] = udLo >>> 0;
    s[w + 9] = udHi >>> 0;
  }

  /** Queues an IORING_OP_ASYNC_CANCEL of the request tagged (targetLo, targetHi). */
  prepAsyncCancel(targetLo: number, targetHi: number, udLo: number, udHi: number): void {
    const w = this.#prep(IORING_OP_ASYNC_CANCEL, -1, udLo, udHi);
    this.#sqes[w + 4] = targetLo >>> 0; // addr
    this.#sqes[w + 5] = targetHi >>> 0;
  }

  /** Queues an IORING_OP_NOP. */
  prepNop(udLo: number, udHi: number): void {
    this.#prep(IORING_OP_NOP, -1, udLo, udHi);
  }

  /**
   * Publishes the queued SQEs and enters the kernel to consume them and, if
   * waitNr > 0, wait for that many CQEs; no syscall when there is nothing to
   * submit, nothing to wait for and no overflow to flush. Returns the SQEs
   * consumed, or -1 on EINTR (io_uring_submit_and_wait).
   */
  submit(waitNr: number): number {
    const toSubmit = this.sqReady();
    Atomics.store(this.#sq, this.#sqTailW, this.#sqeTail);
    let flags = 0;
    if (waitNr > 0 || this.cqOverflowed()) flags |= IORING_ENTER_GETEVENTS;
    if (toSubmit === 0 && flags === 0) return 0;
    return ioUringEnter(this.fd, toSubmit, waitNr, flags);
  }

  /**
   * As {@linkcode submit}, waiting at most `ns` nanoseconds (> 0) for
   * `waitNr` CQEs, with the timeout passed to io_uring_enter itself
   * (IORING_ENTER_EXT_ARG: no TIMEOUT SQE, no CQE of its own). Only where
   * the kernel has IORING_FEAT_EXT_ARG. Returns the SQEs consumed, -1 on
   * EINTR, or IO_URING_ENTER_TIMED_OUT when the time ran out with nothing
   * submitted (with SQEs consumed the count comes back either way).
   */
  submitTimed(waitNr: number, ns: number): number {
    let a = this.#extArg;
    if (a === null) {
      const buf = new ArrayBuffer(IO_URING_GETEVENTS_ARG_SIZE + 16);
      a = this.#extArg = new Uint32Array(buf);
      this.#extArgPtr = Deno.UnsafePointer.of(buf)!;
      const addr = BigInt(Deno.UnsafePointer.value(this.#extArgPtr)) +
        BigInt(IO_URING_GETEVENTS_ARG_SIZE);
      a[4] = Number(BigInt.asUintN(32, addr)); // ts, low word
      a[5] = Number(addr >> 32n);
    }
    // A 64-bit tv_sec: no cap needed below the int64 ns range of timers.
    const sec = timespecSec(ns, Number.MAX_SAFE_INTEGER);
    a[6] = sec % 0x1_0000_0000;
    a[7] = Math.floor(sec / 0x1_0000_0000);
    a[8] = timespecNsec(ns);
    a[9] = 0;
    const toSubmit = this.sqReady();
    Atomics.store(this.#sq, this.#sqTailW, this.#sqeTail);
    return ioUringEnterArg(this.fd, toSubmit, waitNr, IORING_ENTER_GETEVENTS, this.#extArgPtr!);
  }

  /** Moves overflowed completions into the CQ ring, if any wait in the kernel. */
  flushOverflow(): void {
    if (this.cqOverflowed()) ioUringEnter(this.fd, 0, 0, IORING_ENTER_GETEVENTS);
  }

  /** Word index of the CQE at the head (call only when cqReady() > 0). */
  #headCqe(): number {
    return this.#cqesW + (this.#cqHead & this.#cqMask) * CQE_WORDS;
  }

  /** Low word of the head CQE's user_data. */
  cqeUdLo(): number {
    return this.#cq[this.#headCqe()];
  }

  /** High word of the head CQE's user_data. */
  cqeUdHi(): number {
    return this.#cq[this.#headCqe() + 1];
  }

  /** The head CQE's flags (IORING_CQE_F_*). */
  cqeFlags(): number {
    return this.#cq[this.#headCqe() + 3];
  }

  /** The head CQE's res (negative: -errno). */
  cqeRes(): number {
    return this.#cqI32[this.#headCqe() + 2];
  }

  /** Hands the head CQE back to the kernel (io_uring_cqe_seen). */
  cqAdvance(): void {
    this.#cqHead = (this.#cqHead + 1) >>> 0;
    Atomics.store(this.#cq, this.#cqHeadW, this.#cqHead);
  }

  /**
   * Unmaps the rings and closes the fd; queued SQEs are dropped unsubmitted
   * and the kernel cancels what is in flight (io_uring_queue_exit).
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // Drop the views before the memory goes away.
    this.#sq = this.#cq = this.#sqes = EMPTY;
    this.#cqI32 = new Int32Array(0);
    for (const m of this.#maps) ioUringMunmap(m.ptr, m.length);
    this.#maps.length = 0;
    close(this.fd);
  }
}

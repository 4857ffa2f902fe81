/**
 * Submission queue entries for user io_uring requests: the {@linkcode Sqe}
 * view a prep function fills, the prep helpers for common operations, and
 * the {@linkcode CqeHandler} that receives the completion. The requests go
 * through a context's ring with `aioAddSqe()` (`@aioloop/aioloop`).
 *
 * Layout and constants are Linux's UAPI (`struct io_uring_sqe`,
 * `<linux/io_uring.h>`), little-endian.
 *
 * Counterpart: liburing's `io_uring_prep_*()` helpers and QEMU's
 * `CqeHandler` (`include/qemu/aio.h`).
 *
 * @module
 */

export { IORING_OP_NOP } from "../sys/io_uring.ts";
import { IORING_OP_NOP } from "../sys/io_uring.ts";

/** `IORING_OP_FSYNC`: fsync(2) (fdatasync(2) with `IORING_FSYNC_DATASYNC`). */
export const IORING_OP_FSYNC = 3;
/** `IORING_OP_ASYNC_CANCEL`: cancels the request whose user_data is in `addr`. */
export const IORING_OP_ASYNC_CANCEL = 14;
/** `IORING_OP_READ`: pread(2) into one buffer (Linux 5.6+). */
export const IORING_OP_READ = 22;
/** `IORING_OP_WRITE`: pwrite(2) from one buffer (Linux 5.6+). */
export const IORING_OP_WRITE = 23;
/** `IORING_FSYNC_DATASYNC`: the fsync flag for fdatasync semantics. */
export const IORING_FSYNC_DATASYNC = 1;
/** `IOSQE_IO_LINK`: the next SQE starts only after this one succeeds. */
export const IOSQE_IO_LINK = 1 << 2;
/** `IOSQE_ASYNC`: always punt the request to the kernel's worker threads. */
export const IOSQE_ASYNC = 1 << 4;

/**
 * Receives the completion of one user request, in the context's thread,
 * while the context dispatches (inside a `deferCallBegin()` section):
 * `res` is the operation's result, a negative errno on failure (`-9` for
 * EBADF, `-125` for ECANCELED when the context was destroyed first);
 * `flags` are the CQE's `IORING_CQE_F_*` bits. Called exactly once per
 * request.
 *
 * Counterpart: `CqeHandler` and its `cb` (`include/qemu/aio.h`); the CQE
 * QEMU copies into the handler comes here as the two arguments.
 */
export type CqeHandler = (res: number, flags: number) => void;

/**
 * Fills in the SQE of one request. It must not throw for a request it
 * wants queued: an exception cancels the request (nothing is submitted and
 * the handler is never called).
 *
 * Counterpart: the `prep_sqe(sqe, opaque)` argument of `aio_add_sqe()`.
 */
export type SqePrep = (sqe: Sqe) => void;

const TWO32 = 0x1_0000_0000;

// Start address of each ArrayBuffer seen, as a number (user addresses fit
// in 53 bits on x86-64 and aarch64). Taking a pointer through FFI costs
// microseconds and allocates a BigInt; a backing store never moves once
// it exists (reading `.buffer` moves a small on-heap array's bytes
// off-heap for good, and a resizable buffer grows in place), so the
// address is looked up once per buffer.
const addresses = new WeakMap<ArrayBufferLike, number>();

function bufferAddress(ab: ArrayBufferLike): number {
  let a = addresses.get(ab);
  if (a === undefined) {
    a = Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(ab as ArrayBuffer)));
    addresses.set(ab, a);
  }
  return a;
}

/**
 * The `struct io_uring_sqe` being prepared, zeroed before each prep. Every
 * field but `user_data` is the prep function's to set; `user_data` belongs
 * to the context, which routes the CQE to the request's handler with it.
 * The view is reused from one request to the next: do not keep it.
 *
 * Memory the kernel reads or writes for the request (buffers, iovecs,
 * timespecs) must stay where it is until the handler runs: hand it to
 * {@linkcode Sqe.prototype.keep} (the buffer helpers do) so that it stays
 * referenced, and do not transfer or resize its ArrayBuffer meanwhile.
 *
 * Counterpart: `struct io_uring_sqe`.
 *
 * Thread: the context's home thread, inside a prep function only.
 *
 * @example Filling a NOP by hand
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { IORING_OP_NOP, Sqe } from "@aioloop/aioloop/fdmon";
 * const sqe = new Sqe();
 * sqe.opcode = IORING_OP_NOP;
 * sqe.fd = -1;
 * assertEquals(sqe.words[0], IORING_OP_NOP);
 * assertEquals(sqe.fd, -1);
 * ```
 */
export class Sqe {
  /** The 16 little-endian words of the SQE (words 8 and 9 are user_data). */
  readonly words: Uint32Array = new Uint32Array(16);
  #i32: Int32Array = new Int32Array(this.words.buffer);
  #pins: unknown[] = [];

  /** The IORING_OP_* code (byte 0). */
  get opcode(): number {
    return this.words[0] & 0xff;
  }
  set opcode(v: number) {
    this.words[0] = (this.words[0] & ~0xff) | (v & 0xff);
  }

  /** IOSQE_* flags (byte 1). */
  get flags(): number {
    return (this.words[0] >>> 8) & 0xff;
  }
  set flags(v: number) {
    this.words[0] = (this.words[0] & ~0xff00) | ((v & 0xff) << 8);
  }

  /** I/O priority (bytes 2-3). */
  get ioprio(): number {
    return this.words[0] >>> 16;
  }
  set ioprio(v: number) {
    this.words[0] = (this.words[0] & 0xffff) | ((v & 0xffff) << 16);
  }

  /** The file descriptor. */
  get fd(): number {
    return this.#i32[1];
  }
  set fd(v: number) {
    this.#i32[1] = v;
  }

  /** The 32-bit `len` field (byte count, iovec count ...). */
  get len(): number {
    return this.words[6];
  }
  set len(v: number) {
    this.words[6] = v;
  }

  /** The op-specific flags word (`rw_flags`, `fsync_flags`, `cancel_flags` ...). */
  get opFlags(): number {
    return this.words[7];
  }
  set opFlags(v: number) {
    this.words[7] = v;
  }

  /**
   * Sets the 64-bit `off` field: a file offset, or -1 for "the file
   * position" where the operation supports it.
   *
   * @param v A safe integer from -1 up, or a bigint.
   * @throws {RangeError} For fractions, values below -1 or unsafe integers.
   */
  setOff(v: number | bigint): void {
    this.#set64(2, v, "offset");
  }

  /**
   * Sets the 64-bit `addr` field to a raw address (prefer
   * {@linkcode Sqe.prototype.setBuffer}, which keeps the memory alive).
   *
   * @param v A pointer, its numeric value, or null for 0.
   */
  setAddr(v: Deno.PointerValue | number | bigint): void {
    if (v === null || typeof v === "object") {
      v = v === null ? 0 : Deno.UnsafePointer.value(v);
    }
    this.#set64(4, v, "address");
  }

  /**
   * Points `addr` and `len` at a buffer and keeps it referenced until the
   * request completes.
   *
   * @param buf The buffer (its ArrayBuffer must not be transferred or resized
   * while the request is in flight).
   */
  setBuffer(buf: Uint8Array): void {
    if (!(buf instanceof Uint8Array)) throw new TypeError("Expected a Uint8Array");
    if (buf.byteLength === 0) {
      this.setAddr(0);
    } else {
      const addr = bufferAddress(buf.buffer) + buf.byteOffset;
      this.words[4] = addr % TWO32;
      this.words[5] = Math.floor(addr / TWO32);
    }
    this.words[6] = buf.byteLength;
    this.keep(buf);
  }

  /**
   * Keeps `obj` referenced until the request's CQE has been seen (memory
   * the kernel reads or writes asynchronously).
   *
   * @param obj Anything.
   */
  keep(obj: unknown): void {
    this.#pins.push(obj);
  }

  #set64(word: number, v: number | bigint, what: string): void {
    if (typeof v === "bigint") {
      const u = BigInt.asUintN(64, v);
      this.words[word] = Number(u & 0xffff_ffffn);
      this.words[word + 1] = Number(u >> 32n);
      return;
    }
    if (!Number.isSafeInteger(v) || v < -1) {
      throw new RangeError(`Invalid ${what}: ${v} (a safe integer >= -1, or a bigint)`);
    }
    if (v === -1) {
      this.words[word] = this.words[word + 1] = 0xffff_ffff;
    } else {
      this.words[word] = v % TWO32;
      this.words[word + 1] = Math.floor(v / TWO32);
    }
  }

  /**
   * Zeroes the entry and forgets the kept objects (done by the context
   * before each prep).
   */
  reset(): void {
    // A plain loop: TypedArray.fill costs a runtime call on this hot path.
    const w = this.words;
    for (let i = 0; i < 16; i++) w[i] = 0;
    if (this.#pins.length !== 0) this.#pins.length = 0;
  }

  /**
   * Takes what {@linkcode Sqe.prototype.keep} collected: null, the one
   * object, or an array of them (used by the context).
   *
   * @returns The kept objects.
   */
  takePins(): unknown {
    const p = this.#pins;
    if (p.length === 0) return null;
    const r = p.length === 1 ? p[0] : p.slice();
    p.length = 0;
    return r;
  }
}

/**
 * Prepares an `IORING_OP_NOP` (completes with res 0).
 *
 * Counterpart: `io_uring_prep_nop()`.
 *
 * Thread: inside a prep function.
 *
 * @param sqe The entry.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { IORING_OP_NOP, prepNop, Sqe } from "@aioloop/aioloop/fdmon";
 * const sqe = new Sqe();
 * prepNop(sqe);
 * assertEquals(sqe.opcode, IORING_OP_NOP);
 * ```
 */
export function prepNop(sqe: Sqe): void {
  sqe.opcode = IORING_OP_NOP;
  sqe.fd = -1;
}

/**
 * Prepares an `IORING_OP_READ`: pread(2) of up to `buf.byteLength` bytes at
 * `offset` (-1: the file position). The CQE's res is the byte count (0 at
 * end of file, possibly short) or -errno. `buf` is kept alive until the
 * completion.
 *
 * Counterpart: `io_uring_prep_read()`.
 *
 * Thread: inside a prep function.
 *
 * @param sqe The entry.
 * @param fd The file descriptor.
 * @param buf Where the bytes go.
 * @param offset The file offset.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { IORING_OP_READ, prepRead, Sqe } from "@aioloop/aioloop/fdmon";
 * const sqe = new Sqe();
 * prepRead(sqe, 0, new Uint8Array(16), 4096);
 * assertEquals([sqe.opcode, sqe.fd, sqe.len, sqe.words[2]], [IORING_OP_READ, 0, 16, 4096]);
 * ```
 */
export function prepRead(sqe: Sqe, fd: number, buf: Uint8Array, offset: number | bigint): void {
  sqe.opcode = IORING_OP_READ;
  sqe.fd = fd;
  sqe.setBuffer(buf);
  sqe.setOff(offset);
}

/**
 * Prepares an `IORING_OP_WRITE`: pwrite(2) of `buf` at `offset` (-1: the
 * file position). The CQE's res is the byte count or -errno. `buf` is kept
 * alive until the completion.
 *
 * Counterpart: `io_uring_prep_write()`.
 *
 * Thread: inside a prep function.
 *
 * @param sqe The entry.
 * @param fd The file descriptor.
 * @param buf The bytes to write.
 * @param offset The file offset.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { IORING_OP_WRITE, prepWrite, Sqe } from "@aioloop/aioloop/fdmon";
 * const sqe = new Sqe();
 * prepWrite(sqe, 1, new Uint8Array(3), 0);
 * assertEquals([sqe.opcode, sqe.fd, sqe.len], [IORING_OP_WRITE, 1, 3]);
 * ```
 */
export function prepWrite(sqe: Sqe, fd: number, buf: Uint8Array, offset: number | bigint): void {
  sqe.opcode = IORING_OP_WRITE;
  sqe.fd = fd;
  sqe.setBuffer(buf);
  sqe.setOff(offset);
}

/**
 * Prepares an `IORING_OP_FSYNC`: fsync(2), or fdatasync(2) when
 * `datasync` is true. The CQE's res is 0 or -errno.
 *
 * Counterpart: `io_uring_prep_fsync()`.
 *
 * Thread: inside a prep function.
 *
 * @param sqe The entry.
 * @param fd The file descriptor.
 * @param datasync Whether only the data (and the metadata needed to read
 * it) must reach the disk.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { IORING_FSYNC_DATASYNC, IORING_OP_FSYNC, prepFsync, Sqe } from "@aioloop/aioloop/fdmon";
 * const sqe = new Sqe();
 * prepFsync(sqe, 5, true);
 * assertEquals([sqe.opcode, sqe.fd, sqe.opFlags], [IORING_OP_FSYNC, 5, IORING_FSYNC_DATASYNC]);
 * ```
 */
export function prepFsync(sqe: Sqe, fd: number, datasync = false): void {
  sqe.opcode = IORING_OP_FSYNC;
  sqe.fd = fd;
  sqe.opFlags = datasync ? IORING_FSYNC_DATASYNC : 0;
}

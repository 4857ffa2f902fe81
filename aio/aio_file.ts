/**
 * {@linkcode AioFile}: positional reads, writes and fsyncs of one file
 * through an io_uring context's ring, completing as a callback, in a
 * coroutine (`yield*`) or as a promise.
 *
 * @module
 */
import type { AioContext } from "./aio_context.ts";
import { aioAddSqe, aioHasIoUring, IoUringUnavailableError } from "./aio_sqe.ts";
import { Coroutine, type CoroutineFn, coroutineYield, inCoroutine } from "./coroutine.ts";
import { aioCoWake } from "./co_schedule.ts";
import { internals } from "./_internal.ts";
import { prepFsync, prepRead, prepWrite, type Sqe } from "../fdmon/io_uring_sqe.ts";
import { close } from "../sys/fd.ts";
import { O_CREAT, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, open } from "../sys/open.ts";
import { SysError } from "../sys/errno.ts";

/**
 * The completion of one {@linkcode AioFile} operation: the byte count (a
 * read returns 0 at end of file, and may return fewer bytes than asked),
 * 0 for fsync, or a negative errno (`-9` EBADF, `-21` EISDIR, `-125`
 * ECANCELED when the context was destroyed first).
 */
export type AioFileCallback = (res: number) => void;

/** How {@linkcode AioFile.open} opens the path. */
export interface AioFileOpenOptions {
  /** Open for reading (default true). */
  read?: boolean;
  /** Open for writing (default false). */
  write?: boolean;
  /** Create the file if missing (needs `write`). */
  create?: boolean;
  /** Truncate it to 0 bytes (needs `write`). */
  truncate?: boolean;
  /** Permission bits of a created file (default 0o644). */
  mode?: number;
}

/** What {@linkcode AioFile.fromFd} is told about the fd. */
export interface AioFileFromFdOptions {
  /** Whether {@linkcode AioFile.prototype.close} closes the fd (default false). */
  owned?: boolean;
}

const OP_READ = 0;
const OP_WRITE = 1;
const OP_FSYNC = 2;
const OP_FDATASYNC = 3;
const OP_NAMES = ["read", "write", "fsync", "fdatasync"];

/**
 * One file whose I/O goes through a context's io_uring: `read(buf,
 * offset)`, `write(buf, offset)` (pread/pwrite semantics: no file position,
 * no retry of short transfers) and `fsync()`, each in three styles:
 *
 * - callback: `read(buf, offset, (res) => ...)`, called once with the byte
 *   count or a negative errno, in the context's thread while it polls;
 * - coroutine: `yield* file.coRead(buf, offset)` inside a {@linkcode Coroutine},
 *   which yields until the completion wakes it (`aio_co_wake`); errors are
 *   thrown as {@linkcode SysError};
 * - promise: `await file.readAsync(buf, offset)`, rejected with a
 *   {@linkcode SysError}. The promise settles during a poll of the context;
 *   its callbacks run when the isolate's loop turns (drive the context with
 *   non-blocking polls between awaits, or from the main loop).
 *
 * The buffer of an operation stays referenced until it completes; do not
 * transfer or resize its ArrayBuffer meanwhile. Destroying the context
 * completes the operations in flight with ECANCELED.
 *
 * Counterpart: what QEMU's `block/file-posix.c` does over `aio_add_sqe()`
 * (`luring_co_submit()`), for one fd.
 *
 * Thread: the context's home thread.
 *
 * @example Write, then read back, with callbacks
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext, AioFile } from "@aioloop/aioloop";
 * import { fdmonIoUring } from "@aioloop/aioloop/fdmon";
 * if (fdmonIoUring.supported()) {
 *   using ctx = AioContext.create({ fdmon: "io_uring" });
 *   const path = Deno.makeTempFileSync();
 *   using file = AioFile.open(ctx, path, { write: true });
 *   let wrote = -1;
 *   file.write(new TextEncoder().encode("abcdef"), 0, (res) => {
 *     wrote = res;
 *   });
 *   while (wrote < 0) ctx.poll(true);
 *   const buf = new Uint8Array(3);
 *   let read = -1;
 *   file.read(buf, 2, (res) => {
 *     read = res;
 *   });
 *   while (read < 0) ctx.poll(true);
 *   assertEquals([wrote, read, new TextDecoder().decode(buf)], [6, 3, "cde"]);
 *   Deno.removeSync(path);
 * }
 * ```
 */
export class AioFile {
  /** The context whose ring carries the I/O. */
  readonly ctx: AioContext;
  #fd: number;
  #owned: boolean;
  #closed = false;
  #inFlight = 0;
  // The arguments of the request being prepared: #prep runs synchronously
  // inside aioAddSqe, so one bound function serves every request.
  #op = 0;
  #buf: Uint8Array | null = null;
  #off = 0;
  #prep = (sqe: Sqe): void => {
    const op = this.#op;
    if (op === OP_READ) prepRead(sqe, this.#fd, this.#buf!, this.#off);
    else if (op === OP_WRITE) prepWrite(sqe, this.#fd, this.#buf!, this.#off);
    else prepFsync(sqe, this.#fd, op === OP_FDATASYNC);
  };

  private constructor(ctx: AioContext, fd: number, owned: boolean) {
    this.ctx = ctx;
    this.#fd = fd;
    this.#owned = owned;
  }

  /**
   * Opens `path` (close-on-exec) for I/O through `ctx`.
   *
   * Counterpart: `raw_open()`'s open plus `aio_setup_linux_io_uring()`.
   *
   * @param ctx An io_uring context.
   * @param path The file.
   * @param options Access mode, creation, truncation.
   * @returns The file; {@linkcode AioFile.prototype.close} closes the fd.
   * @throws {IoUringUnavailableError} If `ctx` has no io_uring fd monitor.
   * @throws {SysError} If open(2) fails (ENOENT, EACCES ...).
   *
   * @example Opening a missing file
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext, AioFile, SysError } from "@aioloop/aioloop";
   * import { fdmonIoUring } from "@aioloop/aioloop/fdmon";
   * if (fdmonIoUring.supported()) {
   *   using ctx = AioContext.create({ fdmon: "io_uring" });
   *   let code = "";
   *   try {
   *     AioFile.open(ctx, "/nonexistent/file");
   *   } catch (e) {
   *     code = (e as SysError).code;
   *   }
   *   assertEquals(code, "ENOENT");
   * }
   * ```
   */
  static open(ctx: AioContext, path: string, options: AioFileOpenOptions = {}): AioFile {
    checkCtx(ctx);
    const r = options.read ?? true;
    const w = options.write ?? false;
    if (!r && !w) throw new TypeError("AioFile.open() needs read or write access");
    if ((options.create || options.truncate) && !w) {
      throw new TypeError("create and truncate need write access");
    }
    let flags = r && w ? O_RDWR : w ? O_WRONLY : O_RDONLY;
    if (options.create) flags |= O_CREAT;
    if (options.truncate) flags |= O_TRUNC;
    return new AioFile(ctx, open(path, flags, options.mode ?? 0o644), true);
  }

  /**
   * Wraps an open fd.
   *
   * Counterpart: none (QEMU's `BDRVRawState` holding an fd).
   *
   * @param ctx An io_uring context.
   * @param fd The file descriptor.
   * @param options Whether the file owns (closes) the fd.
   * @returns The file.
   * @throws {IoUringUnavailableError} If `ctx` has no io_uring fd monitor.
   * @throws {TypeError} If `fd` is not a non-negative integer.
   *
   * @example Borrowing an fd
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext, AioFile } from "@aioloop/aioloop";
   * import { fdmonIoUring } from "@aioloop/aioloop/fdmon";
   * if (fdmonIoUring.supported()) {
   *   using ctx = AioContext.create({ fdmon: "io_uring" });
   *   const file = AioFile.fromFd(ctx, 0);
   *   assertEquals(file.fd, 0);
   *   file.close(); // fd 0 stays open: not owned
   * }
   * ```
   */
  static fromFd(ctx: AioContext, fd: number, options: AioFileFromFdOptions = {}): AioFile {
    checkCtx(ctx);
    if (!Number.isInteger(fd) || fd < 0) throw new TypeError(`Invalid fd: ${fd}`);
    return new AioFile(ctx, fd, options.owned ?? false);
  }

  /** The file descriptor (-1 once closed). */
  get fd(): number {
    return this.#closed ? -1 : this.#fd;
  }

  /** Operations submitted and not yet completed. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Reads up to `buf.byteLength` bytes at `offset` into `buf`.
   *
   * Counterpart: `luring_co_submit(QEMU_AIO_READ)` (callback style).
   *
   * @param buf The destination.
   * @param offset The file offset (a non-negative safe integer).
   * @param done Called once with the byte count or -errno.
   * @throws {TypeError} For a bad buffer, offset or callback.
   * @throws {Deno.errors.BadResource} If the file is closed or the context destroyed.
   *
   * @example See {@linkcode AioFile}.
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext, AioFile } from "@aioloop/aioloop";
   * import { fdmonIoUring } from "@aioloop/aioloop/fdmon";
   * if (fdmonIoUring.supported()) {
   *   using ctx = AioContext.create({ fdmon: "io_uring" });
   *   using file = AioFile.open(ctx, "/dev/zero");
   *   let res = -1;
   *   file.read(new Uint8Array(8), 0, (r) => {
   *     res = r;
   *   });
   *   while (res < 0) ctx.poll(true);
   *   assertEquals(res, 8);
   * }
   * ```
   */
  read(buf: Uint8Array, offset: number, done: AioFileCallback): void {
    this.#submit(OP_READ, buf, offset, done);
  }

  /**
   * Writes `buf` at `offset`.
   *
   * Counterpart: `luring_co_submit(QEMU_AIO_WRITE)` (callback style).
   *
   * @param buf The bytes.
   * @param offset The file offset (a non-negative safe integer).
   * @param done Called once with the byte count or -errno.
   * @throws {TypeError} For a bad buffer, offset or callback.
   * @throws {Deno.errors.BadResource} If the file is closed or the context destroyed.
   *
   * @example Writing to /dev/null
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext, AioFile } from "@aioloop/aioloop";
   * import { fdmonIoUring } from "@aioloop/aioloop/fdmon";
   * if (fdmonIoUring.supported()) {
   *   using ctx = AioContext.create({ fdmon: "io_uring" });
   *   using file = AioFile.open(ctx, "/dev/null", { read: false, write: true });
   *   let res = -1;
   *   file.write(new Uint8Array(5), 0, (r) => {
   *     res = r;
   *   });
   *   while (res < 0) ctx.poll(true);
   *   assertEquals(res, 5);
   * }
   * ```
   */
  write(buf: Uint8Array, offset: number, done: AioFileCallback): void {
    this.#submit(OP_WRITE, buf, offset, done);
  }

  /**
   * Flushes the file to stable storage: fsync(2), or fdatasync(2) with
   * `datasync`.
   *
   * Counterpart: `luring_co_submit(QEMU_AIO_FLUSH)` (callback style).
   *
   * @param done Called once with 0 or -errno.
   * @param datasync Whether fdatasync semantics suffice.
   * @throws {TypeError} For a bad callback.
   * @throws {Deno.errors.BadResource} If the file is closed or the context destroyed.
   *
   * @example Syncing a temp file
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext, AioFile } from "@aioloop/aioloop";
   * import { fdmonIoUring } from "@aioloop/aioloop/fdmon";
   * if (fdmonIoUring.supported()) {
   *   using ctx = AioContext.create({ fdmon: "io_uring" });
   *   const path = Deno.makeTempFileSync();
   *   using file = AioFile.open(ctx, path, { write: true });
   *   let res = -1;
   *   file.fsync((r) => {
   *     res = r;
   *   });
   *   while (res < 0) ctx.poll(true);
   *   assertEquals(res, 0);
   *   Deno.removeSync(path);
   * }
   * ```
   */
  fsync(done: AioFileCallback, datasync = false): void {
    this.#submit(datasync ? OP_FDATASYNC : OP_FSYNC, null, 0, done);
  }

  /**
   * Coroutine form of {@linkcode AioFile.prototype.read}.
   *
   * Counterpart: `luring_co_submit()` / `raw_co_preadv()`.
   *
   * Thread: inside a coroutine of the context's thread.
   *
   * @param buf The destination.
   * @param offset The file offset.
   * @returns A coroutine function to run with `yield*`; its result is the
   * byte count.
   * @throws {SysError} If the read fails (ECANCELED if the context was
   * destroyed first).
   * @throws {Error} Outside a coroutine.
   *
   * @example Reading in a coroutine
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext, AioFile, Coroutine } from "@aioloop/aioloop";
   * import { fdmonIoUring } from "@aioloop/aioloop/fdmon";
   * if (fdmonIoUring.supported()) {
   *   using ctx = AioContext.create({ fdmon: "io_uring" });
   *   using file = AioFile.open(ctx, "/dev/zero");
   *   let n = 0;
   *   const co = Coroutine.create(function* () {
   *     n = yield* file.coRead(new Uint8Array(4), 0);
   *   });
   *   co.enter();
   *   while (!co.done) ctx.poll(true);
   *   assertEquals(n, 4);
   * }
   * ```
   */
  coRead(buf: Uint8Array, offset: number): CoroutineFn<number> {
    return this.#co(OP_READ, buf, offset);
  }

  /**
   * Coroutine form of {@linkcode AioFile.prototype.write}.
   *
   * Counterpart: `luring_co_submit()` / `raw_co_pwritev()`.
   *
   * Thread: inside a coroutine of the context's thread.
   *
   * @param buf The bytes.
   * @param offset The file offset.
   * @returns A coroutine function to run with `yield*`; its result is the
   * byte count.
   * @throws {SysError} If the write fails.
   * @throws {Error} Outside a coroutine.
   *
   * @example Writing in a coroutine
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext, AioFile, Coroutine } from "@aioloop/aioloop";
   * import { fdmonIoUring } from "@aioloop/aioloop/fdmon";
   * if (fdmonIoUring.supported()) {
   *   using ctx = AioContext.create({ fdmon: "io_uring" });
   *   using file = AioFile.open(ctx, "/dev/null", { read: false, write: true });
   *   let n = 0;
   *   const co = Coroutine.create(function* () {
   *     n = yield* file.coWrite(new Uint8Array(2), 0);
   *   });
   *   co.enter();
   *   while (!co.done) ctx.poll(true);
   *   assertEquals(n, 2);
   * }
   * ```
   */
  coWrite(buf: Uint8Array, offset: number): CoroutineFn<number> {
    return this.#co(OP_WRITE, buf, offset);
  }

  /**
   * Coroutine form of {@linkcode AioFile.prototype.fsync}.
   *
   * Counterpart: `raw_co_flush_to_disk()` over io_uring.
   *
   * Thread: inside a coroutine of the context's thread.
   *
   * @param datasync Whether fdatasync semantics suffice.
   * @returns A coroutine function to run with `yield*`.
   * @throws {SysError} If the sync fails.
   * @throws {Error} Outside a coroutine.
   *
   * @example Syncing in a coroutine
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext, AioFile, Coroutine } from "@aioloop/aioloop";
   * import { fdmonIoUring } from "@aioloop/aioloop/fdmon";
   * if (fdmonIoUring.supported()) {
   *   using ctx = AioContext.create({ fdmon: "io_uring" });
   *   const path = Deno.makeTempFileSync();
   *   using file = AioFile.open(ctx, path, { write: true });
   *   const co = Coroutine.create(function* () {
   *     yield* file.coFsync();
   *   });
   *   co.enter();
   *   while (!co.done) ctx.poll(true);
   *   assertEquals(co.done, true);
   *   Deno.removeSync(path);
   * }
   * ```
   */
  *coFsync(datasync = false): CoroutineFn<void> {
    yield* this.#co(datasync ? OP_FDATASYNC : OP_FSYNC, null, 0);
  }

  /**
   * Promise form of {@linkcode AioFile.prototype.read}.
   *
   * Counterpart: none (a promise adapter).
   *
   * Thread: the context's home thread; the context must be polled for the
   * promise to settle.
   *
   * @param buf The destination.
   * @param offset The file offset.
   * @returns The byte count; rejects with a {@linkcode SysError}, or a
   * TypeError / BadResource for bad arguments or a closed file.
   *
   * @example Awaiting a read
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext, AioFile } from "@aioloop/aioloop";
   * import { fdmonIoUring } from "@aioloop/aioloop/fdmon";
   * if (fdmonIoUring.supported()) {
   *   using ctx = AioContext.create({ fdmon: "io_uring" });
   *   using file = AioFile.open(ctx, "/dev/zero");
   *   const p = file.readAsync(new Uint8Array(4), 0);
   *   while (file.inFlight > 0) ctx.poll(true);
   *   assertEquals(await p, 4);
   * }
   * ```
   */
  readAsync(buf: Uint8Array, offset: number): Promise<number> {
    return this.#promise(OP_READ, buf, offset);
  }

  /**
   * Promise form of {@linkcode AioFile.prototype.write}.
   *
   * Counterpart: none (a promise adapter).
   *
   * Thread: the context's home thread; the context must be polled for the
   * promise to settle.
   *
   * @param buf The bytes.
   * @param offset The file offset.
   * @returns The byte count; rejects with a {@linkcode SysError}.
   *
   * @example Awaiting a write
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext, AioFile } from "@aioloop/aioloop";
   * import { fdmonIoUring } from "@aioloop/aioloop/fdmon";
   * if (fdmonIoUring.supported()) {
   *   using ctx = AioContext.create({ fdmon: "io_uring" });
   *   using file = AioFile.open(ctx, "/dev/null", { read: false, write: true });
   *   const p = file.writeAsync(new Uint8Array(3), 0);
   *   while (file.inFlight > 0) ctx.poll(true);
   *   assertEquals(await p, 3);
   * }
   * ```
   */
  writeAsync(buf: Uint8Array, offset: number): Promise<number> {
    return this.#promise(OP_WRITE, buf, offset);
  }

  /**
   * Promise form of {@linkcode AioFile.prototype.fsync}.
   *
   * Counterpart: none (a promise adapter).
   *
   * Thread: the context's home thread; the context must be polled for the
   * promise to settle.
   *
   * @param datasync Whether fdatasync semantics suffice.
   * @returns Resolves when synced; rejects with a {@linkcode SysError}.
   *
   * @example Awaiting a sync
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext, AioFile } from "@aioloop/aioloop";
   * import { fdmonIoUring } from "@aioloop/aioloop/fdmon";
   * if (fdmonIoUring.supported()) {
   *   using ctx = AioContext.create({ fdmon: "io_uring" });
   *   const path = Deno.makeTempFileSync();
   *   using file = AioFile.open(ctx, path, { write: true });
   *   const p = file.fsyncAsync();
   *   while (file.inFlight > 0) ctx.poll(true);
   *   assertEquals(await p, undefined);
   *   Deno.removeSync(path);
   * }
   * ```
   */
  async fsyncAsync(datasync = false): Promise<void> {
    await this.#promise(datasync ? OP_FDATASYNC : OP_FSYNC, null, 0);
  }

  /**
   * Closes the fd if the file owns it. Operations must have completed.
   *
   * Counterpart: `raw_close()`.
   *
   * @throws {Deno.errors.Busy} While operations are in flight.
   *
   * @example Closing twice is harmless
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { AioContext, AioFile } from "@aioloop/aioloop";
   * import { fdmonIoUring } from "@aioloop/aioloop/fdmon";
   * if (fdmonIoUring.supported()) {
   *   using ctx = AioContext.create({ fdmon: "io_uring" });
   *   const file = AioFile.open(ctx, "/dev/null");
   *   file.close();
   *   file.close();
   *   assertEquals(file.fd, -1);
   * }
   * ```
   */
  close(): void {
    if (this.#closed) return;
    if (this.#inFlight > 0) {
      throw new Deno.errors.Busy(`AioFile has ${this.#inFlight} operation(s) in flight`);
    }
    this.#closed = true;
    if (this.#owned) close(this.#fd);
  }

  /** Same as {@linkcode AioFile.prototype.close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  #submit(op: number, buf: Uint8Array | null, offset: number, done: AioFileCallback): void {
    if (typeof done !== "function") throw new TypeError("Expected a completion callback");
    this.#queue(op, buf, offset, (res: number): void => {
      this.#inFlight--;
      done(res);
    });
  }

  #queue(op: number, buf: Uint8Array | null, offset: number, handler: AioFileCallback): void {
    if (this.#closed) throw new Deno.errors.BadResource("AioFile is closed");
    if (op <= OP_WRITE) {
      if (!(buf instanceof Uint8Array)) throw new TypeError("Expected a Uint8Array");
      if (!Number.isSafeInteger(offset) || offset < 0) {
        throw new TypeError(`Invalid offset: ${offset}`);
      }
    }
    this.#op = op;
    this.#buf = buf;
    this.#off = offset;
    try {
      aioAddSqe(this.ctx, this.#prep, handler);
    } finally {
      this.#buf = null;
    }
    this.#inFlight++;
  }

  *#co(op: number, buf: Uint8Array | null, offset: number): CoroutineFn<number> {
    if (!inCoroutine()) throw new Error(`AioFile ${OP_NAMES[op]} must run in a coroutine`);
    const co = Coroutine.self();
    let res = 0;
    let done = false;
    this.#queue(op, buf, offset, (r: number): void => {
      this.#inFlight--;
      res = r;
      done = true;
      aioCoWake(co);
    });
    // Woken only by the handler; the loop guards against an early enter.
    while (!done) yield* coroutineYield();
    if (res < 0) throw new SysError(-res, OP_NAMES[op]);
    return res;
  }

  #promise(op: number, buf: Uint8Array | null, offset: number): Promise<number> {
    const { promise, resolve, reject } = Promise.withResolvers<number>();
    try {
      this.#queue(op, buf, offset, (r: number): void => {
        this.#inFlight--;
        if (r < 0) reject(new SysError(-r, OP_NAMES[op]));
        else resolve(r);
      });
    } catch (e) {
      reject(e);
    }
    return promise;
  }
}

function checkCtx(ctx: AioContext): void {
  internals(ctx); // a TypeError for anything but an AioContext
  if (ctx.destroyed) {
    throw new Deno.errors.BadResource(`AioContext '${ctx.name}' was destroyed`);
  }
  if (!aioHasIoUring(ctx)) throw new IoUringUnavailableError(ctx.name, ctx.fdmon);
}

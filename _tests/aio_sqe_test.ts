// User io_uring requests (aioAddSqe / CqeHandler) and AioFile on top:
// results against known file contents, errors as -errno, cancellation at
// context destroy, the three completion styles, many requests in flight,
// defer_call around the handlers, and the typed error of other monitors.
//
// Every context here asks for io_uring explicitly, whatever AIOLOOP_FDMON
// says. Where the kernel refuses io_uring (before 5.6 for READ/WRITE, the
// sysctl kernel.io_uring_disabled, a seccomp filter such as Docker's
// default one), the io_uring tests are ignored: there is no ring to test.
import { assert, assertEquals, assertInstanceOf, assertRejects, assertThrows } from "@std/assert";
import {
  aioAddSqe,
  AioContext,
  AioFile,
  aioHasIoUring,
  Coroutine,
  IoUringUnavailableError,
  prepFsync,
  prepNop,
  prepRead,
  prepWrite,
  SysError,
} from "../mod.ts";
import { fdmonEpoll, fdmonIoUring, fdmonPoll } from "../fdmon/mod.ts";
import { close, O_RDONLY, O_RDWR, open, pipe, write } from "../sys/mod.ts";
import { deferCall } from "../thread/defer_call.ts";
import { assertNoFdLeak } from "./_fd_leak.ts";
import { watchdog } from "./_harness.ts";
import { GMainContext } from "../glib/main_context.ts";
import { mainLoopQuit, mainLoopRun, qemuGetAioContext, qemuInitMainLoop } from "../main_loop.ts";

const HAVE_URING = fdmonIoUring.supported();
const ignore = !HAVE_URING; // no io_uring on this kernel: nothing to test

const EBADF = 9;
const EINVAL = 22;
const EISDIR = 21;
const ECANCELED = 125;

function uringTest(name: string, fn: () => void | Promise<void>): void {
  Deno.test({ name, ignore, fn: () => assertNoFdLeak(fn) });
}

/** A temp file holding `size` bytes of a known pattern (byte i = i*7+3 mod 256). */
function patternFile(size: number): { path: string; data: Uint8Array } {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (i * 7 + 3) & 0xff;
  const path = Deno.makeTempFileSync({ prefix: "aio_sqe_" });
  Deno.writeFileSync(path, data);
  return { path, data };
}

/** Polls (blocking) until `done()`; a watchdog timer turns a hang into a failure. */
function pollUntil(ctx: AioContext, done: () => boolean, ms = 10_000): void {
  const dog = watchdog(ctx, ms);
  try {
    while (!done()) {
      if (dog.fired) throw new Error("timed out waiting for completions");
      ctx.poll(true);
    }
  } finally {
    dog.timer.del();
  }
}

uringTest("aioAddSqe: writes at offsets, read back byte for byte", () => {
  const { path, data } = patternFile(64 * 1024);
  using ctx = AioContext.create({ fdmon: "io_uring" });
  assert(aioHasIoUring(ctx));
  const fd = open(path, O_RDWR);
  try {
    // Three writes at scattered offsets, in flight together.
    const patches: [number, Uint8Array][] = [
      [0, new Uint8Array([0xaa, 0xbb, 0xcc])],
      [4093, new Uint8Array(10).fill(0x5a)], // across a page boundary
      [65530, new Uint8Array([1, 2, 3, 4, 5, 6])], // up to the end
    ];
    const results: number[] = [];
    for (const [off, bytes] of patches) {
      aioAddSqe(ctx, (sqe) => prepWrite(sqe, fd, bytes, off), (res) => results.push(res));
    }
    pollUntil(ctx, () => results.length === 3);
    assertEquals(results, [3, 10, 6]);
    const expect = data.slice();
    for (const [off, bytes] of patches) expect.set(bytes, off);
    assertEquals(Deno.readFileSync(path), expect);

    // Read back through the ring, at odd offsets and sizes.
    const reads: [number, number][] = [[0, 5], [4090, 20], [65000, 536], [12345, 1]];
    const bufs = reads.map(([, n]) => new Uint8Array(n));
    const got: number[] = [];
    reads.forEach(([off], i) => {
      aioAddSqe(ctx, (sqe) => prepRead(sqe, fd, bufs[i], off), (res) => got[i] = res);
    });
    pollUntil(ctx, () => got.filter((x) => x !== undefined).length === reads.length);
    reads.forEach(([off, n], i) => {
      assertEquals(got[i], n);
      assertEquals(bufs[i], expect.subarray(off, off + n));
    });

    // A read past the end is short, then 0.
    const tail = new Uint8Array(100);
    let short = -1;
    let eof = -1;
    aioAddSqe(ctx, (sqe) => prepRead(sqe, fd, tail, 65536 - 10), (r) => short = r);
    aioAddSqe(ctx, (sqe) => prepRead(sqe, fd, tail.subarray(50), 65536), (r) => eof = r);
    pollUntil(ctx, () => short >= 0 && eof >= 0);
    assertEquals([short, eof], [10, 0]);
    assertEquals(tail.subarray(0, 10), expect.subarray(65526));

    // fsync and NOP complete with 0.
    const zero: number[] = [];
    aioAddSqe(ctx, (sqe) => prepFsync(sqe, fd), (r) => zero.push(r));
    aioAddSqe(ctx, (sqe) => prepFsync(sqe, fd, true), (r) => zero.push(r));
    aioAddSqe(ctx, prepNop, (r) => zero.push(r));
    pollUntil(ctx, () => zero.length === 3);
    assertEquals(zero, [0, 0, 0]);
  } finally {
    close(fd);
    Deno.removeSync(path);
  }
});

uringTest("aioAddSqe: failures come back as negative errno in the handler", () => {
  using ctx = AioContext.create({ fdmon: "io_uring" });
  const dir = Deno.makeTempDirSync();
  const dirFd = open(dir, O_RDONLY);
  const file = Deno.makeTempFileSync();
  const roFd = open(file, O_RDONLY);
  const [r, w] = pipe();
  try {
    const res = new Map<string, number>();
    const buf = new Uint8Array(16);
    const add = (name: string, prep: Parameters<typeof aioAddSqe>[1]): void =>
      aioAddSqe(ctx, prep, (x) => {
        assert(!res.has(name), `${name} completed twice`);
        res.set(name, x);
      });
    add("bad fd", (sqe) => prepRead(sqe, 1_000_000, buf, 0));
    add("directory", (sqe) => prepRead(sqe, dirFd, buf, 0));
    add("write to read-only", (sqe) => prepWrite(sqe, roFd, buf, 0));
    add("fsync of a pipe", (sqe) => prepFsync(sqe, w));
    pollUntil(ctx, () => res.size === 4);
    assertEquals(res.get("bad fd"), -EBADF);
    assertEquals(res.get("directory"), -EISDIR);
    assertEquals(res.get("write to read-only"), -EBADF);
    assertEquals(res.get("fsync of a pipe"), -EINVAL);
  } finally {
    close(dirFd);
    close(roFd);
    close(r);
    close(w);
    Deno.removeSync(dir);
    Deno.removeSync(file);
  }
});

uringTest("aioAddSqe: a prep that throws queues nothing; handlers that throw lose nothing", () => {
  using ctx = AioContext.create({ fdmon: "io_uring" });
  let called = 0;
  assertThrows(
    () =>
      aioAddSqe(ctx, () => {
        throw new RangeError("no");
      }, () => called++),
    RangeError,
  );
  // A bad field is caught by the view before anything is queued.
  assertThrows(
    () => aioAddSqe(ctx, (sqe) => prepRead(sqe, 0, new Uint8Array(1), -2), () => called++),
    RangeError,
  );
  assertThrows(() => aioAddSqe(ctx, prepNop, null as never), TypeError);
  // Nested aioAddSqe from a prep function is refused.
  assertThrows(
    () => aioAddSqe(ctx, () => aioAddSqe(ctx, prepNop, () => called++), () => called++),
    Error,
    "prep function",
  );
  ctx.poll(false);
  assertEquals(called, 0);

  // Three NOPs; the second handler throws. The error leaves poll(); the
  // third runs in the next poll; each exactly once.
  const log: number[] = [];
  for (let i = 0; i < 3; i++) {
    aioAddSqe(ctx, prepNop, () => {
      log.push(i);
      if (i === 1) throw new Error("handler 1");
    });
  }
  let thrown = 0;
  // Were the third handler not run promptly, only this timer would end the wait.
  const dog = watchdog(ctx, 10_000);
  while (log.length < 3 && !dog.fired) {
    try {
      ctx.poll(true);
    } catch (e) {
      assertEquals((e as Error).message, "handler 1");
      thrown++;
    }
  }
  assertEquals(log, [0, 1, 2]);
  assertEquals(thrown, 1);
  assertEquals(dog.fired, false);
  dog.timer.del();
  // Nothing is owed any more: a blocking poll with nothing to do returns.
  assertEquals(ctx.poll(false), false);
});

uringTest("aioAddSqe: handlers run inside a defer_call section", () => {
  using ctx = AioContext.create({ fdmon: "io_uring" });
  const log: string[] = [];
  const kick = (who: string): void => {
    log.push(`kick ${who}`);
  };
  const flush = (): void => {
    log.push("flush");
  };
  for (let i = 0; i < 4; i++) {
    aioAddSqe(ctx, prepNop, () => {
      log.push(`cqe ${i}`);
      deferCall(flush); // the same pair four times: runs once
      deferCall(kick, i % 2 ? "odd" : "even");
    });
  }
  // NOPs complete at submission: one poll reaps all four.
  pollUntil(ctx, () => log.includes("cqe 3"));
  assertEquals(log, ["cqe 0", "cqe 1", "cqe 2", "cqe 3", "flush", "kick even", "kick odd"]);
});

uringTest(
  "aioAddSqe: destroy cancels requests in flight, each handler once with -ECANCELED",
  () => {
    const ctx = AioContext.create({ fdmon: "io_uring" });
    const pipes: [number, number][] = [];
    const res: number[][] = [];
    try {
      // Reads of empty pipes never complete by themselves.
      for (let i = 0; i < 40; i++) {
        const p = pipe();
        pipes.push(p);
        const mine: number[] = [];
        res.push(mine);
        aioAddSqe(ctx, (sqe) => prepRead(sqe, p[0], new Uint8Array(64), -1), (r) => mine.push(r));
      }
      ctx.poll(false); // submitted: they are in the kernel now
      assertEquals(res.flat(), []);
      // One completed request whose handler has not run yet gets its result.
      let nop: number[] = [];
      aioAddSqe(ctx, prepNop, (r) => nop.push(r));
      ctx.destroy();
      assertEquals(res.map((r) => r), res.map(() => [-ECANCELED]));
      assertEquals(nop, [0]);
      ctx.destroy(); // a second destroy calls nothing again
      assertEquals(res.flat().length, 40);
      nop = [];
      assertThrows(() => aioAddSqe(ctx, prepNop, (r) => nop.push(r)), Deno.errors.BadResource);
      // The pipes are still there and empty: the reads took nothing.
      write(pipes[0][1], new Uint8Array([7]));
    } finally {
      if (!ctx.destroyed) ctx.destroy();
      for (const [r, w] of pipes) {
        close(r);
        close(w);
      }
    }
  },
);

uringTest("aioAddSqe: a destroy hook's own requests may not start once cancelling began", () => {
  const ctx = AioContext.create({ fdmon: "io_uring" });
  const [r, w] = pipe();
  const errors: unknown[] = [];
  try {
    aioAddSqe(ctx, (sqe) => prepRead(sqe, r, new Uint8Array(1), -1), (res) => {
      assertEquals(res, -ECANCELED);
      try {
        aioAddSqe(ctx, prepNop, () => {});
      } catch (e) {
        errors.push(e);
      }
    });
    ctx.poll(false);
    ctx.destroy();
    assertEquals(errors.length, 1);
    assertInstanceOf(errors[0], Deno.errors.BadResource);
  } finally {
    if (!ctx.destroyed) ctx.destroy();
    close(r);
    close(w);
  }
});

uringTest("aioAddSqe: 256 reads in flight at once", () => {
  const { path, data } = patternFile(256 * 4096);
  using ctx = AioContext.create({ fdmon: "io_uring" });
  const fd = open(path, O_RDONLY);
  try {
    const n = 256;
    const bufs = Array.from({ length: n }, () => new Uint8Array(4096));
    const res = new Array<number>(n).fill(NaN);
    // Reverse order and an odd shift, so no read lines up with its index.
    for (let i = 0; i < n; i++) {
      const off = (n - 1 - i) * 4096 - (i === n - 1 ? 0 : 100);
      aioAddSqe(ctx, (sqe) => prepRead(sqe, fd, bufs[i], off), (r) => {
        assert(Number.isNaN(res[i]), `read ${i} completed twice`);
        res[i] = r;
      });
    }
    pollUntil(ctx, () => res.every((r) => !Number.isNaN(r)));
    for (let i = 0; i < n; i++) {
      const off = (n - 1 - i) * 4096 - (i === n - 1 ? 0 : 100);
      assertEquals(res[i], 4096, `read ${i}`);
      assertEquals(bufs[i], data.subarray(off, off + 4096), `read ${i} bytes`);
    }
  } finally {
    close(fd);
    Deno.removeSync(path);
  }
});

uringTest("AioFile: callback, coroutine and promise styles agree", async () => {
  const { path, data } = patternFile(16 * 1024);
  using ctx = AioContext.create({ fdmon: "io_uring" });
  using file = AioFile.open(ctx, path, { write: true });

  // Callback.
  const a = new Uint8Array(100);
  let ra = -1;
  file.read(a, 1000, (r) => ra = r);
  assertEquals(file.inFlight, 1);
  pollUntil(ctx, () => ra >= 0);
  assertEquals([ra, file.inFlight], [100, 0]);
  assertEquals(a, data.subarray(1000, 1100));

  // Coroutine: write, fsync, read back, and an error thrown inside.
  const b = new Uint8Array(50);
  let err: unknown;
  const co = Coroutine.create(function* () {
    assertEquals(yield* file.coWrite(new Uint8Array(50).fill(9), 2000), 50);
    yield* file.coFsync();
    assertEquals(yield* file.coRead(b, 2000), 50);
    const dir = Deno.makeTempDirSync();
    const dfd = open(dir, O_RDONLY);
    try {
      yield* AioFile.fromFd(ctx, dfd).coRead(b, 0);
    } catch (e) {
      err = e;
    } finally {
      close(dfd);
      Deno.removeSync(dir);
    }
  });
  co.enter();
  pollUntil(ctx, () => co.done);
  assertEquals(b, new Uint8Array(50).fill(9));
  assertInstanceOf(err, SysError);
  assertEquals((err as SysError).code, "EISDIR");

  // Promise: settles during a poll; await between non-blocking polls.
  const c = new Uint8Array(8);
  const p = file.readAsync(c, 2000 - 4);
  const w = file.writeAsync(new Uint8Array([1, 2]), 16 * 1024); // extends the file
  const s = file.fsyncAsync(true);
  while (file.inFlight > 0) ctx.poll(true);
  assertEquals(await p, 8);
  assertEquals(c, new Uint8Array([...data.subarray(1996, 2000), 9, 9, 9, 9]));
  assertEquals(await w, 2);
  assertEquals(await s, undefined);
  assertEquals(Deno.statSync(path).size, 16 * 1024 + 2);

  // Coroutine outside a coroutine; closed file; busy close.
  assertThrows(() => file.coRead(c, 0).next(), Error, "coroutine");
  let last = -1;
  file.read(c, 0, (r) => last = r);
  assertThrows(() => file.close(), Deno.errors.Busy);
  pollUntil(ctx, () => last >= 0);
  file.close();
  assertEquals(file.fd, -1);
  assertThrows(() => file.read(c, 0, () => {}), Deno.errors.BadResource);
  await assertRejects(() => file.readAsync(c, 0), Deno.errors.BadResource);
  assertThrows(() => file.read(c, -1, () => {}), Deno.errors.BadResource);
  Deno.removeSync(path);
});

uringTest("AioFile: argument checks and error results", async () => {
  using ctx = AioContext.create({ fdmon: "io_uring" });
  const path = Deno.makeTempFileSync();
  using file = AioFile.open(ctx, path, { write: true });
  assertThrows(() => file.read(new Uint8Array(1), -1, () => {}), TypeError);
  assertThrows(() => file.read(new Uint8Array(1), 0.5, () => {}), TypeError);
  assertThrows(() => file.read([] as never, 0, () => {}), TypeError);
  assertThrows(() => file.read(new Uint8Array(1), 0, null as never), TypeError);
  assertEquals(file.inFlight, 0);
  assertThrows(() => AioFile.open(ctx, path, { read: false }), TypeError);
  assertThrows(() => AioFile.open(ctx, path, { create: true }), TypeError);
  assertThrows(() => AioFile.fromFd(ctx, -1), TypeError);
  const e = assertThrows(() => AioFile.open(ctx, path + ".missing"), SysError);
  assertEquals((e as SysError).code, "ENOENT");
  // A read-only file: writes fail with EBADF, in each style.
  using ro = AioFile.open(ctx, path);
  let cb = 0;
  ro.write(new Uint8Array(1), 0, (r) => cb = r);
  const p = ro.writeAsync(new Uint8Array(1), 0);
  pollUntil(ctx, () => ro.inFlight === 0);
  assertEquals(cb, -EBADF);
  const err = await assertRejects(() => p, SysError);
  assertEquals((err as SysError).code, "EBADF");
  Deno.removeSync(path);
});

uringTest("AioFile: destroy completes every style with ECANCELED", async () => {
  const ctx = AioContext.create({ fdmon: "io_uring" });
  const [r, w] = pipe();
  try {
    const file = AioFile.fromFd(ctx, r);
    const cb: number[] = [];
    // io_uring ignores the offset of a stream: a read that waits for data.
    file.read(new Uint8Array(4), 0, (x) => cb.push(x));
    const raw: number[] = [];
    aioAddSqe(ctx, (sqe) => prepRead(sqe, r, new Uint8Array(4), -1), (x) => raw.push(x));
    let coErr: unknown;
    const co = Coroutine.create(function* () {
      try {
        // A pipe read through the raw API, awaited by a coroutine.
        yield* waitRead(ctx, r);
      } catch (e) {
        coErr = e;
      }
    });
    co.enter();
    const pr = new Promise<number>((resolve) => {
      aioAddSqe(ctx, (sqe) => prepRead(sqe, r, new Uint8Array(4), -1), resolve);
    });
    ctx.poll(false);
    ctx.destroy();
    assertEquals(raw, [-ECANCELED]);
    assertEquals(cb, [-ECANCELED]);
    assertEquals(file.inFlight, 0);
    assert(co.done, "the coroutine was resumed by the cancellation");
    assertInstanceOf(coErr, SysError);
    assertEquals((coErr as SysError).code, "ECANCELED");
    assertEquals(await pr, -ECANCELED);
    file.close();
  } finally {
    if (!ctx.destroyed) ctx.destroy();
    close(r);
    close(w);
  }
});

/** A coroutine function over the raw API, as AioFile builds its own. */
function* waitRead(ctx: AioContext, fd: number): Generator<void, number, unknown> {
  const co = Coroutine.self();
  let res: number | null = null;
  aioAddSqe(ctx, (sqe) => prepRead(sqe, fd, new Uint8Array(4), -1), (r) => {
    res = r;
    co.enter();
  });
  while (res === null) yield;
  if (res < 0) throw new SysError(-res, "read");
  return res;
}

Deno.test("aioAddSqe: contexts on other fd monitors give IoUringUnavailableError", async () => {
  await assertNoFdLeak(() => {
    for (const ops of [fdmonPoll, fdmonEpoll]) {
      if (!ops.supported()) continue;
      using ctx = AioContext.create({ fdmon: ops.name });
      assertEquals(aioHasIoUring(ctx), false);
      const e = assertThrows(() => aioAddSqe(ctx, prepNop, () => {}), IoUringUnavailableError);
      assertEquals((e as IoUringUnavailableError).fdmon, ops.name);
      assertThrows(() => AioFile.open(ctx, "/dev/null"), IoUringUnavailableError);
      assertThrows(() => AioFile.fromFd(ctx, 0), IoUringUnavailableError);
    }
    const ctx = AioContext.create({ fdmon: "poll" });
    ctx.destroy();
    assertEquals(aioHasIoUring(ctx), false);
    assertThrows(() => aioAddSqe(ctx, prepNop, () => {}), Deno.errors.BadResource);
    assertThrows(() => aioAddSqe({} as AioContext, prepNop, () => {}), TypeError);
  });
});

uringTest("aioAddSqe: completions dispatched through the context's GSource", () => {
  const ctx = AioContext.create({ fdmon: "io_uring" });
  const gctx = new GMainContext();
  const { path, data } = patternFile(8192);
  const fd = open(path, O_RDONLY);
  try {
    ctx.getGSource().attach(gctx);
    while (gctx.iteration(false));
    const buf = new Uint8Array(4096);
    const got: number[] = [];
    let deferred = 0;
    const flush = (): void => {
      deferred++;
    };
    aioAddSqe(ctx, (sqe) => prepRead(sqe, fd, buf, 4096), (r) => {
      got.push(r);
      deferCall(flush);
    });
    aioAddSqe(ctx, prepNop, (r) => {
      got.push(r);
      deferCall(flush);
    });
    const dog = watchdog(ctx);
    while (got.length < 2 && !dog.fired) gctx.iteration(true);
    dog.timer.del();
    assertEquals(got, [4096, 0]);
    assertEquals(deferred, 1);
    assertEquals(buf, data.subarray(4096));
  } finally {
    close(fd);
    ctx.destroy();
    gctx.destroy();
    Deno.removeSync(path);
  }
});

uringTest("AioFile: promises on the main loop's context, awaited while it runs", async () => {
  const { path, data } = patternFile(32 * 1024);
  using _loop = qemuInitMainLoop({ fdmon: "io_uring" });
  const ctx = qemuGetAioContext();
  assert(aioHasIoUring(ctx));
  const file = AioFile.open(ctx, path);
  const run = mainLoopRun();
  try {
    const bufs = [0, 1, 2, 3, 4, 5, 6, 7].map(() => new Uint8Array(4096));
    const counts = await Promise.all(bufs.map((b, i) => file.readAsync(b, i * 4096)));
    assertEquals(counts, bufs.map(() => 4096));
    bufs.forEach((b, i) => assertEquals(b, data.subarray(i * 4096, (i + 1) * 4096)));
  } finally {
    mainLoopQuit();
    await run;
    file.close();
    Deno.removeSync(path);
  }
});

Deno.test({
  name: "aioAddSqe: a buffer only the request references survives GC until the CQE, then goes",
  ignore,
  async fn() {
    // A child process, for V8's gc() (--expose-gc) without exposing it here.
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--v8-flags=--expose-gc",
        new URL("./testdata/sqe_pin_gc.ts", import.meta.url).pathname,
      ],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert(out.success, new TextDecoder().decode(out.stderr));
    assertEquals(JSON.parse(text), {
      aliveInFlight: true,
      res: 3,
      first: [1, 2, 3],
      collectedAfter: true,
    });
  },
});

uringTest("aioAddSqe: buffers at an offset in a shared ArrayBuffer get exactly their bytes", () => {
  const { path, data } = patternFile(4096);
  using ctx = AioContext.create({ fdmon: "io_uring" });
  const fd = open(path, O_RDONLY);
  try {
    const whole = new Uint8Array(1024).fill(0xee);
    // Views at odd offsets of one buffer, and a view on a SharedArrayBuffer.
    const views = [whole.subarray(1, 101), whole.subarray(333, 334), whole.subarray(700, 1000)];
    const shared = new Uint8Array(new SharedArrayBuffer(64), 8, 40);
    const all = [...views, shared];
    const offs = [0, 17, 2000, 4000];
    const res: number[] = [];
    all.forEach((v, i) => {
      aioAddSqe(ctx, (sqe) => prepRead(sqe, fd, v, offs[i]), (r) => res[i] = r);
    });
    pollUntil(ctx, () => res.filter((r) => r !== undefined).length === all.length);
    assertEquals(res, [100, 1, 300, 40]);
    all.forEach((v, i) => assertEquals(v, data.subarray(offs[i], offs[i] + v.length)));
    // Bytes around the views are untouched.
    assertEquals(whole[0], 0xee);
    assertEquals(whole[101], 0xee);
    assertEquals(whole[332], 0xee);
    assertEquals(whole[334], 0xee);
    assertEquals(whole[699], 0xee);
    assertEquals(whole.subarray(1000), new Uint8Array(24).fill(0xee));
    assertEquals(new Uint8Array(shared.buffer, 0, 8), new Uint8Array(8));
    assertEquals(new Uint8Array(shared.buffer, 48), new Uint8Array(16));
  } finally {
    close(fd);
    Deno.removeSync(path);
  }
});

uringTest("aioAddSqe: a multishot request calls its handler per CQE until the last", () => {
  const ctx = AioContext.create({ fdmon: "io_uring" });
  const [r, w] = pipe();
  const IORING_OP_POLL_ADD = 6;
  const IORING_POLL_ADD_MULTI = 1;
  const IORING_CQE_F_MORE = 2;
  const POLLIN = 1;
  try {
    const got: [number, number][] = [];
    aioAddSqe(ctx, (sqe) => {
      sqe.opcode = IORING_OP_POLL_ADD;
      sqe.fd = r;
      sqe.opFlags = POLLIN; // poll32_events
      sqe.len = IORING_POLL_ADD_MULTI;
    }, (res, flags) => got.push([res, flags & IORING_CQE_F_MORE]));
    ctx.poll(false);
    write(w, new Uint8Array([1]));
    pollUntil(ctx, () => got.length === 1);
    write(w, new Uint8Array([2]));
    pollUntil(ctx, () => got.length === 2);
    assertEquals(got, [[POLLIN, IORING_CQE_F_MORE], [POLLIN, IORING_CQE_F_MORE]]);
    // Still armed: destroy cancels it, and the last CQE has no F_MORE.
    ctx.destroy();
    assertEquals(got.length, 3);
    assertEquals(got[2], [-ECANCELED, 0]);
  } finally {
    if (!ctx.destroyed) ctx.destroy();
    close(r);
    close(w);
  }
});

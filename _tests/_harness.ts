// Shared test setup: one test per fd monitor, a context (or the main loop)
// made and torn down around a body with an fd-leak check, a watchdog that
// turns a lost wake-up into a failure instead of a hang, and the warm-up that
// lets fd counts see only our own fds.
import { AioContext, type AioContextOptions } from "../aio/aio_context.ts";
import { getCurrentAioContext, setCurrentAioContext } from "../aio/current.ts";
import { clockGetNs, QEMUClockType, type QEMUTimer, SCALE_MS, timerNewNs } from "../aio/timer.ts";
import type { FdMonName } from "../fdmon/fdmon_ops.ts";
import { close, eventfd, pipe, socketpair } from "../sys/fd.ts";
import {
  mainLoopIsRunning,
  mainLoopQuit,
  qemuCleanupMainLoop,
  qemuInitMainLoop,
} from "../main_loop.ts";
import { assertNoFdLeak, openFdCount, supportedFdMons } from "./_fd_leak.ts";

type Settled = { ok: true } | { ok: false; error: unknown };

async function settle(fn: () => unknown): Promise<Settled> {
  try {
    await fn();
    return { ok: true };
  } catch (error) {
    return { ok: false, error };
  }
}

/** Test options other than the name and the body. */
export type TestOptions = Omit<Deno.TestDefinition, "name" | "fn">;

/**
 * Registers one test per fd monitor this machine supports, named
 * `${name} [${fdmon}]`, as the parity rules ask of anything that touches an
 * AioContext. `options` may depend on the monitor (to skip one, say).
 */
export function testOnEachFdMon(
  name: string,
  fn: (fdmon: FdMonName) => void | Promise<void>,
  options: TestOptions | ((fdmon: FdMonName) => TestOptions) = {},
): void {
  for (const fdmon of supportedFdMons()) {
    const opts = typeof options === "function" ? options(fdmon) : options;
    Deno.test({ ...opts, name: `${name} [${fdmon}]`, fn: () => fn(fdmon) });
  }
}

/** Options of {@linkcode withContext}. */
export interface WithContextOptions extends AioContextOptions {
  /** Make the context current for the body (and clear it after). */
  current?: boolean;
}

/**
 * Runs `fn` with a fresh AioContext, destroys the context afterwards (even
 * when `fn` throws), and asserts that the process holds as many fds as
 * before: the context's own fds included.
 */
export async function withContext(
  fn: (ctx: AioContext) => unknown | Promise<unknown>,
  options: WithContextOptions = {},
): Promise<void> {
  const { current = false, ...ctxOptions } = options;
  await assertNoFdLeak(async () => {
    const ctx = AioContext.create(ctxOptions);
    if (current) setCurrentAioContext(ctx);
    const body = await settle(() => fn(ctx));
    if (getCurrentAioContext() === ctx) setCurrentAioContext(null);
    // A failed body may leave work behind: report its error, not that.
    const teardown = await settle(() => ctx.destroy());
    if (!body.ok) throw body.error;
    if (!teardown.ok) throw teardown.error;
  });
}

/**
 * Runs `fn` between qemuInitMainLoop and qemuCleanupMainLoop, checking fds
 * (when `fn` succeeds; its own error is what a failure reports).
 */
export async function withMainLoop(
  fn: () => unknown | Promise<unknown>,
  fdmon: FdMonName | "auto" = "auto",
): Promise<void> {
  await assertNoFdLeak(async () => {
    qemuInitMainLoop({ fdmon });
    const body = await settle(fn);
    if (mainLoopIsRunning()) mainLoopQuit();
    // A failed body may leave BHs behind: report its error, not that.
    const teardown = await settle(qemuCleanupMainLoop);
    if (!body.ok) throw body.error;
    if (!teardown.ok) throw teardown.error;
  });
}

/** A timer that rescues a wait: `fired` tells whether it had to. */
export interface Watchdog {
  /** True once the watchdog ran, i.e. the guarded wait was not woken. */
  fired: boolean;
  /** The timer, to delete when the guarded wait is over. */
  timer: QEMUTimer;
}

/**
 * A timer that ends a blocking wait which nothing else would end, so that a
 * lost wake-up fails the test instead of hanging it. On `ctx` it runs on the
 * HOST clock (REALTIME and VIRTUAL lists stay as the test left them); with
 * no context it is a main-loop REALTIME timer. The default of 30 s leaves
 * room for a Worker's start-up (type-checked on first use) on a loaded
 * machine.
 */
export function watchdog(ctx: AioContext | null = null, ms = 30_000): Watchdog {
  const w = { fired: false } as Watchdog;
  const cb = () => w.fired = true;
  if (ctx !== null) {
    w.timer = ctx.timerNew(QEMUClockType.HOST, SCALE_MS, cb, { name: "watchdog" });
    w.timer.mod(clockGetNs(QEMUClockType.HOST) / SCALE_MS + ms);
  } else {
    w.timer = timerNewNs(QEMUClockType.REALTIME, cb, { name: "watchdog" });
    w.timer.modNs(clockGetNs(QEMUClockType.REALTIME) + ms * 1e6);
  }
  return w;
}

/**
 * Deno opens its signal-driver sockets on the first signal listener of the
 * process and keeps them, and the runtime of a terminated Worker (an eventfd
 * and an epoll fd) lingers until the next one replaces it: call this once,
 * before any fd count, in a file whose tests use signals or Workers, so that
 * counts compare our fds only.
 */
export async function settleDenoFds(): Promise<void> {
  const noop = (): void => {};
  Deno.addSignalListener("SIGUSR2", noop);
  Deno.removeSignalListener("SIGUSR2", noop);
  const url = URL.createObjectURL(
    new Blob(["self.onmessage = () => self.postMessage(0);"], { type: "application/javascript" }),
  );
  const w = new Worker(url, { type: "module" });
  await new Promise((r) => {
    w.onmessage = r;
    w.postMessage(0);
  });
  w.terminate();
  URL.revokeObjectURL(url);
}

/**
 * Waits until the process holds at most `target` fds again, for up to
 * `timeoutMs`. Deno releases a terminated Worker's runtime fds (an eventfd
 * and an epoll fd) on another thread, some time after `terminate()`, when a
 * newer Worker's runtime replaces them: a test that starts a Worker calls
 * this before its fd count, instead of racing that release. It does not
 * fail by itself; the fd check that follows does, if fds really leaked.
 */
export async function fdCountSettles(target: number, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (openFdCount() > target && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Fds made by a test, closed in reverse at the end even if it fails. */
export class Fds {
  #all: number[] = [];
  pipe(): [number, number] {
    const p = pipe();
    this.#all.push(...p);
    return p;
  }
  socketpair(): [number, number] {
    const p = socketpair();
    this.#all.push(...p);
    return p;
  }
  eventfd(): number {
    const fd = eventfd();
    this.#all.push(fd);
    return fd;
  }
  /** Closes one fd early (a peer going away). */
  close(fd: number): void {
    const i = this.#all.indexOf(fd);
    if (i >= 0) this.#all.splice(i, 1);
    close(fd);
  }
  [Symbol.dispose](): void {
    for (const fd of this.#all.reverse()) close(fd);
    this.#all.length = 0;
  }
}

/** Wraps a test body: a context on `fdmon`, test fds, and an fd-leak check. */
export function onCtx(
  fdmon: FdMonName,
  body: (ctx: AioContext, fds: Fds) => void,
): () => Promise<void> {
  return () =>
    assertNoFdLeak(() => {
      using fds = new Fds();
      using ctx = AioContext.create({ fdmon });
      body(ctx, fds);
    });
}

/** What a script run by {@linkcode runScript} left behind. */
export interface ScriptResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `source` as the `main.ts` of a new temporary directory, in its own
 * `deno run` with `flags` and `env` (NO_COLOR set), no stdin, and a 60 s
 * watchdog: a hung child fails the test instead of holding the suite.
 */
export async function runScript(
  source: string,
  flags: string[],
  env: Record<string, string> = {},
): Promise<ScriptResult> {
  const dir = await Deno.makeTempDir({ prefix: "aioloop-script-" });
  try {
    const script = `${dir}/main.ts`;
    await Deno.writeTextFile(script, source);
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--no-prompt", ...flags, script],
      env: { NO_COLOR: "1", ...env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).output();
    if (r.signal !== null) throw new Error(`the script was killed (${r.signal}): watchdog`);
    const dec = new TextDecoder();
    return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const napWord = new Int32Array(new SharedArrayBuffer(4));

/** Blocks this thread for `ms` (a word nobody notifies). */
export function sleepMs(ms: number): void {
  Atomics.wait(napWord, 0, 0, ms);
}

/**
 * Polls `ctx` without blocking forever until `cond` holds: a poll that made
 * no progress is followed by a 1 ms nap. Throws after `ms`.
 */
export function pollUntil(ctx: AioContext, cond: () => boolean, what: string, ms = 20_000): void {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    if (!ctx.poll(false)) sleepMs(1);
  }
}

/** Waits until the fd count stayed put for 100 ms (Worker threads wind down; 5 s at most). */
export async function fdCountSteady(): Promise<void> {
  let last = -1, same = 0;
  const deadline = performance.now() + 5000;
  while (same < 5 && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    const n = openFdCount();
    same = n === last ? same + 1 : 0;
    last = n;
  }
}

const LATE_WRITER = `
const lib = Deno.dlopen("libc.so.6", {
  usleep: { parameters: ["u32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "u32"], result: "i32" },
});
self.onmessage = (e) => {
  lib.symbols.usleep(20000);
  lib.symbols.write(e.data, new Uint8Array(new BigUint64Array([1n]).buffer), 8);
  self.postMessage("done");
};
self.postMessage("ready");`;

/**
 * A Worker that, told an eventfd, sleeps 20 ms and then adds 1 to it: the
 * write from another thread that a blocked wait must wake for. Start it and
 * await `ready` before counting fds (its runtime's own fds come and go on
 * their own schedule).
 */
export class LateEventfdWriter {
  #url = URL.createObjectURL(new Blob([LATE_WRITER], { type: "text/javascript" }));
  #worker = new Worker(this.#url, { type: "module" });
  /** Resolves once the Worker runs. */
  readonly ready: Promise<void> = this.#next().then((m) => {
    if (m !== "ready") throw new Error(`the writer said ${String(m)}, not "ready"`);
  });

  #next(): Promise<unknown> {
    return new Promise((resolve) => this.#worker.onmessage = (e) => resolve(e.data));
  }

  /** Sends `fd`; the promise resolves after the Worker's write. */
  write(fd: number): Promise<void> {
    const done = this.#next().then((m) => {
      if (m !== "done") throw new Error(`the writer said ${String(m)}, not "done"`);
    });
    this.#worker.postMessage(fd);
    return done;
  }

  [Symbol.dispose](): void {
    this.#worker.terminate();
    URL.revokeObjectURL(this.#url);
  }
}

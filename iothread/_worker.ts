// The Worker entry of an IOThread (iothread.ts): create the thread's
// AioContext, make it current, then poll(true) until the stop flag is set.
// Everything that wakes this loop is a doorbell (a blocked isolate runs no
// message handlers); only requests that wait for the event loop (a module
// import, shared buffers in flight, a returned promise) switch it to a
// non-blocking poll that yields to the loop between passes.
import { AioContext } from "../aio/aio_context.ts";
import { setCurrentAioContext } from "../aio/current.ts";
import { adoptProcessClock } from "../aio/_timer_list.ts";
import {
  acceptSharedBuffers,
  remoteRequestChannel,
  remoteRequestsPending,
  remoteRequestsSettled,
} from "./remote_request.ts";
import { setThreadPoolParams } from "../thread_pool/mod.ts";
import { libc } from "../sys/_libc.ts";
import type { FdMonName } from "../fdmon/fdmon_ops.ts";
import type { PollParams } from "../aio/fd_handlers.ts";

// Same numbers as iothread.ts's control block.
const C_STOP = 0;
const C_STATE = 1;
const C_TID = 2;
const STATE_RUNNING = 1;
const STATE_EXITED = 2;
/** Non-blocking polls run after the stop flag, at most. */
const FLUSH_ROUNDS = 100;

interface Init {
  type: "init";
  id: string;
  ctl: SharedArrayBuffer;
  fdmon?: FdMonName | "auto";
  pollParams: Required<PollParams>;
  threadPool: { min: number; max: number };
  clock: SharedArrayBuffer;
}

// deno-lint-ignore no-explicit-any
const scope = self as any;

scope.onmessage = (e: MessageEvent) => {
  if (acceptSharedBuffers(e.data)) return;
  if (e.data?.type === "init") void main(e.data as Init);
};

function post(m: unknown): void {
  try {
    scope.postMessage(m);
  } catch {
    // An error that cannot be cloned: send what can be.
    const err = (m as { error?: unknown }).error;
    scope.postMessage({ ...(m as object), error: new Error(String(err)) });
  }
}

async function main(init: Init): Promise<void> {
  const ctl = new Int32Array(init.ctl);
  let ctx: AioContext;
  try {
    adoptProcessClock(init.clock);
    ctx = AioContext.create({ fdmon: init.fdmon, name: `IO ${init.id}` });
  } catch (e) {
    post({ type: "failed", error: e });
    return;
  }
  try {
    ctx.setPollParams(init.pollParams);
    // iothread_init: aio_context_set_thread_pool_params (the pool itself
    // starts on first use, in this thread).
    setThreadPoolParams(ctx, init.threadPool.min, init.threadPool.max);
    setCurrentAioContext(ctx);
    Atomics.store(ctl, C_TID, libc().gettid());
    const channel = remoteRequestChannel(ctx);
    Atomics.store(ctl, C_STATE, STATE_RUNNING);
    post({ type: "ready", channel });
  } catch (e) {
    setCurrentAioContext(null);
    ctx.destroy();
    post({ type: "failed", error: e });
    return;
  }
  let tick: ReturnType<typeof setTimeout> | undefined;
  while (Atomics.load(ctl, C_STOP) === 0) {
    try {
      ctx.poll(!remoteRequestsPending());
    } catch (e) {
      post({ type: "error", error: e });
    }
    if (remoteRequestsPending()) {
      // Let imports, messages and promises progress; come back within a
      // timer tick to serve the ring (its doorbell goes unheard meanwhile).
      await Promise.race([
        remoteRequestsSettled(),
        new Promise<void>((r) => tick = setTimeout(r, 1)),
      ]);
      clearTimeout(tick);
    }
  }
  // Let work that was already scheduled finish (a coroutine scheduled by a
  // request that arrived with the stop, say), as the last aio_poll of
  // QEMU's loop runs the BHs queued before its stop BH. Bounded, so a BH
  // that keeps rescheduling itself cannot hold the stop up.
  for (let i = 0; i < FLUSH_ROUNDS; i++) {
    try {
      if (!ctx.poll(false)) break;
    } catch (e) {
      post({ type: "error", error: e });
    }
  }
  try {
    setCurrentAioContext(null);
    ctx.destroy();
  } catch (e) {
    post({ type: "error", error: e });
  }
  Atomics.store(ctl, C_STATE, STATE_EXITED);
  post({ type: "stopped" });
}

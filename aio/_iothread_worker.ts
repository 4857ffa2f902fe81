// The Worker entry of an IOThread (iothread.ts): create the thread's
// AioContext, make it current, then poll(true) until the stop flag is set.
// Everything that wakes this loop is a doorbell (a blocked isolate runs no
// message handlers); only requests that wait for the event loop (a module
// import, shared buffers in flight, a returned promise) switch it to a
// non-blocking poll that yields to the loop between passes.
import { AioContext } from "./async.ts";
import { setCurrentAioContext } from "./current.ts";
import { internals } from "./_internal.ts";
import {
  acceptSharedBuffers,
  remoteRequestChannel,
  remoteRequestsPending,
  remoteRequestsSettled,
} from "./remote_request.ts";
import { libc } from "../sys/_libc.ts";
import type { FdMonName } from "../fdmon/_types.ts";
import type { PollParams } from "./aio_posix.ts";

// Same numbers as iothread.ts's control block.
const C_STOP = 0;
const C_STATE = 1;
const C_TID = 2;
const STATE_RUNNING = 1;
const STATE_EXITED = 2;

/**
 * Where the thread-pool limits wait for the thread pool. SEAM(thread_pool):
 * when thread_pool/mod.ts offers a per-context setter (QEMU's
 * `thread_pool_update_params`), call it here instead; until then the pool
 * can read them from the context's slots under this registered symbol.
 */
const THREAD_POOL_PARAMS = Symbol.for("aioloop.threadPoolParams");

interface Init {
  type: "init";
  id: string;
  ctl: SharedArrayBuffer;
  fdmon?: FdMonName | "auto";
  pollParams: Required<PollParams>;
  threadPool: { min: number; max: number };
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
    ctx = AioContext.create({ fdmon: init.fdmon, name: `IO ${init.id}` });
  } catch (e) {
    post({ type: "failed", error: e });
    return;
  }
  try {
    ctx.setPollParams(init.pollParams);
    internals(ctx).slots.set(THREAD_POOL_PARAMS, { ...init.threadPool });
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
  try {
    setCurrentAioContext(null);
    ctx.destroy();
  } catch (e) {
    post({ type: "error", error: e });
  }
  Atomics.store(ctl, C_STATE, STATE_EXITED);
  post({ type: "stopped" });
}

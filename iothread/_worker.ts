// The Worker entry of an IOThread (iothread.ts): create the thread's
// AioContext, make it current, then poll(true) until the stop flag is set.
// Everything that wakes this loop is a doorbell (a blocked isolate runs no
// message handlers); only requests that wait for the event loop (a module
// import, shared buffers in flight, a returned promise) switch it to a
// non-blocking poll that yields to the loop between passes.
import { parentPort, workerData } from "node:worker_threads";
import { AioContext } from "../aio/aio_context.ts";
import { setCurrentAioContext } from "../aio/current.ts";
import { adoptProcessClock } from "../aio/_timer_list.ts";
import { bqlAttachMutex } from "../thread/_bql_state.ts";
import {
  acceptSharedBuffers,
  remoteRequestChannel,
  remoteRequestsPending,
  remoteRequestsSettled,
} from "./remote_request.ts";
import { addSharedBufferPort } from "./_home.ts";
import { IOTHREAD_CTL, IOTHREAD_EXITED, IOTHREAD_RUNNING } from "../_wire/control_words.ts";
import { getThreadPool, setThreadPoolParams } from "../thread_pool/mod.ts";
import { libc } from "../sys/_libc.ts";
import { traceAdopt, traceRefresh } from "../trace/_state.ts";
import type { WorkerInit } from "./_init.ts";

const { STOP: C_STOP, STATE: C_STATE, TID: C_TID } = IOTHREAD_CTL;
/** Non-blocking polls run after the stop flag, at most. */
const FLUSH_ROUNDS = 100;

// Messages from other senders that hand shared buffers over.
parentPort?.on("message", (m: unknown) => acceptSharedBuffers(m));

function post(m: unknown): void {
  try {
    parentPort!.postMessage(m);
  } catch {
    // An error that cannot be cloned: send what can be.
    const err = (m as { error?: unknown }).error;
    parentPort!.postMessage({ ...(m as object), error: new Error(String(err)) });
  }
}

async function main(init: WorkerInit): Promise<void> {
  const ctl = new Int32Array(init.ctl);
  addSharedBufferPort(init.sabPort);
  let ctx: AioContext;
  try {
    adoptProcessClock(init.clock);
    traceAdopt(init.trace, `IOThread ${init.id}`);
    if (init.bql !== null) bqlAttachMutex(init.bql);
    ctx = AioContext.create({ fdmon: init.fdmon, name: `IO ${init.id}` });
  } catch (e) {
    post({ type: "failed", error: e });
    return;
  }
  try {
    ctx.setPollParams(init.pollParams);
    // iothread_init: aio_context_set_thread_pool_params.
    setThreadPoolParams(ctx, init.threadPool.min, init.threadPool.max);
    // thread-pool-min takes effect at once: the pool starts its min workers
    // from this thread's first polls (QEMU spawns them at pool creation).
    if (init.threadPool.min > 0) getThreadPool(ctx);
    setCurrentAioContext(ctx);
    Atomics.store(ctl, C_TID, libc().gettid());
    const channel = remoteRequestChannel(ctx);
    Atomics.store(ctl, C_STATE, IOTHREAD_RUNNING);
    post({ type: "ready", channel });
  } catch (e) {
    setCurrentAioContext(null);
    ctx.destroy();
    post({ type: "failed", error: e });
    return;
  }
  let tick: ReturnType<typeof setTimeout> | undefined;
  while (Atomics.load(ctl, C_STOP) === 0) {
    traceRefresh();
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
  Atomics.store(ctl, C_STATE, IOTHREAD_EXITED);
  post({ type: "stopped" });
}

void main(workerData as WorkerInit);

// Runs inside an IOThread's Worker, as a named request of
// IOThread.setPollParams: applies new adaptive polling parameters to the
// thread's context (iothread_set_aio_context_params' poll half).
import { getCurrentAioContext } from "../aio/current.ts";
import type { PollParams } from "../aio/fd_handlers.ts";

export function applyPollParams(p: Required<PollParams>): Required<PollParams> {
  const ctx = getCurrentAioContext();
  if (ctx === null) throw new Error("No current AioContext in this IOThread");
  ctx.setPollParams(p);
  return ctx.pollParams;
}

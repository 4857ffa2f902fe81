// A Worker for the remote timer tests: applies the timer requests it is
// sent, in order, after an optional delay; replies "ok" or the error per
// request.
/// <reference lib="deno.worker" />
import { RemoteAioContext, type RemoteTimer } from "../../aio/handle.ts";

type Op = ["mod", number] | ["modNs", number] | ["del"];

self.onmessage = (e: MessageEvent<{ timer: RemoteTimer; ops: Op[]; delayMs?: number }>) => {
  const { timer, ops, delayMs } = e.data;
  if (delayMs) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, delayMs);
  const results: string[] = [];
  for (const op of ops) {
    try {
      if (op[0] === "mod") RemoteAioContext.timerMod(timer, op[1]);
      else if (op[0] === "modNs") RemoteAioContext.timerModNs(timer, op[1]);
      else RemoteAioContext.timerDel(timer);
      results.push("ok");
    } catch (err) {
      results.push(`${(err as Error).name}: ${(err as Error).message}`);
    }
  }
  self.postMessage(results);
};

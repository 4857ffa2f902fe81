/// <reference lib="deno.worker" />
// A Worker that schedules shared BHs of another thread's AioContext on
// request: each message is a list of RemoteBH references, scheduled in that
// order; the reply says, per reference, "ok" or the error's class and text.
import { RemoteAioContext, type RemoteBH } from "../../aio/handle.ts";

self.onmessage = (e: MessageEvent<RemoteBH[]>) => {
  const results: string[] = [];
  for (const ref of e.data) {
    try {
      RemoteAioContext.scheduleBh(ref);
      results.push("ok");
    } catch (err) {
      results.push(`${(err as Error).name}: ${(err as Error).message}`);
    }
  }
  self.postMessage(results);
};

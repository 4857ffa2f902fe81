// A plain Worker that makes its own AioContext (and so its own clock state)
// before it is handed the process clock: it arms a VIRTUAL timer, then
// opens the handle it is sent and blocks in poll(true) until the timer
// fires or a 30 s REALTIME watchdog does. Reports "adopted", then the end.
/// <reference lib="deno.worker" />
import { AioContext } from "../../aio/aio_context.ts";
import { type AioContextHandle, RemoteAioContext } from "../../aio/handle.ts";
import { clockGetNs, QEMUClockType } from "../../aio/timer.ts";

const ctx = AioContext.create();
let fired = false;
let dog = false;
const t = ctx.timerNew(QEMUClockType.VIRTUAL, 1, () => fired = true);
t.modNs(5_000);

self.onmessage = (e: MessageEvent<AioContextHandle>) => {
  const ownId = ctx.id;
  new RemoteAioContext(e.data);
  self.postMessage({ adopted: true, ownId });
  const watchdog = ctx.timerNew(QEMUClockType.REALTIME, 1, () => dog = true);
  watchdog.modNs(clockGetNs(QEMUClockType.REALTIME) + 30e9);
  while (!fired && !dog) ctx.poll(true);
  watchdog.del();
  t.del();
  ctx.destroy();
  self.postMessage({ fired, dog, virtualNs: clockGetNs(QEMUClockType.VIRTUAL) });
};

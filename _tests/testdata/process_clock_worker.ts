// A plain Worker for the process clock tests: opens the context handle it
// is sent, reports what it sees of the clock state before and after, then
// sets the VIRTUAL clock as asked.
/// <reference lib="deno.worker" />
import { type AioContextHandle, RemoteAioContext } from "../../aio/handle.ts";
import { clockEnable, clockSetVirtualNs, QEMUClockType } from "../../aio/timer.ts";
import { clockState } from "./process_clock_fns.ts";

self.onmessage = (
  e: MessageEvent<{ handle: AioContextHandle; setVirtualNs: number; enableVirtual: boolean }>,
) => {
  const before = clockState();
  new RemoteAioContext(e.data.handle);
  const opened = clockState();
  clockSetVirtualNs(e.data.setVirtualNs);
  clockEnable(QEMUClockType.VIRTUAL, e.data.enableVirtual);
  self.postMessage({ before, opened });
};

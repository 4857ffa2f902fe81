// Functions the process clock tests run inside IOThreads (IOThread.run):
// they read the clock state from another isolate and arm timers in the
// thread's own context.
import { getCurrentAioContext } from "../../aio/current.ts";
import { clockGetNs, clockIsEnabled, QEMUClockType, type QEMUTimer } from "../../aio/timer.ts";

/** What this isolate sees of the clock state. */
export function clockState(): { virtualNs: number; virtualEnabled: boolean; ctxId: number } {
  return {
    virtualNs: clockGetNs(QEMUClockType.VIRTUAL),
    virtualEnabled: clockIsEnabled(QEMUClockType.VIRTUAL),
    ctxId: getCurrentAioContext()?.id ?? -1,
  };
}

let timer: QEMUTimer | null = null;

/**
 * Arms a VIRTUAL ns timer of this thread's context at `expireNs`; each fire
 * adds 1 to `counter[0]` and wakes its waiters.
 */
export function armVirtual(a: { counter: SharedArrayBuffer; expireNs: number }): number {
  const counter = new Int32Array(a.counter);
  const ctx = getCurrentAioContext()!;
  timer = ctx.timerNew(QEMUClockType.VIRTUAL, 1, () => {
    Atomics.add(counter, 0, 1);
    Atomics.notify(counter, 0);
  }, { name: "virtual-probe" });
  timer.modNs(a.expireNs);
  return ctx.id;
}

/** Frees the timer armVirtual made. */
export function disarm(): void {
  timer?.del();
  timer = null;
}

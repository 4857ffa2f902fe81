// The main context of this isolate (QEMU's `qemu_aio_context`), installed by
// the main loop. Private: users reach it through `qemuGetAioContext()` of
// the main-loop entry point, the one public name for it.
import type { AioContext } from "./aio_context.ts";

let main: AioContext | null = null;

/** The main context of this isolate, or null before the main loop made one. */
export function getMainAioContext(): AioContext | null {
  return main;
}

/** Installs (or, with null, clears) the main context. Home thread only. */
export function setMainAioContext(ctx: AioContext | null): void {
  main = ctx;
}

/**
 * What the main loop's last iteration asked its poll for (main_loop.ts
 * writes it; tests read it): the timeout in ns (-1: none), and how many
 * iterations ran so far in this isolate.
 */
export const mainLoopWaitInfo: { timeoutNs: number; iterations: number } = {
  timeoutNs: -1,
  iterations: 0,
};

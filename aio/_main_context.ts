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

// Package-private access to a pool's control block, for tests (the idle
// timeout is QEMU's fixed 10 s; tests shorten it).
import { C_IDLE_MS } from "./_shared.ts";

const controls = new WeakMap<object, Int32Array>();

export function registerPoolControl(pool: object, ctl: Int32Array): void {
  controls.set(pool, ctl);
}

/** Sets how long an idle worker above `min` waits before leaving. */
export function setPoolIdleTimeoutMs(pool: object, ms: number): void {
  const ctl = controls.get(pool);
  if (ctl === undefined) throw new TypeError("Not a thread pool");
  Atomics.store(ctl, C_IDLE_MS, ms);
}

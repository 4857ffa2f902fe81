// Package-private access to an AioContext's internals, for the modules that
// QEMU builds into the same struct (the GSource, coroutine scheduling, the
// thread pool). A WeakMap keeps it off the public type.
import type { AioPosix } from "./aio_posix.ts";
import type { BhList } from "./_bh_list.ts";
import type { TimerListGroup } from "./timer.ts";
import type { GPollFD } from "../glib/gpollfd.ts";

export interface AioInternals {
  readonly posix: AioPosix;
  readonly bhList: BhList;
  readonly tlg: TimerListGroup;
  /** The SharedArrayBuffer control block (see _ctl_block.ts). */
  readonly ctl: Int32Array;
  /** aio_compute_timeout in ns (-1 infinite). */
  computeTimeout(): number;
  /** aio_notify_accept. */
  notifyAccept(): void;
  /** Hooks run first at destroy (thread pool free, co_schedule BH delete). */
  readonly destroyHooks: Array<() => void>;
  /** Per-module state keyed by module (co_schedule, thread pool ...). */
  readonly slots: Map<symbol, unknown>;
  /** The fds the context's GSource must poll (kept even before it exists). */
  readonly gsourcePolls: Set<GPollFD>;
  /** GSource hooks, installed by getGSource(). */
  gsource: { addPoll(pfd: GPollFD): void; removePoll(pfd: GPollFD): void } | null;
}

// Keyed by the context object; typed as `object` so this file needs no
// import of aio_context.ts (which imports it).
const registry = new WeakMap<object, AioInternals>();

export function registerInternals(ctx: object, i: AioInternals): void {
  registry.set(ctx, i);
}

export function internals(ctx: object): AioInternals {
  const i = registry.get(ctx);
  if (i === undefined) throw new TypeError("Not an AioContext");
  return i;
}

/** Set by the coroutine module: whether the caller runs inside a coroutine. */
export const coroutineHooks: { inCoroutine: () => boolean } = { inCoroutine: () => false };

/** Adaptive polling counters (polled vs blocking wake-ups), for tests. */
export { pollCounters } from "./_poll_counters.ts";

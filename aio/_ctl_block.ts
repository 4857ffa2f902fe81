// The cross-thread part of an AioContext lives in one SharedArrayBuffer so
// that a Worker given the handle can ring the context (docs/threading.md). Int32 slots; Atomics ops are sequentially consistent,
// which gives the full barriers the notify handshake needs.

/** notify_me: bit 0 = GSource prepare..check, counter in steps of 2 = aio_poll. */
export const CTL_NOTIFY_ME = 0;
/** notified: set by any aio_notify, cleared by aio_notify_accept. */
export const CTL_NOTIFIED = 1;
/** 1 once the context is destroyed; remote ringers must stop. */
export const CTL_DESTROYED = 2;
/** Doorbell fd (write side) for other threads. */
export const CTL_DOORBELL_FD = 3;
/** Context id (process-unique). */
export const CTL_ID = 4;
/** Count of eventfd writes made by aio_notify (stats, tests). */
export const CTL_KICKS = 5;
/** Non-zero while some remote BH flag may be set (cleared by the home). */
export const CTL_REMOTE_PENDING = 6;
/** Remote threads inside a ring (destroy waits for 0 before closing fds). */
export const CTL_RINGERS = 7;
/** First remote-BH flag slot. */
export const CTL_REMOTE_BH_BASE = 16;
/** How many BHs of one context may be scheduled from other threads. */
export const CTL_REMOTE_BH_MAX = 1024;
/** Size in Int32 slots of the block. */
export const CTL_SLOTS = CTL_REMOTE_BH_BASE + CTL_REMOTE_BH_MAX;

export function newCtlBlock(slots: number = CTL_SLOTS): Int32Array {
  return new Int32Array(new SharedArrayBuffer(slots * 4));
}

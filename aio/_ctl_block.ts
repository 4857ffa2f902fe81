// The cross-thread part of an AioContext lives in one SharedArrayBuffer so
// that a Worker given the handle can ring the context (docs/threading.md). Int32 header slots, then one 64-bit word per shared BH.
// Atomics ops are sequentially consistent, which gives the full barriers the
// notify handshake needs.
//
// The buffer is a growable SharedArrayBuffer: the home grows it when it runs
// out of shared-BH words, and every thread's length-tracking views see the
// new words (a growable SharedArrayBuffer's length is shared by all agents),
// so references posted before the growth stay valid.
//
// Shared-BH word: high 32 bits = generation of the slot (bumped when its BH
// is deleted, so a stale reference is refused), low 32 bits = the sequence
// number of a pending remote schedule (0: none). The sequence numbers come
// from one counter per context, so the home can put remote schedules into
// its BH list in the order they happened (util/async.c pushes each
// qemu_bh_schedule at the head of ctx->bh_list at once).

/** notify_me: bit 0 = GSource prepare..check, counter in steps of 2 = aio_poll. */
export const CTL_NOTIFY_ME = 0;
/**
 * notified: set by any aio_notify, cleared by aio_notify_accept. Alone on
 * the header's second cache line: a context that busy-polls it reads only
 * that line, so ringers updating the other words (their count, the
 * pending flag) do not take it from under the poller on every step.
 */
export const CTL_NOTIFIED = 16;
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
/** The remote-schedule sequence counter. */
export const CTL_BH_SEQ = 8;
/** Int32 slots of the header: two 64-byte lines. */
export const CTL_HEADER_SLOTS = 32;
/** Index, in a BigInt64Array over the block, of shared-BH slot 0's word. */
export const CTL_BH_WORD0 = CTL_HEADER_SLOTS / 2;
/** Shared-BH words a new block has room for. */
export const CTL_REMOTE_BH_INITIAL = 64;
/** How many BHs of one context may be shared with other threads at once. */
export const CTL_REMOTE_BH_MAX = 65536;

/** Bytes of a block with room for `bhSlots` shared BHs. */
export function ctlBytes(bhSlots: number): number {
  return CTL_HEADER_SLOTS * 4 + bhSlots * 8;
}

/**
 * A new, growable control block, as a fixed-length view of its header:
 * V8 makes Atomics on length-tracking views of a growable buffer several
 * times slower, and the header is on the hot path of every poll. The
 * shared-BH words are read through views made for the current length.
 */
export function newCtlBlock(bhSlots: number = CTL_REMOTE_BH_INITIAL): Int32Array {
  const sab = new SharedArrayBuffer(ctlBytes(bhSlots), {
    maxByteLength: ctlBytes(CTL_REMOTE_BH_MAX),
  });
  return new Int32Array(sab, 0, CTL_HEADER_SLOTS);
}

/** A fixed-length header view of a block (the fast kind; see above). */
export function ctlHeader(sab: SharedArrayBuffer): Int32Array {
  return new Int32Array(sab, 0, CTL_HEADER_SLOTS);
}

/** A RemoteTimer's request word: no request pending. */
export const TIMER_REQ_NONE: bigint = -(2n ** 63n);
/** A RemoteTimer's request word: timer_del (any other value: an expiry in ns). */
export const TIMER_REQ_DEL: bigint = TIMER_REQ_NONE + 1n;

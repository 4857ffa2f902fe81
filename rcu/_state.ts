// RCU's shared memory layout and this isolate's state. The registry of
// reader threads is process-wide: one SharedArrayBuffer that the first isolate
// creates (the main isolate, lazily) and every Worker attaches to with the
// handle it is posted (rcuAttach). Everything a reader or an updater of
// another isolate must see is an Atomics word in that buffer; the read-side
// nesting depth and the call_rcu FIFO stay isolate-local.

import { QemuEvent } from "../thread/event.ts";
import { QemuMutex } from "../thread/mutex.ts";

/** Magic in word 0: a buffer that is not an RCU registry is rejected. */
export const MAGIC = 0x52435530; // "RCU0"
/** rcu_gp_ctr: odd, +2 per grace period (QEMU's 64-bit-host scheme on an Int32 word). */
export const GP_CTR = 1;
/** rcu_gp_event (a QemuEvent's word). */
export const GP_EVENT = 4;
/** in_drain_call_rcu: non-zero turns on force-quiescent-state. */
export const IN_DRAIN = 5;
/** Registered readers. */
export const NREG = 6;
/** Completed grace periods (statistics). */
export const GP_DONE = 7;
/** One past the highest slot ever used: the updater scans below it. */
export const SLOT_HWM = 8;
/** Isolate id allocator. */
export const NEXT_ISOLATE = 9;
/** rcu_sync_lock (a QemuMutex's words): serialises synchronizeRcu. */
export const SYNC_LOCK = 10;
/** rcu_registry_lock (a QemuMutex's words). */
export const REG_LOCK = 12;
export const HEADER_WORDS = 16;

/** Reader slot words (rcu_reader_data). */
export const S_CTR = 0;
/** Bit 0: the updater waits for this reader; bit 1: force-quiescent requested. */
export const S_WAIT = 1;
/** Owner isolate id, 0 = free slot. */
export const S_OWNER = 2;
/** Doorbell fd + 1 rung on force-quiescent, 0 = none. */
export const S_DOORBELL = 3;
export const SLOT_WORDS = 4;

/** The first word of reader slot `s`. */
export function slotBase(s: number): number {
  return HEADER_WORDS + s * SLOT_WORDS;
}
export const MAX_READERS = 256;

export const WAITING = 1;
export const FORCE = 2;

export const REGISTRY_BYTES = (HEADER_WORDS + MAX_READERS * SLOT_WORDS) * 4;

/** This isolate's view of the registry, or null before first use. */
export let words: Int32Array | null = null;
/** This isolate's id in the registry (0 until attached). */
export let isolateId = 0;

/** rcu_sync_lock, rcu_registry_lock and rcu_gp_event of the open registry. */
export let syncLock: QemuMutex | null = null;
export let regLock: QemuMutex | null = null;
export let gpEvent: QemuEvent | null = null;

// Monotonic numbers of this isolate's callRcu requests: entries with
// seq < dueSeq had a grace period start after they were queued and complete.
export const cbSeq = { next: 0, due: 0 };

function inWorker(): boolean {
  return typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !==
    "undefined";
}

function adopt(w: Int32Array): void {
  const sab = w.buffer as SharedArrayBuffer;
  syncLock = new QemuMutex({ sab, index: SYNC_LOCK });
  regLock = new QemuMutex({ sab, index: REG_LOCK });
  gpEvent = new QemuEvent({ sab, index: GP_EVENT });
  words = w;
  isolateId = Atomics.add(w, NEXT_ISOLATE, 1);
}

/** The registry: created on first use in the main isolate; a Worker must attach first. */
export function shared(what: string): Int32Array {
  if (words !== null) return words;
  if (inWorker()) {
    throw new TypeError(
      `${what}: this Worker has no RCU registry; post it rcuHandle() from the main isolate and call rcuAttach(handle) first`,
    );
  }
  const w = new Int32Array(new SharedArrayBuffer(REGISTRY_BYTES));
  w[0] = MAGIC;
  w[GP_CTR] = 1;
  const sab = w.buffer as SharedArrayBuffer;
  QemuEvent.create(true, { sab, index: GP_EVENT }); // as rcu_init
  QemuMutex.create({ sab, index: SYNC_LOCK });
  QemuMutex.create({ sab, index: REG_LOCK });
  w[NEXT_ISOLATE] = 1;
  for (let s = 0; s < MAX_READERS; s++) w[HEADER_WORDS + s * SLOT_WORDS + S_OWNER] = 0;
  adopt(w);
  return w;
}

/** Attaches this isolate to a registry made elsewhere. */
export function attach(buffer: SharedArrayBuffer): void {
  if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength !== REGISTRY_BYTES) {
    throw new TypeError("rcuAttach: handle.buffer is not an RCU registry; pass rcuHandle()");
  }
  const w = new Int32Array(buffer);
  if (Atomics.load(w, 0) !== MAGIC) {
    throw new TypeError("rcuAttach: handle.buffer is not an RCU registry; pass rcuHandle()");
  }
  if (words !== null) {
    if (words.buffer === buffer) return;
    throw new Error(
      "rcuAttach: this isolate already uses another RCU registry; attach before any other RCU call",
    );
  }
  adopt(w);
}

// Control-block operations shared by the home context and remote threads.
import {
  CTL_BH_SEQ,
  CTL_BH_WORD0,
  CTL_DESTROYED,
  CTL_DOORBELL_FD,
  CTL_HEADER_SLOTS,
  CTL_KICKS,
  CTL_NOTIFIED,
  CTL_NOTIFY_ME,
  CTL_REMOTE_PENDING,
  CTL_RINGERS,
} from "./_ctl_block.ts";
import { errno, libc } from "../sys/_libc.ts";
import { SysError } from "../sys/errno.ts";

const ONE = new Uint8Array(new BigUint64Array([1n]).buffer);

/**
 * aio_notify from any thread on a control block: set `notified`, and ring
 * the doorbell only when the home announced (notify_me) that it may block.
 * Returns false if the context is destroyed.
 */
export function ctlNotify(ctl: Int32Array): boolean {
  Atomics.add(ctl, CTL_RINGERS, 1);
  try {
    if (Atomics.load(ctl, CTL_DESTROYED) !== 0) return false;
    Atomics.store(ctl, CTL_NOTIFIED, 1);
    if (Atomics.load(ctl, CTL_NOTIFY_ME) !== 0) {
      Atomics.add(ctl, CTL_KICKS, 1);
      const fd = Atomics.load(ctl, CTL_DOORBELL_FD);
      // EAGAIN means the counter is saturated: a wake is pending anyway.
      if (libc().write(fd, ONE, 8) < 0 && errno() !== 11 && errno() !== 4) {
        throw new SysError(errno(), "write", "doorbell");
      }
    }
    return true;
  } finally {
    Atomics.sub(ctl, CTL_RINGERS, 1);
  }
}

const LOW = 0xffffffffn;
const HIGH = -0x100000000n; // ~LOW as a signed 64-bit value
const words = new WeakMap<ArrayBufferLike, BigInt64Array>();

/**
 * The shared-BH words of a block: a fixed-length view (fast Atomics),
 * cached and made again when the block has grown.
 */
export function bhWords(ctl: Int32Array): BigInt64Array {
  const sab = ctl.buffer;
  const n = sab.byteLength >>> 3;
  let w = words.get(sab);
  if (w === undefined || w.length !== n) {
    w = new BigInt64Array(sab, 0, n);
    words.set(sab, w);
  }
  return w;
}

/** How many shared-BH slots the block has room for now. */
export function bhCapacity(ctl: Int32Array): number {
  return bhWords(ctl).length - CTL_BH_WORD0;
}

/** The generation a slot's word carries. */
export function bhSlotGeneration(ctl: Int32Array, slot: number): number {
  return Number(Atomics.load(bhWords(ctl), CTL_BH_WORD0 + slot) >> 32n);
}

/**
 * Home side: sets a slot's generation and clears any pending remote
 * schedule (a slot handed out, or its BH deleted).
 */
export function bhSlotReset(ctl: Int32Array, slot: number, generation: number): void {
  Atomics.store(bhWords(ctl), CTL_BH_WORD0 + slot, BigInt(generation) << 32n);
}

/** Home side: room for `slots` shared BHs (the block only grows). */
export function bhGrow(ctl: Int32Array, slots: number): void {
  const sab = ctl.buffer as SharedArrayBuffer;
  const bytes = CTL_HEADER_SLOTS * 4 + slots * 8;
  if (sab.byteLength < bytes) sab.grow(bytes);
}

/**
 * qemu_bh_schedule from another thread: stamps the slot's word with the next
 * sequence number (unless a remote schedule is already pending there: the
 * BH keeps its place, as a pending QEMUBH does), then rings. With
 * `generation`, a word of another generation (the BH was deleted, and maybe
 * its slot reused) is refused; without it (internal callers that own their
 * BHs for as long as they ring them) the slot is trusted.
 */
export function remoteBhSchedule(ctl: Int32Array, slot: number, generation?: number): void {
  const w = bhWords(ctl);
  if (!Number.isInteger(slot) || slot < 0 || slot >= w.length - CTL_BH_WORD0) {
    throw new RangeError(`Remote BH slot out of range: ${slot}`);
  }
  if (Atomics.load(ctl, CTL_DESTROYED) !== 0) {
    throw new Deno.errors.BadResource("AioContext was destroyed");
  }
  const i = CTL_BH_WORD0 + slot;
  let stamp = 0n;
  for (;;) {
    const old = Atomics.load(w, i);
    if (generation !== undefined && Number(old >> 32n) !== generation) {
      throw new Deno.errors.BadResource(
        `Stale RemoteBH (slot ${slot}, generation ${generation}): the BH was deleted; ` +
          "post a fresh bh.remote() of a live BH instead",
      );
    }
    // Already pending: it keeps its place, and no sequence number is taken
    // (the common case when completions come faster than the home drains).
    if ((old & LOW) !== 0n) break;
    if (stamp === 0n) {
      let seq = (Atomics.add(ctl, CTL_BH_SEQ, 1) + 1) >>> 0;
      if (seq === 0) seq = 1;
      stamp = BigInt(seq);
    }
    if (Atomics.compareExchange(w, i, old, (old & HIGH) | stamp) === old) break;
  }
  Atomics.add(ctl, CTL_REMOTE_PENDING, 1);
  if (!ctlNotify(ctl)) throw new Deno.errors.BadResource("AioContext was destroyed");
}

/** Home side: whether some remote BH may be waiting. */
export function remoteBhPending(ctl: Int32Array): boolean {
  return Atomics.load(ctl, CTL_REMOTE_PENDING) !== 0;
}

const drained: number[] = [];

/**
 * Home side: takes the pending remote schedules of `slots` and hands their
 * slots to `out` oldest first, so that pushing each on the BH list in turn
 * gives the list QEMU would have. Clearing the pending count before scanning
 * means a schedule stamped after the scan leaves the count non-zero for the
 * next pass.
 */
export function drainRemoteBhs(
  ctl: Int32Array,
  slots: Iterable<number>,
  out: (slot: number) => void,
): void {
  // A load first: the common case (nothing pending) stays a read.
  if (Atomics.load(ctl, CTL_REMOTE_PENDING) === 0) return;
  if (Atomics.exchange(ctl, CTL_REMOTE_PENDING, 0) === 0) return;
  const w = bhWords(ctl);
  const got = drained;
  for (const s of slots) {
    const i = CTL_BH_WORD0 + s;
    if ((Atomics.load(w, i) & LOW) === 0n) continue;
    const seq = Number(Atomics.and(w, i, HIGH) & LOW);
    if (seq !== 0) got.push(seq, s);
  }
  const n = got.length / 2;
  if (n === 0) return;
  if (n === 1) {
    const only = got[1];
    got.length = 0;
    out(only);
    return;
  }
  const order: number[] = [];
  for (let k = 0; k < n; k++) order.push(k);
  // Sequence numbers are 32-bit and wrap: compare by difference.
  order.sort((a, b) => ((got[2 * a] - got[2 * b]) | 0) || got[2 * a + 1] - got[2 * b + 1]);
  const slotsInOrder = order.map((k) => got[2 * k + 1]);
  got.length = 0;
  for (const s of slotsInOrder) out(s);
}

/** Home side at destroy: no new ringer gets in, and wait out those inside. */
export function ctlShutdown(ctl: Int32Array): void {
  Atomics.store(ctl, CTL_DESTROYED, 1);
  while (Atomics.load(ctl, CTL_RINGERS) !== 0) {
    // A ringer is between its check and its write(); it is a few µs.
  }
}

// Control-block operations shared by the home context and remote threads.
import {
  CTL_DESTROYED,
  CTL_DOORBELL_FD,
  CTL_KICKS,
  CTL_NOTIFIED,
  CTL_NOTIFY_ME,
  CTL_REMOTE_BH_BASE,
  CTL_REMOTE_BH_MAX,
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

/** Sets a remote BH flag, then rings (the order pairs with drainRemoteBhs). */
export function remoteBhSchedule(ctl: Int32Array, slot: number): void {
  if (!Number.isInteger(slot) || slot < 0 || slot >= CTL_REMOTE_BH_MAX) {
    throw new RangeError(`Remote BH slot out of range: ${slot}`);
  }
  Atomics.store(ctl, CTL_REMOTE_BH_BASE + slot, 1);
  Atomics.add(ctl, CTL_REMOTE_PENDING, 1);
  if (!ctlNotify(ctl)) throw new Deno.errors.BadResource("AioContext was destroyed");
}

/** Home side: whether some remote BH may be waiting. */
export function remoteBhPending(ctl: Int32Array): boolean {
  return Atomics.load(ctl, CTL_REMOTE_PENDING) !== 0;
}

/**
 * Home side: collects the slots whose flag is set. Clearing the pending
 * count before scanning means a flag set after the scan leaves the count
 * non-zero for the next pass.
 */
export function drainRemoteBhs(
  ctl: Int32Array,
  slots: Iterable<number>,
  out: (slot: number) => void,
): void {
  if (Atomics.exchange(ctl, CTL_REMOTE_PENDING, 0) === 0) return;
  for (const s of slots) {
    if (Atomics.exchange(ctl, CTL_REMOTE_BH_BASE + s, 0) !== 0) out(s);
  }
}

/** Home side at destroy: no new ringer gets in, and wait out those inside. */
export function ctlShutdown(ctl: Int32Array): void {
  Atomics.store(ctl, CTL_DESTROYED, 1);
  while (Atomics.load(ctl, CTL_RINGERS) !== 0) {
    // A ringer is between its check and its write(); it is a few µs.
  }
}

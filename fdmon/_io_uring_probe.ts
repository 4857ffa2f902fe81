// Whether io_uring works in this isolate's process, and if not, why, in
// one line: the probe behind fdmonIoUring.supported() and the fallback
// reason an `auto` context reports.
import { SysError } from "../sys/errno.ts";
import { IORING_FEAT_NODROP } from "../sys/io_uring.ts";
import { IoUringRing } from "./_io_uring_ring.ts";
import { ioUringHooks } from "./_io_uring_hooks.ts";

/** Why io_uring cannot be used: the failed call's error, or a missing feature. */
export interface IoUringUnavailable {
  /** The errno of the failed call (0: the kernel lacks a feature). */
  errno: number;
  /** One line, such as `io_uring_setup: EPERM (errno 1)`. */
  message: string;
  /** The SysError thrown, if a call failed. */
  cause?: SysError;
}

function unavailable(e: SysError): IoUringUnavailable {
  return { errno: e.errno, message: e.message, cause: e };
}

/**
 * Makes and tests a ring: setup, mmap, one NOP round trip (seccomp may allow
 * setup and forbid enter), and the features the monitor relies on. Returns
 * null when all is well.
 */
function probe(): IoUringUnavailable | null {
  let ring: IoUringRing;
  try {
    ring = IoUringRing.create(1);
  } catch (e) {
    if (e instanceof SysError) return unavailable(e);
    throw e;
  }
  try {
    // Without NODROP (before 5.5) completions past the CQ ring are lost.
    if ((ring.features & IORING_FEAT_NODROP) === 0) {
      return { errno: 0, message: "the kernel lacks IORING_FEAT_NODROP (Linux < 5.5)" };
    }
    ring.prepNop(0, 0);
    let r: number;
    do r = ring.submit(1); while (r === -1);
    if (ring.cqReady() !== 1 || ring.cqeRes() !== 0) {
      return { errno: 0, message: "a NOP round trip did not complete" };
    }
    ring.cqAdvance();
    return null;
  } catch (e) {
    if (e instanceof SysError) return unavailable(e);
    throw e;
  } finally {
    ring.close();
  }
}

let probed: IoUringUnavailable | null | undefined;

// Failures that say nothing about the kernel: no fd or memory left now.
const TRANSIENT = new Set([12, 23, 24]); // ENOMEM, ENFILE, EMFILE

/**
 * Null when io_uring works here, else why not; probed once per isolate.
 * Only the kernel's answer is cached: not a missing permission (that
 * throws), nor running out of fds or memory, nor a failure injected by a
 * test.
 */
export function ioUringUnavailable(): IoUringUnavailable | null {
  if (probed !== undefined) return probed;
  const injected = ioUringHooks.setupErrno !== null;
  const r = probe();
  if (!injected && (r === null || !TRANSIENT.has(r.errno))) probed = r;
  return r;
}

// Making a new context's fd monitor (aio_context_setup): the choice, the
// io_uring-first rule of `auto` with its fallback and the reason for it,
// and QEMU's "one context has io_uring, so every context must" rule.
import { SysError } from "../sys/errno.ts";
import type { FdMon, FdMonHost, FdMonName } from "./fdmon_ops.ts";
import { FALLBACK_WHAT, resolveChoice } from "./_choice.ts";
import { FdMonUnavailableError } from "./fdmon_unavailable_error.ts";
import { type IoUringUnavailable, ioUringUnavailable } from "./_io_uring_probe.ts";
import { fdmonIoUring } from "./io_uring.ts";
import { fdmonPoll } from "./poll.ts";
import { resolveFdMon } from "./select.ts";

/** The process-wide io_uring flag (kept by the caller, shared by every isolate). */
export interface IoUringRule {
  /** Whether some context of the process got io_uring. */
  needed(): boolean;
  /** Records that a context got io_uring. */
  got(): void;
}

/** A new context's monitor and how it came to be. */
export interface FdMonSetup {
  mon: FdMon;
  /** What was asked for (after AIOLOOP_FDMON). */
  requested: FdMonName | "auto";
  /** Where the choice came from ("chosen by the caller" ...). */
  source: string;
  /** Why an `auto` choice did not get io_uring (one line), else null. */
  fallback: string | null;
}

function unavailable(e: SysError): IoUringUnavailable {
  return { errno: e.errno, message: e.message, cause: e };
}

/**
 * Sets up the fd monitor for a new context served by `host`. Throws
 * TypeError (unknown name), FdMonUnavailableError (a forced monitor that
 * cannot be had, or io_uring failing where the rule demands it).
 */
export function setupFdMon(host: FdMonHost, choice: unknown, rule: IoUringRule): FdMonSetup {
  const { name, source } = resolveChoice(choice);
  if (name !== "auto") {
    const ops = resolveFdMon(name);
    let mon: FdMon;
    try {
      mon = ops.create(host);
    } catch (e) {
      if (!(e instanceof SysError)) throw e;
      throw new FdMonUnavailableError(
        name,
        e.errno,
        `The ${name} fd monitor cannot be set up: ${e.message}`,
        e,
      );
    }
    if (name === "io_uring") rule.got();
    return { mon, requested: name, source, fallback: null };
  }
  // io_uring first: it is what user SQEs (aio_add_sqe) need.
  let why = ioUringUnavailable();
  if (why === null) {
    try {
      const mon = fdmonIoUring.create(host);
      rule.got();
      return { mon, requested: "auto", source, fallback: null };
    } catch (e) {
      if (!(e instanceof SysError)) throw e;
      why = unavailable(e);
    }
  }
  if (rule.needed()) {
    throw new FdMonUnavailableError(
      "io_uring",
      why.errno,
      `Failed to initialize io_uring (${why.message}); another context of this process ` +
        "has io_uring, and then every context must have it",
      why.cause,
    );
  }
  return {
    mon: fdmonPoll.create(host),
    requested: "auto",
    source,
    fallback: `io_uring unavailable: ${why.message}`,
  };
}

/** One line: the monitor, how it was chosen, and any fallback. */
export function setupReason(s: FdMonSetup): string {
  if (s.requested !== "auto") return `${s.requested}: ${s.source}`;
  if (s.fallback === null) return `io_uring (auto): ${s.source}`;
  return `${FALLBACK_WHAT} (auto; ${s.fallback}): ${s.source}`;
}

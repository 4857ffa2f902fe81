/**
 * getrlimit(2) and setrlimit(2), for programs (benchmarks, servers) that
 * need more file descriptors than the default soft limit allows.
 *
 * Thread: any isolate; limits belong to the whole process.
 *
 * @module
 */
import { errno, libc } from "./_libc.ts";
import { SysError } from "./errno.ts";

/**
 * `RLIMIT_NOFILE`: one more than the highest fd number the process may open.
 *
 * Counterpart: `RLIMIT_NOFILE` in `<sys/resource.h>` (Linux value).
 *
 * @example Reading the fd limit
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { getrlimit, RLIMIT_NOFILE } from "@aioloop/aioloop/sys";
 * assertEquals(getrlimit(RLIMIT_NOFILE).soft > 0, true);
 * ```
 */
export const RLIMIT_NOFILE = 7;

/** `RLIM_INFINITY` as rlim_t. */
const RLIM_INFINITY = 0xffff_ffff_ffff_ffffn;

/** A soft and a hard limit; `Infinity` stands for `RLIM_INFINITY`. */
export interface ResourceLimit {
  /** The limit in force (`rlim_cur`). */
  soft: number;
  /** The ceiling an unprivileged process may raise the soft limit to (`rlim_max`). */
  hard: number;
}

const buf = new BigUint64Array(2);

function fromRlim(v: bigint): number {
  return v === RLIM_INFINITY ? Infinity : Number(v);
}

function toRlim(v: number, what: string): bigint {
  if (v === Infinity) return RLIM_INFINITY;
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new RangeError(`${what} must be a non-negative safe integer or Infinity, got ${v}`);
  }
  return BigInt(v);
}

/**
 * Reads a resource limit of the process.
 *
 * Counterpart: getrlimit(2).
 *
 * @param resource A resource number such as {@linkcode RLIMIT_NOFILE}.
 * @returns The soft and hard limits.
 * @throws {SysError} EINVAL for an unknown resource.
 *
 * @example The fd limits
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { getrlimit, RLIMIT_NOFILE } from "@aioloop/aioloop/sys";
 * const { soft, hard } = getrlimit(RLIMIT_NOFILE);
 * assertEquals(soft <= hard, true);
 * ```
 */
export function getrlimit(resource: number): ResourceLimit {
  if (libc().getrlimit(resource, buf) < 0) throw new SysError(errno(), "getrlimit");
  return { soft: fromRlim(buf[0]), hard: fromRlim(buf[1]) };
}

/**
 * Sets a resource limit of the process. An unprivileged process may move
 * the soft limit anywhere up to the hard limit, and may lower the hard one.
 *
 * Counterpart: setrlimit(2).
 *
 * @param resource A resource number such as {@linkcode RLIMIT_NOFILE}.
 * @param limit The new soft and hard limits.
 * @throws {RangeError} If a limit is not a non-negative safe integer or Infinity.
 * @throws {SysError} EPERM above the hard limit, EINVAL if soft > hard.
 *
 * @example Raising the soft fd limit to the hard one
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { getrlimit, RLIMIT_NOFILE, setrlimit } from "@aioloop/aioloop/sys";
 * const lim = getrlimit(RLIMIT_NOFILE);
 * setrlimit(RLIMIT_NOFILE, { soft: lim.hard, hard: lim.hard });
 * assertEquals(getrlimit(RLIMIT_NOFILE).soft === lim.hard, true);
 * setrlimit(RLIMIT_NOFILE, lim);
 * ```
 */
export function setrlimit(resource: number, limit: ResourceLimit): void {
  buf[0] = toRlim(limit.soft, "Soft limit");
  buf[1] = toRlim(limit.hard, "Hard limit");
  if (libc().setrlimit(resource, buf) < 0) throw new SysError(errno(), "setrlimit");
}

/**
 * Makes sure the process may open fds numbered below `want`: raises the
 * soft `RLIMIT_NOFILE` toward the hard limit if needed (never lowers it).
 *
 * Counterpart: none (what `ulimit -n` does in a shell).
 *
 * @param want The fd count wanted.
 * @returns The soft limit now in force, which is below `want` when the
 * hard limit does not allow that much.
 * @throws {RangeError} If `want` is not a non-negative safe integer.
 *
 * @example Room for 10 000 fds
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { ensureNofile } from "@aioloop/aioloop/sys";
 * const soft = ensureNofile(1024);
 * assertEquals(soft >= 1024, true);
 * ```
 */
export function ensureNofile(want: number): number {
  if (!Number.isSafeInteger(want) || want < 0) {
    throw new RangeError(`Wanted fd count must be a non-negative safe integer, got ${want}`);
  }
  const lim = getrlimit(RLIMIT_NOFILE);
  if (lim.soft >= want) return lim.soft;
  const soft = Math.min(want, lim.hard);
  setrlimit(RLIMIT_NOFILE, { soft, hard: lim.hard });
  return soft;
}

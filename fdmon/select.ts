/**
 * Choosing an fd monitor: which backends this machine supports, and the one
 * a new context gets (an explicit choice, else `AIOLOOP_FDMON`, else `auto`).
 *
 * @module
 */
import { fdmonEpoll } from "./epoll.ts";
import { fdmonIoUring } from "./io_uring.ts";
import { fdmonPoll } from "./poll.ts";
import type { FdMonName, FdMonOps } from "./fdmon_ops.ts";
import { AUTO_WHAT, type Choice, ENV_VAR, NAMES, resolveChoice } from "./_choice.ts";
import { FdMonUnavailableError } from "./fdmon_unavailable_error.ts";
import { ioUringUnavailable } from "./_io_uring_probe.ts";

// Every backend by name (null: not implemented).
const BACKENDS: Readonly<Record<FdMonName, FdMonOps | null>> = Object.freeze({
  poll: fdmonPoll,
  epoll: fdmonEpoll,
  io_uring: fdmonIoUring,
});

let supportedCache: FdMonName[] | undefined;

/**
 * The fd monitors this machine supports, probed once per isolate (the
 * epoll probe opens and closes one epoll fd; the io_uring probe sets up a
 * ring and makes one NOP round trip). `poll` is always listed.
 *
 * Counterpart: none in QEMU (its build picks backends); the parity suite
 * runs once per listed backend.
 *
 * Thread: any isolate (each probes for itself).
 *
 * @returns The supported backend names, `poll` first.
 *
 * @example Running something on every backend
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext } from "@aioloop/aioloop";
 * import { supportedFdMons } from "@aioloop/aioloop/fdmon";
 * const names = supportedFdMons();
 * assertEquals(names[0], "poll");
 * for (const fdmon of names) {
 *   using ctx = AioContext.create({ fdmon });
 *   let ran = false;
 *   ctx.bhScheduleOneshot(() => ran = true);
 *   ctx.poll(false);
 *   assertEquals(ran, true);
 * }
 * ```
 */
export function supportedFdMons(): FdMonName[] {
  if (supportedCache === undefined) {
    supportedCache = NAMES.filter((name) => BACKENDS[name]?.supported() ?? false);
  }
  return [...supportedCache];
}

/**
 * Picks the fd monitor for a new context. An explicit `choice` wins; without
 * one, `AIOLOOP_FDMON` is read if env access to it is already granted (it
 * is never prompted for); else `auto`. `auto` is `io_uring` where the kernel
 * allows it (as QEMU 10.2 has it: it is what `aio_add_sqe()` needs), else
 * `poll`, which switches a context to `epoll` once it polls 64 fds or more.
 * A context made by `AioContext.create` also falls back when its own ring
 * cannot be set up, and says why (`ctx.fdmonInfo()`).
 *
 * Without `--allow-env=AIOLOOP_FDMON` (or `--allow-env`) the variable is
 * **silently ignored**: a library must neither prompt nor print. Ask
 * {@linkcode fdmonChoiceReason} to learn which choice was made and why.
 *
 * Counterpart: the backend choice of `aio_context_setup()`.
 *
 * Thread: any isolate.
 *
 * @param choice `"poll"`, `"epoll"`, `"io_uring"` or `"auto"`; undefined
 * defers to `AIOLOOP_FDMON`, then `auto`.
 * @returns The backend to create the context's monitor with.
 * @throws {TypeError} If the name (given or from `AIOLOOP_FDMON`) is unknown.
 * @throws {FdMonUnavailableError} If the backend does not work here
 * (io_uring disabled by `kernel.io_uring_disabled` or seccomp, say); its
 * `code` names the errno.
 *
 * @example Explicit and automatic choices
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { resolveFdMon } from "@aioloop/aioloop/fdmon";
 * assertEquals(resolveFdMon("poll").name, "poll");
 * // io_uring where the kernel allows it, else poll (upgrading to epoll at 64 fds):
 * assertEquals(["io_uring", "poll"].includes(resolveFdMon("auto").name), true);
 * ```
 */
export function resolveFdMon(choice?: FdMonName | "auto"): FdMonOps {
  const name = resolveChoice(choice).name;
  if (name === "auto") return fdmonIoUring.supported() ? fdmonIoUring : fdmonPoll;
  const ops = BACKENDS[name];
  if (ops === null) {
    throw new Deno.errors.NotSupported(`The ${name} fd monitor is not implemented yet`);
  }
  if (!ops.supported()) {
    const why = name === "io_uring" ? ioUringUnavailable() : null;
    throw new FdMonUnavailableError(
      name,
      why?.errno ?? 0,
      `The ${name} fd monitor is not supported here: ${why?.message ?? "its probe failed"}`,
      why?.cause,
    );
  }
  return ops;
}

/**
 * Says which fd monitor a new context made with `choice` gets, and why, in
 * one line: chosen by the caller, taken from `AIOLOOP_FDMON`, or the default
 * because the variable is unset or **ignored for want of env permission**
 * (the case {@linkcode resolveFdMon} cannot report, since it never prompts
 * or prints). Nothing is probed and nothing throws: an unknown name in
 * `AIOLOOP_FDMON` is reported as such.
 *
 * Counterpart: none (QEMU's backend choice is fixed at build time). What a
 * context actually got, fallback included, is `ctx.fdmonInfo().reason`.
 *
 * Thread: any isolate.
 *
 * @param choice As for {@linkcode resolveFdMon}: a name, `"auto"`, or
 * undefined to defer to `AIOLOOP_FDMON`.
 * @returns A sentence such as `auto (io_uring where the kernel allows it,
 * else poll moving to epoll at 64 fds): AIOLOOP_FDMON ignored: no env
 * permission (run with --allow-env=AIOLOOP_FDMON)`.
 *
 * @example Why a context got its fd monitor
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { fdmonChoiceReason } from "@aioloop/aioloop/fdmon";
 * assertEquals(fdmonChoiceReason("epoll"), "epoll: chosen by the caller");
 * // With no choice, the variable decides if it may be read:
 * const why = fdmonChoiceReason();
 * assertEquals(/AIOLOOP_FDMON/.test(why), true);
 * ```
 */
export function fdmonChoiceReason(choice?: FdMonName | "auto"): string {
  if (choice !== undefined) {
    return `${choice === "auto" ? AUTO_WHAT : String(choice)}: chosen by the caller`;
  }
  let c: Choice;
  try {
    c = resolveChoice();
  } catch (e) {
    if (!(e instanceof TypeError)) throw e;
    return `${ENV_VAR}="${
      Deno.env.get(ENV_VAR)
    }" is not an fd monitor: creating a context throws a TypeError`;
  }
  return `${c.name === "auto" ? AUTO_WHAT : c.name}: ${c.source}`;
}

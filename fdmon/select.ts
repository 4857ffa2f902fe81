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

// Every backend by name (null: not implemented). io_uring is not the auto
// choice (yet): QEMU's aio_context_setup() tries it first.
const BACKENDS: Readonly<Record<FdMonName, FdMonOps | null>> = Object.freeze({
  poll: fdmonPoll,
  epoll: fdmonEpoll,
  io_uring: fdmonIoUring,
});
const NAMES: readonly FdMonName[] = ["poll", "epoll", "io_uring"];
const ENV_VAR = "AIOLOOP_FDMON";

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

function envGranted(): boolean {
  // Never prompt: a library must not stop a script to ask for env access.
  return Deno.permissions.querySync({ name: "env", variable: ENV_VAR }).state === "granted";
}

function readEnvChoice(): string | undefined {
  if (!envGranted()) return undefined;
  const value = Deno.env.get(ENV_VAR);
  return value === "" ? undefined : value;
}

function autoFdMon(): FdMonOps {
  // The fastest that works: poll, which moves a context to epoll at 64 fds
  // when epoll works (QEMU's choice when io_uring is missing).
  return fdmonPoll;
}

/**
 * Picks the fd monitor for a new context. An explicit `choice` wins; without
 * one, `AIOLOOP_FDMON` is read if env access to it is already granted (it
 * is never prompted for); else `auto`. `auto` is the fastest backend that
 * works: for now `poll`, which switches a context to `epoll` once it polls
 * 64 fds or more, as QEMU does where io_uring is missing.
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
 * @throws {Deno.errors.NotSupported} If the backend does not work here
 * (io_uring disabled by `kernel.io_uring_disabled` or seccomp, say).
 *
 * @example Explicit and automatic choices
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { resolveFdMon } from "@aioloop/aioloop/fdmon";
 * assertEquals(resolveFdMon("poll").name, "poll");
 * assertEquals(resolveFdMon("auto").name, "poll"); // upgrades to epoll at 64 fds
 * ```
 */
export function resolveFdMon(choice?: FdMonName | "auto"): FdMonOps {
  let name: unknown = choice;
  let from = "fd monitor";
  if (name === undefined) {
    name = readEnvChoice() ?? "auto";
    from = `${ENV_VAR} value`;
  }
  if (name === "auto") return autoFdMon();
  if (typeof name !== "string" || !Object.hasOwn(BACKENDS, name)) {
    throw new TypeError(
      `Unknown ${from} ${
        typeof name === "string" ? `"${name}"` : String(name)
      }: expected "poll", "epoll", "io_uring" or "auto"`,
    );
  }
  const ops = BACKENDS[name as FdMonName];
  if (ops === null) {
    throw new Deno.errors.NotSupported(`The ${name} fd monitor is not implemented yet`);
  }
  if (!ops.supported()) {
    throw new Deno.errors.NotSupported(`The ${name} fd monitor is not supported by this kernel`);
  }
  return ops;
}

const AUTO_WHAT = "auto (poll, moving to epoll at 64 fds)";

/**
 * Says which fd monitor a new context made with `choice` gets, and why, in
 * one line: chosen by the caller, taken from `AIOLOOP_FDMON`, or the default
 * because the variable is unset or **ignored for want of env permission**
 * (the case {@linkcode resolveFdMon} cannot report, since it never prompts
 * or prints). Nothing is probed and nothing throws: an unknown name in
 * `AIOLOOP_FDMON` is reported as such.
 *
 * Counterpart: none (QEMU's backend choice is fixed at build time).
 *
 * Thread: any isolate.
 *
 * @param choice As for {@linkcode resolveFdMon}: a name, `"auto"`, or
 * undefined to defer to `AIOLOOP_FDMON`.
 * @returns A sentence such as `auto (poll, moving to epoll at 64 fds):
 * AIOLOOP_FDMON ignored: no env permission (run with
 * --allow-env=AIOLOOP_FDMON)`.
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
  if (!envGranted()) {
    return `${AUTO_WHAT}: ${ENV_VAR} ignored: no env permission ` +
      `(run with --allow-env=${ENV_VAR})`;
  }
  const value = Deno.env.get(ENV_VAR);
  if (value === undefined || value === "") return `${AUTO_WHAT}: ${ENV_VAR} not set`;
  if (value === "auto") return `${AUTO_WHAT}: from ${ENV_VAR}`;
  if (!Object.hasOwn(BACKENDS, value)) {
    return `${ENV_VAR}="${value}" is not an fd monitor: creating a context throws a TypeError`;
  }
  return `${value}: from ${ENV_VAR}`;
}

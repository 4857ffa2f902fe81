// Where a context's fd monitor choice comes from: the caller, else
// AIOLOOP_FDMON (read only when env access to it is already granted), else
// auto. Shared by select.ts (the public answers) and _setup.ts (what a new
// context gets).
import type { FdMonName } from "./fdmon_ops.ts";

/** The environment variable that picks the fd monitor. */
export const ENV_VAR = "AIOLOOP_FDMON";

/** Every backend name, in the order supportedFdMons() lists them. */
export const NAMES: readonly FdMonName[] = ["poll", "epoll", "io_uring"];

/** What `auto` means, for reasons given without probing. */
export const AUTO_WHAT = "auto (io_uring where the kernel allows it, else poll moving to epoll " +
  "at 64 fds)";

/** What an `auto` context that did not get io_uring uses. */
export const FALLBACK_WHAT = "poll, moving to epoll at 64 fds";

/** A choice and where it came from ("chosen by the caller", "from AIOLOOP_FDMON" ...). */
export interface Choice {
  name: FdMonName | "auto";
  source: string;
}

function envGranted(): boolean {
  // Never prompt: a library must not stop a script to ask for env access.
  return Deno.permissions.querySync({ name: "env", variable: ENV_VAR }).state === "granted";
}

function checkName(name: unknown, from: string): FdMonName | "auto" {
  if (name === "auto" || (typeof name === "string" && (NAMES as string[]).includes(name))) {
    return name as FdMonName | "auto";
  }
  throw new TypeError(
    `Unknown ${from} ${
      typeof name === "string" ? `"${name}"` : String(name)
    }: expected "poll", "epoll", "io_uring" or "auto"`,
  );
}

/**
 * Resolves a choice: the caller's, else AIOLOOP_FDMON's, else auto.
 * Throws TypeError for an unknown name.
 */
export function resolveChoice(choice?: unknown): Choice {
  if (choice !== undefined) {
    return { name: checkName(choice, "fd monitor"), source: "chosen by the caller" };
  }
  if (!envGranted()) {
    return {
      name: "auto",
      source: `${ENV_VAR} ignored: no env permission (run with --allow-env=${ENV_VAR})`,
    };
  }
  const value = Deno.env.get(ENV_VAR);
  if (value === undefined || value === "") return { name: "auto", source: `${ENV_VAR} not set` };
  return { name: checkName(value, `${ENV_VAR} value`), source: `from ${ENV_VAR}` };
}

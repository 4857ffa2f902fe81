// Deno's sanitizers miss FFI fds and Workers: tests count /proc/self/fd.
export function openFdCount(): number {
  let n = 0;
  for (const _ of Deno.readDirSync("/proc/self/fd")) n++;
  return n;
}

/** Runs fn and asserts the process holds as many fds afterwards. */
export async function assertNoFdLeak(fn: () => unknown | Promise<unknown>): Promise<void> {
  const before = openFdCount();
  await fn();
  const after = openFdCount();
  if (after !== before) throw new Error(`fd leak: ${before} fds before, ${after} after`);
}

/** The fd monitors to run parity tests on: every one this machine supports. */
export { supportedFdMons } from "../fdmon/mod.ts";

// call_rcu callbacks run under the BQL once the process has one in use
// (QEMU's call_rcu thread takes it around each batch). rcu/ sits below cpus/
// and knows the BQL only through these hooks.
import { rcuSetBqlHooks } from "../rcu/call_rcu.ts";
import { bqlLock, bqlLocked, bqlUnlock } from "./bql.ts";

let installed = false;

/** Installs the BQL as call_rcu's lock in this isolate (idempotent). */
export function useBqlForCallRcu(): void {
  if (installed) return;
  installed = true;
  rcuSetBqlHooks({ locked: bqlLocked, lock: bqlLock, unlock: bqlUnlock });
}

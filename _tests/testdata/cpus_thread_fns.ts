// Worker side of _tests/thread_test.ts: a Worker that runs one named
// function of this module per message and posts back its result.
import { QemuCond } from "../../thread/cond.ts";
import { QemuEvent } from "../../thread/event.ts";
import { QemuMutex } from "../../thread/mutex.ts";
import { QemuRecMutex } from "../../thread/rec_mutex.ts";
import { QemuSemaphore } from "../../thread/semaphore.ts";
import type { SharedWordHandle } from "../../thread/shared_word.ts";
import { QemuSpin } from "../../thread/spin.ts";

/** Indices of the Int32Array `sh` every function gets. */
export const SH = {
  /** Set to 1 once the function is about to block (or started). */
  STARTED: 0,
  /** How many waits returned. */
  RETURNED: 1,
  /** The non-atomic counter of the exclusion tests. */
  COUNTER: 2,
  /** The condition of the condvar tests. */
  FLAG: 3,
  /** Ping-pong turn. */
  TURN: 4,
  SIZE: 8,
} as const;

interface Arg {
  sh: Int32Array;
  h: SharedWordHandle;
  h2?: SharedWordHandle;
  n?: number;
  me?: number;
}

const FNS: Record<string, (a: Arg) => unknown> = {
  eventWait(a) {
    const ev = new QemuEvent(a.h);
    Atomics.store(a.sh, SH.STARTED, 1);
    ev.wait();
    Atomics.add(a.sh, SH.RETURNED, 1);
  },
  // One side of the set/reset/wait loop: wait for my event, reset it, set
  // the peer's; both sides alternate, so a lost wake hangs.
  eventPingPong(a) {
    const mine = new QemuEvent(a.h), peer = new QemuEvent(a.h2!);
    for (let i = 0; i < a.n!; i++) {
      mine.wait();
      mine.reset();
      peer.set();
    }
    return a.n;
  },
  mutexHammer(a) {
    const m = new QemuMutex(a.h);
    for (let i = 0; i < a.n!; i++) {
      m.lock();
      // Deliberately non-atomic: only mutual exclusion keeps the total.
      a.sh[SH.COUNTER] = a.sh[SH.COUNTER] + 1;
      m.unlock();
    }
  },
  recMutexHammer(a) {
    const m = new QemuRecMutex(a.h);
    for (let i = 0; i < a.n!; i++) {
      m.lock();
      m.lock();
      a.sh[SH.COUNTER] = a.sh[SH.COUNTER] + 1;
      m.unlock();
      a.sh[SH.COUNTER] = a.sh[SH.COUNTER] + 1;
      m.unlock();
    }
  },
  spinHammer(a) {
    const s = new QemuSpin(a.h);
    for (let i = 0; i < a.n!; i++) {
      s.lock();
      a.sh[SH.COUNTER] = a.sh[SH.COUNTER] + 1;
      s.unlock();
    }
  },
  semWait(a) {
    const s = new QemuSemaphore(a.h);
    Atomics.add(a.sh, SH.STARTED, 1);
    s.wait();
    Atomics.add(a.sh, SH.RETURNED, 1);
  },
  // "Check under the mutex, then wait" until FLAG is set.
  condWaitFlag(a) {
    const m = new QemuMutex(a.h), c = new QemuCond(a.h2!);
    m.lock();
    Atomics.add(a.sh, SH.STARTED, 1);
    while (a.sh[SH.FLAG] === 0) c.wait(m);
    m.unlock();
    Atomics.add(a.sh, SH.RETURNED, 1);
  },
  // Ping-pong on TURN under one mutex and condvar: side `me` (0 or 1) waits
  // for its turn, passes it on, and signals; a lost wake hangs.
  condPingPong(a) {
    const m = new QemuMutex(a.h), c = new QemuCond(a.h2!);
    for (let i = 0; i < a.n!; i++) {
      m.lock();
      while (a.sh[SH.TURN] !== a.me) c.wait(m);
      a.sh[SH.TURN] = 1 - a.me!;
      c.signal();
      m.unlock();
    }
    return a.n;
  },
};

const self_ = globalThis as unknown as {
  onmessage: ((e: MessageEvent) => void) | null;
  postMessage(v: unknown): void;
};
if (typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== "undefined") {
  self_.onmessage = (e: MessageEvent) => {
    const { fn, arg } = e.data as { fn: string; arg: Arg };
    try {
      self_.postMessage({ ok: true, value: FNS[fn](arg) });
    } catch (err) {
      self_.postMessage({ ok: false, error: String(err) });
    }
  };
}

// The threads of QEMU's tests/unit/test-rcu-list.c (and its simpleq, tailq
// and slist twins), as Workers over an RCU list in a shared arena. Readers
// carry the generation oracle: every (record, generation) pair seen in a
// section is checked again just before the section ends; a change means a
// record was reclaimed under a reader.
import {
  callRcu,
  drainCallRcu,
  type RcuArena,
  rcuAttach,
  type RcuHandle,
  type RcuListHandle,
  RcuQList,
  RcuQSimpleQ,
  RcuQSList,
  RcuQTailQ,
  rcuReadLock,
  rcuReadUnlock,
  rcuRegisterThread,
  rcuUnregisterThread,
  synchronizeRcu,
} from "../../rcu/mod.ts";

/** RCU_Q_LEN. */
export const Q_LEN = 100;
// Shared words.
export const L_GOFLAG = 0;
export const L_RUNNING = 1;
export const L_READS = 2;
export const L_UPDATES = 3;
export const L_REMOVED = 4;
export const L_RECLAIMS = 5;
export const L_VIOLATIONS = 6;
export const L_NODES = 7;
/** Shortest length the updater left the list at (keep-populated mode). */
export const L_MINLEN = 8;
export const L_SLEEP = 9;
export const L_WORDS = 10;

import { GOFLAG_INIT, GOFLAG_RUN, GOFLAG_STOP, prng } from "./rcu_harness.ts";

export type ListType = "qlist" | "qsimpleq" | "qtailq" | "qslist";
export type AnyList = RcuQList | RcuQSimpleQ | RcuQTailQ | RcuQSList;

/** Opens a list of the given type from its handle. */
export function openList(type: ListType, h: RcuListHandle): AnyList {
  switch (type) {
    case "qlist":
      return RcuQList.fromHandle(h);
    case "qsimpleq":
      return RcuQSimpleQ.fromHandle(h);
    case "qtailq":
      return RcuQTailQ.fromHandle(h);
    case "qslist":
      return RcuQSList.fromHandle(h);
  }
}

/** Makes an empty list of the given type. */
export function createList(type: ListType, arena: RcuArena): AnyList {
  switch (type) {
    case "qlist":
      return RcuQList.create(arena);
    case "qsimpleq":
      return RcuQSimpleQ.create(arena);
    case "qtailq":
      return RcuQTailQ.create(arena);
    case "qslist":
      return RcuQSList.create(arena);
  }
}

/** Reclaims a removed record after a grace period (reclaim_list_el). */
export function reclaimRcu(arena: RcuArena, c: Int32Array, elm: number): void {
  callRcu(() => {
    arena.free(elm);
    Atomics.add(c, L_RECLAIMS, 1);
  });
}

interface Start {
  index: number;
  exited: SharedArrayBuffer;
  role: "reader" | "updater";
  type: ListType;
  list: RcuListHandle;
  ctl: SharedArrayBuffer;
  rcu: RcuHandle;
  seed: number;
  keepPopulated: boolean;
  /** Mutation: free removed records at once, with no grace period. */
  noGracePeriod: boolean;
}

function usleep(c: Int32Array, us: number): void {
  Atomics.wait(c, L_SLEEP, 0, us / 1000);
}

function reader(c: Int32Array, list: AnyList): void {
  const arena = list.arena;
  const cap = arena.capacity;
  const seenIdx = new Int32Array(cap);
  const seenGen = new Int32Array(cap);
  let reads = 0;
  let violations = 0;
  rcuRegisterThread();
  Atomics.add(c, L_RUNNING, 1);
  while (Atomics.load(c, L_GOFLAG) === GOFLAG_INIT) usleep(c, 1000);
  while (Atomics.load(c, L_GOFLAG) === GOFLAG_RUN) {
    rcuReadLock();
    let n = 0;
    for (const e of list) {
      seenIdx[n] = e;
      seenGen[n++] = arena.generation(e);
      reads++;
      if (Atomics.load(c, L_GOFLAG) === GOFLAG_STOP || n === cap) break;
    }
    for (let k = 0; k < n; k++) {
      if (arena.generation(seenIdx[k]) !== seenGen[k]) violations++;
    }
    rcuReadUnlock();
    usleep(c, 100);
  }
  rcuUnregisterThread();
  Atomics.add(c, L_READS, reads);
  Atomics.add(c, L_VIOLATIONS, violations);
}

function updater(c: Int32Array, list: AnyList, s: Start): void {
  const arena = list.arena;
  const rand = prng(s.seed);
  let len = Q_LEN;
  let minLen = len;
  let removed = 0;
  let nodes = 0;
  let updates = 0;
  // Not a reader, as in QEMU: it never enters a read section.
  Atomics.add(c, L_RUNNING, 1);
  while (Atomics.load(c, L_GOFLAG) === GOFLAG_INIT) usleep(c, 1000);
  while (Atomics.load(c, L_GOFLAG) === GOFLAG_RUN) {
    let target = rand() % Q_LEN;
    let j = 0;
    for (const e of list.entriesSafe()) {
      if (++j === target) {
        list.remove(e);
        if (s.noGracePeriod) {
          arena.free(e);
          Atomics.add(c, L_RECLAIMS, 1);
        } else {
          reclaimRcu(arena, c, e);
        }
        removed++;
        len--;
        break;
      }
    }
    if (len < minLen) minLen = len;
    if (Atomics.load(c, L_GOFLAG) === GOFLAG_STOP) break;
    target = rand() % Q_LEN;
    j = 0;
    for (const e of list) {
      if (++j === target) {
        list.insertAfter(e, arena.alloc());
        nodes++;
        len++;
        break;
      }
    }
    if (s.keepPopulated) {
      for (; len < Q_LEN; len++, nodes++) list.insertHead(arena.alloc());
    }
    updates += 2;
    if (!s.noGracePeriod) synchronizeRcu();
    // This isolate never returns to its event loop here: run due reclaims.
    if (arena.freeCount < 256) drainCallRcu();
  }
  synchronizeRcu();
  drainCallRcu(); // every reclaim queued here runs before the Worker leaves
  Atomics.add(c, L_NODES, nodes);
  Atomics.add(c, L_UPDATES, updates);
  Atomics.add(c, L_REMOVED, removed);
  Atomics.store(c, L_MINLEN, minLen);
}

// deno-lint-ignore no-explicit-any
const scope = self as any;

scope.onmessage = (ev: MessageEvent<Start>) => {
  const s = ev.data;
  const c = new Int32Array(s.ctl);
  const exited = new Int32Array(s.exited);
  rcuAttach(s.rcu);
  try {
    const list = openList(s.type, s.list);
    if (s.role === "reader") reader(c, list);
    else updater(c, list, s);
  } finally {
    Atomics.store(exited, s.index, 1);
  }
  scope.close();
};

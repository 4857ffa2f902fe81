// RCU's own deterministic tests (no timing luck): Worker agents are held at
// chosen points (inside a read section, blocked in synchronizeRcu) and the
// test checks which grace periods may end. A pre-existing reader is always
// waited for; a later reader never is.
import { assert, assertEquals, assertFalse, assertThrows } from "@std/assert";
import {
  callRcu,
  callRcuPending,
  drainCallRcu,
  RcuArena,
  rcuAttach,
  rcuGracePeriods,
  rcuHandle,
  rcuIsRegistered,
  RcuQList,
  RcuQSimpleQ,
  RcuQTailQ,
  rcuReadDepth,
  rcuReadLock,
  rcuReadUnlock,
  rcuRegisterThread,
  rcuSetBqlHooks,
  rcuSetForceRcuDoorbell,
  rcuUnregisterThread,
  synchronizeRcu,
} from "../rcu/mod.ts";
import { GP_CTR, NREG } from "../rcu/_state.ts";
import { close, eventfd, read } from "../sys/mod.ts";
import { openFdCount } from "./_fd_leak.ts";
import {
  A_ACK,
  A_ARG,
  A_CB,
  A_CMD,
  A_ERR,
  A_FORCED,
  A_REQ,
  A_WORDS,
  CMD_ATTACH,
  CMD_BQL_CYCLE,
  CMD_CALL_RCU,
  CMD_DRAIN,
  CMD_EXIT,
  CMD_LOCK,
  CMD_LOCK_UNTIL_FORCE,
  CMD_REGISTER,
  CMD_SET_DOORBELL,
  CMD_SYNC,
  CMD_UNLOCK,
  FLAG_WORDS,
} from "./testdata/rcu_agent.ts";
import { QemuMutex } from "../thread/mutex.ts";
import { sleep, waitFor, WorkerSet } from "./testdata/rcu_harness.ts";

/** How long "must not return" is observed (ms); no timing is asserted. */
const HOLD_MS = 50;

/** Flags shared by all agents, and a BQL stand-in, for the drain test. */
const flags = new Int32Array(new SharedArrayBuffer(4 * FLAG_WORDS));
const bql = QemuMutex.create();

const registry = (): Int32Array => new Int32Array(rcuHandle().buffer);

/** A Worker that runs one command at a time (testdata/rcu_agent.ts). */
class Agent {
  readonly c: Int32Array = new Int32Array(new SharedArrayBuffer(4 * (A_WORDS + 1)));
  #seq = 0;

  constructor(set: WorkerSet) {
    set.spawn("rcu_agent.ts", {
      ctl: this.c.buffer,
      rcu: rcuHandle(),
      flags: flags.buffer,
      bql: bql.handle,
    });
  }

  /** Starts a command; returns its sequence number. */
  send(cmd: number, arg = 0): number {
    Atomics.store(this.c, A_CMD, cmd);
    Atomics.store(this.c, A_ARG, arg);
    Atomics.store(this.c, A_REQ, ++this.#seq);
    Atomics.notify(this.c, A_REQ);
    return this.#seq;
  }

  finished(seq: number): boolean {
    return Atomics.load(this.c, A_ACK) >= seq;
  }

  /** Waits for a command to finish (watchdog) and reports whether it threw. */
  async done(seq: number, what: string): Promise<boolean> {
    await waitFor(() => this.finished(seq), what);
    return Atomics.load(this.c, A_ERR) === 0;
  }

  async run(cmd: number, what: string, arg = 0): Promise<void> {
    assert(await this.done(this.send(cmd, arg), what), `${what} threw in the Worker`);
  }

  /** Attach + register: a reader thread. */
  async reader(): Promise<this> {
    await this.run(CMD_ATTACH, "attach");
    await this.run(CMD_REGISTER, "register");
    return this;
  }
}

let warmed = false;

/** Runs `fn` with a fresh set of Workers; joins them and checks fds after. */
async function withWorkers(fn: (set: WorkerSet) => Promise<void>): Promise<void> {
  if (!warmed) {
    // Deno opens a few fds for good on the first Worker: not a leak of ours.
    // The first Worker also waits for Deno to type-check its module graph,
    // which took over a minute on a loaded 2-core machine.
    const s = new WorkerSet();
    agent(s);
    await stopAll(s, 240_000);
    warmed = true;
  }
  const fds = openFdCount();
  const set = new WorkerSet();
  let failure: unknown = null;
  try {
    await fn(set);
  } catch (e) {
    failure = e;
  }
  // Every agent gets EXIT: it leaves its sections and unregisters.
  await stopAll(set);
  if (failure) throw failure;
  // A terminated Worker's runtime releases its own fds shortly after.
  await waitFor(() => openFdCount() <= fds, `fds back to ${fds} (now ${openFdCount()})`, 5000);
}

const live = new Map<WorkerSet, Agent[]>();
function agent(set: WorkerSet): Agent {
  const a = new Agent(set);
  const l = live.get(set) ?? [];
  l.push(a);
  live.set(set, l);
  return a;
}
async function stopAll(set: WorkerSet, timeoutMs?: number): Promise<void> {
  for (const a of live.get(set) ?? []) {
    // A Worker blocked in synchronizeRcu finishes once the readers left.
    a.send(CMD_EXIT);
  }
  live.delete(set);
  await set.join(timeoutMs);
}

function ensureMainUnregistered(): void {
  if (rcuIsRegistered()) rcuUnregisterThread();
}

Deno.test("/rcu/api/nesting", async () => {
  await withWorkers(async (set) => {
    rcuReadLock();
    rcuReadLock();
    assertEquals(rcuReadDepth(), 2);
    const w = agent(set);
    await w.run(CMD_ATTACH, "attach");
    const s = w.send(CMD_SYNC);
    await sleep(HOLD_MS);
    assertFalse(w.finished(s), "synchronizeRcu returned while the reader held 2 levels");
    rcuReadUnlock(); // inner: publishes nothing
    assertEquals(rcuReadDepth(), 1);
    await sleep(HOLD_MS);
    assertFalse(w.finished(s), "an inner unlock ended the read section");
    rcuReadUnlock();
    assert(await w.done(s, "synchronizeRcu after the outermost unlock"));
    assertEquals(rcuReadDepth(), 0);
    assertThrows(() => rcuReadUnlock(), Error, "no read section is open");
  });
});

Deno.test("/rcu/api/waits-for-preexisting-reader", async () => {
  await withWorkers(async (set) => {
    const r1 = await agent(set).reader();
    const w = agent(set);
    await w.run(CMD_ATTACH, "attach");
    await r1.run(CMD_LOCK, "R1 lock");
    const s = w.send(CMD_SYNC);
    await sleep(HOLD_MS);
    assertFalse(w.finished(s), "synchronizeRcu returned while a pre-existing reader was inside");
    await r1.run(CMD_UNLOCK, "R1 unlock");
    assert(await w.done(s, "synchronizeRcu after R1 left"));
  });
});

Deno.test("/rcu/api/ignores-later-readers", async () => {
  await withWorkers(async (set) => {
    const r1 = await agent(set).reader();
    const r2 = await agent(set).reader();
    const w = agent(set);
    await w.run(CMD_ATTACH, "attach");
    await r1.run(CMD_LOCK, "R1 lock");
    const ctr = Atomics.load(registry(), GP_CTR);
    const s = w.send(CMD_SYNC);
    // The grace period has started once the counter moved.
    await waitFor(() => Atomics.load(registry(), GP_CTR) !== ctr, "W starting its grace period");
    await r2.run(CMD_LOCK, "R2 lock (a later reader)");
    await sleep(HOLD_MS);
    assertFalse(w.finished(s), "synchronizeRcu returned while R1 was inside");
    await r1.run(CMD_UNLOCK, "R1 unlock");
    // R2 is still inside: W must return anyway (a reader-writer lock would not).
    assert(await w.done(s, "synchronizeRcu while a later reader is inside"));
    await r2.run(CMD_UNLOCK, "R2 unlock");
  });
});

Deno.test("/rcu/api/no-readers-fast-path", () => {
  ensureMainUnregistered();
  const reg = registry();
  assertEquals(Atomics.load(reg, NREG), 0, "a reader from an earlier test is still registered");
  const ctr = Atomics.load(reg, GP_CTR);
  const gps = rcuGracePeriods();
  synchronizeRcu();
  assertEquals(rcuGracePeriods(), gps + 1);
  assertEquals(Atomics.load(reg, GP_CTR), ctr, "the counter moved with no reader registered");
});

Deno.test("/rcu/api/sync-inside-section-throws", () => {
  rcuReadLock();
  try {
    assertThrows(() => synchronizeRcu(), Error, "inside a read section");
    assertThrows(() => drainCallRcu(), Error, "inside a read section");
    assertThrows(() => rcuUnregisterThread(), Error, "inside a read section");
  } finally {
    rcuReadUnlock();
  }
  ensureMainUnregistered();
});

Deno.test("/rcu/api/bad-use-throws", async () => {
  rcuRegisterThread();
  assertThrows(() => rcuRegisterThread(), Error, "already registered");
  rcuUnregisterThread();
  assertThrows(() => rcuUnregisterThread(), Error, "not registered");
  assertThrows(() => rcuAttach({ buffer: new SharedArrayBuffer(8) }), TypeError, "rcuHandle()");
  assertThrows(() => callRcu(42 as unknown as () => void), TypeError, "must be a function");
  assertThrows(() => rcuSetForceRcuDoorbell(3), Error, "not registered");
  // A Worker that was not given the registry cannot take part.
  await withWorkers(async (set) => {
    const a = agent(set);
    assertFalse(await a.done(a.send(CMD_REGISTER), "register without attach"));
    assertFalse(await a.done(a.send(CMD_LOCK), "lock without attach"));
    await a.run(CMD_ATTACH, "attach");
    assertFalse(await a.done(a.send(CMD_LOCK), "lock before register"));
    assertFalse(await a.done(a.send(CMD_UNLOCK), "unbalanced unlock"));
  });
});

Deno.test("/rcu/call_rcu/after-grace-period", async () => {
  await withWorkers(async (set) => {
    const r1 = await agent(set).reader();
    await r1.run(CMD_LOCK, "R1 lock");
    let ran = false;
    callRcu(() => {
      ran = true;
    });
    // Past the batching delay (5 × 10 ms), the grace period is waiting for R1.
    await sleep(HOLD_MS + 60);
    assertFalse(ran, "the callback ran while a pre-existing reader was inside");
    await r1.run(CMD_UNLOCK, "R1 unlock");
    await waitFor(() => ran, "the callback after R1 left");
    assertEquals(callRcuPending(), 0);
  });
});

Deno.test("/rcu/call_rcu/fifo", async () => {
  const order: number[] = [];
  for (let i = 0; i < 40; i++) {
    callRcu(() => {
      order.push(i);
      // A callback queued by a callback runs after a later grace period.
      if (i === 0) callRcu(() => order.push(100));
    });
  }
  await waitFor(() => order.length === 41, "41 callbacks");
  assertEquals(order, [...Array(40).keys(), 100]);
  // And through drain, interleaved with the loop's batching.
  const more: number[] = [];
  for (let i = 0; i < 5; i++) callRcu(() => more.push(i));
  drainCallRcu();
  assertEquals(more, [0, 1, 2, 3, 4]);
  assertEquals(callRcuPending(), 0);
});

Deno.test("/rcu/call_rcu/drain", async () => {
  await withWorkers(async (set) => {
    // A Worker's callbacks: its loop is blocked, so drain runs them, in order.
    const a = agent(set);
    await a.reader();
    await a.run(CMD_CALL_RCU, "queue 3 callbacks", 3);
    assertEquals(Atomics.load(a.c, A_CB), 0, "a callback ran before any grace period");
    await a.run(CMD_DRAIN, "drain in the Worker");
    assertEquals(Atomics.load(a.c, A_CB), 3);

    // A reader stuck in a section: drain forces it out (flag + doorbell).
    const efd = eventfd();
    try {
      const stuck = await agent(set).reader();
      await stuck.run(CMD_SET_DOORBELL, "doorbell", efd);
      const s = stuck.send(CMD_LOCK_UNTIL_FORCE);
      await waitFor(() => Atomics.load(stuck.c, A_ACK) >= s, "the stuck reader's section");
      Atomics.store(stuck.c, A_ACK, s - 1); // re-arm: ACK again when it unlocks
      let ran = false;
      callRcu(() => {
        ran = true;
      });
      drainCallRcu(); // blocks the test thread until the reader is forced out
      assert(ran, "drain returned before an earlier callback ran");
      assertEquals(Atomics.load(stuck.c, A_FORCED), 1, "the reader was not asked to leave");
      const buf = new Uint8Array(8);
      assertEquals(read(efd, buf), 8, "the force doorbell was not rung");
      assertEquals(buf[0] >= 1, true);
      await stuck.done(s, "the stuck reader leaving");
    } finally {
      close(efd);
    }
  });
});

Deno.test("/rcu/arena/bad-input", () => {
  const arena = RcuArena.create({ nodes: 2, dataWords: 1 });
  const a = arena.alloc();
  const b = arena.alloc();
  assertThrows(() => arena.alloc(), RangeError, "all 2 records are in use");
  assertThrows(() => arena.store(a, 1, 0), RangeError, "k must be a payload word");
  assertThrows(() => arena.free(0), RangeError, "node must be a record index");
  arena.free(b);
  assertThrows(() => arena.free(b), Error, "double free");
  assertEquals(arena.freeCount, 1); // nothing lost, nothing freed twice
  assertThrows(() => RcuArena.create({ nodes: 0 }), RangeError, "nodes must be");
  assertThrows(() => RcuArena.fromHandle({ buffer: new SharedArrayBuffer(64) }), TypeError);
  const q = RcuQSimpleQ.create(RcuArena.create({ nodes: 4 }));
  assertThrows(() => q.remove(3), Error, "not in this queue");
  assertThrows(() => q.removeHead(), Error, "empty");
  assertEquals(q.verify(), 0);
  const t = RcuQTailQ.create(RcuArena.create({ nodes: 4 }));
  assertThrows(() => t.remove(2), Error, "not in a queue");
  assertThrows(() => t.insertHead(9), RangeError, "element must be a record index");
});

Deno.test("/rcu/list/insert-before-after-remove", () => {
  // Publish order is what a reader walking forward relies on: an element is
  // reachable only once its own next link is set.
  const arena = RcuArena.create({ nodes: 8 });
  for (const list of [RcuQList.create(arena), RcuQTailQ.create(arena)]) {
    const [a, b, c] = [arena.alloc(), arena.alloc(), arena.alloc()];
    list.insertHead(c);
    list.insertBefore(c, a);
    list.insertAfter(a, b);
    assertEquals([...list], [a, b, c]);
    const again = list instanceof RcuQList
      ? RcuQList.fromHandle(structuredClone(list.handle))
      : RcuQTailQ.fromHandle(structuredClone(list.handle));
    assertEquals([...again], [a, b, c]);
    // A reader standing on a removed element keeps walking.
    list.remove(b);
    assertEquals(list.next(b), c);
    assertEquals([...list], [a, c]);
    assertEquals(list.verify(), 2);
  }
});

Deno.test("/rcu/call_rcu/drain-releases-bql", async () => {
  await withWorkers(async (set) => {
    // A BQL for this isolate: a cross-isolate QemuMutex plus the local flag.
    let held = false;
    rcuSetBqlHooks({
      locked: () => held,
      lock: () => {
        bql.lock();
        held = true;
      },
      unlock: () => {
        held = false;
        bql.unlock();
      },
    });
    Atomics.store(flags, 1, 0);
    try {
      bql.lock();
      held = true;
      // R stays in its section until forced AND until A has held the BQL;
      // A can take it only while this thread, the drainer, has dropped it.
      const r = await agent(set).reader();
      const s = r.send(CMD_LOCK_UNTIL_FORCE, 1);
      await waitFor(() => r.finished(s), "R's section");
      Atomics.store(r.c, A_ACK, s - 1);
      const a = agent(set);
      const sa = a.send(CMD_BQL_CYCLE);
      let underBql: boolean | null = null;
      callRcu(() => {
        underBql = held;
      });
      drainCallRcu();
      assertEquals(held, true, "drain did not take the BQL back");
      assertEquals(underBql, true, "the callback ran without the BQL");
      assertEquals(Atomics.load(r.c, A_FORCED), 1, "nobody took the BQL while drain waited");
      await r.done(s, "R leaving");
      held = false;
      bql.unlock();
      assert(await a.done(sa, "A's BQL cycle"));
    } finally {
      if (held) {
        held = false;
        bql.unlock();
      }
      rcuSetBqlHooks(null);
    }
  });
});

Deno.test("/rcu/call_rcu/throwing-callback", () => {
  const ran: number[] = [];
  callRcu(() => ran.push(1));
  callRcu(() => {
    throw new RangeError("boom");
  });
  callRcu(() => ran.push(3));
  // The rest of the batch runs; drain rethrows the first error; nothing is
  // left queued or run twice.
  assertThrows(() => drainCallRcu(), RangeError, "boom");
  assertEquals(ran, [1, 3]);
  assertEquals(callRcuPending(), 0);
  drainCallRcu();
  assertEquals(ran, [1, 3]);
});

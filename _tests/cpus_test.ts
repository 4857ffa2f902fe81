// vCPU threads, the BQL, run_on_cpu and exclusive sections (system/cpus.c,
// cpu-common.c). QEMU has no unit tests for these; the tests check the
// behaviour listed in QEMU's code, named by the area they cover. Calls that
// block the main thread run under hangGuard (a hang kills the run with a
// message); everything else waits with watchdogs that fail the test.
import { assert, assertEquals, assertGreater, assertThrows } from "@std/assert";
import {
  allCpuThreadsIdle,
  asyncRunOnCpu,
  asyncSafeRunOnCpu,
  bqlLock,
  bqlLocked,
  bqlUnlock,
  cpuPause,
  cpuRemoveSync,
  cpuResume,
  type CPUState,
  cpuThreadIsIdle,
  currentCpu,
  pauseAllVcpus,
  qemuCondTimedwaitBql,
  qemuCpuIsSelf,
  qemuCpuKick,
  qemuInitVcpu,
  resumeAllVcpus,
  runOnCpu,
  type VcpuOptions,
  withBql,
} from "../cpus/mod.ts";
import { QemuCond } from "../thread/cond.ts";
import { cpusBlock, G_VM_RUNNING } from "../cpus/_layout.ts";
import {
  cpusMutation,
  MUT_EXEC_START_IGNORES_PENDING,
  MUT_STARTER_NO_WAIT,
  repairExclusiveState,
  setCpusMutation,
} from "../cpus/_testing.ts";
import { W } from "./testdata/cpus_work.ts";
import { callRcu, drainCallRcu } from "../rcu/call_rcu.ts";
import { hangGuard, sleep, until } from "./_workers.ts";
import { openFdCount, supportedFdMons } from "./_fd_leak.ts";
import {
  mainLoopWait,
  qemuCleanupMainLoop,
  qemuGetAioContext,
  qemuInitMainLoop,
} from "../main_loop.ts";
import { clockAdvanceVirtualNs, clockEnable, QEMUClockType } from "../aio/timer.ts";

const WORK = new URL("./testdata/cpus_work.ts", import.meta.url);
const TEST_ACCEL = { module: WORK, name: "testAccel" };
const DOG = 20_000;
const w = (name: string) => ({ module: WORK, name });

function shared(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(W.SIZE * 4));
}

/** Creates `n` CPUs, runs `fn`, removes them all (even on failure). */
async function withCpus(
  n: number,
  options: VcpuOptions,
  fn: (cpus: CPUState[]) => Promise<void> | void,
): Promise<void> {
  const cpus: CPUState[] = [];
  try {
    using _g = hangGuard(DOG, "vCPU creation");
    for (let i = 0; i < n; i++) {
      cpus.push(withBql(() => qemuInitVcpu({ modules: [WORK], ...options })));
    }
  } catch (e) {
    for (const c of cpus) withBql(() => cpuRemoveSync(c));
    throw e;
  }
  try {
    await fn(cpus);
  } finally {
    if (cpusMutation() !== 0) {
      setCpusMutation(0);
      repairExclusiveState();
    }
    using _g = hangGuard(DOG, "vCPU removal");
    for (const c of cpus) withBql(() => cpuRemoveSync(c));
  }
}

function sync(cpu: CPUState, name: string, arg?: unknown): unknown {
  using _g = hangGuard(DOG, `runOnCpu ${name}`);
  return withBql(() => runOnCpu(cpu, w(name), arg));
}

Deno.test("/cpus/create", async () => {
  const sh = shared();
  await withCpus(2, { accel: "dummy", data: { sh } }, (cpus) => {
    for (const c of cpus) {
      assertEquals(c.created, true, "qemuInitVcpu returns only once the thread is up");
      assert(c.threadId > 0 && c.threadId !== Deno.pid, "the vCPU runs on its own OS thread");
    }
    assert(cpus[0].threadId !== cpus[1].threadId, "mt: one thread per vCPU");
    assertEquals(bqlLocked(), false, "the BQL was released after creation");
    assertEquals(currentCpu(), null);
    assertEquals(qemuCpuIsSelf(cpus[0]), false);
    const who = sync(cpus[1], "whoami") as Record<string, unknown>;
    assertEquals(who, {
      index: cpus[1].cpuIndex,
      isSelf: true,
      current: cpus[1].cpuIndex,
      bql: true,
    });
  });
  assertThrows(() => qemuInitVcpu(), Error, "needs the BQL");
  assertThrows(() => withBql(() => qemuInitVcpu({ accel: "kvm" as never })), TypeError, "accel");
});

Deno.test("/cpus/rcu/vcpu-thread-is-a-reader", async () => {
  // QEMU's vCPU thread functions call rcu_register_thread() first.
  await withCpus(2, { accel: "dummy", data: { sh: shared() } }, (cpus) => {
    for (const cpu of cpus) assertEquals(sync(cpu, "rcuReader"), true);
  });
});

Deno.test("/cpus/rcu/call-rcu-runs-under-the-bql", async () => {
  // Once the process has vCPUs, call_rcu callbacks hold the BQL, as QEMU's
  // call_rcu thread takes it around each batch.
  await withCpus(1, { accel: "dummy", data: { sh: shared() } }, () => {
    let held: boolean | null = null;
    callRcu(() => held = bqlLocked());
    assertEquals(bqlLocked(), false);
    drainCallRcu();
    assertEquals(held, true);
    assertEquals(bqlLocked(), false, "drain gives the BQL back as it found it");
  });
});

Deno.test("/cpus/create/failed-start-throws", () => {
  const bad = { module: new URL("./testdata/no_such_module.ts", import.meta.url), name: "x" };
  using _g = hangGuard(DOG, "failed vCPU start");
  assertThrows(() => withBql(() => qemuInitVcpu({ accel: bad })), Error, "failed to start");
});

Deno.test("/cpus/run-on-cpu/fifo", async () => {
  await withCpus(1, { accel: "dummy", data: { sh: shared() } }, ([cpu]) => {
    sync(cpu, "clearLog");
    for (let i = 0; i < 50; i++) asyncRunOnCpu(cpu, w("logValue"), i);
    sync(cpu, "logValue", "sync");
    const log = sync(cpu, "getLog") as unknown[];
    assertEquals(log, [...Array.from({ length: 50 }, (_, i) => i), "sync"]);
  });
});

Deno.test("/cpus/run-on-cpu/nested", async () => {
  await withCpus(1, { accel: "dummy", data: { sh: shared() } }, ([cpu]) => {
    sync(cpu, "clearLog");
    asyncRunOnCpu(cpu, w("nested"), "a");
    assertEquals(sync(cpu, "getLog"), ["a", "a-nested"], "both ran before the following sync item");
  });
});

Deno.test("/cpus/run-on-cpu/self-inline", async () => {
  await withCpus(1, { accel: "dummy", data: { sh: shared() } }, ([cpu]) => {
    sync(cpu, "clearLog");
    assertEquals(sync(cpu, "selfInline"), ["inline"], "inline, ahead of the queued item");
    assertEquals(sync(cpu, "getLog"), ["inline", "queued"]);
  });
});

Deno.test("/cpus/run-on-cpu/unlisted-module-on-a-running-guest", async () => {
  // The work's module is not in qemuInitVcpu's modules: the vCPU thread
  // imports it with the item still queued, then must run the item before
  // its guest (a `loop` slice only ends at the next kick). Each round uses a
  // module the thread has not seen.
  await withCpus(1, { accel: "loop", data: { sh: shared() } }, async ([cpu]) => {
    await until(() => cpu.guest[0] > 0, DOG, "guest progress");
    for (let n = 0; n < 3; n++) {
      const module = `data:text/javascript,export function plus(cpu, x) { return x + ${n}; }`;
      using _g = hangGuard(DOG, `runOnCpu with unloaded module ${n}`);
      assertEquals(withBql(() => runOnCpu(cpu, { module, name: "plus" }, 40)), 40 + n);
    }
  });
});

Deno.test("/cpus/run-on-cpu/result-and-errors", async () => {
  await withCpus(1, { accel: "dummy", data: { sh: shared() } }, ([cpu]) => {
    assertEquals(sync(cpu, "add", [2, 40]), 42);
    const e = assertThrows(() => sync(cpu, "fail", "boom"), RangeError, "boom");
    assertEquals(e.name, "RangeError");
    assertThrows(() => sync(cpu, "noSuchExport"), TypeError, "not a function");
    assertThrows(
      () => withBql(() => runOnCpu(cpu, w("add"), () => 1)),
      TypeError,
      "cannot be cloned",
    );
    assertThrows(
      () => withBql(() => runOnCpu(cpu, { module: "./rel.ts", name: "x" }, 1)),
      TypeError,
      "absolute URL",
    );
    assertThrows(() => runOnCpu(cpu, w("add"), [1, 2]), Error, "needs the BQL");
    assertEquals(sync(cpu, "add", [1, 2]), 3, "still works after the errors");
  });
});

Deno.test("/cpus/run-on-cpu/halted", async () => {
  const sh = shared();
  await withCpus(1, { accel: TEST_ACCEL, data: { sh } }, async ([cpu]) => {
    await until(() => cpu.guest[0] > 0, DOG, "guest progress");
    Atomics.store(sh, W.HALT + cpu.cpuIndex, 1);
    await until(() => cpu.halted && cpuThreadIsIdle(cpu), DOG, "CPU halted");
    const c0 = cpu.guest[0];
    assertEquals(sync(cpu, "counter"), c0, "work ran on the halted CPU");
    await sleep(20);
    assertEquals(cpu.guest[0], c0, "the guest did not run");
    assert(cpu.halted);
  });
});

Deno.test("/cpus/run-on-cpu/stopped", async () => {
  const sh = shared();
  await withCpus(1, { accel: TEST_ACCEL, data: { sh } }, async ([cpu]) => {
    await until(() => cpu.guest[0] > 0, DOG, "guest progress");
    withBql(() => cpuPause(cpu));
    await until(() => cpu.stopped, DOG, "CPU stopped");
    const c0 = cpu.guest[0];
    assertEquals(sync(cpu, "counter"), c0, "work ran on the paused CPU");
    await sleep(20);
    assertEquals(cpu.guest[0], c0, "the guest stayed paused");
    assert(cpu.stopped);
    withBql(() => cpuResume(cpu));
    await until(() => cpu.guest[0] > c0, DOG, "guest resumed");
  });
});

Deno.test("/cpus/run-on-cpu/dead-cpu-throws", async () => {
  let dead: CPUState | null = null;
  await withCpus(1, { accel: "dummy", data: { sh: shared() } }, ([cpu]) => {
    dead = cpu;
  });
  const cpu = dead!;
  assertEquals(cpu.created, false);
  assertThrows(() => withBql(() => runOnCpu(cpu, w("add"), [1, 2])), Error, "no vCPU thread");
  assertThrows(() => asyncRunOnCpu(cpu, w("add"), [1, 2]), Error, "no vCPU thread");
});

async function excludesAll(mutation: number): Promise<{ moved: number; saw: number }> {
  const sh = shared();
  let r = { moved: 0, saw: 0 };
  await withCpus(3, { accel: TEST_ACCEL, data: { sh } }, async (cpus) => {
    await until(() => cpus.every((c) => c.guest[0] > 0), DOG, "every guest runs");
    setCpusMutation(mutation);
    // One section at a time, each started while the other CPUs run guest
    // code (a section queued on every CPU at once would find the others
    // busy with their own work, which proves nothing).
    let n = 0;
    for (let k = 0; k < 3; k++) {
      for (const c of cpus) {
        const others = cpus.filter((o) => o !== c);
        const c0 = others.map((o) => o.guest[0]);
        await until(() => others.every((o, j) => o.guest[0] > c0[j]), DOG, "the others run");
        asyncSafeRunOnCpu(c, w("exclCheck"), 2);
        n++;
        await until(() => Atomics.load(sh, W.SECTIONS) === n, DOG, "the section ran");
      }
    }
    r = { moved: Atomics.load(sh, W.EXCL_MOVED), saw: Atomics.load(sh, W.STEP_SAW_EXCL) };
  });
  return r;
}

Deno.test("/cpus/exclusive/excludes-all", async () => {
  assertEquals(await excludesAll(0), { moved: 0, saw: 0 });
});

/**
 * What the oracle saw of a mutation. A broken section shows only when the
 * vCPU threads really overlap it, which a loaded 2-core machine may not
 * let happen in one run: up to 8 runs, the first that catches it counts.
 * A run the watchdog stops (the broken protocol left a vCPU stuck) is
 * caught too: the real case would fail the same way.
 */
async function mutationCaught(mutation: number): Promise<number> {
  for (let run = 0; run < 8; run++) {
    let r;
    try {
      r = await excludesAll(mutation);
    } catch (e) {
      if (e instanceof Error && e.message.startsWith("watchdog:")) return 1;
      throw e;
    }
    if (r.moved + r.saw > 0) return r.moved + r.saw;
  }
  return 0;
}

Deno.test("/cpus/exclusive/mutation/starter-not-waiting-must-fail", async () => {
  const caught = await mutationCaught(MUT_STARTER_NO_WAIT);
  assertGreater(caught, 0, "the oracle must catch a starter that does not wait");
});

Deno.test("/cpus/exclusive/mutation/exec-start-ignoring-pending-must-fail", async () => {
  const caught = await mutationCaught(MUT_EXEC_START_IGNORES_PENDING);
  assertGreater(caught, 0, "the oracle must catch cpu_exec_start ignoring pending_cpus");
});

Deno.test("/cpus/exclusive/nesting", async () => {
  const sh = shared();
  await withCpus(2, { accel: TEST_ACCEL, data: { sh } }, async (cpus) => {
    await until(() => cpus.every((c) => c.guest[0] > 0), DOG, "every guest runs");
    for (let k = 0; k < 3; k++) asyncSafeRunOnCpu(cpus[0], w("exclNested"), 2);
    await until(() => Atomics.load(sh, W.SECTIONS) === 3, DOG, "sections ran");
    assertEquals(Atomics.load(sh, W.EXCL_MOVED), 0, "the inner end did not resume the others");
    assertEquals(Atomics.load(sh, W.STEP_SAW_EXCL), 0);
    const c1 = cpus[1].guest[0];
    await until(() => cpus[1].guest[0] > c1, DOG, "the outermost end resumed the others");
  });
});

Deno.test("/cpus/pause-resume", async () => {
  await withCpus(3, { accel: "loop" }, async (cpus) => {
    await until(() => cpus.every((c) => c.guest[0] > 0), DOG, "every guest runs");
    {
      using _g = hangGuard(DOG, "pauseAllVcpus");
      withBql(() => pauseAllVcpus());
    }
    assert(cpus.every((c) => c.stopped), "every CPU stopped on return");
    assertEquals(allCpuThreadsIdle(), true);
    const c0 = cpus.map((c) => c.guest[0]);
    await sleep(30);
    assertEquals(cpus.map((c) => c.guest[0]), c0, "no guest progress while paused");
    // resume_all_vcpus does nothing while the VM is not running.
    const vm = cpusBlock().w;
    Atomics.store(vm, G_VM_RUNNING, 0);
    withBql(() => resumeAllVcpus());
    assert(cpus.every((c) => c.stopped), "still stopped: the VM is not running");
    Atomics.store(vm, G_VM_RUNNING, 1);
    withBql(() => resumeAllVcpus());
    await until(() => cpus.every((c, i) => c.guest[0] > c0[i]), DOG, "every guest resumed");
  });
});

function liveTids(): Set<number> {
  const out = new Set<number>();
  for (const e of Deno.readDirSync("/proc/self/task")) out.add(Number(e.name));
  return out;
}

Deno.test("/cpus/remove-sync", async () => {
  // Warm up once: the first Worker sets up runtime state (and fds) for good.
  await withCpus(1, { accel: "dummy" }, () => {});
  await sleep(50);
  const fd0 = openFdCount();
  let cpus: CPUState[] = [];
  let tids: number[] = [];
  await withCpus(2, { accel: "loop" }, (cs) => {
    cpus = cs;
    tids = cs.map((c) => c.threadId);
    const now = liveTids();
    assert(tids.every((t) => now.has(t)), "each vCPU runs on an OS thread of this process");
  });
  for (const c of cpus) {
    assertEquals(c.created, false, "created is false after the join");
    assertEquals(c.threadState, "exited");
  }
  // Each vCPU Worker's OS thread ends: no Worker is left.
  await until(() => tids.every((t) => !liveTids().has(t)), DOG, "vCPU threads gone");
  await until(() => openFdCount() <= fd0, DOG, `no fd left (${fd0} before)`);
});

Deno.test("/cpus/kick/dedup", async () => {
  await withCpus(1, { accel: "dummy" }, async ([cpu]) => {
    await until(() => !cpu.threadKicked && cpu.threadState === "idle", DOG, "vCPU asleep");
    const k0 = cpu.kicks;
    bqlLock();
    try {
      // The vCPU needs the BQL to process its events: the kicks pile up.
      for (let i = 0; i < 5; i++) qemuCpuKick(cpu);
      assertEquals(cpu.kicks, k0 + 1, "five kicks, one doorbell ring");
      assertEquals(cpu.threadKicked, true);
    } finally {
      bqlUnlock();
    }
    await until(() => !cpu.threadKicked, DOG, "vCPU processed its events");
    qemuCpuKick(cpu);
    assertEquals(cpu.kicks, k0 + 2, "a kick after processing rings again");
  });
});

for (const fdmon of supportedFdMons()) {
  Deno.test(`/cpus/rr/round-robin [${fdmon}]`, async () => {
    qemuInitMainLoop({ fdmon });
    clockEnable(QEMUClockType.VIRTUAL, true);
    const sh = shared();
    try {
      await withCpus(3, { accel: "loop", mode: "rr", data: { sh } }, async (cpus) => {
        const tid = cpus[0].threadId;
        assert(cpus.every((c) => c.threadId === tid), "rr: one thread for every vCPU");
        let kicks = 0;
        for (let p = 1; p <= 3; p++) {
          await until(
            () => cpus.filter((c) => c.guest[0] > 0).length >= p,
            DOG,
            `${p} CPU(s) made progress`,
          );
          if (p === 3) break;
          // One kick period of virtual time: the kick timer exits the
          // running CPU and the thread moves to the next.
          clockAdvanceVirtualNs(100_000_000);
          mainLoopWait(true);
          kicks++;
        }
        assert(kicks <= 3, "every CPU ran within 3 kick periods");
        // Queued work stops the walk: it runs without any further kick.
        asyncRunOnCpu(cpus[2], w("mark"), 7);
        await until(() => Atomics.load(sh, W.MARK) === 7, DOG, "work ran on the rr thread");
      });
    } finally {
      clockEnable(QEMUClockType.VIRTUAL, false);
      qemuCleanupMainLoop();
    }
  });
}

Deno.test("/bql/locked-flag", async () => {
  const sh = shared();
  /** Records bqlLocked() at the moment the thread goes to sleep. */
  class ProbeCond extends QemuCond {
    seen: boolean[] = [];
    override timedWait(m: Parameters<QemuCond["timedWait"]>[0], ms: number): boolean {
      this.seen.push(bqlLocked());
      return super.timedWait(m, ms);
    }
  }
  const cond = new ProbeCond(QemuCond.create().handle);
  await withCpus(1, { accel: "dummy", data: { sh, cond: cond.handle } }, ([cpu]) => {
    bqlLock();
    try {
      assertEquals(bqlLocked(), true);
      // The vCPU can run this only by taking the BQL, which this thread
      // holds except while it sleeps below.
      asyncRunOnCpu(cpu, w("takeBql"));
      const end = performance.now() + DOG;
      while (Atomics.load(sh, W.TOOK) === 0) {
        assert(performance.now() < end, "watchdog: the vCPU never got the BQL");
        qemuCondTimedwaitBql(cond, 100);
      }
      assert(cond.seen.length > 0 && cond.seen.every((v) => v === false), "false while asleep");
      assertEquals(bqlLocked(), true, "held again after the wake");
      assertEquals(Atomics.load(sh, W.VCPU_BQL), 1, "the vCPU held it meanwhile");
      assertEquals(withBql(() => bqlLocked()), true);
      assertEquals(bqlLocked(), true, "withBql did not release a BQL it did not take");
      assertThrows(() => bqlLock(), Error, "already holds");
    } finally {
      bqlUnlock();
    }
    assertEquals(bqlLocked(), false);
    assertThrows(() => bqlUnlock(), Error, "does not hold");
  });
});

for (const fdmon of supportedFdMons()) {
  Deno.test(`/bql/main-loop-drops-around-poll [${fdmon}]`, async () => {
    qemuInitMainLoop({ fdmon });
    const sh = shared();
    const seen: boolean[] = [];
    const ctx = qemuGetAioContext();
    const bh = ctx.bhNew(() => seen.push(bqlLocked()), { shared: true });
    try {
      await withCpus(1, { accel: "dummy", data: { sh, bh: bh.remote() } }, ([cpu]) => {
        using _g = hangGuard(DOG, "mainLoopWait");
        bqlLock();
        try {
          // Queued while this thread holds the BQL: the vCPU can only run
          // it once the main loop drops the BQL for its poll; the work then
          // schedules the BH, which ends the poll.
          asyncRunOnCpu(cpu, w("takeBql"));
          while (seen.length === 0) mainLoopWait(false);
        } finally {
          bqlUnlock();
        }
        assertEquals(Atomics.load(sh, W.TOOK), 1, "the vCPU took the BQL during the poll");
        assertEquals(seen, [true], "the BH ran with the BQL");
        // Without the caller holding it, the iteration takes it itself.
        bh.schedule();
        mainLoopWait(true);
        assertEquals(seen, [true, true]);
        assertEquals(bqlLocked(), false, "and releases it at the end");
      });
    } finally {
      bh.delete();
      qemuCleanupMainLoop();
    }
  });
}

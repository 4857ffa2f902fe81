// Model check of the AioContext: random programs (bottom halves, VIRTUAL
// timers, pipes with fd handlers, nested polls, kicks, GLib iterations of
// the context's GSource, callbacks that change all of these) run against
// the real context and the pure reference model in _tests/model/
// aio_model.ts, in lockstep; every step's callback trace and poll() or
// iteration() result must agree. Seeded, so a failure here reproduces; the long
// run is `deno task soak` (_tests/aio_model_soak.ts).
import { assert, assertEquals, assertGreater, assertThrows } from "@std/assert";
import { clockEnable, clockSetVirtualNs, QEMUClockType } from "../aio/timer.ts";
import type { FdMonName } from "../fdmon/mod.ts";
import { openFdCount, supportedFdMons } from "./_fd_leak.ts";
import type { ModelMutation } from "./model/aio_model.ts";
import { checkModel, Divergence, runProgram } from "./model/lockstep.ts";
import type { Program } from "./model/program.ts";

/** Programs per fd monitor in the normal test run. */
const RUNS = 2000;
/** Fixed seeds: one per monitor, so each explores different programs. */
const SEEDS: Record<FdMonName, number> = { poll: 0x5eed01, epoll: 0x5eed02, io_uring: 0x5eed03 };

function restoreClock(): void {
  clockSetVirtualNs(0);
  clockEnable(QEMUClockType.VIRTUAL, false);
}

for (const fdmon of supportedFdMons()) {
  Deno.test(`aio model: ${RUNS} random programs agree with the reference model [${fdmon}]`, () => {
    const before = openFdCount();
    try {
      const r = checkModel({ fdmon, seed: SEEDS[fdmon], numRuns: RUNS });
      assert(!r.details.failed, r.report ?? "");
      assertEquals(r.details.numRuns, RUNS);
      // The programs did exercise every kind of callback and both results.
      const c = r.coverage;
      for (const kind of ["b", "o", "t", "r", "w", "p", "n"]) {
        assertGreater(c.events[kind] ?? 0, RUNS / 10, `few '${kind}' events: ${JSON.stringify(c)}`);
      }
      assertGreater(c.progress, c.polls / 10);
      assertGreater(c.polls - c.progress, c.polls / 10);
      assertGreater(c.blockingPolls - c.steered, c.polls / 10);
      if (fdmon !== "io_uring") {
        assertGreater(c.dispatched, c.iterations / 10);
        assertGreater(c.iterations - c.dispatched, c.iterations / 10);
      }
    } finally {
      restoreClock();
    }
    assertEquals(openFdCount(), before, "fds leaked by the programs");
  });

  Deno.test(`aio model: the checker fails when the model is wrong [${fdmon}]`, () => {
    const before = openFdCount();
    try {
      const mutations: ModelMutation[] = ["bh-fifo", "timers-first", "no-slices", "no-steal"];
      // Only fdmon-poll defines the dispatch order of ready handlers.
      if (fdmon === "poll") mutations.push("fd-newest-first");
      for (const mutation of mutations) {
        const r = checkModel({ fdmon, seed: SEEDS[fdmon], numRuns: 500, mutation });
        assert(r.details.failed, `mutation ${mutation} was not caught`);
        assert(r.report !== null && r.report.includes("shrunk program:"));
        // The shrunk counterexample differs from the real context, and only
        // because of the mutation: the correct model agrees with it.
        const prog = r.details.counterexample![0];
        assertThrows(() => runProgram(prog, { fdmon, mutation }), Divergence);
        runProgram(prog, { fdmon });
      }
    } finally {
      restoreClock();
    }
    assertEquals(openFdCount(), before, "fds leaked by the programs");
  });
}

// Counterexamples the checker found on io_uring (issue 9 item 3: the wait
// reaped posted completions before submitting the queued re-arms), kept as
// fixed programs that must agree with the model on every monitor.
const P = (pipes: number, ops: Program["ops"]): Program => ({ pipes, bhs: [], timers: [], ops });
const ISSUE_9_3: Record<string, Program> = {
  // A read handler drains its pipe; the next poll must not call it again.
  "handler called again on its drained pipe": P(1, [
    { op: "fd", p: 0, end: "r", scripts: [[{ a: "pr", p: 0, n: 1 }], []] },
    { op: "poll", blocking: false },
    { op: "pw", p: 0, n: 1 },
    { op: "poll", blocking: true },
    { op: "poll", blocking: false },
  ]),
  // Pipe 0's re-arm is still queued when pipe 1's completion is posted: one
  // blocking poll must run both handlers.
  "queued re-arm runs one poll late": P(2, [
    { op: "fd", p: 0, end: "r", scripts: [[{ a: "pr", p: -1, n: 8 }]] },
    { op: "fd", p: 1, end: "r", scripts: [[{ a: "pr", p: -1, n: 8 }]] },
    { op: "poll", blocking: false },
    { op: "pw", p: 0, n: 1 },
    { op: "poll", blocking: false },
    { op: "pw", p: 0, n: 1 },
    { op: "pw", p: 1, n: 1 },
    { op: "poll", blocking: true },
    { op: "poll", blocking: false },
  ]),
};

for (const fdmon of supportedFdMons()) {
  for (const [name, prog] of Object.entries(ISSUE_9_3)) {
    Deno.test({
      name: `aio model: ${name} [${fdmon}]`,
      fn() {
        const before = openFdCount();
        try {
          runProgram(prog, { fdmon, avoid: [] });
        } finally {
          restoreClock();
        }
        assertEquals(openFdCount(), before);
      },
    });
  }
}

// aio_set_fd_handler copies the old node's pfd, revents included, into the
// replacing node, but fdmon-poll's update then passes the new pfd to
// g_source_add_poll(), which zeroes its revents (GLib's
// g_main_context_add_poll_unlocked). So a handler that a BH replaces during
// a GSource dispatch waits for the next iteration's poll. An earlier model
// kept the copied revents; this fixed program pins the GLib behaviour.
const drainOwn: Program["ops"][number] & { op: "fd" } = {
  op: "fd",
  p: 0,
  end: "r",
  scripts: [[{ a: "pr", p: -1, n: 8 }]],
};
const REPLACED_IN_GSOURCE_DISPATCH: Program = {
  pipes: 1,
  bhs: [[[{ a: "fd", p: 0, end: "r", scripts: drainOwn.scripts }]]],
  timers: [],
  ops: [
    drainOwn,
    { op: "iterate" },
    { op: "pw", p: 0, n: 1 },
    { op: "bh", how: "sched", bh: 0 },
    { op: "iterate" },
    { op: "iterate" },
  ],
};

for (const fdmon of supportedFdMons().filter((m) => m !== "io_uring")) {
  Deno.test({
    name:
      `aio model: a handler replaced by a BH in a GSource dispatch runs in the next iteration [${fdmon}]`,
    fn() {
      const before = openFdCount();
      try {
        runProgram(REPLACED_IN_GSOURCE_DISPATCH, { fdmon, avoid: [] });
      } finally {
        restoreClock();
      }
      assertEquals(openFdCount(), before);
    },
  });
}

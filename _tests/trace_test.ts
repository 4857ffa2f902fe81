// The loop timeline (trace/): a known scenario traced across three threads
// (main, a pool worker, an IOThread), the exported document checked against
// the Chrome trace-event format and against the exact events expected on
// each thread; tracing off records nothing; sessions start and stop
// idempotently; bad input gets typed errors.
import { assert, assertEquals, assertInstanceOf, assertThrows } from "@std/assert";
import { AioContext } from "../aio/aio_context.ts";
import { QEMUClockType, SCALE_NS } from "../aio/timer.ts";
import { IOThread } from "../iothread/iothread.ts";
import { getThreadPool } from "../thread_pool/mod.ts";
import { close, pipe, read, write } from "../sys/fd.ts";
import {
  isTracing,
  startTrace,
  stopTrace,
  TraceError,
  type TraceEvent,
  traceEvents,
  traceMark,
  traceToJson,
  writeTraceFileSync,
} from "../trace/mod.ts";
import { blockView, H_IDX, IDX_MASK } from "../trace/_state.ts";
import {
  mainLoopWait,
  qemuCleanupMainLoop,
  qemuGetAioContext,
  qemuInitMainLoop,
} from "../main_loop.ts";
import { openFdCount } from "./_fd_leak.ts";
import { qemuGetThreadId } from "../thread/thread_self.ts";

const FNS = new URL("./testdata/trace_fns.ts", import.meta.url);

/** Checks the trace-event format: fields, phases, B/E balanced per thread, flows paired. */
function assertValidTrace(doc: unknown): TraceEvent[] {
  assert(typeof doc === "object" && doc !== null, "an object");
  const events = (doc as { traceEvents: unknown }).traceEvents;
  assert(Array.isArray(events), "traceEvents is an array");
  const stacks = new Map<number, string[]>();
  const flowsOut = new Map<string, number>();
  for (const e of events as TraceEvent[]) {
    assertEquals(typeof e.name, "string");
    assertEquals(typeof e.ts, "number");
    assertEquals(typeof e.pid, "number");
    assertEquals(typeof e.tid, "number");
    assert(["B", "E", "i", "s", "f", "M"].includes(e.ph), `phase ${e.ph}`);
    const stack = stacks.get(e.tid) ?? [];
    stacks.set(e.tid, stack);
    if (e.ph === "B") stack.push(e.name);
    if (e.ph === "E") assertEquals(stack.pop(), e.name, `E of ${e.name} closes the innermost B`);
    if (e.ph === "s") flowsOut.set(`${e.cat}/${e.id}`, e.ts);
    if (e.ph === "f") {
      const from = flowsOut.get(`${e.cat}/${e.id}`);
      assert(from !== undefined, `flow ${e.cat}/${e.id} arrives after it left`);
      assert(e.ts >= from, `flow ${e.cat}/${e.id} goes forward in time (one clock)`);
      flowsOut.delete(`${e.cat}/${e.id}`);
    }
  }
  for (const [tid, stack] of stacks) assertEquals(stack, [], `spans left open on ${tid}`);
  return events as TraceEvent[];
}

function short(e: TraceEvent): string {
  return `${e.ph} ${e.name}`;
}

/** The fd count once exiting Workers have closed theirs (stable for 200 ms). */
async function steadyFds(): Promise<number> {
  let n = openFdCount(), since = performance.now();
  const deadline = since + 5000;
  while (performance.now() - since < 200 && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
    const m = openFdCount();
    if (m !== n) [n, since] = [m, performance.now()];
  }
  return n;
}

async function settleFds(fds: number): Promise<void> {
  const deadline = performance.now() + 5000;
  while (openFdCount() > fds && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assertEquals(openFdCount(), fds, "fd count after the scenario");
}

// First: sizing works only while no Worker has the buffer yet.
Deno.test("a small buffer drops what does not fit, counts it, and still ends every span", () => {
  using ctx = AioContext.create({ name: "small" });
  startTrace({ capacity: 8 });
  for (let i = 0; i < 5; i++) {
    ctx.bhScheduleOneshot(function many() {});
    ctx.poll(false);
  }
  stopTrace();
  const doc = JSON.parse(traceToJson());
  assert(doc.otherData.dropped > 0, "events past the capacity are counted");
  const events = assertValidTrace(doc);
  // 8 records: the thread name and 7 events, the open ones ended at the stop.
  assertEquals(events.filter((e) => e.ph === "B").length, 4);
  startTrace({ capacity: 1 << 18 });
  stopTrace();
});

/** The traced scenario's facts, for the checks below. */
interface Scenario {
  doc: unknown;
  events: TraceEvent[];
  r: number;
  ioTid: number;
}

/**
 * A BH, a timer, an fd handler on a pipe, one pool job and one IOThread
 * request, traced; the trace goes through a file.
 */
async function runScenario(): Promise<Scenario> {
  const t = await IOThread.create({ id: "traced" });
  // The module is loaded in both threads first, so no import splits a request.
  assertEquals(t.runSync(FNS, "double", 1), 2);
  const ctx = AioContext.create({ name: "scenario" });
  const [r, w] = pipe();
  let timer;
  try {
    let out: unknown;
    getThreadPool(ctx).submitAio({ module: FNS, name: "double" }, 0, (ret) => out = ret);
    while (out === undefined) ctx.poll(true);
    out = undefined;
    assertEquals(await t.run(FNS, "tracingHere"), false, "the IOThread does not trace yet");

    using tracer = startTrace();
    assert(isTracing());
    ctx.bhScheduleOneshot(function traceBh() {});
    ctx.poll(false);
    timer = ctx.timerNew(QEMUClockType.REALTIME, SCALE_NS, () => {}, { name: "traceTimer" });
    timer.mod(0);
    ctx.poll(false);
    ctx.setFdHandler(r, { read: () => void read(r, new Uint8Array(8)) });
    write(w, new Uint8Array([1]));
    ctx.poll(false);
    getThreadPool(ctx).submitAio({ module: FNS, name: "double" }, 21, (ret) => out = ret);
    while (out === undefined) ctx.poll(true);
    assertEquals(out, 42);
    assertEquals(t.runSync(FNS, "double", 2), 4);
    traceMark("done", 1);
    tracer.stop();
    assert(!isTracing());

    const path = Deno.makeTempFileSync({ suffix: ".json" });
    try {
      tracer.writeFileSync(path);
      const doc = JSON.parse(Deno.readTextFileSync(path));
      assertEquals(doc.traceEvents, tracer.events(), "the file holds the session's events");
      return { doc, events: doc.traceEvents, r, ioTid: t.threadId };
    } finally {
      Deno.removeSync(path);
    }
  } finally {
    stopTrace();
    ctx.setFdHandler(r, null);
    timer?.del();
    close(r);
    close(w);
    ctx.destroy();
    await t.stop();
  }
}

Deno.test("a traced scenario: BH, timer, fd handler, pool job and IOThread request on three threads", async () => {
  const { doc, r, ioTid } = await runScenario();
  assertEquals((doc as { displayTimeUnit: string }).displayTimeUnit, "ns");
  assertEquals((doc as { otherData: { dropped: number } }).otherData.dropped, 0);
  const events = assertValidTrace(doc);

  const main = qemuGetThreadId();
  const tids = new Set(events.filter((e) => e.ph !== "M").map((e) => e.tid));
  assertEquals(tids.size, 3, "main, the pool worker, the IOThread");
  const names = new Map(
    events.filter((e) => e.name === "thread_name").map((e) => [e.tid, e.args!.name]),
  );
  assertEquals(names.get(main), "main");
  assertEquals(names.get(ioTid), "IOThread traced");
  const workerTid = [...names].find(([, n]) => n === "thread pool worker")![0];

  // Main: exactly these events, in this order (the context's doorbell fd
  // and the loop phases come and go with timing, so they are left out).
  const onMain = events.filter((e) =>
    e.tid === main && ["bh", "timer", "fd", "thread_pool", "iothread", "user"].includes(e.cat) &&
    (e.cat !== "fd" || e.ph === "E" || e.args?.fd === r)
  ).filter((e, i, a) => !(e.cat === "fd" && e.ph === "E" && a[i - 1]?.cat !== "fd"));
  assertEquals(onMain.map(short), [
    "B traceBh",
    "E traceBh",
    "B timer traceTimer",
    "E timer traceTimer",
    "B fd read",
    "E fd read",
    "i submit double",
    "s submit double",
    "B thread_pool_completion_bh",
    "B complete double",
    "f complete double",
    "E complete double",
    "E thread_pool_completion_bh",
    "i request send",
    "s request send",
    "i request reply read",
    "f request reply read",
    "i done",
  ]);
  assertEquals(onMain[4].args, { fd: r });
  // Every poll of the context is a span holding its wait and dispatch.
  const loop = events.filter((e) => e.tid === main && e.cat !== "__metadata");
  assertEquals(loop[0].name, "aio_poll scenario");
  assert(loop.some((e) => e.name === "wait" && typeof e.args?.timeout_us === "number"));
  assert(loop.some((e) => e.name === "dispatch"));

  const onWorker = events.filter((e) => e.tid === workerTid && e.ph !== "M");
  assertEquals(onWorker.map(short), [
    "B job double",
    "f job double",
    "s job double",
    "E job double",
  ]);
  const onIo = events.filter((e) => e.tid === ioTid && e.cat === "iothread");
  assertEquals(onIo.map(short), [
    "i request take",
    "f request take",
    "B request double",
    "E request double",
    "i request reply",
    "s request reply",
  ]);
  // One clock for all threads: each hop is later than the one before.
  const at = (tid: number, name: string, ph = "i"): number =>
    events.find((e) => e.tid === tid && e.name === name && e.ph === ph)!.ts;
  assert(at(main, "request send") <= at(ioTid, "request take"));
  assert(at(ioTid, "request reply") <= at(main, "request reply read"));
  assert(at(main, "submit double") <= at(workerTid, "job double", "B"));
  assert(at(workerTid, "job double", "E") <= at(main, "complete double", "B"));
});

Deno.test("tracing leaks no fd", async () => {
  // Deno keeps a terminated Worker's runtime fds until the next Worker
  // starts: the first run reaches that steady state.
  await runScenario();
  const fds = await steadyFds();
  await runScenario();
  await settleFds(fds);
});

Deno.test("tracing off records nothing, on any thread", async () => {
  startTrace();
  stopTrace();
  const t = await IOThread.create({ id: "untraced" });
  try {
    using ctx = AioContext.create();
    ctx.bhScheduleOneshot(() => {});
    ctx.poll(false);
    let out: unknown;
    getThreadPool(ctx).submitAio({ module: FNS, name: "double" }, 1, (ret) => out = ret);
    while (out === undefined) ctx.poll(true);
    assertEquals(await t.run(FNS, "double", 3), 6);
    assertEquals(await t.run(FNS, "tracingHere"), false);
    traceMark("ignored");
    assertEquals(Atomics.load(blockView()!.hdr, H_IDX) & IDX_MASK, 0, "no record was written");
    assertEquals(traceEvents().map((e) => e.name), ["process_name"]);
  } finally {
    await t.stop();
  }
});

Deno.test("an IOThread that slept through the start records once it wakes", async () => {
  const t = await IOThread.create({ id: "sleeper" });
  try {
    assertEquals(t.runSync(FNS, "double", 1), 2);
    using _tr = startTrace();
    assertEquals(t.runSync(FNS, "tracingHere"), true);
    stopTrace();
    assertEquals(t.runSync(FNS, "tracingHere"), false, "a record after the stop turns it off");
  } finally {
    await t.stop();
  }
});

Deno.test("the main loop's iterations, waits and GSource dispatches are spans", () => {
  qemuInitMainLoop();
  try {
    using _tr = startTrace();
    let ran = false;
    qemuGetAioContext().bhScheduleOneshot(function mainLoopBh() {
      ran = true;
    });
    while (!ran) mainLoopWait(false);
    stopTrace();
    const events = assertValidTrace(JSON.parse(traceToJson()));
    const spans = events.filter((e) => e.ph === "B").map((e) => `${e.cat} ${e.name}`);
    assertEquals(spans[0], "loop main_loop_wait");
    assert(spans.includes("wait main loop poll"), spans.join());
    // The BH runs inside the AioContext's GSource, inside the iteration.
    const bh = spans.indexOf("bh mainLoopBh");
    const gsource = spans.findLastIndex((n, i) => i < bh && n.startsWith("glib gsource "));
    assert(gsource >= 0, spans.join());
    assert(spans.slice(gsource, bh).includes("loop dispatch"), spans.join());
  } finally {
    qemuCleanupMainLoop();
  }
});

Deno.test("start and stop are idempotent; a new session forgets the last one", () => {
  using ctx = AioContext.create();
  const a = startTrace();
  assertEquals(startTrace(), a, "starting while recording returns the session");
  assert(a.active);
  ctx.poll(false);
  stopTrace();
  stopTrace();
  assert(!a.active);
  assert(a.events().some((e) => e.name.startsWith("aio_poll")));
  const b = startTrace();
  assert(b !== a);
  assertEquals(b.events().filter((e) => e.ph !== "M"), [], "the new session starts empty");
  assertThrows(() => a.events(), TraceError);
  {
    using c = startTrace();
    assertEquals(c, b);
  }
  assert(!isTracing(), "disposing the session stops it");
  b.stop();
});

Deno.test("a span open at the stop ends there; an end without its begin is dropped", () => {
  using ctx = AioContext.create();
  // Started inside a BH: the poll and the BH began before the start.
  ctx.bhScheduleOneshot(function starter() {
    startTrace();
  });
  ctx.poll(false);
  ctx.bhScheduleOneshot(function stopper() {
    stopTrace();
  });
  ctx.poll(false);
  const events = assertValidTrace(JSON.parse(traceToJson()));
  const spans = events.filter((e) => e.ph === "B").map((e) => e.name);
  assertEquals(spans, ["aio_poll ctx" + ctx.id, "dispatch", "stopper"]);
});

Deno.test("bad input gets typed errors", async () => {
  assertThrows(() => startTrace(5 as never), TypeError);
  for (const capacity of [0, -1, 1.5, 2 ** 22, NaN, "8" as never]) {
    assertThrows(() => startTrace({ capacity }), RangeError);
  }
  assert(!isTracing());
  // The buffer is shared with Workers by now: its size is fixed.
  const t = await IOThread.create({ id: "errors" });
  try {
    assertThrows(() => startTrace({ capacity: 16 }), TraceError);
    assertEquals(t.runSync(FNS, "startHere"), "TraceError", "a Worker does not drive tracing");
  } finally {
    await t.stop();
  }
  assertThrows(() => writeTraceFileSync(42 as never), TypeError);
  assertThrows(() => writeTraceFileSync(""), TypeError);
  const err = assertThrows(() => writeTraceFileSync("/nonexistent-dir/trace.json"));
  assertInstanceOf(err, Deno.errors.NotFound);
  assertThrows(() => traceMark(1 as never), TypeError);
});

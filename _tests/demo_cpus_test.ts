// The demo's machine (examples/_demo_machine.ts) driven through a pipe:
// `deno task demo --cpus N` starts N vCPU Workers on the loop accelerator;
// `info cpus` lists them with moving counters, `stop` freezes them, `cont`
// resumes them, `cpu-work N` is a run_on_cpu round trip, and `quit` leaves
// no vCPU thread and no fd behind.
import { assert, assertEquals, assertGreater } from "@std/assert";

import { Demo } from "./_demo.ts";

/** `info cpus`, parsed: per CPU its state words and counter. */
async function infoCpus(
  demo: Demo,
  n: number,
): Promise<{ index: number; state: string; counter: number }[]> {
  const from = demo.lines.length;
  await demo.send("info cpus\n");
  const rows = await demo.waitLines(/^cpus: CPU #/, n, from);
  return rows.map((l) => {
    const m = /^cpus: CPU #(\d+): thread \d+ (.*) counter=(\d+)$/.exec(l);
    assert(m !== null, l);
    return { index: Number(m[1]), state: m[2], counter: Number(m[3]) };
  });
}

/** Polls `info cpus` until `ok` holds (watchdog: 20 s). */
async function untilCpus(
  demo: Demo,
  n: number,
  ok: (rows: { state: string; counter: number }[]) => boolean,
  what: string,
): Promise<{ state: string; counter: number }[]> {
  const end = performance.now() + 20_000;
  for (;;) {
    const rows = await infoCpus(demo, n);
    if (ok(rows)) return rows;
    if (performance.now() > end) throw new Error(`watchdog: ${what}: ${JSON.stringify(rows)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("demo --cpus 3: info cpus, stop, cont, cpu-work, rcu, quit", async () => {
  const demo = new Demo(["--cpus", "3", "--status-ms", "0", "--append-ms", "0"]);
  let failed = true;
  try {
    await demo.waitLines(/^demo: type 'help'/, 1, 0);
    const first = await infoCpus(demo, 3);
    assertEquals(first.map((r) => r.index), [0, 1, 2]);
    // Moving counters: every guest runs.
    await untilCpus(
      demo,
      3,
      (rows) => rows.every((r, i) => r.counter > first[i].counter),
      "counters move",
    );

    let from = demo.lines.length;
    await demo.send("stop\n");
    await demo.waitLines(/^stop: 3 vCPU\(s\) stopped$/, 1, from);
    const frozen = await infoCpus(demo, 3);
    assert(frozen.every((r) => r.state.includes("stopped")), JSON.stringify(frozen));
    await new Promise((r) => setTimeout(r, 50));
    assertEquals(
      (await infoCpus(demo, 3)).map((r) => r.counter),
      frozen.map((r) => r.counter),
      "no guest progress while stopped",
    );

    from = demo.lines.length;
    await demo.send("cont\n");
    await demo.waitLines(/^cont: 3 vCPU\(s\) running$/, 1, from);
    const resumed = await untilCpus(
      demo,
      3,
      (rows) => rows.every((r, i) => r.counter > frozen[i].counter),
      "counters move again",
    );
    assert(resumed.every((r) => !r.state.includes("stopped")));

    from = demo.lines.length;
    await demo.send("cpu-work 2\ncpu-work 9\n");
    const [work] = await demo.waitLines(/^cpu-work: /, 1, from);
    const m = /^cpu-work: run_on_cpu to CPU #2 returned in ([\d.]+) us$/.exec(work);
    assert(m !== null, work);
    assertGreater(Number(m[1]), 0);
    await demo.waitLines(/^error: cpu-work needs a vCPU index from 0 to 2$/, 1, from);

    from = demo.lines.length;
    await demo.send("rcu\n");
    const [gp] = await demo.waitLines(/^rcu: /, 1, from);
    assert(/^rcu: grace period in [\d.]+ us$/.test(gp), gp);

    from = demo.lines.length;
    await demo.send("quit\n");
    const [gone] = await demo.waitLines(/^machine: /, 1, from);
    const g =
      /^machine: 3 vCPU\(s\) removed, 0 thread\(s\) left, (\d+) fds \((\d+) before the vCPUs\)$/
        .exec(gone);
    assert(g !== null, gone);
    assertEquals(g[1], g[2], "no fd left by the vCPUs");
    failed = false;
  } finally {
    // A demo stuck after a failed step must not stall the run.
    if (failed) demo.child.kill("SIGKILL");
    const { code, stderr } = await demo.done();
    if (!failed) assertEquals({ code, stderr }, { code: 0, stderr: "" });
  }
});

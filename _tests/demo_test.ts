// The demo (examples/demo.ts) as a user runs it: a subprocess with piped
// stdin, driven line by line; its stdout lines are tagged ("aio:", "timer:").
import { assert, assertEquals, assertStrictEquals } from "@std/assert";

import { DEMO, Demo, ROOT } from "./_demo.ts";

/** Runs the demo to completion with no stdin; returns its exit code and output. */
async function runDemo(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", DEMO, ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

/** The exit line (--report-fds) reports as many fds as at start. */
function assertNoFdLeak(lines: string[]): void {
  const exit = lines.find((l) => l.startsWith("exit:"));
  assert(exit !== undefined, `no exit line in:\n${lines.join("\n")}`);
  const m = /^exit: (\d+) fds open, (\d+) at start$/.exec(exit);
  assert(m !== null, exit);
  assertStrictEquals(m[1], m[2], exit);
}

Deno.test("demo: info aio, bh, timer 50, info timers, then quit exits 0", async () => {
  const demo = new Demo(["--status-ms", "0", "--append-ms", "100"]);
  await demo.waitFor(/^demo: type 'help'/);
  await demo.send("info aio\n");
  await demo.waitFor(/^aio: context 'io-handler'/);
  // Which fd monitor and why (auto: io_uring, or the fallback's reason).
  await demo.waitFor(
    /^aio: {3}fd monitor: (io_uring \(auto\)|poll, moving to epoll at 64 fds \(auto; )/,
  );
  // stdin (fd 0) and the inotify fd are handlers of the iohandler context.
  await demo.waitFor(/^aio: {3}fd 0 \[in\|err\|hup\] read \(stdin\)$/);
  await demo.waitFor(/^aio: {3}fd \d+ \[in\|err\|hup\] read \(inotify /);
  const aio = demo.lines.filter((l) => l.startsWith("aio:"));
  const io = aio.findIndex((l) => l.includes("'io-handler'"));
  assert(aio.findIndex((l) => l.includes("(stdin)")) > io, "stdin is not on the iohandler context");
  assert(
    aio.findIndex((l) => l.includes("(inotify")) > io,
    "inotify is not on the iohandler context",
  );

  await demo.send("bh\n");
  await demo.waitFor(/^bh: ran /);
  await demo.send("timer 50\n");
  await demo.waitFor(/^timer: armed for 50 ms$/);
  await demo.waitFor(/^timer: 50 ms timer fired \(/);
  // A timer far out is still pending however slow the machine is; quit
  // deletes it.
  await demo.send("timer 600000\ninfo timers\n");
  await demo.waitFor(/^timer: armed for 600000 ms$/);
  await demo.waitFor(/^timers: +timer-600000ms in \d/);
  // The demo's own appends to its temp file come back through inotify, line by line.
  await demo.waitFor(/^watch: \S+: tick 1$/);
  await demo.waitFor(/^watch: \S+: tick 2$/);
  await demo.send("help\nnonsense\n");
  await demo.waitFor(/^help: quit /);
  await demo.waitFor(/^error: unknown command 'nonsense'/);
  await demo.send("quit\n");
  await demo.waitFor(/^quit: bye$/);
  const { code, stderr } = await demo.done();
  assertEquals({ code, stderr }, { code: 0, stderr: "" });
  assertNoFdLeak(demo.lines);
});

Deno.test("demo: end of input quits cleanly, piped in one go, with no debug line at exit", async () => {
  const demo = new Demo(["--status-ms", "0"], false);
  await demo.send("info aio\nbh\n");
  await demo.closeStdin();
  const { code, stderr } = await demo.done();
  assertEquals({ code, stderr }, { code: 0, stderr: "" });
  assert(demo.lines.some((l) => l.startsWith("aio: context 'aio-context'")));
  assert(demo.lines.some((l) => l.startsWith("bh: ran")));
  assert(demo.lines.some((l) => l === "eof: end of input, quitting"));
  assertEquals(demo.lines.at(-1), "eof: end of input, quitting");
});

Deno.test("demo: bh and quit in one read: the BH runs, then the demo exits 0", async () => {
  const demo = new Demo(["--status-ms", "0"], false);
  await demo.send("bh\nquit\n");
  const { code, stderr } = await demo.done();
  assertEquals({ code, stderr }, { code: 0, stderr: "" });
  assert(demo.lines.some((l) => l.startsWith("bh: ran")), demo.lines.join("\n"));
});

Deno.test("demo: SIGINT after the first status line exits 0 and removes the temp file", async () => {
  const demo = new Demo(["--status-ms", "200", "--append-ms", "50"]);
  const banner = await demo.waitFor(/^demo: aioloop main loop/);
  const path = /watching (\S+)/.exec(banner)![1];
  await demo.waitFor(/^status: up /);
  await demo.waitFor(/^watch: /);
  demo.child.kill("SIGINT");
  await demo.waitFor(/^signal: SIGINT received, quitting$/);
  const { code, stderr } = await demo.done();
  assertEquals({ code, stderr }, { code: 0, stderr: "" });
  assertNoFdLeak(demo.lines);
  let exists = true;
  try {
    Deno.statSync(path);
  } catch (e) {
    exists = !(e instanceof Deno.errors.NotFound);
  }
  assert(!exists, `temp file ${path} left behind`);
});

Deno.test("demo: --watch prints another file's new lines, not what was there before", async () => {
  const path = Deno.makeTempFileSync({ prefix: "aioloop-demo-test-" });
  try {
    Deno.writeTextFileSync(path, "old line\n");
    const demo = new Demo(["--watch", path, "--status-ms", "0"]);
    await demo.waitFor(/^demo: type 'help'/);
    Deno.writeTextFileSync(path, "hello\nworld\n", { append: true });
    await demo.waitFor(new RegExp(`^watch: ${path}: world$`));
    // A line written in two pieces is printed once, whole.
    Deno.writeTextFileSync(path, "par", { append: true });
    await new Promise((r) => setTimeout(r, 200));
    Deno.writeTextFileSync(path, "tial\n", { append: true });
    await demo.waitFor(new RegExp(`^watch: ${path}: partial$`));
    await demo.closeStdin();
    const { code, stderr } = await demo.done();
    assertEquals({ code, stderr }, { code: 0, stderr: "" });
    const watched = demo.lines.filter((l) => l.startsWith("watch: "));
    assertEquals(watched, [
      `watch: ${path}: hello`,
      `watch: ${path}: world`,
      `watch: ${path}: partial`,
    ]);
    assertNoFdLeak(demo.lines);
    // Not the demo's own file: it is left in place.
    assertStrictEquals(Deno.readTextFileSync(path), "old line\nhello\nworld\npartial\n");
  } finally {
    Deno.removeSync(path);
  }
});

Deno.test("demo: --help prints the options and every command, then exits 0", async () => {
  const { code, stdout, stderr } = await runDemo(["--help"]);
  assertEquals({ code, stderr }, { code: 0, stderr: "" });
  assert(stdout.startsWith("Usage: deno task demo [options]\n"), stdout);
  for (const word of ["--watch <path>", "--status-ms", "--append-ms", "--fdmon", "-h, --help"]) {
    assert(stdout.includes(word), `--help lacks ${word}:\n${stdout}`);
  }
  for (const cmd of ["help", "info aio", "info timers", "bh", "timer <ms>", "quit"]) {
    assert(new RegExp(`^  ${cmd} +\\S`, "m").test(stdout), `--help lacks '${cmd}':\n${stdout}`);
  }
});

Deno.test("demo: a missing --watch file is a one-line error, not a stack trace", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "aioloop-demo-test-" });
  try {
    const path = `${dir}/missing.log`;
    const { code, stdout, stderr } = await runDemo(["--watch", path]);
    assertEquals(
      { code, stdout, stderr },
      { code: 1, stdout: "", stderr: `demo: cannot watch ${path}: no such file\n` },
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("demo: a bad option is a one-line error with exit status 2", async () => {
  assertEquals(await runDemo(["--status-ms", "soon"]), {
    code: 2,
    stdout: "",
    stderr: "demo: option --status-ms needs an integer >= 0\n",
  });
  assertEquals((await runDemo(["--fdmon", "kqueue"])).stderr.split("\n").length, 2);
});

Deno.test("demo: imports only the package's public entry points", () => {
  const exportsMap = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)).exports;
  const names = Object.keys(exportsMap).map((k) => `@aioloop/aioloop${k.slice(1)}`);
  // The demo and its sibling example modules (the vCPU machine), as a user's
  // own project would be split.
  const files = [DEMO, new URL("../examples/_demo_machine.ts", import.meta.url).pathname];
  for (const file of files) {
    const source = Deno.readTextFileSync(file);
    const specifiers = [...source.matchAll(/^\s*(?:import|export)\b[^;]*?from\s+"([^"]+)"/gms)]
      .map((m) => m[1]);
    assert(specifiers.length > 0);
    for (const s of specifiers) {
      if (file === DEMO && s === "./_demo_machine.ts") continue;
      assert(names.includes(s), `${file} imports ${s}, not an entry point`);
    }
  }
});

Deno.test("demo: --trace <file> writes a loop timeline that parses, with the main and vCPU threads", async () => {
  const path = Deno.makeTempFileSync({ prefix: "aioloop-demo-trace-", suffix: ".json" });
  try {
    const demo = new Demo(["--status-ms", "0", "--append-ms", "0", "--trace", path]);
    await demo.waitFor(/^demo: type 'help'/);
    await demo.send("bh\n");
    await demo.waitFor(/^bh: ran /);
    await demo.send("timer 20\n");
    await demo.waitFor(/^timer: 20 ms timer fired/);
    await demo.send("cpu-work 0\n");
    await demo.waitFor(/^cpu-work: /);
    await demo.send("quit\n");
    const { code, stderr } = await demo.done();
    assertEquals({ code, stderr }, { code: 0, stderr: "" });
    assertNoFdLeak(demo.lines);
    const written = demo.lines.find((l) => l.startsWith("trace: "));
    assert(written !== undefined && written.endsWith(` events written to ${path}`), written);

    const doc = JSON.parse(Deno.readTextFileSync(path));
    assert(Array.isArray(doc.traceEvents), "a traceEvents array");
    const events = doc.traceEvents as {
      name: string;
      cat: string;
      ph: string;
      ts: number;
      pid: number;
      tid: number;
      args?: { name?: string };
    }[];
    const open = new Map<number, string[]>();
    for (const e of events) {
      assert(typeof e.ts === "number" && typeof e.pid === "number" && typeof e.tid === "number");
      const stack = open.get(e.tid) ?? [];
      open.set(e.tid, stack);
      if (e.ph === "B") stack.push(e.name);
      if (e.ph === "E") assertEquals(stack.pop(), e.name);
    }
    for (const stack of open.values()) assertEquals(stack, []);
    const threads = events.filter((e) => e.name === "thread_name").map((e) => e.args?.name);
    assert(threads.includes("main") && threads.includes("vCPU 0"), threads.join());
    const names = new Set(events.map((e) => e.name));
    for (const n of ["main_loop_wait", "demo-bh", "run_on_cpu ping"]) assert(names.has(n), n);
  } finally {
    Deno.removeSync(path);
  }
});

Deno.test("demo: --trace into a missing directory fails at start with exit 1", async () => {
  const { code, stdout, stderr } = await runDemo(["--trace", "/nonexistent-dir/out.json"]);
  assertEquals(code, 1);
  assertEquals(stdout, "");
  assert(
    stderr.startsWith("demo: cannot write the trace file /nonexistent-dir/out.json: "),
    stderr,
  );
});

// The demo (examples/demo.ts) as a user runs it: a subprocess with piped
// stdin, driven line by line; its stdout lines are tagged ("aio:", "timer:").
import { assert, assertEquals, assertStrictEquals } from "@std/assert";

const DEMO = new URL("../examples/demo.ts", import.meta.url).pathname;
const ROOT = new URL("..", import.meta.url).pathname;

/** A running demo: write commands, wait for output lines. */
class Demo {
  readonly child: Deno.ChildProcess;
  readonly lines: string[] = [];
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #waiters: { test: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  #reading: Promise<void>;
  #stderr: Promise<string>;

  constructor(args: string[] = []) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", DEMO, ...args],
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#writer = this.child.stdin.getWriter();
    this.#reading = this.#read();
    this.#stderr = new Response(this.child.stderr).text();
  }

  async #read(): Promise<void> {
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of this.child.stdout) {
      pending += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        this.lines.push(line);
        this.#waiters = this.#waiters.filter((w) => {
          if (!w.test(line)) return true;
          w.resolve(line);
          return false;
        });
      }
    }
  }

  /** Resolves with the first line (already seen or to come) matching `re`. */
  waitFor(re: RegExp, timeoutMs = 20_000): Promise<string> {
    const seen = this.lines.find((l) => re.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    const { promise, resolve, reject } = Promise.withResolvers<string>();
    const timer = setTimeout(
      () => reject(new Error(`no line matching ${re} in:\n${this.lines.join("\n")}`)),
      timeoutMs,
    );
    this.#waiters.push({
      test: (l) => re.test(l),
      resolve: (l) => {
        clearTimeout(timer);
        resolve(l);
      },
    });
    return promise;
  }

  async send(text: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(text));
  }

  async closeStdin(): Promise<void> {
    await this.#writer.close();
  }

  /** Waits for the exit; returns the status and stderr. */
  async done(): Promise<{ code: number; stderr: string }> {
    const status = await this.child.status;
    await this.#reading;
    try {
      await this.#writer.close();
    } catch { /* already closed */ }
    return { code: status.code, stderr: await this.#stderr };
  }
}

/** The exit line reports as many fds as at start. */
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
  // The demo's own appends to its temp file come back through inotify.
  await demo.waitFor(/^watch: \S+ grew to \d+ bytes \(\+\d+\)$/);
  await demo.send("help\nnonsense\n");
  await demo.waitFor(/^help: quit /);
  await demo.waitFor(/^error: unknown command 'nonsense'/);
  await demo.send("quit\n");
  await demo.waitFor(/^quit: bye$/);
  const { code, stderr } = await demo.done();
  assertEquals({ code, stderr }, { code: 0, stderr: "" });
  assertNoFdLeak(demo.lines);
});

Deno.test("demo: end of input quits cleanly, piped in one go", async () => {
  const demo = new Demo(["--status-ms", "0"]);
  await demo.send("info aio\nbh\n");
  await demo.closeStdin();
  const { code, stderr } = await demo.done();
  assertEquals({ code, stderr }, { code: 0, stderr: "" });
  assert(demo.lines.some((l) => l.startsWith("aio: context 'aio-context'")));
  assert(demo.lines.some((l) => l.startsWith("bh: ran")));
  assert(demo.lines.some((l) => l === "eof: end of input, quitting"));
  assertNoFdLeak(demo.lines);
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

Deno.test("demo: --watch reports another file's growth", async () => {
  const path = Deno.makeTempFileSync({ prefix: "aioloop-demo-test-" });
  try {
    const demo = new Demo(["--watch", path, "--status-ms", "0"]);
    await demo.waitFor(/^demo: type 'help'/);
    Deno.writeTextFileSync(path, "12345\n", { append: true });
    await demo.waitFor(new RegExp(`^watch: ${path} grew to 6 bytes \\(\\+6\\)$`));
    await demo.closeStdin();
    const { code } = await demo.done();
    assertStrictEquals(code, 0);
    // Not the demo's own file: it is left in place.
    assertStrictEquals(Deno.statSync(path).size, 6);
  } finally {
    Deno.removeSync(path);
  }
});

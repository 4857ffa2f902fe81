// Drives the demo (examples/demo.ts) as a user runs it: a subprocess with
// piped stdin, fed line by line; its stdout lines are tagged ("aio:").

/** The demo's path and the repository root it runs from. */
export const DEMO: string = new URL("../examples/demo.ts", import.meta.url).pathname;
export const ROOT: string = new URL("..", import.meta.url).pathname;

/** A running demo: write commands, wait for output lines. */
export class Demo {
  readonly child: Deno.ChildProcess;
  readonly lines: string[] = [];
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #waiters: { test: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  #reading: Promise<void>;
  #stderr: Promise<string>;

  constructor(args: string[] = [], reportFds = true) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", DEMO, ...(reportFds ? ["--report-fds"] : []), ...args],
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

  /** Waits (watchdog: 20 s) until `n` lines match `re` after line `from`; returns them. */
  async waitLines(re: RegExp, n: number, from: number): Promise<string[]> {
    const end = performance.now() + 20_000;
    for (;;) {
      const got = this.lines.slice(from).filter((l) => re.test(l));
      if (got.length >= n) return got.slice(0, n);
      if (performance.now() > end) {
        throw new Error(`watchdog: no ${n} lines matching ${re} in:\n${this.lines.join("\n")}`);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
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

/**
 * aioloop's demo: a small QEMU-monitor-style console on the main loop that
 * listens to a file and to stdin at once (GLib's classic first exercise),
 * while Deno's own event loop keeps turning beside it.
 *
 * ```sh
 * deno task demo                          # watch a temp file the demo appends to
 * deno task demo --watch /var/log/syslog  # watch another file
 * printf 'info aio\ntimer 50\nquit\n' | deno task demo
 * deno task demo --trace out.json         # write a loop timeline (open it in Perfetto)
 * ```
 *
 * Commands: `help`, `info aio`, `info timers`, `bh`, `timer <ms>`, `quit`,
 * and the machine's `info cpus`, `stop`, `cont`, `cpu-work <n>` (with
 * `--cpus N`, N vCPU Workers on the `loop` accelerator run beside the loop;
 * see examples/_demo_machine.ts). New lines of the watched file are printed
 * as they are written.
 * Ctrl-C (SIGINT) and end of input quit cleanly. Every output line starts
 * with a tag (`status:`, `watch:`, `aio:` ...), so scripts can parse it.
 *
 * What it shows:
 * - stdin (fd 0) and an inotify fd are read through `qemuSetFdHandler`, on
 *   the iohandler AioContext, from the same poll;
 * - `bh` schedules a bottom half on the main AioContext; `timer <ms>` arms
 *   a main-loop timer; a status line comes from a timer every second;
 * - SIGINT arrives through `Deno.addSignalListener` and runs inside the loop
 *   as a BH;
 * - the loop runs with `mainLoopRun()`: when idle, its wait is one parked
 *   nonblocking FFI poll, so Deno's timers and promises run meanwhile (the
 *   demo counts Deno `setInterval` ticks to prove it).
 *
 * Options: see `--help`. A file that cannot be watched (`--watch` of a
 * missing path, say) or a bad option is a one-line error on stderr.
 *
 * The demo imports only the package's public entry points, as a program of
 * yours would. To add a console command, add a row to `COMMANDS`.
 *
 * @module
 */
import {
  iohandlerGetAioContext,
  MAIN_LOOP_POLL_FILL,
  mainLoopAddSignalHandler,
  type MainLoopPoll,
  mainLoopPollAddNotifier,
  mainLoopQuit,
  mainLoopRun,
  qemuGetAioContext,
  qemuInitMainLoop,
  qemuSetFdHandler,
} from "@aioloop/aioloop/main-loop";
import {
  type AioContext,
  clockGetNs,
  type FdMonName,
  mainLoopTlg,
  QEMUClockType,
  type QEMUTimer,
  timerNewMs,
} from "@aioloop/aioloop";
import {
  close,
  IN_ATTRIB,
  IN_DELETE_SELF,
  IN_MODIFY,
  IN_MOVE_SELF,
  inotifyAddWatch,
  inotifyInit,
  isOpenFd,
  read,
  readInotifyEvents,
} from "@aioloop/aioloop/sys";
import {
  type DemoMachine,
  MACHINE_HELP,
  startMachine,
  takeCpusOption,
  warmUpWorkerRuntime,
} from "./_demo_machine.ts";
import { startTrace, stopTrace, traceEvents, writeTraceFileSync } from "@aioloop/aioloop/trace";

// ---- options ---------------------------------------------------------------

interface Options {
  help: boolean;
  watch: string | null;
  statusMs: number;
  appendMs: number;
  fdmon: FdMonName | "auto";
  reportFds: boolean;
  trace: string | null;
}

const USAGE = `Usage: deno task demo [options]

A QEMU-monitor-style console on aioloop's main loop: reads commands from
stdin, watches a file through inotify and prints its new lines, and prints
a status line, while Deno's own event loop keeps turning.

Options:
  --watch <path>        watch this file (default: a temp file the demo appends to)
  --status-ms <n>       status line period in ms; 0: none (default 1000)
  --append-ms <n>       how often the demo appends to its temp file; 0: never (default 700)
  --fdmon <name>        fd monitor: poll, epoll, io_uring or auto (default auto)
  --cpus <n>            vCPU Workers on the loop accelerator, 0 to 16 (default 2)
  --report-fds          at exit, print how many fds are open (for tests)
  --trace <file>        record every thread's loop events; at exit write them to
                        <file> as Chrome trace-event JSON (open it in Perfetto)
  -h, --help            this text

Commands (type 'help' inside): `;

const FDMONS = ["poll", "epoll", "io_uring", "auto"];

function parseArgs(args: string[]): Options {
  const o: Options = {
    help: false,
    watch: null,
    statusMs: 1000,
    appendMs: 700,
    fdmon: "auto",
    reportFds: false,
    trace: null,
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = (): string => {
      const v = args[++i];
      if (v === undefined) throw new UsageError(`option ${a} needs a value`);
      return v;
    };
    const ms = (): number => {
      const v = Number(value());
      if (!Number.isInteger(v) || v < 0) throw new UsageError(`option ${a} needs an integer >= 0`);
      return v;
    };
    if (a === "-h" || a === "--help") o.help = true;
    else if (a === "--watch") o.watch = value();
    else if (a === "--status-ms") o.statusMs = ms();
    else if (a === "--append-ms") o.appendMs = ms();
    else if (a === "--report-fds") o.reportFds = true;
    else if (a === "--trace") o.trace = value();
    else if (a === "--fdmon") {
      const v = value();
      if (!FDMONS.includes(v)) throw new UsageError(`--fdmon must be one of ${FDMONS.join(", ")}`);
      o.fdmon = v as FdMonName | "auto";
    } else throw new UsageError(`unknown option ${a} (see --help)`);
  }
  return o;
}

/** A bad command line: reported in one line, exit status 2. */
class UsageError extends Error {}

/** Reports a fatal error in one line on stderr and exits. */
function fail(message: string, code: number): never {
  Deno.stderr.writeSync(new TextEncoder().encode(`demo: ${message}\n`));
  Deno.exit(code);
}

// ---- output ----------------------------------------------------------------

const encoder = new TextEncoder();
const interactive = Deno.stdin.isTerminal();
const PROMPT = "(aioloop) ";

/** Prints tagged lines to stdout (synchronously: callbacks run inside the loop). */
function say(tag: string, ...lines: string[]): void {
  let text = "";
  for (const l of lines) text += `${tag}: ${l}\n`;
  // In a terminal, keep the prompt after asynchronous output.
  if (interactive) text = `\r${text}${PROMPT}`;
  Deno.stdout.writeSync(encoder.encode(text));
}

function countFds(): number {
  let n = 0;
  for (const _ of Deno.readDirSync("/proc/self/fd")) n++;
  return n;
}

// ---- the console's commands ------------------------------------------------

/** One console command: add a row to `COMMANDS` to add a command. */
interface Command {
  /** The words that select it, e.g. "info aio". */
  name: string;
  /** Its argument, for help ("<ms>"), or "" for none. */
  args: string;
  /** One line of help. */
  help: string;
  /** Runs it with the rest of the line (already trimmed). */
  run: (rest: string) => void;
}

const COMMANDS: Command[] = [
  { name: "help", args: "", help: "this text", run: () => say("help", ...helpLines()) },
  {
    name: "info aio",
    args: "",
    help: "handlers, BHs and fd monitor of the main and iohandler contexts",
    run: () => say("aio", ...describe(mainCtx, "main"), ...describe(ioCtx, "iohandler")),
  },
  { name: "info timers", args: "", help: "pending main-loop timers", run: infoTimers },
  { name: "bh", args: "", help: "schedule a bottom half on the main context", run: scheduleBh },
  {
    name: "timer",
    args: "<ms>",
    help: "arm a main-loop timer that reports when it fires",
    run: armTimer,
  },
  {
    name: "quit",
    args: "",
    help: "leave (so do Ctrl-C and end of input)",
    run: () => {
      say("quit", "bye");
      mainLoopQuit();
    },
  },
];

/** The vCPUs beside the loop (`--cpus N`); their commands follow the table's. */
let machine: DemoMachine | null = null;

function helpLines(): string[] {
  const lines = COMMANDS.map((c) => `${`${c.name} ${c.args}`.trim().padEnd(14)}${c.help}`);
  return [...lines.slice(0, -1), ...MACHINE_HELP, ...lines.slice(-1)];
}

/** Runs a console line: the longest command name that starts it wins. */
function command(line: string): void {
  const words = line.trim().split(/\s+/).filter((w) => w !== "");
  if (words.length === 0) return;
  let best: Command | null = null;
  let used = 0;
  for (const c of COMMANDS) {
    const n = c.name.split(" ");
    if (n.length > used && n.every((w, i) => words[i] === w)) {
      best = c;
      used = n.length;
    }
  }
  const rest = words.slice(used).join(" ");
  if (best === null && machine !== null && machine.command(words[0], words.slice(1).join(" "))) {
    return;
  }
  if (best === null || (best.args === "" && rest !== "")) {
    say("error", `unknown command '${line.trim()}' (try 'help')`);
    return;
  }
  best.run(rest);
}

// ---- setup: options and the watched file, before the loop exists -----------

let opts: Options;
let nCpus = 2;
try {
  const split = takeCpusOption(Deno.args);
  nCpus = split.cpus;
  opts = parseArgs(split.rest);
} catch (e) {
  if (e instanceof UsageError || e instanceof RangeError) fail(e.message, 2);
  throw e;
}
if (opts.help) {
  Deno.stdout.writeSync(
    encoder.encode(`${USAGE}\n${helpLines().map((l) => `  ${l}`).join("\n")}\n`),
  );
  Deno.exit(0);
}

// The timeline starts before any Worker, so vCPU threads record into it too.
// The file is made now: a bad path fails at once, not after the session.
if (opts.trace !== null) {
  try {
    Deno.writeTextFileSync(opts.trace, "");
  } catch (e) {
    fail(`cannot write the trace file ${opts.trace}: ${(e as Error).message}`, 1);
  }
  startTrace();
}

// Deno opens its signal-driver sockets on the first signal listener, once
// per process: do that before counting fds, so --report-fds compares ours.
const noop = (): void => {};
Deno.addSignalListener("SIGUSR2", noop);
Deno.removeSignalListener("SIGUSR2", noop);
// Likewise the fds Deno's Worker runtime keeps once a Worker ran (vCPUs).
if (nCpus > 0) await warmUpWorkerRuntime();
const fdsAtStart = countFds();

// The watched file: ours (a temp file we append to) unless --watch says otherwise.
const ownFile = opts.watch === null;
const watchPath = opts.watch ?? Deno.makeTempFileSync({ prefix: "aioloop-demo-", suffix: ".log" });
const inotifyFd = inotifyInit();
try {
  if (!Deno.statSync(watchPath).isFile) throw new Error("not a regular file");
  inotifyAddWatch(inotifyFd, watchPath, IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF);
} catch (e) {
  close(inotifyFd);
  const why = e instanceof Deno.errors.NotFound ? "no such file" : (e as Error).message;
  fail(`cannot watch ${watchPath}: ${why}`, 1);
}

/** The watched file's new lines: what was read so far, and a partial last line. */
const watched = { offset: Deno.statSync(watchPath).size, partial: "", lines: 0 };
const fileDecoder = new TextDecoder();

/** Prints the lines appended since the last call; a shrunk file is read again from its start. */
function readNewLines(): void {
  const size = Deno.statSync(watchPath).size;
  if (size < watched.offset) {
    say("watch", `${watchPath} was truncated to ${size} bytes`);
    watched.offset = 0;
    watched.partial = "";
  }
  if (size === watched.offset) return;
  using f = Deno.openSync(watchPath, { read: true });
  f.seekSync(watched.offset, Deno.SeekMode.Start);
  const buf = new Uint8Array(size - watched.offset);
  let got = 0;
  while (got < buf.length) {
    const n = f.readSync(buf.subarray(got));
    if (n === null) break;
    got += n;
  }
  watched.offset += got;
  const text = watched.partial + fileDecoder.decode(buf.subarray(0, got), { stream: true });
  const parts = text.split("\n");
  watched.partial = parts.pop()!;
  for (const l of parts) {
    watched.lines++;
    say("watch", `${watchPath}: ${l}`);
  }
}

// ---- setup: the main loop ----------------------------------------------------

using _loop = qemuInitMainLoop({ fdmon: opts.fdmon });
const mainCtx = qemuGetAioContext();
const ioCtx = iohandlerGetAioContext();
const t0 = clockGetNs(QEMUClockType.REALTIME);
const stats = { turns: 0, bhs: 0, timers: 0, denoTicks: 0, lines: 0 };

// Count main-loop iterations through a poll notifier.
mainLoopPollAddNotifier((p: MainLoopPoll) => {
  if (p.state === MAIN_LOOP_POLL_FILL) stats.turns++;
});

const labels = new Map<number, string>([[0, "stdin"], [inotifyFd, `inotify ${watchPath}`]]);

let watching: Disposable | null = qemuSetFdHandler(inotifyFd, () => {
  let gone = false;
  for (const ev of readInotifyEvents(inotifyFd)) {
    if (ev.mask & (IN_DELETE_SELF | IN_MOVE_SELF)) gone = true;
  }
  try {
    readNewLines();
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    gone = true;
  }
  if (gone) {
    say("watch", `${watchPath} was removed or moved; no longer watching`);
    watching?.[Symbol.dispose]();
    watching = null;
  }
});

// Our own activity on the temp file: one line every appendMs.
let appendTimer: QEMUTimer | null = null;
if (ownFile && opts.appendMs > 0) {
  let n = 0;
  appendTimer = timerNewMs(QEMUClockType.REALTIME, () => {
    Deno.writeTextFileSync(watchPath, `tick ${++n}\n`, { append: true });
  }, { name: "demo-append" });
  appendTimer.modPeriodic(opts.appendMs);
}

// The status line, from a periodic main-loop timer.
let statusTimer: QEMUTimer | null = null;
if (opts.statusMs > 0) {
  statusTimer = timerNewMs(QEMUClockType.REALTIME, () => {
    const up = ((clockGetNs(QEMUClockType.REALTIME) - t0) / 1e9).toFixed(1);
    say(
      "status",
      `up ${up}s, ${stats.turns} loop turns, ${stats.bhs} BHs, ${stats.timers} timers, ` +
        `${stats.denoTicks} Deno ticks, ${watchPath}: ${watched.lines} new lines, ` +
        `${watched.offset} bytes`,
    );
  }, { name: "demo-status" });
  statusTimer.modPeriodic(opts.statusMs);
}

// Deno's own loop, turning beside ours.
const ticker = setInterval(() => stats.denoTicks++, 100);

// Signals, delivered inside the loop.
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  mainLoopAddSignalHandler(sig, () => {
    say("signal", `${sig} received, quitting`);
    mainLoopQuit();
  });
}

// The machine: --cpus N vCPU Workers beside the loop (examples/_demo_machine.ts).
machine = await startMachine(nCpus, say, opts.reportFds);

// ---- the commands' bodies ------------------------------------------------------

const EVENTS: [number, string][] = [[0x1, "in"], [0x4, "out"], [0x8, "err"], [0x10, "hup"]];

function describe(ctx: AioContext, role: string): string[] {
  const info = ctx.info();
  const out = [`context '${info.name}' (${role}), fd monitor ${info.fdmon}`];
  // Why this monitor: auto takes io_uring first and says why when it cannot.
  out.push(`  fd monitor: ${info.fdmonReason}`);
  for (const h of info.handlers) {
    const ev = EVENTS.filter(([bit]) => h.events & bit).map(([, n]) => n).join("|");
    const cbs = [h.read && "read", h.write && "write", h.poll && "poll"].filter(Boolean).join("+");
    const what = h.notifier ? "the context's notifier" : labels.get(h.fd) ?? "";
    out.push(`  fd ${h.fd} [${ev}] ${cbs}${what ? ` (${what})` : ""}`);
  }
  if (info.bhs.length === 0) out.push("  no queued BHs");
  for (const b of info.bhs) out.push(`  BH ${b.name}${b.scheduled ? " (scheduled)" : ""}`);
  return out;
}

function infoTimers(): void {
  const now = clockGetNs(QEMUClockType.REALTIME);
  const rows = mainLoopTlg().debugTimers().map((t) =>
    `${t.name} in ${((t.expireNs - now) / 1e6).toFixed(1)} ms`
  );
  say("timers", ...(rows.length > 0 ? rows : ["none pending"]));
}

function scheduleBh(): void {
  const at = performance.now();
  mainCtx.bhScheduleOneshot(() => {
    stats.bhs++;
    say("bh", `ran ${(performance.now() - at).toFixed(3)} ms after scheduling`);
  }, "demo-bh");
}

/** Timers armed with `timer <ms>` that have not fired yet. */
const userTimers = new Set<QEMUTimer>();

function armTimer(arg: string): void {
  if (!/^\d+$/.test(arg)) {
    say("error", `timer needs a whole number of ms, got '${arg}'`);
    return;
  }
  const ms = Number(arg);
  const t = timerNewMs(QEMUClockType.REALTIME, () => {
    userTimers.delete(t);
    stats.timers++;
    const late = (clockGetNs(QEMUClockType.REALTIME) - expire) / 1e6;
    say("timer", `${ms} ms timer fired (${late.toFixed(3)} ms late)`);
  }, { name: `timer-${ms}ms` });
  t.modIn(ms);
  const expire = t.expireTimeNs;
  userTimers.add(t);
  say("timer", `armed for ${ms} ms`);
}

// stdin through qemu_set_fd_handler. A readable fd gives at least one byte
// (or EOF) without blocking, so stdin's flags are left alone.
const inBuf = new Uint8Array(4096);
const decoder = new TextDecoder();
let pending = "";
let stdinReg: Disposable | null = null;

function onStdin(): void {
  const n = read(0, inBuf);
  if (n < 0) return; // EAGAIN: someone made stdin non-blocking; try again later
  if (n === 0) {
    stdinReg?.[Symbol.dispose]();
    stdinReg = null;
    if (pending.trim() !== "") command(pending);
    // Handlers ready in this same round run in the fd monitor's order
    // (io_uring: completion order); one removed now is not called again.
    watching?.[Symbol.dispose]();
    watching = null;
    say("eof", "end of input, quitting");
    mainLoopQuit();
    return;
  }
  pending += decoder.decode(inBuf.subarray(0, n), { stream: true });
  let nl: number;
  while ((nl = pending.indexOf("\n")) >= 0) {
    const line = pending.slice(0, nl);
    pending = pending.slice(nl + 1);
    stats.lines++;
    command(line);
  }
}

if (isOpenFd(0)) stdinReg = qemuSetFdHandler(0, onStdin);

say(
  "demo",
  `aioloop main loop (fd monitor ${mainCtx.fdmon}); watching ${watchPath}` +
    (ownFile && opts.appendMs > 0 ? ` (appending a line every ${opts.appendMs} ms)` : ""),
  "type 'help' for commands",
);

// ---- run, then tear down (the main loop itself goes with `using`) ----------

try {
  await mainLoopRun();
} finally {
  clearInterval(ticker);
  stdinReg?.[Symbol.dispose]();
  watching?.[Symbol.dispose]();
  close(inotifyFd);
  appendTimer?.del();
  statusTimer?.del();
  for (const t of userTimers) t.del();
  await machine?.stop();
  // A command of the last input line may have queued a BH (`bh` then `quit` in
  // one read): let it run, since a context is destroyed with none pending.
  while (mainCtx.poll(false));
  if (ownFile) Deno.removeSync(watchPath);
  if (opts.trace !== null) {
    stopTrace();
    writeTraceFileSync(opts.trace);
    say("trace", `${traceEvents().length} events written to ${opts.trace}`);
  }
}
if (interactive) Deno.stdout.writeSync(encoder.encode("\n"));
if (opts.reportFds) {
  // Checked after `using` has torn the main loop down: at the module's end.
  addEventListener("unload", () => {
    say("exit", `${countFds()} fds open, ${fdsAtStart} at start`);
  });
}

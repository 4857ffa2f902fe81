/**
 * aioloop's demo: a small QEMU-monitor-style console on the main loop that
 * listens to a file and to stdin at once (GLib's classic first exercise),
 * while Deno's own event loop keeps turning beside it.
 *
 * ```sh
 * deno task demo                          # watch a temp file the demo appends to
 * deno task demo --watch /var/log/syslog  # watch another file
 * printf 'info aio\ntimer 50\nquit\n' | deno task demo
 * ```
 *
 * Commands: `help`, `info aio`, `info timers`, `bh`, `timer <ms>`, `quit`,
 * and the machine's `info cpus`, `stop`, `cont`, `cpu-work <n>`.
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
 * Options: `--watch <path>`, `--status-ms <n>` (0: no status line),
 * `--append-ms <n>` (how often the demo appends to its temp file),
 * `--fdmon poll|epoll|io_uring`, `--cpus <n>` (vCPU Workers on the `loop`
 * accelerator, default 2; examples/_demo_machine.ts).
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
  qemuCleanupMainLoop,
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
import { close, isOpenFd, read } from "@aioloop/aioloop/sys";
import {
  IN_ATTRIB,
  IN_DELETE_SELF,
  IN_MODIFY,
  IN_MOVE_SELF,
  inotifyAddWatch,
  inotifyInit,
  readInotifyEvents,
} from "../sys/inotify.ts";
import { startMachine, takeCpusOption, warmUpWorkerRuntime } from "./_demo_machine.ts";

// ---- options ---------------------------------------------------------------

interface Options {
  watch: string | null;
  statusMs: number;
  appendMs: number;
  fdmon: FdMonName | "auto";
}

function parseArgs(args: string[]): Options {
  const o: Options = { watch: null, statusMs: 1000, appendMs: 700, fdmon: "auto" };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = (): string => {
      const v = args[++i];
      if (v === undefined) throw new TypeError(`Option ${a} needs a value`);
      return v;
    };
    const ms = (): number => {
      const v = Number(value());
      if (!Number.isInteger(v) || v < 0) throw new RangeError(`Option ${a} needs an integer >= 0`);
      return v;
    };
    if (a === "--watch") o.watch = value();
    else if (a === "--status-ms") o.statusMs = ms();
    else if (a === "--append-ms") o.appendMs = ms();
    else if (a === "--fdmon") o.fdmon = value() as FdMonName;
    else throw new TypeError(`Unknown option ${a} (see examples/demo.ts)`);
  }
  return o;
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

// Deno opens its signal-driver sockets on the first signal listener, once
// per process: do that before counting fds, so the exit line compares ours.
const noop = (): void => {};
Deno.addSignalListener("SIGUSR2", noop);
Deno.removeSignalListener("SIGUSR2", noop);
// Likewise the fds Deno's Worker runtime keeps once a Worker ran (vCPUs).
await warmUpWorkerRuntime();
const fdsAtStart = countFds();

function countFds(): number {
  let n = 0;
  for (const _ of Deno.readDirSync("/proc/self/fd")) n++;
  return n;
}

// ---- setup -----------------------------------------------------------------

const { cpus: nCpus, rest: demoArgs } = takeCpusOption(Deno.args);
const opts = parseArgs(demoArgs);
qemuInitMainLoop({ fdmon: opts.fdmon });
const mainCtx = qemuGetAioContext();
const ioCtx = iohandlerGetAioContext();
const t0 = clockGetNs(QEMUClockType.REALTIME);
const stats = { turns: 0, bhs: 0, timers: 0, denoTicks: 0, lines: 0 };

// Count main-loop iterations through a poll notifier.
mainLoopPollAddNotifier((p: MainLoopPoll) => {
  if (p.state === MAIN_LOOP_POLL_FILL) stats.turns++;
});

// The watched file: ours (a temp file we append to) unless --watch says otherwise.
const ownFile = opts.watch === null;
const watchPath = opts.watch ?? Deno.makeTempFileSync({ prefix: "aioloop-demo-", suffix: ".log" });
let watchedSize = fileSize(watchPath);
const inotifyFd = inotifyInit();
inotifyAddWatch(inotifyFd, watchPath, IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF);
const labels = new Map<number, string>([[0, "stdin"], [inotifyFd, `inotify ${watchPath}`]]);

function fileSize(path: string): number {
  try {
    return Deno.statSync(path).size;
  } catch {
    return -1;
  }
}

qemuSetFdHandler(inotifyFd, () => {
  let gone = false;
  for (const ev of readInotifyEvents(inotifyFd)) {
    if (ev.mask & (IN_DELETE_SELF | IN_MOVE_SELF)) gone = true;
  }
  const size = fileSize(watchPath);
  if (gone || size < 0) {
    say("watch", `${watchPath} was removed or moved; no longer watching`);
    qemuSetFdHandler(inotifyFd, null);
  } else if (size !== watchedSize) {
    const d = size - watchedSize;
    say(
      "watch",
      `${watchPath} ${d > 0 ? "grew" : "shrank"} to ${size} bytes (${d > 0 ? "+" : ""}${d})`,
    );
    watchedSize = size;
  }
});

// Our own activity on the temp file: one line every appendMs.
let appendTimer: QEMUTimer | null = null;
if (ownFile && opts.appendMs > 0) {
  let n = 0;
  const t = timerNewMs(QEMUClockType.REALTIME, () => {
    Deno.writeTextFileSync(watchPath, `tick ${++n}\n`, { append: true });
    t.mod(nowMs() + opts.appendMs);
  }, { name: "demo-append" });
  t.mod(nowMs() + opts.appendMs);
  appendTimer = t;
}

// The status line, from a main-loop timer.
let statusTimer: QEMUTimer | null = null;
if (opts.statusMs > 0) {
  const t = timerNewMs(QEMUClockType.REALTIME, () => {
    const up = ((clockGetNs(QEMUClockType.REALTIME) - t0) / 1e9).toFixed(1);
    say(
      "status",
      `up ${up}s, ${stats.turns} loop turns, ${stats.bhs} BHs, ${stats.timers} timers, ` +
        `${stats.denoTicks} Deno ticks, ${watchPath} is ${watchedSize} bytes`,
    );
    t.mod(nowMs() + opts.statusMs);
  }, { name: "demo-status" });
  t.mod(nowMs() + opts.statusMs);
  statusTimer = t;
}

function nowMs(): number {
  return clockGetNs(QEMUClockType.REALTIME) / 1e6;
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
const machine = await startMachine(nCpus, say);

// ---- the console -----------------------------------------------------------

const HELP = [
  "help          this text",
  "info aio      handlers, BHs and fd monitor of the main and iohandler contexts",
  "info timers   pending main-loop timers",
  "bh            schedule a bottom half on the main context",
  "timer <ms>    arm a main-loop timer that reports when it fires",
  ...machine.help,
  "quit          leave (so do Ctrl-C and end of input)",
];

const EVENTS: [number, string][] = [[0x1, "in"], [0x4, "out"], [0x8, "err"], [0x10, "hup"]];

function describe(ctx: AioContext, role: string): string[] {
  const info = ctx.info();
  const out = [`context '${info.name}' (${role}), fd monitor ${info.fdmon}`];
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

/** Timers armed with `timer <ms>` that have not fired yet. */
const userTimers = new Set<QEMUTimer>();

function command(line: string): void {
  const [cmd = "", ...args] = line.trim().split(/\s+/);
  const sub = args.join(" ");
  if (cmd === "") return;
  if (cmd === "help") {
    say("help", ...HELP);
  } else if (cmd === "info" && sub === "aio") {
    say("aio", ...describe(mainCtx, "main"), ...describe(ioCtx, "iohandler"));
  } else if (cmd === "info" && sub === "timers") {
    const now = clockGetNs(QEMUClockType.REALTIME);
    const rows = mainLoopTlg().debugTimers().map((t) =>
      `${t.name} in ${((t.expireNs - now) / 1e6).toFixed(1)} ms`
    );
    say("timers", ...(rows.length > 0 ? rows : ["none pending"]));
  } else if (cmd === "bh") {
    const at = performance.now();
    mainCtx.bhScheduleOneshot(() => {
      stats.bhs++;
      say("bh", `ran ${(performance.now() - at).toFixed(3)} ms after scheduling`);
    }, "demo-bh");
  } else if (cmd === "timer" && /^\d+$/.test(sub)) {
    const ms = Number(sub);
    const expire = clockGetNs(QEMUClockType.REALTIME) + ms * 1e6;
    const t = timerNewMs(QEMUClockType.REALTIME, () => {
      userTimers.delete(t);
      stats.timers++;
      const late = (clockGetNs(QEMUClockType.REALTIME) - expire) / 1e6;
      say("timer", `${ms} ms timer fired (${late.toFixed(3)} ms late)`);
    }, { name: `timer-${ms}ms` });
    t.modNs(expire);
    userTimers.add(t);
    say("timer", `armed for ${ms} ms`);
  } else if (machine.command(cmd, sub)) {
    // a machine command
  } else if (cmd === "quit") {
    say("quit", "bye");
    mainLoopQuit();
  } else {
    say("error", `unknown command '${line.trim()}' (try 'help')`);
  }
}

// stdin through qemu_set_fd_handler. A readable fd gives at least one byte
// (or EOF) without blocking, so stdin's flags are left alone.
const inBuf = new Uint8Array(4096);
const decoder = new TextDecoder();
let pending = "";
let stdinOn = false;

function onStdin(): void {
  const n = read(0, inBuf);
  if (n < 0) return; // EAGAIN: someone made stdin non-blocking; try again later
  if (n === 0) {
    qemuSetFdHandler(0, null);
    stdinOn = false;
    if (pending.trim() !== "") command(pending);
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

if (isOpenFd(0)) {
  qemuSetFdHandler(0, onStdin);
  stdinOn = true;
}

say(
  "demo",
  `aioloop main loop (fd monitor ${mainCtx.fdmon}); watching ${watchPath}` +
    (ownFile && opts.appendMs > 0 ? ` (appending a line every ${opts.appendMs} ms)` : ""),
  "type 'help' for commands",
);

// ---- run, then tear down ---------------------------------------------------

try {
  await mainLoopRun();
} finally {
  clearInterval(ticker);
  if (stdinOn) qemuSetFdHandler(0, null);
  qemuSetFdHandler(inotifyFd, null);
  close(inotifyFd);
  appendTimer?.del();
  statusTimer?.del();
  for (const t of userTimers) t.del();
  await machine.stop();
  qemuCleanupMainLoop();
  if (ownFile) Deno.removeSync(watchPath);
}
if (interactive) Deno.stdout.writeSync(encoder.encode("\n"));
const fdsAtExit = countFds();
console.log(`exit: ${fdsAtExit} fds open, ${fdsAtStart} at start`);

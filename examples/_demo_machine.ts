/**
 * The demo's machine: N vCPU Workers on the `loop` accelerator beside the
 * main loop, and the monitor commands that look at them (`info cpus`,
 * `stop`, `cont`, `cpu-work N`, `rcu`). examples/demo.ts wires it in; the module
 * has no side effects (the vCPU threads load it for the `ping` work).
 *
 * @module
 */
import {
  cpuRemoveSync,
  type CPUState,
  pauseAllVcpus,
  qemuInitVcpu,
  resumeAllVcpus,
  runOnCpu,
  withBql,
} from "@aioloop/aioloop/cpus";
import { synchronizeRcu } from "@aioloop/aioloop/rcu";

const SELF = new URL(import.meta.url);

/** Work for `cpu-work`: runs on the vCPU thread, returns its index. */
export function ping(cpu: CPUState): number {
  return cpu.cpuIndex;
}

function liveThread(tid: number): boolean {
  try {
    Deno.statSync(`/proc/self/task/${tid}`);
    return true;
  } catch {
    return false;
  }
}

/** Removes `--cpus N` (default 2) from the demo's arguments. */
export function takeCpusOption(args: readonly string[]): { cpus: number; rest: string[] } {
  const rest: string[] = [];
  let cpus = 2;
  for (let i = 0; i < args.length; i++) {
    if (args[i] !== "--cpus") {
      rest.push(args[i]);
      continue;
    }
    const v = Number(args[++i]);
    if (!Number.isInteger(v) || v < 0 || v > 16) {
      throw new RangeError("Option --cpus needs an integer from 0 to 16");
    }
    cpus = v;
  }
  return { cpus, rest };
}

/** The running machine, as the demo's console sees it. */
export interface DemoMachine {
  /** Help lines for the machine's commands. */
  readonly help: readonly string[];
  /** Runs a command if it is the machine's (with the BQL, as the loop dispatches); returns whether it was. */
  command(cmd: string, args: string): boolean;
  /** Removes every vCPU and waits until their threads are gone (no Worker is left). */
  stop(): Promise<void>;
}

function countFds(): number {
  let k = 0;
  for (const _ of Deno.readDirSync("/proc/self/fd")) k++;
  return k;
}

/**
 * Makes Deno open the fds its Worker runtime keeps for the rest of the
 * process (a throwaway Worker), so that fd counts taken afterwards compare
 * only what the machine opens and closes.
 */
export async function warmUpWorkerRuntime(): Promise<void> {
  const w = new Worker(new URL("data:text/javascript,postMessage(0)"), { type: "module" });
  await new Promise((r) => w.onmessage = r);
  w.terminate();
  // The Worker's own fds close as its thread winds down: wait until the
  // count holds still for 200 ms (5 s at most: a loaded machine may not
  // schedule that thread for tens of ms).
  const end = performance.now() + 5000;
  let last = countFds(), still = 0;
  while (still < 20 && performance.now() < end) {
    await new Promise((r) => setTimeout(r, 10));
    const n = countFds();
    still = n === last ? still + 1 : 0;
    last = n;
  }
}

/** The console lines that the machine's commands add to `help`. */
export const MACHINE_HELP: readonly string[] = [
  "info cpus     each vCPU: thread, state, guest counter",
  "stop / cont   pause / resume every vCPU",
  "cpu-work <n>  a run_on_cpu round trip to vCPU n, with its latency",
  "rcu           one RCU grace period (synchronize_rcu), with its latency",
];

/**
 * Starts `n` vCPUs on the `loop` accelerator; `say` prints tagged lines.
 * `stop` checks that the machine left no thread and no fd.
 */
export async function startMachine(
  n: number,
  say: (tag: string, ...lines: string[]) => void,
  report = false,
): Promise<DemoMachine> {
  if (n > 0) await warmUpWorkerRuntime();
  const fdsBefore = countFds();
  const cpus: CPUState[] = [];
  withBql(() => {
    for (let i = 0; i < n; i++) cpus.push(qemuInitVcpu({ accel: "loop", modules: [SELF] }));
  });
  const help = MACHINE_HELP;
  function command(cmd: string, args: string): boolean {
    if (cmd === "info" && args === "cpus") {
      const rows = cpus.map((c) =>
        `CPU #${c.cpuIndex}: thread ${c.threadId} ${c.threadState}` +
        `${c.halted ? " halted" : ""}${c.stopped ? " stopped" : ""} counter=${c.guest[0]}`
      );
      say("cpus", ...(rows.length > 0 ? rows : ["no vCPUs (--cpus 0)"]));
    } else if (cmd === "stop") {
      withBql(() => pauseAllVcpus());
      say("stop", `${cpus.length} vCPU(s) stopped`);
    } else if (cmd === "cont") {
      withBql(() => resumeAllVcpus());
      say("cont", `${cpus.length} vCPU(s) running`);
    } else if (cmd === "cpu-work") {
      const cpu = cpus[Number(args)];
      if (!/^\d+$/.test(args) || cpu === undefined) {
        say("error", `cpu-work needs a vCPU index from 0 to ${cpus.length - 1}`);
        return true;
      }
      const t = performance.now();
      const who = withBql(() => runOnCpu(cpu, { module: SELF, name: "ping" }));
      const us = (performance.now() - t) * 1000;
      say("cpu-work", `run_on_cpu to CPU #${who} returned in ${us.toFixed(1)} us`);
    } else if (cmd === "rcu" && args === "") {
      const t = performance.now();
      synchronizeRcu();
      const us = (performance.now() - t) * 1000;
      say("rcu", `grace period in ${us.toFixed(1)} us`);
    } else {
      return false;
    }
    return true;
  }
  async function stop(): Promise<void> {
    const tids = cpus.map((c) => c.threadId);
    withBql(() => {
      for (const c of cpus) cpuRemoveSync(c);
    });
    cpus.length = 0;
    // The Workers were terminated; their OS threads (and fds) go shortly.
    const end = performance.now() + 5000;
    while (tids.some((t) => liveThread(t)) && performance.now() < end) {
      await new Promise((r) => setTimeout(r, 5));
    }
    if (tids.length === 0 || !report) return;
    while (countFds() > fdsBefore && performance.now() < end) {
      await new Promise((r) => setTimeout(r, 5));
    }
    const left = tids.filter((t) => liveThread(t)).length;
    say(
      "machine",
      `${tids.length} vCPU(s) removed, ${left} thread(s) left, ${countFds()} fds (${fdsBefore} before the vCPUs)`,
    );
  }
  return { help, command, stop };
}

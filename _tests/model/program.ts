// Random programs for the AioContext model check: their shape, the
// fast-check generators, a readable printer, and the interpreter that runs
// one program against a LoopUnderTest (the model or the real context) and
// records the callback trace.
//
// References to BHs, timers and pipes are plain indexes resolved modulo the
// number of objects that exist when the action runs (so shrinking never
// produces a dangling reference); -1 means "self" inside a callback of that
// kind. A BH the program deleted is never touched again (QEMU would use
// freed memory).
import fc from "./fc.ts";
import type { LoopUnderTest, PipeEnd } from "./aio_model.ts";

/** What a BH operation does. */
export type BhHow = "sched" | "idle" | "cancel" | "del";

/** One action inside a callback. */
export type Action =
  | { a: "bh"; how: BhHow; bh: number }
  | { a: "oneshot"; script: Action[] }
  | { a: "tmod"; t: number; d: number }
  | { a: "tdel"; t: number }
  | { a: "adv"; d: number }
  | { a: "pw"; p: number; n: number }
  | { a: "pr"; p: number; n: number }
  | { a: "fd"; p: number; end: PipeEnd; scripts: Action[][] | null }
  | { a: "notify" }
  | { a: "poll" };

/** One top-level operation. */
export type Op =
  | { op: "bhNew"; scripts: Action[][] }
  | { op: "oneshot"; script: Action[] }
  | { op: "bh"; how: BhHow; bh: number }
  | { op: "timerNew"; scripts: Action[][] }
  | { op: "tmod"; t: number; ns: number; anticipate?: boolean }
  | { op: "tdel"; t: number }
  | { op: "adv"; d: number }
  | { op: "enable"; on: boolean }
  | { op: "pw"; p: number; n: number }
  | { op: "pr"; p: number; n: number }
  | { op: "fd"; p: number; end: PipeEnd; scripts: Action[][] | null }
  | { op: "notify" }
  | { op: "iterate" }
  | { op: "poll"; blocking: boolean };

/**
 * A program: how many pipes, the scripts of the BHs and timers created up
 * front (BH i and timer i, in that order), and the operations.
 */
export interface Program {
  pipes: number;
  bhs: Action[][][];
  timers: Action[][][];
  ops: Op[];
}

/** Deepest poll nesting: a callback's nested poll runs only below this depth. */
export const MAX_POLL_DEPTH = 3;

// ---- generators ----

const howArb: fc.Arbitrary<BhHow> = fc.constantFrom("sched", "sched", "idle", "cancel", "del");
const refArb = fc.integer({ min: -1, max: 5 });
const pipeRefArb = fc.integer({ min: -1, max: 3 });
const endArb: fc.Arbitrary<PipeEnd> = fc.constantFrom("r", "r", "r", "w");

function actionArb(level: number): fc.Arbitrary<Action> {
  const leaf: fc.WeightedArbitrary<Action>[] = [
    { arbitrary: fc.record({ a: fc.constant("bh" as const), how: howArb, bh: refArb }), weight: 6 },
    {
      arbitrary: fc.record({
        a: fc.constant("tmod" as const),
        t: refArb,
        d: fc.integer({ min: 1, max: 40 }),
      }),
      weight: 3,
    },
    { arbitrary: fc.record({ a: fc.constant("tdel" as const), t: refArb }), weight: 1 },
    {
      arbitrary: fc.record({ a: fc.constant("adv" as const), d: fc.integer({ min: 0, max: 40 }) }),
      weight: 1,
    },
    {
      arbitrary: fc.record({
        a: fc.constant("pw" as const),
        p: pipeRefArb,
        n: fc.integer({ min: 1, max: 3 }),
      }),
      weight: 2,
    },
    {
      arbitrary: fc.record({
        a: fc.constant("pr" as const),
        p: pipeRefArb,
        n: fc.integer({ min: 1, max: 4 }),
      }),
      weight: 4,
    },
    { arbitrary: fc.constant({ a: "poll" as const }), weight: 2 },
    { arbitrary: fc.constant({ a: "notify" as const }), weight: 1 },
    {
      // Removal, or a handler that does nothing but drain its pipe.
      arbitrary: fc.record({
        a: fc.constant("fd" as const),
        p: pipeRefArb,
        end: endArb,
        scripts: fc.option(fc.constant<Action[][]>([[{ a: "pr", p: -1, n: 8 }]]), {
          freq: 2,
          nil: null,
        }),
      }),
      weight: 1,
    },
  ];
  if (level > 0) {
    leaf.push(
      {
        arbitrary: fc.record({
          a: fc.constant("oneshot" as const),
          script: scriptArb(level - 1),
        }),
        weight: 1,
      },
      {
        arbitrary: fc.record({
          a: fc.constant("fd" as const),
          p: pipeRefArb,
          end: endArb,
          scripts: fc.option(scriptsArb(level - 1), { freq: 3, nil: null }),
        }),
        weight: 2,
      },
    );
  }
  return fc.oneof(...leaf);
}

function scriptArb(level: number): fc.Arbitrary<Action[]> {
  return fc.array(actionArb(level), { maxLength: 3 });
}

function scriptsArb(level: number): fc.Arbitrary<Action[][]> {
  return fc.array(scriptArb(level), { minLength: 1, maxLength: 3 });
}

const idx = fc.integer({ min: 0, max: 5 });

/** One top-level operation. */
export const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({ op: fc.constant("bhNew" as const), scripts: scriptsArb(1) }),
    weight: 1,
  },
  {
    arbitrary: fc.record({ op: fc.constant("oneshot" as const), script: scriptArb(1) }),
    weight: 2,
  },
  { arbitrary: fc.record({ op: fc.constant("bh" as const), how: howArb, bh: idx }), weight: 8 },
  {
    arbitrary: fc.record({ op: fc.constant("timerNew" as const), scripts: scriptsArb(1) }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      op: fc.constant("tmod" as const),
      t: idx,
      ns: fc.integer({ min: -20, max: 300 }),
      anticipate: fc.boolean(),
    }, { requiredKeys: ["op", "t", "ns"] }),
    weight: 8,
  },
  { arbitrary: fc.record({ op: fc.constant("tdel" as const), t: idx }), weight: 1 },
  {
    arbitrary: fc.record({ op: fc.constant("adv" as const), d: fc.integer({ min: 0, max: 120 }) }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      op: fc.constant("enable" as const),
      on: fc.constantFrom(true, true, false),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      op: fc.constant("pw" as const),
      p: fc.nat(3),
      n: fc.integer({ min: 1, max: 4 }),
    }),
    weight: 4,
  },
  {
    arbitrary: fc.record({
      op: fc.constant("pr" as const),
      p: fc.nat(3),
      n: fc.integer({ min: 1, max: 4 }),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      op: fc.constant("fd" as const),
      p: fc.nat(3),
      end: endArb,
      scripts: fc.option(scriptsArb(1), { freq: 4, nil: null }),
    }),
    weight: 4,
  },
  { arbitrary: fc.constant({ op: "notify" as const }), weight: 1 },
  { arbitrary: fc.constant({ op: "iterate" as const }), weight: 4 },
  {
    arbitrary: fc.record({ op: fc.constant("poll" as const), blocking: fc.boolean() }),
    weight: 12,
  },
);

/** A whole program: 1 to 3 pipes, up to 4 BHs and 3 timers, up to `maxOps` operations. */
export function programArb(maxOps = 40): fc.Arbitrary<Program> {
  return fc.record({
    pipes: fc.integer({ min: 1, max: 3 }),
    bhs: fc.array(scriptsArb(1), { maxLength: 4 }),
    timers: fc.array(scriptsArb(1), { maxLength: 3 }),
    ops: fc.array(opArb, { maxLength: maxOps, size: "medium" }),
  });
}

// ---- printing ----

function ref(r: number, self: string): string {
  return r === -1 ? self : String(r);
}

function fmtScripts(s: Action[][] | null): string {
  return s === null ? "null" : `[${s.map(fmtScript).join(" | ")}]`;
}

function fmtScript(s: Action[]): string {
  return `{${s.map(fmtAction).join("; ")}}`;
}

function fmtAction(a: Action): string {
  switch (a.a) {
    case "bh":
      return `${a.how} bh ${ref(a.bh, "self")}`;
    case "oneshot":
      return `oneshot ${fmtScript(a.script)}`;
    case "tmod":
      return `mod timer ${ref(a.t, "self")} now+${a.d}`;
    case "tdel":
      return `del timer ${ref(a.t, "self")}`;
    case "adv":
      return `advance ${a.d}`;
    case "pw":
      return `write pipe ${ref(a.p, "own")} ${a.n}`;
    case "pr":
      return `read pipe ${ref(a.p, "own")} ${a.n}`;
    case "fd":
      return `fd pipe ${ref(a.p, "own")}.${a.end} ${fmtScripts(a.scripts)}`;
    case "notify":
      return "notify";
    case "poll":
      return "nested poll(false)";
  }
}

/** One operation, as the failure report prints it. */
export function fmtOp(o: Op): string {
  switch (o.op) {
    case "bhNew":
      return `bhNew ${fmtScripts(o.scripts)}`;
    case "oneshot":
      return `oneshot ${fmtScript(o.script)}`;
    case "bh":
      return `${o.how} bh ${o.bh}`;
    case "timerNew":
      return `timerNew ${fmtScripts(o.scripts)}`;
    case "tmod":
      return `${o.anticipate ? "mod_anticipate" : "mod"} timer ${o.t} at ${o.ns}`;
    case "tdel":
      return `del timer ${o.t}`;
    case "adv":
      return `advance ${o.d}`;
    case "enable":
      return `clock ${o.on ? "enable" : "disable"}`;
    case "pw":
      return `write pipe ${o.p} ${o.n}`;
    case "pr":
      return `read pipe ${o.p} ${o.n}`;
    case "fd":
      return `fd pipe ${o.p}.${o.end} ${fmtScripts(o.scripts)}`;
    case "notify":
      return "notify";
    case "iterate":
      return "g_main_context_iteration(false)";
    case "poll":
      return `poll(${o.blocking})`;
  }
}

/** A program, one numbered operation per line. */
export function fmtProgram(p: Program): string {
  const lines = [`pipes: ${p.pipes}`];
  p.bhs.forEach((s, i) => lines.push(`  bh ${i}: ${fmtScripts(s)}`));
  p.timers.forEach((s, i) => lines.push(`  timer ${i}: ${fmtScripts(s)}`));
  p.ops.forEach((o, i) => lines.push(`  ${String(i).padStart(2)}: ${fmtOp(o)}`));
  return lines.join("\n");
}

// ---- the interpreter ----

/** Who is running: the kind and id of the callback, for "self" and "own". */
interface Self {
  kind: "bh" | "oneshot" | "timer" | "fd";
  id: number;
  pipe: number;
}

/**
 * Runs a program's operations against one LoopUnderTest and records what
 * the callbacks did. Two interpreters over the model and the real context
 * stay in step as long as their traces agree.
 *
 * Trace events: `b3` BH 3 ran, `o2` oneshot 2 ran, `t1` timer 1 fired,
 * `r4`/`w4` handler node 4's io_read/io_write ran, `p0>2` a read of pipe 0
 * returned 2 (-1: EAGAIN), `n2(` a nested poll at depth 2 started, `)1`/`)0`
 * it returned true/false.
 */
export class Interpreter {
  readonly loop: LoopUnderTest;
  readonly pipes: number;
  /** Events of the current step. */
  trace: string[] = [];
  /** After cleanup starts, callbacks only record themselves. */
  quiesced = false;
  /**
   * Most callbacks per step: a wrong model can loop forever (say, a BH that
   * reschedules itself run again in the same pass); stop it instead.
   */
  maxEvents = 100_000;
  #depth = 0;
  #bhScripts: Action[][][] = [];
  #bhCalls: number[] = [];
  #bhDeleted: boolean[] = [];
  #oneshotScripts: Action[][] = [];
  #timerScripts: Action[][][] = [];
  #timerCalls: number[] = [];
  #nodeScripts: (Action[][] | null)[] = [];
  #nodeCalls: number[] = [];
  #liveNode = new Map<string, number>();

  constructor(loop: LoopUnderTest, pipes: number) {
    this.loop = loop;
    this.pipes = pipes;
  }

  /** BHs created by bhNew and not deleted. */
  liveBhs(): number[] {
    const out: number[] = [];
    this.#bhDeleted.forEach((d, i) => d || out.push(i));
    return out;
  }

  /** Number of timers. */
  get timerCount(): number {
    return this.#timerScripts.length;
  }

  /** Live handlers as [pipe, end]. */
  liveHandlers(): [number, PipeEnd][] {
    return [...this.#liveNode.keys()].map((k) => [Number(k.slice(0, -1)), k.at(-1) as PipeEnd]);
  }

  /** Creates the program's up-front BHs and timers. */
  setup(p: Program): void {
    for (const s of p.bhs) this.#newBh(s);
    for (const s of p.timers) this.#newTimer(s);
  }

  /** Runs one top-level operation; returns the poll result for a poll. */
  step(o: Op): boolean | undefined {
    const loop = this.loop;
    switch (o.op) {
      case "bhNew":
        this.#newBh(o.scripts);
        return;
      case "oneshot":
        this.#newOneshot(o.script);
        return;
      case "bh":
        this.#bhOp(o.how, o.bh, null);
        return;
      case "timerNew":
        this.#newTimer(o.scripts);
        return;
      case "tmod": {
        const n = this.#timerScripts.length;
        if (n > 0 && o.anticipate) loop.timerModAnticipateNs(o.t % n, o.ns);
        else if (n > 0) loop.timerModNs(o.t % n, o.ns);
        return;
      }
      case "tdel": {
        const n = this.#timerScripts.length;
        if (n > 0) loop.timerDel(o.t % n);
        return;
      }
      case "adv":
        loop.clockAdvance(o.d);
        return;
      case "enable":
        loop.clockEnable(o.on);
        return;
      case "pw":
        loop.pipeWrite(o.p % this.pipes, o.n);
        return;
      case "pr": {
        const p = o.p % this.pipes;
        this.trace.push(`p${p}>${loop.pipeRead(p, o.n)}`);
        return;
      }
      case "fd":
        this.#setFd(o.p % this.pipes, o.end, o.scripts);
        return;
      case "notify":
        loop.notify();
        return;
      case "iterate":
        this.#depth++;
        try {
          return loop.iterate();
        } finally {
          this.#depth--;
        }
      case "poll": {
        this.#depth++;
        try {
          return loop.poll(o.blocking);
        } finally {
          this.#depth--;
        }
      }
    }
  }

  #newBh(scripts: Action[][]): void {
    const id = this.#bhScripts.length;
    this.#bhScripts.push(scripts);
    this.#bhCalls.push(0);
    this.#bhDeleted.push(false);
    this.loop.bhNew(id, () => this.#call(`b${id}`, { kind: "bh", id, pipe: 0 }));
  }

  #newTimer(scripts: Action[][]): void {
    const id = this.#timerScripts.length;
    this.#timerScripts.push(scripts);
    this.#timerCalls.push(0);
    this.loop.timerNew(id, () => this.#call(`t${id}`, { kind: "timer", id, pipe: 0 }));
  }

  #newOneshot(script: Action[]): void {
    const id = this.#oneshotScripts.length;
    this.#oneshotScripts.push(script);
    this.loop.bhOneshot(id, () => this.#call(`o${id}`, { kind: "oneshot", id, pipe: 0 }));
  }

  #bhOp(how: BhHow, r: number, self: Self | null): void {
    const n = this.#bhScripts.length;
    if (n === 0) return;
    const id = r === -1 && self?.kind === "bh" ? self.id : Math.max(r, 0) % n;
    if (this.#bhDeleted[id]) return;
    const loop = this.loop;
    switch (how) {
      case "sched":
        loop.bhSchedule(id);
        return;
      case "idle":
        loop.bhScheduleIdle(id);
        return;
      case "cancel":
        loop.bhCancel(id);
        return;
      case "del":
        this.#bhDeleted[id] = true;
        loop.bhDelete(id);
        return;
    }
  }

  #setFd(p: number, end: PipeEnd, scripts: Action[][] | null): void {
    const key = `${p}${end}`;
    if (scripts === null) {
      const id = this.#liveNode.get(key);
      this.#liveNode.delete(key);
      this.loop.setFdHandler(p, end, id ?? -1, null);
      return;
    }
    const id = this.#nodeScripts.length;
    this.#nodeScripts.push(scripts);
    this.#nodeCalls.push(0);
    this.#liveNode.set(key, id);
    this.loop.setFdHandler(
      p,
      end,
      id,
      () => this.#call(`${end}${id}`, { kind: "fd", id, pipe: p }),
    );
  }

  #call(name: string, self: Self): void {
    this.trace.push(name);
    if (this.trace.length > this.maxEvents) {
      throw new Error(`runaway step: more than ${this.maxEvents} events`);
    }
    if (this.quiesced) return;
    let script: Action[];
    switch (self.kind) {
      case "bh": {
        const s = this.#bhScripts[self.id];
        script = s[this.#bhCalls[self.id]++ % s.length];
        break;
      }
      case "oneshot":
        script = this.#oneshotScripts[self.id];
        break;
      case "timer": {
        const s = this.#timerScripts[self.id];
        script = s[this.#timerCalls[self.id]++ % s.length];
        break;
      }
      case "fd": {
        const s = this.#nodeScripts[self.id]!;
        script = s[this.#nodeCalls[self.id]++ % s.length];
        break;
      }
    }
    for (const a of script) this.#act(a, self);
  }

  #pipe(r: number, self: Self): number {
    return r === -1 ? (self.kind === "fd" ? self.pipe : 0) : r % this.pipes;
  }

  #act(a: Action, self: Self): void {
    const loop = this.loop;
    switch (a.a) {
      case "bh":
        this.#bhOp(a.how, a.bh, self);
        return;
      case "oneshot":
        this.#newOneshot(a.script);
        return;
      case "tmod": {
        const n = this.#timerScripts.length;
        if (n === 0) return;
        const id = a.t === -1 && self.kind === "timer" ? self.id : Math.max(a.t, 0) % n;
        // Always strictly in the future: a timer that re-arms itself at
        // "now" would run forever in one pass, in QEMU too.
        loop.timerModNs(id, loop.virtualNow() + a.d);
        return;
      }
      case "tdel": {
        const n = this.#timerScripts.length;
        if (n === 0) return;
        loop.timerDel(a.t === -1 && self.kind === "timer" ? self.id : Math.max(a.t, 0) % n);
        return;
      }
      case "adv":
        loop.clockAdvance(a.d);
        return;
      case "pw":
        loop.pipeWrite(this.#pipe(a.p, self), a.n);
        return;
      case "pr": {
        const p = this.#pipe(a.p, self);
        this.trace.push(`p${p}>${loop.pipeRead(p, a.n)}`);
        return;
      }
      case "fd":
        this.#setFd(this.#pipe(a.p, self), a.end, a.scripts);
        return;
      case "notify":
        loop.notify();
        return;
      case "poll": {
        if (this.#depth >= MAX_POLL_DEPTH) return;
        this.#depth++;
        this.trace.push(`n${this.#depth}(`);
        try {
          this.trace.push(`)${loop.poll(false) ? 1 : 0}`);
        } finally {
          this.#depth--;
        }
        return;
      }
    }
  }
}

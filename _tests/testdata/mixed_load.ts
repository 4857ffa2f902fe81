// Random fd / BH / timer load on one AioContext, with the invariants it
// checks as it goes: every byte written to a pipe is read once and in order,
// every scheduled BH runs once per schedule (none after a cancel), every
// timer fires once per mod and never before its expiry. Used by
// _tests/aio_mixed_soak.ts on the main thread and, through `iothreadBurst`,
// on an IOThread.
import { AioContext } from "../../aio/aio_context.ts";
import type { QEMUBH } from "../../aio/bh.ts";
import { clockGetNs, QEMUClockType, type QEMUTimer, SCALE_NS } from "../../aio/timer.ts";
import { close, pipe, read, write } from "../../sys/fd.ts";

/** A small PRNG (mulberry32): a run is reproducible from its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Counters of one load, summed into the soak's report. */
export interface LoadStats {
  bytes: number;
  bhRuns: number;
  oneshots: number;
  timerFires: number;
  polls: number;
  blockingPolls: number;
}

interface Pipe {
  r: number;
  w: number;
  nextOut: number;
  nextIn: number;
  pending: number;
}

const PIPES = 8;
const BHS = 8;
const TIMERS = 8;
const MAX_PENDING = 4096;

/** The load on one context; `step()` does a few random operations and one poll. */
export class MixedLoad {
  readonly stats: LoadStats = {
    bytes: 0,
    bhRuns: 0,
    oneshots: 0,
    timerFires: 0,
    polls: 0,
    blockingPolls: 0,
  };
  #ctx: AioContext;
  #rand: () => number;
  #pipes: Pipe[] = [];
  #bhs: QEMUBH[] = [];
  #bhDue: boolean[] = [];
  #timers: QEMUTimer[] = [];
  #timerDue: number[] = [];
  #oneshotsDue = new Set<number>();
  #nextOneshot = 0;
  #buf = new Uint8Array(MAX_PENDING);
  #regs: Disposable[] = [];

  constructor(ctx: AioContext, seed: number) {
    this.#ctx = ctx;
    this.#rand = rng(seed);
    for (let i = 0; i < PIPES; i++) {
      const [r, w] = pipe();
      const p: Pipe = { r, w, nextOut: 0, nextIn: 0, pending: 0 };
      this.#pipes.push(p);
      this.#regs.push(ctx.setFdHandler(r, { read: () => this.#drain(p) }));
    }
    for (let i = 0; i < BHS; i++) {
      this.#bhDue.push(false);
      this.#bhs.push(ctx.bhNew(() => {
        if (!this.#bhDue[i]) throw new Error(`BH ${i} ran while not scheduled`);
        this.#bhDue[i] = false;
        this.stats.bhRuns++;
        this.#act(1);
      }, { name: `load-bh${i}` }));
    }
    for (let i = 0; i < TIMERS; i++) {
      this.#timerDue.push(-1);
      this.#timers.push(ctx.timerNew(QEMUClockType.REALTIME, SCALE_NS, () => {
        const due = this.#timerDue[i];
        const now = clockGetNs(QEMUClockType.REALTIME);
        if (due < 0) throw new Error(`timer ${i} fired while not armed`);
        if (now < due) throw new Error(`timer ${i} fired ${due - now} ns early`);
        this.#timerDue[i] = -1;
        this.stats.timerFires++;
        this.#act(1);
      }));
    }
  }

  #drain(p: Pipe): void {
    const n = read(p.r, this.#buf);
    for (let k = 0; k < n; k++) {
      if (this.#buf[k] !== p.nextIn % 251) {
        throw new Error(`pipe ${p.r}: byte ${p.nextIn} is ${this.#buf[k]}, not ${p.nextIn % 251}`);
      }
      p.nextIn++;
    }
    p.pending -= n;
    this.stats.bytes += n;
  }

  /** `n` random operations (callbacks make one each, so load feeds itself a little). */
  #act(n: number): void {
    const rand = this.#rand;
    for (let k = 0; k < n; k++) {
      const x = rand();
      if (x < 0.3) {
        const p = this.#pipes[Math.floor(rand() * PIPES)];
        const len = Math.min(1 + Math.floor(rand() * 64), MAX_PENDING - p.pending);
        if (len <= 0) continue;
        const out = this.#buf.subarray(0, len);
        for (let j = 0; j < len; j++) out[j] = (p.nextOut + j) % 251;
        if (write(p.w, out) !== len) throw new Error("short pipe write");
        p.nextOut += len;
        p.pending += len;
      } else if (x < 0.5) {
        const i = Math.floor(rand() * BHS);
        if (rand() < 0.8) {
          this.#bhs[i].schedule();
          this.#bhDue[i] = true;
        } else {
          this.#bhs[i].cancel();
          this.#bhDue[i] = false;
        }
      } else if (x < 0.6) {
        const id = this.#nextOneshot++;
        this.#oneshotsDue.add(id);
        this.#ctx.bhScheduleOneshot(() => {
          if (!this.#oneshotsDue.delete(id)) throw new Error(`oneshot ${id} ran twice`);
          this.stats.oneshots++;
        });
      } else if (x < 0.85) {
        const i = Math.floor(rand() * TIMERS);
        if (rand() < 0.85) {
          // 0 .. 2 ms out: most polls are timed waits that expire.
          const due = clockGetNs(QEMUClockType.REALTIME) + Math.floor(rand() * 2_000_000);
          this.#timers[i].mod(due);
          this.#timerDue[i] = due;
        } else {
          this.#timers[i].del();
          this.#timerDue[i] = -1;
        }
      } else {
        this.#ctx.notify();
      }
    }
  }

  /** Whether anything the load started is still owed. */
  busy(): boolean {
    return this.#pipes.some((p) => p.pending > 0) || this.#bhDue.includes(true) ||
      this.#timerDue.some((d) => d >= 0) || this.#oneshotsDue.size > 0;
  }

  /** A few operations, then one poll (blocking only when a timer bounds it). */
  step(): void {
    this.#act(1 + Math.floor(this.#rand() * 4));
    const blocking = this.#timerDue.some((d) => d >= 0) && this.#rand() < 0.5;
    this.stats.polls++;
    if (blocking) this.stats.blockingPolls++;
    this.#ctx.poll(blocking);
  }

  /** Polls until nothing is owed; throws if that takes more than `ms`. */
  drain(ms: number): void {
    const end = performance.now() + ms;
    while (this.busy()) {
      if (performance.now() > end) throw new Error(`load not drained in ${ms} ms: ${this.owed()}`);
      this.#ctx.poll(this.#timerDue.some((d) => d >= 0));
    }
  }

  /** What is still owed, for error messages. */
  owed(): string {
    return JSON.stringify({
      bytes: this.#pipes.map((p) => p.pending),
      bhs: this.#bhDue,
      timers: this.#timerDue,
      oneshots: this.#oneshotsDue.size,
    });
  }

  /** Removes handlers, BHs and timers and closes the pipes. */
  dispose(): void {
    for (const r of this.#regs) r[Symbol.dispose]();
    for (const bh of this.#bhs) bh.delete();
    for (const t of this.#timers) t.del();
    for (const p of this.#pipes) {
      close(p.r);
      close(p.w);
    }
  }
}

/**
 * Runs in an IOThread: a fresh `auto` context of its own (io_uring there
 * too, since the main thread has it), `ms` of load, drained and checked.
 */
export function iothreadBurst(
  [seed, ms]: [number, number],
): LoadStats & { fdmon: string; reason: string } {
  using ctx = AioContext.create({ name: `burst-${seed}` });
  const load = new MixedLoad(ctx, seed);
  try {
    const end = performance.now() + ms;
    while (performance.now() < end) load.step();
    load.drain(10_000);
  } finally {
    load.dispose();
  }
  return { ...load.stats, fdmon: ctx.fdmon, reason: ctx.fdmonInfo().reason };
}

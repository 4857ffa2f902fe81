// deno-lint-ignore-file require-yield -- a coroutine body need not yield, as in QEMU
// Benchmarks after QEMU's /perf/* cases of tests/unit/test-coroutine.c, one
// group per case. `deno bench` repeats each function itself, so the inner
// loops are small; read the numbers per inner iteration.
import { Coroutine, type CoroutineFn } from "../aio/coroutine.ts";

const LIFECYCLE = 1000;
const NEST_DEPTH = 1000;
const YIELDS = 10_000;
const CALLS = 10_000;
const COST = 1000;

function* emptyCoroutine(): CoroutineFn {}

Deno.bench({
  name: "create + enter an empty coroutine ×1000",
  group: "/perf/lifecycle",
  fn() {
    for (let i = 0; i < LIFECYCLE; i++) Coroutine.create(emptyCoroutine).enter();
  },
});

interface NestData {
  nEnter: number;
  nReturn: number;
  max: number;
}

function* nest(nd: NestData): CoroutineFn {
  nd.nEnter++;
  if (nd.nEnter < nd.max) Coroutine.create(nest, nd).enter();
  nd.nReturn++;
}

Deno.bench({
  name: "one nested chain of depth 1000",
  group: "/perf/nesting",
  fn() {
    const nd: NestData = { nEnter: 0, nReturn: 0, max: NEST_DEPTH };
    Coroutine.create(nest, nd).enter();
    if (nd.nReturn !== NEST_DEPTH) throw new Error("nesting broke");
  },
});

function* yieldLoop(counter: { n: number }): CoroutineFn {
  while (counter.n > 0) {
    counter.n--;
    yield;
  }
}

Deno.bench({
  name: "enter/yield round trip ×10000",
  group: "/perf/yield",
  baseline: false,
  fn() {
    const counter = { n: YIELDS };
    const co = Coroutine.create(yieldLoop, counter);
    while (counter.n > 0) co.enter();
  },
});

function* bareYieldLoop(counter: { n: number }): Generator<void, void, unknown> {
  while (counter.n > 0) {
    counter.n--;
    yield;
  }
}

Deno.bench({
  name: "bare generator next() ×10000",
  group: "/perf/yield",
  baseline: true,
  fn() {
    const counter = { n: YIELDS };
    const gen = bareYieldLoop(counter);
    while (counter.n > 0) gen.next();
  },
});

// Kept out of line as QEMU's noinline dummy(); V8 may still inline it.
function dummy(c: { n: number }): void {
  c.n--;
}

Deno.bench({
  name: "plain function call ×10000",
  group: "/perf/function-call",
  baseline: true,
  fn() {
    const c = { n: CALLS };
    while (c.n > 0) dummy(c);
  },
});

function* perfCostFunc(): CoroutineFn {
  yield;
}

Deno.bench({
  name: "create, enter, yield, enter to the end ×1000",
  group: "/perf/cost",
  fn() {
    for (let i = 0; i < COST; i++) {
      const co = Coroutine.create(perfCostFunc);
      co.enter();
      co.enter();
    }
  },
});

Deno.bench({
  name: "bare generator: create, next, next ×1000",
  group: "/perf/cost",
  baseline: true,
  fn() {
    for (let i = 0; i < COST; i++) {
      const gen = perfCostFunc();
      gen.next();
      gen.next();
    }
  },
});

// The floor for any coroutine built on a generator: an object that records
// its caller and context and restores the running one around next(). What
// Coroutine does beyond this (scheduling checks, misuse detection, wake-up
// queues, lock counts, termination) is the gap between the two rows.
let floorCurrent: MinimalEntry | null = null;
class MinimalEntry {
  #entry: () => CoroutineFn;
  #gen: CoroutineFn | null = null;
  #caller: MinimalEntry | null = null;
  #ctx: unknown = null;
  #done = false;
  constructor(entry: () => CoroutineFn) {
    this.#entry = entry;
  }
  enter(ctx: unknown): void {
    if (this.#caller !== null || this.#done) throw new Error("cannot enter");
    const from = floorCurrent;
    this.#caller = from;
    this.#ctx = ctx;
    floorCurrent = this;
    let r: IteratorResult<void, void>;
    try {
      r = (this.#gen ??= this.#entry()).next();
    } finally {
      floorCurrent = from;
      this.#caller = null;
    }
    if (r.done) {
      this.#done = true;
      this.#gen = null;
    }
  }
  get ctx(): unknown {
    return this.#ctx;
  }
}

Deno.bench({
  name: "floor: minimal entry wrapper around a generator ×1000",
  group: "/perf/cost",
  fn() {
    for (let i = 0; i < COST; i++) {
      const co = new MinimalEntry(perfCostFunc);
      co.enter(null);
      co.enter(null);
    }
  },
});

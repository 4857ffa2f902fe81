// What tracing costs the loop: the BH and poll cases of aio_bench.ts, run
// in one process against two copies of the code, alternating rounds:
//
//   base        the tree before tracing existed (a git ref, extracted to a
//               temp dir and imported beside this one)
//   base2       a second copy of it: base2/base is the noise floor (A/A)
//   off         this tree, tracing off (the default)
//   on          this tree, tracing on (every poll, dispatch and BH recorded)
//
//   deno run -A bench/trace_cost.ts [--ref <git ref>] [--rounds N] [--ops N]
//                                    [--case <name part>] [--fdmon <name>] [--no-on]
//
// `off` (with base and base2) and `on` (with base) run in two processes:
// they share code, and the traced branches' type feedback must not reach
// `off`. The ref defaults to the merge base of HEAD and `main`. Each round runs
// every case once per variant, in a rotating order; the ratios to base are
// taken within each round, and the table prints their medians. `off/base`
// as close to 1.00 as `base2/base` means the sites cost nothing measurable
// while tracing is off.
import { startTrace, stopTrace } from "../trace/mod.ts";
import { AioContext as ThisAioContext } from "../aio/aio_context.ts";
import { supportedFdMons } from "../fdmon/mod.ts";

const args = Deno.args;
function opt(name: string, def: string): string {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : def;
}
const ROUNDS = Number(opt("--rounds", "41"));
const OPS = Number(opt("--ops", "30000"));
const ONLY_CASE = opt("--case", "");
const ONLY_FDMON = opt("--fdmon", "");

function git(...a: string[]): string {
  const out = new Deno.Command("git", { args: a, cwd: new URL("..", import.meta.url) })
    .outputSync();
  if (!out.success) throw new Error(`git ${a.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout).trim();
}

const ref = opt("--ref", git("merge-base", "HEAD", "main"));
const baseDirs = [0, 1].map(() => Deno.makeTempDirSync({ prefix: "aioloop-trace-base-" }));
for (const baseDir of baseDirs) {
  const archive = new Deno.Command("git", {
    args: ["archive", "--format=tar", ref],
    cwd: new URL("..", import.meta.url),
    stdout: "piped",
  }).outputSync();
  if (!archive.success) throw new Error(`git archive ${ref} failed`);
  const tar = new Deno.Command("tar", { args: ["-x", "-C", baseDir], stdin: "piped" }).spawn();
  const w = tar.stdin.getWriter();
  await w.write(archive.stdout);
  await w.close();
  if (!(await tar.status).success) throw new Error("tar -x failed");
}

type Ctx = {
  bhNew(cb: () => void, o?: { name?: string }): { schedule(): void; delete(): void };
  bhScheduleOneshot(cb: () => void): void;
  poll(blocking: boolean): boolean;
  notify(): void;
  destroy(): void;
};
type CtxClass = { create(o: { fdmon: string; name: string }): Ctx };
const [BaseAioContext, Base2AioContext] = await Promise.all(
  baseDirs.map(async (d) =>
    (await import(`file://${d}/aio/aio_context.ts`)).AioContext as CtxClass
  ),
);

interface Case {
  name: string;
  setup(C: CtxClass, fdmon: string): { run(n: number): void; done(): void };
}

const noop = (): void => {};
const CASES: Case[] = [
  {
    name: "BH schedule + poll(false)",
    setup(C, fdmon) {
      const ctx = C.create({ fdmon, name: "bench" });
      const bh = ctx.bhNew(noop, { name: "bench" });
      return {
        run(n) {
          for (let i = 0; i < n; i++) {
            bh.schedule();
            if (!ctx.poll(false)) throw new Error("the BH did not run");
          }
        },
        done() {
          bh.delete();
          ctx.destroy();
        },
      };
    },
  },
  {
    name: "oneshot BH + poll(false)",
    setup(C, fdmon) {
      const ctx = C.create({ fdmon, name: "bench" });
      return {
        run(n) {
          for (let i = 0; i < n; i++) {
            ctx.bhScheduleOneshot(noop);
            if (!ctx.poll(false)) throw new Error("the BH did not run");
          }
        },
        done: () => ctx.destroy(),
      };
    },
  },
  {
    name: "poll(false), empty context",
    setup(C, fdmon) {
      const ctx = C.create({ fdmon, name: "bench" });
      return {
        run(n) {
          for (let i = 0; i < n; i++) ctx.poll(false);
        },
        done: () => ctx.destroy(),
      };
    },
  },
  {
    name: "notify() + poll(true)",
    setup(C, fdmon) {
      const ctx = C.create({ fdmon, name: "bench" });
      return {
        run(n) {
          for (let i = 0; i < n; i++) {
            ctx.notify();
            ctx.poll(true);
          }
        },
        done: () => ctx.destroy(),
      };
    },
  },
];

const ALL_VARIANTS = ["base", "base2", "off", "on"] as const;
type Variant = typeof ALL_VARIANTS[number];
// `off` and `on` share their code: run in one isolate, `on` would give the
// sites type feedback from the traced branches, which a program that never
// traces does not have. So each runs in its own process (`--variants`).
const picked = opt("--variants", "");
const VARIANTS: readonly Variant[] = picked === ""
  ? ALL_VARIANTS
  : ALL_VARIANTS.filter((v) => picked.split(",").includes(v));
if (picked === "") {
  // The parent: one child per comparison, then their tables.
  const rest = args.filter((a, i) => a !== "--variants" && args[i - 1] !== "--variants");
  for (const set of ["base,base2,off", "base,on"]) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL(import.meta.url).pathname, ...rest, "--variants", set],
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (!out.success) Deno.exit(out.code);
    console.log();
  }
  Deno.exit(0);
}

type Setup = ReturnType<Case["setup"]>;

/** ns/op of one sample; `on` records into a fresh session (the buffer never fills). */
function sample(v: Variant, s: Setup): number {
  if (v === "on") startTrace();
  const t0 = performance.now();
  s.run(OPS);
  const ns = (performance.now() - t0) * 1e6 / OPS;
  if (v === "on") stopTrace();
  return ns;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const rows: string[][] = [[
  "case",
  "base ns/op",
  "off ns/op",
  "on ns/op",
  "base2/base (A/A)",
  "off/base",
  "on/base",
]];
try {
  for (const fdmon of supportedFdMons()) {
    if (ONLY_FDMON !== "" && fdmon !== ONLY_FDMON) continue;
    for (const c of CASES) {
      if (!c.name.includes(ONLY_CASE)) continue;
      // One context per variant for all rounds, warmed up first (JIT).
      const classes: Record<Variant, CtxClass> = {
        base: BaseAioContext,
        base2: Base2AioContext,
        off: ThisAioContext as unknown as CtxClass,
        on: ThisAioContext as unknown as CtxClass,
      };
      const setups = {} as Record<Variant, Setup>;
      for (const v of VARIANTS) setups[v] = c.setup(classes[v], fdmon);
      const ns: Record<Variant, number[]> = { base: [], base2: [], off: [], on: [] };
      const rAA: number[] = [], rOff: number[] = [], rOn: number[] = [];
      try {
        for (let w = 0; w < 3; w++) for (const v of VARIANTS) sample(v, setups[v]);
        for (let r = 0; r < ROUNDS; r++) {
          // Rotate the order, so drift favours no variant.
          const order = VARIANTS.map((_, i) => VARIANTS[(i + r) % VARIANTS.length]);
          const got = {} as Record<Variant, number>;
          for (const v of order) got[v] = sample(v, setups[v]);
          for (const v of VARIANTS) ns[v].push(got[v]);
          if (got.base2 !== undefined) rAA.push(got.base2 / got.base);
          if (got.off !== undefined) rOff.push(got.off / got.base);
          if (got.on !== undefined) rOn.push(got.on / got.base);
        }
      } finally {
        for (const v of VARIANTS) setups[v].done();
      }
      const f = (x: number): string => x.toFixed(1);
      const cell = (xs: number[], g: (xs: number[]) => string): string =>
        xs.length === 0 ? "-" : g(xs);
      rows.push([
        `${c.name} [${fdmon}]`,
        f(median(ns.base)),
        cell(ns.off, (x) => f(median(x))),
        cell(ns.on, (x) => f(median(x))),
        cell(rAA, (x) => `${median(x).toFixed(3)}×`),
        cell(rOff, (x) => `${median(x).toFixed(3)}×`),
        cell(rOn, (x) => `${median(x).toFixed(2)}×`),
      ]);
      console.error(`${c.name} [${fdmon}] done`);
    }
  }
} finally {
  for (const d of baseDirs) Deno.removeSync(d, { recursive: true });
}

const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
console.log(
  `base: ${ref.slice(0, 12)}; ${ROUNDS} rounds of ${OPS} ops per case and variant; ` +
    `medians over the rounds (ratios taken within each round)\n`,
);
for (const [i, r] of rows.entries()) {
  console.log(r.map((c, j) => (j === 0 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join("  "));
  if (i === 0) console.log(widths.map((w) => "-".repeat(w)).join("  "));
}

// The side-by-side runner: builds and runs the C anchors (bench/anchors/),
// runs `deno bench --json` on the bench files, and prints one table of
// aioloop's ns/op next to each case's anchors, with the ratio, all measured
// in this one run (the machines are noisy: compare ratios, not absolutes).
//
//   deno run -A bench/run.ts [--no-anchors] [bench files...]
//
// Without files it runs every bench/*_bench.ts. AIOLOOP_BENCH_FDS sets the
// fd count of the many-fds case (default 10 000); the soft fd limit is
// raised for it through setrlimit(2) when the hard limit allows, and the
// count is scaled down (with a note) when it does not.
import { type AnchorResult, buildAnchors, runAnchor } from "./_anchor.ts";
import { ensureNofile } from "../sys/rlimit.ts";

/** A bench case and the anchors it is compared with, in preference order. */
interface Pair {
  group: string;
  /** Bench names starting with this get these anchors. */
  prefix: string;
  /** "c.*" / "glib.*" anchor programs, or "js:<bench name prefix>" for an in-process floor. */
  anchors: string[];
}

// What each case is compared with (bench/README.md explains why).
const PAIRS: Pair[] = [
  {
    group: "bh",
    prefix: "BH schedule + poll(false)",
    anchors: ["glib.idle_oneshot", "glib.source_ready", "js:JS floor: minimal BH queue"],
  },
  { group: "bh", prefix: "oneshot BH + poll(false)", anchors: ["glib.idle_oneshot"] },
  {
    group: "empty poll",
    prefix: "poll(false), empty context",
    anchors: ["glib.empty_iteration", "c.poll_empty"],
  },
  {
    group: "notify",
    prefix: "notify() + poll(true)",
    anchors: ["glib.wakeup_iteration", "c.efd_write_read"],
  },
  {
    group: "notify",
    prefix: "EventNotifier set + poll(true) [poll]",
    anchors: ["c.efd_roundtrip_poll", "js:raw FFI: eventfd write + poll + read"],
  },
  {
    group: "notify",
    prefix: "EventNotifier set + poll(true) [epoll]",
    anchors: ["c.efd_roundtrip_epoll", "js:raw FFI: eventfd write + epoll_wait + read"],
  },
  {
    group: "notify",
    prefix: "raw FFI: eventfd write + poll + read",
    anchors: ["c.efd_roundtrip_poll"],
  },
  {
    group: "notify",
    prefix: "raw FFI: eventfd write + epoll_wait + read",
    anchors: ["c.efd_roundtrip_epoll"],
  },
  {
    group: "10k fds",
    prefix: "poll(false), ",
    anchors: ["c.epoll_many", "js:raw FFI: epoll_wait"],
  },
  { group: "10k fds", prefix: "raw FFI: epoll_wait", anchors: ["c.epoll_many"] },
  { group: "10k fds", prefix: "raw FFI: pollNs", anchors: ["c.poll_many"] },
  // Thread pool, 2 workers, trivial jobs: a postMessage pool of the same
  // size and a bare shared-memory ring (no pool semantics), same batch.
  {
    group: "thread pool throughput",
    prefix: "aioloop pool",
    anchors: ["js:postMessage pool", "js:SAB ring anchor"],
  },
  {
    group: "thread pool latency",
    prefix: "aioloop pool",
    anchors: ["js:postMessage pool", "js:SAB ring anchor"],
  },
];

interface BenchJson {
  runtime: string;
  cpu: string;
  benches: {
    origin: string;
    group: string | null;
    name: string;
    baseline: boolean;
    results: { ok?: { avg: number; n: number; p75: number }; failed?: unknown }[];
  }[];
}

interface Row {
  case: string;
  ns: number | null;
  anchor: string;
  /** The anchor with an idle second thread (C), or the in-process floor (JS). */
  anchorNs: number | null;
  /** The C anchor in a single-threaded process; null for JS floors. */
  anchorNs1: number | null;
}

const args = Deno.args.filter((a) => !a.startsWith("--"));
const noAnchors = Deno.args.includes("--no-anchors");
const benchDir = new URL("./", import.meta.url);
const files = args.length > 0 ? args : [...Deno.readDirSync(benchDir)]
  .filter((e) => e.isFile && e.name.endsWith("_bench.ts"))
  .map((e) => new URL(e.name, benchDir).pathname)
  .sort();

// The fd count of the many-fds case; the children inherit the raised limit.
const wantFds = Number(Deno.env.get("AIOLOOP_BENCH_FDS") || 10_000);
const soft = ensureNofile(wantFds + 256);
const fdCount = soft >= wantFds + 256 ? wantFds : Math.max(64, soft - 256);
const notes: string[] = [];
if (fdCount !== wantFds) {
  notes.push(`fd limit ${soft}: the many-fds case uses ${fdCount} idle fds, not ${wantFds}`);
}

// 1. The C anchors, one after the other (the machine has 2 cores).
const anchors = new Map<string, AnchorResult>();
let compiler = "", glib = "";
if (!noAnchors) {
  await using build = await buildAnchors();
  compiler = build.compiler;
  glib = build.glib;
  for (const s of build.skipped) notes.push(`anchor ${s.name} skipped: ${s.reason}`);
  for (const p of build.programs) {
    console.error(`anchor ${p.name} ...`);
    try {
      for (const r of await runAnchor(p, fdCount)) anchors.set(r.anchor, r);
    } catch (e) {
      notes.push(String((e as Error).message));
    }
  }
}

// 2. deno bench, JSON to our stdout pipe, its progress to stderr.
console.error(`deno bench --json ${files.join(" ")} ...`);
const out = await new Deno.Command(Deno.execPath(), {
  args: ["bench", "-A", "--json", ...files],
  env: { AIOLOOP_BENCH_FDS: String(fdCount) },
  stdout: "piped",
  stderr: "inherit",
}).output();
const text = new TextDecoder().decode(out.stdout);
let bench: BenchJson;
try {
  bench = JSON.parse(text.slice(text.indexOf("{")));
} catch {
  console.error(text);
  throw new Error(`deno bench printed no JSON (exit ${out.code})`);
}
if (!out.success) notes.push(`deno bench exited with ${out.code}: some cases failed`);

// 3. The table.
const avgOf = (b: BenchJson["benches"][number]): number | null => b.results[0]?.ok?.avg ?? null;
const rows: Row[] = [];
for (const b of bench.benches) {
  const label = `${b.group ?? "-"} / ${b.name}`;
  const pair = PAIRS.find((p) => p.group === b.group && b.name.startsWith(p.prefix));
  const ns = avgOf(b);
  if (pair === undefined) {
    rows.push({ case: label, ns, anchor: "-", anchorNs: null, anchorNs1: null });
    continue;
  }
  for (const a of pair.anchors) {
    if (a.startsWith("js:")) {
      const ref = bench.benches.find((x) => x.group === b.group && x.name.startsWith(a.slice(3)));
      const refNs = ref ? avgOf(ref) : null;
      rows.push({
        case: label,
        ns,
        anchor: `JS: ${ref?.name ?? a}`,
        anchorNs: refNs,
        anchorNs1: null,
      });
    } else {
      const mt = anchors.get(`${a}.mt`)?.ns ?? null;
      const st = anchors.get(a)?.ns ?? null;
      rows.push({ case: label, ns, anchor: a, anchorNs: mt, anchorNs1: st });
    }
  }
}

const fmtNs = (v: number | null): string =>
  v === null ? "-" : v >= 10_000 ? `${(v / 1000).toFixed(1)} µs` : `${v.toFixed(1)} ns`;
const fmtRatio = (a: number | null, b: number | null): string =>
  a === null || b === null || b === 0 ? "-" : `${(a / b).toFixed(2)}×`;
const table = [[
  "case",
  "aioloop ns/op",
  "anchor",
  "anchor ns/op",
  "ratio",
  "anchor, 1 thread",
  "ratio",
]];
let last = "";
for (const r of rows) {
  const first = r.case !== last;
  table.push([
    first ? r.case : "",
    first ? fmtNs(r.ns) : "",
    r.anchor,
    fmtNs(r.anchorNs),
    fmtRatio(r.ns, r.anchorNs),
    fmtNs(r.anchorNs1),
    fmtRatio(r.ns, r.anchorNs1),
  ]);
  last = r.case;
}
const LEFT = new Set([0, 2]);
const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
const line = (row: string[]): string =>
  `| ${row.map((c, i) => LEFT.has(i) ? c.padEnd(widths[i]) : c.padStart(widths[i])).join(" | ")} |`;
const rule = `|${
  widths.map((w, i) => LEFT.has(i) ? "-".repeat(w + 2) : `${"-".repeat(w + 1)}:`).join("|")
}|`;
console.log(`aioloop benchmarks, ${new Date().toISOString()}`);
console.log(`${bench.runtime}, ${bench.cpu}; cc: ${compiler || "none"}; GLib: ${glib || "none"}`);
console.log(`many-fds case: ${fdCount} idle fds + 1 ready`);
console.log("aioloop ns/op: deno bench average. anchor ns/op: C median of 7 runs with an idle");
console.log("second thread (as in Deno and QEMU), or the in-process JS floor; 1 thread: the");
console.log("same C program single-threaded. ratio = aioloop / anchor.\n");
console.log(line(table[0]));
console.log(rule);
for (const row of table.slice(1)) console.log(line(row));
if (anchors.size > 0) {
  console.log("\nC anchors (median of 7 repetitions; min - max; .mt = with an idle thread):");
  for (const a of anchors.values()) {
    const size = a.size > 1 ? ` [${a.size} fds]` : "";
    console.log(`  ${a.anchor}${size}: ${fmtNs(a.ns)} (${fmtNs(a.min)} - ${fmtNs(a.max)})`);
  }
}
for (const n of notes) console.log(`note: ${n}`);
if (!out.success) Deno.exitCode = 1;

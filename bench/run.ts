// The side-by-side runner: builds and runs the C anchors (bench/anchors/),
// runs `deno bench --json` on the bench files, and prints one table of
// aioloop's ns/op next to each case's anchors, with the ratio, all measured
// in this one run (the machines are noisy: compare ratios, not absolutes).
//
//   deno run -A bench/run.ts [--no-anchors] [--no-scripts] [bench files...]
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
  /** Operations per bench iteration (a batch), so ns/op compares with the anchors'. */
  batch?: number;
}

// bench/iothread_bench.ts times batches of this many round trips.
const RTT_BATCH = 1000;
const RTT_GROUP = "main <-> thread round trip";
const RTT_ANCHORS = [
  "c.efd_pingpong_threads",
  "c.spin_pingpong_threads",
  "js:spin floor: Atomics ping-pong",
];

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
  {
    group: "timed wait",
    prefix: "ready fd ends a timed poll(true)",
    anchors: ["js:raw FFI: ppoll on a ready eventfd, 1 s timeout"],
  },
  {
    group: "timed wait expiry",
    prefix: "timer 20 us out + poll(true)",
    anchors: ["js:raw FFI: ppoll on an idle eventfd, 20 us timeout"],
  },
  { group: "10k fds", prefix: "raw FFI: pollNs", anchors: ["c.poll_many"] },
  {
    group: "generic thread pool throughput",
    prefix: "generic ThreadPool",
    anchors: ["js:AIO pool, 2 workers"],
  },
  {
    group: "4k read",
    prefix: "AioFile",
    anchors: ["js:pread(2) via FFI, sync", "js:io_uring READ, bare ring"],
  },
  { group: "4k read", prefix: "io_uring READ", anchors: ["js:pread(2) via FFI, sync"] },
  { group: "4k read", prefix: "Deno.FsFile", anchors: ["js:pread(2) via FFI, sync"] },
  {
    group: "4k read x32",
    prefix: "AioFile",
    anchors: ["js:pread(2) via FFI, sync x32", "js:io_uring READ, bare ring, 32 in flight"],
  },
  { group: "4k read x32", prefix: "io_uring READ", anchors: ["js:pread(2) via FFI, sync x32"] },
  { group: "4k read x32", prefix: "Deno.FsFile", anchors: ["js:pread(2) via FFI, sync x32"] },
  ...[
    "IOThread shared-BH ping-pong, polling both sides",
    "IOThread shared-BH ping-pong, IOThread polls, main sleeps",
    "IOThread shared-BH ping-pong, polling off",
    "IOThread.runSync(), polling both sides",
    "IOThread.runSync(), IOThread polls, main sleeps",
    "IOThread.run() named request",
    "raw FFI eventfd ping-pong",
  ].map((prefix) => ({ group: RTT_GROUP, prefix, anchors: RTT_ANCHORS, batch: RTT_BATCH })),
  {
    group: RTT_GROUP,
    prefix: "spin floor: Atomics ping-pong",
    anchors: ["c.spin_pingpong_threads"],
    batch: RTT_BATCH,
  },
  {
    group: "/perf/cost",
    prefix: "create, enter, yield, enter",
    anchors: ["js:bare generator", "js:floor: minimal entry wrapper"],
  },
  { group: "/perf/cost", prefix: "floor: minimal entry wrapper", anchors: ["js:bare generator"] },
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

/**
 * Measurements that are not ns per operation (how late a timer fires) run as
 * their own scripts after deno bench; their tables are printed as they come,
 * anchors included (each script measures its anchor in the same run).
 */
const SCRIPTS: { file: string; args: string[] }[] = [
  { file: "_lateness.ts", args: ["--rounds", "11", "--samples", "150"] },
  { file: "_http_lateness.ts", args: ["--rounds", "2", "--samples", "100"] },
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
/** Skips the lateness scripts (they take a few minutes). */
const noScripts = Deno.args.includes("--no-scripts");
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
  const per = pair?.batch ?? 1;
  const raw = avgOf(b);
  const ns = raw === null ? null : raw / per;
  if (pair === undefined) {
    rows.push({ case: label, ns, anchor: "-", anchorNs: null, anchorNs1: null });
    continue;
  }
  for (const a of pair.anchors) {
    if (a.startsWith("js:")) {
      const ref = bench.benches.find((x) => x.group === b.group && x.name.startsWith(a.slice(3)));
      const refAvg = ref ? avgOf(ref) : null;
      const refNs = refAvg === null ? null : refAvg / per;
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
for (const sc of args.length > 0 || noScripts ? [] : SCRIPTS) {
  console.error(`${sc.file} ${sc.args.join(" ")} ...`);
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(sc.file, benchDir).pathname, ...sc.args],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  console.log(`\n${sc.file}:`);
  console.log(new TextDecoder().decode(r.stdout).trimEnd());
  if (!r.success) notes.push(`${sc.file} exited with ${r.code}`);
}
for (const n of notes) console.log(`note: ${n}`);
if (!out.success) Deno.exitCode = 1;

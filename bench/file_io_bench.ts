// 4 KiB random reads of a cached 64 MiB file: AioFile through an io_uring
// context (one read at a time, and 32 in flight) against Deno.FsFile (sync
// and async seek + read) and a synchronous pread(2) loop through FFI.
//
//   deno bench -A bench/file_io_bench.ts    (deno bench cases; bench/run.ts rows)
//   deno run -A bench/file_io_bench.ts      (alternating rounds, median, ratios)
//
// Every case reads the same sequence of random 4 KiB-aligned blocks and
// checks the byte count. The file is written once and stays in the page
// cache, so this measures the per-request cost of each path, not the disk.
// In `deno run` mode the cases take turns, round after round, and the table
// gives each case's median ns/read with its ratio to the pread loop measured
// in the same rounds.
import { AioContext } from "../aio/aio_context.ts";
import { AioFile } from "../aio/aio_file.ts";
import { fdmonIoUring } from "../fdmon/io_uring.ts";
import { IoUringRing } from "../fdmon/_io_uring_ring.ts";
import { prepRead, Sqe } from "../fdmon/io_uring_sqe.ts";
import { close, O_RDONLY, open, pread } from "../sys/mod.ts";

const FILE_SIZE = 64 * 1024 * 1024;
const BLOCK = 4096;
const BLOCKS = FILE_SIZE / BLOCK;
const DEPTH = 32;
const HAVE_URING = fdmonIoUring.supported();

function fail(what: string): never {
  throw new Error(`Benchmark invariant broken: ${what}`);
}

// ---- the file and the offsets ----

const path = Deno.makeTempFileSync({ prefix: "aioloop_file_io_" });
{
  const chunk = new Uint8Array(1024 * 1024);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31) & 0xff;
  using f = Deno.openSync(path, { write: true });
  for (let i = 0; i < FILE_SIZE / chunk.length; i++) {
    chunk[0] = i; // no two megabytes alike
    f.writeSync(chunk);
  }
}
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(path);
  } catch {
    // already gone
  }
});

// A fixed pseudo-random sequence of block offsets (xorshift32).
const OFFSETS = new Float64Array(1 << 16);
{
  let x = 0x9e3779b9;
  for (let i = 0; i < OFFSETS.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    OFFSETS[i] = ((x >>> 0) % BLOCKS) * BLOCK;
  }
}
const OFF_MASK = OFFSETS.length - 1;
let next = 0;
const nextOffset = (): number => OFFSETS[next++ & OFF_MASK];

const rawFd = open(path, O_RDONLY);
const fsFile = Deno.openSync(path, { read: true });
const buf = new Uint8Array(new ArrayBuffer(BLOCK));
const bufs = Array.from({ length: DEPTH }, () => new Uint8Array(new ArrayBuffer(BLOCK)));

// ---- the cases: one read (or DEPTH reads) per call ----

function preadOne(): void {
  if (pread(rawFd, buf, nextOffset()) !== BLOCK) fail("short pread");
}

function preadBatch(): void {
  for (let i = 0; i < DEPTH; i++) {
    if (pread(rawFd, bufs[i], nextOffset()) !== BLOCK) fail("short pread");
  }
}

function fsSyncOne(): void {
  fsFile.seekSync(nextOffset(), Deno.SeekMode.Start);
  if (fsFile.readSync(buf) !== BLOCK) fail("short readSync");
}

function fsSyncBatch(): void {
  for (let i = 0; i < DEPTH; i++) {
    fsFile.seekSync(nextOffset(), Deno.SeekMode.Start);
    if (fsFile.readSync(bufs[i]) !== BLOCK) fail("short readSync");
  }
}

async function fsAsyncOne(): Promise<void> {
  await fsFile.seek(nextOffset(), Deno.SeekMode.Start);
  if (await fsFile.read(buf) !== BLOCK) fail("short read");
}

const ctx = HAVE_URING ? AioContext.create({ fdmon: "io_uring", name: "file_io" }) : null;
const aioFile = ctx !== null ? AioFile.open(ctx, path) : null;
let pending = 0;
const onRead = (res: number): void => {
  if (res !== BLOCK) fail(`AioFile read returned ${res}`);
  pending--;
};

function aioOne(): void {
  const c = ctx!;
  pending = 1;
  aioFile!.read(buf, nextOffset(), onRead);
  while (pending > 0) c.poll(true);
}

function aioBatch(): void {
  const c = ctx!;
  const f = aioFile!;
  pending = DEPTH;
  for (let i = 0; i < DEPTH; i++) f.read(bufs[i], nextOffset(), onRead);
  while (pending > 0) c.poll(true);
}

async function aioPromiseOne(): Promise<void> {
  const p = aioFile!.readAsync(buf, nextOffset());
  while (aioFile!.inFlight > 0) ctx!.poll(true);
  if (await p !== BLOCK) fail("short readAsync");
}

// The floor of the io_uring path: the same READ on a bare ring, no context,
// no handler table, no dispatch; what the kernel and FFI cost per request.
const rawRing = HAVE_URING ? IoUringRing.create(64) : null;
const rawSqe = new Sqe();
function rawUringOne(): void {
  const ring = rawRing!;
  rawSqe.reset();
  prepRead(rawSqe, rawFd, buf, nextOffset());
  rawSqe.takePins();
  ring.prepWords(rawSqe.words, 0, 0);
  while (ring.cqReady() === 0) ring.submit(1);
  if (ring.cqeRes() !== BLOCK) fail("short io_uring read");
  ring.cqAdvance();
}

function rawUringBatch(): void {
  const ring = rawRing!;
  for (let i = 0; i < DEPTH; i++) {
    rawSqe.reset();
    prepRead(rawSqe, rawFd, bufs[i], nextOffset());
    rawSqe.takePins();
    ring.prepWords(rawSqe.words, i, 0);
  }
  let seen = 0;
  while (seen < DEPTH) {
    if (ring.cqReady() === 0) ring.submit(1);
    while (ring.cqReady() > 0) {
      if (ring.cqeRes() !== BLOCK) fail("short io_uring read");
      ring.cqAdvance();
      seen++;
    }
  }
}

interface Case {
  group: string;
  name: string;
  fn: () => void | Promise<void>;
  baseline?: boolean;
  uring?: boolean;
  /** Reads per call. */
  reads: number;
}

const CASES: Case[] = [
  { group: "4k read", name: "pread(2) via FFI, sync", fn: preadOne, baseline: true, reads: 1 },
  { group: "4k read", name: "Deno.FsFile seekSync + readSync", fn: fsSyncOne, reads: 1 },
  { group: "4k read", name: "Deno.FsFile seek + read (async)", fn: fsAsyncOne, reads: 1 },
  { group: "4k read", name: "io_uring READ, bare ring", fn: rawUringOne, uring: true, reads: 1 },
  { group: "4k read", name: "AioFile read, callback", fn: aioOne, uring: true, reads: 1 },
  {
    group: "4k read",
    name: "AioFile readAsync (promise)",
    fn: aioPromiseOne,
    uring: true,
    reads: 1,
  },
  {
    group: "4k read x32",
    name: "pread(2) via FFI, sync x32",
    fn: preadBatch,
    baseline: true,
    reads: DEPTH,
  },
  {
    group: "4k read x32",
    name: "Deno.FsFile seekSync + readSync x32",
    fn: fsSyncBatch,
    reads: DEPTH,
  },
  {
    group: "4k read x32",
    name: "io_uring READ, bare ring, 32 in flight",
    fn: rawUringBatch,
    uring: true,
    reads: DEPTH,
  },
  {
    group: "4k read x32",
    name: "AioFile read, 32 in flight",
    fn: aioBatch,
    uring: true,
    reads: DEPTH,
  },
];

const live = CASES.filter((c) => HAVE_URING || !c.uring);

if (!import.meta.main) {
  for (const c of live) {
    Deno.bench({ name: c.name, group: c.group, baseline: c.baseline ?? false, fn: c.fn });
  }
} else {
  await alternatingRounds();
}

/** deno run mode: each round runs every case for a fixed read count, in turn. */
async function alternatingRounds(): Promise<void> {
  const ROUNDS = Number(Deno.env.get("AIOLOOP_BENCH_ROUNDS") || 15);
  const READS = 4096; // per case per round
  const samples = new Map<Case, number[]>(live.map((c) => [c, []]));
  // Warm-up: JIT and page cache.
  for (const c of live) for (let i = 0; i < 64; i++) await c.fn();
  for (let r = 0; r < ROUNDS; r++) {
    for (const c of live) {
      const calls = READS / c.reads;
      const t0 = performance.now();
      if (c.fn.constructor.name === "AsyncFunction") {
        for (let i = 0; i < calls; i++) await c.fn();
      } else {
        const f = c.fn as () => void;
        for (let i = 0; i < calls; i++) f();
      }
      samples.get(c)!.push(((performance.now() - t0) * 1e6) / READS);
    }
  }
  const median = (xs: number[]): number => {
    const s = xs.slice().sort((a, b) => a - b);
    return s[s.length >> 1];
  };
  const anchor = median(samples.get(live[0])!);
  console.log(
    `4 KiB random reads of a cached ${FILE_SIZE >> 20} MiB file; median of ${ROUNDS} ` +
      `alternating rounds of ${READS} reads per case; ratio = case / pread loop.`,
  );
  if (!HAVE_URING) console.log("io_uring is not available here: the AioFile cases are skipped.");
  const ringOne = live.find((c) => c.fn === rawUringOne);
  const ringBatch = live.find((c) => c.fn === rawUringBatch);
  console.log("| case | ns/read | min | ratio to pread | ratio to bare ring |");
  console.log("|---|---:|---:|---:|---:|");
  for (const c of live) {
    const xs = samples.get(c)!;
    const m = median(xs);
    const ring = c.reads === 1 ? ringOne : ringBatch;
    const toRing = ring !== undefined ? `${(m / median(samples.get(ring)!)).toFixed(2)}×` : "-";
    console.log(
      `| ${c.name} | ${m.toFixed(0)} | ${Math.min(...xs).toFixed(0)} | ${
        (m / anchor).toFixed(2)
      }× | ${toRing} |`,
    );
  }
  teardown();
}

function teardown(): void {
  aioFile?.close();
  rawRing?.close();
  ctx?.destroy();
  fsFile.close();
  close(rawFd);
  Deno.removeSync(path);
}

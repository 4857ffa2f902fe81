// `deno task test`: the whole suite (own tests, QEMU parity, doc examples) in
// two `deno test` processes at once.
//
// Why two processes: most of the suite's wall time is waiting, not CPU (Worker
// start-up, QEMU's own sleeps in the thread-pool cancel cases, RCU grace
// periods), so two runs side by side on a 2-core machine take little more
// than the longer of the two. Why processes and not `deno test --parallel`:
// that runs modules as isolates of one process, and the leak checks read
// /proc/self/fd, which is per process; so is the fd limit and the io_uring
// rings a test opens.
//
//   deno run -A _tests/_run.ts [deno test options, e.g. --filter /aio/bh/]
//
// Each shard's output is printed whole when it ends (never interleaved), so
// every `ok | N passed | K failed` closing line stays on a line of its own.
// The exit status is non-zero when any shard fails.

import { collectExamples, writeDocTests } from "./_doc_examples.ts";

const ROOT = new URL("../", import.meta.url);

/**
 * Seconds each heavy file took in a quiet full run (the rest count 1): only
 * used to balance the shards, so rough is fine.
 */
const WEIGHT: Record<string, number> = {
  "_tests/parity/test_thread_pool_test.ts": 35,
  "_tests/parity/test_aio_multithread_test.ts": 30,
  "_tests/parity/test_rcu_list_test.ts": 10,
  "_tests/parity/test_aio_test.ts": 8,
  "_tests/parity/rcutorture_test.ts": 4,
  "_tests/thread_test.ts": 9,
  "_tests/iothread_test.ts": 8,
  "_tests/thread_pool_test.ts": 6,
  "_tests/cpus_test.ts": 6,
  "_tests/process_clock_test.ts": 6,
  ".doc_tests/cpus_test.ts": 8,
  ".doc_tests/iothread_test.ts": 6,
};

function listTests(dir: string, out: string[]): void {
  for (const e of Deno.readDirSync(new URL(dir, ROOT))) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) listTests(path, out);
    else if (e.isFile && e.name.endsWith("_test.ts")) out.push(path);
  }
}

/** Longest first onto the lighter shard. */
function shard(files: string[], n: number): string[][] {
  const shards = Array.from({ length: n }, () => ({ files: [] as string[], load: 0 }));
  const weight = (f: string): number => WEIGHT[f] ?? 1;
  for (const f of [...files].sort((a, b) => weight(b) - weight(a) || a.localeCompare(b))) {
    const lightest = shards.reduce((a, b) => (b.load < a.load ? b : a));
    lightest.files.push(f);
    lightest.load += weight(f);
  }
  return shards.map((s) => s.files.sort()).filter((s) => s.length > 0);
}

async function runShard(files: string[], extra: string[]): Promise<boolean> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", ...extra, ...files],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: Deno.env.get("NO_COLOR") ?? "1" },
  }).output();
  // Printed in one go so two shards never interleave.
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  await Deno.stdout.write(new TextEncoder().encode(text.endsWith("\n") ? text : text + "\n"));
  return out.success;
}

if (import.meta.main) {
  const examples = await collectExamples();
  const docFiles = await writeDocTests(examples);
  console.log(`${examples.length} doc examples from ${docFiles.length} files in .doc_tests/`);
  const files: string[] = [];
  listTests("_tests", files);
  files.push(...docFiles);
  const shards = shard(files, 2);
  const started = performance.now();
  const ok = await Promise.all(shards.map((s) => runShard(s, Deno.args)));
  const secs = ((performance.now() - started) / 1000).toFixed(0);
  console.log(`${shards.length} shards in ${secs}s: ${ok.every((x) => x) ? "ok" : "FAILED"}`);
  if (!ok.every((x) => x)) Deno.exit(1);
}

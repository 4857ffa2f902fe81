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
// Type checking (most of the CPU a run takes) is done once, not per shard:
// the first shard runs `deno check` over every test module (the doc examples
// come in through their literal dynamic imports) before its own tests, and
// both shards then run with --no-check. The shards are balanced with that
// in the first one's load.
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
  "_tests/parity/test_thread_pool_test.ts": 38,
  "_tests/parity/test_aio_multithread_test.ts": 30,
  "_tests/iothread_test.ts": 11,
  "_tests/parity/test_rcu_list_test.ts": 10,
  "_tests/cpus_test.ts": 9,
  "_tests/generic_thread_pool_test.ts": 8,
  "_tests/thread_pool_test.ts": 8,
  "_tests/demo_test.ts": 7,
  "_tests/parity/test_aio_test.ts": 6,
  "_tests/thread_test.ts": 5,
  "_tests/thread_pool_fast_path_test.ts": 5,
  "_tests/aio_poll_notifier_test.ts": 5,
  ".doc_tests/thread_pool_test.ts": 5,
  "_tests/readme_test.ts": 5,
  "_tests/aio_model_test.ts": 4,
  ".doc_tests/cpus_test.ts": 4,
  "_tests/parity/rcutorture_test.ts": 3,
  ".doc_tests/iothread_test.ts": 3,
  "_tests/main_loop_test.ts": 2,
  "_tests/trace_test.ts": 2,
};

function listTests(dir: string, out: string[]): void {
  for (const e of Deno.readDirSync(new URL(dir, ROOT))) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) listTests(path, out);
    else if (e.isFile && e.name.endsWith("_test.ts")) out.push(path);
  }
}

/** Seconds of the one `deno check` of every test module, on the first shard. */
const CHECK_WEIGHT = 25;

/** Longest first onto the lighter shard; the first one starts with the check. */
function shard(files: string[], n: number): string[][] {
  const shards = Array.from({ length: n }, (_, i) => ({
    files: [] as string[],
    load: i === 0 ? CHECK_WEIGHT : 0,
  }));
  const weight = (f: string): number => WEIGHT[f] ?? 1;
  for (const f of [...files].sort((a, b) => weight(b) - weight(a) || a.localeCompare(b))) {
    const lightest = shards.reduce((a, b) => (b.load < a.load ? b : a));
    lightest.files.push(f);
    lightest.load += weight(f);
  }
  return shards.map((s) => s.files.sort());
}

async function deno(args: string[]): Promise<{ ok: boolean; text: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: Deno.env.get("NO_COLOR") ?? "1" },
  }).output();
  const d = new TextDecoder();
  return { ok: out.success, text: d.decode(out.stdout) + d.decode(out.stderr) };
}

async function runShard(files: string[], extra: string[], checkFirst: string[]): Promise<boolean> {
  let text = "";
  let ok = true;
  if (checkFirst.length > 0) {
    const c = await deno(["check", ...checkFirst]);
    text += c.text;
    ok = c.ok;
  }
  if (ok) {
    const t = await deno(["test", "-A", "--no-check", ...extra, ...files]);
    text += t.text;
    ok = t.ok;
  }
  // Printed in one go so two shards never interleave.
  await Deno.stdout.write(new TextEncoder().encode(text.endsWith("\n") ? text : text + "\n"));
  return ok;
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
  const ok = await Promise.all(shards.map((s, i) => runShard(s, Deno.args, i === 0 ? files : [])));
  const secs = ((performance.now() - started) / 1000).toFixed(0);
  console.log(`${shards.length} shards in ${secs}s: ${ok.every((x) => x) ? "ok" : "FAILED"}`);
  if (!ok.every((x) => x)) Deno.exit(1);
}

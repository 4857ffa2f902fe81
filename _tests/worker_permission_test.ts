// A thread pool or IOThread started without read permission for its Worker
// module: the error must say which flag to add (it used to surface as
// "SuppressedError: An error was suppressed during disposal", the real
// NotCapable hidden inside). Each case runs in a subprocess with restricted
// permissions and a watchdog.
import { assert, assertEquals } from "@std/assert";
import { runScript } from "./_harness.ts";

function assertStringIncludes(actual: string, expected: string): void {
  assert(actual.includes(expected), `expected ${JSON.stringify(expected)} in:\n${actual}`);
}

const ROOT = new URL("../", import.meta.url);
const ROOT_PATH = decodeURIComponent(ROOT.pathname);

async function runRestricted(
  source: string,
  flags: string[],
): Promise<{ code: number; out: string }> {
  const r = await runScript(source, flags);
  return { code: r.code, out: r.stdout + r.stderr };
}

const POOL = `import { AioContext } from ${
  JSON.stringify(new URL("aio/aio_context.ts", ROOT).href)
};
import { getThreadPool } from ${JSON.stringify(new URL("thread_pool/mod.ts", ROOT).href)};
using ctx = AioContext.create();
let out: unknown = "none";
getThreadPool(ctx).submitAio(
  { module: "data:text/javascript,export function f(x) { return x + 1; }", name: "f" },
  1,
  (ret, error) => out = error ?? ret,
);
const end = Date.now() + 20_000;
while (out === "none" && Date.now() < end) ctx.poll(false);
if (out instanceof Error) console.log("completion error:", out.name, out.message);
else console.log("result:", out);
`;

const IOTHREAD = `import { IOThread } from ${JSON.stringify(new URL("iothread/mod.ts", ROOT).href)};
try {
  await using t = await IOThread.create({ id: "perm" });
  console.log("result:", await t.run("data:text/javascript,export function f(x) { return x + 1; }", "f", 1));
} catch (e) {
  console.log("create error:", (e as Error).name, (e as Error).message);
}
`;

Deno.test("a thread pool without read permission fails its request with an error naming --allow-read", async () => {
  const { code, out } = await runRestricted(POOL, ["--allow-ffi"]);
  assertEquals(code, 0, out);
  assertStringIncludes(out, "completion error: NotCapable");
  assertStringIncludes(out, "thread_pool/_worker.ts");
  assertStringIncludes(out, `--allow-read=${ROOT_PATH}`);
  assert(!out.includes("SuppressedError"), out);
  // The flag the message names is enough.
  const ok = await runRestricted(POOL, ["--allow-ffi", `--allow-read=${ROOT_PATH}`]);
  assertEquals(ok.out.trim(), "result: 2");
});

Deno.test("an IOThread without read permission fails create() with an error naming --allow-read", async () => {
  const { code, out } = await runRestricted(IOTHREAD, ["--allow-ffi"]);
  assertEquals(code, 0, out);
  assertStringIncludes(out, "create error: NotCapable");
  assertStringIncludes(out, "iothread/_worker.ts");
  assertStringIncludes(out, `--allow-read=${ROOT_PATH}`);
  assert(!out.includes("SuppressedError"), out);
  const ok = await runRestricted(IOTHREAD, ["--allow-ffi", `--allow-read=${ROOT_PATH}`]);
  assertEquals(ok.out.trim(), "result: 2");
});

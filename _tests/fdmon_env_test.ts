// AIOLOOP_FDMON and the env permission, as a user meets them: a program run
// without --allow-env gets the default fd monitor, silently, and
// fdmonChoiceReason() says why; with the permission the variable decides.
import { assert, assertEquals } from "@std/assert";
import { runScript } from "./_harness.ts";
import { fdmonIoUring } from "../fdmon/mod.ts";

const PROGRAM = `
import { AioContext } from "${new URL("../mod.ts", import.meta.url).href}";
import { fdmonChoiceReason } from "${new URL("../fdmon/mod.ts", import.meta.url).href}";
using ctx = AioContext.create();
console.log(JSON.stringify({ fdmon: ctx.fdmon, why: fdmonChoiceReason(), reason: ctx.fdmonInfo().reason }));
`;

// What a default context gets here: io_uring where the kernel allows it.
const AUTO_NAME = fdmonIoUring.supported() ? "io_uring" : "poll";
const AUTO_WHAT = "auto (io_uring where the kernel allows it, else poll moving to epoll at 64 fds)";

async function run(
  flags: string[],
  fdmon: string,
): Promise<{ fdmon: string; why: string; reason: string }> {
  const r = await runScript(PROGRAM, flags, { AIOLOOP_FDMON: fdmon });
  assertEquals(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

Deno.test("fdmon env: AIOLOOP_FDMON is ignored without env permission, and the reason says so", async () => {
  const source = "AIOLOOP_FDMON ignored: no env permission (run with --allow-env=AIOLOOP_FDMON)";
  const r = await run(["--allow-ffi"], "epoll");
  assertEquals({ fdmon: r.fdmon, why: r.why }, {
    fdmon: AUTO_NAME,
    why: `${AUTO_WHAT}: ${source}`,
  });
  if (AUTO_NAME === "io_uring") assertEquals(r.reason, `io_uring (auto): ${source}`);
  else assert(r.reason.includes("(auto; io_uring unavailable: "), r.reason);
});

Deno.test("fdmon env: with --allow-env=AIOLOOP_FDMON the variable picks the fd monitor", async () => {
  assertEquals(await run(["--allow-ffi", "--allow-env=AIOLOOP_FDMON"], "epoll"), {
    fdmon: "epoll",
    why: "epoll: from AIOLOOP_FDMON",
    reason: "epoll: from AIOLOOP_FDMON",
  });
});

Deno.test("fdmon env: an unknown AIOLOOP_FDMON value is reported, not guessed", async () => {
  const { fdmonChoiceReason } = await import("../fdmon/mod.ts");
  const old = Deno.env.get("AIOLOOP_FDMON");
  Deno.env.set("AIOLOOP_FDMON", "kqueue");
  try {
    assertEquals(
      fdmonChoiceReason(),
      'AIOLOOP_FDMON="kqueue" is not an fd monitor: creating a context throws a TypeError',
    );
    assertEquals(
      fdmonChoiceReason("auto"),
      `${AUTO_WHAT}: chosen by the caller`,
    );
  } finally {
    if (old === undefined) Deno.env.delete("AIOLOOP_FDMON");
    else Deno.env.set("AIOLOOP_FDMON", old);
  }
});

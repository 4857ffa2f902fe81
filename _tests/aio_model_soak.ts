// The long model check (`deno task soak`): the same lockstep property as
// _tests/aio_model_test.ts, with many more programs per fd monitor. Not
// picked up by `deno task test` (the file name does not end in _test.ts).
//
// Environment:
//   AIOLOOP_SOAK_RUNS    programs per monitor (default 100000)
//   AIOLOOP_SOAK_SEED    base seed (default: random; printed either way)
//   AIOLOOP_SOAK_FDMON   only this monitor (poll, epoll or io_uring)
//   AIOLOOP_SOAK_STRICT  1: do not steer around the known bugs of KNOWN_BUGS
//   AIOLOOP_SOAK_EXTARG  0: io_uring times its waits with IORING_OP_TIMEOUT SQEs
//                        instead of IORING_ENTER_EXT_ARG
//
// Programs run in batches of 10000, batch k with seed base + k, so a failure
// reproduces from the printed batch seed alone.
import { assert, assertEquals } from "@std/assert";
import { clockEnable, clockSetVirtualNs, QEMUClockType } from "../aio/timer.ts";
import { ioUringHooks } from "../fdmon/_io_uring_hooks.ts";
import { openFdCount, supportedFdMons } from "./_fd_leak.ts";
import { checkModel, KNOWN_BUGS } from "./model/lockstep.ts";

const BATCH = 10_000;

function envInt(name: string, fallback: number): number {
  const v = Deno.env.get(name);
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`${name} must be a non-negative integer, got '${v}'`);
  }
  return n;
}

const runs = envInt("AIOLOOP_SOAK_RUNS", 100_000);
const baseSeed = envInt("AIOLOOP_SOAK_SEED", Math.floor(Math.random() * 0x7fffffff));
const only = Deno.env.get("AIOLOOP_SOAK_FDMON");
const strict = Deno.env.get("AIOLOOP_SOAK_STRICT") === "1";
const fdmons = supportedFdMons().filter((m) => !only || m === only);
ioUringHooks.extArg = Deno.env.get("AIOLOOP_SOAK_EXTARG") !== "0";

for (const fdmon of fdmons) {
  Deno.test(`aio model soak: ${runs} random programs agree with the reference model [${fdmon}]`, () => {
    console.log(
      `soak ${fdmon}: ${runs} programs, base seed ${baseSeed}` +
        (strict ? ", strict" : `, steering around: ${KNOWN_BUGS.join(", ")}`) +
        (fdmon === "io_uring" && !ioUringHooks.extArg ? ", TIMEOUT SQEs" : ""),
    );
    const before = openFdCount();
    const t0 = performance.now();
    let done = 0;
    try {
      for (let k = 0; done < runs; k++) {
        const n = Math.min(BATCH, runs - done);
        const seed = (baseSeed + k) | 0;
        const r = checkModel({ fdmon, seed, numRuns: n, avoid: strict ? [] : KNOWN_BUGS });
        if (r.details.failed) {
          console.log(`\n${r.report}\n`);
          assert(false, `model check failed on ${fdmon}, batch seed ${seed} (see above)`);
        }
        done += n;
        const s = (performance.now() - t0) / 1000;
        console.log(`  ${done} programs, ${s.toFixed(1)} s, ${Math.round(done / s)} programs/s`);
      }
    } finally {
      clockSetVirtualNs(0);
      clockEnable(QEMUClockType.VIRTUAL, false);
    }
    assertEquals(openFdCount(), before, "fds leaked by the programs");
  });
}

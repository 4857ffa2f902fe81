// Run with --v8-flags=--expose-gc by aio_sqe_test.ts: a buffer referenced
// only by an in-flight request survives garbage collection and receives
// the data; once the request completed, nothing keeps it.
import { aioAddSqe, AioContext, prepRead, type Sqe } from "../../mod.ts";
import { close, pipe, write } from "../../sys/mod.ts";

const gc = (globalThis as unknown as { gc: () => void }).gc;
// WeakRef targets are kept through the current job: collect across turns.
async function collect(): Promise<void> {
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 0));
  }
}

const ctx = AioContext.create({ fdmon: "io_uring" });
// One pipe per request, so that the data goes to the first one.
const pipes = Array.from({ length: 8 }, () => pipe());
let res = -1;
const refs: WeakRef<Uint8Array>[] = [];
// Separate scopes: closures made in one scope share its variables, and a
// handler sharing the buffer's would keep it alive by itself.
function makePrep(fd: number, b: Uint8Array): (sqe: Sqe) => void {
  return (sqe) => prepRead(sqe, fd, b, -1);
}
function makeHandler(i: number): (x: number) => void {
  return (x) => {
    if (i === 0) res = x;
  };
}
(() => {
  for (let i = 0; i < 8; i++) {
    // Small arrays (on-heap in V8 until their buffer is asked for) and large.
    const b = new Uint8Array(i % 2 === 0 ? 16 : 65536);
    refs.push(new WeakRef(b));
    aioAddSqe(ctx, makePrep(pipes[i][0], b), makeHandler(i));
  }
})();
ctx.poll(false);
await collect();
const aliveInFlight = refs.every((x) => x.deref() !== undefined);
write(pipes[0][1], new Uint8Array([1, 2, 3]));
while (res < 0) ctx.poll(true);
const first = Array.from(refs[0].deref()?.subarray(0, 3) ?? []);
ctx.destroy(); // the other seven complete with -ECANCELED
await collect();
const collectedAfter = refs.every((x) => x.deref() === undefined);
for (const [r, w] of pipes) {
  close(r);
  close(w);
}
console.log(JSON.stringify({ aliveInFlight, res, first, collectedAfter }));

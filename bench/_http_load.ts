// Load generator for bench/_http_lateness.ts: keeps `--concurrency` HTTP
// requests in flight against `--url` until stdin closes (its parent ends
// it that way), then prints the number of completed requests.
//
//   deno run --allow-net bench/_http_load.ts --url http://127.0.0.1:PORT/ --concurrency 200
const args = Deno.args;
const url = args[args.indexOf("--url") + 1];
const concurrency = Number(args[args.indexOf("--concurrency") + 1] ?? 200);
let stop = false;
let done = 0;
async function lane(): Promise<void> {
  while (!stop) {
    try {
      const r = await fetch(url);
      await r.arrayBuffer();
      done++;
    } catch {
      if (!stop) await new Promise((r) => setTimeout(r, 1));
    }
  }
}
const lanes = Array.from({ length: concurrency }, () => lane());
// The parent closes our stdin to stop us.
const buf = new Uint8Array(16);
while ((await Deno.stdin.read(buf)) !== null);
stop = true;
await Promise.allSettled(lanes);
console.log(JSON.stringify({ done }));

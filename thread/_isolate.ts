// Whether this isolate is a Worker, without importing node:worker_threads
// (which would set up node's worker plumbing in every isolate that loads
// aio): a web Worker has WorkerGlobalScope; a node:worker_threads Worker
// under Deno has no `self`; the main isolate has `self` and no
// WorkerGlobalScope.
const g = globalThis as { WorkerGlobalScope?: unknown; self?: unknown };

export const IN_WORKER: boolean = typeof g.WorkerGlobalScope !== "undefined" ||
  typeof g.self === "undefined";

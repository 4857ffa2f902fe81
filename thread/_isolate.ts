// Whether this isolate is a Worker: a web Worker has WorkerGlobalScope, a
// node:worker_threads Worker has isMainThread false (and no
// WorkerGlobalScope); the main isolate has neither.
import { isMainThread } from "node:worker_threads";

export const IN_WORKER: boolean =
  typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== "undefined" ||
  !isMainThread;

// What an IOThread's Worker is started with, shared by iothread.ts and
// _worker.ts.
import type { MessagePort } from "node:worker_threads";
import type { FdMonName } from "../fdmon/fdmon_ops.ts";
import type { PollParams } from "../aio/fd_handlers.ts";
import type { SharedWordHandle } from "../thread/shared_word.ts";

/** What the Worker is started with (its workerData). */
export interface WorkerInit {
  id: string;
  ctl: SharedArrayBuffer;
  /** SharedArrayBuffers of the owner's requests arrive here (pulled synchronously). */
  sabPort: MessagePort;
  fdmon?: FdMonName | "auto";
  pollParams: Required<PollParams>;
  threadPool: { min: number; max: number };
  /** The process's clock state (VIRTUAL time, enable flags, context ids). */
  clock: SharedArrayBuffer;
  /** The process's BQL, when the starting isolate has one (it is the main isolate's). */
  bql: SharedWordHandle | null;
  /** The process's trace buffer (trace/_state.ts). */
  trace: SharedArrayBuffer;
}

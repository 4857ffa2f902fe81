// Functions the trace test runs in a pool worker and in an IOThread.
import { isTracing, startTrace } from "../../trace/mod.ts";

/** Twice its argument. */
export function double(n: number): number {
  return n * 2;
}

/** Whether the calling thread records a trace now. */
export function tracingHere(): boolean {
  return isTracing();
}

/** Tries to start a trace from a Worker (which does not own the buffer). */
export function startHere(): string {
  try {
    startTrace();
    return "started";
  } catch (e) {
    return (e as Error).name;
  }
}

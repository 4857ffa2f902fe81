/**
 * The loop timeline: opt-in tracing of every thread's loop iterations,
 * exported as Chrome trace-event JSON (open it in Perfetto). Off by default;
 * a traced site costs one boolean test while it is off.
 *
 * @example Tracing one poll
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext } from "@aioloop/aioloop";
 * import { startTrace, traceEvents } from "@aioloop/aioloop/trace";
 * using ctx = AioContext.create();
 * using _t = startTrace();
 * ctx.bhScheduleOneshot(function tick() {});
 * ctx.poll(false);
 * assertEquals(traceEvents().filter((e) => e.name === "tick").map((e) => e.ph), ["B", "E"]);
 * ```
 *
 * @module
 */
export * from "./trace.ts";

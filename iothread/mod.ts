/**
 * IOThreads and cross-thread requests: QEMU's `iothread.c`. An IOThread is a
 * Worker with its own AioContext looping `poll(true)`; work reaches it by
 * name (module URL + export + cloneable argument) through shared memory and
 * the context's doorbell, never as a closure.
 *
 * @example Run a named function on an IOThread
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { IOThread } from "@aioloop/aioloop/iothread";
 *
 * const jobs = "data:text/javascript,export function add([a, b]) { return a + b; }";
 * await using io = await IOThread.create({ id: "io0" });
 * assertEquals(await io.run(jobs, "add", [2, 3]), 5);
 * ```
 *
 * @module
 */
export * from "./iothread.ts";
export * from "./remote_request.ts";
export * from "./coroutine_registry.ts";
export * from "./request_types.ts";

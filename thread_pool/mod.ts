/**
 * The thread pool: util/thread-pool.c on Deno Workers. Each AioContext has
 * one pool ({@linkcode getThreadPool}); a request names an exported function
 * of a module and a cloneable argument, runs in a worker, and completes in
 * a bottom half of the context.
 *
 * @example Submit, poll, get the result
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { AioContext } from "@aioloop/aioloop";
 * import { getThreadPool } from "@aioloop/aioloop/thread-pool";
 *
 * const jobs = "data:text/javascript,export function mul([a, b]) { return a * b; }";
 * using ctx = AioContext.create();
 * let product = 0;
 * getThreadPool(ctx).submitAio({ module: jobs, name: "mul" }, [6, 7], (ret) => product = ret as number);
 * while (product === 0) ctx.poll(true);
 * assertEquals(product, 42);
 * ```
 *
 * @module
 */
export * from "./generic_pool.ts";
export * from "./thread_pool.ts";
export * from "./types.ts";

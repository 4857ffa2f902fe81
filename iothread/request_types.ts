/**
 * Types that tie a named request to the function it calls, so that
 * `IOThread.run` / `runSync` (and `IOThread.module`) check the argument and
 * type the result from the module's own export.
 *
 * @example Typing a call by the export it names
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import type { RequestArgs, RequestResult } from "@aioloop/aioloop/iothread";
 * async function twice(x: number): Promise<number> {
 *   return 2 * x;
 * }
 * const args: RequestArgs<typeof twice> = [21];
 * const result: RequestResult<typeof twice> = 42;
 * assertEquals([args, result], [[21], 42]);
 * ```
 *
 * @module
 */

/**
 * A function a request can call: it receives the request's one argument.
 *
 * Counterpart: the `void (*fn)(void *opaque)` of a BH or `ctx_run()`.
 *
 * @example Any one-argument function
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import type { RequestFunction } from "@aioloop/aioloop/iothread";
 * const f: RequestFunction = (x: number) => x + 1;
 * assertEquals(f(1), 2);
 * ```
 */
// deno-lint-ignore no-explicit-any
export type RequestFunction = (arg: any) => unknown;

/**
 * The argument list a request for `F` takes: `[arg]` when `F` requires its
 * argument, `[arg?]` when it is optional or absent.
 *
 * Counterpart: none (C passes a `void *`).
 *
 * @typeParam F The called function's type.
 *
 * @example Required and optional
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import type { RequestArgs } from "@aioloop/aioloop/iothread";
 * const a: RequestArgs<(x: string) => void> = ["x"];
 * const b: RequestArgs<() => void> = [];
 * assertEquals([a.length, b.length], [1, 0]);
 * ```
 */
export type RequestArgs<F extends RequestFunction> = Parameters<F> extends [infer A, ...unknown[]]
  ? [arg: A]
  : [arg?: Parameters<F>[0]];

/**
 * What a request for `F` resolves to: its return value, awaited.
 *
 * Counterpart: none.
 *
 * @typeParam F The called function's type.
 *
 * @example A promise-returning function
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import type { RequestResult } from "@aioloop/aioloop/iothread";
 * const r: RequestResult<() => Promise<string>> = "done";
 * assertEquals(r, "done");
 * ```
 */
export type RequestResult<F extends RequestFunction> = Awaited<ReturnType<F>>;

/**
 * The names of the exports of module type `M` that are request functions.
 *
 * Counterpart: none.
 *
 * @typeParam M A module's type, `typeof import("./fns.ts")`.
 *
 * @example Only the functions
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import type { RequestFunctionName } from "@aioloop/aioloop/iothread";
 * type M = { add(x: [number, number]): number; version: string };
 * const name: RequestFunctionName<M> = "add";
 * assertEquals(name, "add");
 * ```
 */
export type RequestFunctionName<M> =
  & { [K in keyof M]: M[K] extends RequestFunction ? K : never }[keyof M]
  & string;

/**
 * The export `K` of module type `M`, as a request function.
 *
 * Counterpart: none.
 *
 * @typeParam M A module's type.
 * @typeParam K One of its function exports.
 *
 * @example The type of one export
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import type { RequestExport } from "@aioloop/aioloop/iothread";
 * type M = { add(x: [number, number]): number };
 * const add: RequestExport<M, "add"> = ([a, b]) => a + b;
 * assertEquals(add([1, 2]), 3);
 * ```
 */
export type RequestExport<M, K extends RequestFunctionName<M>> = Extract<M[K], RequestFunction>;

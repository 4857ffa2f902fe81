// @std/assert's names over node:assert/strict, because the JSR registry is
// unreachable from CI. Swap the import map entry for jsr:@std/assert later.
import nodeAssert from "node:assert/strict";

export function assert(cond: unknown, msg?: string): asserts cond {
  nodeAssert.ok(cond, msg);
}
export function assertFalse(cond: unknown, msg?: string): void {
  nodeAssert.ok(!cond, msg ?? `expected falsy, got ${String(cond)}`);
}
export function assertEquals<T>(actual: unknown, expected: T, msg?: string): asserts actual is T {
  nodeAssert.deepStrictEqual(actual, expected, msg);
}
export function assertNotEquals(actual: unknown, expected: unknown, msg?: string): void {
  nodeAssert.notDeepStrictEqual(actual, expected, msg);
}
export function assertStrictEquals<T>(
  actual: unknown,
  expected: T,
  msg?: string,
): asserts actual is T {
  nodeAssert.strictEqual(actual, expected, msg);
}
export function assertGreater(a: number, b: number, msg?: string): void {
  nodeAssert.ok(a > b, msg ?? `expected ${a} > ${b}`);
}
export function assertGreaterOrEqual(a: number, b: number, msg?: string): void {
  nodeAssert.ok(a >= b, msg ?? `expected ${a} >= ${b}`);
}
export function assertLess(a: number, b: number, msg?: string): void {
  nodeAssert.ok(a < b, msg ?? `expected ${a} < ${b}`);
}
export function assertInstanceOf<T>(
  v: unknown,
  // deno-lint-ignore no-explicit-any
  C: new (...a: any[]) => T,
  msg?: string,
): asserts v is T {
  nodeAssert.ok(v instanceof C, msg ?? `expected instance of ${C.name}`);
}
// deno-lint-ignore no-explicit-any
type ErrorClass = new (...a: any[]) => Error;
export function assertThrows(fn: () => unknown, C?: ErrorClass, msgIncludes?: string): Error {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  nodeAssert.ok(err !== undefined, "expected function to throw");
  if (C) nodeAssert.ok(err instanceof C, `expected ${C.name}, got ${String(err)}`);
  if (msgIncludes) {
    nodeAssert.ok(
      String((err as Error).message).includes(msgIncludes),
      `message "${(err as Error).message}" lacks "${msgIncludes}"`,
    );
  }
  return err as Error;
}
export async function assertRejects(
  fn: () => Promise<unknown>,
  C?: ErrorClass,
  msgIncludes?: string,
): Promise<Error> {
  let err: unknown;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  nodeAssert.ok(err !== undefined, "expected promise to reject");
  if (C) nodeAssert.ok(err instanceof C, `expected ${C.name}, got ${String(err)}`);
  if (msgIncludes) nodeAssert.ok(String((err as Error).message).includes(msgIncludes));
  return err as Error;
}
